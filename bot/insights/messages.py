"""The report's wording, in chat: a compact summary as fields. Customers' names and ids never appear;
their questions are quoted on one clipped line, with markdown, code and mentions made inert."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta

from bot.core.events import Actor, Field, OutboundMessage
from bot.core.links import unmask_links
from bot.insights.figures import Figures, Share, Spread
from bot.insights.gaps import Gap
from bot.insights.quality import Quality
from bot.insights.report import Report

REASONS = {
    "low_confidence": "not sure",
    "not_covered": "declined topic",
    "still_need_help": "still needed help",
    "clarify_declined": "none of these",
    "none_of_these": "none of these",
    "asked_for_person": "asked for a person",
    "frustration": "frustrated",
    "repeat": "asked again",
    "requested": "asked for a ticket",
    "reaction": "flagged by staff",
}
QUOTE_LIMIT = 90
GAPS_IN_CHAT = 3
ARTICLES_IN_CHAT = 5

# A platform's mention syntax (Slack `<@U123>`, `<!here>`, `<#C1>`; Discord `<@123>`, `<@&1>`,
# `<#1>`): inert in our messages anyway, but it would still show someone's id.
_MENTION = re.compile(r"<[@#!][^<>\s]{0,80}>")


def inert(text: str, limit: int = QUOTE_LIMIT) -> str:
    """A customer's words inside one line of a staff report: on one line, clipped, with markdown,
    code and link marks flattened and mention tokens replaced, so a question cannot add lines,
    formatting, a link or someone's id of its own."""
    # `[label](url)` is a link on both platforms: a question could hide any address behind words.
    plain = _MENTION.sub("@…", unmask_links(text[: limit * 4]))
    plain = plain.replace("`", "'").replace("*", "").replace("_", " ").replace("~", "").replace("|", "/")
    single = " ".join(plain.split())
    return single if len(single) <= limit else single[: limit - 1].rstrip() + "…"


def duration(delta: timedelta | None) -> str:
    """`40 s`, `12 min`, `3.5 h`, `2.1 d`; `n/a` for none."""
    if delta is None:
        return "n/a"
    seconds = delta.total_seconds()
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def trend(now: int, before: int) -> str:
    """Against the previous window: `+12%`, `−5%`, `new`, `same`."""
    if now == before:
        return "same"
    if before == 0:
        return "new"
    change = (now - before) / before
    return f"{'+' if change > 0 else '−'}{abs(change):.0%}"


def count(n: int, one: str, many: str = "") -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def with_trend(now: int, before: int) -> str:
    return f"{now} ({trend(now, before)} vs {before})"


def share(part: Share, one: str, many: str = "") -> str:
    """`75% of 4 questions`; `n/a (no questions)` when there is none to divide by."""
    value = part.value
    return (
        f"n/a (no {many or one + 's'})" if value is None else f"{value:.0%} of {count(part.whole, one, many)}"
    )


def spread(value: Spread) -> str:
    return f"{duration(value.p50)} / {duration(value.p90)}"


def reason_label(reason: str) -> str:
    return REASONS.get(reason, reason.replace("_", " "))


def period(report: Report) -> str:
    zone = report.zone
    start = report.window.start.astimezone(zone)
    end = report.window.end.astimezone(zone)
    return f"{start:%a %d %b %H:%M} – {end:%a %d %b %H:%M} ({zone.key})"


def clarified_text(figures: Figures) -> str:
    c = figures.clarified
    if not c.total:
        return "none"
    return (
        f"{c.total}: {c.picked} picked an article ({c.picked_solved} solved, "
        f"{c.picked_still_needed_help} still needed help), {c.none_of_these} none of these, "
        f"{c.no_reply} no reply, {c.escalated} escalated at once"
    )


def first_response_text(figures: Figures) -> str:
    parts = [f"{priority} {spread(value)}" for priority, value in figures.first_response]
    if figures.unanswered:
        parts.append(f"{figures.unanswered} not answered yet")
    return " · ".join(parts) or "no tickets"


def csat_text(figures: Figures) -> str:
    csat = figures.csat
    if not csat.asked:
        return "n/a (no ticket closed with the customer's confirmation, so none was asked for)"
    if csat.average is None:
        return f"no ratings yet (0 of {csat.asked} asked)"
    stars = " ".join(f"{score}★ {count}" for score, count in zip(range(1, 6), csat.distribution, strict=True))
    rate = csat.response_rate.percent()
    return f"{csat.average:.1f} / 5 from {csat.rated} of {csat.asked} asked ({rate}); {stars}"


