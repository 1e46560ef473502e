"""Resuming the gateway session of a process that died. Discord keeps a session whose connection
closed abnormally (not with 1000 or 1001) resumable for a while, and a RESUME (op 6) on its
`resume_gateway_url`, from any process, replays the dispatches after the given sequence number. A
new process IDENTIFYs a new session, to which nothing of the old one is replayed; so each process
stores its session per shard (never the token), and the next one drains the old session on a socket
of its own: RESUME, collect the messages replayed, close. That reaches what the channel catch-up
cannot: DMs and threads, of which Discord offers no list. The drain closes with 4000, never 1000:
the old session stays stored and resumable until what it replayed is settled, so a process killed
in between leaves it to the next one.

Each stored session has an owner, the process that saves it: another process on the same shard
stores nothing over it and resumes it only once the owner is gone (handed it over at its stop, or
stopped saving it for `STALE_AFTER`); resumed while its owner lives, Discord would move the session
off the owner's socket.

The stored sequence number is a settled one: every message dispatched up to it was handled by the
dispatcher (committed, replied to), so one received but not finished at a crash is replayed, and
the dispatcher's claim drops what was finished twice."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import aiohttp
import discord
import yarl

from bot.adapters.discord.translate import emoji_name, reaction_event_id

log = logging.getLogger(__name__)

REPLAY_TIMEOUT: Final = 10.0
"""Seconds a start spends, at most, collecting an old session's replay."""

SAVE_EVERY: Final = 1.0
"""Seconds between two writes of the sessions: each one refreshes the row, so others see it kept."""

STALE_AFTER: Final = 5 * SAVE_EVERY
"""Seconds after its last save that a stored session counts as its owner's no more: the owner
died, and another process may take the session over and resume it. Several missed saves, so a live
process whose write was slowed (a busy database, a long pause of its event loop) does not have its
session resumed under it (Discord would disconnect it); few, because a killed process's messages
wait that long for the next one to replay them."""

OPEN_AT_MOST: Final = 300.0
"""Seconds a message may stay unsettled before it no longer holds the stored sequence back (a
handler stuck that long would otherwise pin the session to the past)."""

_NO_SHARD: Final = -1

_DISPATCH, _HEARTBEAT, _RESUME, _RECONNECT, _INVALID_SESSION, _HELLO = 0, 1, 6, 7, 9, 10


@dataclass(frozen=True, slots=True)
class GatewaySession:
    """What a RESUME needs, less the token."""

    shard_id: int
    session_id: str
    resume_url: str
    sequence: int


class SessionStore(Protocol):
    """Where the sessions are kept (the database, wired by the composition root): one per shard,
    each kept by one process, its `owner` (a token made at the adapter's start). Two processes on
    one shard (a misconfiguration, or a deploy that starts the new process before stopping the old
    one) would otherwise store over each other, and one would resume the other's live session."""

    async def claim(
        self, shard_ids: Sequence[int], *, owner: str, stale_after: float
    ) -> list[GatewaySession]:
        """The sessions of these shards no live process keeps (handed over, or not saved for
        `stale_after` seconds), `owner`'s from now."""
        ...

    async def save(
        self, sessions: Sequence[GatewaySession], *, owner: str, hand_over: bool = False
    ) -> set[int]:
        """Store the sessions of the shards whose row is `owner`'s or absent; the shards stored.
        `hand_over`: left without an owner, for the next process to take at once."""
        ...

    async def forget(self, session: GatewaySession, *, owner: str) -> None: ...


def current_session(client: discord.Client, shard_id: int) -> GatewaySession | None:
    """discord.py's session on one shard, None before READY. It keeps the session id, resume URL
    and last sequence number on its websocket object and offers no public way to read them, so this
    is the one place that reaches into discord.py (`_get_websocket` and the socket's attributes);
    tests/adapters/discord/test_resume.py checks it against the emulator's session."""
    try:
        socket = client._get_websocket(shard_id=shard_id)
    except KeyError:  # a sharded client before this shard connected
        return None
    session_id = getattr(socket, "session_id", None)
    sequence = getattr(socket, "sequence", None)
    if socket is None or session_id is None or sequence is None:
        return None
    return GatewaySession(
        shard_id=shard_id, session_id=str(session_id), resume_url=str(socket.gateway), sequence=int(sequence)
    )


def shard_of(guild: discord.Guild | None) -> int:
    """The shard an event of `guild` came on: the guild's, and shard 0 for DMs (as Discord sends
    them)."""
    return guild.shard_id if guild is not None else 0


def reaction_id(payload: discord.RawReactionActionEvent) -> str:
    """The id a reaction is settled by: its event's (`translate.reaction_to_event`)."""
    return reaction_event_id(payload.message_id, payload.user_id, emoji_name(payload.emoji))


def replayed_reaction(client: discord.Client, data: dict[str, Any]) -> discord.RawReactionActionEvent:
    """A reaction an old session replayed, as discord.py would have dispatched it: with the member
    (their roles say whether a 🎫 is staff's), built as discord.py's parser does, from its private
    connection state (tests/adapters/discord/test_resume.py checks a staff 🎫 replayed)."""
    emoji = discord.PartialEmoji.from_dict(data["emoji"])
    payload = discord.RawReactionActionEvent(data, emoji, "REACTION_ADD")  # type: ignore[arg-type]  # the gateway's dict
    guild = client.get_guild(payload.guild_id) if payload.guild_id else None
    member = data.get("member")
    payload.member = (
        discord.Member(data=member, guild=guild, state=client._connection)
        if guild is not None and member
        else None
    )
    return payload


