"""The Slack adapter: slack-bolt for inbound traffic (HTTP Events API or Socket Mode), slack-sdk's
Web API client for outbound messages. A thin I/O shell around `translate` (payloads <-> events),
with `inbound` (who wrote, names, the message reacted to) and `interactions` (response URLs).

Every inbound path acknowledges first (the bolt listeners only ack and schedule the rest, so Slack
gets its answer at once), then resolves the user and hands the event to the dispatcher's sink,
which only enqueues. Slack never resends what was acknowledged, so with an inbox (`keep_inbox`) the
request is written to the database before the acknowledgement (none when that fails: a 503, which
Slack retries), finished once the dispatcher has settled its event, and replayed by this or another
process when its lease runs out unfinished (the process died in between). Redeliveries keep their
ids (`event_id` for reactions, the channel and `ts` for messages, `trigger_id` for commands and
clicks), so the dispatcher's persistent dedupe handles each exactly once, in any bot process.

Reactions: the reacted-to message is fetched so `ReactionAdded.message_text` carries its text, and
its conversation the thread (the payload names a reply by its channel alone); when that lookup fails
twice the event still goes through, with `message_text=None` and `thread_unknown`.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from bot.adapters.base import (
    Capabilities,
    DeliveryError,
    DeliveryFailure,
    EventSink,
    FileNotFetched,
    RetryListener,
)
from bot.adapters.files import download, load, not_attached_note, origin, without_files
from bot.adapters.retries import SdkRetries
from bot.adapters.slack import earlier, translate
from bot.adapters.slack.earlier import NOTHING_EARLIER
from bot.adapters.slack.inbound import People, fetch_message
from bot.adapters.slack.interactions import Interactions
from bot.adapters.slack.retries import retry_handlers
from bot.core.events import (
    ActionInvoked,
    Attachment,
    CommandInvoked,
    Conversation,
    Delivery,
    InboundEvent,
    MessageReceived,
    OutboundMessage,
    Platform,
    ReactionAdded,
    SentRef,
    SharedFile,
)
from bot.core.inbox import Inbox, Kept, finish_kept, replay_due, replay_forever

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger(__name__)

EVENTS_PATH = "/slack/events"
DEFAULT_API_BASE = "https://slack.com/api/"
FILES_ORIGIN = "https://files.slack.com"
"""Where Slack serves the files people share (`url_private_download`), to the bot's token."""
# A resend reads the last hour's newest messages looking for its earlier copy: retries come within
# minutes, and a status channel does not get this many messages in that time. (Slack caps the page
# at 15 for commercially distributed apps outside the Marketplace; still enough for a retry.)
RESEND_LOOKBACK = 100
EVENT, COMMAND, ACTION = "event", "command", "action"


@dataclass(frozen=True, slots=True)
class NotUploaded:
    """Why a file is not in the channel; `in_doubt` when the upload may have landed all the same
    (its answer never came), so the channel is looked at before a note says it is missing."""

    why: str
    in_doubt: bool


class NotKept(Exception):
    """The inbox could not store a request: it must not be acknowledged, so Slack sends it again."""


def _api_error(error: SlackApiError) -> DeliveryError:
    headers = error.response.headers
    retry_after = headers.get("Retry-After") or headers.get("retry-after")
    if isinstance(retry_after, list):
        retry_after = retry_after[0]
    return translate.delivery_error(
        error.response.status_code, str(error.response.get("error", "") or ""), retry_after=retry_after
    )


def _out_of_reach(error: DeliveryError, why: str) -> DeliveryError:
    """`error` read as the person being out of reach, where Slack's name for it (kept as the detail)
    means the channel elsewhere or asks nothing of staff: what the person is owed takes its fallback."""
    return DeliveryError(why, permanent=True, code=DeliveryFailure.PERSON_UNREACHABLE, detail=error.detail)


