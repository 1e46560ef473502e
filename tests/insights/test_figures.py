"""The report's figures from hand-made rows: each definition of docs/REPORTS.md, and the edges (an
empty window, answers too recent to judge, bot messages that are not a response)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from bot.insights.figures import Figures, Share, Spread, Window, compute, percentile
from storage.reports_repo import DecisionRow, IncidentQuestion, TicketRow

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
WINDOW = Window.last(7, now=NOW)
UTC_ZONE = ZoneInfo("UTC")
_ids = itertools.count(1)


def question(
    *,
    ago: timedelta = timedelta(days=2),
    who: str = "slack:U1",
    band: str = "answer",
    outcome: str = "answered",
    entry: str | None = "reset-password",
    where: str = "slack:T1:C1",
    platform: str = "slack",
    reason: str | None = None,
) -> DecisionRow:
    return DecisionRow(
        id=next(_ids),
        at=NOW - ago,
        actor_key=who,
        platform=platform,
        conversation_key=where,
        band=band,
        top_entry_id=entry,
        outcome=outcome,
        reason=reason,
        ticket_id=None,
    )


def ticket(
    *,
    at: datetime,
    who: str = "slack:U1",
    opened_by: DecisionRow | None = None,
    where: str = "slack:T1:C1:171.1",
    priority: str = "normal",
    reason: str = "low_confidence",
    due_in: timedelta = timedelta(hours=4),
    closed_after: timedelta | None = None,
    closed_how: str | None = None,
    rating: int | None = None,
    platform: str = "slack",
) -> TicketRow:
    return TicketRow(
        id=next(_ids),
        created_at=at,
        priority=priority,
        reason=reason,
        platform=platform,
        requester_key=who,
        conversation_key=where,
        state="closed" if closed_after is not None else "open",
        first_response_due=at + due_in,
        closed_at=at + closed_after if closed_after is not None else None,
        closed_how=closed_how,
        rating=rating,
        decision_id=opened_by.id if opened_by else None,
        decision_band=opened_by.band if opened_by else None,
        decision_top_entry_id=opened_by.top_entry_id if opened_by else None,
        decision_outcome=opened_by.outcome if opened_by else None,
    )


def figures(
    decisions: Sequence[DecisionRow] = (),
    tickets: Sequence[TicketRow] = (),
    *,
    closed: Sequence[TicketRow] = (),
    replies: dict[int, datetime] | None = None,
    incidents: Sequence[IncidentQuestion] = (),
    zone: ZoneInfo = UTC_ZONE,
    window: Window = WINDOW,
) -> Figures:
    result, _ = compute(
        window,
        decisions=list(decisions),
        opened=[t for t in tickets if window.start < t.created_at <= window.end],
        followups=list(tickets),
        closed=list(closed),
        reopened=0,
        replies=replies or {},
        incident_questions=list(incidents),
        incidents_on=len({i.incident_id for i in incidents}),
        as_of=NOW,
        zone=zone,
    )
    return result


def test_percentiles_interpolate_as_numpy_does() -> None:
    values = [3.0, 1.0, 10.0, 7.0, 2.0, 8.5]
    for q in (0.0, 0.5, 0.9, 1.0):
        assert percentile(sorted(values), q) == pytest.approx(np.percentile(values, q * 100))
    assert Spread.of([]) == Spread(0, None, None)
    assert Spread.of([timedelta(minutes=5)]).p90 == timedelta(minutes=5)


def test_an_empty_window_says_so_and_divides_nothing_by_zero() -> None:
    empty = figures()
    assert empty.empty
    assert empty.deflection == Share(0, 0) and empty.deflection.value is None
    assert empty.sla.value is None and empty.sla.percent() == "n/a"
    assert empty.csat.average is None and empty.csat.response_rate.value is None
    assert empty.resolution == Spread(0, None, None)
    assert [d.questions for d in empty.days] == [0] * 8  # the 8 calendar days the 7 x 24 h touch


def test_questions_answered_solved_and_deflected() -> None:
    solved = question(outcome="solved")
    answered = question(who="slack:U2")
    picked = question(who="slack:U3", band="clarify", outcome="picked:reset-password")
    escalated = question(who="slack:U4", band="escalate", outcome="escalated", entry=None)
    result = figures([solved, answered, picked, escalated])
    assert (result.questions, result.answered, result.solved) == (4, 3, 1)
    assert result.answered_after_clarifying == 1
    assert result.deflected == 3 and result.deflection == Share(3, 4)
    assert result.deflection_pending == 0


def test_a_ticket_on_the_same_topic_within_a_day_undoes_a_deflection() -> None:
    still_needed = question(outcome="still_need_help")
    same_article = question(who="slack:U2")
    later = question(who="slack:U2", ago=timedelta(days=1, hours=20), band="escalate", outcome="escalated")
    asked_in_words = question(who="slack:U3", where="slack:T1:D3")
    too_late = question(who="slack:U4")
    other_topic = question(who="slack:U5")
    other_person = question(who="slack:U6")
    other_topic_question = question(who="slack:U5", ago=timedelta(days=1), entry="refunds")
    tickets = [
        ticket(at=still_needed.at + timedelta(minutes=1), opened_by=still_needed),
        # The article matched again (even as an escalation's best guess) within 24 h.
        ticket(
            at=later.at,
            who="slack:U2",
            opened_by=question(
                who="slack:U2", band="clarify", outcome="none_of_these", ago=timedelta(days=1, hours=20)
            ),
        ),
        ticket(
            at=asked_in_words.at + timedelta(hours=3),
            who="slack:U3",
            where="slack:T1:D3",
            reason="asked_for_person",
        ),
        ticket(at=too_late.at + timedelta(hours=25), who="slack:U4", where="slack:T1:C1"),
        ticket(at=other_topic.at + timedelta(hours=1), who="slack:U5", opened_by=other_topic_question),
        ticket(at=other_person.at + timedelta(hours=1), who="slack:U7", where="slack:T1:C1"),
    ]
    result = figures(
        [still_needed, same_article, asked_in_words, too_late, other_topic, other_person], tickets
    )
    assert result.answered == 6
    assert result.deflected == 3  # too late, another topic, another person


def test_an_answer_younger_than_a_day_is_deflected_so_far_and_counted_as_pending() -> None:
    fresh = question(ago=timedelta(hours=3))
    settled = question(ago=timedelta(days=3), who="slack:U2")
    result = figures([fresh, settled])
    assert result.deflected == 2 and result.deflection_pending == 1


def test_clarifications_and_how_they_ended() -> None:
    rows = [
        question(band="clarify", outcome="picked:reset-password"),
        question(band="clarify", outcome="solved"),
        question(band="clarify", outcome="still_need_help"),
        question(band="clarify", outcome="none_of_these"),
        question(band="clarify", outcome="clarifying"),
        question(band="clarify", outcome="escalated", reason="frustration"),
        question(band="answer", outcome="answered"),
    ]
    c = figures(rows).clarified
    assert (c.total, c.picked, c.picked_solved, c.picked_still_needed_help) == (6, 3, 1, 1)
    assert (c.none_of_these, c.no_reply, c.escalated) == (1, 1, 1)


def test_first_response_counts_people_only_and_sla_counts_what_is_known() -> None:
    opened = NOW - timedelta(days=1)
    answered_fast = ticket(at=opened, priority="urgent", due_in=timedelta(minutes=15))
    answered_late = ticket(at=opened, priority="urgent", due_in=timedelta(minutes=15))
    overdue = ticket(at=opened, priority="normal", due_in=timedelta(hours=4))
    not_due_yet = ticket(at=NOW - timedelta(minutes=5), priority="normal", due_in=timedelta(hours=4))
    replies = {
        answered_fast.id: opened + timedelta(minutes=10),
        answered_late.id: opened + timedelta(minutes=30),
    }
    result = figures(tickets=[answered_fast, answered_late, overdue, not_due_yet], replies=replies)
    (urgent,) = [spread for priority, spread in result.first_response if priority == "urgent"]
    assert urgent == Spread(2, timedelta(minutes=20), timedelta(minutes=28))
    assert [priority for priority, _ in result.first_response] == ["urgent"]
    assert result.unanswered == 2
    assert result.sla == Share(1, 3)  # fast met; late and overdue missed; not due yet unknown


def test_resolution_and_csat_over_tickets_closed_in_the_window() -> None:
    opened = NOW - timedelta(days=3)
    closed = [
        ticket(at=opened, closed_after=timedelta(hours=2), closed_how="confirmed", rating=5),
        ticket(at=opened, closed_after=timedelta(hours=4), closed_how="confirmed", rating=3),
        ticket(at=opened, closed_after=timedelta(hours=6), closed_how="confirmed"),
        ticket(at=opened, closed_after=timedelta(hours=80), closed_how="no_answer"),
        ticket(at=opened, closed_after=timedelta(minutes=1), closed_how="erased"),
    ]
    result = figures(closed=closed)
    assert result.resolution.count == 4
    assert result.resolution.p50 == timedelta(hours=5)
    assert result.csat.asked == 3 and result.csat.rated == 2
    assert result.csat.distribution == (0, 0, 1, 0, 1)
    assert result.csat.average == 4.0
    assert result.csat.response_rate == Share(2, 3)


def test_escalations_by_reason_and_platforms() -> None:
    at = NOW - timedelta(days=1)
    tickets = [
        ticket(at=at, reason="low_confidence"),
        ticket(at=at, reason="low_confidence", platform="discord"),
        ticket(at=at, reason="asked_for_person"),
    ]
    rows = [question(), question(platform="discord", outcome="escalated", band="escalate")]
    result = figures(rows, tickets)
    assert result.escalations == (("low_confidence", 2), ("asked_for_person", 1))
    platforms = dict(result.platforms)
    assert (platforms["slack"].questions, platforms["slack"].answered, platforms["slack"].tickets) == (
        1,
        1,
        2,
    )
    assert (platforms["discord"].questions, platforms["discord"].answered, platforms["discord"].tickets) == (
        1,
        0,
        1,
    )


def test_questions_per_incident_and_how_many_the_status_answer_settled() -> None:
    opened = NOW - timedelta(days=1)

    def asked(who: str, *, incident: int = 1) -> IncidentQuestion:
        return IncidentQuestion(
            incident, f"Outage {incident}", "major", opened, None, who, opened + timedelta(minutes=5)
        )

    rows = [asked("slack:U1"), asked("slack:U2"), asked("slack:U3"), asked("slack:U1", incident=2)]
    tickets = [ticket(at=opened + timedelta(hours=1), who="slack:U2", reason="asked_for_person")]
    result = figures(tickets=tickets, incidents=rows)
    first = next(i for i in result.incidents if i.title == "Outage 1")
    assert (first.asked, first.people, first.settled) == (3, 3, 2)
    assert result.status_asked == 4 and result.status_settled == 3
    assert not result.empty


def test_days_are_calendar_days_of_the_report_time_zone() -> None:
    # 23:30 UTC on the 22nd is already the 23rd in Berlin.
    late = question(ago=NOW - datetime(2026, 11, 22, 23, 30, tzinfo=UTC))
    berlin = figures([late], zone=ZoneInfo("Europe/Berlin"))
    utc = figures([late])
    assert [d.day.day for d in berlin.days if d.questions] == [23]
    assert [d.day.day for d in utc.days if d.questions] == [22]


def test_the_previous_window_is_as_long_and_ends_where_this_one_starts() -> None:
    assert WINDOW.previous == Window(NOW - timedelta(days=14), NOW - timedelta(days=7))
    assert WINDOW.days == 7 and WINDOW.previous.days == 7
