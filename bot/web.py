"""The bot's one HTTP server (aiohttp): liveness (/healthz), readiness (/readyz) and metrics
(/metrics); the status page and Slack's endpoint join it."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage

from bot.core.metrics import Metrics
from storage.db import Database

log = logging.getLogger(__name__)

RouteInstaller = Callable[[web.Application], None]
Connections = Callable[[], Awaitable[Mapping[str, bool]]]
"""Each configured platform (by name) and whether its adapter is connected now."""

READY_DATABASE_TIMEOUT = 2.0
"""Seconds `/readyz` gives the database's `SELECT 1`: a probe must answer before its own timeout."""


async def _no_adapters() -> Mapping[str, bool]:
    return {}


async def _healthz(request: web.Request) -> web.Response:
    database: Database = request.app[DATABASE]
    try:
        await database.ping()
    except Exception as error:  # the probe must answer, whatever the database does
        log.warning("health check: database unreachable: %s", type(error).__name__)
        return web.json_response({"status": "fail", "database": "unreachable"}, status=503)
    return web.json_response({"status": "ok", "database": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    """Ready for traffic: the database answers and every configured platform is connected. The body
    names what is down; it never carries an error's text (a connection error can quote a URL)."""
    database: Database = request.app[DATABASE]
    try:
        async with asyncio.timeout(READY_DATABASE_TIMEOUT):
            await database.ping()
        database_ok = True
    except Exception as error:  # the probe must answer, whatever the database does
        log.warning("readiness: database unreachable: %s", type(error).__name__)
        database_ok = False
    adapters = await request.app[CONNECTIONS]()
    down = [name for name, up in {"database": database_ok, **adapters}.items() if not up]
    body = {
        "status": "not ready" if down else "ready",
        "database": "ok" if database_ok else "unreachable",
        "adapters": {name: "connected" if up else "disconnected" for name, up in adapters.items()},
        "down": down,
    }
    return web.json_response(body, status=503 if down else 200)


async def _metrics(request: web.Request) -> web.Response:
    metrics = request.app[METRICS]
    await metrics.refresh(request.app[DATABASE], connected=await request.app[CONNECTIONS]())
    body, content_type = metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": content_type})


DATABASE = web.AppKey("database", Database)
METRICS = web.AppKey("metrics", Metrics)
CONNECTIONS: web.AppKey[Connections] = web.AppKey("connections")


def create_web_app(
    database: Database,
    installers: list[RouteInstaller] | None = None,
    *,
    metrics: Metrics | None = None,
    connections: Connections = _no_adapters,
) -> web.Application:
    """`metrics`: the bot's registry (a fresh one when not given); `connections`: the platforms that
    `/readyz` requires and `supportbot_adapter_connected` shows (none: a web-only process)."""
    app = web.Application(client_max_size=1024 * 1024)
    app[DATABASE] = database
    app[METRICS] = metrics or Metrics()
    app[CONNECTIONS] = connections
    app.router.add_get("/healthz", _healthz)
    app.router.add_get("/readyz", _readyz)
    app.router.add_get("/metrics", _metrics)
    for install in installers or []:
        install(app)
    return app


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to `host` and `port`, not listening yet: with port 0 the system picks one
    now, so what writes links can know it before the server starts (`WebServer(listener=...)`)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    listener = socket.socket(family, kind, proto)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp's own sites do
        listener.bind(address)
    except OSError:
        listener.close()
        raise
    return listener


class MalformedRequests(logging.Filter):
    """On `aiohttp.server`: a request aiohttp could not parse (a raw non-ASCII byte in the query, a
    request line over 8,190 bytes) is answered 400 and logged by aiohttp at ERROR with a traceback,
    which would let any client fill the log and Sentry. It is the client's mistake: one INFO line,
    its first words only (aiohttp's message goes on to quote the request line)."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, BadHttpMessage):
            reason = str(error.message).partition("\n")[0].partition(":")[0][:80]
            remote = record.args[0] if isinstance(record.args, tuple) and record.args else "?"
            record.msg, record.args = "refused a malformed HTTP request from %s: %s", (remote, reason)
            record.levelno = min(record.levelno, logging.INFO)
            record.levelname = logging.getLevelName(record.levelno)
            record.exc_info = record.exc_text = None
        return True


def quiet_malformed_requests() -> None:
    """Install `MalformedRequests` once (each server's start calls this; it is idempotent)."""
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, MalformedRequests) for f in server_log.filters):
        server_log.addFilter(MalformedRequests())


class WebServer:
    def __init__(
        self,
        app: web.Application,
        *,
        host: str,
        port: int,
        shutdown_timeout: float = 60.0,
        listener: socket.socket | None = None,
    ) -> None:
        """`shutdown_timeout`: how long `stop` lets requests in progress finish. `listener`: a socket
        `bind` made for `host` and `port`, served instead of binding anew; the server closes it."""
        self.app = app
        self.host = host
        self.port = port
        self.shutdown_timeout = shutdown_timeout
        self._listener = listener
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        quiet_malformed_requests()
        self._runner = web.AppRunner(self.app, access_log=None, shutdown_timeout=self.shutdown_timeout)
        await self._runner.setup()
        # A deep accept queue: Slack can deliver hundreds of requests at once (a busy channel, a
        # broadcast's button clicks); the default 128 drops SYNs and costs a 1 s retransmit.
        site: web.BaseSite
        if self._listener is not None:
            site = web.SockSite(self._runner, self._listener, backlog=1024)
        else:
            site = web.TCPSite(self._runner, self.host, self.port, backlog=1024)
        await site.start()
        sockets = getattr(site._server, "sockets", None) or []  # the asyncio.Server behind the site
        if sockets:
            self.port = sockets[0].getsockname()[1]
        host = f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 address, as URLs write it
        log.info("web server on http://%s:%d", host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._listener is not None:
            self._listener.close()  # also when the server never started
