"""End-to-end pipeline benchmark: synthetic traffic through dedupe, router, handlers and storage.

A mixed workload (knowledge-base questions, ticket operations, status questions) against a generated
1,000-entry knowledge base, on the fake adapter so only our own code is measured. Reports events per
second and p50/p99 latency per event on SQLite (and PostgreSQL with --database-url or
TEST_DATABASE_URL), how that compares with the cost of matching alone, and the process's resident
size after 10,000 events and at the end (to see whether it grows with traffic).

    python -m bench.pipeline                 # SQLite; PostgreSQL too when TEST_DATABASE_URL is set
    python -m bench.pipeline --events 20000 --json
    python -m bench.pipeline --processes 2   # also N bot processes sharing one PostgreSQL database
    python -m bench.pipeline --events 100000 --only postgres   # resident size after 10,000 vs 100,000
    python -m bench.pipeline --sqlite-driver thread   # aiosqlite's own thread, for comparison
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bot.app import create_bot
from bot.core.events import Actor, CommandInvoked, Conversation, InboundEvent, MessageReceived, Platform
from bot.settings import Settings
from storage import migrate
from storage.db import Database
from tests.fake_adapter import FakeAdapter

OBJECTS = [
    "api key",
    "invoice",
    "csv export",
    "webhook",
    "sso login",
    "dashboard",
    "team member",
    "password",
    "billing address",
    "credit card",
    "subscription",
    "data retention",
    "audit log",
    "access token",
    "custom domain",
    "email notification",
    "slack integration",
    "jira integration",
    "report",
    "workspace",
    "project",
    "user role",
    "two factor code",
    "backup",
    "import file",
    "rate limit",
    "api quota",
    "sandbox account",
    "invoice currency",
    "tax id",
    "refund",
    "trial",
    "plan upgrade",
    "seat count",
    "saml certificate",
    "scim token",
    "ip allowlist",
    "session timeout",
    "mobile app",
    "browser extension",
    "chart widget",
    "saved filter",
    "scheduled report",
    "alert rule",
    "status badge",
    "public link",
    "comment thread",
    "file attachment",
    "label",
    "archive",
]
ACTIONS = [
    ("reset", "Reset"),
    ("delete", "Delete"),
    ("create", "Create"),
    ("download", "Download"),
    ("rotate", "Rotate"),
    ("configure", "Configure"),
    ("cancel", "Cancel"),
    ("update", "Update"),
    ("share", "Share"),
    ("restore", "Restore"),
    ("export", "Export"),
    ("disable", "Disable"),
    ("enable", "Enable"),
    ("rename", "Rename"),
    ("move", "Move"),
    ("copy", "Copy"),
    ("verify", "Verify"),
    ("limit", "Limit"),
    ("transfer", "Transfer"),
    ("recover", "Recover"),
]
TEMPLATES = [
    "How do I {a} my {o}?",
    "{a} {o}",
    "I can't {a} the {o}",
    "Where can I {a} a {o}?",
    "Is it possible to {a} {o} in bulk?",
]
UNKNOWN = [
    "do you sponsor open source conferences in lisbon",
    "what is the airspeed velocity of an unladen swallow",
    "my cat walked on the keyboard and now what",
    "can I pay with a cheque from 1998",
]
STATUS = ["is the api down?", "payments broken for anyone else?", "are you having an outage"]


def write_kb(folder: Path, entries: int) -> None:
    lines = []
    pairs = [(a, o) for o in OBJECTS for a in ACTIONS][:entries]
    for index, ((verb, title_verb), obj) in enumerate(pairs):
        lines.append(f"- id: e{index:04d}-{verb}")
        lines.append(f"  title: {title_verb} a {obj}")
        lines.append("  questions:")
        lines.extend(f'    - "{t.format(a=verb, o=obj)}"' for t in TEMPLATES)
        lines.append(f"  answer: To {verb} a {obj}, open **Settings** and choose _{title_verb}_.")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "generated.yml").write_text("\n".join(lines) + "\n")


def typo(text: str, rng: random.Random) -> str:
    if len(text) < 6:
        return text
    i = rng.randrange(1, len(text) - 2)
    return text[:i] + text[i + 1] + text[i] + text[i + 2 :]


class Workload:
    """Seeded synthetic traffic: many customers, each in their own thread, plus staff commands."""

    def __init__(self, seed: int, customers: int) -> None:
        self.rng = random.Random(seed)
        self.customers = [
            Actor(platform=Platform.CONSOLE, id=f"U{i}", display_name=f"user{i}") for i in range(customers)
        ]
        self.staff = Actor(platform=Platform.CONSOLE, id="S1", display_name="staff")
        self.channel = Conversation(platform=Platform.CONSOLE, workspace_id="W1", channel_id="community")
        self.staff_room = Conversation(platform=Platform.CONSOLE, workspace_id="W1", channel_id="staff")

    def question(self) -> str:
        verb, _ = self.rng.choice(ACTIONS)
        obj = self.rng.choice(OBJECTS)
        text = self.rng.choice(TEMPLATES).format(a=verb, o=obj)
        return typo(text, self.rng) if self.rng.random() < 0.3 else text

    def event(self, index: int) -> InboundEvent:
        roll = self.rng.random()
        customer = self.rng.choice(self.customers)
        event_id = f"ev{index}-{uuid.uuid4().hex[:6]}"
        if roll < 0.55:
            text = self.question()
        elif roll < 0.60:
            text = self.rng.choice(UNKNOWN)
        elif roll < 0.75:
            text = self.rng.choice(STATUS)
        else:
            kind = self.rng.random()
            if kind < 0.4:
                return CommandInvoked(
                    actor=customer, conversation=self.channel, name="tickets", event_id=event_id
                )
            if kind < 0.7:
                number = self.rng.randint(1, 50)
                return CommandInvoked(
                    actor=self.staff,
                    conversation=self.staff_room,
                    name="ticket",
                    args=f"status {number}",
                    event_id=event_id,
                )
            number = self.rng.randint(1, 50)
            return CommandInvoked(
                actor=self.staff,
                conversation=self.staff_room,
                name="ticket",
                args=f"note {number} checked the logs",
                event_id=event_id,
            )
        return MessageReceived(
            actor=customer,
            conversation=self.channel,
            text=text,
            message_id=event_id,
            event_id=event_id,
            mentions_bot=True,
        )


def percentile(values: Any, q: float) -> float:
    ordered: list[float] = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def resident_mb() -> float:
    """This process's resident set size (VmRSS), after a full garbage collection."""
    gc.collect()
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def fresh_postgres(url: str) -> tuple[Database, Any]:
    from sqlalchemy.ext.asyncio import create_async_engine

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    admin = create_async_engine(url, isolation_level="AUTOCOMMIT")
    async with admin.connect() as connection:
        await connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')

    async def drop() -> None:
        async with admin.connect() as connection:
            await connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        await admin.dispose()

    return Database.from_url(url, schema=schema), drop


