"""The weekly digest: at REPORT_SCHEDULE (in REPORT_TIMEZONE) the report on the period since the last
one goes to the staff channel, and its HTML page and charts to REPORT_DIR.

Runs in every bot process; a claim in the database (the one inbound events use) makes sure exactly
one of them posts each digest. The message is built first and kept in that claim until it is posted
(bot/core/owed.py, as an event's replies are): a process killed between the claim and the post
leaves it owed, and another process's sweep posts it once the lease has run out.

The main chart goes with the message as an image (Slack's external upload, a Discord attachment; the
console prints where the file is); when it cannot be attached the digest still goes out and says
so, and names where the page and the chart were written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from bot.core import owed, periodic
from bot.core.context import PendingDelivery
from bot.core.dispatch import Dispatcher
from bot.core.events import Attachment, Delivery, OutboundMessage
from bot.insights import charts, lessons, report, report_html
from bot.insights import messages as words
from bot.insights.schedule import Schedule
from storage import events_repo

log = logging.getLogger(__name__)

CLAIM_PLATFORM = "digest"
"""The digest's claims sit beside inbound events' (platform, event id) claims."""
SCRATCH = re.compile(r"\.\d{4}-\d{2}-\d{2}_\d{4}\.")
"""The start of the name of a digest's scratch folder (`.2026-11-30_0900.x1y2z3`, see `_write_whole`)."""
SCRATCH_ABANDONED = timedelta(minutes=10)
"""A scratch folder this old was left by a process stopped while writing (one takes seconds)."""
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
    dispatcher: Dispatcher, *, due: datetime, schedule: Schedule, base: Path
) -> Sent | None:
    """The digest due at `due`, unless another process claimed it first (None then).

    Built and written first, then claimed with its message kept in the claim, in one transaction,
    then posted as the dispatcher posts an event's replies: so a process killed (or failing) after
    the claim leaves the message owed, not lost, and another process's sweep posts it after the
    lease, once. Processes reaching the same due time together may each build it (each file is
    moved into place whole); only the one whose claim commits posts it."""
    database, services = dispatcher.database, dispatcher.services
    event_id = f"report:{due.isoformat()}"
    settings = services.settings
    async with database.session() as session:
        # Claimed by now (a restart's catch-up, a slower process): nothing to build again.
        if await events_repo.is_claimed(session, platform=CLAIM_PLATFORM, event_id=event_id):
            return None
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
        await asyncio.to_thread(_write_whole, built, folder)
    except OSError as error:
        # The figures are in the message: the week's digest must not be lost for want of files.
        problem = f"{error.filename or folder}: {error.strerror or error}"
        log.error("could not write the digest's report (REPORT_DIR=%s): %s", base, problem)
    message = digest_message(built, page=page, chart=chart, problem=problem)
    # The chart goes by its path: a process on another host that posts it after a kill cannot read
    # it, and the adapter posts the digest saying the chart could not be attached (bot/adapters/files.py).
    delivery = Delivery(conversation=services.staff.staff_channel, message=message, idempotency_key=_key(due))
    replies = [PendingDelivery(delivery)]
    async with database.transaction() as session:
        claim = await events_repo.claim_event(
            session,
            platform=CLAIM_PLATFORM,
            event_id=event_id,
            owed=owed.encode(replies),
            owed_until=dispatcher.owed.until(),
            last=True,
        )
    if claim is None:
        return None
    await dispatcher.post_claimed(replies, claim)
    log.info("digest sent to the staff channel; report %s", f"not written ({problem})" if problem else page)
    return Sent(page, chart, message)


def _key(due: datetime) -> str:
    """The digest's idempotency key: one per due time (a Discord nonce holds 25 characters)."""
    return f"digest-{due:%Y%m%d%H%M}"


def _write_whole(built: report.Report, folder: Path) -> None:
    """The page and charts, written beside `folder` and moved into it file by file: another process
    writing the same digest at the same time never leaves a torn chart for the one that posts it."""
    folder.mkdir(parents=True, exist_ok=True)
    _remove_abandoned_scratch(folder.parent)
    scratch = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        report_html.write(built, scratch)
        for written in scratch.iterdir():
            os.replace(written, folder / written.name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _remove_abandoned_scratch(base: Path) -> None:
    """Scratch folders a process killed while writing a digest left in REPORT_DIR. Only old ones:
    another process may be writing its own right now."""
    abandoned_before = time.time() - SCRATCH_ABANDONED.total_seconds()
    for scratch in base.glob(".*"):
        with contextlib.suppress(OSError):  # another process removed it first
            if (
                SCRATCH.match(scratch.name)
                and scratch.is_dir()
                and scratch.stat().st_mtime < abandoned_before
            ):
                shutil.rmtree(scratch)
                log.info("removed a digest's unfinished folder left by a stopped process: %s", scratch)


async def run_forever(
    dispatcher: Dispatcher,
    *,
    schedule: Schedule,
    base: Path,
    stop: asyncio.Event,
    clock: Callable[[], datetime] | None = None,
) -> None:
    """Wait for each time the schedule fires and send that digest, until `stop` is set; first, the
    one missed while no process ran, if it is recent (`CATCH_UP`). A digest that fails is logged and
    the next one is awaited: a report must never stop the bot."""
    now = clock or dispatcher.services.clock
    last: datetime | None = None
    missed = schedule.previous(schedule.next_after(now()))
    if now() - missed < CATCH_UP:
        # No process ran at its time (a deploy, a restart): late beats a week without one. The
        # claim still makes it once, whichever process starts first.
        await _send_logged(dispatcher, due=missed, schedule=schedule, base=base)
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
        await _send_logged(dispatcher, due=due, schedule=schedule, base=base)


async def _send_logged(dispatcher: Dispatcher, *, due: datetime, schedule: Schedule, base: Path) -> None:
    """`send_digest` under a correlation id of its own; a failure is logged, never raised."""
    await periodic.one_pass(
        lambda: send_digest(dispatcher, due=due, schedule=schedule, base=base),
        log=log,
        failed=f"the digest due at {due.isoformat()} failed; the next one is at its time",
    )
