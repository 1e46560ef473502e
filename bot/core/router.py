"""Routes: event type + matcher + guards -> handler. The best-scoring route answers, exactly once.

A matcher is a pure function of the event that returns a `Match` (score in [0, 1], captures, the
unconsumed rest, and any data the handler needs so matching is not done twice) or None. Guards run
only for the candidate being considered; they may allow it, skip it (try the next candidate), or
deny it with a text the user sees.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from bot.core.commands import Catalogue, Command, Option
from bot.core.events import ActionInvoked, CommandInvoked, InboundEvent, MessageReceived, ReactionAdded

if TYPE_CHECKING:
    from bot.core.context import HandlerContext

E = TypeVar("E", bound=InboundEvent)


@dataclass(frozen=True, slots=True)
class Match:
    score: float
    captures: Mapping[str, str] = field(default_factory=dict)
    rest: str = ""
    data: Any = None
    typed: str | None = None
    """`rest` as the person typed it, where the matcher read it otherwise (None: `rest` is as typed).
    A command's `rest` has plain spaces for the words a handler parses; take free text it relays
    from `as_typed`."""

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError("Match.score is in [0, 1]")
        if self.typed is not None and len(self.typed) != len(self.rest):
            raise ValueError("Match.typed is `rest` as typed, character for character")

    def as_typed(self, text: str) -> str:
        """`text`, the end of `rest` a handler relays (a reply, a summary), exactly as it was typed:
        the French no-break space before "?" stays. The words before it were read with plain spaces."""
        if not self.rest.endswith(text):
            raise ValueError(f"{text[:40]!r} is not the end of this match's rest")
        if self.typed is None or not text:
            return text
        return self.typed[len(self.typed) - len(text) :]


@dataclass(frozen=True, slots=True)
class Allow:
    """Go ahead. `data` is what the guard looked up, handed to the handler as `ctx.allowed` so the
    handler does not query it again."""

    data: Any = None


@dataclass(frozen=True, slots=True)
class Skip:
    pass


@dataclass(frozen=True, slots=True)
class Deny:
    """Refuse with a text for the user; `audit` names the action for the audit log."""

    text: str
    audit: str = ""


Verdict = Allow | Skip | Deny
Matcher = Callable[[Any], Match | None]
Guard = Callable[[Any, "HandlerContext"], Awaitable[Verdict]]
Handler = Callable[[Any, "HandlerContext"], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Route(Generic[E]):
    event_type: type[E]
    matcher: Matcher
    handler: Handler
    guards: tuple[Guard, ...]
    name: str
    order: int


class Router:
    """A named group of routes, one per capability module; include routers into each other."""

    _counter = 0

    def __init__(self, name: str) -> None:
        self.name = name
        self.routes: list[Route[Any]] = []
        self.fallbacks: dict[type[InboundEvent], Handler] = {}
        self.commands: list[Command] = []
        self.groups: dict[str, str] = {}

    def command(
        self, words: str, summary: str, *options: Option, staff: bool = False, implicit: str = ""
    ) -> Command:
        """Declare a slash command this router answers (`"ticket close"`, its summary, its options
        in the order they are typed): it appears in `/support help` and on every platform."""
        declared = Command(tuple(words.split()), summary, options, staff=staff, implicit=implicit)
        self.commands.append(declared)
        return declared

    def group(self, words: str, summary: str) -> None:
        """Describe a command that has subcommands (`"ticket"`), where a platform lists it as such."""
        self.groups[words] = summary

    def catalogue(self) -> Catalogue:
        """Every command declared here and in the included routers (checked for consistency)."""
        return Catalogue(tuple(self.commands), dict(self.groups))

    def on(
        self, event_type: type[E], matcher: Matcher | None = None, *, guards: Iterable[Guard] = ()
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            Router._counter += 1
            self.routes.append(
                Route(
                    event_type=event_type,
                    matcher=matcher or always(),
                    handler=handler,
                    guards=tuple(guards),
                    name=f"{self.name}.{handler.__name__}",
                    order=Router._counter,
                )
            )
            return handler

        return register

    def fallback(self, event_type: type[InboundEvent]) -> Callable[[Handler], Handler]:
        """What handles an event of this type that no route matched."""

        def register(handler: Handler) -> Handler:
            self.fallbacks[event_type] = handler
            return handler

        return register

    def include(self, *routers: Router) -> Router:
        for router in routers:
            self.routes.extend(router.routes)
            self.commands.extend(router.commands)
            self.groups.update(router.groups)
            for event_type, handler in router.fallbacks.items():
                self.fallbacks.setdefault(event_type, handler)
        return self

    def candidates(self, event: InboundEvent) -> list[tuple[Route[Any], Match]]:
        """Matching routes, best first; equal scores keep registration order (first wins)."""
        found = []
        for route in self.routes:
            if isinstance(event, route.event_type):
                match = route.matcher(event)
                if match is not None:
                    found.append((route, match))
        found.sort(key=lambda pair: (-pair[1].score, pair[0].order))
        return found

    def fallback_for(self, event: InboundEvent) -> Handler | None:
        for event_type in type(event).__mro__:
            if event_type in self.fallbacks:
                return self.fallbacks[event_type]
        return None


# ---------------------------------------------------------------------------------------------
# Matchers


def always(score: float = 0.01) -> Matcher:
    def match(_event: InboundEvent) -> Match:
        return Match(score)

    return match


# Spaces other than " " that people type between words without seeing the difference: a no-break
# space (Option+Space on a Mac, text pasted from a web page), thin and ideographic spaces.
_UNICODE_SPACES = re.compile("[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]")


def command(name: str, sub: str | None = None, *, aliases: Iterable[str] = ()) -> Matcher:
    """`/name` (score 0.9) or `/name sub ...` (score 1.0, so a subcommand beats its parent).

    The rest has plain spaces wherever a Unicode space was typed, so `/ticket claim\u00a012` reads
    as `/ticket claim 12` in every handler's parsing; `Match.as_typed` gives back the free text."""
    names = {name, *aliases}

    def match(event: CommandInvoked) -> Match | None:
        if event.name.lower() not in names:
            return None
        typed = event.args.strip()
        read = _UNICODE_SPACES.sub(" ", typed)  # one character for one: positions stay as typed
        if sub is not None:
            head, _, rest = read.partition(" ")
            if head.lower() != sub:
                return None
            read = rest.lstrip()
            typed = typed[len(typed) - len(read) :]
        return Match(0.9 if sub is None else 1.0, rest=read, typed=typed if typed != read else None)

    return match