async def start_bot(database: Database, kb_path: Path) -> Any:
    """The bot the benchmarks drive: fake adapter, lexical matcher, no web server."""
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url="sqlite+aiosqlite:///unused.db",
        staff_channel="console:staff",
        staff_user_ids=["console:S1"],
        kb_path=kb_path,
        matcher="lexical",
        web_enabled=False,
    )
    adapter = FakeAdapter(Platform.CONSOLE)
    return await create_bot(settings, adapters={Platform.CONSOLE: adapter}, database=database, with_web=False)


async def open_some_tickets(bot: Any, workload: Workload, *, prefix: str = "warm") -> None:
    """Warm up: open a few tickets so ticket operations find something, and fill the caches."""
    for i in range(60):
        await bot.dispatcher.handle(
            MessageReceived(
                actor=workload.customers[i % len(workload.customers)],
                conversation=workload.channel,
                text="I want to talk to a human",
                message_id=f"{prefix}{i}",
                event_id=f"{prefix}{i}",
                mentions_bot=True,
            )
        )


def traffic(workload: Workload, events: int, *, share: int = 0, shares: int = 1) -> Iterator[InboundEvent]:
    """The seeded stream, made as it is consumed (a stream held in memory would hide the bot's own
    growth); with `shares`, only every `shares`-th event from `share` on, so that N processes
    together handle exactly the traffic one process does."""
    for index in range(events):
        event = workload.event(index)
        if index % shares == share:
            yield event


