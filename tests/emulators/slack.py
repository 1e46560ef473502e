"""A Slack emulator on 127.0.0.1: the Web API the bot calls, Socket Mode, response URLs, and
helpers that deliver signed Events API / slash command / interactivity requests to the bot.

The unmodified slack-bolt and slack-sdk run against it (docs/platform-emulators.md).

    async with SlackEmulator(channel_rate=1.0, burst=5, workspace_rate=None) as slack:
        slack.add_user("U0CUSTOMER", "casey")
        slack.add_channel("C0COMMUNITY", "community")
        client = AsyncWebClient(token=slack.token, base_url=slack.base_url)   # base_url ends in /api/
        slack.bot_url = "http://127.0.0.1:PORT/slack/events"                  # for HTTP delivery
        posted = await slack.user_posts("U0CUSTOMER", "C0COMMUNITY", "hi")     # stored + delivered
        reply = await slack.wait_for("chat.postMessage", lambda c: c.params.get("thread_ts") == posted.ts)

What it offers:
- Workspaces keyed by bot token and by team id (`add_workspace`; one default workspace, `slack.token`),
  users (`add_user`, with user groups), channels (`add_channel`: public/private/archived, whether the
  bot is a member), and stored messages (`history(channel)`).
- Web API methods: auth.test, chat.postMessage, chat.postEphemeral, chat.update, conversations.info,
  conversations.open (a person's DM: `D` + their id's tail), conversations.join,
  conversations.history, conversations.replies, users.info, usergroups.users.list, reactions.add,
  apps.connections.open, and the external file upload
  (files.getUploadURLExternal, a POST of the bytes to the upload URL it returns,
  files.completeUploadExternal into a channel or thread); unknown methods answer
  `unknown_method`. Errors are Slack's: `channel_not_found`, `not_in_channel`, `is_archived`,
  `user_not_in_channel` (an ephemeral for someone who left the channel: `leave(user, channel)`),
  `invalid_blocks` (more than 50 blocks, a section over 3,000 characters, repeated action ids),
  `msg_too_long` (text over 40,000), `invalid_auth`.
- Pace: chat.postMessage is limited per channel (`channel_rate` per second, bursts of `burst`) and
  per workspace (`workspace_rate` per second, bursts of `workspace_burst`; None = no cap, as Slack
  publishes none). Over a limit: HTTP 429, `Retry-After` in whole seconds, `{"error": "ratelimited"}`.
- Faults: `fail_next(method, status=429, retry_after=1)`, `fail_next(method, status=500)`,
  `fail_next(method, error="channel_not_found")`, `fail_next(method, timeout=True)` (the request
  stalls `stall_seconds` and does nothing), `fail_next(method, timeout=True, applied=True)` (it does
  its work, then the answer never comes: the message exists but the client cannot know; with
  `status=500` it does its work and answers a 500, as a gateway that failed after the work), each
  `times` times, after letting `after` calls through.
- Message metadata: chat.postMessage keeps `metadata`; conversations.history and .replies return it
  only with `include_all_metadata`, as Slack does.
- Files: `uploads` holds every file completed into a channel (`Upload(file_id, filename, title,
  alt_txt, data, channel, thread_ts)`), with the bytes as uploaded; a file over 1 GB is refused
  (`file_too_large`, as slack-sdk checks first), bytes of another length than announced are answered
  400, and the upload URL can be made to fail with `fail_next("files.upload", status=500)`. A file
  a person shared with `shared_file(..., content=b"...")` is served at its `url_private(_download)`
  to its workspace's bot token (any other token, or a team in `without_files_read`, gets Slack's
  sign-in page with a 200); `downloads` lists (path, status); `fail_next("files.download", status=500)`.
- Recording: `calls` (every Web API call, response_url post and Socket Mode ack, as `Call(method,
  params, team_id, status, error, at, response)`; `call.shown` is what a person sees, `call.buttons`
  and `call.button("Claim")` its buttons), `calls_to(method)`, `mark()`, and
  `await wait_for(method, predicate=None, timeout=5, since=0)` (successful calls only).
  `message(channel, ts)` is a stored message, e.g. the one to click a button on.
- Delivering to the bot: `send_event`, `user_posts`, `react`, `slash_command`, `click` build payloads
  from the captured examples in tests/payloads/slack/ and send them over HTTP (signed exactly as Slack
  signs, to `bot_url`) or, with `via="socket"` (or `default_via`), as Socket Mode envelopes; each
  returns an `Ack(status, body, latency_ms)` (`user_posts` a `Posted` with `.ts`, `.body`, `.ack`;
  `.body` can be sent again with `send_event(body, retry_num=1)`). `post_signed` sends raw bytes
  with any headers for signature tests. `to=` sends to one of several bot processes.
  `deliver_with_retries` redelivers an unacknowledged event as Slack does (`X-Slack-Retry-Num` 1..3
  after about 1 s, 1 min and 5 min, optionally compressed). Response URLs point back at the
  emulator and are recorded as method `response_url`.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import hmac
import itertools
import json
import math
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import aiohttp
from aiohttp import web

PAYLOADS = Path(__file__).resolve().parent.parent / "payloads" / "slack"


def payload(name: str) -> dict[str, Any]:
    """A fresh copy of a captured Slack payload from tests/payloads/slack/."""
    return json.loads((PAYLOADS / f"{name}.json").read_text())


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's request signature: v0=HMAC-SHA256(secret, "v0:{timestamp}:{body}")."""
    base = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True)
class Call:
    method: str
    params: dict[str, Any]
    team_id: str
    status: int
    error: str | None
    at: float
    response: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.error is None

    @property
    def shown(self) -> str:
        """What a person sees in a posted message: its blocks' texts (not button labels), else the
        fallback text."""
        parts = []
        for block in self.params.get("blocks") or []:
            if "text" in block:
                parts.append(block["text"]["text"])
            parts.extend(f["text"] for f in block.get("fields", []))
            if block["type"] == "context":
                parts.extend(e["text"] for e in block["elements"])
        return "\n".join(parts) or str(self.params.get("text", ""))

    @property
    def buttons(self) -> list[dict[str, Any]]:
        """The buttons of a posted message, in order."""
        blocks = self.params.get("blocks") or []
        return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]

    def button(self, label_start: str) -> str:
        """The action id of the button whose label starts with `label_start`."""
        for element in self.buttons:
            if element["text"]["text"].startswith(label_start):
                return str(element["action_id"])
        raise AssertionError(f"no button {label_start!r} in {[e['text']['text'] for e in self.buttons]}")


