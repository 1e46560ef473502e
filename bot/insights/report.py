"""One report: a window's figures beside the previous window's, answer quality and knowledge gaps,
read in one session and shown by the chat command, the HTML report and the digest alike."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.core.context import KnowledgeBase
from bot.core.privacy import ERASED, EXPIRED
from bot.insights import figures as fig
from bot.insights import gaps as gap_finder
from bot.insights.figures import Answers, Figures, Window
from bot.insights.gaps import Gap, GapQuestion
from bot.insights.kb_view import expected_precision, nearest_article, topic_space
from bot.insights.quality import Quality, assess
from bot.kb.model import MATCH_PREFIX
from bot.kb.teach import stored_key
from storage import reports_repo
from storage.session import DbSession

MAX_DAYS = 365


def days_of(text: str) -> int | None:
    """A report's number of days as typed (a whole number from 1 to MAX_DAYS), else None. The
    length is checked first: Python refuses to read a number of more than 4,300 digits."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 6 or not 1 <= int(text) <= MAX_DAYS:
        return None
    return int(text)


GAP_OUTCOMES = ("escalated", "none_of_these")
"""Questions the knowledge base did not answer: escalated at once, or after "None of these"."""


@dataclass(frozen=True, slots=True)
class Report:
    window: Window
    current: Figures
    previous: Figures
    quality: Quality
    gaps: tuple[Gap, ...]
    gap_questions: int
    """How many questions the gaps were found among."""
    topic_space: str
    made_at: datetime
    zone: ZoneInfo

    @property
    def empty(self) -> bool:
        return self.current.empty


async def _figures(
    session: DbSession, window: Window, *, as_of: datetime, zone: ZoneInfo
) -> tuple[Figures, Answers, list[reports_repo.DecisionRow]]:
    start, end = window.start, window.end
    decisions = await reports_repo.decisions(session, start=start, end=end)
    followups = await reports_repo.tickets_opened(session, start=start, end=end + fig.FOLLOW_UP)
    figures, answers = fig.compute(
        window,
        decisions=decisions,
        opened=[ticket for ticket in followups if ticket.created_at <= end],
        followups=followups,
        closed=await reports_repo.tickets_closed(session, start=start, end=end),
        reopened=await reports_repo.reopened(session, start=start, end=end),
        replies=await reports_repo.first_staff_replies(session, start=start, end=end),
        incident_questions=await reports_repo.incident_questions(session, start=start, end=end),
        incidents_on=await reports_repo.incidents_during(session, start=start, end=end),
        as_of=as_of,
        zone=zone,
    )
    return figures, answers, decisions


DECLINED_REASON = "not_covered"
"""Escalated because it found a topic staff declined: not a gap, a decision already taken."""

READ_BACK = 5
"""Unanswered questions read back for gaps: at most this many times MAX_QUESTIONS, so a flood of
questions a declined topic still catches costs a bounded number of asks."""


async def _gaps(
    session: DbSession, *, kb: KnowledgeBase, decisions: Sequence[reports_repo.DecisionRow], limit: int
) -> tuple[list[Gap], int, str]:
    """The knowledge gaps among the window's questions, how many unanswered questions there were,
    and the space they were grouped in."""
    unanswered = [row for row in decisions if row.outcome in GAP_OUTCOMES]
    # A topic staff declined is settled, also for the questions asked before it was declined. An
    # erased or expired question has no words left: three of them are not a topic either.
    declined = {stored_key(q) for q in [*kb.declined_questions(), ERASED, EXPIRED]}
    questions: list[GapQuestion] = []
    # The newest MAX_QUESTIONS that are not settled: read back from the newest, a batch at a time,
    # so questions a declined topic still catches do not take the places of the gaps'.
    end = len(unanswered)
    oldest = max(0, end - READ_BACK * gap_finder.MAX_QUESTIONS)
    while end > oldest and len(questions) < gap_finder.MAX_QUESTIONS:
        # What is missing, but not a few rows at a time (a query and an ask each).
        wanted = max(gap_finder.MAX_QUESTIONS - len(questions), gap_finder.MAX_QUESTIONS // 4, 1)
        batch = unanswered[max(oldest, end - wanted) : end]
        end -= len(batch)
        texts = await reports_repo.question_texts(session, decision_ids=[row.id for row in batch])
        asked = [(row, text) for row in batch if stored_key(text := texts.get(row.id, "")) not in declined]
        # A question a declined topic caught is settled while that topic stands; once staff forget
        # it, the question is a gap again. Asking again is the only way to tell: the decision does
        # not record which topic caught it. Matching is CPU work: off the event loop.
        caught = [text[:MATCH_PREFIX] for row, text in asked if row.reason == DECLINED_REASON]
        verdicts = await asyncio.to_thread(kb.ask_many, caught) if caught else []
        still = iter([verdict.declined is not None for verdict in verdicts])
        questions[:0] = [
            GapQuestion(row.id, row.actor_key, text)
            for row, text in asked
            if row.reason != DECLINED_REASON or not next(still)
        ]

    questions = questions[-gap_finder.MAX_QUESTIONS :]
    space = topic_space(kb)
    # Clustering (and embedding, with the semantic matcher) is CPU work: off the event loop.
    found = await asyncio.to_thread(
        gap_finder.find_gaps, questions, space, nearest=lambda text: nearest_article(kb, text), limit=limit
    )
    return found, len(questions), space.name


async def gaps_in(session: DbSession, *, kb: KnowledgeBase, window: Window) -> list[Gap]:
    """Every knowledge gap of a window (found again as the report found it, for a lesson)."""
    decisions = await reports_repo.decisions(session, start=window.start, end=window.end)
    found, _, _ = await _gaps(session, kb=kb, decisions=decisions, limit=gap_finder.MAX_QUESTIONS)
    return found


async def build(
    session: DbSession,
    *,
    kb: KnowledgeBase,
    days: int,
    now: datetime,
    zone: ZoneInfo,
    answer_precision: float,
    start: datetime | None = None,
) -> Report:
    """The report on the `days` before `now`, or from `start` (a digest: since the one before, which
    a change of the clocks puts an hour nearer or further). `answer_precision`: the
    ANSWER_PRECISION setting, the expectation when the KB has no simulated one."""
    window = Window.last(days, now=now) if start is None else Window(start, now)
    current, answers, decisions = await _figures(session, window, as_of=now, zone=zone)
    previous, _, _ = await _figures(session, window.previous, as_of=now, zone=zone)
    expectation = expected_precision(kb, setting=answer_precision)
    quality = assess(answers, expected_precision=expectation.precision, expectation=expectation.source)
    found, asked, space = await _gaps(session, kb=kb, decisions=decisions, limit=10)
    return Report(
        window=window,
        current=current,
        previous=previous,
        quality=quality,
        gaps=tuple(found),
        gap_questions=asked,
        topic_space=space,
        made_at=now,
        zone=zone,
    )
