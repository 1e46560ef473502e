"""The composition root: the only module that knows settings, storage, router, adapters and web."""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, TypeVar

from sqlalchemy.exc import IntegrityError

from bot.adapters.base import Adapter, ReportsConnection, ReportsRetries
from bot.core import retention
from bot.core.clock import utc_now
from bot.core.context import Services
from bot.core.dispatch import Dispatcher, Unfinished
from bot.core.events import Platform
from bot.core.inbox import DatabaseInbox, KeepsInbox
from bot.core.metrics import Metrics
from bot.core.outbound import Outbound
from bot.core.router import Router
from bot.core.staff import StaffPolicy
from bot.handlers import (
    answers,
    basics,
    incidents,
    insights,
    kb_admin,
    privacy,
    status,
    subscriptions,
    tickets,
)
from bot.handlers.autocomplete import make_suggester
from bot.insights import digest, kb_traffic
from bot.kb.knowledge_base import KnowledgeBaseHolder, load_knowledge_base
from bot.kb.loader import KBError
from bot.settings import Settings
from bot.status import look, maintenance_notices
from bot.status import page as status_page
from bot.status.broadcast.pacing import policy_for
from bot.status.broadcast.worker import BroadcastWorker, WorkerConfig
from bot.status.components import ComponentsFileError, load_components_file
from bot.tickets import clocks
from bot.web import RouteInstaller, WebServer, bind, create_web_app
from storage import gateway_sessions_repo, migrate, outbox_repo, status_repo
from storage.db import CANNOT_OPEN, Database, cannot_open, cannot_upgrade

if TYPE_CHECKING:
    from bot.adapters.discord.resume import GatewaySession

log = logging.getLogger(__name__)

_T = TypeVar("_T")


class StartupError(Exception):
    """Something the operator must fix before the bot can start (a broken knowledge base)."""


def build_router() -> Router:
    """Every capability, included explicitly; order breaks ties between equal scores."""
    return Router("root").include(
        basics.router,
        tickets.router,
        insights.router,
        kb_admin.router,
        privacy.router,
        status.router,
        subscriptions.router,
        incidents.router,
        answers.router,
    )


@dataclass
class Connections:
    """Which configured platforms are connected now: their adapter started and not stopping, and
    (for an adapter that can tell, `ReportsConnection`) its connection up. For /readyz and metrics."""

    adapters: Mapping[Platform, Adapter]
    started: set[Platform] = field(default_factory=set)

    async def __call__(self) -> dict[str, bool]:
        return {platform.value: await self._up(platform, a) for platform, a in self.adapters.items()}

    async def _up(self, platform: Platform, adapter: Adapter) -> bool:
        if platform not in self.started:
            return False
        if not isinstance(adapter, ReportsConnection):
            return True
        try:
            return await adapter.connected()
        except Exception:
            log.exception("%s adapter: could not tell whether it is connected", platform.value)
            return False


