"""Discord's slash commands with the real handlers: the status commands Slack has (typed options
flattened to the words the handlers parse), and autocomplete as `bot/app.py` wires it in production
(open tickets, component names from the status store)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import discord
from discord import app_commands

from bot.adapters.discord.adapter import DiscordAdapter
from bot.adapters.discord.commands import build_tree
from bot.app import SupportBot, build_router, create_bot, platform_adapters
from bot.core.commands import OptionKind
from bot.core.events import Platform
from bot.handlers.autocomplete import complete_names
from storage import status_repo, subscriptions_repo
from tests.adapters.discord.harness import DiscordWorld, start_bot
from tests.emulators.discord import Call, DiscordEmulator
from tests.harness import FakeClock

EPHEMERAL = 64


async def private_answer(emu: DiscordEmulator, run: dict[str, Any]) -> str:
    """The answer that replaced the command's private "thinking…" placeholder."""
    call = await emu.wait_for("PATCH", f"/webhooks/{emu.application_id}/{run['token']}/messages/@original")
    return call.content


async def public_answer(emu: DiscordEmulator, channel_id: str, containing: str) -> str:
    call = await emu.wait_for(
        "POST", f"/channels/{channel_id}/messages", where=lambda c: containing in c.content
    )
    return call.content


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
    assert "`tomorrow` is not a date and time like 2026-12-01T02:00Z" in answer


async def start_production_wired_bot(world: DiscordWorld, database, tmp_path: Path) -> SupportBot:
    """The bot as `bot.app.run` builds it: adapters from `platform_adapters`, then the bot over them."""
    settings = world.settings(tmp_path)
    adapters = platform_adapters(settings, as_staff=False, database=database)
    adapter = adapters[Platform.DISCORD]
    assert isinstance(adapter, DiscordAdapter)
    adapter.guild_ready_timeout = 0.05  # tests need not wait 2 s for more guilds
    bot = await create_bot(settings, adapters=adapters, clock=FakeClock(), database=database, with_web=False)
    await bot.start()
    return bot


def card_of(number: int) -> Callable[[Call], bool]:
    return lambda call: any(
        f"Ticket #{number}" in (e.get("title") or "") for e in call.json.get("embeds") or []
    )


async def choices(emu: DiscordEmulator, interaction: dict[str, Any]) -> list[tuple[str, Any]]:
    answer = await emu.wait_for("POST", f"/interactions/{interaction['id']}/{interaction['token']}/callback")
    assert answer.json["type"] == 8
    return [(c["name"], c["value"]) for c in answer.json["data"]["choices"]]


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


def test_component_completion_keeps_earlier_words_and_skips_names_already_chosen() -> None:
    known = [("api", ("rest api",)), ("payments", ("billing",)), ("dashboard", ("web app",))]
    assert complete_names("", known) == [("api", "api"), ("payments", "payments"), ("dashboard", "dashboard")]
    assert complete_names("api,", known) == [
        ("api,payments", "api,payments"),
        ("api,dashboard", "api,dashboard"),
    ]
    assert complete_names("payments a", known) == [
        ("payments api", "payments api"),
        ("payments dashboard", "payments dashboard"),
    ]
    assert complete_names("zzz", known) == []


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
