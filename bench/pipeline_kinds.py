"""CPU per event kind: `bench.pipeline`'s mix handled one event at a time on SQLite.

Where `pipeline.py` reports throughput and latency under 8 concurrent clients, this says which kind
of event costs what (mean milliseconds, and its share of the total), to see where time goes.

    .venv/bin/python -m bench.pipeline_kinds [--events 3000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bench.pipeline import STATUS, UNKNOWN, Workload, open_some_tickets, start_bot, write_kb
from bot.core.events import CommandInvoked, InboundEvent, MessageReceived
from storage.db import Database


def kind_of(event: InboundEvent) -> str:
    if isinstance(event, CommandInvoked):
        return f"/{event.name} {event.args.split(' ', 1)[0]}".strip()
    assert isinstance(event, MessageReceived)
    if event.text in STATUS:
        return "status question"
    return "unrelated question" if event.text in UNKNOWN else "KB question"


async def measure(events: int, seed: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        kb_path = Path(tmp) / "kb"
        write_kb(kb_path, 1000)
        database = Database.from_url(f"sqlite+aiosqlite:///{tmp}/kinds.db")
        bot = await start_bot(database, kb_path)
        workload = Workload(seed, customers=250)
        await open_some_tickets(bot, workload)
        stream = [workload.event(i) for i in range(events)]
        spent: dict[str, list[float]] = defaultdict(list)
        started = time.perf_counter()
        for event in stream:
            before = time.perf_counter()
            await bot.dispatcher.handle(event)
            spent[kind_of(event)].append(time.perf_counter() - before)
        total = time.perf_counter() - started
        await database.dispose()
    return {
        "events_per_s": round(events / total, 1),
        "mean_ms": round(total / events * 1000, 3),
        "kinds": {
            kind: {
                "events": len(times),
                "mean_ms": round(sum(times) / len(times) * 1000, 3),
                "share": round(sum(times) / total, 3),
            }
            for kind, times in sorted(spent.items(), key=lambda item: -sum(item[1]))
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = asyncio.run(measure(args.events, args.seed))
    print(f"serial: {figures['events_per_s']} events/s, mean {figures['mean_ms']} ms")
    for kind, row in figures["kinds"].items():  # type: ignore[attr-defined]
        share = f"{row['share']:.0%}"
        print(f"  {kind:20} {row['events']:5} events  mean {row['mean_ms']:.2f} ms  {share} of time")
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