class Grace:
    """The time a stop may take: waiting for work in hand ends `reserve` seconds before the end,
    which is left for closing connections, so the whole stop ends within `seconds`."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.reserve = min(2.0, seconds * 0.2)
        self._started = time.monotonic()
        self._end = self._started + seconds

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self._started

    def left(self, *, closing: bool = False) -> float:
        end = self._end if closing else self._end - self.reserve
        return max(0.0, end - time.monotonic())

    async def wait(self, work: Awaitable[_T], *, closing: bool = False) -> tuple[bool, _T | None]:
        """Wait for `work` while there is time (cancelling it when there is none): whether it
        finished, and its result."""
        try:
            return True, await asyncio.wait_for(work, self.left(closing=closing))
        except TimeoutError:
            return False, None


@dataclass
class SupportBot:
    settings: Settings
    database: Database
    services: Services
    dispatcher: Dispatcher
    adapters: dict[Platform, Adapter]
    web: WebServer | None = None
    connections: Connections = field(default_factory=lambda: Connections({}))
    clock_interval: float = 30.0
    _background: list[asyncio.Task[None]] = field(default_factory=list)
    _clocks: asyncio.Task[None] | None = None
    _housekeeping: asyncio.Task[None] | None = None
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    broadcaster: BroadcastWorker | None = None

    async def start(self) -> None:
        self.dispatcher.start()
        self._housekeeping = asyncio.create_task(
            retention.run_forever(
                self.database,
                # The digest's catch-up at start asks its claim whether the last one went out.
                keep=max(timedelta(hours=self.settings.dedupe_retention_hours), digest.CATCH_UP),
                clock=utc_now,
                stop=self._stopping,
                keep_text=timedelta(days=days) if (days := self.settings.data_retention_days) else None,
            )
        )
        self._background.append(asyncio.create_task(self.services.kb.watch()))
        if isinstance(self.services.kb, KnowledgeBaseHolder):
            observed = kb_traffic.run_forever(
                self.database, self.services.kb, clock=utc_now, stop=self._stopping
            )
            self._background.append(asyncio.create_task(observed))
        if self.web is not None:
            # Adapters that receive webhooks (Slack's /slack/events) add routes before the server starts.
            for adapter in self.adapters.values():
                install = getattr(adapter, "install_routes", None)
                if install is not None:
                    install(self.web.app)
            await self.web.start()
        for platform, adapter in self.adapters.items():
            try:
                await adapter.start(self.dispatcher.submit)
            except RuntimeError as error:
                # Adapters raise RuntimeError for what the operator must fix (a rejected token).
                raise StartupError(f"{adapter.platform.value}: {error}") from error
            self.connections.started.add(platform)
        # What posts on its own (ticket reminders, the digest, broadcasts, replies a stopped process
        # owed) starts once every adapter can post: a post through an adapter not started yet fails.
        ticket_clocks = clocks.run_forever(
            self.database,
            self.services,
            self.dispatcher.outbound,
            every=self.clock_interval,
            stop=self._stopping,
        )
        self._clocks = asyncio.create_task(ticket_clocks)
        turns = maintenance_notices.run_forever(
            self.database,
            clock=self.services.clock,
            stop=self._stopping,
            every=self.clock_interval,
            wake=self.broadcaster.wake if self.broadcaster is not None else None,
        )
        self._background.append(asyncio.create_task(turns))
        schedule = self.settings.digest_schedule
        if schedule is not None:
            weekly = digest.run_forever(
                self.dispatcher,
                schedule=schedule,
                base=self.settings.report_dir,
                stop=self._stopping,
            )
            self._background.append(asyncio.create_task(weekly))
        if self.broadcaster is not None:
            self.broadcaster.start()
        self.dispatcher.start_paying_owed()

    async def stop(self) -> None:
        """Stop taking events, finish the ones in hand, then close connections: all within
        STOP_GRACE_SECONDS. What is not done by then is given up, and the log says what was left."""
        grace = Grace(self.settings.stop_grace_seconds)
        left: list[str] = []
        self.connections.started.clear()  # not ready any more: /readyz says so from now on
        # First, adapters that can refuse new traffic (Slack: a 503, which it retries elsewhere)
        # stop taking it, so nothing is accepted that this process could no longer answer.
        for adapter in self.adapters.values():
            stop_receiving = getattr(adapter, "stop_receiving", None)
            if stop_receiving is not None and not (await grace.wait(stop_receiving()))[0]:
                left.append(f"{adapter.platform.value} requests still being read were dropped")
        self._stopping.set()
        for task in (self._clocks, self._housekeeping):
            # A pass in progress finishes (no query abandoned half-way) unless time is up.
            if task is not None and not (await grace.wait(task))[0]:
                left.append("a ticket clock or retention pass was cut short (it runs again at start)")
        self._clocks = self._housekeeping = None
        for task in self._background:
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        self._background.clear()
        if self.broadcaster is not None:
            await grace.wait(self.broadcaster.stop(), closing=True)  # its rows stay in the outbox
        # Queued events are already acknowledged to the platform (never redelivered): answer them
        # while the adapters can still send, or their replies and staff cards are lost.
        drained, _ = await grace.wait(self.dispatcher.drain())
        unfinished = Unfinished() if drained else await self.dispatcher.stop(timeout=0)
        for adapter in self.adapters.values():
            try:
                if not (await grace.wait(adapter.stop(), closing=True))[0]:
                    left.append(f"the {adapter.platform.value} connection did not close in time")
            except Exception:
                log.exception("stopping %s adapter", adapter.platform.value)
        if drained:  # events the adapters handed over while they stopped
            unfinished = await self.dispatcher.stop(timeout=grace.left(closing=True))
        if self.web is not None:
            await grace.wait(self.web.stop(), closing=True)
        counted, outbox = await grace.wait(self._outbox_left(), closing=True)
        await grace.wait(self.database.dispose(), closing=True)
        self._log_stopped(grace, left, unfinished, outbox if counted else None)

    async def _outbox_left(self) -> int | None:
        """Broadcast deliveries not sent yet (None: the database did not say)."""
        try:
            async with self.database.session() as session:
                counts = await outbox_repo.delivery_counts(session)
        except Exception as error:
            log.warning("stop: could not count the outbox: %s", type(error).__name__)
            return None
        return counts.get(outbox_repo.PENDING, 0) + counts.get(outbox_repo.SENDING, 0)

    def _log_stopped(
        self, grace: Grace, problems: list[str], unfinished: Unfinished, outbox: int | None
    ) -> None:
        """One line: how the stop went, and what is left for the next start."""
        if unfinished:
            problems.insert(
                0,
                f"{_count(unfinished.queued, 'queued event')} and {unfinished.handling} being handled "
                "were not answered (their platforms will not send them again)",
            )
        notes = []
        if problems and Platform.SLACK in self.adapters:
            notes.append("Slack redelivers what it got no acknowledgement for")
        if outbox is None:
            notes.append("the outbox could not be counted")
        elif outbox:
            stay = "stays" if outbox == 1 else "stay"
            notes.append(
                f"{_count(outbox, 'outbox delivery', 'outbox deliveries')} {stay} queued for the next start"
            )
        if problems:
            log.warning("stop: gave up after %.1f s: %s", grace.elapsed, "; ".join(problems + notes))
        else:
            log.info("stop: done in %.1f s%s", grace.elapsed, "".join(f"; {note}" for note in notes))


def _count(n: int, one: str, many: str = "") -> str:
    return f"{n} {one if n == 1 else many or one + 's'}"


def staff_policy(settings: Settings) -> StaffPolicy:
    return StaffPolicy.from_settings(
        user_ids=settings.staff_user_ids,
        role_ids=settings.staff_role_ids,
        staff_channel=settings.staff_channel,
        oncall=settings.oncall_mentions,
    )


async def create_bot(
    settings: Settings,
    *,
    adapters: dict[Platform, Adapter] | None = None,
    clock: Callable[[], datetime] = utc_now,
    database: Database | None = None,
    with_web: bool | None = None,
) -> SupportBot:
    """Wire everything. Tests pass their own adapters, clock and database."""
    database = database or Database.from_url(settings.database_url)
    try:
        await database.ping()
    except CANNOT_OPEN as error:
        raise StartupError(cannot_open(settings.database_url, error)) from None
    try:
        await migrate.upgrade(database.engine)
    except (*CANNOT_OPEN, migrate.SchemaRefused) as error:
        log.debug("the schema upgrade failed", exc_info=True)
        raise StartupError(cannot_upgrade(settings.database_url, error)) from None
    router = build_router()
    staff = staff_policy(settings)
    try:
        kb = load_knowledge_base(settings)
    except KBError as error:
        raise StartupError(f"knowledge base (KB_PATH={settings.kb_path}):\n{error}") from None
    adapters = dict(adapters or {})
    metrics = Metrics()
    inboxes: list[DatabaseInbox] = []
    for platform, adapter in adapters.items():
        if isinstance(adapter, ReportsRetries):
            adapter.report_retries(partial(metrics.sdk_retried, platform.value))
        if isinstance(adapter, KeepsInbox):
            lease = settings.inbox_lease_seconds
            inbox = DatabaseInbox(database, platform=platform.value, lease=timedelta(seconds=lease))
            adapter.keep_inbox(inbox, replay_every=min(30.0, max(1.0, lease / 2)))
            inboxes.append(inbox)
    outbound = Outbound(adapters, staff_channel=staff.staff_channel, metrics=metrics)
    await sync_components_file(database, settings, at=clock())
    serve_web = settings.web_enabled if with_web is None else with_web
    listener = None
    if serve_web and settings.web_port == 0:
        # The system picks the port now, before anything below writes a link from the settings, so
        # links without PUBLIC_URL carry that port rather than ":0".
        listener = bind(settings.web_host, 0)
        settings = settings.model_copy(update={"web_port": listener.getsockname()[1]})
    try:
        installers = [status_page_routes(settings, clock)] if serve_web else []
    except BaseException:
        if listener is not None:
            listener.close()
        raise
    broadcaster = BroadcastWorker(
        database,
        outbound.adapters,
        policy=partial(
            policy_for,
            discord_rate=settings.discord_global_rate,
            slack_workspace_rate=settings.slack_workspace_rate,
        ),
        staff_channel=staff.staff_channel,
        page_url=settings.status_link,
        config=WorkerConfig(lease=timedelta(seconds=settings.broadcast_lease_seconds)),
        metrics=metrics,
    )
    services = Services(
        settings=settings,
        staff=staff,
        clock=clock,
        kb=kb,
        broadcaster=broadcaster,
        help=router.catalogue().commands,
        metrics=metrics,
    )
    dispatcher = Dispatcher(
        router=router, database=database, services=services, outbound=outbound, workers=settings.workers
    )
    for inbox in inboxes:  # the rows being handled are held as the claims are, on the same tick
        dispatcher.renew_with_claims(inbox.renew_held)
    connections = Connections(adapters)
    web = None
    if serve_web:
        web = WebServer(
            create_web_app(database, installers, metrics=metrics, connections=connections),
            host=settings.web_host,
            port=settings.web_port,
            shutdown_timeout=Grace(settings.stop_grace_seconds).reserve,
            listener=listener,
        )
    return SupportBot(
        settings=settings,
        database=database,
        services=services,
        dispatcher=dispatcher,
        adapters=adapters,
        web=web,
        connections=connections,
        broadcaster=broadcaster,
    )


async def sync_components_file(database: Database, settings: Settings, *, at: datetime | None = None) -> None:
    """Bring the declared status components into the database. A broken file is logged, not fatal:
    the components already stored keep working and staff can fix the file."""
    try:
        declared = load_components_file(settings.components_file)
    except ComponentsFileError as error:
        log.warning("status components not loaded: %s", error)
        return
    try:
        async with database.transaction() as session:
            created = await status_repo.sync_components(session, declared=declared, at=at)
    except IntegrityError:
        # Another process starting at the same moment declared them first: they exist now, so the
        # second pass only refreshes them.
        async with database.transaction() as session:
            created = await status_repo.sync_components(session, declared=declared, at=at)
    log.info("status components: %d declared, %d new", len(declared), created)


def status_page_routes(settings: Settings, clock: Callable[[], datetime]) -> RouteInstaller:
    """The status page, its history and feeds, and its Statuspage API, for the web server. An
    operator's template that does not compile stops the start, naming the file."""
    branding = look.Branding(
        name=settings.status_page_name,
        logo_url=settings.status_page_logo_url,
        accent=settings.status_page_accent,
    )
    try:
        templates = look.Templates(settings.status_page_templates)
        status_page.rehearse(templates, branding, now=clock(), url=settings.status_page_url)
    except look.TemplateError as error:
        raise StartupError(str(error)) from None
    return status_page.installer(
        clock=clock, url=settings.status_page_url, templates=templates, branding=branding
    )