@dataclass
class Upload:
    """A file uploaded through the external flow: announced, its bytes sent, then completed."""

    file_id: str
    filename: str
    length: int
    alt_txt: str = ""
    title: str = ""
    data: bytes | None = None
    channel: str | None = None
    thread_ts: str | None = None

    @property
    def is_png(self) -> bool:
        return (self.data or b"").startswith(b"\x89PNG\r\n\x1a\n")


MAX_FILE_BYTES = 1024**3


@dataclass(frozen=True, slots=True)
class Ack:
    """How the bot answered a delivery: HTTP status (200 for a Socket Mode ack) and body."""

    status: int
    body: str
    latency_ms: float


@dataclass(frozen=True, slots=True)
class Posted:
    """A person's message as delivered: the event_callback body and the bot's acknowledgement."""

    body: dict[str, Any]
    ack: Ack

    @property
    def ts(self) -> str:
        return str(self.body["event"]["ts"])

    @property
    def event_id(self) -> str:
        return str(self.body["event_id"])


@dataclass
class Fault:
    status: int = 200
    retry_after: int | None = None
    error: str | None = None
    timeout: bool = False
    times: int = 1
    applied: bool = False  # the request takes effect, only its answer is lost (a stall) or an error
    after: int = 0  # calls to let through first


@dataclass
class Channel:
    id: str
    name: str
    is_private: bool = False
    is_archived: bool = False
    is_im: bool = False
    bot_member: bool = True
    messages: list[dict[str, Any]] = field(default_factory=list)
    left: set[str] = field(default_factory=set)
    """People who left the channel (`leave`); everyone else is taken to be in it."""

    def info(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "is_channel": not self.is_private and not self.is_im,
            "is_group": self.is_private,
            "is_im": self.is_im,
            "is_private": self.is_private or self.is_im,
            "is_archived": self.is_archived,
            "is_member": self.bot_member,
            "created": 1700000000,
        }


@dataclass
class Workspace:
    team_id: str
    token: str
    bot_user_id: str
    bot_id: str
    name: str = "Emulator"
    users: dict[str, dict[str, Any]] = field(default_factory=dict)
    channels: dict[str, Channel] = field(default_factory=dict)
    groups: dict[str, set[str]] = field(default_factory=dict)


class _Bucket:
    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.capacity = max(1.0, burst)
        self.tokens = self.capacity
        self.updated = time.monotonic()

    def take(self) -> float:
        """0 when a token was taken, else the seconds until one is available."""
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate


