"""The weekly digest: at REPORT_SCHEDULE (in REPORT_TIMEZONE) the report on the period since the last
one goes to the staff channel, and its HTML page and charts to REPORT_DIR.

Runs in every bot process; a claim in the database (the one inbound events use) makes sure exactly
one of them posts each digest. The main chart goes with the message as an image (Slack's external
upload, a Discord attachment; the console prints where the file is); when it cannot be attached the
digest still goes out and says so, and names where the page and the chart were written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from bot.core.context import Services
from bot.core.events import Attachment, Delivery, OutboundMessage
from bot.core.outbound import Outbound
from bot.insights import charts, lessons, report, report_html
from bot.insights import messages as words
from bot.insights.schedule import Schedule
from bot.logs import correlation_id, new_correlation_id
from storage import events_repo
from storage.db import Database

log = logging.getLogger(__name__)

CLAIM_PLATFORM = "digest"
"""The digest's claims sit beside inbound events' (platform, event id) claims."""
CATCH_UP = timedelta(hours=12)
"""A digest no process was running to send goes out when one starts within this long after it; later
than that (half a day's schedule), the next one is nearer than the missed one is news."""


@dataclass(frozen=True, slots=True)
class Sent:
    page: Path
    chart: Path
    message: OutboundMessage


def folder_for(base: Path, due: datetime, schedule: Schedule) -> Path:
    """One folder per digest, named by its local time: `2026-11-30_0900`."""
    return base / f"{due.astimezone(schedule.zone):%Y-%m-%d_%H%M}"


CHART_ALT = "Questions per day, by how they ended, and tickets opened per day"


def digest_message(built: report.Report, *, page: Path, chart: Path, problem: str = "") -> OutboundMessage:
    """`problem`: why the page and chart could not be written (then nothing is attached)."""
    if problem:
        footer = f"The full report and its chart could not be written: {problem}"
    else:
        footer = f"Full report: {page} · main chart: {chart}"
    summary = words.summary(built, footer=footer)
    text = summary.text
    quality = built.quality
    if quality.below_expectation:
        misleading = ", ".join(f"`{a.entry_id}`" for a in quality.misleading) or "no single article"
        text += (
            f"\n⚠️ Answers were clearly less precise than the knowledge base expects "
            f"({words.quality_text(quality)}). Articles that mislead: {misleading}."
        )
    return OutboundMessage(
        title=f"Weekly digest: {summary.title}" if built.window.days == 7 else summary.title,
        text=text,
        fields=summary.fields,
        footer=summary.footer,
        buttons=lessons.teach_buttons(built, shown=words.GAPS_IN_CHAT),
        attachments=()
        if problem
        else (Attachment(filename=chart.name, path=chart, title="Main chart", alt_text=CHART_ALT),),
    )


async def send_digest(
    database: Database,
    services: Services,
    outbound: Outbound,
    *,
    due: datetime,
    schedule: Schedule,
    base: Path,
) -> Sent | None:
    """The digest due at `due`, unless another process already sent it (None then)."""
    async with database.transaction() as session:
        claimed = await events_repo.claim_event(
            session, platform=CLAIM_PLATFORM, event_id=f"report:{due.isoformat()}"
        )
    if not claimed:
        return None
    settings = services.settings
    async with database.session() as session:
        built = await report.build(
            session,
            kb=services.kb,
            days=schedule.period.days,
            now=due,
            start=schedule.previous(due),
            zone=schedule.zone,
            answer_precision=settings.answer_precision,
        )
    folder = folder_for(base, due, schedule)
    page, chart, problem = folder / report_html.PAGE, folder / charts.MAIN, ""
    try:
        await asyncio.to_thread(report_html.write, built, folder)
    except OSError as error:
        # The figures are in the message: the week's digest must not be lost for want of files.
        problem = f"{error.filename or folder}: {error.strerror or error}"
        log.error("could not write the digest's report (REPORT_DIR=%s): %s", base, problem)
    message = digest_message(built, page=page, chart=chart, problem=problem)
    await outbound.send(Delivery(conversation=services.staff.staff_channel, message=message))
    log.info("digest sent to the staff channel; report %s", f"not written ({problem})" if problem else page)
    return Sent(page, chart, message)


async def run_forever(
    database: Database,
    services: Services,
    outbound: Outbound,
    *,
    schedule: Schedule,
    base: Path,
    stop: asyncio.Event,
    clock: Callable[[], datetime] | None = None,
) -> None:
    """Wait for each time the schedule fires and send that digest, until `stop` is set; first, the
    one missed while no process ran, if it is recent (`CATCH_UP`). A digest that fails is logged and
    the next one is awaited: a report must never stop the bot."""
    now = clock or services.clock
    last: datetime | None = None
    missed = schedule.previous(schedule.next_after(now()))
    if now() - missed < CATCH_UP:
        # No process ran at its time (a deploy, a restart): late beats a week without one. The
        # claim still makes it once, whichever process starts first.
        await _send_logged(database, services, outbound, due=missed, schedule=schedule, base=base)
    while not stop.is_set():
        # From the last digest on, not only from now: a timer that fires a hair early must not
        # bring the same digest round again.
        due = schedule.next_after(max(now(), last) if last is not None else now())
        last = due
        log.info(
            "next digest: %s %s (%s UTC)",
            f"{due.astimezone(schedule.zone):%a %d %b %Y %H:%M}",
            schedule.zone.key,
            f"{due:%H:%M}",
        )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, (due - now()).total_seconds()))
            return
        await _send_logged(database, services, outbound, due=due, schedule=schedule, base=base)


async def _send_logged(
    database: Database,
    services: Services,
    outbound: Outbound,
    *,
    due: datetime,
    schedule: Schedule,
    base: Path,
) -> None:
    """`send_digest` under a correlation id of its own; a failure is logged, never raised."""
    token = correlation_id.set(new_correlation_id())
    try:
        await send_digest(database, services, outbound, due=due, schedule=schedule, base=base)
    except Exception:
        log.exception("the digest due at %s failed; the next one is at its time", due.isoformat())
    finally:
        correlation_id.reset(token)
