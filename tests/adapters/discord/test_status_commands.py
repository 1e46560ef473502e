"""Ending maintenance and changing an incident's impact from Discord's slash commands, end to end:
the typed options (`impact` choice, `note`), what a subscribed channel receives (no pings), errors."""

from __future__ import annotations

from pathlib import Path

from bot.app import SupportBot
from bot.status.model import Impact
from storage import status_repo
from storage.db import Database
from tests.adapters.discord.harness import DiscordWorld, posted, private_answer, public_answer, start_bot

PINGS = "@everyone @here <@&{role}>"
NO_PINGS: dict[str, list[str]] = {"users": [], "roles": [], "parse": []}


async def _started(
    world: DiscordWorld, database: Database, tmp_path: Path, bots: list[SupportBot]
) -> SupportBot:
    bot, _ = await start_bot(world, database, tmp_path)
    bots.append(bot)
    await world.emu.run_command(world.sam, world.help, "subscribe", components="payments")
    await public_answer(world.emu, world.help.id, "Subscribed this channel")
    return bot


async def _deliver(bot: SupportBot) -> None:
    await bot.dispatcher.drain()
    assert bot.broadcaster is not None
    await bot.broadcaster.run_until_idle(limit_s=20)


async def _with_slow_cards(
    world: DiscordWorld, database: Database, tmp_path: Path, bots: list[SupportBot]
) -> SupportBot:
    """A minor incident on payments, opened from #staff and announced in the subscribed #help."""
    bot = await _started(world, database, tmp_path, bots)
    await world.emu.run_command(
        world.sam, world.staff, "incident", "open", components="payments", impact="minor", title="Slow cards"
    )
    await public_answer(world.emu, world.staff.id, "Opened incident")
    await _deliver(bot)
    return bot


async def test_a_discord_impact_change_reaches_the_subscribed_channel_without_pings(
    world: DiscordWorld, database: Database, tmp_path: Path, bots: list[SupportBot]
) -> None:
    bot, emu = await _with_slow_cards(world, database, tmp_path, bots), world.emu
    message = "Cards now fail " + PINGS.format(role=world.staff_role)
    await emu.run_command(
        world.sam,
        world.staff,
        "incident",
        "update",
        message=message,
        impact="critical",
        status="identified",
        number=1,
    )
    assert "Updated (identified) incident **#1**" in await public_answer(emu, world.staff.id, "Updated")
    await _deliver(bot)

    async with bot.database.session() as session:
        (incident,) = await status_repo.active_incidents(session)
        payments = await status_repo.get_component(session, name="payments")
    assert incident.impact == Impact.CRITICAL
    assert payments is not None and payments.status == "major_outage"
    sent = [c for c in emu.calls if c.method == "POST" and "Cards now fail" in str(c.json)]
    assert sent, "the update reached the subscribed channel"
    for call in sent:
        assert call.json["allowed_mentions"] == NO_PINGS, call.json
    edits = [c for c in emu.calls if c.method == "PATCH" and "Slow cards" in str(c.json)]
    assert edits and "critical" in str(edits[-1].json)


async def test_ending_maintenance_from_discord_tells_the_channel_and_the_note_pings_nobody(
    world: DiscordWorld, database: Database, tmp_path: Path, bots: list[SupportBot]
) -> None:
    bot, emu = await _started(world, database, tmp_path, bots), world.emu
    await emu.run_command(
        world.sam,
        world.staff,
        "maintenance",
        "schedule",
        components="payments",
        start="2026-12-01T02:00Z",
        end="2026-12-01T03:00Z",
        title="Database upgrade",
    )
    await public_answer(emu, world.staff.id, "Scheduled maintenance")
    await _deliver(bot)
    note = "Moved to next week " + PINGS.format(role=world.staff_role)
    await emu.run_command(world.sam, world.staff, "maintenance", "end", note=note, number=1)
    assert "Cancelled maintenance **#1**" in await public_answer(emu, world.staff.id, "Cancelled")
    await _deliver(bot)

    notice = await posted(emu, world.help.id, "Moved to next week")
    assert "[Maintenance cancelled] Database upgrade" in str(notice)
    (call,) = [c for c in emu.calls if c.method == "POST" and "Moved to next week" in str(c.json)]
    assert call.json["allowed_mentions"] == NO_PINGS


