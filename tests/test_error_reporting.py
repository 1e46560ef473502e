"""SENTRY_DSN: errors go to Sentry with the correlation id and without tokens; without the `sentry`
extra, `supportbot run` says what to install (one line, exit 2)."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from bot.cli import main
from bot.logs import ErrorReportingUnavailable, correlation_id, report_errors_to_sentry
from bot.settings import SettingsError, load_settings

TOKEN = "xoxb-2741-9918273645-Zq8RtW3nLp0YvKx"


@pytest.fixture
async def sentry_server() -> AsyncIterator[tuple[str, list[bytes]]]:
    """A stand-in for Sentry's ingest endpoint on 127.0.0.1: the DSN to use, and the envelopes it got."""
    received: list[bytes] = []

    async def envelope(request: web.Request) -> web.Response:
        received.append(await request.read())  # aiohttp has undone the gzip
        return web.json_response({})

    app = web.Application()
    app.router.add_post("/api/1/envelope/", envelope)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://publickey@127.0.0.1:{port}/1", received
    finally:
        await runner.cleanup()


async def test_a_logged_error_reaches_sentry_redacted_with_its_correlation_id_and_no_locals(
    sentry_server: tuple[str, list[bytes]],
) -> None:
    sentry_sdk = pytest.importorskip("sentry_sdk")
    dsn, received = sentry_server
    report_errors_to_sentry(dsn, release="supportbot@test")
    token = correlation_id.set("c0ffee1234")
    try:
        # A local of the failing frame, built so that its value is not in the source Sentry quotes.
        customer_said = "my card is " + "-".join([str(6 * 7)] * 4)
        try:
            raise RuntimeError(f"Slack said invalid_auth for {TOKEN} ({len(customer_said)})")
        except RuntimeError:
            logging.getLogger("bot.core.dispatch").exception("handler failed with %s", TOKEN)
        # The SDK sends from its own thread; this loop must keep serving while it does.
        await asyncio.to_thread(sentry_sdk.flush, 5)
    finally:
        correlation_id.reset(token)
        await asyncio.to_thread(sentry_sdk.get_client().close, 2)
        sentry_sdk.init()  # no DSN: nothing is sent by the tests that follow

    sent = b"".join(received).decode()
    assert "handler failed with [redacted]" in sent
    assert "invalid_auth for [redacted]" in sent
    assert TOKEN not in sent
    assert "42-42-42-42" not in sent, "local variables hold what customers typed: never sent"
    assert '"correlation_id":"c0ffee1234"' in sent.replace(" ", "")


def test_without_the_extra_it_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "sentry_sdk", None)  # as if not installed
    with pytest.raises(ErrorReportingUnavailable, match=r"pip install 'supportbot\[sentry\]'"):
        report_errors_to_sentry("https://publickey@o1.ingest.sentry.io/1")


def test_run_stops_with_one_line_when_sentry_is_asked_for_but_missing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "sentry_sdk", None)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SENTRY_DSN", "https://publickey@o1.ingest.sentry.io/1")
    assert main(["run"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert (
        line
        == "supportbot: SENTRY_DSN is set but sentry-sdk is not installed: pip install 'supportbot[sentry]'"
    )


MALFORMED_DSNS = ["hunter2-not-a-dsn", "https://x@:bad", "https://x@o1.ingest.sentry.io/notanumber"]


@pytest.mark.parametrize("dsn", MALFORMED_DSNS)
def test_a_malformed_dsn_is_named_in_one_line_without_its_value(
    dsn: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytest.importorskip("sentry_sdk")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SENTRY_DSN", dsn)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith("SENTRY_DSN: is not a Sentry DSN"), message
    assert dsn not in message and "notanumber" not in message and "hunter2" not in message
    assert "\n" not in message


def test_run_stops_with_one_line_on_a_malformed_dsn_and_never_echoes_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("sentry_sdk")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SENTRY_DSN", "https://hunter2@o1.ingest.sentry.io/notanumber")
    assert main(["run"]) == 2
    out, err = capsys.readouterr()
    (line,) = err.strip().splitlines()
    assert line.startswith("supportbot: setting SENTRY_DSN: is not a Sentry DSN"), line
    assert "hunter2" not in out + err


def test_a_well_formed_dsn_is_taken(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SENTRY_DSN", "https://publickey@o1.ingest.sentry.io/1")
    dsn = load_settings().sentry_dsn
    assert dsn is not None and dsn.get_secret_value() == "https://publickey@o1.ingest.sentry.io/1"


def test_without_the_extra_a_malformed_dsn_still_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing here can parse the DSN; installing the extra is the first thing to do either way."""
    monkeypatch.setitem(sys.modules, "sentry_sdk", None)
    monkeypatch.setitem(sys.modules, "sentry_sdk.utils", None)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SENTRY_DSN", "hunter2-not-a-dsn")
    assert main(["run"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.endswith("sentry-sdk is not installed: pip install 'supportbot[sentry]'")