class SlackAdapter:
    """One Slack workspace (one bot token), in HTTP mode or Socket Mode."""

    platform = Platform.SLACK
    capabilities = Capabilities(
        buttons=True,
        threads=True,
        private_replies=True,
        edits=True,
        max_text=translate.MAX_TEXT,
        max_file_bytes=translate.MAX_FILE_BYTES,
    )

    def __init__(
        self,
        *,
        bot_token: str,
        signing_secret: str | None = None,
        app_token: str | None = None,
        mode: str = "http",
        api_base: str = DEFAULT_API_BASE,
        staff_group_ids: Iterable[str] = (),
        timeout: float = 10.0,
        rate_limit_retries: int = 2,
        user_cache_seconds: float = 600.0,
    ) -> None:
        if mode not in ("http", "socket"):
            raise ValueError("mode is 'http' or 'socket'")
        if mode == "http" and not signing_secret:
            raise ValueError("HTTP mode needs the signing secret")
        if mode == "socket" and not app_token:
            raise ValueError("Socket Mode needs the app-level token (xapp-...)")
        self.mode = mode
        self._bot_token = bot_token
        self._signing_secret = signing_secret
        self._app_token = app_token
        self._api_base = api_base if api_base.endswith("/") else api_base + "/"
        self._timeout = timeout
        self._rate_limit_retries = rate_limit_retries
        self._sink: EventSink | None = None
        self._app: AsyncApp | None = None
        self._client: AsyncWebClient | None = None
        self._session: aiohttp.ClientSession | None = None
        self._socket: AsyncSocketModeHandler | None = None
        self._receiving = True
        self._routes_installed = False
        self._inflight: set[asyncio.Future[None]] = set()
        self._inbox: Inbox | None = None
        self._replay_every = 15.0
        self._replayer: asyncio.Task[None] | None = None
        self._kept: dict[str, list[int]] = {}  # event id -> its inbox rows, until settled
        self.retries = SdkRetries()
        self.interactions = Interactions(
            timeout=timeout, rate_limit_retries=rate_limit_retries, retries=self.retries
        )
        self.people = People(
            lambda: self.client, staff_group_ids=staff_group_ids, user_cache_seconds=user_cache_seconds
        )
        self.bot_user_id = ""
        self.bot_id = ""
        self.team_id = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> SlackAdapter:
        def secret(value: Any) -> str | None:
            return value.get_secret_value() if value is not None else None

        groups = [ref.partition(":")[2] for ref in settings.staff_role_ids if ref.startswith("slack:")]
        return cls(
            bot_token=secret(settings.slack_bot_token) or "",
            signing_secret=secret(settings.slack_signing_secret),
            app_token=secret(settings.slack_app_token),
            mode=settings.slack_mode.value,
            api_base=settings.slack_api_base,
            staff_group_ids=groups,
        )

    def keep_inbox(self, inbox: Inbox, *, replay_every: float = 15.0) -> None:
        """Write every request to `inbox` before acknowledging it, and replay, every `replay_every`
        seconds (and at start), the rows left unfinished by a process that died."""
        self._inbox = inbox
        self._replay_every = replay_every

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def client(self) -> AsyncWebClient:
        if self._client is None:
            raise RuntimeError("the Slack adapter is not started")
        return self._client

    def install_routes(self, app: web.Application) -> None:
        """HTTP mode: serve `/slack/events` (events, commands, interactivity) on the bot's web app."""
        if self.mode == "http":
            app.router.add_post(EVENTS_PATH, self._handle_http)
            self._routes_installed = True

    async def start(self, sink: EventSink) -> None:
        if self.mode == "http" and not self._routes_installed:
            raise RuntimeError("SLACK_MODE=http serves /slack/events on the web server: set WEB_ENABLED=true")
        self._session = aiohttp.ClientSession()
        self._client = AsyncWebClient(
            token=self._bot_token,
            base_url=self._api_base,
            timeout=int(max(1, self._timeout)),
            retry_handlers=retry_handlers(self.retries, rate_limit_retries=self._rate_limit_retries),
        )
        try:
            auth = await self._client.auth_test()
        except SlackApiError as error:
            await self._close_session()
            raise RuntimeError(f"Slack rejected the bot token: {error.response.get('error')}") from None
        except (SlackClientError, aiohttp.ClientError, TimeoutError) as error:
            await self._close_session()
            raise RuntimeError(
                f"cannot reach Slack at {self._api_base} ({type(error).__name__}); check SLACK_API_BASE"
            ) from None
        self.bot_user_id = str(auth.get("user_id") or "")
        self.bot_id = str(auth.get("bot_id") or "")
        self.team_id = str(auth.get("team_id") or "")
        authorized = AuthorizeResult.from_auth_test_response(
            auth_test_response=auth, bot_token=self._client.token
        )

        async def known_at_start() -> AuthorizeResult:
            # The token was checked just above: without this, bolt's single-workspace check asks
            # auth.test again on the first request, and a slow answer there failed that request.
            return authorized

        app = AsyncApp(
            client=self._client,
            authorize=known_at_start,
            signing_secret=self._signing_secret or "",
            request_verification_enabled=self.mode == "http",
            process_before_response=True,
            logger=logging.getLogger("slack_bolt"),
        )
        app.event(re.compile(".*"))(self._on_event)
        app.command(re.compile(".*"))(self._on_command)
        app.action(re.compile(".*"))(self._on_action)
        app.error(self._on_error)
        self._app = app
        self._receiving = True
        self._sink = sink
        if self._inbox is not None:
            self._replayer = asyncio.create_task(
                replay_forever(self.replay, platform=Platform.SLACK.value, every=self._replay_every)
            )
        if self.mode == "socket":
            self._socket = AsyncSocketModeHandler(app, app_token=self._app_token, web_client=self._client)
            await self._socket.connect_async()  # type: ignore[no-untyped-call]  # slack_bolt leaves it unannotated
        log.info("slack connected as %s in %s (%s mode)", self.bot_user_id, self.team_id, self.mode)

    async def connected(self) -> bool:
        """Socket Mode: the socket is up (slack-sdk reconnects a dropped one). HTTP mode has no
        connection: started and taking requests counts as connected."""
        if self._app is None or not self._receiving:
            return False
        if self.mode == "socket":
            return self._socket is not None and await self._socket.client.is_connected()
        return True

    async def drain(self) -> None:
        """Wait until every acknowledged request has reached the sink (or been ignored)."""
        while self._inflight:
            await asyncio.gather(*self._inflight, return_exceptions=True)

    async def stop_receiving(self) -> None:
        """The first step of shutting down: take no new requests, hand over the acknowledged ones.

        New HTTP requests get a 503, which Slack retries (another process, or this one after its
        restart, handles the retry once); Socket Mode disconnects, and Slack redelivers whatever was
        not acknowledged. The bot then answers everything handed over while it can still send."""
        self._receiving = False
        if self._replayer is not None:
            self._replayer.cancel()
            await asyncio.gather(self._replayer, return_exceptions=True)
            self._replayer = None
        if self._socket is not None:
            await self._socket.close_async()  # type: ignore[no-untyped-call]  # slack_bolt leaves it unannotated
            self._socket = None
        try:
            await asyncio.wait_for(self.drain(), timeout=10)
        except TimeoutError:
            log.warning("%d Slack requests still being read after 10 s", len(self._inflight))

    async def stop(self) -> None:
        # Requests already acknowledged to Slack will not be redelivered: hand them over first.
        await self.stop_receiving()
        self._sink = None
        self._app = None
        await self._close_session()

    async def _close_session(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- files people shared -----------------------------------------------------------------

    async def fetch_file(self, file: SharedFile, *, limit: int) -> bytes:
        """A shared file's bytes, downloaded with the bot's token (the `files:read` scope). The token
        goes only to Slack's file host (or, with another API base, such as an emulator or a proxy,
        to that base's host alone), never through a redirect."""
        if self._session is None:
            raise FileNotFetched("the Slack adapter is not started")
        origins = {FILES_ORIGIN} if self._api_base == DEFAULT_API_BASE else {origin(self._api_base)}
        token = {"Authorization": f"Bearer {self._bot_token}"}
        data, kind = await download(self._session, file.ref, limit=limit, origins=origins, headers=token)
        if kind == "text/html" and file.kind != "text/html":
            # What Slack serves a token it will not give the file to: its sign-in page, with a 200.
            log.warning("slack: a file download got the sign-in page; reinstall the app for files:read")
            raise FileNotFetched("Slack answered with its sign-in page (no files:read scope?)")
        return data

    # -- inbound -----------------------------------------------------------------------------

    async def _handle_http(self, request: web.Request) -> web.StreamResponse:
        if self._app is None or not self._receiving:
            # Not started yet, or stopping: Slack retries, and the retry is deduplicated.
            return web.Response(status=503, text="not accepting requests")
        # The signature first, so that nothing unsigned is parsed; bolt checks it again, but answers
        # a timestamp that is not a number, or a body that is not JSON or not UTF-8, with a 500.
        if not self._signed(request.headers, await request.read()):
            return web.Response(status=401, text="invalid request")
        try:
            bolt_request = await to_bolt_request(request)
        except (ValueError, RecursionError, TypeError, AttributeError, KeyError):
            # Not UTF-8, not JSON, or JSON bolt cannot read (`null`, a list): Slack's never is.
            return web.Response(status=400, text="not a Slack request body")
        bolt_response = await self._app.async_dispatch(bolt_request)
        if bolt_response.status == 503:
            # The inbox could not store it (`_on_error`): not acknowledged, so Slack retries it.
            return web.Response(status=503, text="not stored; try again")
        if bolt_response.status >= 500:
            # Our listeners only acknowledge, so this is bolt failing to read a signed body of a shape
            # Slack never sends (a list, a `user` that is a string): a bad request, not our error.
            log.warning("unreadable Slack request: bolt answered %s", bolt_response.status)
            return web.Response(status=400, text="not a Slack request body")
        return await to_aiohttp_response(bolt_response)

    def _signed(self, headers: Mapping[str, str], body: bytes) -> bool:
        verifier = SignatureVerifier(self._signing_secret or "")
        try:
            return verifier.is_valid(
                body=body,
                timestamp=headers.get("X-Slack-Request-Timestamp"),
                signature=headers.get("X-Slack-Signature"),
            )
        except (ValueError, OverflowError):  # a timestamp that is no number
            return False

    async def _submit(self, event: InboundEvent, kept: int | None = None) -> None:
        if kept is not None:
            self._kept.setdefault(event.event_id, []).append(kept)
        sink = self._sink
        if sink is None:
            log.warning("slack event %s arrived while stopped; dropped", event.event_id)
            self._let_go(self._kept.pop(event.event_id, []))
            return
        await sink(event)

    def _let_go(self, kept: Sequence[int]) -> None:
        """This process no longer works on these inbox rows: any process replays them after their
        lease (no longer renewed)."""
        if kept and self._inbox is not None:
            self._inbox.release(kept)

    def _after_ack(self, work: Awaitable[None]) -> None:
        """Run the rest of a request's work after Slack has its acknowledgement; `drain` waits for it."""
        task = asyncio.ensure_future(work)
        self._inflight.add(task)
        task.add_done_callback(self._work_done)

    def _work_done(self, task: asyncio.Future[None]) -> None:
        self._inflight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("reading a Slack request failed", exc_info=task.exception())

    # Bolt runs with process_before_response=True: it awaits these listeners and answers Slack when
    # they return. Each one only acknowledges and schedules the rest, so the answer leaves at once
    # (and bolt does not poll for the ack of hundreds of concurrent requests).

    async def _on_event(self, body: dict[str, Any], request: Any) -> None:
        retry = (request.headers.get("x-slack-retry-num") or ["0"])[0]
        if retry not in ("", "0"):
            log.info(
                "slack redelivery %s of %s (%s)",
                retry,
                body.get("event_id"),
                request.headers.get("x-slack-retry-reason"),
            )
        kept = await self._keep(EVENT, body, person=self._event_author(body))
        self._after_ack(self._take_in(EVENT, body, kept))

    async def _on_command(self, ack: Callable[..., Awaitable[None]], body: dict[str, Any]) -> None:
        kept = await self._keep(COMMAND, body, person=str(body.get("user_id") or ""))
        await ack()
        self._after_ack(self._take_in(COMMAND, body, kept))

    async def _on_action(self, ack: Callable[..., Awaitable[None]], body: dict[str, Any]) -> None:
        kept = await self._keep(ACTION, body, person=str((body.get("user") or {}).get("id") or ""))
        await ack()
        self._after_ack(self._take_in(ACTION, body, kept))

    async def _on_error(self, error: Exception, response: Any) -> None:
        if isinstance(error, NotKept):
            response.status = 503  # logged where it happened; Socket Mode sends no ack for it
            return
        log.error("a Slack listener failed", exc_info=error)

    def _event_author(self, body: Mapping[str, Any]) -> str | None:
        """Who sent an Events API event the bot reads; None for one it ignores (its own posts, other
        bots, edits, event types it has no use for), which needs no inbox row."""
        event = body.get("event") or {}
        kind = event.get("type")
        if kind in ("message", "app_mention"):
            return translate.message_author(event, bot_user_id=self.bot_user_id, bot_id=self.bot_id)
        if kind == "reaction_added" and (user := event.get("user")) and user != self.bot_user_id:
            return str(user)
        return None

    async def _keep(self, kind: str, body: Mapping[str, Any], *, person: str | None) -> int | None:
        """Write the request to the inbox before it is acknowledged; its row (None without an inbox,
        or for an event the bot ignores). Raises NotKept, so that it is not acknowledged, when the
        inbox cannot store it."""
        if self._inbox is None or person is None:
            return None
        try:
            return await self._inbox.keep(kind=kind, person=f"{Platform.SLACK.value}:{person}", body=body)
        except Exception as error:
            log.warning("could not store a Slack %s (%s); not acknowledged", kind, type(error).__name__)
            raise NotKept from error

    async def _take_in(self, kind: str, body: dict[str, Any], kept: int | None, *, age: float = 0.0) -> None:
        """Read the request (the user, names, the message reacted to) and hand its event to the sink;
        the inbox row is finished when the dispatcher settles the event, or here if there is none.
        `age`: seconds since Slack sent it (a replay's). If reading it fails, the row is let go."""
        try:
            if kind == EVENT:
                event = await self._read_event(body)
            elif kind == COMMAND:
                event = await self._read_command(body, age=age)
            else:
                event = await self._read_action(body, age=age)
        except BaseException:
            self._let_go([kept] if kept is not None else [])
            raise
        if event is not None:
            await self._submit(event, kept)
        elif kept is not None:
            await finish_kept(self._inbox, [kept])

    async def _read_event(self, body: dict[str, Any]) -> InboundEvent | None:
        author = self._event_author(body)
        if author is None:
            return None
        event = body.get("event") or {}
        actor = await self.people.actor(author)
        if event.get("type") == "reaction_added":
            message = await fetch_message(self.client, event.get("item") or {})
            return translate.reaction_to_event(
                body, actor=actor, message=message, bot_user_id=self.bot_user_id, bot_id=self.bot_id
            )
        if actor.is_bot:
            return None
        names = await self.people.names(str(event.get("text") or ""), bot_user_id=self.bot_user_id)
        return translate.message_to_event(body, actor=actor, bot_user_id=self.bot_user_id, names=names)

    async def _read_command(self, body: dict[str, Any], *, age: float) -> InboundEvent:
        actor = await self.people.actor(
            str(body.get("user_id")), fallback_name=str(body.get("user_name") or "")
        )
        command = translate.command_to_event(body, actor=actor)
        self.interactions.remember(command, body.get("response_url"), age=age)
        return command

    async def _read_action(self, body: dict[str, Any], *, age: float) -> InboundEvent | None:
        user = body.get("user") or {}
        actor = await self.people.actor(str(user.get("id")), fallback_name=str(user.get("name") or ""))
        action = translate.action_to_event(body, actor=actor)
        if action is not None:
            self.interactions.remember(action, body.get("response_url"), age=age)
        return action

    # -- the inbox ---------------------------------------------------------------------------

    async def event_settled(self, event: InboundEvent, *, duplicate: bool) -> None:
        """The dispatcher is done with the event (handled, a duplicate, refused, failed): its inbox
        rows have nothing left to replay."""
        kept = self._kept.pop(event.event_id, None)
        if kept:
            await finish_kept(self._inbox, kept)

    async def replay(self) -> int:
        """Take in again the requests a process acknowledged but did not see settled (it died): the
        inbox rows whose lease ran out. How many were claimed."""
        if self._inbox is None:
            return 0
        return await replay_due(
            self._inbox,
            platform=Platform.SLACK.value,
            take=self._replay_one,
            receiving=lambda: self._receiving,
        )

    def _replay_one(self, row: Kept, age: float) -> None:
        self._after_ack(self._take_in(row.kind, row.body, row.id, age=age))

    # -- outbound ----------------------------------------------------------------------------

    def report_retries(self, listener: RetryListener) -> None:
        self.retries.listen(listener)

    async def send(self, delivery: Delivery) -> SentRef:
        with self.retries.delivering():
            return await self._send(delivery)

    async def _send(self, delivery: Delivery) -> SentRef:
        if self._client is None:
            raise DeliveryError(
                "Slack adapter not started", permanent=False, code=DeliveryFailure.UNAVAILABLE
            )
        if delivery.message.attachments and (delivery.edit or delivery.message.private_to):
            # An ephemeral message cannot carry a file, and an edit keeps the files it had.
            delivery = replace(delivery, message=without_files(delivery.message))
        if delivery.edit is not None:
            return await self._update(delivery)
        if delivery.direct_to is not None:
            delivery = await self._in_direct_messages(delivery, delivery.direct_to.id)
        if delivery.message.private_to is not None:
            return await self._send_private(delivery)
        return await self._post(delivery)

    async def _in_direct_messages(self, delivery: Delivery, user_id: str) -> Delivery:
        """The delivery aimed at the bot's DM with the person, opened if it is not yet."""
        assert self._client is not None
        try:
            opened = await self._call(self._client.conversations_open, users=user_id)
        except DeliveryError as error:
            if error.detail != "missing_scope":
                raise
            # An app installed before the manifest asked for im:write: the person is out of reach
            # (what they are owed goes through its fallback), and whoever runs the bot must act.
            log.warning("slack: no im:write scope to open a DM; reinstall the app from slack-manifest.yml")
            raise _out_of_reach(error, "no im:write scope to open a DM") from None
        dm = Conversation(
            platform=Platform.SLACK,
            workspace_id=delivery.conversation.workspace_id or self.team_id,
            channel_id=str(opened["channel"]["id"]),
            is_direct=True,
        )
        return replace(delivery, conversation=dm, direct_to=None, reply_to=None)

    async def _call(self, method: Callable[..., Awaitable[Any]], **kwargs: Any) -> Any:
        try:
            return await method(**kwargs)
        except SlackApiError as error:
            raise _api_error(error) from None
        except (SlackClientError, aiohttp.ClientError, TimeoutError, ValueError) as error:
            # Timeouts, refused connections and non-JSON 5xx pages: try again later.
            raise DeliveryError(
                f"Slack unreachable: {type(error).__name__}",
                permanent=False,
                code=DeliveryFailure.UNAVAILABLE,
            ) from None

    def _thread_for(self, delivery: Delivery) -> str | None:
        where = delivery.conversation
        if where.thread_id:
            return where.thread_id
        reply_to = delivery.reply_to
        if (
            delivery.message.in_thread
            and not where.is_direct
            and isinstance(reply_to, MessageReceived | ActionInvoked | ReactionAdded)
            and reply_to.conversation.channel_key == where.channel_key
        ):
            return reply_to.message_id
        return None

    def _ref(self, delivery: Delivery, ts: str, thread_ts: str | None, *, private: bool = False) -> SentRef:
        where = delivery.conversation
        return SentRef(
            platform=Platform.SLACK,
            workspace_id=where.workspace_id or self.team_id,
            channel_id=where.channel_id,
            message_id=ts,
            thread_id=thread_ts,
            is_direct=where.is_direct,
            is_private=private,
        )

    async def _post(self, delivery: Delivery) -> SentRef:
        assert self._client is not None
        channel = delivery.conversation.channel_id
        thread_ts = self._thread_for(delivery)
        key = delivery.idempotency_key
        parts = translate.render(delivery.message)
        # Slack has no idempotency key: a keyed message carries it as metadata, and a resend first
        # looks for what an earlier attempt already posted (`earlier`).
        posted = (
            await self._earlier_copy(channel, thread_ts, key) if key and delivery.resend else NOTHING_EARLIER
        )
        first: SentRef | None = None
        last = ""  # the last part's ts: the files go right after it
        for index, part in enumerate(parts):
            if index in posted.parts:
                last = posted.parts[index]
                first = first or self._ref(delivery, last, thread_ts)
                continue
            kwargs: dict[str, Any] = {"channel": channel, "text": part.text, "blocks": part.blocks}
            if thread_ts:
                kwargs["thread_ts"] = thread_ts
            if key:
                kwargs["metadata"] = earlier.metadata(key, index)
            try:
                response = await self._post_joining(kwargs)
            except DeliveryError as error:
                if not (error.permanent and isinstance(delivery.reply_to, CommandInvoked | ActionInvoked)):
                    raise
                # A command used in a channel the bot is not in: answer through its response_url.
                if not await self.interactions.reply(
                    delivery.reply_to, part, response_type="in_channel", session=self._session
                ):
                    raise
                first = first or self._ref(delivery, f"response:{delivery.reply_to.event_id}", None)
                continue
            last = str(response["ts"])
            first = first or self._ref(delivery, last, thread_ts)
        assert first is not None
        if delivery.message.attachments and not first.message_id.startswith("response:"):
            # Files go after the last part: only when every part was there can some of them be.
            shared = posted.files if posted.has_all(len(parts)) else ()
            await self._attach(delivery.message.attachments, channel, thread_ts, after=last, shared=shared)
        return first

    async def _attach(
        self,
        attachments: tuple[Attachment, ...],
        channel: str,
        thread_ts: str | None,
        *,
        after: str,
        shared: Sequence[earlier.SeenFile] = (),
    ) -> None:
        """Upload the message's files after its text (its last part `after`), where it went, but
        those an earlier attempt already `shared`. A file that cannot be uploaded never fails the
        delivery (its text is posted, and a retry would post it twice): a note says which could
        not be attached, and why."""
        assert self._client is not None
        loaded, failed = await load(attachments, limit=translate.MAX_FILE_BYTES)
        seen = [(a.filename, len(data)) for a, data in loaded]
        wanted = earlier.still_to_upload(seen, shared)
        if not all(wanted):
            log.info(
                "%d file(s) already shared in %s; not uploading them again", wanted.count(False), channel
            )
        there = [file for file, upload in zip(seen, wanted, strict=True) if not upload]
        in_doubt: list[tuple[Attachment, earlier.SeenFile, str]] = []
        for (attachment, data), file, upload in zip(loaded, seen, wanted, strict=True):
            outcome = await self._upload(attachment, data, channel, thread_ts) if upload else None
            if outcome is None:
                there.append(file)
            elif outcome.in_doubt:
                in_doubt.append((attachment, file, outcome.why))
            else:
                failed.append((attachment, outcome.why))
        if in_doubt:
            failed.extend(await self._not_landed(in_doubt, channel, thread_ts, after=after, there=there))
        for attachment, why in failed:
            log.warning("could not attach %s in %s: %s", attachment.filename, channel, why)
        if not failed:
            return
        note = translate.render_single(OutboundMessage(text=not_attached_note(failed)))
        kwargs: dict[str, Any] = {"channel": channel, "text": note.text, "blocks": note.blocks}
        if thread_ts:
            kwargs["thread_ts"] = thread_ts
        try:
            await self._call(self._client.chat_postMessage, **kwargs)
        except DeliveryError as error:
            log.warning("could not say in %s that a file was not attached: %s", channel, error)

    async def _not_landed(
        self,
        in_doubt: Sequence[tuple[Attachment, earlier.SeenFile, str]],
        channel: str,
        thread_ts: str | None,
        *,
        after: str,
        there: Sequence[earlier.SeenFile],
    ) -> list[tuple[Attachment, str]]:
        """Of the files whose upload got no answer (it may have been shared all the same), those
        not among the bot's file shares right after the message's last part `after`, beyond the
        files known to be `there`; all of them when the channel cannot be read."""
        try:
            page = await self._read_window(channel, thread_ts, oldest=after)
        except DeliveryError as error:
            log.info("cannot check %s for files whose upload got no answer (%s)", channel, error.detail)
            return [(attachment, why) for attachment, _, why in in_doubt]
        shown = earlier.files_after(
            page.get("messages") or (), after, bot_user_id=self.bot_user_id, bot_id=self.bot_id
        )
        missing = earlier.still_to_upload([file for _, file, _ in in_doubt], shown, besides=there)
        landed = missing.count(False)
        if landed:
            log.info("%d file(s) whose upload got no answer are in %s all the same", landed, channel)
        return [
            (attachment, why) for (attachment, _, why), lost in zip(in_doubt, missing, strict=True) if lost
        ]

    async def _upload(
        self, attachment: Attachment, data: bytes, channel: str, thread_ts: str | None
    ) -> NotUploaded | None:
        """Slack's external upload flow (files.getUploadURLExternal, the bytes to the URL it gives,
        files.completeUploadExternal into the channel), as slack-sdk's files_upload_v2 runs it.
        None when the file is in the channel, else why not."""
        assert self._client is not None
        try:
            await self._client.files_upload_v2(
                channel=channel,
                thread_ts=thread_ts,
                file=data,
                filename=attachment.filename,
                title=attachment.title or attachment.filename,
                alt_txt=attachment.alt_text[:1000] or None,
            )
        except SlackApiError as error:
            status, code = error.response.status_code, error.response.get("error")
            if status >= 500 or status == 429:
                # Slack's own trouble, not the file's, and it may come after the file was shared:
                # whether it is there is looked up, as for a timeout.
                return NotUploaded(f"Slack failed the upload ({code or f'HTTP {status}'})", in_doubt=True)
            return NotUploaded(f"Slack refused the upload ({code or status})", in_doubt=False)
        except (SlackClientError, aiohttp.ClientError, TimeoutError, ValueError) as error:
            return NotUploaded(f"the upload did not reach Slack ({type(error).__name__})", in_doubt=True)
        return None

    async def _earlier_copy(self, channel: str, thread_ts: str | None, key: str) -> earlier.EarlierCopy:
        """What the bot already posted of the message `key` here (`earlier`), from the newest
        messages of the channel or thread. A transient failure is raised (the delivery is retried
        later, still as a resend); where the bot cannot read, it posts as if nothing was."""
        try:
            page = await self._read_window(channel, thread_ts, oldest=f"{time.time() - 3600:.6f}")
        except DeliveryError as error:
            if error.retry_after is not None:
                # Reading history has its own (much lower) rate limit: back off this delivery only,
                # rather than hold the channel's whole lane for the posting limit it did not hit.
                raise DeliveryError(
                    "Slack history rate limited", permanent=False, code=DeliveryFailure.RATE_LIMITED
                ) from None
            if not error.permanent:
                raise
            log.info("cannot check %s for an earlier copy of %s (%s); posting", channel, key, error.detail)
            return NOTHING_EARLIER
        found = earlier.earlier_copy(
            page.get("messages") or (), key=key, bot_user_id=self.bot_user_id, bot_id=self.bot_id
        )
        if found.parts:
            log.info(
                "%s already posted in %s (%d part(s), %d file(s) after them); not posting them again",
                key,
                channel,
                len(found.parts),
                len(found.files),
            )
        return found

    async def _read_window(self, channel: str, thread_ts: str | None, *, oldest: str) -> Any:
        """The newest messages of the channel, or those of the thread, since `oldest`, with their
        metadata: where a resend looks for what an earlier attempt posted."""
        assert self._client is not None
        window = {"include_all_metadata": True, "limit": RESEND_LOOKBACK, "oldest": oldest}
        if thread_ts:
            return await self._call(
                self._client.conversations_replies, channel=channel, ts=thread_ts, **window
            )
        return await self._call(self._client.conversations_history, channel=channel, **window)

    async def _post_joining(self, kwargs: dict[str, Any]) -> Any:
        """Post; when the bot is not in a public channel, join it once and post again."""
        assert self._client is not None
        try:
            return await self._call(self._client.chat_postMessage, **kwargs)
        except DeliveryError as error:
            if error.detail != "not_in_channel":
                raise
        try:
            await self._call(self._client.conversations_join, channel=kwargs["channel"])
        except DeliveryError as join_error:
            log.info("cannot join %s: %s", kwargs["channel"], join_error.detail or join_error.code)
            raise DeliveryError(
                "the bot is not in that channel",
                permanent=True,
                code=DeliveryFailure.NO_ACCESS,
                detail="not_in_channel",
            ) from None
        return await self._call(self._client.chat_postMessage, **kwargs)

    async def _send_private(self, delivery: Delivery) -> SentRef:
        assert self._client is not None and delivery.message.private_to is not None
        user = delivery.message.private_to.id
        thread_ts = delivery.conversation.thread_id
        first: SentRef | None = None
        for index, part in enumerate(translate.render(delivery.message)):
            if isinstance(
                delivery.reply_to, CommandInvoked | ActionInvoked
            ) and await self.interactions.reply(
                delivery.reply_to, part, response_type="ephemeral", session=self._session
            ):
                ephemeral = f"ephemeral:{delivery.reply_to.event_id}:{index}"
                first = first or self._ref(delivery, ephemeral, None, private=True)
                continue
            kwargs: dict[str, Any] = {
                "channel": delivery.conversation.channel_id,
                "user": user,
                "text": part.text,
                "blocks": part.blocks,
            }
            if thread_ts:
                kwargs["thread_ts"] = thread_ts
            response = await self._post_ephemeral(kwargs)
            ts = str(response.get("message_ts") or "")
            first = first or self._ref(delivery, ts, thread_ts, private=True)
        assert first is not None
        return first

    async def _post_ephemeral(self, kwargs: dict[str, Any]) -> Any:
        assert self._client is not None
        try:
            return await self._call(self._client.chat_postEphemeral, **kwargs)
        except DeliveryError as error:
            if error.detail != "user_not_in_channel":
                raise
            # Here it is the person who is not in the channel, not the bot: nothing for staff to fix.
            raise _out_of_reach(error, "the person is not in that channel") from None

    async def _update(self, delivery: Delivery) -> SentRef:
        assert self._client is not None and delivery.edit is not None
        edit = delivery.edit
        part = translate.render_single(delivery.message)
        await self._call(
            self._client.chat_update,
            channel=edit.channel_id,
            ts=edit.message_id,
            text=part.text,
            blocks=part.blocks,
        )
        return edit