def platforms_text(figures: Figures) -> str:
    return (
        " · ".join(
            f"{name} {count(p.questions, 'question')}, {p.answered} answered, {count(p.tickets, 'ticket')}"
            for name, p in figures.platforms
        )
        or "none"
    )


def incidents_text(figures: Figures) -> str:
    if not figures.incidents_on and not figures.incidents:
        return "none"
    asked = figures.status_asked
    settled = f", {figures.status_settled} settled by the status answer" if asked else ""
    return f"{figures.incidents_on} on; {count(asked, 'question')} about them{settled}"


def quality_text(quality: Quality) -> str:
    followed = quality.overall
    if followed.value is None or quality.precision is None:
        return "n/a (no answers settled yet)"
    text = (
        f"{followed.percent()} of {count(followed.whole, 'answer')} followed by a ticket: precision at least "
        f"{quality.precision:.2f}"
    )
    if quality.expected_precision is not None:
        text += f", expected {quality.expected_precision:.2f}"
    if quality.below_expectation:
        text += " (clearly below)"
    misleading = quality.misleading[:ARTICLES_IN_CHAT]
    if misleading:
        text += "; misleading: " + ", ".join(
            f"`{a.entry_id}` {a.followed.part} of {a.followed.whole}" for a in misleading
        )
    return text


def gap_line(gap: Gap) -> str:
    nearest = f" (nearest: `{gap.nearest.entry_id}`, {gap.nearest.sureness})" if gap.nearest else ""
    return (
        f"{gap.people} people, {count(gap.size, 'question')}: \u201c{inert(gap.examples[0])}\u201d{nearest}"
    )


def gaps_text(gaps: Sequence[Gap], asked: int) -> str:
    if not gaps:
        return f"none ({count(asked, 'unanswered question')}; no topic asked by two people or more)"
    return "\n".join(f"{i}. {gap_line(gap)}" for i, gap in enumerate(gaps[:GAPS_IN_CHAT], 1))


def summary_fields(report: Report) -> tuple[Field, ...]:
    now, before = report.current, report.previous
    return (
        Field(name="Questions", value=with_trend(now.questions, before.questions)),
        Field(
            name="Answered by the bot",
            value=f"{with_trend(now.answered, before.answered)}; "
            f"{share(Share(now.answered, now.questions), 'question')}",
        ),
        Field(name="Confirmed solved", value=with_trend(now.solved, before.solved)),
        Field(
            name="Deflected",
            value=f"{with_trend(now.deflected, before.deflected)}; {share(now.deflection, 'question')}"
            + (f" ({now.deflection_pending} answered in the last 24 h)" if now.deflection_pending else ""),
        ),
        Field(name="Did you mean", value=clarified_text(now), inline=False),
        Field(
            name="Escalations",
            value=" · ".join(f"{reason_label(r)} {n}" for r, n in now.escalations) or "none",
            inline=False,
        ),
        Field(
            name="Tickets",
            value=f"{now.tickets_opened} opened ({trend(now.tickets_opened, before.tickets_opened)} vs "
            f"{before.tickets_opened}) · {now.tickets_closed} closed · {now.tickets_reopened} reopened",
        ),
        Field(name="First response p50 / p90", value=first_response_text(now), inline=False),
        Field(name="SLA met", value=share(now.sla, "ticket due", "tickets due")),
        Field(name="Resolution p50 / p90", value=f"{spread(now.resolution)} ({now.resolution.count} closed)"),
        Field(name="CSAT", value=csat_text(now), inline=False),
        Field(name="By platform", value=platforms_text(now), inline=False),
        Field(name="Incidents", value=incidents_text(now), inline=False),
        Field(name="Answer quality", value=quality_text(report.quality), inline=False),
        Field(name="Knowledge gaps", value=gaps_text(report.gaps, report.gap_questions), inline=False),
    )


def summary(report: Report, *, footer: str | None = None, private_to: Actor | None = None) -> OutboundMessage:
    """The report in chat. Neutral: the adapters render fields as their platform does."""
    days = report.window.days
    title = f"Support report: last {days} day{'s' if days != 1 else ''}"
    if report.empty:
        return OutboundMessage(
            title=title,
            text=f"{period(report)}\nNo questions, tickets or questions about incidents in this window: "
            "nothing to report yet.",
            footer=footer,
            private_to=private_to,
        )
    return OutboundMessage(
        title=title,
        text=f"{period(report)}. Trends compare with the {'day' if days == 1 else f'{days} days'} before.",
        fields=summary_fields(report),
        footer=footer,
        private_to=private_to,
    )
