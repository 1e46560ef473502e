"""Autocomplete for slash-command options (Discord shows them while a person types): ticket numbers
and status component names, read from storage. Platform-neutral; `app.py` hands it to the adapter."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence

from bot.core.events import Actor
from bot.core.staff import StaffPolicy
from bot.status.snapshot import known_components
from storage import tickets_repo
from storage.db import Database

MAX_CHOICES = 25  # Discord shows at most 25
LABEL = 100  # and a choice's label and value are at most 100 characters

Suggester = Callable[[str, str, Actor], Awaitable[Sequence[tuple[str, str]]]]

_LAST_WORD = re.compile(r"^(?P<head>.*[\s,])?(?P<last>[^\s,]*)$", re.DOTALL)


def make_suggester(database: Database, staff: StaffPolicy) -> Suggester:
    """`suggest(kind, typed, actor)` → up to 25 (label, value) choices; kinds "ticket", "component"."""

    async def suggest(kind: str, typed: str, actor: Actor) -> Sequence[tuple[str, str]]:
        async with database.session() as session:
            if kind == "ticket":
                # Staff pick from the whole open queue; a customer only sees their own tickets.
                mine = None if staff.is_staff(actor) else actor.key
                found = await tickets_repo.suggest_open(
                    session, typed=typed, requester_key=mine, limit=MAX_CHOICES
                )
                return [(f"#{t.number} {t.summary}"[:LABEL], str(t.number)) for t in found]
            if kind == "component":
                names = [(k.name, k.aliases) for k in await known_components(session)]
                return complete_names(typed, names)
        return []

    return suggest


def complete_names(typed: str, known: Sequence[tuple[str, Sequence[str]]]) -> list[tuple[str, str]]:
    """Complete the last word of a list like `api pay` → `api payments`: options such as
    `/subscribe components:` take several names, so earlier words are kept and not offered again.
    A name matches when it or one of its aliases starts with the word (then: contains it)."""
    found = _LAST_WORD.match(typed)
    head = (found["head"] or "") if found else ""
    last = (found["last"] if found else typed).lower()
    taken = {word.lower() for word in re.split(r"[\s,]+", head) if word}
    starts, contains = [], []
    for name, aliases in known:
        if name in taken:
            continue
        forms = (name, *aliases)
        if any(form.startswith(last) for form in forms):
            starts.append(name)
        elif any(last in form for form in forms):
            contains.append(name)
    return [((head + name)[:LABEL], (head + name)[:LABEL]) for name in [*starts, *contains][:MAX_CHOICES]]
