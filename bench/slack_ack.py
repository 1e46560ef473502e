"""Slack acknowledgement latency: N concurrent signed slash commands over HTTP to the real bot.

The bot (slack-bolt + our adapter + dispatcher + SQLite) runs in a child process with a core to
itself; the Slack emulator and the load (which stands in for Slack, so its own time is counted
against the bot: a conservative figure) share this one. The machine has two cores. Each command is
`/support help`, answered privately through its response_url; an "effect" is one such answer.
Reports p50/p99 of the time from sending a command to Slack's 200, and checks that every command
produced exactly one effect. Slack's deadline is 3,000 ms.

    .venv/bin/python -m bench.slack_ack [--commands 500] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from tests.emulators.slack import SlackEmulator, sign

ROOT = Path(__file__).resolve().parent.parent


def run_bot(api_base: str, token: str, secret: str, database_url: str, ready: Any, stop: Any) -> None:
    """The child process: a whole bot in HTTP mode; reports its port, runs until told to stop."""

    async def main() -> None:
        from bot.adapters.slack.adapter import SlackAdapter
        from bot.app import create_bot
        from bot.core.events import Platform
        from bot.settings import Settings

        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=database_url,
            web_host="127.0.0.1",
            web_port=0,
            staff_channel="slack:C0STAFF",
            log_level="WARNING",
            kb_path=ROOT / "tests" / "data" / "kb",
            components_file=ROOT / "tests" / "data" / "components.yml",
            matcher="lexical",
        )
        adapter = SlackAdapter(bot_token=token, signing_secret=secret, api_base=api_base)
        bot = await create_bot(settings, adapters={Platform.SLACK: adapter}, with_web=True)
        await bot.start()
        assert bot.web is not None
        ready.put(bot.web.port)
        await asyncio.get_running_loop().run_in_executor(None, stop.wait)
        await bot.stop()

    asyncio.run(main())


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def bench(commands: int, settle_seconds: float) -> dict[str, Any]:
    async with SlackEmulator() as slack:
        for n in range(50):
            slack.add_user(f"U{n:07d}", f"user{n}")
        slack.add_channel("C0COMMUNITY", "community")
        slack.add_channel("C0STAFF", "staff")
        context = multiprocessing.get_context("spawn")
        ready, stop = context.Queue(), context.Event()
        with tempfile.TemporaryDirectory() as tmp:
            child = context.Process(
                target=run_bot,
                args=(
                    slack.base_url,
                    slack.token,
                    slack.signing_secret,
                    f"sqlite+aiosqlite:///{tmp}/bench.db",
                    ready,
                    stop,
                ),
            )
            child.start()
            try:
                port = await asyncio.get_running_loop().run_in_executor(None, ready.get, True, 60)
                if not child.is_alive():
                    raise SystemExit("the bot process failed to start (see its traceback above)")
                forms = [
                    slack.command_form(f"U{n % 50:07d}", "C0COMMUNITY", "/support", "help")
                    for n in range(commands)
                ]
                bodies = [urlencode(form).encode() for form in forms]
                # One warm-up command: bolt's first request calls auth.test.
                warm = slack.command_form("U0000000", "C0COMMUNITY", "/support", "help")
                await post(port, signed_request(port, urlencode(warm).encode(), slack.signing_secret))
                await slack.wait_for("response_url", timeout=30)
                mark = slack.mark()
                requests = [signed_request(port, body, slack.signing_secret) for body in bodies]
                results = await asyncio.gather(*(post(port, request) for request in requests))
                deadline = time.monotonic() + settle_seconds
                expected = {form["response_url"].rsplit("/", 1)[1] for form in forms}
                while time.monotonic() < deadline:
                    effects = Counter(
                        c.params["url_key"] for c in slack.calls[mark:] if c.method == "response_url"
                    )
                    if set(effects) >= expected:
                        break
                    await asyncio.sleep(0.1)
                await asyncio.sleep(0.5)  # anything extra (a duplicate) would arrive now
                effects = Counter(
                    c.params["url_key"] for c in slack.calls[mark:] if c.method == "response_url"
                )
            finally:
                stop.set()
                child.join(30)
    latencies = [ms for status, ms in results if status == 200]
    once = sum(1 for key in expected if effects.get(key) == 1)
    return {
        "commands": commands,
        "acked_200": len(latencies),
        "p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "p99_ms": round(percentile(latencies, 0.99), 1) if latencies else None,
        "max_ms": round(max(latencies), 1) if latencies else None,
        "effects": sum(effects[key] for key in expected),
        "commands_with_exactly_one_effect": once,
    }


def signed_request(port: int, body: bytes, secret: str) -> bytes:
    """One HTTP/1.1 request as Slack sends it, built ahead so sending costs the load almost nothing."""
    stamp = str(int(time.time()))
    head = (
        f"POST /slack/events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"X-Slack-Request-Timestamp: {stamp}\r\nX-Slack-Signature: {sign(secret, stamp, body)}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


async def post(port: int, request: bytes) -> tuple[int, float]:
    """Send one prepared request on a new connection; (status, ms until the response's headers)."""
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    elapsed = (time.perf_counter() - started) * 1000
    writer.close()
    return int(head.split(b" ", 2)[1]), elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=500)
    parser.add_argument("--settle", type=float, default=60.0, help="seconds to wait for every effect")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line last")
    args = parser.parse_args()
    figures = asyncio.run(bench(args.commands, args.settle))
    print(
        f"{figures['commands']} concurrent slash commands: ack p50 {figures['p50_ms']} ms, "
        f"p99 {figures['p99_ms']} ms, max {figures['max_ms']} ms"
        " (Slack's deadline 3000 ms, target p99 < 300 ms)"
    )
    print(
        f"effects: {figures['effects']} for {figures['commands']} commands; "
        f"{figures['commands_with_exactly_one_effect']} had exactly one"
    )
    ok = (
        figures["acked_200"] == args.commands and figures["commands_with_exactly_one_effect"] == args.commands
    )
    if args.json:
        print(json.dumps(figures))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
