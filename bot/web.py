"""The bot's one HTTP server (aiohttp): health now; status page, Slack endpoint and metrics join it."""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web

from storage.db import Database

log = logging.getLogger(__name__)

RouteInstaller = Callable[[web.Application], None]


async def _healthz(request: web.Request) -> web.Response:
    database: Database = request.app[DATABASE]
    try:
        await database.ping()
    except Exception as error:  # the probe must answer, whatever the database does
        log.warning("health check: database unreachable: %s", type(error).__name__)
        return web.json_response({"status": "fail", "database": "unreachable"}, status=503)
    return web.json_response({"status": "ok", "database": "ok"})


DATABASE = web.AppKey("database", Database)


def create_web_app(database: Database, installers: list[RouteInstaller] | None = None) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)
    app[DATABASE] = database
    app.router.add_get("/healthz", _healthz)
    for install in installers or []:
        install(app)
    return app


class WebServer:
    def __init__(self, app: web.Application, *, host: str, port: int) -> None:
        self.app = app
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        # A deep accept queue: Slack can deliver hundreds of requests at once (a busy channel, a
        # broadcast's button clicks); the default 128 drops SYNs and costs a 1 s retransmit.
        site = web.TCPSite(self._runner, self.host, self.port, backlog=1024)
        await site.start()
        sockets = site._server.sockets if site._server else []
        if sockets:
            self.port = sockets[0].getsockname()[1]
        log.info("web server on http://%s:%d", self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
