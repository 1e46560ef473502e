"""The operating point is chosen per KB from its own simulation, for the targets a team states:
as many right answers as the targets allow, a margin where probes are few or clustered, and a
plain statement when no threshold can meet them."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bot.kb.knowledge_base import KnowledgeBase
from bot.kb.lexical import LexicalMatcher
from bot.kb.model import KBEntry, Thresholds
from bot.kb.operating_point import (
    NO_CLARIFY,
    Outcomes,
    Source,
    Targets,
    _EscapeBound,
    _search,
    expected_at,
    outcomes,
)
from bot.kb.simulation import confusable_pairs
from tests.kb.test_cli import supportbot

ROOT = Path(__file__).resolve().parents[2]


def _outcomes(
    confidence: list[float], right: list[bool], entries: int, offered: list[float] | None = None
) -> Outcomes:
    n = len(confidence)
    return Outcomes(
        confidence=np.asarray(confidence, dtype=float),
        offered=np.asarray(offered if offered is not None else confidence, dtype=float),
        right=np.asarray(right),
        hit=np.asarray(right),
        cluster=np.arange(n, dtype=np.int64) % entries,
    )


def _kb(rng: np.random.Generator, *, leak_above: float) -> tuple[Outcomes, Outcomes]:
    """400 in-scope probes, right when confident; 400 out-of-scope ones, spread over 50 entries,
    of which `leak_above` and up leak through."""
    confidence = rng.uniform(0.3, 1.0, 400)
    in_scope = _outcomes(confidence.tolist(), (confidence > 0.6).tolist(), 50)
    oos = rng.uniform(0.0, leak_above, 400)
    return in_scope, _outcomes(oos.tolist(), [False] * 400, 50, offered=(oos * 0.9).tolist())


def test_the_loosest_threshold_that_meets_the_targets_is_chosen() -> None:
    in_scope, out_of_scope = _kb(np.random.default_rng(1), leak_above=0.9)

    thresholds, met = _search(in_scope, out_of_scope, Targets())
    expected = expected_at(in_scope, out_of_scope, thresholds)

    assert met
    assert expected.precision is not None and expected.precision >= 0.95
    assert expected.oos_escalated >= 0.95
    # One step looser would break a target (with its margin): the point is not needlessly strict.
    looser = expected_at(in_scope, out_of_scope, Thresholds(thresholds.answer - 0.03, NO_CLARIFY))
    assert looser.oos_escalated < 0.97 or (looser.precision or 1) < 0.95


def test_a_stricter_target_never_answers_more() -> None:
    in_scope, out_of_scope = _kb(np.random.default_rng(2), leak_above=0.95)
    answers = [
        _search(in_scope, out_of_scope, Targets(answer_precision=p, escalate_unknown=e))[0].answer
        for p, e in [(0.9, 0.9), (0.95, 0.95), (0.97, 0.98)]
    ]
    assert answers == sorted(answers)


def test_leaks_from_a_few_entries_need_a_wider_margin_than_leaks_spread_thin() -> None:
    """The same 4% of out-of-scope probes get through: spread over 16 entries, or all from two
    near-twin entries. Probes of one entry get through together, so the second says less."""
    spread = np.zeros(400, dtype=bool)
    spread[:16] = True  # one probe in each of 16 entries (entry = index % 50)
    clustered = np.zeros(400, dtype=bool)
    cluster = np.arange(400, dtype=np.int64) % 50
    clustered[np.isin(cluster, [3, 7])] = True
    bound = _EscapeBound(cluster)
    assert spread.mean() == clustered.mean()
    assert bound.upper(clustered)[0] > bound.upper(spread)[0] > spread.mean()


def test_a_rate_of_zero_from_a_handful_of_probes_is_not_vouched_for() -> None:
    few = _EscapeBound(np.arange(10, dtype=np.int64) % 5)
    many = _EscapeBound(np.arange(2000, dtype=np.int64) % 100)
    assert few.upper(np.zeros(10, dtype=bool))[0] > 0.05
    assert many.upper(np.zeros(2000, dtype=bool))[0] < 0.01


def test_when_no_threshold_meets_the_targets_the_closest_one_is_flagged() -> None:
    rng = np.random.default_rng(3)
    confidence = rng.uniform(0.5, 1.0, 400)
    in_scope = _outcomes(confidence.tolist(), (rng.uniform(0, 1, 400) < 0.8).tolist(), 50)
    out_of_scope = _outcomes(rng.uniform(0.5, 1.0, 400).tolist(), [False] * 400, 50)

    thresholds, met = _search(in_scope, out_of_scope, Targets())

    assert not met
    assert thresholds.clarify == NO_CLARIFY, "no choices where even answers miss the targets"


def _entries() -> list[KBEntry]:
    topics = [
        "invoice",
        "export",
        "webhook",
        "password",
        "plan",
        "refund",
        "import",
        "region",
        "team",
        "token",
    ]
    topics += ["alert", "report", "domain", "backup", "seat"]
    asks = ["how do I {v} my {t}", "{t} {v} not working", "can I {v} the {t} from settings", "{v} {t} help"]
    verbs = ["change", "delete", "export", "share", "reset"]
    return [
        KBEntry(
            id=f"{topic}-{verb}",
            title=f"{verb} {topic}",
            questions=tuple(ask.format(v=verb, t=topic) for ask in asks),
            answer="...",
        )
        for topic in topics
        for verb in verbs[:2]
    ]


def test_a_kb_large_enough_gets_a_simulated_point_that_settings_can_override() -> None:
    entries = _entries()
    chosen = KnowledgeBase.build(entries, matcher="lexical")
    assert chosen.operating_point.source in (Source.SIMULATED, Source.CLOSEST)
    assert chosen.operating_point.expected is not None
    line = chosen.health().summary()
    assert line.startswith(f"answer >= {chosen.thresholds.answer:.2f}")
    assert "out-of-scope escalated" in line

    fixed = KnowledgeBase.build(entries, matcher="lexical", answer_threshold=0.99, clarify_threshold=0.98)
    assert fixed.thresholds == Thresholds(0.99, 0.98)
    assert fixed.operating_point.source is Source.SETTING
    # One fixed, the other still chosen.
    half = KnowledgeBase.build(entries, matcher="lexical", answer_threshold=0.99)
    assert half.thresholds.answer == 0.99 and half.thresholds.clarify == chosen.thresholds.clarify


def test_the_lexical_out_of_scope_probe_scores_as_the_kb_without_that_entry() -> None:
    """Hiding an entry must make its own words unknown and re-weigh the words it shared, as a KB
    that never had it would: masking its scores alone made unknown questions look safer."""
    entries = _entries()
    full = LexicalMatcher(entries, calibrate=False)
    hidden = 4
    smaller = LexicalMatcher([e for i, e in enumerate(entries) if i != hidden], calibrate=False)
    keep = [i for i in range(len(entries)) if i != hidden]
    for phrasing in np.flatnonzero(full.phrasing_entry == hidden).tolist():
        (rescored,) = full.probe_out_of_scope_scores(np.array([phrasing]))
        fresh = smaller.entry_scores(smaller.phrasing_scores(full.phrasings[phrasing]))
        assert np.isneginf(rescored[0, hidden])
        assert rescored[0, keep] == pytest.approx(fresh, abs=0.03)
        assert int(np.argmax(rescored[0, keep])) == int(np.argmax(fresh))


def test_kb_eval_reports_clarify_figures_and_nulls_with_reasons(tmp_path: Path) -> None:
    examples = [
        {"text": f"how do I {v} my {t}", "label": t}
        for t in ("invoice", "export")
        for v in ("fix", "find", "get")
    ]
    (tmp_path / "examples.jsonl").write_text("\n".join(json.dumps(e) for e in examples) + "\n")
    (tmp_path / "one_label.jsonl").write_text('{"text": "fix my invoice please", "label": "invoice"}\n')
    result = supportbot(
        "kb", "eval", "--examples", "examples.jsonl", "--queries", "one_label.jsonl", "--matcher", "lexical",
        "--json", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["oos_escalation"] is None and report["oos_clarified"] is None
    assert report["undefined"]["oos_escalation"].startswith("no out-of-scope queries")
    assert report["top1_accuracy"] == 1.0
    assert report.keys() >= {"clarify_hit", "oos_clarified", "clarified", "coverage_at_95", "operating_point"}
    if report["answered_precision"] is None:
        assert report["undefined"]["answered_precision"] == "nothing was answered"


def test_replacing_the_targets_moves_kb_check(tmp_path: Path) -> None:
    """`kb check` states the point for the configured targets (here: the sample KB, lexical)."""
    strict = supportbot("kb", "check", "--path", str(ROOT / "kb"), cwd=tmp_path)
    assert strict.returncode == 0, strict.stderr
    assert "lexical matcher: answer >= " in strict.stdout
    assert "most confusable entries" in strict.stdout


def test_a_decision_replaced_keeps_its_shape() -> None:
    point = KnowledgeBase.build(_entries(), matcher="lexical").operating_point
    assert replace(point, source=Source.SETTING).describe().endswith(point.describe().split(")", 1)[1])


def test_a_declined_topic_is_asked_only_as_out_of_scope_and_never_answers() -> None:
    """Its questions are real unknowns from traffic: never right to answer, so never in-scope
    probes. Out of scope, an article's phrasing (an unknown nobody declined yet) is asked of the
    articles alone, so the threshold never leans on declined topics; a declined question (an
    unknown that comes back) is asked with its own topic hidden and the others visible."""
    # Changing a refund is not the bot's job; deleting one is an article.
    entries = [e for e in _entries() if e.id != "refund-change"]
    (refund,) = [e for e in _entries() if e.id == "refund-change"]
    declined = KBEntry(id="declined:n1", title="-", questions=refund.questions, answer="", declined=True)
    matcher = LexicalMatcher([*entries, declined])
    sim = matcher.simulation
    assert sim is not None
    topic = len(entries)
    from_topic = sim.asked == topic
    assert from_topic.sum() == 4 and not sim.findable[from_topic].any()
    assert sim.declined.tolist() == [False] * len(entries) + [True]
    assert (sim.out_of_scope.entries[from_topic, 0] >= 0).all(), "an article is the best guess without it"
    assert not (sim.out_of_scope.entries == topic).any(), "out of scope, only articles answer"

    in_scope, out_of_scope = outcomes(sim, matcher.calibration, matcher.choice_calibration)
    assert len(in_scope.confidence) == sim.findable.sum() and len(out_of_scope.confidence) == sim.size
    # Some of `refund-delete`'s own phrasings find the declined topic first: escalated, not answered.
    found_topic = sim.in_scope.entries[sim.findable, 0] == topic
    assert found_topic.any()
    assert (in_scope.confidence[found_topic] == 0).all() and (in_scope.offered[found_topic] == 0).all()

    kb = KnowledgeBase.build([*entries, declined], matcher="lexical")
    assert [e.id for e in kb.entries] == [e.id for e in entries] and kb.declined == (declined,)

    # The same questions declined twice (two gaps): each topic's questions find the other one.
    halves = [replace(declined, id=f"declined:n{i}", questions=refund.questions[i::2]) for i in (0, 1)]
    sim = LexicalMatcher([*entries, *halves]).simulation
    assert sim is not None
    first, second = len(entries), len(entries) + 1
    assert (sim.out_of_scope.entries[sim.asked == first] == second).any(axis=1).all()
    assert not np.isin(sim.out_of_scope.entries[sim.asked < first], [first, second]).any()


def test_a_declined_topic_is_never_named_as_a_confusable_entry() -> None:
    entries = [e for e in _entries() if e.id != "refund-change"]
    (refund,) = [e for e in _entries() if e.id == "refund-change"]
    declined = KBEntry(id="declined:n1", title="-", questions=refund.questions, answer="", declined=True)
    sim = LexicalMatcher([*entries, declined]).simulation
    assert sim is not None
    assert (sim.in_scope.entries[sim.findable, 0] == len(entries)).any(), "it does shadow refund-delete"
    pairs = confusable_pairs(sim, [*entries, declined], limit=100)
    assert pairs and all("declined:n1" not in (p.first, p.second) for p in pairs)
