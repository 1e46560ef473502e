"""What a lesson from the insights needs: a knowledge gap named so staff can teach from it (in a
button or a command), found again by that name, and the stored questions a lesson's replay asks
again to count how many it would take away from other articles."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.core.context import KnowledgeBase
from bot.core.events import Button
from bot.insights.figures import ANSWERED, PICKED, Window, article_of
from bot.insights.gaps import Gap
from bot.insights.report import Report, gaps_in
from storage import reports_repo
from storage.session import DbSession

TEACH_GAP = "kb.gap"
"""The action of a gap's Teach button (the report's, handled with the other lessons)."""
REPLAY_DAYS = 30
"""How far back the replay looks for questions other articles answered."""
REPLAY_LIMIT = 500
"""The newest of them, at most: each is asked of the KB twice (without and with the change)."""
# `g<question>-<days>-<end>`, or `g<question>-<minutes>m-<end>` for a window of no whole days.
_REF = re.compile(r"^g(\d{1,12})-(?:(\d{1,3})|(\d{1,6})m)-([0-9a-f]{1,10})$")
_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class GapRef:
    """A gap as staff name it: its most typical question, in the window of a report.

    Short (`g812-7-674a3f10`: the question, the window's days and its end), so it fits a Discord
    button's 100 characters with an article id beside it, and can be typed in a command. A digest's
    week the clocks changed in is an hour longer or shorter: its length is in minutes then
    (`g812-10140m-674a3f10`), so the gap is looked up in the very window the digest showed."""

    anchor: int
    window: Window

    @classmethod
    def of(cls, gap: Gap, window: Window) -> GapRef:
        return cls(gap.anchor, window)

    @classmethod
    def parse(cls, text: str) -> GapRef | None:
        found = _REF.match(text.strip().lower())
        if found is None:
            return None
        if found[2] is not None:
            length, fits = timedelta(days=int(found[2])), 1 <= int(found[2]) <= 365
        else:
            length, fits = int(found[3]) * _MINUTE, 1 <= int(found[3]) <= 366 * 24 * 60
        if not fits:
            return None
        try:
            end = datetime.fromtimestamp(int(found[4], 16), UTC)
        except (ValueError, OverflowError, OSError):  # past the year 9999: no report ends there
            return None
        return cls(int(found[1]), Window(end - length, end))

    @property
    def text(self) -> str:
        length = self.window.end - self.window.start
        whole_days = length == timedelta(days=length.days)
        shown = str(length.days) if whole_days else f"{round(length / _MINUTE)}m"
        # Rounded up to the second: the window found again still holds the report's last question.
        return f"g{self.anchor}-{shown}-{math.ceil(self.window.end.timestamp()):x}"


def teach_buttons(report: Report, *, shown: int) -> tuple[Button, ...]:
    """A Teach button for each of the first `shown` gaps: attach its questions to an article, or
    draft one (handled with the other lessons, bot/handlers/kb_admin.py)."""
    return tuple(
        Button(action_id=TEACH_GAP, label=f"Teach gap {number}", value=GapRef.of(gap, report.window).text)
        for number, gap in enumerate(report.gaps[:shown], 1)
    )


async def find_gap(session: DbSession, *, kb: KnowledgeBase, ref: GapRef) -> Gap | None:
    """The gap of the report's window that holds the named question, grouped in the KB's space as
    it is now; None when no gap holds it any more (the question was forgotten, or its topic is no
    longer asked by two people)."""
    return next(
        (gap for gap in await gaps_in(session, kb=kb, window=ref.window) if gap.has(ref.anchor)), None
    )


async def answered_elsewhere(
    session: DbSession, *, now: datetime, leave_out: frozenset[int] = frozenset()
) -> list[tuple[str, str]]:
    """(question, article) for the newest questions the bot answered with an article in the last
    `REPLAY_DAYS`: a lesson's replay asks them again, and those that would now go to the lesson's
    article are the ones it takes away from others. `leave_out`: the lesson's own questions."""
    rows = await reports_repo.answered_recently(
        session,
        since=now - timedelta(days=REPLAY_DAYS),
        outcomes=sorted(ANSWERED),
        picked_prefix=PICKED,
        limit=REPLAY_LIMIT,
    )
    rows = [row for row in rows if row.id not in leave_out]
    texts = await reports_repo.question_texts(session, decision_ids=[row.id for row in rows])
    pairs = []
    for row in rows:
        article = article_of(row.band, row.top_entry_id, row.outcome)
        if article is not None and row.id in texts:
            pairs.append((texts[row.id], article))
    return pairs
