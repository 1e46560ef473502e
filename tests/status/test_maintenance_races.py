"""Two bot processes on one PostgreSQL database end the same maintenance window, or resolve (or
reopen) the same incident, at the same moment: the subscriptions hear it once. Two incidents on one
component resolved at once leave it as neither now means."""

from __future__ import annotations

import asyncio

from sqlmodel import select

from bot.core.events import CommandInvoked
from storage import status_repo
from storage.db import Database
from storage.models import Broadcast, IncidentUpdate
from storage.session import DbSession
from tests.conftest import Processes
from tests.harness import BotHarness
from tests.status.conftest import deliver, received


async def _both_run(database: Database, processes: Processes, command: str, other: str = "") -> list[str]:
    """Two staff run `command` (the second `other`, if given) at once, each on another process;
    every reply, in any order."""

    def typed(bot: BotHarness, event_id: str) -> CommandInvoked:
        name, _, args = (other if other and event_id == "run-b" else command).removeprefix("/").partition(" ")
        return CommandInvoked(
            actor=bot.staff, conversation=bot.staff_room, name=name, args=args, event_id=event_id
        )

    # Each "process" has a connection ready, as a running bot would, so neither starts late.
    await asyncio.gather(*(database.ping() for _ in range(4)))
    first, second = processes
    await asyncio.gather(
        first.bot.dispatcher.handle(typed(first, "run-a")),
        second.bot.dispatcher.handle(typed(second, "run-b")),
    )
    return [m.text for m in first.adapter.sent + second.adapter.sent]


async def _updates(database: Database, status: str) -> list[str]:
    async with database.session() as session:
        found = await session.execute(select(IncidentUpdate.body).where(IncidentUpdate.status == status))
        return list(found.scalars())


async def test_two_staff_ending_one_window_at_once_tell_the_subscriptions_once(
    postgres_database: Database, processes: Processes
) -> None:
    first, _ = processes
    await first.staff_runs(
        "/maintenance schedule payments 2026-11-24T09:30Z 2026-11-24T11:30Z Database upgrade"
    )
    for bot in processes:
        bot.clock.advance(hours=1)
    replies = await _both_run(postgres_database, processes, "/maintenance end 1 The upgrade finished early")
    heads = sorted(r.split(":")[0] for r in replies)
    assert [r for r in heads if r.startswith("Ended") or "already over" in r] == [
        "Ended maintenance **#1**",
        "Maintenance #1 is already over.",
    ]
    assert await _updates(postgres_database, "completed") == ["The upgrade finished early"]


async def test_two_staff_resolving_one_incident_at_once_tell_the_subscriptions_once(
    postgres_database: Database, processes: Processes
) -> None:
    first, _ = processes
    await first.staff_runs("/incident open payments major Card payments failing")
    replies = await _both_run(postgres_database, processes, "/incident resolve 1 Payments are back")
    assert sum(r.startswith("Resolved incident **#1**") for r in replies) == 1, replies
    assert sum("is already resolved" in r for r in replies) == 1, replies
    assert await _updates(postgres_database, "resolved") == ["Payments are back"]


async def _link_casey(session: DbSession, bot: BotHarness) -> None:
    """What Casey asking "are payments down?" in her DMs writes, as the status handler does."""
    await status_repo.link_customer(
        session,
        incident_id=1,
        conversation_key=f"{bot.customer.key}@console:W1:D-C1",
        platform="console",
        workspace_id="W1",
        channel_id="D-C1",
        thread_id=None,
        is_direct=True,
        actor_key=bot.customer.key,
        component="payments",
        at=bot.clock.now,
    )


def _resolve_on(bot: BotHarness) -> CommandInvoked:
    """Sam's `/incident resolve 1`, on another process than the one the harness numbers events for."""
    return CommandInvoked(
        actor=bot.staff,
        conversation=bot.staff_room,
        name="incident",
        args="resolve 1 Payments are back",
        event_id="resolve-on-second",
    )


async def test_a_customer_who_asked_as_staff_resolved_it_is_told_it_is_resolved(
    postgres_database: Database, processes: Processes
) -> None:
    """Casey asks "are payments down?" on one process; her question has linked her to the incident
    but is not committed yet when Sam resolves it on the other. Sam's resolve waits for her, so
    she hears it is resolved, as she was promised."""
    first, second = processes
    await first.staff_runs("/incident open payments major Card payments failing")
    async with postgres_database.transaction() as asking:
        await _link_casey(asking, first)
        resolving = asyncio.create_task(second.bot.dispatcher.handle(_resolve_on(second)))
        await asyncio.sleep(0.5)  # Sam's resolve is under way
    await asyncio.wait_for(resolving, 10)
    assert [m.text for m in second.adapter.sent if m.text.startswith("Resolved incident **#1**")]
    await deliver(second)
    told = [m for m in received(second, "D-C1") if "you asked about is resolved" in m.text]
    assert len(told) == 1, "told once, where she asked"


