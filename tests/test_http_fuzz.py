"""The bot's HTTP surface fuzzed: the real aiohttp app (bot/web.py with the Slack endpoint and the
status page and API) answers bad input with 4xx, never 500, and writes no row for what it rejects.

Each test runs on SQLite and on PostgreSQL; rows are counted in every table before and after.
Requests per run of each test (FUZZ_SEED picks other random bodies; the counts stay the same):

`/slack/events` (test_bad_slack_requests_are_refused_and_write_nothing), 139 requests:
- malformed JSON, correctly signed: 40 (random bytes, truncated or wrongly typed JSON, deep nesting)
- wrong content types on a signed JSON event: 9
- large bodies: 4 (1 MB signed and unsigned, 1 MiB + 1 byte, 5 MB)
- stale or impossible timestamps: 9
- wrong signatures: 9
- replays: 4 (a valid event, the same request twice more, its signature on another body)
- form bodies with odd `payload=` (and command) values, signed: 24
- random signed forms: 40
each answered 4xx (or 2xx where Slack's request was well formed but not ours to act on), and the
one valid event handled once.

Status page and API (test_odd_status_requests_get_4xx_never_500), 125 requests:
- the seven routes plain: 7 (200)
- odd paths (`/api/v2/../`, `%00`, very long, unicode, encoded slashes): 28
- odd query strings on every route: 63
- other methods: 21
- random paths: 6
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import string
import time
import urllib.parse
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

import aiohttp
import pytest
from sqlalchemy import inspect, text

from storage.db import Database
from tests.adapters.slack.harness import COMMUNITY, CUSTOMER, SlackBot, populated_slack, slack_bot
from tests.emulators.slack import SlackEmulator, sign

SEED = int(os.environ.get("FUZZ_SEED", "15"))
STATUS_ROUTES = (
    "/",
    "/api/v2/summary.json",
    "/api/v2/status.json",
    "/api/v2/components.json",
    "/api/v2/incidents.json",
    "/api/v2/incidents/unresolved.json",
    "/api/v2/scheduled-maintenances.json",
)


@pytest.fixture
async def slack() -> AsyncIterator[SlackEmulator]:
    async with populated_slack(burst=20) as emulator:
        yield emulator


@pytest.fixture
async def bot(slack: SlackEmulator, database: Database, tmp_path: object) -> AsyncIterator[SlackBot]:
    async with slack_bot(slack, database, tmp_path) as running:
        yield running


async def row_counts(database: Database) -> dict[str, int]:
    """Rows in every table of the database."""
    async with database.engine.connect() as connection:
        tables = sorted(await connection.run_sync(lambda sync: inspect(sync).get_table_names()))
        counts = ", ".join(f'(SELECT count(*) FROM "{table}")' for table in tables)
        row = (await connection.execute(text(f"SELECT {counts}"))).one()
        return dict(zip(tables, map(int, row), strict=True))


@dataclass
class Tally:
    """What was sent and what came back, by kind of request."""

    sent: Counter[str] = field(default_factory=Counter)
    statuses: dict[str, Counter[int]] = field(default_factory=dict)
    server_errors: list[str] = field(default_factory=list)

    def record(self, kind: str, status: int, what: str) -> None:
        self.sent[kind] += 1
        self.statuses.setdefault(kind, Counter())[status] += 1
        if status >= 500:
            self.server_errors.append(f"{kind}: {what} -> {status}")


class Sender:
    def __init__(self, session: aiohttp.ClientSession, base: str, secret: str, tally: Tally) -> None:
        self.session = session
        self.base = base
        self.secret = secret
        self.tally = tally

    def signed(
        self, body: bytes, *, timestamp: str | None = None, secret: str | None = None
    ) -> dict[str, str]:
        stamp = str(int(time.time())) if timestamp is None else timestamp
        return {
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": sign(self.secret if secret is None else secret, stamp, body),
        }

    async def post(
        self, kind: str, body: bytes, headers: Mapping[str, str], *, content_type: str | None
    ) -> int:
        all_headers = dict(headers)
        skip = []
        if content_type is None:
            skip.append("Content-Type")
        else:
            all_headers["Content-Type"] = content_type
        async with self.session.post(
            f"{self.base}/slack/events", data=body, headers=all_headers, skip_auto_headers=skip
        ) as response:
            await response.read()
            self.tally.record(kind, response.status, repr(body[:80]))
            return response.status

    async def request(self, kind: str, method: str, path: str) -> int:
        url = self.base + path
        async with self.session.request(method, yarl_url(url)) as response:
            await response.read()
            self.tally.record(kind, response.status, f"{method} {path[:80]}")
            return response.status


def yarl_url(url: str) -> object:
    import yarl

    return yarl.URL(url, encoded=True)  # send the path exactly as written, %00 and ../ included


def _event(slack: SlackEmulator, text_: str = "hello") -> bytes:
    return json.dumps(slack.event_callback(slack.message_event(CUSTOMER, COMMUNITY, text_))).encode()


def _malformed_json(rng: random.Random, valid: bytes) -> list[bytes]:
    bodies = [
        b"",
        b"{",
        b"null",
        b"[]",
        b'"event_callback"',
        b"1e99999",
        b"NaN",
        b'{"type": "event_callback"}',
        b'{"type": "event_callback", "event": "x"}',
        b'{"type": "event_callback", "event": {"type": "message"}}',
        b'{"type": "event_callback", "event": {"type": "message", "user": 1, "channel": [], "ts": {}}}',
        b'{"type": "event_callback", "event": {"type": "reaction_added", "user": "U1", "item": "x"}}',
        b'{"type": "url_verification"}',
        b'{"type": "url_verification", "challenge": {"a": 1}}',
        b"\xef\xbb\xbf" + valid,
        valid[: len(valid) // 2],
        valid.replace(b'"', b"'"),
        b"[" * 100_000 + b"]" * 100_000,
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        b"\xff\xfe\x00{",
    ]
    while len(bodies) < 40:
        bodies.append(rng.randbytes(rng.randint(1, 300)))
    return bodies


def _odd_forms(rng: random.Random) -> list[bytes]:
    payloads = [
        "not json",
        "{}",
        "[]",
        "null",
        '"block_actions"',
        '{"type": "block_actions"}',
        '{"type": "block_actions", "user": "U0CASEY", "actions": "x"}',
        '{"type": "block_actions", "user": {"id": "U0CASEY"}, "actions": [{"action_id": 5}]}',
        '{"type": "block_actions", "user": {"id": "U0CASEY"}, "actions": [{"action_id": "x"}]}',
        '{"type": "block_actions", "user": {"id": "U0CASEY"}, "container": {"type": "view"},'
        ' "actions": [{"action_id": "kb.solved", "action_ts": "1.0"}]}',
        '{"type": "view_submission", "user": {"id": "U0CASEY"}, "view": {}}',
        '{"type": "shortcut", "callback_id": "x", "user": {"id": "U0CASEY"}}',
        '{"type": "unknown"}',
    ]
    forms = [urllib.parse.urlencode({"payload": p}).encode() for p in payloads]
    forms += [
        b"payload=%ZZ%",
        b"payload=" + b"x" * 100_000,
        b"payload={}&payload=[]",
        b"payload",
        b"=&&=&",
        b"command=%2Fticket",
        b"command=%2Fticket&text=status+4&user_id=&channel_id=&team_id=",
        b"command=&user_id=U0CASEY&channel_id=C0COMMUNITY&team_id=T0",
        b"ssl_check=1&token=x",
        urllib.parse.urlencode(
            {"command": "/ticket", "text": "\x00\ud800".encode("utf-8", "surrogatepass")}
        ).encode(),
        rng.randbytes(64),
    ]
    return forms


def _random_forms(rng: random.Random) -> list[bytes]:
    keys = [
        "payload",
        "command",
        "text",
        "user_id",
        "channel_id",
        "team_id",
        "trigger_id",
        "response_url",
        "type",
    ]
    alphabet = string.printable + "éü中🙂\x00"
    forms = []
    for _ in range(40):
        fields = {
            rng.choice(keys): "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
            for _ in range(rng.randint(1, 5))
        }
        forms.append(urllib.parse.urlencode(fields).encode())
    return forms


async def test_bad_slack_requests_are_refused_and_write_nothing(
    bot: SlackBot, slack: SlackEmulator, database: Database
) -> None:
    rng = random.Random(SEED)
    tally = Tally()
    assert bot.bot.web is not None
    base = f"http://127.0.0.1:{bot.bot.web.port}"
    valid = _event(slack, "hello")
    problems: list[str] = []
    async with aiohttp.ClientSession() as session:
        send = Sender(session, base, slack.signing_secret, tally)

        async def check(
            kind: str,
            body: bytes,
            headers: Mapping[str, str],
            content_type: str | None,
            *,
            accept: bool = False,
        ) -> None:
            """4xx, or 200 where `accept` (a signed body Slack could send); no row for a 4xx."""
            before = await row_counts(database)
            status = await send.post(kind, body, headers, content_type=content_type)
            await bot.settle()
            if not (400 <= status < 500 or (accept and status == 200)):
                problems.append(f"{kind}: {body[:60]!r} -> {status}")
            elif status >= 400 and await row_counts(database) != before:
                problems.append(f"{kind}: {body[:60]!r} -> {status} wrote a row")

        async def signed(kind: str, body: bytes, content_type: str | None) -> None:
            await check(kind, body, send.signed(body), content_type, accept=True)

        for body in _malformed_json(rng, valid):
            await signed("json-malformed", body, "application/json")
        for content_type in (
            "text/plain",
            "application/xml",
            "multipart/form-data; boundary=x",
            "application/x-www-form-urlencoded",
            "application/json; charset=latin-1",
            "////",
            "",
            "application/octet-stream",
            None,
        ):
            await signed("content-type", _event(slack, f"content type {content_type}"), content_type)
        large = slack.event_callback(slack.message_event(CUSTOMER, COMMUNITY, "large"))
        large["padding"] = ""
        large["padding"] = "x" * (1_000_000 - len(json.dumps(large)))
        mega = json.dumps(large).encode()
        assert len(mega) == 1_000_000
        await signed("large", mega, "application/json")
        await check("large", mega, {}, "application/json")
        await check("large", b"x" * (1024 * 1024 + 1), send.signed(b"x"), "application/json")
        await check("large", b"{" * 5_000_000, send.signed(b"{"), "application/json")
        now = int(time.time())
        for stamp in (now - 301, now - 600, now + 600, 0, -1, "abc", "", "1e309", "9" * 40):
            body = _event(slack, f"stale {stamp}")
            await check("stale", body, send.signed(body, timestamp=str(stamp)), "application/json")
        signature = send.signed(valid)["X-Slack-Signature"]
        for headers in (
            send.signed(valid, secret="not-the-signing-secret"),
            {**send.signed(valid), "X-Slack-Signature": "v0=" + rng.randbytes(32).hex()},
            {**send.signed(valid), "X-Slack-Signature": signature.replace("v0=", "v1=")},
            {**send.signed(valid), "X-Slack-Signature": signature.upper()},
            {**send.signed(valid), "X-Slack-Signature": ""},
            {"X-Slack-Request-Timestamp": str(now)},
            {"X-Slack-Signature": signature},
            send.signed(b"another body"),
            {},
        ):
            await check("wrong-signature", valid, headers, "application/json")
        for body in _odd_forms(rng):
            await signed("odd-form", body, "application/x-www-form-urlencoded")
        for body in _random_forms(rng):
            await signed("random-form", body, "application/x-www-form-urlencoded")

        # A valid event, then the same request replayed twice (within Slack's 5 minutes the
        # signature is still good: the event's id makes it one), then its signature on another body.
        duplicates = bot.outcomes.get("duplicate", 0)
        headers = send.signed(valid)
        assert await send.post("replay", valid, headers, content_type="application/json") == 200
        await bot.settle()
        handled = await row_counts(database)
        for _ in range(2):
            assert await send.post("replay", valid, headers, content_type="application/json") == 200
        await bot.settle()  # their inbox rows are gone once settled; the 401 below must write none
        await check("replay", valid.replace(b"hello", b"HELLO"), headers, "application/json")
        await bot.settle()
    assert not tally.server_errors, tally.server_errors
    assert not problems, problems
    assert await row_counts(database) == handled, "a replay wrote a row"
    assert bot.outcomes.get("duplicate", 0) == duplicates + 2
    assert sum(tally.sent.values()) == 139, tally.sent
    print("slack requests by kind:", dict(tally.sent), {k: dict(v) for k, v in tally.statuses.items()})


def _odd_paths(rng: random.Random) -> list[str]:
    paths = [
        "/api/v2/../api/v2/summary.json",
        "/api/v2/%2e%2e/v2/summary.json",
        "/api/v2/..%2fsummary.json",
        "/api/v2/summary.json%00",
        "/api/v2/%00",
        "/%00",
        "/api/v2/",
        "/api/v2",
        "/api/v2/summary.json/",
        "/api//v2/summary.json",
        "/api/v2/summary.JSON",
        "//",
        "/api/v2/summary.json;x=1",
        "/%C3%BCn%C3%AFc%C3%B8d%C3%A9",
        "/api/v2/%F0%9F%98%80.json",
        "/api/v2/%ff%fe.json",
        "/api/v2/%",
        "/..%2f..%2fetc%2fpasswd",
        "/%5c..%5cwindows",
        "/api/v2/" + "a" * 4000,
        "/api/v2/" + "a" * 20_000,
        "/" + "%00" * 1000,
        "/api/v2/summary.json#fragment",
        "/healthz/..",
        "/slack/events",
        "/api/v2/incidents/%2F",
        "/api/v2/incidents/unresolved.json/../../status.json",
        "/api/v2/" + urllib.parse.quote("ünïcødé-" + "".join(rng.choice("αβγ中文🙂") for _ in range(20))),
    ]
    return paths


def _odd_queries(rng: random.Random) -> list[str]:
    queries = [
        "?%00",
        "?a=%ZZ",
        "?a[]=1&a[]=2",
        "?x=" + "y" * 6000,
        "?=",
        "?&&&",
        "?page=-1&limit=1e309",
        "?callback=alert(1)",
        "?" + "&".join(f"k{i}=v" for i in range(1000)),
    ]
    return [rng.choice(queries) for _ in range(9)]


async def test_odd_status_requests_get_4xx_never_500(bot: SlackBot, database: Database) -> None:
    rng = random.Random(SEED)
    tally = Tally()
    assert bot.bot.web is not None
    base = f"http://127.0.0.1:{bot.bot.web.port}"
    before = await row_counts(database)
    unexpected: list[str] = []
    async with aiohttp.ClientSession() as session:
        send = Sender(session, base, "", tally)
        for route in STATUS_ROUTES:
            if await send.request("valid", "GET", route) != 200:
                unexpected.append(f"GET {route}")
        for path in _odd_paths(rng):
            status = await send.request("odd-path", "GET", path)
            if status >= 500 or (status >= 300 and status < 400):
                unexpected.append(f"GET {path[:80]} -> {status}")
        for route in STATUS_ROUTES:
            for query in _odd_queries(rng):
                if await send.request("odd-query", "GET", route + query) not in (200, 400, 414, 431):
                    unexpected.append(f"GET {route}{query[:40]}")
        for route in STATUS_ROUTES:
            for method in ("POST", "PUT", "DELETE"):
                if not 400 <= await send.request("method", method, route) < 500:
                    unexpected.append(f"{method} {route}")
        for _ in range(6):
            path = "/" + "".join(
                rng.choice(string.printable.strip() + "éü中") for _ in range(rng.randint(1, 60))
            )
            quoted = urllib.parse.quote(path, safe="/%?&=")
            if (await send.request("random-path", "GET", quoted)) >= 500:
                unexpected.append(f"GET {quoted[:80]}")
    assert not tally.server_errors, tally.server_errors
    assert not unexpected, unexpected
    assert await row_counts(database) == before
    assert sum(tally.sent.values()) == 125, tally.sent
    print("status requests by kind:", dict(tally.sent), {k: dict(v) for k, v in tally.statuses.items()})


MALFORMED = {
    # Arabic-Indic five sent raw, as a careless client or a scanner does, not percent-encoded.
    "raw non-ASCII in the query": "GET /history?days=\u0665 HTTP/1.1\r\nHost: status\r\n\r\n".encode(),
    "a request line over 8,190 bytes": b"GET /api/v2/" + b"a" * 9000 + b" HTTP/1.1\r\nHost: status\r\n\r\n",
}


async def _send_raw(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout=10)  # aiohttp closes after a 400
    finally:
        writer.close()


@pytest.mark.parametrize("what", MALFORMED)
async def test_a_malformed_request_gets_a_400_and_one_quiet_log_line(
    bot: SlackBot, what: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Any client can send these: they must not fill the log (or Sentry) with ERROR tracebacks."""
    assert bot.bot.web is not None
    with caplog.at_level(logging.DEBUG, logger="aiohttp.server"):
        answer = await _send_raw(bot.bot.web.port, MALFORMED[what])
        await asyncio.sleep(0.1)  # the server logs after it answers
    assert answer.split(b" ")[1] == b"400", answer[:200]
    logged = [r for r in caplog.records if r.name == "aiohttp.server"]
    assert len(logged) <= 1, [r.getMessage() for r in logged]
    for record in logged:
        assert record.levelno <= logging.WARNING and record.exc_info is None, record.getMessage()
        assert "aaaa" not in record.getMessage()
