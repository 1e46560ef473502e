"""Which unanswered questions a report looks for knowledge gaps among, with declined topics about."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.core import privacy
from bot.core.events import Actor, Platform
from bot.insights import gaps as gap_finder
from bot.insights import report
from bot.insights.gaps import Gap, GapQuestion
from storage import reports_repo
from tests.harness import BotHarness

THEME = [
    "how do I change the colour of the dashboard theme?",
    "can I change the dashboard theme colour to dark?",
    "dark mode for the dashboard theme?",
]

START = datetime(2026, 12, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Verdict:
    declined: str | None


@dataclass(frozen=True)
class Space:
    name: str = "words"


class DeclinedStillCatches:
    """A KB whose declined topic still catches every question asked again."""

    def declined_questions(self) -> list[str]:
        return []

    def ask_many(self, questions: Sequence[str]) -> list[Verdict]:
        return [Verdict(declined="n1" if "taxes" in q else None) for q in questions]


def _row(number: int, *, reason: str | None) -> reports_repo.DecisionRow:
    return reports_repo.DecisionRow(
        id=number,
        at=START + timedelta(minutes=number),
        actor_key=f"console:U{number}",
        platform="console",
        conversation_key=f"console:U{number}@c",
        band="escalate",
        top_entry_id=None,
        outcome="escalated",
        reason=reason,
        ticket_id=None,
    )


async def test_questions_a_declined_topic_still_catches_do_not_crowd_out_the_gaps(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only the newest MAX_QUESTIONS unanswered questions are clustered. Questions a declined topic
    still catches are settled: they must not take those places from the questions that are gaps."""
    monkeypatch.setattr(gap_finder, "MAX_QUESTIONS", 10)
    real = [_row(n, reason="low_confidence") for n in range(1, 4)]
    settled = [_row(n, reason=report.DECLINED_REASON) for n in range(4, 24)]  # newer, and more

    async def question_texts(_: Any, *, decision_ids: Sequence[int]) -> dict[int, str]:
        return {i: f"question {i}" if i < 4 else f"can you do my taxes {i}" for i in decision_ids}

    def find_gaps(questions: Sequence[GapQuestion], *_: Any, **__: Any) -> list[Gap]:
        return []

    monkeypatch.setattr(reports_repo, "question_texts", question_texts)
    monkeypatch.setattr(report, "topic_space", lambda _: Space())
    monkeypatch.setattr(gap_finder, "find_gaps", find_gaps)
    _, among, _ = await report._gaps(
        None,  # type: ignore[arg-type]
        kb=DeclinedStillCatches(),  # type: ignore[arg-type]
        decisions=[*real, *settled],
        limit=5,
    )
    assert among == 3, "the three real questions are looked at, however many settled ones came after"


async def test_settled_questions_are_read_back_in_batches_not_one_by_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With all but one place taken, what is read back next is still a batch: a query and an ask per
    row would make a report over a busy declined topic take thousands of each."""
    monkeypatch.setattr(gap_finder, "MAX_QUESTIONS", 20)
    settled = [_row(n, reason=report.DECLINED_REASON) for n in range(1, 82)]
    real = [_row(n, reason="low_confidence") for n in range(82, 101)]  # the newest 19
    reads: list[int] = []

    async def question_texts(_: Any, *, decision_ids: Sequence[int]) -> dict[int, str]:
        reads.append(len(decision_ids))
        return {i: f"question {i}" if i >= 82 else f"can you do my taxes {i}" for i in decision_ids}

    monkeypatch.setattr(reports_repo, "question_texts", question_texts)
    monkeypatch.setattr(report, "topic_space", lambda _: Space())
    monkeypatch.setattr(gap_finder, "find_gaps", lambda *_, **__: [])
    _, among, _ = await report._gaps(
        None,  # type: ignore[arg-type]
        kb=DeclinedStillCatches(),  # type: ignore[arg-type]
        decisions=[*settled, *real],
        limit=5,
    )
    assert among == 19
    assert sum(reads) == 100, "read back as far as 5 x MAX_QUESTIONS"
    assert len(reads) <= 20, reads


async def test_erased_questions_are_not_a_knowledge_gap(bot: BotHarness) -> None:
    """Three people whose questions were erased asked nothing the team can read: "removed at the
    person's request" three times is not a topic to teach the bot."""
    for number, question in enumerate(THEME):
        asker = Actor(platform=Platform.CONSOLE, id=f"C{number + 10}", display_name=f"Customer {number}")
        await bot.says(asker, question)
        bot.clock.advance(minutes=5)
    (before,) = await bot.staff_runs("/support report")
    assert "Knowledge gaps" in {f.name for f in before.delivery.message.fields}
    for number in range(len(THEME)):
        async with bot.bot.database.transaction() as session:
            assert await privacy.erase(session, subject=f"console:C{number + 10}", now=bot.clock.now)
    (after,) = await bot.staff_runs("/support report")
    assert privacy.ERASED not in after.text
    assert "Knowledge gaps: none" in after.text, after.text