async def test_discord_status_commands_with_an_unknown_number_or_from_a_customer_are_refused(
    world: DiscordWorld, database: Database, tmp_path: Path, bots: list[SupportBot]
) -> None:
    await _started(world, database, tmp_path, bots)
    emu = world.emu
    run = await emu.run_command(world.sam, world.staff, "maintenance", "end", number=42)
    assert "There is no maintenance window #42" in await private_answer(emu, run)
    run = await emu.run_command(
        world.sam,
        world.staff,
        "incident",
        "update",
        number=42,
        status="identified",
        impact="major",
        message="x",
    )
    assert "There is no incident #42" in await private_answer(emu, run)
    run = await emu.run_command(world.casey, world.help, "maintenance", "end", number=1, note="hi")
    refused = await private_answer(emu, run)
    assert "for the support team only" in refused, refused
    run = await emu.run_command(
        world.casey,
        world.help,
        "incident",
        "update",
        number=1,
        status="identified",
        impact="none",
        message="x",
    )
    refused = await private_answer(emu, run)
    assert "for the support team only" in refused, refused


async def test_the_discord_thread_under_an_incident_notice_is_named_for_the_incident(
    world: DiscordWorld, database: Database, tmp_path: Path, bots: list[SupportBot]
) -> None:
    """Subscribers see the thread's name under the notice: the incident's, not a support ticket's."""
    bot, emu = await _with_slow_cards(world, database, tmp_path, bots), world.emu
    await emu.run_command(
        world.sam, world.staff, "incident", "update", number=1, status="identified", message="A bad deploy"
    )
    await public_answer(emu, world.staff.id, "Updated")
    await _deliver(bot)

    (started,) = [c for c in emu.calls if c.method == "POST" and c.path.endswith("/threads")]
    assert started.json["name"] == "Update on #1: Slow cards"


async def test_from_discord_an_incident_is_reopened_then_given_a_postmortem_told_to_nobody(
    world: DiscordWorld, database: Database, tmp_path: Path, bots: list[SupportBot]
) -> None:
    bot, emu = await _with_slow_cards(world, database, tmp_path, bots), world.emu
    await emu.run_command(world.sam, world.staff, "incident", "resolve", number=1, message="Back")
    await public_answer(emu, world.staff.id, "Resolved incident")
    await emu.run_command(
        world.sam, world.staff, "incident", "update", number=1, status="identified", message="Slow again"
    )
    assert "Reopened (identified) incident **#1** Slow cards" in await public_answer(
        emu, world.staff.id, "Reopened"
    )
    await _deliver(bot)
    (reopened,) = [c for c in emu.calls if c.method == "POST" and "Slow again" in str(c.json)]
    assert "Reopened #1: Slow cards" in str(reopened.json), "in the incident's thread, titled so"
    await emu.run_command(world.sam, world.staff, "incident", "resolve", number=1)
    await public_answer(emu, world.staff.id, "Resolved incident **#1** Slow cards")
    await _deliver(bot)

    posts = len([c for c in emu.calls if c.method == "POST"])
    postmortem = "A config change slowed the card processor " + PINGS.format(role=world.staff_role)
    await emu.run_command(world.sam, world.staff, "incident", "postmortem", number=1, text=postmortem)
    assert "Published the postmortem of incident **#1** Slow cards" in await public_answer(
        emu, world.staff.id, "Published the postmortem"
    )
    await _deliver(bot)
    later = [c for c in emu.calls if c.method == "POST"][posts:]
    assert [c.path for c in later if c.path.startswith("/channels/")] == [
        f"/channels/{world.staff.id}/messages"
    ], "only the reply to staff: nothing broadcast"
    async with bot.database.session() as session:
        incident = await status_repo.get_incident(session, incident_id=1)
    assert incident is not None and incident.postmortem_body == postmortem
