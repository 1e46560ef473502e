"""Parsing the status commands' arguments; every mistake becomes a UsageError with an example."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TypeVar

from bot.core.commands import Command
from bot.core.echo import echo
from bot.core.errors import UsageError, UserError
from bot.status.components import MAX_GROUP, MAX_NAME, NAME, Known, long_alias, resolve
from bot.status.model import ComponentStatus, Impact, IncidentStatus


@dataclass(frozen=True, slots=True)
class Usage:
    """A command's usage, as the catalogue shows it, and an example; the handler that declares the
    command builds it (`Usage.of`), so an error shows the same usage as help and Discord."""

    usage: str
    example: str

    @classmethod
    def of(cls, command: Command, example: str) -> Usage:
        return cls(command.usage, example)

    def error(self, problem: str) -> UsageError:
        return UsageError(problem, usage=self.usage, example=self.example)


class UnknownComponent(UserError):
    def __init__(self, name: str, known: Sequence[Known]) -> None:
        names = ", ".join(k.name for k in known) or "none yet"
        super().__init__(f"I don't know a component called `{echo(name, 60)}`; I know: {names}.")


def components_arg(value: str, known: Sequence[Known]) -> list[str]:
    """`api,payments` (or space-separated) -> resolved names; an unknown one lists what exists."""
    names: list[str] = []
    for part in value.replace(",", " ").split():
        name = resolve(part, known)
        if name is None:
            raise UnknownComponent(part, known)
        if name not in names:
            names.append(name)
    return names


E = TypeVar("E", bound=StrEnum)


def _choice(value: str, allowed: type[E], what: str, usage: Usage, *, hint: str = "") -> E:
    wanted = value.strip().lower()
    try:
        return allowed(wanted)
    except ValueError:
        choose = f"`{echo(value, 40)}` is not {what}; choose one of: {', '.join(allowed)}.{hint}"
        raise usage.error(choose) from None


def incident_id(value: str, usage: Usage, *, what: str = "an incident") -> int:
    text = value.strip().removeprefix("#")
    # ASCII only ("²" is a digit to isdigit, not to int) and within the database's INTEGER.
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        raise usage.error(f"`{echo(value, 40)}` is not {what} number.")
    return int(text)


@dataclass(frozen=True, slots=True)
class OpenArgs:
    components: list[str]
    impact: Impact
    title: str


# A leading list of components, however it is spaced: "api,payments", "api, payments".
_LEADING_LIST = re.compile(r"^\s*[^\s,]+(?:\s*,\s*[^\s,]+)*")
MAX_TITLE = 200
MAX_MESSAGE = 2000
"""An update's (and a resolution's or a window's closing note's) characters. With its status and an
impact change (about 60 more) it is one notice everywhere: one Slack section (3,000 after Slack's
escaping; the Slack adapter splits text at 2,500) and one Discord embed description (4,096), as
docs/platform-limits.md says. Longer, it would arrive as several messages, out of order with
another channel's."""


def _tidy_leading_list(rest: str) -> str:
    found = _LEADING_LIST.match(rest)
    if found is None:
        return rest
    return re.sub(r"\s*,\s*", ",", found.group().strip()) + rest[found.end() :]


def _title(text: str, usage: Usage) -> str:
    title = text.strip()
    if len(title) > MAX_TITLE:
        raise usage.error(
            f"The title is {len(title)} characters; keep it to {MAX_TITLE} and put the details in an update."
        )
    return title


def _message(
    text: str,
    usage: Usage,
    *,
    what: str = "The message",
    rest: str = "post the rest as another update",
    limit: int = MAX_MESSAGE,
    holds: str = "what one Slack or Discord notice holds",
) -> str:
    message = text.strip()
    if len(message) > limit:
        raise usage.error(
            f"{what} is {len(message):,} characters; keep it to {limit:,} ({holds}) and {rest}."
        )
    return message


def parse_open(rest: str, known: Sequence[Known], usage: Usage) -> OpenArgs:
    parts = _tidy_leading_list(rest).split(maxsplit=2)
    if len(parts) < 3:
        raise usage.error("I need the components, the impact and a title.")
    components = components_arg(parts[0], known)
    impact = _choice(parts[1], Impact, "an impact", usage)
    return OpenArgs(components, impact, _title(parts[2], usage))


