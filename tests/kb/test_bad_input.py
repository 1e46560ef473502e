"""Knowledge bases that are too small, too repetitive or very large load without a crash, and
`kb check` says what that means for answering."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.kb.calibration import FitStatus
from bot.kb.knowledge_base import KnowledgeBase
from bot.kb.lexical import LexicalMatcher
from bot.kb.model import Band, KBEntry
from bot.kb.operating_point import Source
from tests.kb.test_cli import NEEDS_SEMANTIC, supportbot

TOPICS = ["invoice", "export", "webhook", "password", "plan", "refund", "import", "region", "team", "token"]
TOPICS += ["alert", "report"]


def entry(entry_id: str, *questions: str) -> KBEntry:
    return KBEntry(id=entry_id, title=entry_id, questions=questions, answer=f"about {entry_id}")


def test_a_kb_of_one_entry_answers_only_that_entry_and_says_it_cannot_check_itself() -> None:
    kb = KnowledgeBase.build([entry("pay", "How do I pay?", "Where do I pay my bill?")], matcher="lexical")
    health = kb.health()
    assert kb.matcher.fit_status is FitStatus.TOO_FEW
    assert kb.operating_point.source is Source.DEFAULT
    lines = "\n".join(health.lines())
    assert "too few phrasings to calibrate: using the default prior; expect to escalate more" in lines
    assert "only one entry" in "\n".join(health.warnings)
    assert kb.ask("How do I pay?").band is Band.ANSWER
    assert kb.ask("what's the weather tomorrow").band is Band.ESCALATE


def test_entries_of_one_phrasing_load_and_each_is_named() -> None:
    kb = KnowledgeBase.build(
        [entry(f"t{i}", f"how do I fix my {t}") for i, t in enumerate(TOPICS)], matcher="lexical"
    )
    health = kb.health()
    # Asked without itself, a one-phrasing entry has nothing left: no in-scope probe, no fit.
    assert kb.matcher.fit_status is FitStatus.TOO_FEW
    assert kb.operating_point.source is Source.DEFAULT
    assert len(health.warnings) == len(TOPICS)
    assert "entry 't0' has one phrasing" in health.warnings[0]
    assert kb.ask("how do I fix my refund").best is not None


def test_two_identical_entries_are_named_and_never_answered_by_a_coin_flip() -> None:
    entries = [
        entry(f"t{i}", f"how do I change my {t}", f"{t} settings", f"where is the {t} page")
        for i, t in enumerate(TOPICS)
    ]
    entries.append(
        entry("twin", "how do I change my invoice", "invoice settings", "where is the invoice page")
    )

    kb = KnowledgeBase.build(entries, matcher="lexical")
    health = kb.health()

    pair = health.confusions[0]
    assert {pair.first, pair.second} == {"t0", "twin"} and pair.crossed == pair.phrasings == 6
    assert any("'invoice settings' is also in 't0'" in warning for warning in health.warnings)
    decision = kb.ask("how do I change my invoice")
    assert decision.band is not Band.ANSWER
    (first, second, *_) = decision.candidates
    assert {first.entry.id, second.entry.id} == {"t0", "twin"}
    assert first.confidence == second.confidence, "neither twin is more likely than the other"


def test_every_phrasing_the_same_word_escalates_rather_than_pick_one() -> None:
    entries = [entry(f"t{i}", "help", "help!") for i in range(12)]

    kb = KnowledgeBase.build(entries, matcher="lexical")

    decision = kb.ask("help")
    assert decision.band is Band.ESCALATE
    assert len({c.confidence for c in decision.candidates}) == 1
    assert kb.health().confusions, "kb check names the entries that answer each other"


def test_five_thousand_entries_load_on_a_sample_of_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    # The sample size is lowered so the test stays quick; the code path is the one 8,000 takes.
    monkeypatch.setattr(LexicalMatcher, "max_probes", 600)
    verbs = ["fix", "move", "find", "share"]
    entries = [
        entry(
            f"e{i}",
            f"how do I {verbs[i % 4]} the {TOPICS[i % 12]} number {i}",
            f"{TOPICS[i % 12]} problem {i}",
        )
        for i in range(5000)
    ]

    kb = KnowledgeBase.build(entries, matcher="lexical")

    assert kb.matcher.simulation is not None and kb.matcher.simulation.size == 600
    assert kb.health().lines()[0].startswith("lexical matcher: answer >= ")
    assert kb.ask("how do I move the export number 4321").best is not None


def test_kb_check_warns_about_one_phrasing_entries_and_still_passes(tmp_path: Path) -> None:
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "faq.yml").write_text(
        "".join(
            f"- id: {t}\n  questions:\n    - How do I fix my {t}?\n  answer: Like this.\n" for t in TOPICS[:3]
        )
    )
    result = supportbot("kb", "check", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "3 entries in 1 file(s), all valid" in result.stdout
    assert "too few phrasings to calibrate: using the default prior; expect to escalate more" in result.stdout
    assert "warning: kb/faq.yml:1: entry 'invoice' has one phrasing" in result.stderr


@NEEDS_SEMANTIC[0]
@NEEDS_SEMANTIC[1]
def test_the_semantic_matcher_loads_a_one_entry_kb() -> None:
    kb = KnowledgeBase.build([entry("pay", "How do I pay?", "Where do I pay my bill?")], matcher="semantic")
    assert kb.operating_point.source is Source.DEFAULT
    assert kb.ask("where can I settle my invoice").best is not None
