"""A person's server roles for what they do in their DMs with the bot. Discord sends a DM with the
user alone (no member, no roles), so `STAFF_ROLE_IDS` would not know staff there: the bot looks
them up on the servers it serves, and keeps what it found for a few minutes."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

import aiohttp
import discord

from bot.adapters.discord.bounded import bounded
from bot.adapters.discord.translate import actor_from_user
from bot.core.events import Actor, InboundEvent

log = logging.getLogger(__name__)

ROLES_KEPT_SECONDS: Final = 300.0
"""How long roles looked up for a DM are used before being looked up again: a role taken away
counts in DMs within five minutes, and a busy DM costs one lookup per server every five minutes."""
MAX_PEOPLE: Final = 1024


class DirectMessageRoles:
    def __init__(
        self,
        client: Callable[[], discord.Client],
        *,
        timeout: float,
        keep: float = ROLES_KEPT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._timeout = timeout
        self._keep = keep
        self._clock = clock
        self._known: OrderedDict[str, tuple[float, frozenset[str]]] = OrderedDict()

    async def with_roles(self, event: InboundEvent) -> InboundEvent:
        """The event with its actor's server roles, when it came from a DM (else as it is)."""
        actor = event.actor
        if not event.conversation.is_direct or actor.roles or actor.is_bot:
            return event
        roles = await self._roles_of(actor)
        if not roles:
            return event
        return dataclasses.replace(event, actor=dataclasses.replace(actor, roles=roles))

    async def _roles_of(self, actor: Actor) -> frozenset[str]:
        now = self._clock()
        known = self._known.get(actor.id)
        if known is not None and now - known[0] < self._keep:
            return known[1]
        # All servers at once: a DM waits for the slowest lookup, not for their sum.
        found = await asyncio.gather(*(self._on(guild, actor) for guild in self._client().guilds))
        everywhere = frozenset(role for roles in found if roles for role in roles)
        if any(roles is None for roles in found):
            # Not all known this time: the roles found count, nothing is kept, and the next DM asks again.
            return everywhere
        self._known[actor.id] = (now, everywhere)
        self._known.move_to_end(actor.id)
        while len(self._known) > MAX_PEOPLE:
            self._known.popitem(last=False)
        return everywhere

    async def _on(self, guild: discord.Guild, actor: Actor) -> frozenset[str] | None:
        """Their roles on one server (none if they are not on it); None when it could not be told."""
        member = guild.get_member(int(actor.id))
        if member is None:
            try:
                member = await bounded(guild.fetch_member(int(actor.id)), self._timeout)
            except discord.NotFound:
                return frozenset()
            except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as error:
                log.warning("discord: could not look up %s on server %s: %s", actor.id, guild.id, error)
                return None
        return actor_from_user(member).roles