@dataclass(frozen=True, slots=True)
class UpdateArgs:
    incident_id: int
    status: IncidentStatus
    message: str
    impact: Impact | None = None
    """A new impact (`impact=major`), when the incident got worse or better than first declared."""


def parse_update(rest: str, usage: Usage) -> UpdateArgs:
    parts = rest.split(maxsplit=2)
    if len(parts) < 3:
        raise usage.error("I need the incident number, its status and a message.")
    number = incident_id(parts[0], usage)
    status = _choice(parts[1], IncidentStatus, "an incident status", usage)
    message, impact = parts[2].strip(), None
    if found := _NEW_IMPACT.match(message):
        hint = " A message that itself starts with `impact =` goes after `--`."
        impact = _choice(found.group(1), Impact, "an impact", usage, hint=hint)
        message = message[found.end() :]
    first, after = _first_word(message)
    # Where the options are typed separately (Discord), `--` marks where the message starts: a
    # message that begins with `impact=` is then never read as a new impact.
    if first == "--":
        message = after
    if not message.strip():
        raise usage.error("I need a message after the impact." if impact else "I need a message.")
    return UpdateArgs(number, status, _message(message, usage), impact)


# `impact=major`, and as people also type it, `impact = major` or `Impact= major`.
_NEW_IMPACT = re.compile(r"impact\s*=\s*(\S*)\s*", re.IGNORECASE)


def _first_word(text: str) -> tuple[str, str]:
    """The first word and the rest as typed (its lines kept)."""
    first, *rest = text.split(maxsplit=1) or [""]
    return first, "".join(rest)


def parse_resolve(rest: str, usage: Usage) -> tuple[int, str]:
    parts = rest.split(maxsplit=1)
    if not parts:
        raise usage.error("Which incident? Give its number.")
    return incident_id(parts[0], usage), _message(parts[1] if len(parts) > 1 else "", usage)


MAX_POSTMORTEM = 6000
"""A postmortem's characters. It is not broadcast, so no notice bounds it; 6,000 is the most a
Discord slash-command option takes, so a postmortem typed on Slack could be typed on Discord too."""


def parse_postmortem(rest: str, usage: Usage) -> tuple[int, str]:
    """`<id> <text>`: the incident's number and its postmortem."""
    parts = rest.split(maxsplit=1)
    if len(parts) < 2:
        raise usage.error("I need the incident number and the postmortem's text.")
    text = _message(
        parts[1],
        usage,
        what="The postmortem",
        rest="link to a longer write-up",
        limit=MAX_POSTMORTEM,
        holds="what a Discord command takes",
    )
    return incident_id(parts[0], usage), text


def parse_component_set(rest: str, known: Sequence[Known], usage: Usage) -> tuple[str, ComponentStatus]:
    parts = rest.split()
    if len(parts) != 2:
        raise usage.error("I need a component and a status.")
    name = resolve(parts[0], known)
    if name is None:
        raise UnknownComponent(parts[0], known)
    return name, _choice(parts[1], ComponentStatus, "a component status", usage)


@dataclass(frozen=True, slots=True)
class AddArgs:
    name: str
    group: str
    aliases: list[str]


def parse_component_add(rest: str, usage: Usage) -> AddArgs:
    parts = rest.split()
    if not parts:
        raise usage.error("I need the new component's name.")
    name = parts[0].lower()
    if len(name) > MAX_NAME:
        raise usage.error(f"The name is {len(name)} characters; keep it to {MAX_NAME}.")
    if not NAME.match(name):
        raise usage.error(f"`{echo(parts[0], 40)}`: a name is lowercase letters, digits, '-' or '_'.")
    group, aliases = "", []
    for option in parts[1:]:
        key, sep, value = option.partition("=")
        if key == "group" and sep:
            if len(value) > MAX_GROUP:
                raise usage.error(
                    f"The group is {len(value)} characters; keep it to {MAX_GROUP} "
                    "(it heads the components on the status page)."
                )
            group = value
        elif key == "aliases" and sep:
            typed = [a.lower() for a in value.split(",")]
            # Numbered as typed, empty places included: `find,,...` has its long alias third.
            if (too_long := long_alias(typed)) is not None:
                raise usage.error(f"{too_long.capitalize()}.")
            aliases = [a for a in typed if a]
        else:
            raise usage.error(f"I don't understand `{echo(option, 40)}`.")
    return AddArgs(name, group, aliases)


