"""The slash-command tree, built from the command catalogue the handlers declare: groups for commands
with subcommands, typed options (whole numbers, fixed choices, autocomplete from a suggester), and a
callback that only forwards the interaction. `translate.flatten_command` turns what Discord sends back
into the words a Slack user types."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

import discord
from discord import app_commands

from bot.adapters.discord.translate import actor_from_user
from bot.core.commands import MAX_DESCRIPTION, Catalogue, Command, OptionKind, Suggest
from bot.core.events import Actor

log = logging.getLogger(__name__)

Suggester = Callable[[str, str, Actor], Awaitable[Sequence[tuple[str, str]]]]
"""(kind, typed so far, who) → up to 25 (label, value) choices. Kinds: `Suggest`'s values."""

Run = Callable[[discord.Interaction], Awaitable[None]]
Completer = Callable[[discord.Interaction, str], Coroutine[Any, Any, list[app_commands.Choice[Any]]]]
MAX_CHOICES = 25
MAX_CHOICE_TEXT = 100


def completer(kind: Suggest, suggest: Suggester | None) -> Completer:
    """Autocomplete for one kind of option; nothing when there is no suggester or it fails."""
    numeric = kind is Suggest.TICKET

    async def complete(interaction: discord.Interaction, current: str) -> list[app_commands.Choice[Any]]:
        if suggest is None:
            return []
        try:
            found = await suggest(kind.value, current, actor_from_user(interaction.user))
        except Exception:
            log.exception("autocomplete for %s failed", kind)
            return []
        return [
            app_commands.Choice(
                name=label[:MAX_CHOICE_TEXT], value=int(value) if numeric else value[:MAX_CHOICE_TEXT]
            )
            for label, value in found[:MAX_CHOICES]
            if not numeric or value.isdigit()
        ]

    return complete


def build_tree(
    tree: app_commands.CommandTree, catalogue: Catalogue, run: Run, suggest: Suggester | None
) -> None:
    """Add every command of `catalogue` to `tree`: `/ticket close` is the subcommand `close` of the
    group `ticket`, the free-text `/ticket <what happened>` its subcommand `new` (`Command.implicit`)."""
    completers = {kind: completer(kind, suggest) for kind in Suggest}
    groups: dict[tuple[str, ...], app_commands.Group] = {}
    for command in catalogue.commands:
        parent: app_commands.Group | None = None
        for depth in range(1, len(command.route)):
            words = command.route[:depth]
            if words not in groups:
                group = app_commands.Group(name=words[-1], description=_group_description(catalogue, words))
                _attach(tree, parent, group)
                groups[words] = group
            parent = groups[words]
        _attach(tree, parent, _slash_command(command, run, completers))


def _attach(
    tree: app_commands.CommandTree,
    parent: app_commands.Group | None,
    item: app_commands.Command[Any, ..., Any] | app_commands.Group,
) -> None:
    if parent is None:
        tree.add_command(item)
    else:
        parent.add_command(item)


def _group_description(catalogue: Catalogue, words: tuple[str, ...]) -> str:
    """The group's summary, marked when every command in it is for staff."""
    summary = catalogue.groups[" ".join(words)]
    if all(c.staff for c in catalogue.commands if c.route[: len(words)] == words):
        summary = f"{summary} (staff)"
    return summary[:MAX_DESCRIPTION]


def _slash_command(
    command: Command, run: Run, completers: dict[Suggest, Completer]
) -> app_commands.Command[Any, ..., Any]:
    """One command whose parameters are the declared options; its callback only forwards."""

    async def forward(interaction: discord.Interaction, **_options: Any) -> None:
        await run(interaction)

    parameters = [
        inspect.Parameter(
            "interaction", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=discord.Interaction
        )
    ]
    for option in command.options:
        kind: type = int if option.kind is OptionKind.NUMBER else str
        parameters.append(
            inspect.Parameter(
                option.name,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=kind if option.required else kind | None,
                default=inspect.Parameter.empty if option.required else None,
            )
        )
    # discord.py reads a callback's parameters from its signature: these are the options.
    forward.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]  # read by inspect.signature
    described = {o.name: o.description for o in command.options if o.description}
    choices = {
        o.name: [app_commands.Choice(name=c, value=c) for c in o.choices]
        for o in command.options
        if o.choices
    }
    completed = {o.name: completers[o.suggest] for o in command.options if o.suggest is not None}
    callback: Any = forward
    if described:
        callback = app_commands.describe(**described)(callback)
    if choices:
        callback = app_commands.choices(**choices)(callback)
    if completed:
        callback = app_commands.autocomplete(**completed)(callback)
    return app_commands.Command(
        name=command.route[-1], description=command.description[:MAX_DESCRIPTION], callback=callback
    )
