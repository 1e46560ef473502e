"""The slash-command tree: the same commands as Slack, with typed options, fixed choices from the
domains' vocabularies and autocomplete from a suggester. Every command only forwards the interaction."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import discord
from discord import app_commands

from bot.adapters.discord.translate import actor_from
from bot.core.events import Actor
from bot.status.model import OPEN_STAGES, ComponentStatus, Impact
from bot.tickets.model import PRIORITIES

log = logging.getLogger(__name__)

Suggester = Callable[[str, str, Actor], Awaitable[Sequence[tuple[str, str]]]]
"""(kind, typed so far, who) → up to 25 (label, value) choices. Kinds: "component", "ticket"."""

Run = Callable[[discord.Interaction], Awaitable[None]]
Completer = Callable[[discord.Interaction, str], Awaitable[list[app_commands.Choice[Any]]]]
MAX_CHOICES = 25
MAX_CHOICE_TEXT = 100


def completer(kind: str, suggest: Suggester | None) -> Completer:
    """Autocomplete for one kind of option; nothing when there is no suggester or it fails."""

    async def complete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[Any]]:
        if suggest is None:
            return []
        try:
            found = await suggest(kind, current, actor_from(interaction.user))
        except Exception:
            log.exception("autocomplete for %s failed", kind)
            return []
        numeric = kind == "ticket"
        return [
            app_commands.Choice(
                name=label[:MAX_CHOICE_TEXT], value=int(value) if numeric else value[:MAX_CHOICE_TEXT]
            )
            for label, value in found[:MAX_CHOICES]
            if not numeric or value.isdigit()
        ]

    return complete


def _choices(values: Sequence[str]) -> list[app_commands.Choice[str]]:
    return [app_commands.Choice(name=value, value=value) for value in values]


def define_commands(
    tree: app_commands.CommandTree, run: Run, suggest: Suggester | None
) -> dict[str, list[str]]:
    """Add every command to `tree`; returns each command's declared option order by qualified name."""
    tickets = completer("ticket", suggest)
    components = completer("component", suggest)

    @tree.command(name="status", description="Current status of our services")
    @app_commands.describe(component="Only this component")
    @app_commands.autocomplete(component=components)
    async def status(interaction: discord.Interaction, component: str | None = None) -> None:
        await run(interaction)

    @tree.command(name="tickets", description="Your open tickets (staff: everyone's)")
    @app_commands.describe(which="'mine' for the ones you hold")
    @app_commands.choices(which=[app_commands.Choice(name="mine", value="mine")])
    async def tickets_command(interaction: discord.Interaction, which: str | None = None) -> None:
        await run(interaction)

    @tree.command(name="subscribe", description="Post status updates in this channel")
    @app_commands.describe(components="Only these, e.g. api payments (default: every component)")
    @app_commands.autocomplete(components=components)
    async def subscribe(interaction: discord.Interaction, components: str | None = None) -> None:
        await run(interaction)

    @tree.command(name="unsubscribe", description="Stop status updates in this channel")
    async def unsubscribe(interaction: discord.Interaction) -> None:
        await run(interaction)

    @tree.command(name="subscriptions", description="What this channel (staff: every channel) gets")
    async def subscriptions(interaction: discord.Interaction) -> None:
        await run(interaction)

    @tree.command(name="announce", description="Broadcast an announcement to subscriptions (staff)")
    @app_commands.describe(
        text="What to announce", components="Only subscriptions to these, e.g. api payments"
    )
    @app_commands.autocomplete(components=components)
    async def announce(interaction: discord.Interaction, text: str, components: str | None = None) -> None:
        await run(interaction)

    @tree.command(name="support", description="What the bot can do")
    @app_commands.choices(topic=[app_commands.Choice(name="help", value="help")])
    async def support(interaction: discord.Interaction, topic: str | None = None) -> None:
        await run(interaction)

    ticket = app_commands.Group(name="ticket", description="Tickets: open one, or work on one")

    @ticket.command(name="new", description="Open a ticket so a person helps you")
    async def ticket_new(interaction: discord.Interaction, summary: str) -> None:
        await run(interaction)

    @ticket.command(name="status", description="Where your ticket stands")
    @app_commands.autocomplete(number=tickets)
    async def ticket_status(interaction: discord.Interaction, number: int) -> None:
        await run(interaction)

    @ticket.command(name="claim", description="Take the ticket (staff)")
    @app_commands.autocomplete(number=tickets)
    async def ticket_claim(interaction: discord.Interaction, number: int) -> None:
        await run(interaction)

    @ticket.command(name="reply", description="Answer the customer (staff)")
    @app_commands.autocomplete(number=tickets)
    async def ticket_reply(interaction: discord.Interaction, number: int, text: str) -> None:
        await run(interaction)

    @ticket.command(name="note", description="Internal note the customer never sees (staff)")
    @app_commands.autocomplete(number=tickets)
    async def ticket_note(interaction: discord.Interaction, number: int, text: str) -> None:
        await run(interaction)

    @ticket.command(name="close", description="Ask the customer to confirm it is solved (staff)")
    @app_commands.autocomplete(number=tickets)
    async def ticket_close(interaction: discord.Interaction, number: int, reason: str | None = None) -> None:
        await run(interaction)

    @ticket.command(name="priority", description="Change the first-response target (staff)")
    @app_commands.autocomplete(number=tickets)
    @app_commands.choices(level=_choices(PRIORITIES))
    async def ticket_priority(interaction: discord.Interaction, number: int, level: str) -> None:
        await run(interaction)

    tree.add_command(ticket)

    incident = app_commands.Group(name="incident", description="Declare and update incidents (staff)")

    @incident.command(name="open", description="Declare an incident and tell subscribed channels")
    @app_commands.describe(components="Comma-separated, e.g. api,payments")
    @app_commands.autocomplete(components=components)
    @app_commands.choices(impact=_choices(tuple(Impact)))
    async def incident_open(
        interaction: discord.Interaction, components: str, impact: str, title: str
    ) -> None:
        await run(interaction)

    @incident.command(name="update", description="Post an update on an incident")
    @app_commands.choices(status=_choices(OPEN_STAGES))
    async def incident_update(
        interaction: discord.Interaction, number: int, status: str, message: str
    ) -> None:
        await run(interaction)

    @incident.command(name="resolve", description="Resolve an incident")
    async def incident_resolve(
        interaction: discord.Interaction, number: int, message: str | None = None
    ) -> None:
        await run(interaction)

    tree.add_command(incident)

    component = app_commands.Group(name="component", description="Status components (staff)")

    @component.command(name="set", description="Set a component's status (history is kept)")
    @app_commands.autocomplete(name=components)
    @app_commands.choices(status=_choices(tuple(ComponentStatus)))
    async def component_set(interaction: discord.Interaction, name: str, status: str) -> None:
        await run(interaction)

    @component.command(name="add", description="Add a component to the status page")
    @app_commands.describe(
        name="lowercase letters, digits, - or _", group="One word, e.g. Apps", aliases="e.g. find,lookup"
    )
    async def component_add(
        interaction: discord.Interaction, name: str, group: str | None = None, aliases: str | None = None
    ) -> None:
        await run(interaction)

    @component.command(name="history", description="A component's status history")
    @app_commands.autocomplete(name=components)
    async def component_history(interaction: discord.Interaction, name: str) -> None:
        await run(interaction)

    tree.add_command(component)

    maintenance = app_commands.Group(name="maintenance", description="Maintenance windows (staff)")

    @maintenance.command(name="schedule", description="Schedule maintenance and announce it")
    @app_commands.describe(
        components="e.g. payments or api,payments",
        start="UTC, e.g. 2026-12-01T02:00Z",
        end="UTC, e.g. 2026-12-01T03:00Z",
    )
    @app_commands.autocomplete(components=components)
    async def maintenance_schedule(
        interaction: discord.Interaction, components: str, start: str, end: str, title: str
    ) -> None:
        await run(interaction)

    tree.add_command(maintenance)
    return {
        command.qualified_name: [p.name for p in command.parameters]
        for command in tree.walk_commands()
        if isinstance(command, app_commands.Command)
    }