async def test_a_customer_who_asked_again_as_staff_resolved_the_reopened_incident_is_told_again(
    postgres_database: Database, processes: Processes
) -> None:
    """Casey was told #1 was resolved; it was reopened, she asks again, and her question is not
    committed yet when Sam resolves it again: she hears it is resolved once more."""
    first, second = processes
    await first.staff_runs("/incident open payments major Card payments failing")
    await first.customer_dms("are payments down?")
    await first.staff_runs("/incident resolve 1 Payments are back")
    await first.staff_runs("/incident update 1 investigating Failing again")
    async with postgres_database.transaction() as asking:
        await _link_casey(asking, first)
        resolving = asyncio.create_task(second.bot.dispatcher.handle(_resolve_on(second)))
        await asyncio.sleep(0.5)  # Sam's resolve is under way
    await asyncio.wait_for(resolving, 10)
    await deliver(first)
    await deliver(second)
    told = [
        m for m in first.sent_to("D-C1") + second.sent_to("D-C1") if "you asked about is resolved" in m.text
    ]
    assert len(told) == 2, "once for each time she asked and it was resolved"


async def test_a_customer_whose_question_read_the_incident_just_before_staff_resolved_it_hears_it_is_resolved(
    postgres_database: Database, processes: Processes
) -> None:
    """Casey asks "are payments down?" on one process as Sam resolves #1 on the other. Her
    question read #1 as ongoing; Sam's resolve committed before her question could link her to
    it, so it had nobody to tell. She must not be left with "investigating": she hears it is
    resolved."""
    first, second = processes
    await first.staff_runs("/incident open payments major Card payments failing")
    async with postgres_database.transaction() as holding:
        # Another staff resolve holds #1: Sam's resolve queues for it first, then Casey's link,
        # after her question has read the snapshot. Sam's goes through and commits before hers.
        assert await status_repo.get_incident(holding, incident_id=1, for_update=True, to_resolve=True)
        resolving = asyncio.create_task(second.bot.dispatcher.handle(_resolve_on(second)))
        await asyncio.sleep(0.5)
        asking = asyncio.create_task(first.customer_dms("are payments down?"))
        await asyncio.sleep(0.5)
    await asyncio.wait_for(resolving, 10)
    answer = await asyncio.wait_for(asking, 10)
    await deliver(second)
    assert "investigating" not in answer[-1].text.lower(), answer[-1].text
    async with postgres_database.session() as session:
        assert not await status_repo.links_to_notify(session, incident_id=1), "no link left unnotified"


async def _one_resolved(processes: Processes) -> BotHarness:
    """Incident #1, resolved: the first process, which resolved it."""
    first, _ = processes
    await first.staff_runs("/incident open payments major Card payments failing")
    await first.staff_runs("/incident resolve 1 Payments are back")
    return first


async def test_two_staff_reopening_one_incident_at_once_reopen_it_once(
    postgres_database: Database, processes: Processes
) -> None:
    """The second waits for the first's lock, sees the incident open again, and posts an update."""
    await _one_resolved(processes)
    replies = await _both_run(postgres_database, processes, "/incident update 1 identified Failing again")
    assert sum(r.startswith("Reopened (identified) incident **#1**") for r in replies) == 1, replies
    assert sum(r.startswith("Updated (identified) incident **#1**") for r in replies) == 1, replies
    async with postgres_database.session() as session:
        kinds = (await session.execute(select(Broadcast.kind).order_by(Broadcast.id))).scalars()
        assert list(kinds) == ["open", "resolve", "reopen", "update"]


async def test_staff_reopening_and_resolving_one_incident_at_once_leave_it_as_the_last_said(
    postgres_database: Database, processes: Processes
) -> None:
    first = await _one_resolved(processes)
    reopen, resolve = "/incident update 1 identified Failing again", "/incident resolve 1 Back"
    replies = await _both_run(postgres_database, processes, reopen, resolve)
    async with postgres_database.session() as session:
        timeline = (await status_repo.updates_for(session, incident_ids=[1]))[1]
    statuses = [u.status for u in timeline]  # newest first
    if statuses[0] == "identified":  # refused as resolved already, then reopened
        assert statuses == ["identified", "resolved", "investigating"]
        assert sum("is already resolved" in r for r in replies) == 1, replies
        expected = "Partial outage"
    else:  # reopened, then resolved by the other
        assert statuses == ["resolved", "identified", "resolved", "investigating"]
        expected = "All systems operational"
    (status,) = await first.customer_runs("/status")
    assert status.delivery.message.title == expected, (replies, status.text)


async def test_two_staff_resolving_two_incidents_on_one_component_at_once_leave_it_operational(
    postgres_database: Database, processes: Processes
) -> None:
    """Each saw the other's incident still open: neither may leave payments down when both are over."""
    first, _ = processes
    await first.staff_runs("/incident open api,payments critical Everything is down")
    await first.staff_runs("/incident open payments,api major Card payments failing")
    await _both_run(
        postgres_database, processes, "/incident resolve 1 Back up", "/incident resolve 2 Back up"
    )
    (status,) = await first.customer_runs("/status")
    assert status.delivery.message.title == "All systems operational", status.text
