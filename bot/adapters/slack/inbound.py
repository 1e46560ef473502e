"""Reading events that need the Web API: who wrote (users.info and staff user-group membership,
cached), the display names of people mentioned by id, and the message someone reacted to. When
Slack cannot answer, the event still goes through with what the payload had."""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.slack import translate
from bot.core.events import Actor, Platform

log = logging.getLogger(__name__)

# People named by id in one message whose display names are looked up (cached) for relays.
MAX_NAMED_MENTIONS = 5
LOOKUP_ERRORS = (SlackClientError, aiohttp.ClientError, TimeoutError)
# A reacted-to message is read at most this often, with this pause (seconds) between tries: a
# moment's failure (a timeout, a 5xx) should not cost the reaction its message.
MESSAGE_READS = 2
MESSAGE_READ_PAUSE = 0.5

K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    """A bounded cache with expiry where concurrent misses for one key share one load."""

    def __init__(self, load: Callable[[K], Awaitable[V]], *, ttl: float, size: int) -> None:
        self._load = load
        self._ttl = ttl
        self._size = size
        self._values: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._loading: dict[K, asyncio.Future[V]] = {}

    async def get(self, key: K) -> V:
        hit = self._values.get(key)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        pending = self._loading.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        try:
            value = await self._load(key)
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # mark retrieved: waiters (if any) re-raise it themselves
            raise
        finally:
            self._loading.pop(key, None)
        future.set_result(value)
        self._values[key] = (time.monotonic() + self._ttl, value)
        self._values.move_to_end(key)
        while len(self._values) > self._size:
            self._values.popitem(last=False)
        return value


class People:
    """Who is who in the workspace, through the adapter's Web API client."""

    def __init__(
        self,
        client: Callable[[], AsyncWebClient],
        *,
        staff_group_ids: Iterable[str] = (),
        user_cache_seconds: float = 600.0,
    ) -> None:
        self._client = client
        self._staff_groups = tuple(staff_group_ids)
        self._users: TtlCache[str, Mapping[str, Any] | None] = TtlCache(
            self._load_user, ttl=user_cache_seconds, size=10_000
        )
        self._groups: TtlCache[str, frozenset[str]] = TtlCache(self._load_group, ttl=300, size=100)

    async def actor(self, user_id: str, *, fallback_name: str = "") -> Actor:
        """The user as an Actor with display name and the configured staff groups they are in."""
        roles: frozenset[str] = frozenset()
        if self._staff_groups:
            memberships = await asyncio.gather(
                *(self._groups.get(group) for group in self._staff_groups), return_exceptions=True
            )
            roles = frozenset(
                group
                for group, members in zip(self._staff_groups, memberships, strict=True)
                if isinstance(members, frozenset) and user_id in members
            )
        try:
            user = await self._users.get(user_id)
        except LOOKUP_ERRORS as error:
            log.warning("users.info %s failed: %s", user_id, type(error).__name__)
            user = None
        if user is None:
            return Actor(platform=Platform.SLACK, id=user_id, display_name=fallback_name, roles=roles)
        return translate.actor_from_user(user, roles=roles)

    async def names(self, raw: str, *, bot_user_id: str) -> dict[str, str]:
        """Display names for people mentioned by id only, so relayed text reads "@Robin", not
        "@U0ROBIN". From the users cache; a lookup that fails leaves the id."""
        names: dict[str, str] = {}
        for user_id in translate.unnamed_mentions(raw)[:MAX_NAMED_MENTIONS]:
            if user_id == bot_user_id:
                continue
            try:
                user = await self._users.get(user_id)
            except LOOKUP_ERRORS:
                continue
            if user is not None and (name := translate.actor_from_user(user).display_name):
                names[user_id] = name
        return names

    async def _load_user(self, user_id: str) -> Mapping[str, Any] | None:
        try:
            response = await self._client().users_info(user=user_id)
        except SlackApiError as error:
            if error.response.get("error") in ("user_not_found", "user_not_visible"):
                return None
            raise
        user: Mapping[str, Any] | None = response.get("user")
        return user

    async def _load_group(self, group_id: str) -> frozenset[str]:
        try:
            response = await self._client().usergroups_users_list(usergroup=group_id)
        except LOOKUP_ERRORS as error:
            log.warning("usergroups.users.list %s failed: %s", group_id, type(error).__name__)
            raise
        return frozenset(response.get("users") or ())


async def fetch_message(client: AsyncWebClient, item: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The message a reaction is on (`conversations.history`, then `conversations.replies` for a
    thread reply), or None when it cannot be read. A failed read is tried once more after a pause:
    without the message the reaction's thread is unknown, and a 🎫 then opens no ticket."""
    channel, ts = item.get("channel"), item.get("ts")
    if item.get("type") != "message" or not channel or not ts:
        return None
    for attempt in range(1, MESSAGE_READS + 1):
        try:
            return await _read_message(client, str(channel), str(ts))
        except LOOKUP_ERRORS as error:
            log.info(
                "could not fetch reacted message %s/%s (try %d): %s",
                channel,
                ts,
                attempt,
                type(error).__name__,
            )
        if attempt < MESSAGE_READS:
            await asyncio.sleep(MESSAGE_READ_PAUSE)
    return None


async def _read_message(client: AsyncWebClient, channel: str, ts: str) -> Mapping[str, Any] | None:
    history = await client.conversations_history(
        channel=channel, latest=ts, oldest=ts, inclusive=True, limit=1
    )
    for message in history.get("messages") or ():
        if message.get("ts") == ts:
            return message  # type: ignore[no-any-return]  # the Web API's JSON
    replies = await client.conversations_replies(channel=channel, ts=ts, inclusive=True, limit=1)
    for message in replies.get("messages") or ():
        if message.get("ts") == ts:
            return message  # type: ignore[no-any-return]  # the Web API's JSON
    return None