@dataclass(frozen=True)
class StoredGatewaySessions:
    """The Discord adapter's `SessionStore`, in the database: one row per shard."""

    database: Database

    async def claim(
        self, shard_ids: Sequence[int], *, owner: str, stale_after: float
    ) -> list[GatewaySession]:
        from bot.adapters.discord.resume import GatewaySession

        at = utc_now()
        async with self.database.transaction() as session:
            rows = await gateway_sessions_repo.claim(
                session,
                shard_ids=shard_ids,
                owner=owner,
                at=at,
                stale_before=at - timedelta(seconds=stale_after),
            )
        return [
            GatewaySession(
                shard_id=r.shard_id, session_id=r.session_id, resume_url=r.resume_url, sequence=r.sequence
            )
            for r in rows
        ]

    async def save(
        self, sessions: Sequence[GatewaySession], *, owner: str, hand_over: bool = False
    ) -> set[int]:
        stored = set()
        async with self.database.transaction() as session:
            for s in sessions:
                if await gateway_sessions_repo.save(
                    session,
                    shard_id=s.shard_id,
                    session_id=s.session_id,
                    resume_url=s.resume_url,
                    sequence=s.sequence,
                    owner=owner,
                    at=utc_now(),
                    hand_over=hand_over,
                ):
                    stored.add(s.shard_id)
        return stored

    async def forget(self, gateway: GatewaySession, *, owner: str) -> None:
        async with self.database.transaction() as session:
            await gateway_sessions_repo.forget(
                session, shard_id=gateway.shard_id, session_id=gateway.session_id, owner=owner
            )


