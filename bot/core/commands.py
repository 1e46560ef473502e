"""The command catalogue: every slash command the handlers answer, declared once and SDK-free.

Handlers declare their commands on their router (`router.command(...)`). `/support help` is written
from the catalogue, the Discord command tree is built from it, and the Slack app manifest is checked
against it, so the three cannot drift apart. A command's words are what a Slack user types
(`/ticket close 7 duplicate`); options say how a platform with typed options asks for them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

MAX_DESCRIPTION: Final = 100  # Discord's limit for command and option descriptions
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")  # lowercase: what Discord accepts and Slack users type


class OptionKind(StrEnum):
    TEXT = "text"
    NUMBER = "number"  # a whole number: a ticket or an incident


class Suggest(StrEnum):
    """What autocomplete offers for an option while a person types (where the platform can)."""

    TICKET = "ticket"  # open tickets the person may see
    COMPONENT = "component"  # status component names; several, for an option that takes `many`


@dataclass(frozen=True, slots=True)
class Option:
    """One argument of a command, in the order a Slack user types it."""

    name: str
    description: str = field(default="", kw_only=True)
    kind: OptionKind = field(default=OptionKind.TEXT, kw_only=True)
    required: bool = field(default=True, kw_only=True)
    choices: tuple[str, ...] = field(default=(), kw_only=True)
    suggest: Suggest | None = field(default=None, kw_only=True)
    label: str = field(default="", kw_only=True)
    """What the usage shows between `<>` (default: the name)."""
    many: bool = field(default=False, kw_only=True)
    """Several words (`/subscribe api payments`): the usage says `…`."""
    keyword: bool = field(default=False, kw_only=True)
    """Typed as `name=value` (`/component add search group=Apps`)."""
    after_dashes: bool = field(default=False, kw_only=True)
    """Free text that follows optional words (`/announce [components…] -- <text>`): where options are
    typed separately, `--` marks where it starts, so its first word is never read as one of them."""
    spell_choices: bool = field(default=False, kw_only=True)
    """The usage lists the choices (`urgent|high|normal|low`) instead of `<name>`."""

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"option name {self.name!r}: lowercase letters, digits, - or _")
        if self.spell_choices and not self.choices:
            raise ValueError(f"option {self.name!r} spells its choices but has none")

    @property
    def usage(self) -> str:
        if self.spell_choices:
            shown = "|".join(self.choices)
        else:
            shown = f"<{self.label or self.name}>" if self.required else (self.label or self.name)
        if self.many:
            shown += "…"
        if self.keyword:
            return f"[{self.name}=<{self.label or self.name}>]"
        return shown if self.required else f"[{shown}]"


@dataclass(frozen=True, slots=True)
class Command:
    """`/ticket close <number> [reason]`: its words, options, what it does, and who may use it."""

    path: tuple[str, ...]
    """The command and its subcommands, as typed: ("ticket", "close")."""
    summary: str
    options: tuple[Option, ...] = ()
    staff: bool = False
    implicit: str = ""
    """This form's subcommand name where free text cannot sit beside subcommands (Discord): the
    free-text `/ticket <what happened>` is `/ticket new summary:…` there. Discord's arrives as
    `/ticket new …`, so its handlers answer that too (Slack users may type it as well)."""

    def __post_init__(self) -> None:
        if not self.path or not all(_NAME.match(word) for word in self.path):
            raise ValueError(f"command {self.path!r}: lowercase words")
        if self.implicit and not _NAME.match(self.implicit):
            raise ValueError(f"command {self.path!r}: implicit subcommand {self.implicit!r}")
        if len(self.description) > MAX_DESCRIPTION:
            raise ValueError(f"/{self.qualified_name}: summary over {MAX_DESCRIPTION} characters")
        names = [option.name for option in self.options]
        if len(set(names)) != len(names):
            raise ValueError(f"/{self.qualified_name}: two options with one name")

    @property
    def name(self) -> str:
        return self.path[0]

    @property
    def qualified_name(self) -> str:
        return " ".join(self.path)

    @property
    def route(self) -> tuple[str, ...]:
        """The path where every command with subcommands is a group (Discord's shape)."""
        return (*self.path, self.implicit) if self.implicit else self.path

    @property
    def arguments(self) -> str:
        """The usage after the command's name: `close <number> [reason]`."""
        return " ".join([*self.path[1:], *(option.usage for option in self.options)])

    @property
    def usage(self) -> str:
        return f"/{self.name} {self.arguments}".rstrip()

    @property
    def description(self) -> str:
        """The summary, marked where only staff may use the command."""
        return f"{self.summary} (staff)" if self.staff else self.summary


@dataclass(frozen=True, slots=True)
class Catalogue:
    """Every command, in the order `/support help` lists them, and a summary for each group of
    subcommands ("ticket", "support kb")."""

    commands: tuple[Command, ...]
    groups: Mapping[str, str]

    def __post_init__(self) -> None:
        routes = [command.route for command in self.commands]
        if len(set(routes)) != len(routes):
            raise ValueError("two commands with one name")
        for command in self.commands:
            for depth in range(1, len(command.route)):
                group = command.route[:depth]
                if group in routes:
                    raise ValueError(
                        f"/{' '.join(group)} has subcommands and free text: give it an `implicit` name"
                    )
                if " ".join(group) not in self.groups:
                    raise ValueError(f"/{' '.join(group)} has subcommands: describe it as a group")

    @property
    def names(self) -> list[str]:
        """The top-level commands, each once, in order."""
        return list(dict.fromkeys(command.name for command in self.commands))

    def under(self, name: str) -> list[Command]:
        return [command for command in self.commands if command.name == name]

    def find(self, route: Iterable[str]) -> Command | None:
        """The command at this route (see `Command.route`), or None."""
        wanted = tuple(route)
        return next((command for command in self.commands if command.route == wanted), None)
