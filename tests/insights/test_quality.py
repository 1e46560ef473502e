"""Answer quality in production: answers followed by a ticket, per article and overall, against the
precision the knowledge base expects; an article is called misleading only when clearly below it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.insights.figures import answers
from bot.insights.kb_view import expected_precision
from bot.insights.quality import assess, wilson_upper
from bot.kb.knowledge_base import KnowledgeBase, KnowledgeBaseHolder
from bot.kb.model import KBEntry
from tests.insights.test_figures import NOW, question, ticket

SAMPLE_KB = Path(__file__).resolve().parents[2] / "kb"


def _quality(rows, tickets=(), *, expected: float | None = 0.9):  # type: ignore[no-untyped-def]
    found = answers(rows, list(tickets), as_of=NOW)
    return assess(found, expected_precision=expected, expectation="test")


def test_the_wilson_bound_is_above_the_observed_share_and_tightens_with_more_answers() -> None:
    assert wilson_upper(0, 0) == 1.0
    assert 0.5 < wilson_upper(5, 10) < wilson_upper(1, 2)
    assert wilson_upper(50, 100) < wilson_upper(5, 10)
    assert wilson_upper(10, 10) == pytest.approx(1.0)


def test_followed_answers_per_article_and_overall() -> None:
    good = [question(who=f"slack:G{i}", entry="export-failed") for i in range(20)]
    bad = [question(who=f"slack:B{i}", entry="refunds", outcome="still_need_help") for i in range(6)]
    bad += [question(who=f"slack:B{i + 6}", entry="refunds") for i in range(2)]
    quality = _quality(good + bad)
    assert quality.overall.part == 6 and quality.overall.whole == 28
    assert quality.precision == pytest.approx(22 / 28)
    first, second = quality.articles
    assert (first.entry_id, first.followed.part, first.followed.whole, first.misleads) == (
        "refunds",
        6,
        8,
        True,
    )
    assert (second.entry_id, second.followed.part, second.misleads) == ("export-failed", 0, False)
    assert quality.misleading == (first,)
    assert quality.below_expectation  # 22 of 28 right is clearly below 0.9


def test_a_few_unlucky_answers_do_not_make_an_article_misleading() -> None:
    rows = [question(who="slack:U1", entry="refunds", outcome="still_need_help")]
    rows += [question(who=f"slack:U{i}", entry="refunds") for i in range(2, 6)]
    quality = _quality(rows)
    (article,) = quality.articles
    assert article.followed.part == 1 and not article.misleads
    assert not quality.below_expectation
    two = _quality(rows[:2])
    assert not two.articles[0].misleads, "fewer than three answers say nothing"


def test_answers_too_recent_to_judge_are_left_out_and_nothing_is_flagged_without_an_expectation() -> None:
    recent = question(ago=timedelta(hours=2))
    old = question(who="slack:U2", outcome="still_need_help", ago=timedelta(days=2))
    quality = _quality([recent, old], expected=None)
    assert quality.overall.whole == 1
    assert quality.expected_precision is None and not quality.below_expectation
    followed_recent = question(ago=timedelta(hours=1), outcome="still_need_help")
    assert _quality([followed_recent]).overall.whole == 1, "a ticket already followed it: it is settled"


def test_answers_after_a_pick_count_for_the_picked_article() -> None:
    picked = question(band="clarify", outcome="picked:invoice-download", entry="export-failed")
    follow = ticket(at=NOW - timedelta(days=1, hours=23), opened_by=question(entry="invoice-download"))
    quality = _quality([picked], [follow])
    assert [(a.entry_id, a.followed.part) for a in quality.articles] == [("invoice-download", 1)]


def test_the_expectation_is_what_kb_check_simulates_else_the_setting() -> None:
    simulated = expected_precision(KnowledgeBaseHolder(SAMPLE_KB, matcher="lexical"), setting=0.95)
    assert simulated.source.startswith("what kb check expects")
    assert simulated.precision is not None and 0.5 <= simulated.precision <= 1.0
    # Two entries: the simulation answers nothing, so it expects no precision.
    entries = [
        KBEntry(id="a", title="A", questions=("how do I reset", "reset please"), answer="x"),
        KBEntry(id="b", title="B", questions=("refund me", "money back"), answer="y"),
    ]
    tiny = expected_precision(KnowledgeBase.build(entries, matcher="lexical"), setting=0.93)
    assert tiny.precision == 0.93 and tiny.source.startswith("the ANSWER_PRECISION target")