class SlackEmulator:
    def __init__(
        self,
        *,
        signing_secret: str = "emulator-signing-secret",
        app_token: str = "xapp-1-A0SUPPORTBOT-emulator",
        workspace_rate: float | None = None,
        workspace_burst: float | None = None,
        channel_rate: float = 1.0,
        burst: float = 5,
        stall_seconds: float = 30.0,
        default_via: str = "http",
    ) -> None:
        self.signing_secret = signing_secret
        self.app_token = app_token
        self.workspace_rate = workspace_rate
        self.workspace_burst = workspace_burst if workspace_burst is not None else (workspace_rate or 1)
        self.channel_rate = channel_rate
        self.burst = burst
        self.stall_seconds = stall_seconds
        self.default_via = default_via
        self.bot_url: str | None = None
        self.calls: list[Call] = []
        self.workspaces: dict[str, Workspace] = {}
        self._by_token: dict[str, Workspace] = {}
        self._faults: dict[str, list[Fault]] = {}
        self._channel_buckets: dict[tuple[str, str], _Bucket] = {}
        self._workspace_buckets: dict[str, _Bucket] = {}
        self._changed = asyncio.Condition()
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        self._response_urls: dict[str, dict[str, Any]] = {}
        self._files: dict[str, Upload] = {}
        self._shared: dict[str, tuple[Workspace, bytes]] = {}  # a shared file's path -> who, bytes
        self.downloads: list[tuple[str, int]] = []  # (path, status) of each file download
        self.without_files_read: set[str] = set()  # team ids whose app has no files:read scope
        self.uploads: list[Upload] = []
        self._sockets: list[web.WebSocketResponse] = []
        self._socket_connected = asyncio.Event()
        self._acks: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._stalls: set[asyncio.Task[Any]] = set()
        self.port = 0
        self.default = self.add_workspace(
            "T0EMULATOR", token="xoxb-emulator-token", bot_user_id="U0SUPPORTBOT"
        )

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> SlackEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)
        app.router.add_post("/response/{key}", self._response_url)
        app.router.add_post("/upload/{file_id}", self._upload_bytes)
        app.router.add_get("/files-pri/{path:.*}", self._download)
        app.router.add_get("/link", self._socket)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._session = aiohttp.ClientSession()

    async def stop(self) -> None:
        for task in list(self._stalls):
            task.cancel()
        for ws in list(self._sockets):
            await ws.close()
        if self._session is not None:
            await self._session.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    @property
    def token(self) -> str:
        return self.default.token

    @property
    def team_id(self) -> str:
        return self.default.team_id

    @property
    def bot_user_id(self) -> str:
        return self.default.bot_user_id

    # -- world -------------------------------------------------------------------------------

    def add_workspace(self, team_id: str, *, token: str, bot_user_id: str = "U0SUPPORTBOT") -> Workspace:
        workspace = Workspace(
            team_id=team_id, token=token, bot_user_id=bot_user_id, bot_id="B" + bot_user_id[1:]
        )
        workspace.users[bot_user_id] = self._user(workspace, bot_user_id, "supportbot", is_bot=True)
        self.workspaces[team_id] = workspace
        self._by_token[token] = workspace
        return workspace

    def _workspace(self, team: str | None) -> Workspace:
        return self.workspaces[team] if team else self.default

    @staticmethod
    def _user(
        workspace: Workspace, user_id: str, name: str, *, display_name: str = "", is_bot: bool = False
    ) -> dict[str, Any]:
        user = payload("users_info")["user"]
        user.update(
            id=user_id, team_id=workspace.team_id, name=name, real_name=display_name or name, is_bot=is_bot
        )
        user["profile"].update(
            display_name=display_name or name,
            display_name_normalized=display_name or name,
            real_name=display_name or name,
            real_name_normalized=display_name or name,
            team=workspace.team_id,
        )
        return user

    def add_user(
        self,
        user_id: str,
        name: str,
        *,
        display_name: str = "",
        is_bot: bool = False,
        groups: tuple[str, ...] = (),
        team: str | None = None,
    ) -> dict[str, Any]:
        workspace = self._workspace(team)
        user = self._user(workspace, user_id, name, display_name=display_name, is_bot=is_bot)
        workspace.users[user_id] = user
        for group in groups:
            workspace.groups.setdefault(group, set()).add(user_id)
        return user

    def add_group(self, group_id: str, members: tuple[str, ...] = (), *, team: str | None = None) -> None:
        self._workspace(team).groups.setdefault(group_id, set()).update(members)

    def add_channel(
        self,
        channel_id: str,
        name: str = "",
        *,
        private: bool = False,
        archived: bool = False,
        bot_member: bool = True,
        team: str | None = None,
    ) -> Channel:
        channel = Channel(
            id=channel_id,
            name=name or channel_id.lower(),
            is_private=private,
            is_archived=archived,
            is_im=channel_id.startswith("D"),
            bot_member=bot_member,
        )
        self._workspace(team).channels[channel_id] = channel
        return channel

    def leave(self, user_id: str, channel_id: str, *, team: str | None = None) -> None:
        """The person leaves the channel: an ephemeral message for them there is refused with
        `user_not_in_channel`, as Slack refuses it."""
        self._workspace(team).channels[channel_id].left.add(user_id)

    def history(self, channel_id: str, *, team: str | None = None) -> list[dict[str, Any]]:
        return self._workspace(team).channels[channel_id].messages

    def next_ts(self) -> str:
        return f"{int(time.time())}.{next(self._ts):06d}"

    # -- faults and recording ----------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        *,
        status: int | None = None,
        retry_after: int | None = None,
        error: str | None = None,
        timeout: bool = False,
        times: int = 1,
        applied: bool = False,
        after: int = 0,
    ) -> None:
        """Make the next `times` calls of `method` fail: status 429 (with Retry-After), a 5xx, a
        platform error (`ok: false`), or a stall the client must time out on."""
        if status is None:
            status = 429 if retry_after is not None else 200
        if status == 429 and retry_after is None:
            retry_after = 1
        if status == 200 and error is None and not timeout:
            raise ValueError("say what should fail: status, error or timeout")
        self._faults.setdefault(method, []).append(
            Fault(
                status=status,
                retry_after=retry_after,
                error=error,
                timeout=timeout,
                times=times,
                applied=applied,
                after=after,
            )
        )

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    def mark(self) -> int:
        """The position in `calls` now; pass it as `since` to wait only for later calls."""
        return len(self.calls)

    async def _record(self, call: Call) -> None:
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    async def wait_for(
        self,
        method: str,
        predicate: Callable[[Call], bool] | None = None,
        *,
        timeout: float = 5.0,  # noqa: ASYNC109 - the documented API: wait_for(method, timeout=5)
        since: int = 0,
    ) -> Call:
        """The first successful call of `method` at or after position `since` that satisfies
        `predicate`; waits for it (up to `timeout` seconds) when it has not happened yet."""

        def found() -> Call | None:
            for call in self.calls[since:]:
                if call.method == method and call.ok and (predicate is None or predicate(call)):
                    return call
            return None

        async def wait() -> Call:
            async with self._changed:
                while (call := found()) is None:
                    await self._changed.wait()
                return call

        try:
            return await asyncio.wait_for(wait(), timeout)
        except TimeoutError:
            seen = [(c.method, c.status, c.error) for c in self.calls[since:]][-10:]
            raise AssertionError(f"no {method} call within {timeout}s; last calls: {seen}") from None

    # -- Web API -----------------------------------------------------------------------------

    @staticmethod
    async def _params(request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.can_read_body:
            raw = await request.read()
            if request.content_type == "application/json":
                params.update(json.loads(raw or b"{}"))
            elif raw:
                params.update(parse_qsl(raw.decode(), keep_blank_values=True))
        for key in ("blocks", "attachments"):
            if isinstance(params.get(key), str):
                params[key] = json.loads(params[key])
        return params

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        params = await self._params(request)
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        token = bearer or str(params.pop("token", ""))
        params.pop("token", None)
        if method == "apps.connections.open":
            workspace = self.default
            status, body, headers = self._connections_open(token)
        else:
            workspace = self._by_token.get(token)  # type: ignore[assignment]
            status, body, headers = await self._answer(method, params, workspace, token)
        if status == -1:
            return web.Response(status=504)  # never reached by a client that timed out
        await self._record(
            Call(
                method=method,
                params=params,
                team_id=workspace.team_id if workspace else "",
                status=status,
                error=None if body.get("ok") else str(body.get("error")),
                at=time.monotonic(),
                response=body,
            )
        )
        if status >= 500:
            return web.Response(
                status=status, text="<html><body>Service Unavailable</body></html>", content_type="text/html"
            )
        return web.json_response(body, status=status, headers=headers)

    async def _stall(self, method: str, params: dict[str, Any], team_id: str) -> None:
        """A request that never gets an answer in time; recorded at once so a test can see it."""
        await self._record(Call(method, params, team_id, 504, "timeout", time.monotonic()))
        task = asyncio.ensure_future(asyncio.sleep(self.stall_seconds))
        self._stalls.add(task)
        try:
            await task
        finally:
            self._stalls.discard(task)

    async def _answer(
        self, method: str, params: dict[str, Any], workspace: Workspace | None, token: str
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        fault = self._take_fault(method)
        if fault is not None:
            handler = self._methods().get(method)
            if fault.applied and workspace is not None and handler is not None:
                handler(workspace, params)
            if fault.timeout:
                await self._stall(method, params, workspace.team_id if workspace else "")
                return -1, {}, {}
            if fault.status == 429:
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": str(fault.retry_after)}
            if fault.status >= 500:
                return fault.status, {"ok": False, "error": "internal_error"}, {}
            return 200, {"ok": False, "error": fault.error}, {}
        if not token:
            return 200, {"ok": False, "error": "not_authed"}, {}
        if workspace is None:
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        handler = self._methods().get(method)
        if handler is None:
            return 200, {"ok": False, "error": "unknown_method"}, {}
        if method == "chat.postMessage":
            wait = self._pace(workspace, str(params.get("channel", "")))
            if wait:
                return (
                    429,
                    {"ok": False, "error": "ratelimited"},
                    {"Retry-After": str(max(1, math.ceil(wait)))},
                )
        body = handler(workspace, params)
        return 200, body, {}

    def _take_fault(self, method: str) -> Fault | None:
        queue = self._faults.get(method)
        if not queue:
            return None
        fault = queue[0]
        if fault.after > 0:
            fault.after -= 1
            return None
        fault.times -= 1
        if fault.times <= 0:
            queue.pop(0)
        return fault

    def _pace(self, workspace: Workspace, channel: str) -> float:
        """Seconds to wait, or 0 (and a message counted against both limits)."""
        key = (workspace.team_id, channel)
        channel_bucket = self._channel_buckets.setdefault(key, _Bucket(self.channel_rate, self.burst))
        workspace_bucket = None
        if self.workspace_rate is not None:
            workspace_bucket = self._workspace_buckets.setdefault(
                workspace.team_id, _Bucket(self.workspace_rate, self.workspace_burst)
            )
            wait = workspace_bucket.take()
            if wait:
                return wait
        wait = channel_bucket.take()
        if wait and workspace_bucket is not None:
            workspace_bucket.tokens += 1  # give back: the message was not sent
        return wait

    def _methods(self) -> dict[str, Callable[[Workspace, dict[str, Any]], dict[str, Any]]]:
        return {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.postEphemeral": self._post_ephemeral,
            "chat.update": self._update,
            "conversations.info": self._conversations_info,
            "conversations.open": self._conversations_open,
            "conversations.join": self._conversations_join,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "users.info": self._users_info,
            "usergroups.users.list": self._usergroup_users,
            "reactions.add": self._reactions_add,
            "files.getUploadURLExternal": self._get_upload_url,
            "files.completeUploadExternal": self._complete_upload,
        }

    def _conversations_open(self, workspace: Workspace, params: dict[str, Any]) -> dict[str, Any]:
        """The bot's DM with one person (`users`), opened if need be: `D` + the user id's tail, so
        that a test can post in it as that person."""
        users = str(params.get("users") or "").split(",")
        if len(users) != 1 or not users[0]:
            return {"ok": False, "error": "invalid_arguments"}
        user = workspace.users.get(users[0])
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        if user.get("is_bot"):
            return {"ok": False, "error": "cannot_dm_bot"}
        dm_id = f"D{users[0][1:]}"
        channel = workspace.channels.get(dm_id) or self.add_channel(dm_id, team=workspace.team_id)
        return {"ok": True, "channel": {"id": channel.id}}

    def _get_upload_url(self, workspace: Workspace, params: dict[str, Any]) -> dict[str, Any]:
        filename = str(params.get("filename") or "")
        length = str(params.get("length") or "")
        if not filename or not length.isdigit():
            return {"ok": False, "error": "invalid_arguments"}
        if int(length) > MAX_FILE_BYTES:
            return {"ok": False, "error": "file_too_large"}
        file_id = f"F{next(self._ids):08d}"
        self._files[file_id] = Upload(
            file_id=file_id, filename=filename, length=int(length), alt_txt=str(params.get("alt_txt") or "")
        )
        return {
            "ok": True,
            "file_id": file_id,
            "upload_url": f"http://127.0.0.1:{self.port}/upload/{file_id}",
        }

    async def _download(self, request: web.Request) -> web.StreamResponse:
        """A shared file's `url_private(_download)`: its bytes for its workspace's bot token with
        `files:read`; for any other token, as Slack does, a 200 with the sign-in page."""
        shared = self._shared.get(request.path)
        bearer = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        fault = self._take_fault("files.download")
        if fault is not None:
            response = web.Response(status=fault.status, text="<html>error</html>", content_type="text/html")
        elif shared is None:
            response = web.Response(status=404, text="<html>not found</html>", content_type="text/html")
        elif bearer != shared[0].token or shared[0].team_id in self.without_files_read:
            response = web.Response(text="<html>Sign in to Slack</html>", content_type="text/html")
        else:
            response = web.Response(body=shared[1], content_type="application/octet-stream")
        self.downloads.append((request.path, response.status))
        return response

    async def _upload_bytes(self, request: web.Request) -> web.StreamResponse:
        """The upload URL: the bytes as the request body (slack-sdk posts them raw)."""
        upload = self._files.get(request.match_info["file_id"])
        data = await request.read()
        fault = self._take_fault("files.upload")
        status = fault.status if fault is not None else 200
        if status == 200 and upload is None:
            status = 404
        elif status == 200 and upload is not None and len(data) != upload.length:
            status = 400  # not the length files.getUploadURLExternal was told
        if status == 200 and upload is not None:
            upload.data = data
        await self._record(
            Call(
                "files.upload",
                {"file_id": request.match_info["file_id"], "bytes": len(data)},
                "",
                status,
                None if status == 200 else str(status),
                time.monotonic(),
            )
        )
        return web.Response(status=status, text=f"OK - {len(data)}" if status == 200 else "upload failed")

    def _complete_upload(self, workspace: Workspace, params: dict[str, Any]) -> dict[str, Any]:
        files = params.get("files")
        if isinstance(files, str):
            files = json.loads(files)
        if not isinstance(files, list) or not files:
            return {"ok": False, "error": "invalid_arguments"}
        channel_id = params.get("channel_id")
        channel: Channel | None = None
        if channel_id:
            found = self._channel_for_post(workspace, str(channel_id))
            if isinstance(found, dict):
                return found
            channel = found
        uploads = []
        for item in files:
            upload = self._files.get(str(item.get("id")))
            if upload is None or upload.data is None:
                return {"ok": False, "error": "file_not_found"}
            upload.title = str(item.get("title") or upload.filename)
            uploads.append(upload)
        shown = []
        for upload in uploads:
            upload.channel = channel.id if channel else None
            upload.thread_ts = str(params["thread_ts"]) if params.get("thread_ts") else None
            self.uploads.append(upload)
            file = {
                "id": upload.file_id,
                "name": upload.filename,
                "title": upload.title,
                "size": len(upload.data or b""),
                "mimetype": "image/png" if upload.is_png else "application/octet-stream",
            }
            shown.append(file)
            if channel is not None:
                message: dict[str, Any] = {
                    "type": "message",
                    "subtype": "file_share",
                    "user": workspace.bot_user_id,
                    "bot_id": workspace.bot_id,
                    "text": str(params.get("initial_comment") or ""),
                    "files": [file],
                    "ts": self.next_ts(),
                    "team": workspace.team_id,
                }
                if upload.thread_ts:
                    message["thread_ts"] = upload.thread_ts
                channel.messages.append(message)
        return {"ok": True, "files": shown}

    def _connections_open(self, token: str) -> tuple[int, dict[str, Any], dict[str, str]]:
        if not token.startswith("xapp-"):
            return 200, {"ok": False, "error": "not_allowed_token_type"}, {}
        if token != self.app_token:
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        ticket = uuid.uuid4().hex
        return 200, {"ok": True, "url": f"ws://127.0.0.1:{self.port}/link?ticket={ticket}"}, {}

    def _auth_test(self, workspace: Workspace, params: dict[str, Any]) -> dict[str, Any]:
        body = payload("auth_test")
        body.update(
            team_id=workspace.team_id,
            team=workspace.name,
            user_id=workspace.bot_user_id,
            bot_id=workspace.bot_id,
            url=f"http://127.0.0.1:{self.port}/",
        )
        return body

    def _channel_for_post(self, workspace: Workspace, channel_id: str) -> Channel | dict[str, Any]:
        channel = workspace.channels.get(channel_id)
        if channel is None or (channel.is_private and not channel.bot_member):
            return {"ok": False, "error": "channel_not_found"}
        if channel.is_archived:
            return {"ok": False, "error": "is_archived"}
        if not channel.bot_member and not channel.is_im:
            return {"ok": False, "error": "not_in_channel"}
        return channel

    @staticmethod
    def _check_content(params: Mapping[str, Any]) -> str | None:
        """The error Slack gives for content outside its limits, or None."""
        text = str(params.get("text") or "")
        blocks = params.get("blocks") or []
        if not text and not blocks:
            return "no_text"
        if len(text) > 40_000:
            return "msg_too_long"
        if len(blocks) > 50:
            return "invalid_blocks"
        for block in blocks:
            if block.get("type") == "section" and len((block.get("text") or {}).get("text", "")) > 3000:
                return "invalid_blocks"
            if block.get("type") == "header" and len(block["text"]["text"]) > 150:
                return "invalid_blocks"
            if block.get("type") == "actions":
                ids = [e.get("action_id") for e in block.get("elements", [])]
                if len(ids) != len(set(ids)) or len(ids) > 25:
                    return "invalid_blocks"
        return None

    def _post_message(self, workspace: Workspace, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_for_post(workspace, str(params.get("channel", "")))
        if isinstance(channel, dict):
            return channel
        problem = self._check_content(params)
        if problem:
            return {"ok": False, "error": problem}
        message: dict[str, Any] = {
            "type": "message",
            "user": workspace.bot_user_id,
            "bot_id": workspace.bot_id,
            "app_id": "A0SUPPORTBOT",
            "text": params.get("text", ""),
            "blocks": params.get("blocks") or [],
            "ts": self.next_ts(),
            "team": workspace.team_id,
        }
        if params.get("thread_ts"):
            message["thread_ts"] = str(params["thread_ts"])
        metadata = params.get("metadata")
        if isinstance(metadata, str):
            metadata = json.loads(metadata)
        if metadata:
            message["metadata"] = metadata
        channel.messages.append(message)
        return {"ok": True, "channel": channel.id, "ts": message["ts"], "message": message}

    def _post_ephemeral(self, workspace: Workspace, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_for_post(workspace, str(params.get("channel", "")))
        if isinstance(channel, dict):
            return channel
        if str(params.get("user", "")) not in workspace.users:
            return {"ok": False, "error": "user_not_found"}
        if str(params.get("user", "")) in channel.left:
            return {"ok": False, "error": "user_not_in_channel"}
        problem = self._check_content(params)
        if problem:
            return {"ok": False, "error": problem}
        return {"ok": True, "message_ts": self.next_ts()}

    def _update(self, workspace: Workspace, params: dict[str, Any]) -> dict[str, Any]:
        channel = workspace.channels.get(str(params.get("channel", "")))
        if channel is None:
            return {"ok": False, "error": "channel_not_found"}
        problem = self._check_content(params)
        if problem:
            return {"ok": False, "error": problem}
        for message in channel.messages:
            if message["ts"] == str(params.get("ts")):
                if message.get("user") != workspace.bot_user_id:
                    return {"ok": False, "error": "cant_update_message"}
                message.update(text=params.get("text", ""), blocks=params.get("blocks") or [])
                return {"ok": True, "channel": channel.id, "ts": message["ts"], "text": message["text"]}
        return {"ok": False, "error": "message_not_found"}

    def _conversations_info(self, workspace: Workspace, params: dict[str, Any]) -> dict[str, Any]:
        channel = workspace.channels.get(str(params.get("channel", "")))
        if channel is None or (channel.is_private and not channel.bot_member):
            return {"ok": False, "error": "channel_not_found"}
        return {"ok": True, "channel": channel.info()}

    def _conversations_join(self, workspace: Workspace, params: dict[str, Any]) -> dict[str, Any]:
        channel = workspace.channels.get(str(params.get("channel", "")))
        if channel is None or (channel.is_private and not channel.bot_member):
            return {"ok": False, "error": "channel_not_found"}
        if channel.is_archived:
            return {"ok": False, "error": "is_archived"}
        if channel.is_private or channel.is_im:
            return {"ok": False, "error": "method_not_supported_for_channel_type"}
        channel.bot_member = True
        return {"ok": True, "channel": channel.info()}

    def _readable(self, workspace: Workspace, channel_id: str) -> Channel | dict[str, Any]:
        channel = workspace.channels.get(channel_id)
        if channel is None or (channel.is_private and not channel.bot_member):
            return {"ok": False, "error": "channel_not_found"}
        if not channel.bot_member and not channel.is_im:
            return {"ok": False, "error": "not_in_channel"}
        return channel

    def _conversations_history(self, workspace: Workspace, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._readable(workspace, str(params.get("channel", "")))
        if isinstance(channel, dict):
            return channel
        inclusive = str(params.get("inclusive", "")).lower() in ("1", "true")
        latest = float(params["latest"]) if params.get("latest") else math.inf
        oldest = float(params["oldest"]) if params.get("oldest") else 0.0
        limit = int(params.get("limit") or 100)

        def within(ts: float) -> bool:
            if inclusive:
                return oldest <= ts <= latest
            return oldest < ts < latest

        top_level = [
            m for m in channel.messages if m.get("thread_ts") in (None, m["ts"]) and within(float(m["ts"]))
        ]
        newest_first = sorted(top_level, key=lambda m: float(m["ts"]), reverse=True)
        shown = [_as_read(m, params) for m in newest_first[:limit]]
        return {"ok": True, "messages": shown, "has_more": len(newest_first) > limit}

    def _conversations_replies(self, workspace: Workspace, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._readable(workspace, str(params.get("channel", "")))
        if isinstance(channel, dict):
            return channel
        ts = str(params.get("ts", ""))
        target = next((m for m in channel.messages if m["ts"] == ts), None)
        if target is None:
            return {"ok": False, "error": "thread_not_found"}
        root = str(target.get("thread_ts") or target["ts"])
        thread = [m for m in channel.messages if m["ts"] == root or m.get("thread_ts") == root]
        thread.sort(key=lambda m: float(m["ts"]))
        if target["ts"] != root:
            # Asked with a reply's ts: Slack answers with that reply.
            thread = [target]
        limit = int(params.get("limit") or 1000)
        shown = [_as_read(m, params) for m in thread[:limit]]
        return {"ok": True, "messages": shown, "has_more": len(thread) > limit}

    def _users_info(self, workspace: Workspace, params: dict[str, Any]) -> dict[str, Any]:
        user = workspace.users.get(str(params.get("user", "")))
        if user is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": copy.deepcopy(user)}

    def _usergroup_users(self, workspace: Workspace, params: dict[str, Any]) -> dict[str, Any]:
        group = workspace.groups.get(str(params.get("usergroup", "")))
        if group is None:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": sorted(group)}

    def _reactions_add(self, workspace: Workspace, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._readable(workspace, str(params.get("channel", "")))
        if isinstance(channel, dict):
            return channel
        for message in channel.messages:
            if message["ts"] == str(params.get("timestamp")):
                reactions = message.setdefault("reactions", [])
                name = str(params.get("name", ""))
                for reaction in reactions:
                    if reaction["name"] == name:
                        if workspace.bot_user_id in reaction["users"]:
                            return {"ok": False, "error": "already_reacted"}
                        reaction["users"].append(workspace.bot_user_id)
                        reaction["count"] += 1
                        return {"ok": True}
                reactions.append({"name": name, "users": [workspace.bot_user_id], "count": 1})
                return {"ok": True}
        return {"ok": False, "error": "message_not_found"}

    # -- response URLs -----------------------------------------------------------------------

    def _new_response_url(self, kind: str, *, user: str, channel: str, team: str) -> str:
        key = uuid.uuid4().hex
        self._response_urls[key] = {"user": user, "channel": channel, "team": team, "uses": 0, "kind": kind}
        return f"http://127.0.0.1:{self.port}/response/{key}"

    async def _response_url(self, request: web.Request) -> web.StreamResponse:
        key = request.match_info["key"]
        entry = self._response_urls.get(key)
        body = await request.json() if request.can_read_body else {}
        if entry is None:
            return web.Response(status=404, text="no_such_url")
        entry["uses"] += 1
        error = None
        status = 200
        if entry["uses"] > 5:
            status, error = 404, "used_url"
        else:
            problem = self._check_content(body)
            if problem:
                status, error = 400, problem
        params = {**body, "channel": entry["channel"], "user": entry["user"], "url_key": key}
        await self._record(Call("response_url", params, entry["team"], status, error, time.monotonic()))
        return web.Response(status=status, text=error or "ok")

    # -- Socket Mode -------------------------------------------------------------------------

    async def _socket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_json(payload("socket_hello"))
        self._socket_connected.set()
        try:
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                data = json.loads(message.data)
                envelope_id = data.get("envelope_id")
                await self._record(
                    Call("socket.ack", data, self.default.team_id, 200, None, time.monotonic())
                )
                future = self._acks.pop(envelope_id, None)
                if future is not None and not future.done():
                    future.set_result(data)
        finally:
            self._sockets.remove(ws)
            if not self._sockets:
                self._socket_connected.clear()
        return ws

    async def wait_for_socket(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        await asyncio.wait_for(self._socket_connected.wait(), timeout)

    async def push_envelope(
        self,
        kind: str,
        body: Mapping[str, Any],
        *,
        retry_attempt: int = 0,
        timeout: float = 5.0,  # noqa: ASYNC109
    ) -> Ack:
        """Send a Socket Mode envelope (`events_api`, `slash_commands`, `interactive`) and wait for
        the bot's ack."""
        await self.wait_for_socket(timeout)
        envelope = payload("socket_envelope_events_api")
        envelope.update(
            envelope_id=str(uuid.uuid4()),
            type=kind,
            payload=dict(body),
            accepts_response_payload=kind != "events_api",
            retry_attempt=retry_attempt,
            retry_reason="timeout" if retry_attempt else "",
        )
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._acks[envelope["envelope_id"]] = future
        started = time.perf_counter()
        await self._sockets[-1].send_json(envelope)
        ack = await asyncio.wait_for(future, timeout)
        return Ack(200, json.dumps(ack), (time.perf_counter() - started) * 1000)

    # -- HTTP delivery -----------------------------------------------------------------------

    async def post_signed(
        self,
        body: bytes,
        *,
        content_type: str,
        headers: Mapping[str, str] | None = None,
        secret: str | None = None,
        timestamp: int | None = None,
        to: str | None = None,
    ) -> Ack:
        """POST `body` to the bot, signed with `secret` (default: the real one) at `timestamp`;
        `to` picks one of several bot processes (a load balancer's choice), else `bot_url`."""
        url = to or self.bot_url
        if url is None or self._session is None:
            raise RuntimeError("set bot_url (the bot's /slack/events) and start the emulator first")
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signed = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": sign(self.signing_secret if secret is None else secret, stamp, body),
            **(headers or {}),
        }
        started = time.perf_counter()
        async with self._session.post(url, data=body, headers=signed) as response:
            text = await response.text()
            return Ack(response.status, text, (time.perf_counter() - started) * 1000)

    def _via(self, via: str | None) -> str:
        return via or self.default_via

    def event_callback(
        self,
        event: Mapping[str, Any],
        *,
        template: str = "event_message",
        team: str | None = None,
        event_id: str | None = None,
    ) -> dict[str, Any]:
        """An Events API `event_callback` body around `event`, shaped like the captured one."""
        workspace = self._workspace(team)
        body = payload(template)
        body["event"] = dict(event)
        body.update(
            team_id=workspace.team_id,
            event_id=event_id or f"Ev{next(self._ids):010d}",
            event_time=int(time.time()),
        )
        body["context_team_id"] = workspace.team_id
        body["authorizations"][0].update(team_id=workspace.team_id, user_id=workspace.bot_user_id)
        return body

    async def send_event(
        self, body: Mapping[str, Any], *, retry_num: int = 0, via: str | None = None, to: str | None = None
    ) -> Ack:
        """Deliver an event_callback body; `retry_num` > 0 marks it as Slack's redelivery."""
        if self._via(via) == "socket":
            return await self.push_envelope("events_api", body, retry_attempt=retry_num)
        headers = {}
        if retry_num:
            headers = {"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"}
        raw = json.dumps(body).encode()
        return await self.post_signed(raw, content_type="application/json", headers=headers, to=to)

    RETRY_DELAYS = (1.0, 60.0, 300.0)
    """Slack's redelivery of an event the app did not acknowledge (within 3 s, with a 2xx): about
    1 s, 1 minute and 5 minutes after the first try, then it gives up."""

    async def deliver_with_retries(
        self,
        body: Mapping[str, Any],
        *,
        to: Callable[[], str | None],
        speedup: float = 1.0,
        ack_timeout: float = 3.0,
    ) -> list[Ack | None]:
        """Deliver an event as Slack does: retried with `X-Slack-Retry-Num` 1..3 after
        `RETRY_DELAYS` (divided by `speedup`) until acknowledged. `to` names the bot's URL at each
        try (a restarted process listens elsewhere; None: nothing listens). One entry per try: its
        ack, or None for a refused connection or no answer within `ack_timeout`."""
        tries: list[Ack | None] = []
        for attempt in range(len(self.RETRY_DELAYS) + 1):
            if attempt:
                await asyncio.sleep(self.RETRY_DELAYS[attempt - 1] / speedup)
            ack: Ack | None = None
            url = to()
            if url is not None:
                try:
                    ack = await asyncio.wait_for(
                        self.send_event(body, retry_num=attempt, to=url), ack_timeout
                    )
                except (TimeoutError, aiohttp.ClientError, OSError):
                    ack = None
            tries.append(ack)
            if ack is not None and 200 <= ack.status < 300:
                break
        return tries

    def message_event(
        self,
        user: str,
        channel: str,
        text: str,
        *,
        thread_ts: str | None = None,
        team: str | None = None,
        mention: bool = False,
        files: Sequence[dict[str, Any]] = (),
    ) -> dict[str, Any]:
        """Store a person's message in the channel's history and return its `message` event; with
        `files` (see `shared_file`), the `file_share` message Slack sends for files shared with it."""
        workspace = self._workspace(team)
        channel_obj = workspace.channels.get(channel) or self.add_channel(channel, team=team)
        event = payload("event_message")["event"]
        ts = self.next_ts()
        event.update(
            type="app_mention" if mention else "message",
            text=text,
            user=user,
            ts=ts,
            event_ts=ts,
            team=workspace.team_id,
            channel=channel,
            client_msg_id=str(uuid.uuid4()),
            channel_type="im" if channel_obj.is_im else ("group" if channel_obj.is_private else "channel"),
        )
        event["blocks"][0]["elements"][0]["elements"][0]["text"] = text
        if files:
            event.update(subtype="file_share", files=list(files), upload=False, display_as_bot=False)
            if not text:
                event.pop("blocks")
        if mention:
            event.pop("channel_type")
        if thread_ts:
            event["thread_ts"] = thread_ts
            event["parent_user_id"] = next(
                (m.get("user") for m in channel_obj.messages if m["ts"] == thread_ts), user
            )
        stored = {k: v for k, v in event.items() if k not in ("event_ts", "channel", "channel_type")}
        stored["type"] = "message"
        channel_obj.messages.append(stored)
        return event

    def shared_file(
        self,
        user: str,
        name: str,
        size: int,
        mimetype: str,
        *,
        team: str | None = None,
        content: bytes | None = None,
    ) -> dict[str, Any]:
        """A file a person shared, as a message event's `files` hold it (api.slack.com/types/file):
        its download URLs need a token, its permalink is the page people open. With `content`, the
        emulator serves its download URLs (`_download`) in place of files.slack.com."""
        workspace = self._workspace(team)
        file_id = f"F0{uuid.uuid4().hex[:8].upper()}"
        slug = re.sub(r"[^a-z0-9.]+", "-", name.lower()).strip("-") or "file"
        host = "https://files.slack.com" if content is None else f"http://127.0.0.1:{self.port}"
        private = f"{host}/files-pri/{workspace.team_id}-{file_id}/{slug}"
        if content is not None:
            for path in (private, f"{private}/download"):
                self._shared[path.removeprefix(host)] = (workspace, content)
        return {
            "id": file_id,
            "created": int(time.time()),
            "timestamp": int(time.time()),
            "name": name,
            "title": name,
            "mimetype": mimetype,
            "filetype": name.rsplit(".", 1)[-1] if "." in name else "binary",
            "user": user,
            "user_team": workspace.team_id,
            "size": size,
            "mode": "hosted",
            "is_external": False,
            "is_public": True,
            "url_private": private,
            "url_private_download": f"{private}/download",
            "permalink": f"https://emulator.slack.com/files/{user}/{file_id}/{slug}",
            "permalink_public": f"https://slack-files.com/{workspace.team_id}-{file_id}-0a1b2c",
            "file_access": "visible",
        }

    async def user_posts(
        self,
        user: str,
        channel: str,
        text: str,
        *,
        thread_ts: str | None = None,
        team: str | None = None,
        via: str | None = None,
        retry_num: int = 0,
        files: Sequence[dict[str, Any]] = (),
    ) -> Posted:
        """A person writes in a channel (or thread, or DM), perhaps with files: stored, then
        delivered as Slack would."""
        event = self.message_event(user, channel, text, thread_ts=thread_ts, team=team, files=files)
        body = self.event_callback(event, team=team)
        return Posted(body=body, ack=await self.send_event(body, via=via, retry_num=retry_num))

    async def react(
        self,
        user: str,
        channel: str,
        ts: str,
        reaction: str = "ticket",
        *,
        team: str | None = None,
        via: str | None = None,
    ) -> Ack:
        workspace = self._workspace(team)
        message = next((m for m in workspace.channels[channel].messages if m["ts"] == ts), {})
        body = payload("event_reaction_added")
        body["event"].update(
            user=user,
            reaction=reaction,
            item={"type": "message", "channel": channel, "ts": ts},
            item_user=message.get("user", ""),
            event_ts=self.next_ts(),
        )
        body = self.event_callback(body["event"], template="event_reaction_added", team=team)
        return await self.send_event(body, via=via)

    def command_form(
        self, user: str, channel: str, command: str, text: str = "", *, team: str | None = None
    ) -> dict[str, str]:
        workspace = self._workspace(team)
        channel_obj = workspace.channels.get(channel)
        form = payload("slash_command")
        trigger = f"{next(self._ids)}.{int(time.time())}.{uuid.uuid4().hex}"
        form.update(
            team_id=workspace.team_id,
            channel_id=channel,
            channel_name="directmessage"
            if channel.startswith("D")
            else (channel_obj.name if channel_obj else "unknown"),
            user_id=user,
            user_name=str(workspace.users.get(user, {}).get("name", user)),
            command=command,
            text=text,
            trigger_id=trigger,
            response_url=self._new_response_url(
                "command", user=user, channel=channel, team=workspace.team_id
            ),
        )
        return form

    async def slash_command(
        self, user: str, channel: str, line: str, *, team: str | None = None, via: str | None = None
    ) -> Ack:
        """`line` as typed, e.g. "/ticket status 4"."""
        command, _, text = line.partition(" ")
        form = self.command_form(user, channel, command, text, team=team)
        if self._via(via) == "socket":
            return await self.push_envelope("slash_commands", form)
        return await self.post_signed(
            urlencode(form).encode(), content_type="application/x-www-form-urlencoded"
        )

    def block_actions(
        self, user: str, channel: str, message: Mapping[str, Any], action_id: str, *, team: str | None = None
    ) -> dict[str, Any]:
        """The `block_actions` payload for a click on the button `action_id` of a stored message."""
        workspace = self._workspace(team)
        button = None
        for block in message.get("blocks") or []:
            for element in block.get("elements") or []:
                if element.get("action_id") == action_id:
                    button = element
        if button is None:
            raise AssertionError(f"no button {action_id!r} on message {message.get('ts')}")
        body = payload("block_actions")
        body.update(
            user={
                "id": user,
                "username": str(workspace.users.get(user, {}).get("name", user)),
                "name": str(workspace.users.get(user, {}).get("name", user)),
                "team_id": workspace.team_id,
            },
            container={
                "type": "message",
                "message_ts": message["ts"],
                "channel_id": channel,
                "is_ephemeral": False,
            },
            trigger_id=f"{next(self._ids)}.{int(time.time())}.{uuid.uuid4().hex}",
            team={"id": workspace.team_id, "domain": "emulator"},
            channel={
                "id": channel,
                "name": workspace.channels[channel].name if channel in workspace.channels else channel,
            },
            message=copy.deepcopy(dict(message)),
            response_url=self._new_response_url("action", user=user, channel=channel, team=workspace.team_id),
        )
        if message.get("thread_ts"):
            body["container"]["thread_ts"] = message["thread_ts"]
        action = {
            "action_id": action_id,
            "block_id": "b1",
            "text": button["text"],
            "type": "button",
            "action_ts": f"{time.time():.6f}",
        }
        if "value" in button:
            action["value"] = button["value"]
        if "style" in button:
            action["style"] = button["style"]
        body["actions"] = [action]
        return body

    async def click(
        self,
        user: str,
        channel: str,
        message: Mapping[str, Any],
        action_id: str,
        *,
        team: str | None = None,
        via: str | None = None,
    ) -> Ack:
        body = self.block_actions(user, channel, message, action_id, team=team)
        if self._via(via) == "socket":
            return await self.push_envelope("interactive", body)
        return await self.post_signed(
            urlencode({"payload": json.dumps(body)}).encode(),
            content_type="application/x-www-form-urlencoded",
        )

    def message(self, channel: str, ts: str, *, team: str | None = None) -> dict[str, Any]:
        """A stored message (for clicking its buttons)."""
        for message in self._workspace(team).channels[channel].messages:
            if message["ts"] == ts:
                return message
        raise KeyError(f"no message {ts} in {channel}")


def _as_read(message: dict[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """A stored message as a history read returns it: metadata only when asked for."""
    if str(params.get("include_all_metadata", "")).lower() in ("1", "true"):
        return message
    return {k: v for k, v in message.items() if k != "metadata"}