def platform_adapters(
    settings: Settings, *, as_staff: bool, database: Database | None = None
) -> dict[Platform, Adapter]:
    """The configured platforms' adapters. With `database`, Discord's autocomplete reads from it and
    its gateway sessions are kept there for the next process to resume."""
    from bot.adapters.console import ConsoleAdapter

    adapters: dict[Platform, Adapter] = {}
    for name in settings.active_platforms:
        if name == "console":
            channel = settings.staff_channel.partition(":")[2]
            adapters[Platform.CONSOLE] = ConsoleAdapter(as_staff=as_staff, staff_channel_id=channel)
        elif name == "slack":
            from bot.adapters.slack.adapter import SlackAdapter

            adapters[Platform.SLACK] = SlackAdapter.from_settings(settings)
        elif name == "discord":
            from bot.adapters.discord.adapter import DiscordAdapter

            suggest = make_suggester(database, staff_policy(settings)) if database is not None else None
            adapters[Platform.DISCORD] = DiscordAdapter.from_settings(
                settings,
                commands=build_router().catalogue(),
                suggest=suggest,
                sessions=StoredGatewaySessions(database) if database is not None else None,
            )
        else:
            raise NotImplementedError(f"the {name} adapter is not available in this build")
    return adapters


async def run(
    settings: Settings, *, console: bool = False, as_staff: bool = False, web_only: bool = False
) -> int:
    """Run until SIGTERM/SIGINT, or until the console's input ends. Returns the exit code.
    `web_only`: no adapter at all, only the web server (a service or container with no platform)."""
    if console:
        settings = settings.model_copy(update={"platforms": ["console"]})
    database = Database.from_url(settings.database_url)
    adapters = {} if web_only else platform_adapters(settings, as_staff=as_staff, database=database)
    bot = await create_bot(settings, adapters=adapters, database=database)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await bot.start()
    if web_only:
        log.info(
            "no platform configured and stdin is not a terminal: serving the status page and API only "
            "(set PLATFORMS and its tokens to connect a chat, or run with --console)"
        )
    waiters = [asyncio.create_task(stop.wait())]
    console_adapter = bot.adapters.get(Platform.CONSOLE)
    if console_adapter is not None:
        waiters.append(asyncio.create_task(console_adapter.finished.wait()))  # type: ignore[attr-defined]
    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    for waiter in waiters:
        waiter.cancel()
    log.info("shutting down")
    await bot.stop()
    return 0