def action(prefix: str) -> Matcher:
    """Button clicks whose action id is `prefix` or starts with `prefix:`."""

    def match(event: ActionInvoked) -> Match | None:
        if event.action_id == prefix:
            return Match(1.0, rest=event.value)
        if event.action_id.startswith(prefix + ":"):
            return Match(1.0, rest=event.value, captures={"arg": event.action_id[len(prefix) + 1 :]})
        return None

    return match


def pattern(regex: str, *, score: float = 0.8) -> Matcher:
    """A message matching `regex` (case-insensitive, searched); named groups become captures."""
    compiled = re.compile(regex, re.IGNORECASE)

    def match(event: MessageReceived) -> Match | None:
        found = compiled.search(event.text)
        if found is None:
            return None
        captures = {k: v for k, v in found.groupdict().items() if v is not None}
        return Match(score, captures=captures, rest=event.text[found.end() :].strip())

    return match


def emoji(*names: str) -> Matcher:
    """A reaction with one of these neutral emoji names."""
    wanted = set(names)

    def match(event: ReactionAdded) -> Match | None:
        return Match(1.0) if event.emoji in wanted else None

    return match


def text_predicate(predicate: Callable[[str], bool], *, score: float) -> Matcher:
    """A message whose text satisfies `predicate` (a pure reading such as "asks for a person")."""

    def match(event: MessageReceived) -> Match | None:
        return Match(score) if predicate(event.text) else None

    return match
