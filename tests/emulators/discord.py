"""A Discord emulator: REST API and gateway websocket on 127.0.0.1, so the real discord.py runs offline.

Usage::

    async with DiscordEmulator() as discord_emu:
        guild = discord_emu.add_guild("Acme")
        help_channel = discord_emu.add_channel(guild, "help")
        casey = discord_emu.add_user("casey")
        # point discord.py at it: Route.BASE = discord_emu.api_base,
        # DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(discord_emu.gateway_url)
        ...
        message = await discord_emu.user_says(casey, help_channel, "how do I reset my password?")
        reply = await discord_emu.wait_for("POST", "/channels/*/messages")
        assert "Settings" in reply.json["content"]

What it serves:
- Login (`GET /users/@me`, `/oauth2/applications/@me`, `/gateway/bot`), command sync (`PUT
  /applications/{app}/commands`, also per guild), a guild member (get), messages (create, edit,
  get), threads (from a message, without one, forum posts, thread members), channels (get),
  interaction callbacks and follow-up webhooks (`/webhooks/{app}/{token}`, `@original` edit and
  delete).
- The gateway: HELLO, IDENTIFY (with `shard: [id, count]`), READY, GUILD_CREATE for the guilds of
  that shard, heartbeats (op 1 → op 11), and dispatches the test asks for: MESSAGE_CREATE
  (`user_says`), INTERACTION_CREATE for commands, autocomplete and buttons (`run_command`,
  `autocomplete`, `click`), MESSAGE_REACTION_ADD (`react`). The bot's own posts come back as
  MESSAGE_CREATE and created threads as THREAD_CREATE, as on Discord.
- Sessions as Discord keeps them: a dropped socket leaves its session resumable; dispatches meant
  for it are kept, and a RESUME (op 6), on any socket, replays those after the client's last
  sequence number, then RESUMED. A client that closes with 1000 or 1001 ends its session; a RESUME
  of an ended or unknown session gets INVALID_SESSION (op 9, `d: false`). A new IDENTIFY is a new
  session: nothing of an old one reaches it (`.resumes` records each RESUME that succeeded).
  `hold_identify()` keeps the next IDENTIFYs waiting (no READY yet) until `release_identify()`;
  with `.withhold_resumed` set, a RESUME is replayed but RESUMED is not sent (a long replay).
- Outages and stalls: `await go_down()` drops every socket and answers REST and new sockets 503
  until `come_back()`; `stall_next(seconds=..., path=..., method=...)` applies a request but
  answers it late (with `applied_late=True`, applies it only then too; with `dropped=True`, never
  applies it and answers 504 then: a request lost on its way). Each stalled request is in
  `.stalled` from the moment it arrives, so a test can act while it hangs (kill the bot); a stall
  ends early when the emulator closes.
- Channel history: `GET /channels/{id}/messages` with `after` and `limit`, newest first.
- Rate limits with real headers (`X-RateLimit-Limit/-Remaining/-Reset/-Reset-After/-Bucket`):
  per-route buckets of `route_limit` requests per `route_window` seconds (per channel, guild or
  webhook, as Discord's major parameters), and the global limit of `global_limit` requests per
  second (interaction callbacks and follow-ups exempt), answered with a global 429 when exceeded.
- Interaction follow-ups as Discord does them: the first follow-up after a defer replaces the
  "thinking…" message and keeps the defer's visibility (ephemeral or not); later ones, or any after
  the placeholder was deleted, are new messages. Follow-ups need no channel permission.
- Failures on demand: `fail_next(status=429, retry_after=..., global_=...)` (with `Via` and
  `retry_after`, so discord.py waits and retries), `fail_next(status=500)`, `fail_next(status=403)`;
  `deny_access(channel)` makes every request to that channel answer 403 Missing Access;
  `add_channel(..., hidden_from_bot=True)` also tells the bot through a permission overwrite.
- Thread limits: `guild.private_threads = False` refuses private threads, `guild.max_active_threads`
  caps active threads (forum posts included, error 160006), `channel.threads_allowed = False`
  refuses threads in one channel (403).

- Attachments: a message created with files (multipart/form-data: `payload_json` and `files[n]`, as
  discord.py sends them) keeps them as `attachments` and records each in `.uploads` (`Uploaded(
  channel_id, message_id, filename, description, content_type, data)`); files over
  `upload_limit` bytes (10 MiB, Discord's default) are refused with 413, code 40005.

What a test reads: `.calls` (every REST request: method, path without `/api/v10`, query, JSON body,
status, and `files` for a multipart request),
`await .wait_for(method, path, where=..., timeout=5)` (each matching call is returned once,
in order, whether it happened before or after the wait started), `.messages` (id → message payload),
`.channel_messages(channel)`, `.identifies` (one per gateway session) and `.live_session(shard)`.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.parser
import email.policy
import fnmatch
import hashlib
import itertools
import json
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

PAYLOADS = Path(__file__).resolve().parent.parent / "payloads" / "discord"
API_PREFIX = "/api/v10"
# Everything but administrator: what a well-configured support bot is usually granted.
ALL_PERMISSIONS = str((1 << 50) - 1 - 8)
VIEW_AND_SEND = (1 << 10) | (1 << 11) | (1 << 38)  # view channel, send messages, send in threads


def template(name: str) -> dict[str, Any]:
    """A captured payload from tests/payloads/discord, as a fresh dict to fill in."""
    return json.loads((PAYLOADS / f"{name}.json").read_text(encoding="utf-8"))


def json_response(data: Any, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # discord.py reads a body as JSON only when Content-Type is exactly application/json.
    return web.Response(
        status=status,
        body=json.dumps(data).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
    )


@dataclass
class User:
    id: str
    username: str
    bot: bool = False

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "username": self.username,
            "global_name": self.username.capitalize(),
            "discriminator": "0",
            "avatar": None,
            "public_flags": 0,
        }
        if self.bot:
            data["bot"] = True
        return data


@dataclass
class Channel:
    id: str
    name: str
    guild_id: str | None
    type: int = 0  # 0 text, 1 DM, 11 public thread, 12 private thread, 15 forum
    parent_id: str | None = None
    owner_id: str | None = None
    overwrites: list[dict[str, Any]] = field(default_factory=list)
    threads_allowed: bool = True  # False: creating threads here answers 403 (no Create Threads permission)

    def payload(self) -> dict[str, Any]:
        data: dict[str, Any] = {"id": self.id, "type": self.type, "name": self.name, "flags": 0}
        if self.type == 1:
            return {**data, "recipients": [], "last_message_id": None}
        data.update(
            guild_id=self.guild_id,
            position=0,
            permission_overwrites=self.overwrites,
            nsfw=False,
            parent_id=self.parent_id,
            topic=None,
            rate_limit_per_user=0,
            last_message_id=None,
        )
        if self.type in (11, 12):
            data.update(
                owner_id=self.owner_id,
                message_count=0,
                member_count=1,
                thread_metadata={
                    "archived": False,
                    "auto_archive_duration": 1440,
                    "archive_timestamp": "2026-11-24T09:00:00.000000+00:00",
                    "locked": False,
                    "invitable": False,
                },
            )
        if self.type == 15:
            data.update(available_tags=[], default_reaction_emoji=None, default_sort_order=None)
        return data


@dataclass
class Guild:
    id: str
    name: str
    channels: dict[str, Channel] = field(default_factory=dict)
    roles: dict[str, str] = field(default_factory=dict)  # id -> name
    members: dict[str, list[str]] = field(default_factory=dict)  # user id -> role ids
    max_active_threads: int = 1000
    private_threads: bool = True

    def role_payloads(self) -> list[dict[str, Any]]:
        roles = []
        for position, (role_id, name) in enumerate(self.roles.items()):
            roles.append(
                {
                    "id": role_id,
                    "name": name,
                    "permissions": ALL_PERMISSIONS if role_id == self.id else "0",
                    "position": position,
                    "color": 0,
                    "hoist": False,
                    "managed": False,
                    "mentionable": True,
                    "flags": 0,
                }
            )
        return roles


@dataclass(frozen=True)
class Uploaded:
    """A file that came with a message: its form part, as Discord received it."""

    channel_id: str
    message_id: str
    filename: str
    description: str | None
    content_type: str
    data: bytes

    @property
    def is_png(self) -> bool:
        return self.data.startswith(b"\x89PNG\r\n\x1a\n")


@dataclass(frozen=True)
class _FilePart:
    field: str
    filename: str
    content_type: str
    data: bytes


@dataclass
class Call:
    """One REST request the bot made."""

    method: str
    path: str
    query: dict[str, str]
    json: Any
    status: int = 0
    files: list[_FilePart] = field(default_factory=list)

    @property
    def content(self) -> str:
        return (self.json or {}).get("content") or "" if isinstance(self.json, dict) else ""


@dataclass
class _Failure:
    status: int
    method: str | None
    path: str | None
    retry_after: float
    global_: bool
    code: int
    remaining: int


@dataclass
class _Stall:
    """Requests to hold (see `stall_next`); `left` counts down the ones still to be held."""

    path: str | None
    method: str | None
    seconds: float
    applied_late: bool
    dropped: bool
    left: int


@dataclass
class _Session:
    ws: web.WebSocketResponse
    shard_id: int = 0
    shard_count: int = 1
    seq: int = 0
    identified: asyncio.Event = field(default_factory=asyncio.Event)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    # What was dispatched, for a RESUME: Discord replays what the client missed within the session.
    sent: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=5000))


@dataclass
class _Interaction:
    id: str
    token: str
    channel_id: str
    guild_id: str | None
    ephemeral: bool = False
    original_id: str | None = None


class DiscordEmulator:
    def __init__(
        self,
        *,
        route_limit: int = 5,
        route_window: float = 5.0,
        global_limit: int = 50,
        heartbeat_interval_ms: int = 41_250,
        upload_limit: int = 10 * 1024 * 1024,
    ) -> None:
        self.upload_limit = upload_limit
        self.uploads: list[Uploaded] = []
        self.attachment_files: dict[str, bytes] = {}  # the path of an attachment URL -> its bytes
        self.downloads: list[tuple[str, int]] = []  # (path, status) of each attachment fetched
        self.route_limit = route_limit
        self.route_window = route_window
        self.global_limit = global_limit
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self._ids = itertools.count(1)
        self.bot = User(id=self.snowflake(), username="supportbot", bot=True)
        self.application_id = self.bot.id
        self.token = "emulated-bot-token"
        self.guilds: dict[str, Guild] = {}
        self.channels: dict[str, Channel] = {}
        self.users: dict[str, User] = {self.bot.id: self.bot}
        self.messages: dict[str, dict[str, Any]] = {}
        self.commands: dict[str | None, list[dict[str, Any]]] = {}  # guild id (None: global) -> commands
        self.calls: list[Call] = []
        self.identifies: list[dict[str, Any]] = []
        self.denied: set[str] = set()
        self.thread_members: dict[str, set[str]] = {}
        self.interactions: dict[str, _Interaction] = {}
        self._claimed: set[int] = set()
        self._changed = asyncio.Condition()
        self._failures: list[_Failure] = []
        self._buckets: dict[str, tuple[float, int]] = {}
        self._global: deque[float] = deque()
        self._sessions: list[_Session] = []
        self._resumable: dict[str, _Session] = {}
        self._stalls: list[_Stall] = []
        self.stalled: list[Call] = []
        self._closing = asyncio.Event()
        self.down = False
        self.resumes: list[dict[str, Any]] = []
        self._identify_gate: asyncio.Event | None = None
        self.withhold_resumed = False
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> DiscordEmulator:
        app = web.Application()
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/attachments/{tail:.*}", self._attachment_bytes)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._closing.set()  # requests still stalled are let go, or the server would wait for them
        for session in list(self._sessions):
            await session.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}{API_PREFIX}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    # -- the world ---------------------------------------------------------------------------

    def snowflake(self) -> str:
        # Consecutive ids differ in the timestamp bits, so consecutive guilds land on different shards.
        return str((10**12 + next(self._ids)) << 22)

    def add_user(self, username: str, *, bot: bool = False) -> User:
        user = User(id=self.snowflake(), username=username, bot=bot)
        self.users[user.id] = user
        return user

    def add_guild(self, name: str = "Acme") -> Guild:
        guild = Guild(id=self.snowflake(), name=name)
        guild.roles[guild.id] = "@everyone"
        guild.members[self.bot.id] = []
        self.guilds[guild.id] = guild
        return guild

    def add_role(self, guild: Guild, name: str) -> str:
        role_id = self.snowflake()
        guild.roles[role_id] = name
        return role_id

    def add_member(self, guild: Guild, user: User, *, roles: Iterable[str] = ()) -> None:
        guild.members[user.id] = list(roles)

    def add_channel(
        self, guild: Guild, name: str, *, type: int = 0, hidden_from_bot: bool = False
    ) -> Channel:
        """A channel; `hidden_from_bot` denies the bot view/send through an overwrite it can see."""
        channel = Channel(id=self.snowflake(), name=name, guild_id=guild.id, type=type)
        if hidden_from_bot:
            channel.overwrites = [{"id": guild.id, "type": 0, "allow": "0", "deny": str(VIEW_AND_SEND)}]
            self.denied.add(channel.id)
        guild.channels[channel.id] = channel
        self.channels[channel.id] = channel
        return channel

    def dm_channel(self, user: User) -> Channel:
        for channel in self.channels.values():
            if channel.type == 1 and channel.name == user.id:
                return channel
        channel = Channel(id=self.snowflake(), name=user.id, guild_id=None, type=1)
        self.channels[channel.id] = channel
        return channel

    def deny_access(self, channel: Channel | str) -> None:
        """From now on the bot gets 403 Missing Access in this channel (its cache does not know)."""
        self.denied.add(channel if isinstance(channel, str) else channel.id)

    def channel_messages(self, channel: Channel | str) -> list[dict[str, Any]]:
        channel_id = channel if isinstance(channel, str) else channel.id
        return [m for m in self.messages.values() if m["channel_id"] == channel_id]

    # -- failures ----------------------------------------------------------------------------

    def fail_next(
        self,
        *,
        status: int = 429,
        method: str | None = None,
        path: str | None = None,
        retry_after: float = 0.2,
        global_: bool = False,
        code: int = 0,
        count: int = 1,
    ) -> None:
        """Answer the next `count` matching requests with `status` (429 per-route or global, 5xx, 403)."""
        self._failures.append(_Failure(status, method, path, retry_after, global_, code, count))

    # -- waiting -----------------------------------------------------------------------------

    async def wait_for(
        self,
        method: str,
        path: str | Callable[[str], bool],
        *,
        where: Callable[[Call], bool] | None = None,
        timeout: float = 5.0,  # noqa: ASYNC109 - the emulator's documented API, used by other tests
    ) -> Call:
        """The first matching successful call not returned before. `path` is a glob or a predicate."""

        found: list[Call] = []

        def find() -> bool:
            for index, call in enumerate(self.calls):
                if index in self._claimed or call.method != method or not 200 <= call.status < 300:
                    continue
                matches = path(call.path) if callable(path) else fnmatch.fnmatchcase(call.path, path)
                if matches and (where is None or where(call)):
                    self._claimed.add(index)
                    found.append(call)
                    return True
            return False

        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(find), timeout)
            except TimeoutError:
                seen = "\n".join(f"  {c.method} {c.path} -> {c.status}" for c in self.calls[-15:])
                raise AssertionError(f"no {method} {path} within {timeout}s; last calls:\n{seen}") from None
        return found[0]

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # -- gateway -----------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.StreamResponse:
        if self.down:
            return web.Response(status=503, text="unreachable")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        session = _Session(ws=ws)
        self._sessions.append(session)
        closed_with = None  # the code of the client's first close frame (discord.py may send two)
        try:
            await ws.send_json({"op": 10, "d": {"heartbeat_interval": self.heartbeat_interval_ms}, "s": None})
            while True:
                frame = await ws.receive()
                if frame.type == WSMsgType.CLOSE:
                    closed_with = frame.data
                if frame.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR):
                    break
                if frame.type != WSMsgType.TEXT:
                    continue
                message = json.loads(frame.data)
                op = message.get("op")
                if op == 1:
                    await ws.send_json({"op": 11})
                elif op == 2:
                    await self._identify(session, message["d"])
                elif op == 6:
                    resumed = await self._resume(ws, message["d"])
                    if resumed is None:
                        await ws.send_json({"op": 9, "d": False})  # unknown session: identify afresh
                    else:
                        self._sessions.remove(session)
                        session = resumed
        finally:
            if session in self._sessions:
                self._sessions.remove(session)
            if session.identified.is_set() and closed_with not in (1000, 1001):
                # As on Discord, a dropped session stays resumable: what it misses is kept for a RESUME.
                # A client closing with 1000 or 1001 ends it.
                self._resumable[session.id] = session
        return ws

    async def _resume(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> _Session | None:
        """RESUME (op 6): the session continues on this socket, the dispatches after the client's
        last sequence number are replayed in order, then RESUMED."""
        session = self._resumable.pop(str(data.get("session_id")), None)
        if session is None:
            return None
        self.resumes.append(data)
        session.ws = ws
        self._sessions.append(session)
        seen = int(data.get("seq") or 0)
        for frame in list(session.sent):
            if frame["s"] > seen:
                await ws.send_json(frame)
        if not self.withhold_resumed:
            session.seq += 1
            await ws.send_json({"op": 0, "t": "RESUMED", "s": session.seq, "d": {}})
        await self._notify()
        return session

    async def go_down(self) -> None:
        """The platform becomes unreachable: sockets drop (resumable), new ones and REST calls get 503."""
        self.down = True
        for session in list(self._sessions):
            await session.ws.close(code=4000, message=b"unreachable")

    def come_back(self) -> None:
        self.down = False

    def stall_next(
        self,
        *,
        seconds: float,
        path: str | None = None,
        method: str | None = None,
        count: int = 1,
        applied_late: bool = False,
        dropped: bool = False,
    ) -> None:
        """The next `count` REST requests (matching the glob `path`, and `method`) are applied but
        answered only after `seconds`: the client times out not knowing the message exists.
        `applied_late`: slow on the way in, applied only after `seconds` too, so at the client's
        timeout nothing exists yet. `dropped`: never applied, answered 504 after `seconds`, as a
        request lost on its way (a post in flight when its process was killed, which never landed)."""
        self._stalls.append(_Stall(path, method, seconds, applied_late, dropped, count))

    def hold_identify(self) -> None:
        """New sessions are not READY until `release_identify()`: a bot between connecting and ready."""
        self._identify_gate = asyncio.Event()

    def release_identify(self) -> None:
        if self._identify_gate is not None:
            self._identify_gate.set()
        self._identify_gate = None

    async def _identify(self, session: _Session, data: dict[str, Any]) -> None:
        self.identifies.append(data)
        await self._notify()
        if self._identify_gate is not None:
            await self._identify_gate.wait()
        session.shard_id, session.shard_count = data.get("shard") or (0, 1)
        guilds = [
            g for g in self.guilds.values() if self._shard_of(g.id, session.shard_count) == session.shard_id
        ]
        ready = template("ready")
        ready.update(
            user={**self.bot.payload(), "verified": True, "mfa_enabled": False, "flags": 0},
            session_id=session.id,
            resume_gateway_url=self.gateway_url,
            guilds=[{"id": g.id, "unavailable": True} for g in guilds],
            application={"id": self.application_id, "flags": 0},
            shard=[session.shard_id, session.shard_count],
        )
        await self._send(session, "READY", ready)
        for guild in guilds:
            await self._send(session, "GUILD_CREATE", self._guild_create(guild))
        session.identified.set()
        await self._notify()

    @staticmethod
    def _shard_of(guild_id: str | None, shard_count: int) -> int:
        return 0 if guild_id is None else (int(guild_id) >> 22) % shard_count

    def _guild_create(self, guild: Guild) -> dict[str, Any]:
        members = [
            {
                "user": self.users[user_id].payload(),
                "roles": roles,
                "joined_at": "2025-01-10T12:00:00.000000+00:00",
                "deaf": False,
                "mute": False,
                "flags": 0,
            }
            for user_id, roles in guild.members.items()
        ]
        return {
            "id": guild.id,
            "name": guild.name,
            "icon": None,
            "owner_id": self.snowflake(),
            "unavailable": False,
            "member_count": len(members),
            "large": False,
            "features": [],
            "premium_tier": 0,
            "roles": guild.role_payloads(),
            "channels": [c.payload() for c in guild.channels.values() if c.type not in (11, 12)],
            "threads": [c.payload() for c in guild.channels.values() if c.type in (11, 12)],
            "members": members,
            "emojis": [],
            "stickers": [],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "joined_at": "2025-01-10T12:00:00.000000+00:00",
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "system_channel_id": None,
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "preferred_locale": "en-US",
            "nsfw_level": 0,
            "premium_progress_bar_enabled": False,
            "afk_timeout": 300,
        }

    async def _send(self, session: _Session, event: str, data: dict[str, Any]) -> None:
        session.seq += 1
        frame = {"op": 0, "t": event, "s": session.seq, "d": data}
        session.sent.append(frame)
        if not session.ws.closed:
            try:
                await session.ws.send_json(frame)
            except ConnectionError:
                pass  # the socket just dropped: the frame is kept for a RESUME

    async def dispatch(self, event: str, data: dict[str, Any], *, guild_id: str | None = None) -> None:
        """Send a gateway event to every session whose shard owns `guild_id` (DMs: shard 0); a
        dropped session that can still be resumed keeps it for its RESUME."""
        for session in [*self._sessions, *self._resumable.values()]:
            if not session.identified.is_set():
                continue
            if self._shard_of(guild_id, session.shard_count) == session.shard_id:
                await self._send(session, event, data)

    async def wait_connected(self, sessions: int = 1, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        await self.wait_until(lambda: sum(s.identified.is_set() for s in self._sessions) >= sessions, timeout)

    async def wait_until(self, condition: Callable[[], object], timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Until `condition()` holds, checked at each change of the gateway's sessions."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(condition), timeout)

    def live_session(self, shard_id: int = 0) -> tuple[str, int]:
        """(session id, last sequence number sent) of the connected session on that shard."""
        session = next(s for s in self._sessions if s.identified.is_set() and s.shard_id == shard_id)
        return session.id, session.seq

    # -- what people do ----------------------------------------------------------------------

    def _member(self, guild_id: str | None, user: User) -> dict[str, Any] | None:
        if guild_id is None:
            return None
        roles = self.guilds[guild_id].members.setdefault(user.id, [])
        return {
            "roles": list(roles),
            "joined_at": "2025-01-10T12:00:00.000000+00:00",
            "deaf": False,
            "mute": False,
            "flags": 0,
            "pending": False,
            "nick": None,
            "avatar": None,
            "premium_since": None,
            "communication_disabled_until": None,
        }

    def _message(
        self, author: User, channel: Channel, content: str, *, mentions: Iterable[User] = ()
    ) -> dict[str, Any]:
        message = template("message_create")
        message.update(
            id=self.snowflake(),
            channel_id=channel.id,
            channel_type=channel.type,
            author=author.payload(),
            content=content,
            nonce=None,
            mentions=[{**u.payload(), "member": self._member(channel.guild_id, u)} for u in mentions],
            mention_everyone=False,
        )
        if channel.guild_id is None:
            message.pop("guild_id", None)
            message.pop("member", None)
        else:
            message["guild_id"] = channel.guild_id
            message["member"] = self._member(channel.guild_id, author)
        self.messages[message["id"]] = message
        return message

    def attachment(
        self, channel: Channel, filename: str, size: int, content_type: str, *, content: bytes | None = None
    ) -> dict[str, Any]:
        """A file sent with a message (api docs: Attachment object): its URL on Discord's CDN,
        signed to expire, opens for anyone who has it. With `content`, the emulator serves it at
        that URL's path in place of the CDN (`expire_attachment` makes it 404, as an expired one)."""
        attachment_id = self.snowflake()
        name = filename.replace(" ", "_")
        path = f"/attachments/{channel.id}/{attachment_id}/{name}"
        host = "https://cdn.discordapp.com" if content is None else f"http://127.0.0.1:{self.port}"
        url = f"{host}{path}?ex=6756f0a0&is=67559f20&hm=5f"
        if content is not None:
            self.attachment_files[path] = content
        return {
            "id": attachment_id,
            "filename": filename,
            "size": size,
            "url": url,
            "proxy_url": url.replace("cdn.discordapp.com", "media.discordapp.net"),
            "content_type": content_type,
        }

    def expire_attachment(self, attachment: dict[str, Any]) -> None:
        """Its signed URL has expired: the CDN answers 404."""
        self.attachment_files.pop(attachment["url"].split("?")[0].split(str(self.port), 1)[-1], None)

    async def _attachment_bytes(self, request: web.Request) -> web.StreamResponse:
        """An attachment URL (see `attachment`): the file's bytes, to anyone, with no token."""
        data = self.attachment_files.get(request.path)
        if request.headers.get("Authorization"):
            response = web.Response(status=400, text="no token goes to the CDN")
        elif data is None:
            response = web.Response(status=404, text="This content is no longer available.")
        else:
            response = web.Response(body=data, content_type="application/octet-stream")
        self.downloads.append((request.path, response.status))
        return response

    async def user_says(
        self,
        user: User,
        channel: Channel,
        content: str,
        *,
        mentions: Iterable[User] = (),
        attachments: Iterable[dict[str, Any]] = (),
    ) -> dict[str, Any]:
        """A person posts a message, perhaps with files (see `attachment`); the bot receives
        MESSAGE_CREATE. Returns the message payload."""
        message = self._message(user, channel, content, mentions=mentions)
        message["attachments"] = list(attachments)
        await self.dispatch("MESSAGE_CREATE", message, guild_id=channel.guild_id)
        return message

    def _interaction(self, type_: int, user: User, channel: Channel, data: dict[str, Any]) -> dict[str, Any]:
        payload = template("interaction_command")
        interaction_id = self.snowflake()
        token = f"token-{interaction_id}"
        payload.update(
            id=interaction_id,
            type=type_,
            token=token,
            application_id=self.application_id,
            data=data,
            channel_id=channel.id,
            channel={**channel.payload(), "permissions": ALL_PERMISSIONS},
            app_permissions=ALL_PERMISSIONS,
        )
        if channel.guild_id is None:
            for key in ("guild_id", "guild", "member", "guild_locale"):
                payload.pop(key, None)
            payload["user"] = user.payload()
            payload["context"] = 1
            payload["authorizing_integration_owners"] = {"1": user.id}
        else:
            payload.update(
                guild_id=channel.guild_id,
                guild={"id": channel.guild_id, "locale": "en-US", "features": []},
                member={
                    **self._member(channel.guild_id, user),
                    "user": user.payload(),
                    "permissions": ALL_PERMISSIONS,
                },  # type: ignore[dict-item]
                authorizing_integration_owners={"0": channel.guild_id},
            )
        self.interactions[interaction_id] = _Interaction(
            id=interaction_id, token=token, channel_id=channel.id, guild_id=channel.guild_id
        )
        return payload

    def _command_data(self, name: str, guild_id: str | None) -> dict[str, Any]:
        for command in [*self.commands.get(guild_id, []), *self.commands.get(None, [])]:
            if command["name"] == name:
                return command
        raise AssertionError(f"/{name} was not synced; synced: {self.commands}")

    @staticmethod
    def _options(
        spec: list[dict[str, Any]], given: dict[str, Any], focused: str | None
    ) -> list[dict[str, Any]]:
        options = []
        for option in spec:
            if option["name"] in given:
                entry: dict[str, Any] = {
                    "name": option["name"],
                    "type": option["type"],
                    "value": given[option["name"]],
                }
                if option["name"] == focused:
                    entry["focused"] = True
                options.append(entry)
        return options

    def _invocation(
        self,
        name: str,
        sub: str | None,
        options: dict[str, Any],
        guild_id: str | None,
        focused: str | None = None,
    ) -> dict[str, Any]:
        command = self._command_data(name, guild_id)
        data: dict[str, Any] = {"id": command["id"], "name": name, "type": 1}
        if command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        spec = command.get("options", [])
        if sub is not None:
            sub_spec = next((o for o in spec if o["name"] == sub), None)
            if sub_spec is None:
                raise AssertionError(f"/{name} has no subcommand {sub!r}")
            data["options"] = [
                {
                    "name": sub,
                    "type": 1,
                    "options": self._options(sub_spec.get("options", []), options, focused),
                }
            ]
        else:
            data["options"] = self._options(spec, options, focused)
        return data

    async def run_command(
        self, user: User, channel: Channel, name: str, sub: str | None = None, /, **options: Any
    ) -> dict[str, Any]:
        """A person runs `/name [sub] option:value ...` (options given in any order, as Discord does)."""
        data = self._invocation(name, sub, options, channel.guild_id)
        payload = self._interaction(2, user, channel, data)
        await self.dispatch("INTERACTION_CREATE", payload, guild_id=channel.guild_id)
        return payload

    async def autocomplete(
        self,
        user: User,
        channel: Channel,
        name: str,
        sub: str | None = None,
        /,
        *,
        focused: str,
        **options: Any,
    ) -> dict[str, Any]:
        data = self._invocation(name, sub, options, channel.guild_id, focused)
        payload = self._interaction(4, user, channel, data)
        await self.dispatch("INTERACTION_CREATE", payload, guild_id=channel.guild_id)
        return payload

    async def click(self, user: User, message: dict[str, Any], custom_id: str) -> dict[str, Any]:
        """A person clicks the button with `custom_id` on `message` (a payload from `.messages`)."""
        ids = [c["custom_id"] for row in message.get("components", []) for c in row.get("components", [])]
        if custom_id not in ids:
            raise AssertionError(f"message {message['id']} has no button {custom_id!r}; it has {ids}")
        channel = self.channels[message["channel_id"]]
        payload = self._interaction(3, user, channel, {"custom_id": custom_id, "component_type": 2})
        payload["message"] = message
        await self.dispatch("INTERACTION_CREATE", payload, guild_id=channel.guild_id)
        return payload

    async def react(self, user: User, message: dict[str, Any], emoji: str) -> dict[str, Any]:
        channel = self.channels[message["channel_id"]]
        payload = template("reaction_add")
        payload.update(
            user_id=user.id,
            message_id=message["id"],
            message_author_id=message["author"]["id"],
            channel_id=channel.id,
            emoji={"name": emoji, "id": None},
        )
        if channel.guild_id is None:
            payload.pop("guild_id", None)
            payload.pop("member", None)
        else:
            payload.update(
                guild_id=channel.guild_id,
                member={**self._member(channel.guild_id, user), "user": user.payload()},
            )  # type: ignore[dict-item]
        await self.dispatch("MESSAGE_REACTION_ADD", payload, guild_id=channel.guild_id)
        return payload

    # -- REST --------------------------------------------------------------------------------

    @staticmethod
    def _bucket_key(method: str, path: str) -> tuple[str, str]:
        """(route key with major parameters kept, bucket hash shared by every major parameter)."""
        parts = path.strip("/").split("/")
        keyed, hashed = [], []
        for index, part in enumerate(parts):
            previous = parts[index - 1] if index else ""
            if previous in ("channels", "guilds", "webhooks") or (
                index >= 2 and parts[index - 2] == "webhooks"
            ):
                keyed.append(part)
                hashed.append("{major}")
            elif part.isdigit():
                keyed.append("{id}")
                hashed.append("{id}")
            else:
                keyed.append(part)
                hashed.append(part)
        bucket = hashlib.sha1(f"{method} {'/'.join(hashed)}".encode()).hexdigest()[:16]
        return f"{method} {'/'.join(keyed)}", bucket

    def _failure_for(self, method: str, path: str) -> _Failure | None:
        for failure in self._failures:
            if failure.method not in (None, method):
                continue
            if failure.path is not None and not fnmatch.fnmatchcase(path, failure.path):
                continue
            failure.remaining -= 1
            if failure.remaining <= 0:
                self._failures.remove(failure)
            return failure
        return None

    def _rate_limited(self, retry_after: float, *, global_: bool, bucket: str) -> web.Response:
        headers = {
            "Via": "1.1 google",
            "Retry-After": str(max(1, round(retry_after))),
            "X-RateLimit-Scope": "global" if global_ else "user",
        }
        if global_:
            headers["X-RateLimit-Global"] = "true"
        else:
            headers.update(
                {
                    "X-RateLimit-Limit": str(self.route_limit),
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
                    "X-RateLimit-Reset-After": f"{retry_after:.3f}",
                    "X-RateLimit-Bucket": bucket,
                }
            )
        body = {"message": "You are being rate limited.", "retry_after": retry_after, "global": global_}
        return json_response(body, status=429, headers=headers)

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        method = request.method
        body: Any = None
        parts: list[_FilePart] = []
        if request.can_read_body:
            raw = await request.read()
            if request.content_type == "application/json" and raw:
                body = json.loads(raw)
            elif raw:
                body, parts = self._multipart(request.headers.get("Content-Type", ""), raw)
        call = Call(method=method, path=path, query=dict(request.query), json=body, files=parts)
        self.calls.append(call)
        if self.down:
            call.status = 503
            await self._notify()
            return json_response({"message": "unreachable", "code": 0}, status=503)
        stall = self._stall_for(method, path)
        if stall is not None:
            self.stalled.append(call)
            await self._notify()
        if stall is not None and (stall.applied_late or stall.dropped):
            await self._hold(stall.seconds)
            if stall.dropped:
                call.status = 504
                await self._notify()
                return json_response({"message": "request lost on its way", "code": 0}, status=504)
        response = self._limit(method, path)
        if response is None:
            response = await self._answer(call, request)
        call.status = response.status
        await self._notify()
        if stall is not None and not stall.applied_late:
            await self._hold(stall.seconds)
        return response

    def _stall_for(self, method: str, path: str) -> _Stall | None:
        for stall in self._stalls:
            if stall.method not in (None, method):
                continue
            if stall.path is None or fnmatch.fnmatchcase(path, stall.path):
                stall.left -= 1
                if stall.left <= 0:
                    self._stalls.remove(stall)
                return stall
        return None

    async def _hold(self, seconds: float) -> None:
        """`seconds`, or less if the emulator closes meanwhile."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._closing.wait(), seconds)

    @staticmethod
    def _multipart(content_type: str, raw: bytes) -> tuple[Any, list[_FilePart]]:
        """A multipart/form-data body: its `payload_json`, and its files (`files[n]`)."""
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + raw
        )
        payload: Any = None
        files: list[_FilePart] = []
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            data = part.get_payload(decode=True) or b""
            if name == "payload_json":
                payload = json.loads(data)
            elif part.get_filename() is not None:
                files.append(_FilePart(str(name), part.get_filename() or "", part.get_content_type(), data))
        return payload, files

    def _limit(self, method: str, path: str) -> web.Response | None:
        key, bucket = self._bucket_key(method, path)
        failure = self._failure_for(method, path)
        if failure is not None:
            if failure.status == 429:
                return self._rate_limited(failure.retry_after, global_=failure.global_, bucket=bucket)
            if failure.status == 403:
                return json_response({"message": "Missing Access", "code": failure.code or 50001}, status=403)
            return json_response({"message": "Server error", "code": failure.code}, status=failure.status)
        now = time.monotonic()
        exempt = path.startswith(("/interactions/", "/webhooks/"))
        if not exempt:
            while self._global and now - self._global[0] >= 1.0:
                self._global.popleft()
            if len(self._global) >= self.global_limit:
                return self._rate_limited(1.0 - (now - self._global[0]), global_=True, bucket=bucket)
            self._global.append(now)
        started, used = self._buckets.get(key, (now, 0))
        if now - started >= self.route_window:
            started, used = now, 0
        if used >= self.route_limit:
            return self._rate_limited(self.route_window - (now - started), global_=False, bucket=bucket)
        self._buckets[key] = (started, used + 1)
        self._last_headers = {
            "X-RateLimit-Limit": str(self.route_limit),
            "X-RateLimit-Remaining": str(self.route_limit - used - 1),
            "X-RateLimit-Reset": f"{time.time() + self.route_window - (now - started):.3f}",
            "X-RateLimit-Reset-After": f"{self.route_window - (now - started):.3f}",
            "X-RateLimit-Bucket": bucket,
        }
        return None

    def _ok(self, data: Any, status: int = 200) -> web.Response:
        return json_response(data, status=status, headers=self._last_headers)

    def _error(self, status: int, code: int, message: str) -> web.Response:
        return json_response({"message": message, "code": code}, status=status, headers=self._last_headers)

    async def _answer(self, call: Call, request: web.Request) -> web.Response:
        parts = call.path.strip("/").split("/")
        method = call.method
        if call.path == "/users/@me":
            return self._ok({**self.bot.payload(), "verified": True, "mfa_enabled": False, "flags": 0})
        if call.path == "/oauth2/applications/@me":
            return self._ok(self._application())
        if call.path == "/gateway/bot":
            return self._ok(
                {
                    "url": self.gateway_url,
                    "shards": 1,
                    "session_start_limit": {
                        "total": 1000,
                        "remaining": 999,
                        "reset_after": 0,
                        "max_concurrency": 1,
                    },
                }
            )
        if parts[0] == "applications" and method == "PUT":
            guild_id = parts[3] if len(parts) > 3 else None
            commands = []
            for spec in call.json or []:
                command = {
                    **spec,
                    "id": self.snowflake(),
                    "application_id": self.application_id,
                    "version": "1",
                }
                if guild_id:
                    command["guild_id"] = guild_id
                commands.append(command)
            self.commands[guild_id] = commands
            return self._ok(commands)
        if call.path == "/users/@me/channels" and method == "POST":
            # Open (or find) the DM channel with a user, as the bot does for a private reply.
            recipient = self.users.get(str((call.json or {}).get("recipient_id")))
            if recipient is None:
                return self._error(400, 50007, "Cannot send messages to this user")
            dm = self.dm_channel(recipient)
            return self._ok({**dm.payload(), "recipients": [recipient.payload()]})
        if parts[0] == "guilds" and len(parts) == 4 and parts[2] == "members" and method == "GET":
            # One member (what the bot asks of someone who wrote to it in DMs): 10007 if not there.
            guild, user = self.guilds.get(parts[1]), self.users.get(parts[3])
            if guild is None or user is None or user.id not in guild.members:
                return self._error(404, 10007, "Unknown Member")
            return self._ok({**(self._member(guild.id, user) or {}), "user": user.payload()})
        if parts[0] == "interactions":
            return await self._interaction_callback(parts[1], call.json or {})
        if parts[0] == "webhooks":
            return await self._webhook(call, parts)
        if parts[0] == "channels":
            return await self._channel_route(call, parts)
        return self._error(404, 0, f"emulator has no {method} {call.path}")

    def _application(self) -> dict[str, Any]:
        return {
            "id": self.application_id,
            "name": "supportbot",
            "icon": None,
            "description": "",
            "bot_public": False,
            "bot_require_code_grant": False,
            "owner": {**self.add_user("owner").payload()},
            "verify_key": "0" * 64,
            "flags": 0,
            "team": None,
            "summary": "",
            "rpc_origins": [],
            "interactions_endpoint_url": None,
        }

    async def _store_bot_message(
        self,
        channel_id: str,
        body: dict[str, Any],
        *,
        flags: int = 0,
        interaction: _Interaction | None = None,
    ) -> dict[str, Any]:
        channel = self.channels[channel_id]
        message = self._message(self.bot, channel, body.get("content") or "")
        message.update(
            embeds=body.get("embeds") or [],
            components=body.get("components") or [],
            flags=flags | int(body.get("flags") or 0),
        )
        if body.get("message_reference"):
            message["message_reference"] = {**body["message_reference"], "type": 0}
        message.pop("member", None)
        if interaction is not None:
            message["interaction_metadata"] = {"id": interaction.id, "type": 2, "user": self.bot.payload()}
        if not message["flags"] & 64:
            await self.dispatch("MESSAGE_CREATE", message, guild_id=channel.guild_id)
        return message

    async def _interaction_callback(self, interaction_id: str, body: dict[str, Any]) -> web.Response:
        interaction = self.interactions.get(interaction_id)
        if interaction is None:
            return self._error(404, 10062, "Unknown interaction")
        kind = body.get("type")
        data = body.get("data") or {}
        interaction.ephemeral = bool(int(data.get("flags") or 0) & 64)
        resource: dict[str, Any] = {"type": kind}
        if kind in (4, 5):
            flags = 64 if interaction.ephemeral else 0
            if kind == 5:
                flags |= 128  # loading
            message = await self._store_bot_message(
                interaction.channel_id, data, flags=flags, interaction=interaction
            )
            interaction.original_id = message["id"]
            resource["message"] = message
        return self._ok(
            {
                "interaction": {
                    "id": interaction_id,
                    "type": 2,
                    "response_message_id": interaction.original_id,
                    "response_message_loading": kind == 5,
                    "response_message_ephemeral": interaction.ephemeral,
                },
                "resource": resource,
            }
        )

    async def _webhook(self, call: Call, parts: list[str]) -> web.Response:
        token = parts[2] if len(parts) > 2 else ""
        interaction = next((i for i in self.interactions.values() if i.token == token), None)
        if interaction is None:
            return self._error(404, 10015, "Unknown Webhook")
        body = call.json or {}
        if call.method == "POST" and len(parts) == 3:
            loading = self.messages.get(interaction.original_id or "")
            if loading is not None and int(loading.get("flags") or 0) & 128:
                # As on Discord: the first follow-up after a defer replaces the "thinking…" message
                # and keeps the defer's visibility, whatever flags it asks for.
                loading.update({k: v for k, v in body.items() if k in ("content", "embeds", "components")})
                loading["flags"] = int(loading["flags"]) & ~128
                return self._ok(loading)
            message = await self._store_bot_message(interaction.channel_id, body, interaction=interaction)
            return self._ok(message)
        if len(parts) == 5 and parts[3] == "messages":
            message_id = interaction.original_id if parts[4] == "@original" else parts[4]
            message = self.messages.get(message_id or "")
            if message is None:
                return self._error(404, 10008, "Unknown Message")
            if call.method == "DELETE":
                del self.messages[message["id"]]
                return web.Response(status=204, headers=self._last_headers)
            if call.method == "PATCH":
                message.update({k: v for k, v in body.items() if k in ("content", "embeds", "components")})
                message["flags"] = int(message.get("flags") or 0) & ~128
                return self._ok(message)
        return self._error(404, 0, f"emulator has no {call.method} {call.path}")

    async def _channel_route(self, call: Call, parts: list[str]) -> web.Response:
        channel = self.channels.get(parts[1])
        if channel is None:
            return self._error(404, 10003, "Unknown Channel")
        if channel.id in self.denied or (channel.parent_id in self.denied):
            return self._error(403, 50001, "Missing Access")
        body = call.json or {}
        rest = parts[2:]
        if rest == [] and call.method == "GET":
            return self._ok(channel.payload())
        if rest == ["messages"] and call.method == "GET":
            # History as Discord reads it with `after`: the `limit` messages right after that id,
            # returned newest first.
            after = int(call.query.get("after") or 0)
            limit = int(call.query.get("limit") or 50)
            later = sorted(
                (m for m in self.channel_messages(channel.id) if int(m["id"]) > after),
                key=lambda m: int(m["id"]),
            )
            return self._ok(list(reversed(later[:limit])))
        if rest == ["messages"] and call.method == "POST":
            if len(body.get("content") or "") > 2000:
                return self._error(400, 50035, "Invalid Form Body: content must be 2000 or fewer in length.")
            if sum(len(f.data) for f in call.files) > self.upload_limit:
                return self._error(413, 40005, "Request entity too large")
            nonce = body.get("nonce")
            if nonce and body.get("enforce_nonce"):
                # Discord answers a repeated enforced nonce with the message it already created.
                for existing in self.channel_messages(channel.id):
                    if existing.get("nonce") == nonce:
                        return self._ok(existing)
            created = await self._store_bot_message(channel.id, body)
            created["nonce"] = nonce
            created["attachments"] = self._attachments(channel.id, created["id"], body, call.files)
            return self._ok(created)
        if len(rest) == 2 and rest[0] == "messages":
            message = self.messages.get(rest[1])
            if message is None or message["channel_id"] != channel.id:
                return self._error(404, 10008, "Unknown Message")
            if call.method == "GET":
                return self._ok(message)
            if call.method == "PATCH":
                message.update({k: v for k, v in body.items() if k in ("content", "embeds", "components")})
                return self._ok(message)
        if len(rest) == 3 and rest[0] == "messages" and rest[2] == "threads" and call.method == "POST":
            if rest[1] not in self.messages:
                return self._error(404, 10008, "Unknown Message")
            if rest[1] in self.channels:
                return self._error(400, 160004, "A thread has already been created for this message")
            return await self._new_thread(channel, body, thread_id=rest[1], type_=11)
        if rest == ["threads"] and call.method == "POST":
            if channel.type == 15:
                thread = await self._new_thread(channel, body, thread_id=None, type_=11)
                if thread.status < 300:
                    thread_id = json.loads(thread.body)["id"]  # type: ignore[arg-type]
                    starter = await self._store_bot_message(thread_id, body.get("message") or {})
                    payload = {**self.channels[thread_id].payload(), "message": starter}
                    return self._ok(payload)
                return thread
            return await self._new_thread(channel, body, thread_id=None, type_=int(body.get("type") or 11))
        if len(rest) == 2 and rest[0] == "thread-members" and call.method == "PUT":
            self.thread_members.setdefault(channel.id, set()).add(rest[1])
            return web.Response(status=204, headers=self._last_headers)
        return self._error(404, 0, f"emulator has no {call.method} {call.path}")

    def _attachments(
        self, channel_id: str, message_id: str, body: dict[str, Any], parts: list[_FilePart]
    ) -> list[dict[str, Any]]:
        """The message's attachments, from `payload_json.attachments` (id = the n of `files[n]`)
        and the files themselves; each is recorded in `uploads`."""
        described = {str(a.get("id")): a for a in body.get("attachments") or []}
        attachments = []
        for part in parts:
            index = part.field.removeprefix("files[").removesuffix("]")
            meta = described.get(index, {})
            self.uploads.append(
                Uploaded(
                    channel_id,
                    message_id,
                    part.filename,
                    meta.get("description"),
                    part.content_type,
                    part.data,
                )
            )
            attachment_id = self.snowflake()
            attachments.append(
                {
                    "id": attachment_id,
                    "filename": part.filename,
                    "description": meta.get("description"),
                    "content_type": part.content_type,
                    "size": len(part.data),
                    "url": f"http://127.0.0.1:{self.port}/attachments/{channel_id}/{attachment_id}/{part.filename}",
                    "proxy_url": f"http://127.0.0.1:{self.port}/attachments/{channel_id}/{attachment_id}/{part.filename}",
                }
            )
        if attachments:
            self.messages[message_id]["attachments"] = attachments
        return attachments

    async def _new_thread(
        self, parent: Channel, body: dict[str, Any], *, thread_id: str | None, type_: int
    ) -> web.Response:
        guild = self.guilds[parent.guild_id or ""]
        if not parent.threads_allowed:
            return self._error(403, 50013, "Missing Permissions")
        if type_ == 12 and not guild.private_threads:
            return self._error(403, 50001, "Missing Access")
        active = sum(1 for c in guild.channels.values() if c.type in (11, 12))
        if active >= guild.max_active_threads:
            return self._error(400, 160006, "Maximum number of active threads reached")
        thread = Channel(
            id=thread_id or self.snowflake(),
            name=body.get("name") or "thread",
            guild_id=guild.id,
            type=type_,
            parent_id=parent.id,
            owner_id=self.bot.id,
        )
        guild.channels[thread.id] = thread
        self.channels[thread.id] = thread
        self.thread_members[thread.id] = {self.bot.id}
        payload = thread.payload()
        await self.dispatch("THREAD_CREATE", {**payload, "newly_created": True}, guild_id=guild.id)
        return self._ok(payload, status=201)