@dataclass
class Settled:
    """Per shard, the highest sequence number below which every message the bot received is settled:
    the one it is safe to resume from. Fed synchronously as discord.py parses a message (`received`,
    when the socket's sequence is that message's) and by the dispatcher (`settled`)."""

    _open: dict[str, tuple[int, int, float]] = field(default_factory=dict)  # id -> shard, seq, since
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    def received(self, shard_id: int, sequence: int, message_id: str) -> None:
        self._open[message_id] = (shard_id, sequence, time.monotonic())

    def expect(self, message_id: str) -> None:
        """A message replayed by an old session: awaited by `wait`, holding back no live shard."""
        self.received(_NO_SHARD, 0, message_id)

    def settled(self, message_id: str) -> None:
        self._open.pop(message_id, None)
        self._changed.set()

    async def wait(self, message_ids: set[str]) -> None:
        """Until none of `message_ids` is open any more."""
        while message_ids & self._open.keys():
            self._changed.clear()
            await self._changed.wait()

    def safe(self, shard_id: int, latest: int) -> int:
        """The sequence to store for the shard whose socket has seen up to `latest`."""
        too_old = time.monotonic() - OPEN_AT_MOST
        for message_id, (_, sequence, since) in list(self._open.items()):
            if since < too_old:
                log.warning("discord: message %s (seq %d) unsettled; not held for", message_id, sequence)
                del self._open[message_id]
        pending = [sequence for shard, sequence, _ in self._open.values() if shard == shard_id]
        return min(latest, min(pending) - 1) if pending else latest


@dataclass(frozen=True, slots=True)
class Replayed:
    """What a RESUME of an old session brought: the people's messages (channel id, message id),
    their reactions (as dispatched: a staff 🎫 opens a ticket), and how many interactions came too
    late to answer."""

    resumed: bool
    messages: list[tuple[int, int]]
    interactions: int = 0
    reactions: list[dict[str, Any]] = field(default_factory=list)


async def replay(stored: GatewaySession, *, token: str) -> Replayed:
    """RESUME `stored` on a socket of its own, collect the replayed messages until RESUMED, then close
    with 4000, which leaves the session resumable (1000 would end it): until what it replayed is
    handled, a process killed meanwhile leaves it to the next one. An invalid session (op 9), a
    failure or `REPLAY_TIMEOUT` return what was collected, `resumed` False."""
    messages: list[tuple[int, int]] = []
    reactions: list[dict[str, Any]] = []
    interactions = 0
    sequence = stored.sequence
    url = yarl.URL(stored.resume_url).with_query(v=10, encoding="json")
    try:
        async with (
            asyncio.timeout(REPLAY_TIMEOUT),
            aiohttp.ClientSession() as http,
            http.ws_connect(url, max_msg_size=0, autoping=True) as socket,
        ):
            hello = await socket.receive_json()
            if hello.get("op") != _HELLO:
                raise ValueError(f"expected HELLO, got op {hello.get('op')}")
            resume = {"token": token, "session_id": stored.session_id, "seq": stored.sequence}
            await socket.send_json({"op": _RESUME, "d": resume})
            beating = asyncio.create_task(
                _heartbeat(socket, hello["d"]["heartbeat_interval"] / 1000, lambda: sequence)
            )
            try:
                async for frame in socket:
                    if frame.type != aiohttp.WSMsgType.TEXT:
                        break  # closed (or something this JSON socket does not speak)
                    payload: dict[str, Any] = json.loads(frame.data)
                    op, kind = payload.get("op"), payload.get("t")
                    if payload.get("s") is not None:
                        sequence = int(payload["s"])
                    if op == _HEARTBEAT:
                        await socket.send_json({"op": _HEARTBEAT, "d": sequence})
                    elif op == _INVALID_SESSION:
                        log.info("discord: previous session (shard %d) no longer resumable", stored.shard_id)
                        break
                    elif op == _RECONNECT:
                        break
                    elif op == _DISPATCH and kind == "RESUMED":
                        await socket.close(code=4000)
                        return Replayed(True, messages, interactions, reactions)
                    elif op == _DISPATCH and kind == "MESSAGE_CREATE":
                        data = payload.get("d") or {}
                        if not (data.get("author") or {}).get("bot"):
                            messages.append((int(data["channel_id"]), int(data["id"])))
                    elif op == _DISPATCH and kind == "MESSAGE_REACTION_ADD":
                        reactions.append(payload.get("d") or {})
                    elif op == _DISPATCH and kind == "INTERACTION_CREATE":
                        interactions += 1
            except asyncio.CancelledError:
                # Cut off (a stop, or REPLAY_TIMEOUT) before RESUMED: not 1000, which would end the
                # session with what it still holds; a stop leaves it stored for the next process.
                await socket.close(code=4000)
                raise
            finally:
                beating.cancel()
            await socket.close(code=1000)
    except (TimeoutError, aiohttp.ClientError, OSError, ValueError, KeyError) as error:
        log.warning(
            "discord: could not resume the previous session (shard %d): %s",
            stored.shard_id,
            type(error).__name__ if isinstance(error, TimeoutError) else error,
        )
    return Replayed(False, messages, interactions, reactions)


async def _heartbeat(
    socket: aiohttp.ClientWebSocketResponse, interval: float, sequence: Callable[[], int]
) -> None:
    """Heartbeats as the gateway asks (the first after a random share of the interval), while a
    long replay is collected."""
    await asyncio.sleep(interval * random.random())  # jitter, not a secret
    while not socket.closed:
        await socket.send_json({"op": _HEARTBEAT, "d": sequence()})
        await asyncio.sleep(interval)