async def drive(
    bot: Any, stream: Iterator[InboundEvent], *, concurrency: int, rss_after: int = 10_000
) -> dict[str, Any]:
    """Hand the stream to `concurrency` clients; latencies, wall time, resident size along the way."""
    latencies = array("d")
    rss: dict[str, float] = {}
    # The fake adapter keeps every message it was given, for tests to read: that is the test
    # double growing, not the bot, so it is emptied as we go.
    sent = bot.adapters[Platform.CONSOLE].sent

    async def client() -> None:
        for event in stream:  # one generator shared by all clients: each takes the next event
            started = time.perf_counter()
            await bot.dispatcher.handle(event)
            latencies.append((time.perf_counter() - started) * 1000)
            if len(latencies) % 1000 == 0:
                sent.clear()
            if len(latencies) == rss_after:
                rss["rss_mb_10k"] = round(resident_mb(), 1)

    started = time.monotonic()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    ended = time.monotonic()
    rss["rss_mb_end"] = round(resident_mb(), 1)
    if "rss_mb_10k" in rss:
        rss["rss_growth"] = round(rss["rss_mb_end"] / rss["rss_mb_10k"] - 1, 3)
    return {"latencies": latencies, "started": started, "ended": ended, **rss}


async def run_once(
    *, database: Database, kb_path: Path, events: int, concurrency: int, seed: int
) -> dict[str, Any]:
    bot = await start_bot(database, kb_path)
    kb = bot.services.kb
    customers = max(50, events // 20)
    workload = Workload(seed, customers=customers)
    await open_some_tickets(bot, workload)
    run = await drive(bot, traffic(workload, events), concurrency=concurrency)
    wall = run["ended"] - run["started"]

    # The same questions again (the same seed), at most 5,000 events' worth.
    again = traffic(Workload(seed, customers=customers), min(events, 5000))
    questions = [e.text for e in again if isinstance(e, MessageReceived)]
    match_started = time.perf_counter()
    for text in questions:
        kb.ask(text)
    match_ms = (time.perf_counter() - match_started) * 1000 / max(1, len(questions))
    outcomes = dict(bot.dispatcher.outcomes)
    await database.dispose()
    latencies = run["latencies"]
    p50 = statistics.median(latencies)
    return {
        "events": events,
        "events_per_s": round(events / wall, 1),
        "p50_ms": round(p50, 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "match_ms": round(match_ms, 3),
        "p50_over_match": round(p50 / match_ms, 1) if match_ms else 0.0,
        "failed": outcomes.get("failed", 0),
        **{key: run[key] for key in ("rss_mb_10k", "rss_mb_end", "rss_growth") if key in run},
    }


# -- several bot processes on one PostgreSQL database --------------------------------------------


async def worker(args: argparse.Namespace) -> int:
    """One of `--processes` bots (run by `run_processes`): warm up, say "ready", wait for "go" on
    stdin, handle its share of the traffic, print its figures as one JSON line."""
    database = Database.from_url(args.database_url, schema=args.schema)
    bot = await start_bot(database, Path(args.kb_path))
    workload = Workload(args.seed, customers=max(50, args.events // 20))
    await open_some_tickets(bot, workload, prefix=f"warm{args.share}-")
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    stream = traffic(workload, args.events, share=args.share, shares=args.processes)
    run = await drive(bot, stream, concurrency=args.concurrency)
    outcomes = dict(bot.dispatcher.outcomes)
    await database.dispose()
    latencies = run.pop("latencies")
    print(
        json.dumps(
            {
                **run,
                "handled": len(latencies),
                "failed": outcomes.get("failed", 0),
                "latencies": list(latencies),
            }
        ),
        flush=True,
    )
    return 0


async def run_processes(
    *, url: str, kb_path: Path, events: int, processes: int, concurrency: int, seed: int
) -> dict[str, Any]:
    """`processes` bots, each in its own process with its own pool, on one fresh PostgreSQL schema,
    the traffic split evenly between them (as a load balancer or Discord's shards would). Events per
    second is all events over the time from the first process's start to the last one's end."""
    database, drop = await fresh_postgres(url)
    try:
        await migrate.upgrade(database.engine)  # once, before the processes race to do it
        await database.dispose()
        children = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bench.pipeline",
                "--worker",
                f"--database-url={url}",
                f"--schema={database.schema}",
                f"--kb-path={kb_path}",
                f"--events={events}",
                f"--processes={processes}",
                f"--share={share}",
                f"--concurrency={concurrency}",
                f"--seed={seed}",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
            )
            for share in range(processes)
        ]
        for child in children:
            assert child.stdout is not None
            line = await child.stdout.readline()
            if line.strip() != b"ready":
                raise RuntimeError(f"a benchmark process did not start: {line!r}")
        for child in children:  # as close to the same moment as we can
            assert child.stdin is not None
            child.stdin.write(b"go\n")
        for child in children:
            assert child.stdin is not None
            await child.stdin.drain()
        outputs = [await child.communicate() for child in children]
        runs = [json.loads(stdout.splitlines()[-1]) for stdout, _ in outputs]
    finally:
        await drop()
    latencies = [value for run in runs for value in run["latencies"]]
    wall = max(run["ended"] for run in runs) - min(run["started"] for run in runs)
    handled = sum(run["handled"] for run in runs)
    return {
        "events": handled,
        "events_per_s": round(handled / wall, 1),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "failed": sum(run["failed"] for run in runs),
    }


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients per process")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database-url", default=os.environ.get("TEST_DATABASE_URL", ""))
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="with N > 1, also run N bot processes sharing one PostgreSQL database",
    )
    parser.add_argument("--only", choices=("sqlite", "postgres"), help="run one database only")
    parser.add_argument(
        "--sqlite-driver",
        choices=("inline", "thread"),
        default="inline",
        help="run SQLite statements on the event loop (the default) or on aiosqlite's thread",
    )
    parser.add_argument("--json", action="store_true")
    # How `run_processes` starts a `worker`: not for people.
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--schema", help=argparse.SUPPRESS)
    parser.add_argument("--kb-path", help=argparse.SUPPRESS)
    parser.add_argument("--share", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return await worker(args)
    if args.processes > 1 and not args.database_url:
        parser.error("--processes needs PostgreSQL: --database-url or TEST_DATABASE_URL")

    with tempfile.TemporaryDirectory() as tmp:
        kb_path = Path(tmp) / "kb"
        write_kb(kb_path, args.entries)
        results: dict[str, Any] = {}
        common = {
            "kb_path": kb_path,
            "events": args.events,
            "concurrency": args.concurrency,
            "seed": args.seed,
        }
        if args.only != "postgres":
            sqlite = Database.from_url(
                f"sqlite+aiosqlite:///{tmp}/bench.db", sqlite_driver=args.sqlite_driver
            )
            results["sqlite"] = await run_once(database=sqlite, **common)
        if args.database_url and args.only != "sqlite":
            postgres, drop = await fresh_postgres(args.database_url)
            try:
                results["postgres"] = await run_once(database=postgres, **common)
            finally:
                await drop()
            if args.processes > 1:
                results[f"postgres_{args.processes}proc"] = await run_processes(
                    url=args.database_url, processes=args.processes, **common
                )
    for name, figures in results.items():
        line = (
            f"{name:14} {figures['events']} events: {figures['events_per_s']:8.1f} events/s  "
            f"p50 {figures['p50_ms']:6.2f} ms  p99 {figures['p99_ms']:6.2f} ms  failed {figures['failed']}"
        )
        if "match_ms" in figures:
            line += f"  matching alone {figures['match_ms']:.3f} ms/question"
        if "rss_growth" in figures:
            line += (
                f"  resident {figures['rss_mb_10k']:.1f} MB after 10,000 events, "
                f"{figures['rss_mb_end']:.1f} MB at the end ({figures['rss_growth']:+.1%})"
            )
        print(line)
    first = results.get("sqlite", {})
    summary = {
        **{k: first[k] for k in ("events_per_s", "p50_ms", "p99_ms", "match_ms") if k in first},
        **{k: v for k, v in first.items() if k.startswith("rss")},
        "entries": args.entries,
        "concurrency": args.concurrency,
        "sqlite_driver": args.sqlite_driver,
        **{f"{db}_{k}": v for db, figures in results.items() if db != "sqlite" for k, v in figures.items()},
    }
    if args.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
