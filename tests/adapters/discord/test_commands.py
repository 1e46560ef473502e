"""Discord's slash commands: the tree built from the handlers' command catalogue and synced (globally,
or to a dev guild), typed options flattened into the words a Slack user types (order, key=value
options, the text after an announcement's audience) so the real handlers answer alike, and
autocomplete (from a suggester, and as `bot/app.py` wires it: open tickets, component names)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import discord
import pytest
from discord import app_commands

from bot.adapters.discord.commands import build_tree
from bot.app import SupportBot, build_router
from bot.core.commands import OptionKind
from bot.core.events import Actor
from bot.status.model import OPEN_STAGES, ComponentStatus, Impact
from storage import status_repo, subscriptions_repo
from storage.db import Database
from tests.adapters.discord.harness import (
    EPHEMERAL,
    DiscordWorld,
    card_of,
    choices,
    connect,
    private_answer,
    public_answer,
    start_bot,
    start_production_wired_bot,
)
from tests.harness import FakeClock


async def test_the_discord_tree_is_built_from_the_handlers_command_catalogue() -> None:
    """Every command the handlers declare is offered on Discord, with their options, and nothing else."""
    catalogue = build_router().catalogue()
    tree: app_commands.CommandTree = app_commands.CommandTree(discord.Client(intents=discord.Intents.none()))

    async def run(interaction: discord.Interaction) -> None:
        raise AssertionError("not invoked here")

    build_tree(tree, catalogue, run, suggest=None)

    assert [c.name for c in tree.get_commands()] == catalogue.names
    leaves = {c.qualified_name: c for c in tree.walk_commands() if isinstance(c, app_commands.Command)}
    assert sorted(leaves) == sorted(" ".join(c.route) for c in catalogue.commands)
    for command in catalogue.commands:
        leaf = leaves[" ".join(command.route)]
        assert leaf.description == command.description
        parameters = {p.name: p for p in leaf.parameters}
        assert sorted(parameters) == sorted(o.name for o in command.options), command.usage
        for option in command.options:
            parameter = parameters[option.name]
            expected_type = (
                discord.AppCommandOptionType.integer
                if option.kind is OptionKind.NUMBER
                else discord.AppCommandOptionType.string
            )
            assert (parameter.type, parameter.required) == (expected_type, option.required), option
            assert [c.value for c in parameter.choices] == list(option.choices), option
            assert parameter.autocomplete == (option.suggest is not None), option
            assert parameter.description == (option.description or "…"), option


async def test_commands_sync_to_the_dev_guild_when_one_is_set(world, adapters):
    await connect(world, adapters, dev_guild_id=world.guild.id)
    (sync,) = [c for c in world.emu.calls if c.method == "PUT"]
    assert sync.path == f"/applications/{world.emu.application_id}/guilds/{world.guild.id}/commands"
    ticket = next(c for c in sync.json if c["name"] == "ticket")
    close = next(o for o in ticket["options"] if o["name"] == "close")
    assert [(o["name"], o["type"], o.get("autocomplete", False)) for o in close["options"]] == [
        ("number", 4, True),
        ("reason", 3, False),
    ]

    # The fixed choices are the status handlers' vocabulary, so Discord never offers a word they refuse.
    def choices(command: str, sub: str, option: str) -> tuple[str, ...]:
        group = next(c for c in sync.json if c["name"] == command)
        spec = next(
            o for o in next(s for s in group["options"] if s["name"] == sub)["options"] if o["name"] == option
        )
        return tuple(c["value"] for c in spec["choices"])

    assert choices("component", "set", "status") == tuple(ComponentStatus)
    assert choices("incident", "open", "impact") == tuple(Impact)
    assert choices("incident", "update", "status") == OPEN_STAGES


async def test_a_slash_command_with_options_reaches_handlers_as_typed_on_slack(
    world, handlers, database, tmp_path, bots
):
    bot, _ = await start_bot(world, database, tmp_path, router=handlers.router)
    bots.append(bot)
    emu = world.emu
    put = next(c for c in emu.calls if c.method == "PUT")
    assert put.path == f"/applications/{emu.application_id}/commands", "global sync without a dev guild"
    assert {c["name"] for c in put.json} >= {
        "status",
        "ticket",
        "tickets",
        "incident",
        "subscribe",
        "unsubscribe",
        "support",
        "subscriptions",
        "component",
        "maintenance",
        "announce",
    }
    subscribe = next(c for c in put.json if c["name"] == "subscribe")
    assert [(o["name"], o["autocomplete"]) for o in subscribe["options"]] == [("components", True)]

    # Discord sends options in the order the user filled them in; handlers get Slack's order.
    run = await emu.run_command(world.sam, world.staff, "ticket", "close", reason="duplicate of #3", number=7)

    deferred = await emu.wait_for("POST", f"/interactions/{run['id']}/{run['token']}/callback")
    answer = await emu.wait_for("PATCH", f"/webhooks/{emu.application_id}/{run['token']}/messages/@original")
    assert deferred.json == {"type": 5, "data": {"flags": EPHEMERAL}}
    assert answer.content == "args: close 7 duplicate of #3"
    (event,) = handlers.received
    assert (event.name, event.args, event.event_id) == ("ticket", "close 7 duplicate of #3", run["id"])
    assert world.staff_role in event.actor.roles
    assert event.conversation.channel_id == world.staff.id


async def test_status_commands_reach_the_status_handlers_as_typed_on_slack(
    world: DiscordWorld, database, tmp_path: Path, bots: list[SupportBot]
) -> None:
    bot, _ = await start_bot(world, database, tmp_path)
    bots.append(bot)
    emu, sam, help_id = world.emu, world.sam, world.help.id

    # /subscribe takes several components, like `/subscribe api payments` on Slack.
    await emu.run_command(sam, world.help, "subscribe", components="api payments")
    assert "for api, payments" in await public_answer(emu, help_id, "Subscribed this channel")
    run = await emu.run_command(world.casey, world.help, "subscriptions")
    assert await private_answer(emu, run) == "Subscribed here to: api, payments.", (
        "a customer sees this channel"
    )

    # /component add with keyword options; set and history with the status handlers' vocabulary.
    await emu.run_command(
        sam, world.staff, "component", "add", name="search", aliases="find, lookup", group="Apps"
    )
    assert "Added component **search** in Apps." in await public_answer(emu, world.staff.id, "Added")
    await emu.run_command(sam, world.staff, "component", "set", status="partial_outage", name="find")
    assert "**search**" in await public_answer(emu, world.staff.id, "→")
    run = await emu.run_command(sam, world.staff, "component", "history", name="search")
    history = await emu.wait_for("PATCH", f"/webhooks/{emu.application_id}/{run['token']}/messages/@original")
    assert history.json["embeds"][0]["title"] == "search: partial_outage"

    # /maintenance schedule and /announce (the optional audience comes first in the typed words).
    await emu.run_command(
        sam,
        world.staff,
        "maintenance",
        "schedule",
        title="Database upgrade",
        end="2026-12-01T03:00Z",
        start="2026-12-01T02:00Z",
        components="payments",
    )
    assert "Database upgrade" in await public_answer(emu, world.staff.id, "Scheduled maintenance")
    await emu.run_command(sam, world.staff, "announce", text="Version 2.3 is out", components="api")
    assert "Announcing to api." in await public_answer(emu, world.staff.id, "Announcing")

    await bot.dispatcher.drain()
    async with bot.database.session() as session:
        (subscription,) = await subscriptions_repo.list_subscriptions(session, active_only=True)
        (window,) = await status_repo.maintenance_windows(session, at=FakeClock()())
        search = await status_repo.get_component(session, name="search")
    assert subscription.components == "api,payments"
    assert (window.title, window.components) == ("Database upgrade", "payments")
    assert search is not None and (search.group_name, search.aliases, search.status) == (
        "Apps",
        "find,lookup",
        "partial_outage",
    )


async def test_a_command_in_the_wrong_form_gets_the_handlers_friendly_usage(
    world: DiscordWorld, database, tmp_path: Path, bots: list[SupportBot]
) -> None:
    bot, _ = await start_bot(world, database, tmp_path)
    bots.append(bot)
    emu = world.emu
    run = await emu.run_command(
        world.sam,
        world.staff,
        "maintenance",
        "schedule",
        components="payments",
        start="tomorrow",
        end="2026-12-01T03:00Z",
        title="Upgrade",
    )
    answer = await private_answer(emu, run)
    assert "`tomorrow` is not a date and time; write it as YYYY-MM-DDThh:mmZ (UTC)" in answer


async def test_a_discord_announcement_whose_text_starts_with_a_component_name_goes_to_everyone(
    world: DiscordWorld, database, tmp_path: Path, bots: list[SupportBot]
) -> None:
    bot, _ = await start_bot(world, database, tmp_path)
    bots.append(bot)
    # No `components` option given: the audience is every subscription, the text is as typed.
    await world.emu.run_command(world.sam, world.staff, "announce", text="API v2 is live, see the changelog")
    answer = await public_answer(world.emu, world.staff.id, "Announcing")
    assert "Announcing to every subscription." in answer, answer


async def test_discord_incident_components_written_with_a_space_after_the_comma_are_understood(
    world: DiscordWorld, database, tmp_path: Path, bots: list[SupportBot]
) -> None:
    bot, _ = await start_bot(world, database, tmp_path)
    bots.append(bot)
    run = await world.emu.run_command(
        world.sam,
        world.staff,
        "incident",
        "open",
        components="api, payments",
        impact="major",
        title="Card payments failing",
    )
    await bot.dispatcher.drain()
    opened = await world.emu.wait_for(
        "POST",
        f"/channels/{world.staff.id}/messages",
        where=lambda c: "Opened incident" in c.content,
    )
    assert "on api, payments: Card payments failing" in opened.content
    assert run is not None


@pytest.fixture
async def started(
    world: DiscordWorld, database: Database, tmp_path: Path, bots: list[SupportBot]
) -> SupportBot:
    """The bot, connected to the emulated Discord (stopped by `bots` after the test)."""
    bots.append((await start_bot(world, database, tmp_path))[0])
    return bots[-1]


async def test_a_discord_incident_update_whose_message_starts_with_impact_keeps_the_impact(
    world: DiscordWorld, started: SupportBot
) -> None:
    """The impact option left empty, the message is only the message, whatever its first word."""
    bot, emu = started, world.emu
    await emu.run_command(
        world.sam, world.staff, "incident", "open", components="payments", impact="major", title="Cards fail"
    )
    await public_answer(emu, world.staff.id, "Opened incident")
    await emu.run_command(
        world.sam,
        world.staff,
        "incident",
        "update",
        number=1,
        status="identified",
        message="impact=none on refunds; card payments still fail",
    )
    assert "Updated (identified) incident **#1**" in await public_answer(emu, world.staff.id, "Updated")
    await bot.dispatcher.drain()
    async with bot.database.session() as session:
        payments = await status_repo.get_component(session, name="payments")
        (incident,) = await status_repo.active_incidents(session)
        timeline = await status_repo.updates_for(session, incident_ids=[1])
    assert payments is not None and payments.status == ComponentStatus.PARTIAL_OUTAGE
    assert incident.impact == Impact.MAJOR
    assert timeline[1][0].body == "impact=none on refunds; card payments still fail"


async def test_autocomplete_offers_the_suggesters_choices(world, adapters):
    asked: list[tuple[str, str, str]] = []

    async def suggest(kind: str, current: str, actor: Actor) -> Sequence[tuple[str, str]]:
        asked.append((kind, current, actor.id))
        return [("#12 export fails", "12"), ("#15 invoice", "15"), ("not a number", "x")]

    await connect(world, adapters, suggest=suggest)
    emu = world.emu
    interaction = await emu.autocomplete(
        world.sam, world.staff, "ticket", "status", focused="number", number="1"
    )

    answer = await emu.wait_for("POST", f"/interactions/{interaction['id']}/{interaction['token']}/callback")
    assert answer.json == {
        "type": 8,
        "data": {
            "choices": [{"name": "#12 export fails", "value": 12}, {"name": "#15 invoice", "value": 15}]
        },
    }
    assert asked == [("ticket", "1", world.sam.id)]


async def test_autocomplete_offers_open_tickets_and_components_as_wired_in_production(
    world: DiscordWorld, database, tmp_path: Path, bots: list[SupportBot]
) -> None:
    bot = await start_production_wired_bot(world, database, tmp_path)
    bots.append(bot)
    emu = world.emu
    dm = emu.dm_channel(world.casey)  # one open ticket per conversation: her second one is in a DM
    opened = [
        (world.casey, world.help, "csv export fails"),
        (world.robin, world.help, "invoice shows the wrong VAT"),
        (world.casey, dm, "the invite email to my teammate never arrives"),
    ]
    for number, (who, where, summary) in enumerate(opened, start=1):
        await emu.run_command(who, where, "ticket", "new", summary=summary)
        # Announced to the team before the next one, so the numbers are 1, 2, 3.
        await emu.wait_for("POST", f"/channels/{world.staff.id}/messages", where=card_of(number))

    # A customer is offered their own open tickets only; staff the whole queue.
    asked = await emu.autocomplete(world.casey, world.help, "ticket", "status", focused="number", number="")
    assert await choices(emu, asked) == [
        ("#1 csv export fails", 1),
        ("#3 the invite email to my teammate never arrives", 3),
    ]
    asked = await emu.autocomplete(world.casey, world.help, "ticket", "status", focused="number", number="2")
    assert await choices(emu, asked) == [], "Robin's ticket is not Casey's to see"
    asked = await emu.autocomplete(world.sam, world.staff, "ticket", "claim", focused="number", number="vat")
    assert await choices(emu, asked) == [("#2 invoice shows the wrong VAT", 2)]

    # Components complete the last word, so several can be picked in one option.
    asked = await emu.autocomplete(
        world.sam, world.help, "subscribe", focused="components", components="api pa"
    )
    assert await choices(emu, asked) == [("api payments", "api payments")]
    asked = await emu.autocomplete(world.sam, world.help, "status", focused="component", component="bill")
    assert await choices(emu, asked) == [("payments", "payments")], "found by its alias"
