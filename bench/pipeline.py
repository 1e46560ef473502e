"""End-to-end pipeline benchmark: synthetic traffic through dedupe, router, handlers and storage.

A mixed workload (knowledge-base questions, ticket operations, status questions) against a generated
1,000-entry knowledge base, on the fake adapter so only our own code is measured. Reports events per
second and p50/p99 latency per event on SQLite (and PostgreSQL with --database-url or
TEST_DATABASE_URL), and how that compares with the cost of matching alone.

    python -m bench.pipeline                 # SQLite; PostgreSQL too when TEST_DATABASE_URL is set
    python -m bench.pipeline --events 20000 --json
    python -m bench.pipeline --sqlite-driver thread   # aiosqlite's own thread, for comparison
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bot.app import create_bot
from bot.core.events import Actor, CommandInvoked, Conversation, InboundEvent, MessageReceived, Platform
from bot.settings import Settings
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


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


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


async def open_some_tickets(bot: Any, workload: Workload) -> None:
    """Warm up: open a few tickets so ticket operations find something, and fill the caches."""
    for i in range(60):
        await bot.dispatcher.handle(
            MessageReceived(
                actor=workload.customers[i % len(workload.customers)],
                conversation=workload.channel,
                text="I want to talk to a human",
                message_id=f"warm{i}",
                event_id=f"warm{i}",
                mentions_bot=True,
            )
        )


async def run_once(
    *, database: Database, kb_path: Path, events: int, concurrency: int, seed: int
) -> dict[str, float]:
    bot = await start_bot(database, kb_path)
    kb = bot.services.kb
    workload = Workload(seed, customers=max(50, events // 20))
    await open_some_tickets(bot, workload)
    stream = [workload.event(i) for i in range(events)]
    latencies: list[float] = []
    queue: asyncio.Queue[InboundEvent] = asyncio.Queue()
    for event in stream:
        queue.put_nowait(event)

    async def client() -> None:
        while not queue.empty():
            event = queue.get_nowait()
            started = time.perf_counter()
            await bot.dispatcher.handle(event)
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(concurrency)))
    wall = time.perf_counter() - started

    questions = [e.text for e in stream if isinstance(e, MessageReceived)]
    match_started = time.perf_counter()
    for text in questions:
        kb.ask(text)
    match_ms = (time.perf_counter() - match_started) * 1000 / max(1, len(questions))
    outcomes = dict(bot.dispatcher.outcomes)
    await database.dispose()
    p50 = statistics.median(latencies)
    return {
        "events": events,
        "events_per_s": round(events / wall, 1),
        "p50_ms": round(p50, 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "match_ms": round(match_ms, 3),
        "p50_over_match": round(p50 / match_ms, 1) if match_ms else 0.0,
        "failed": outcomes.get("failed", 0),
    }


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database-url", default=os.environ.get("TEST_DATABASE_URL", ""))
    parser.add_argument(
        "--sqlite-driver",
        choices=("inline", "thread"),
        default="inline",
        help="run SQLite statements on the event loop (the default) or on aiosqlite's thread",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        kb_path = Path(tmp) / "kb"
        write_kb(kb_path, args.entries)
        results: dict[str, Any] = {}
        sqlite = Database.from_url(f"sqlite+aiosqlite:///{tmp}/bench.db", sqlite_driver=args.sqlite_driver)
        results["sqlite"] = await run_once(
            database=sqlite, kb_path=kb_path, events=args.events, concurrency=args.concurrency, seed=args.seed
        )
        if args.database_url:
            postgres, drop = await fresh_postgres(args.database_url)
            try:
                results["postgres"] = await run_once(
                    database=postgres,
                    kb_path=kb_path,
                    events=args.events,
                    concurrency=args.concurrency,
                    seed=args.seed,
                )
            finally:
                await drop()
    for name, figures in results.items():
        print(
            f"{name:9} {figures['events']} events: {figures['events_per_s']:8.1f} events/s  "
            f"p50 {figures['p50_ms']:6.2f} ms  p99 {figures['p99_ms']:6.2f} ms  "
            f"matching alone {figures['match_ms']:.3f} ms/question (p50 is {figures['p50_over_match']}x)  "
            f"failed {figures['failed']}"
        )
    summary = {
        "events_per_s": results["sqlite"]["events_per_s"],
        "p50_ms": results["sqlite"]["p50_ms"],
        "p99_ms": results["sqlite"]["p99_ms"],
        "match_ms": results["sqlite"]["match_ms"],
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
