"""The lexical matcher: typos and paraphrases find their entry, unrelated questions are escalated,
near ties are offered as choices, and confidences behave like probabilities."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.kb.knowledge_base import KnowledgeBase, KnowledgeBaseHolder
from bot.kb.lexical import LexicalMatcher
from bot.kb.loader import load_entries
from bot.kb.matching import decide
from bot.kb.model import Band, Candidate, KBEntry, Thresholds

FIXTURE_KB = Path(__file__).resolve().parents[1] / "data" / "kb"
SAMPLE_KB = Path(__file__).resolve().parents[2] / "kb"


@pytest.fixture(scope="module")
def kb() -> KnowledgeBaseHolder:
    return KnowledgeBaseHolder(FIXTURE_KB, matcher="lexical")


def entry(entry_id: str, *questions: str) -> KBEntry:
    return KBEntry(id=entry_id, title=entry_id, questions=questions, answer=f"about {entry_id}")


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("how do i rest my api kee", "reset-api-key"),  # two typos
        ("My CVS exprot failed again", "export-failed"),  # transposed letters
        ("where can I download invoices", "invoice-download"),
        ("how do I cancel my subscription?", "cancel-subscription"),
    ],
)
def test_typos_and_rewordings_are_answered(kb: KnowledgeBaseHolder, question: str, expected: str) -> None:
    decision = kb.ask(question)
    assert decision.band is Band.ANSWER, decision
    assert decision.best is not None and decision.best.entry.id == expected


def test_a_paraphrase_ranks_its_entry_first(kb: KnowledgeBaseHolder) -> None:
    (best, *_) = kb.current.matcher.rank("I need to rotate our API token")
    assert best.entry.id == "reset-api-key"
    assert best.confidence > 0.5


@pytest.mark.parametrize(
    "question",
    ["what's the weather in Paris tomorrow", "can I bring my dog to the office", "🙂", "asdf qwerty zxcv"],
)
def test_unrelated_questions_are_escalated(kb: KnowledgeBaseHolder, question: str) -> None:
    decision = kb.ask(question)
    assert decision.band is Band.ESCALATE
    # The guesses are kept for the record, but none is confident.
    assert all(c.confidence < kb.current.thresholds.clarify for c in decision.candidates)


def test_a_question_that_fits_several_entries_offers_them_as_choices() -> None:
    entries, _ = load_entries(SAMPLE_KB)
    matcher = LexicalMatcher(entries)
    # A clarify threshold a team might pick; the shipped default is stricter (see BENCHMARKS.md).
    kb = KnowledgeBase(entries, matcher, Thresholds(answer=0.95, clarify=0.8))
    decision = kb.ask("api key")
    assert decision.band is Band.CLARIFY
    assert {c.entry.id for c in decision.candidates} == {"create-api-key", "reset-api-key", "api-401"}
    # Each choice alone is unlikely; together they very probably hold the right one.
    assert all(c.confidence < 0.5 for c in decision.candidates)
    assert sum(c.confidence for c in decision.candidates) >= 0.8
    # The same KB answers when the question settles it.
    settled = kb.ask("how can I rotate my API key")
    assert settled.band is Band.ANSWER
    assert [c.entry.id for c in settled.candidates] == ["reset-api-key"]


def test_confidences_are_probabilities_best_first(kb: KnowledgeBaseHolder) -> None:
    for question in [
        "reset api key",
        "invoice",
        "",
        "   ",
        "x" * 5000,
        "export? export! EXPORT",
        "¿dónde está?",
    ]:
        ranked = kb.current.matcher.rank(question, limit=5)
        confidences = [c.confidence for c in ranked]
        assert all(0.0 <= c <= 1.0 for c in confidences)
        assert confidences == sorted(confidences, reverse=True)
        assert len(ranked) <= 5


def test_calibration_is_learned_from_the_kb(kb: KnowledgeBaseHolder) -> None:
    matcher = kb.current.matcher
    assert isinstance(matcher, LexicalMatcher)
    assert matcher.calibration != matcher.prior
    exact = matcher.rank("How do I reset my API key?")[0]
    vague = matcher.rank("key")[0]
    assert exact.confidence > vague.confidence


def test_decide_follows_the_thresholds() -> None:
    a, b, c, d = (entry(x, "q1", "q2") for x in "abcd")
    thresholds = Thresholds(answer=0.8, clarify=0.4)
    assert decide([Candidate(a, 0.85), Candidate(b, 0.1)], thresholds).candidates == (Candidate(a, 0.85),)
    clarify = decide(
        [Candidate(a, 0.3), Candidate(b, 0.25), Candidate(c, 0.1), Candidate(d, 0.1)], thresholds
    )
    assert clarify.band is Band.CLARIFY
    assert [x.entry.id for x in clarify.candidates] == ["a", "b", "c"]  # at most three
    # A choice far less likely than the best is left out, and does not count towards clarifying.
    one = decide([Candidate(a, 0.6), Candidate(b, 0.05)], thresholds)
    assert (one.band, [x.entry.id for x in one.candidates]) == (Band.CLARIFY, ["a"])
    assert (
        decide([Candidate(a, 0.3), Candidate(b, 0.05), Candidate(c, 0.05)], thresholds).band is Band.ESCALATE
    )
    assert decide([], thresholds).band is Band.ESCALATE


def test_thresholds_are_probabilities() -> None:
    with pytest.raises(ValueError, match="clarify"):
        Thresholds(answer=0.5, clarify=1.5)
    # Two different probabilities: offering choices may demand more than answering.
    assert Thresholds(answer=0.8, clarify=0.98).clarify == 0.98


def test_among_a_thousand_look_alike_entries_the_one_asked_about_comes_first() -> None:
    """Its speed is a benchmark's (bench/kb_latency.py, docs/BENCHMARKS.md), not a timed test's:
    a 3 ms bound failed here on a machine at load 8."""
    topics = ["invoice", "export", "webhook", "password", "api", "plan", "refund", "import", "region", "team"]
    verbs = ["download", "fix", "change", "delete", "find", "retry", "configure", "share", "limit", "move"]
    entries = [
        entry(
            f"e{i}",
            *(
                f"how do I {verbs[(i + k) % 10]} the {topics[i % 10]} number {i} in project {k} x{i * 7 + k}"
                for k in range(5)
            ),
        )
        for i in range(1000)
    ]
    matcher = LexicalMatcher(entries)
    for i in range(0, 1000, 37):
        question = f"how can i {verbs[i % 10]} the {topics[i % 10]} number {i} in project 0 x{i * 7}"
        assert matcher.rank(question, limit=3)[0].entry.id == f"e{i}", question