def parse_when(value: str, usage: Usage) -> datetime:
    """ISO 8601; without an offset it is UTC (the status page shows UTC)."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):  # OverflowError: 9999-12-31T23:30-01:00 in UTC
        # The format, not a date: a fixed one here is soon past, and the usage's example is one to come.
        raise usage.error(
            f"`{echo(value, 40)}` is not a date and time; write it as YYYY-MM-DDThh:mmZ (UTC)."
        ) from None


MAX_AHEAD = timedelta(days=365)
"""How far ahead a window can be booked: further is a typo (2062 for 2026), which would sit on
the page as upcoming for decades."""
MAX_WINDOW = timedelta(days=7)
"""A window's longest length: a week of maintenance is several windows, each announced."""


@dataclass(frozen=True, slots=True)
class MaintenanceArgs:
    components: list[str]
    starts_at: datetime
    ends_at: datetime
    title: str


def parse_maintenance(rest: str, known: Sequence[Known], usage: Usage, *, now: datetime) -> MaintenanceArgs:
    sub, _, rest = rest.strip().partition(" ")
    if sub.lower() != "schedule":
        raise usage.error(
            "`/maintenance schedule` plans a window; `/maintenance end <id>` ends or cancels one."
        )
    parts = _tidy_leading_list(rest).split(maxsplit=3)
    if len(parts) < 4:
        raise usage.error("I need the components, start, end and a title.")
    components = components_arg(parts[0], known)
    starts_at, ends_at = parse_when(parts[1], usage), parse_when(parts[2], usage)
    if ends_at <= starts_at:
        raise usage.error("The end must be after the start.")
    if ends_at <= now:
        raise usage.error("That window is already over.")
    if starts_at - now > MAX_AHEAD:
        days = -((now - starts_at) // timedelta(days=1))  # rounded up: 365 days and 2 hours is 366
        raise usage.error(
            f"That window starts in {days:,} days; schedule it at most {MAX_AHEAD.days} days ahead."
        )
    if ends_at - starts_at > MAX_WINDOW:
        raise usage.error(
            f"That window lasts {_span(ends_at - starts_at)}; keep a window to {MAX_WINDOW.days} days "
            "and schedule longer work as several."
        )
    return MaintenanceArgs(components, starts_at, ends_at, _title(parts[3], usage))


def _span(length: timedelta) -> str:
    """`7 days 1 hour`: exact, where the limit is near."""
    hours, seconds = divmod(int(length.total_seconds()) % 86400, 3600)
    units = ((length.days, "day"), (hours, "hour"), (seconds // 60, "minute"))
    return " ".join(f"{n:,} {unit}{'s' if n != 1 else ''}" for n, unit in units if n)


def parse_maintenance_end(rest: str, usage: Usage) -> tuple[int, str]:
    """`<id> [note]`: the window's number and what subscribers are told with the end."""
    parts = rest.split(maxsplit=1)
    if not parts:
        raise usage.error("Which window? Give its number (the reply to `/maintenance schedule` says it).")
    return incident_id(parts[0], usage, what="a maintenance window"), _message(
        parts[1] if len(parts) > 1 else "", usage
    )


def split_announcement(rest: str, known: Sequence[Known], usage: Usage) -> tuple[list[str], str]:
    """Leading words that are exactly component names or aliases select the audience; the rest is
    the text. Only exact names count here, so an ordinary first word never becomes a filter; a `--`
    ends the audience, for a text that starts with a component's name (`/announce -- API v2 is out`)."""
    forms = {k.name: k.name for k in known} | {a: k.name for k in known for a in k.aliases}
    words = rest.split(" ")
    components: list[str] = []
    index = 0
    for index, word in enumerate(words):
        if word == "--":  # `/announce api -- text`: the text starts after it, whatever its first word
            index += 1
            break
        parts = [p for p in word.lower().split(",") if p]
        if not parts or not all(p in forms for p in parts):
            break
        components.extend(forms[p] for p in parts if forms[p] not in components)
    else:
        index = len(words)
    text = " ".join(words[index:]).strip()
    if not text:
        raise usage.error("What should I announce?")
    return components, _message(text, usage, what="The announcement", rest="announce the rest next")
