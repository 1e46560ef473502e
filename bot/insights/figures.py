"""The report's figures, computed from a window's rows (`storage/reports_repo.py`). Each figure is
defined in docs/REPORTS.md with the query behind it, and in one line in `definitions` (shown on the
HTML report); keep the three in step.

Pure: rows in, figures out, so every definition is tested without a database. A share with nothing to
divide by is `None` ("n/a"), never a division by zero.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.tickets.model import PRIORITIES
from storage.reports_repo import DecisionRow, IncidentQuestion, TicketRow

FOLLOW_UP = timedelta(hours=24)
"""A ticket this soon after an answer, from the same person on the same topic, means the answer did
not settle the question."""

ANSWERED = frozenset({"answered", "solved", "still_need_help"})
"""Outcomes of a question the bot answered with an article (besides `picked:<article>`)."""
ESCALATED = frozenset({"escalated", "still_need_help", "none_of_these"})
"""Outcomes of a question that ended with a person (a ticket)."""
PICKED = "picked:"


def was_answered(row: DecisionRow) -> bool:
    """The bot showed an article: at once (band `answer`) or after a "did you mean" pick."""
    return row.outcome in ANSWERED or row.outcome.startswith(PICKED)


def article_of(band: str | None, top_entry_id: str | None, outcome: str | None) -> str | None:
    """The article a question was answered with: the pick after a "did you mean", else the best
    match. (Once a picked answer is rated, the pick is no longer stored: the best match stands in.)"""
    if outcome and outcome.startswith(PICKED):
        return outcome.removeprefix(PICKED)
    if band in ("answer", "clarify"):
        return top_entry_id
    return None


@dataclass(frozen=True, slots=True)
class Window:
    """`(start, end]`: what happened after `start`, up to and including `end` (the report's "now")."""

    start: datetime
    end: datetime

    @classmethod
    def last(cls, days: int, *, now: datetime) -> Window:
        return cls(now - timedelta(days=days), now)

    @property
    def days(self) -> int:
        return max(1, round((self.end - self.start) / timedelta(days=1)))

    @property
    def previous(self) -> Window:
        """The window of the same length just before this one (what trends compare with)."""
        return Window(self.start - (self.end - self.start), self.start)


@dataclass(frozen=True, slots=True)
class Share:
    """`part` of `whole`; `value` is None when `whole` is 0."""

    part: int
    whole: int

    @property
    def value(self) -> float | None:
        return self.part / self.whole if self.whole else None

    def percent(self, empty: str = "n/a") -> str:
        value = self.value
        return empty if value is None else f"{value:.0%}"


@dataclass(frozen=True, slots=True)
class Spread:
    """The median and 90th percentile of some durations (None when there were none)."""

    count: int
    p50: timedelta | None
    p90: timedelta | None

    @classmethod
    def of(cls, durations: Iterable[timedelta]) -> Spread:
        seconds = sorted(d.total_seconds() for d in durations)
        if not seconds:
            return cls(0, None, None)
        return cls(
            len(seconds),
            timedelta(seconds=percentile(seconds, 0.5)),
            timedelta(seconds=percentile(seconds, 0.9)),
        )


def percentile(ordered: Sequence[float], q: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default) of sorted values."""
    if not ordered:
        raise ValueError("no values")
    position = (len(ordered) - 1) * q
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True, slots=True)
class Clarified:
    """Questions the bot answered with "did you mean", and how each ended."""

    total: int = 0
    picked: int = 0
    picked_solved: int = 0
    picked_still_needed_help: int = 0
    none_of_these: int = 0
    no_reply: int = 0
    escalated: int = 0


@dataclass(frozen=True, slots=True)
class Csat:
    """Ratings of tickets closed in the window. The bot asks for one when the customer confirms the
    close ("Yes, it's solved"); a ticket closed for lack of an answer is not asked."""

    asked: int = 0
    distribution: tuple[int, int, int, int, int] = (0, 0, 0, 0, 0)

    @property
    def rated(self) -> int:
        return sum(self.distribution)

    @property
    def response_rate(self) -> Share:
        return Share(self.rated, self.asked)

    @property
    def average(self) -> float | None:
        if not self.rated:
            return None
        return (
            sum(score * count for score, count in zip(range(1, 6), self.distribution, strict=True))
            / self.rated
        )


@dataclass(frozen=True, slots=True)
class PlatformFigures:
    questions: int = 0
    answered: int = 0
    tickets: int = 0


@dataclass(frozen=True, slots=True)
class IncidentFigures:
    """Questions about one incident, and how many of the people the status answer settled (they
    opened no ticket within `FOLLOW_UP`)."""

    title: str
    impact: str
    asked: int
    people: int
    settled: int


@dataclass(frozen=True, slots=True)
class Day:
    day: date
    questions: int = 0
    answered: int = 0
    escalated: int = 0
    tickets: int = 0

    @property
    def other(self) -> int:
        """Neither answered nor escalated: a "did you mean" left unanswered, or still pending."""
        return max(self.questions - self.answered - self.escalated, 0)


@dataclass(frozen=True, slots=True)
class Answers:
    """The answered questions of a window and which of them a ticket followed: what deflection and
    answer quality are computed from."""

    answered: tuple[DecisionRow, ...]
    followed: frozenset[int]
    """Ids of answered questions followed by "I still need help" or a ticket on the topic."""
    recent: frozenset[int]
    """Ids of answered questions younger than `FOLLOW_UP` when the report was made: not settled yet."""

    @property
    def deflected(self) -> int:
        return len(self.answered) - len(self.followed)


@dataclass(frozen=True, slots=True)
class Figures:
    """Everything the report counts over one window."""

    window: Window
    questions: int = 0
    answered: int = 0
    answered_after_clarifying: int = 0
    solved: int = 0
    deflected: int = 0
    deflection_pending: int = 0
    clarified: Clarified = field(default_factory=Clarified)
    escalations: tuple[tuple[str, int], ...] = ()
    tickets_opened: int = 0
    tickets_closed: int = 0
    tickets_reopened: int = 0
    first_response: tuple[tuple[str, Spread], ...] = ()
    unanswered: int = 0
    sla: Share = Share(0, 0)
    resolution: Spread = Spread(0, None, None)
    csat: Csat = field(default_factory=Csat)
    platforms: tuple[tuple[str, PlatformFigures], ...] = ()
    incidents_on: int = 0
    incidents: tuple[IncidentFigures, ...] = ()
    days: tuple[Day, ...] = ()

    @property
    def empty(self) -> bool:
        """Nothing happened in the window: the report says so instead of showing zeros and n/a."""
        return not (self.questions or self.tickets_opened or self.tickets_closed or self.incidents)

    @property
    def deflection(self) -> Share:
        """Deflected questions among all questions asked."""
        return Share(self.deflected, self.questions)

    @property
    def status_settled(self) -> int:
        return sum(incident.settled for incident in self.incidents)

    @property
    def status_asked(self) -> int:
        return sum(incident.asked for incident in self.incidents)


class _TicketsByPerson:
    """Tickets per requester, by opening time: "did this person open a ticket soon after?"."""

    def __init__(self, tickets: Iterable[TicketRow]) -> None:
        self._by_person: dict[str, list[TicketRow]] = defaultdict(list)
        for ticket in sorted(tickets, key=lambda t: (t.created_at, t.id)):
            self._by_person[ticket.requester_key].append(ticket)
        self._times = {person: [t.created_at for t in rows] for person, rows in self._by_person.items()}

    def after(self, person: str, at: datetime, within: timedelta = FOLLOW_UP) -> list[TicketRow]:
        rows = self._by_person.get(person, [])
        times = self._times.get(person, [])
        return rows[bisect.bisect_left(times, at) : bisect.bisect_right(times, at + within)]


def _on_topic(ticket: TicketRow, question: DecisionRow) -> bool:
    """A ticket is about an answered question when that question opened it ("I still need help"),
    when the question that opened it matched the same article, or when it was asked for in words
    (a person, a ticket) in the same conversation: the DM, or the channel and its threads."""
    if ticket.decision_id == question.id:
        return True
    if ticket.decision_id is not None:
        asked_about = article_of(ticket.decision_band, ticket.decision_top_entry_id, ticket.decision_outcome)
        return asked_about is not None and asked_about == article_of(
            question.band, question.top_entry_id, question.outcome
        )
    return ticket.conversation_key.startswith(question.conversation_key)


def answers(decisions: Sequence[DecisionRow], tickets: Sequence[TicketRow], *, as_of: datetime) -> Answers:
    """The answered questions and which of them a ticket on the topic followed within `FOLLOW_UP`.
    `tickets` must cover `FOLLOW_UP` past the window."""
    by_person = _TicketsByPerson(tickets)
    answered = tuple(row for row in decisions if was_answered(row))
    followed = frozenset(
        row.id
        for row in answered
        if row.outcome == "still_need_help"
        or any(_on_topic(ticket, row) for ticket in by_person.after(row.actor_key, row.at))
    )
    recent = frozenset(row.id for row in answered if row.at + FOLLOW_UP > as_of and row.id not in followed)
    return Answers(answered, followed, recent)


def _clarified(decisions: Iterable[DecisionRow]) -> Clarified:
    endings: Counter[str] = Counter()
    for row in decisions:
        if row.band != "clarify":
            continue
        endings["total"] += 1
        if row.outcome.startswith(PICKED) or row.outcome in ("solved", "still_need_help"):
            endings["picked"] += 1
            endings["picked_solved"] += row.outcome == "solved"
            endings["picked_still_needed_help"] += row.outcome == "still_need_help"
        elif row.outcome == "none_of_these":
            endings["none_of_these"] += 1
        elif row.outcome == "clarifying":
            endings["no_reply"] += 1
        else:
            endings["escalated"] += 1
    return Clarified(**endings)


def _first_response(
    opened: Sequence[TicketRow], replies: dict[int, datetime], as_of: datetime
) -> tuple[tuple[tuple[str, Spread], ...], int, Share]:
    """Per priority, the time to the first reply by a person; how many have none yet; and the share
    of tickets answered by their target, among those answered or past it."""
    delays: dict[str, list[timedelta]] = defaultdict(list)
    met = decided = unanswered = 0
    for ticket in opened:
        reply = replies.get(ticket.id)
        if reply is None:
            unanswered += 1
            if ticket.first_response_due <= as_of:
                decided += 1  # past its target with no reply: missed
            continue
        delays[ticket.priority].append(reply - ticket.created_at)
        decided += 1
        met += reply <= ticket.first_response_due
    known = [p.value for p in PRIORITIES]
    order = known + sorted(set(delays) - set(known))
    spreads = tuple((priority, Spread.of(delays[priority])) for priority in order if delays.get(priority))
    return spreads, unanswered, Share(met, decided)


def _csat(closed: Iterable[TicketRow]) -> Csat:
    asked = 0
    counts = [0, 0, 0, 0, 0]
    for ticket in closed:
        if ticket.closed_how != "confirmed":
            continue
        asked += 1
        if ticket.rating is not None and 1 <= ticket.rating <= 5:
            counts[ticket.rating - 1] += 1
    return Csat(asked, (counts[0], counts[1], counts[2], counts[3], counts[4]))


def _incidents(asked: Sequence[IncidentQuestion], by_person: _TicketsByPerson) -> tuple[IncidentFigures, ...]:
    grouped: dict[int, list[IncidentQuestion]] = defaultdict(list)
    for row in asked:
        grouped[row.incident_id].append(row)
    figures = []
    for rows in grouped.values():
        settled = sum(1 for row in rows if not by_person.after(row.actor_key, row.asked_at))
        figures.append(
            IncidentFigures(
                title=rows[0].title,
                impact=rows[0].impact,
                asked=len(rows),
                people=len({row.actor_key for row in rows}),
                settled=settled,
            )
        )
    return tuple(sorted(figures, key=lambda f: -f.asked))


class _LocalDates:
    """Calendar dates in a zone, computed once per quarter-hour of UTC time: every zone's offset is
    a whole number of quarter-hours, so a local midnight never falls inside one."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone
        self._known: dict[int, date] = {}

    def __call__(self, moment: datetime) -> date:
        key = int(moment.timestamp()) // 900
        found = self._known.get(key)
        if found is None:
            found = self._known[key] = datetime.fromtimestamp(key * 900, self.zone).date()
        return found


def _days(
    window: Window, decisions: Iterable[DecisionRow], opened: Iterable[TicketRow], zone: ZoneInfo
) -> tuple[Day, ...]:
    local = _LocalDates(zone)
    first, last = local(window.start), local(window.end)
    counts: dict[date, Counter[str]] = {
        first + timedelta(days=i): Counter() for i in range((last - first).days + 1)
    }
    for row in decisions:
        day = counts.setdefault(local(row.at), Counter())
        day["questions"] += 1
        day["answered"] += was_answered(row)
        day["escalated"] += row.outcome in ESCALATED and not was_answered(row)
    for ticket in opened:
        counts.setdefault(local(ticket.created_at), Counter())["tickets"] += 1
    return tuple(Day(day, **counts[day]) for day in sorted(counts))


def compute(
    window: Window,
    *,
    decisions: Sequence[DecisionRow],
    opened: Sequence[TicketRow],
    followups: Sequence[TicketRow],
    closed: Sequence[TicketRow],
    reopened: int,
    replies: dict[int, datetime],
    incident_questions: Sequence[IncidentQuestion],
    incidents_on: int,
    as_of: datetime,
    zone: ZoneInfo,
) -> tuple[Figures, Answers]:
    """The window's figures. `opened`: tickets opened in the window; `followups`: tickets opened from
    its start to `FOLLOW_UP` after its end (what deflection looks at); `replies`: first replies by a
    person to the tickets opened in it; `as_of`: when the report is made."""
    answered = answers(decisions, followups, as_of=as_of)
    by_person = _TicketsByPerson(followups)
    platforms: dict[str, Counter[str]] = defaultdict(Counter)
    for row in decisions:
        platforms[row.platform]["questions"] += 1
        platforms[row.platform]["answered"] += was_answered(row)
    for ticket in opened:
        platforms[ticket.platform]["tickets"] += 1
    first_response, unanswered, sla = _first_response(opened, replies, as_of)
    reasons = Counter(ticket.reason for ticket in opened)
    figures = Figures(
        window=window,
        questions=len(decisions),
        answered=len(answered.answered),
        answered_after_clarifying=sum(1 for row in answered.answered if row.band == "clarify"),
        solved=sum(1 for row in decisions if row.outcome == "solved"),
        deflected=answered.deflected,
        deflection_pending=len(answered.recent),
        clarified=_clarified(decisions),
        escalations=tuple(sorted(reasons.items(), key=lambda item: (-item[1], item[0]))),
        tickets_opened=len(opened),
        tickets_closed=len(closed),
        tickets_reopened=reopened,
        first_response=first_response,
        unanswered=unanswered,
        sla=sla,
        resolution=Spread.of(
            t.closed_at - t.created_at for t in closed if t.closed_at is not None and t.closed_how != "erased"
        ),
        csat=_csat(closed),
        platforms=tuple((name, PlatformFigures(**counts)) for name, counts in sorted(platforms.items())),
        incidents_on=incidents_on,
        incidents=_incidents(incident_questions, by_person),
        days=_days(window, decisions, opened, zone),
    )
    return figures, answered
