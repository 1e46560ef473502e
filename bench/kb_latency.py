"""What a question costs the matcher on a large knowledge base (1,000 entries x 5 phrasings).

    .venv/bin/python bench/kb_latency.py [--matcher lexical|semantic] [--entries 1000] [--json]

The KB is generated: each entry is a distinct product-support question written five ways. The
questions asked are its phrasings with typos and dropped words, plus unrelated ones. Prints the
load time (index + calibration) and per-question latency; with --json, one JSON object last.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time

from bot.kb.knowledge_base import build_matcher
from bot.kb.model import KBEntry

OBJECTS = [
    "api key",
    "invoice",
    "export",
    "webhook",
    "password",
    "plan",
    "refund",
    "import",
    "region",
    "teammate",
    "dashboard",
    "report",
    "token",
    "subscription",
    "card",
    "workspace",
    "integration",
    "alert",
    "chart",
    "event",
    "endpoint",
    "domain",
    "certificate",
    "backup",
    "role",
    "project",
    "schedule",
    "filter",
    "segment",
    "notification",
    "quota",
    "receipt",
    "contract",
    "seat",
    "session",
    "log",
    "pipeline",
    "connector",
    "dataset",
    "query",
]
ACTIONS = (
    "reset,download,cancel,delete,change,rename,move,share,restore,retry,pause,verify,upgrade,limit,audit"
)
ASKS = (
    "How do I {a} my {o}?",
    "Can I {a} a {o} from the {p} page?",
    "I need to {a} the {o} for {p}",
    "{a} {o} not working on {p}",
    "Where can I {a} our {o} in {p}?",
)
PLACES = ["settings", "billing", "admin", "mobile app", "team space", "api console", "cli"]
UNRELATED = [
    "what is the weather tomorrow",
    "can I bring my dog to the office",
    "who won the football match yesterday",
    "recommend a good pizza place nearby",
    "how tall is the eiffel tower",
]


def generate(count: int, rng: random.Random) -> list[KBEntry]:
    actions = ACTIONS.split(",")
    combos = [(a, o, p) for a in actions for o in OBJECTS for p in PLACES]
    rng.shuffle(combos)
    entries = []
    for index, (a, o, p) in enumerate(combos[:count]):
        questions = tuple(ask.format(a=a, o=o, p=p) for ask in ASKS)
        entries.append(KBEntry(id=f"e{index}", title=questions[0], questions=questions, answer="..."))
    return entries


def perturb(text: str, rng: random.Random) -> str:
    words = text.split()
    if len(words) > 3:
        words.pop(rng.randrange(len(words)))
    i = rng.randrange(len(words))
    w = words[i]
    if len(w) > 3:
        j = rng.randrange(len(w) - 1)
        words[i] = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
    return " ".join(words)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matcher", choices=("lexical", "semantic"), default="lexical")
    parser.add_argument("--entries", type=int, default=1000)
    parser.add_argument("--questions", type=int, default=2000)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rng = random.Random(7)
    entries = generate(args.entries, rng)
    started = time.perf_counter()
    matcher = build_matcher(entries, args.matcher)
    load_s = time.perf_counter() - started
    questions = []
    for _ in range(args.questions):
        if rng.random() < 0.2:
            questions.append(rng.choice(UNRELATED))
        else:
            questions.append(perturb(rng.choice(rng.choice(entries).questions), rng))
    matcher.rank(questions[0], limit=3)  # warm caches the way a running bot has them
    timings = []
    for question in questions:
        t0 = time.perf_counter()
        matcher.rank(question, limit=3)
        timings.append((time.perf_counter() - t0) * 1000)
    timings.sort()
    figures = {
        "matcher": matcher.name,
        "entries": len(entries),
        "phrasings": sum(len(e.questions) for e in entries),
        "questions": len(questions),
        "load_seconds": round(load_s, 2),
        "ms_per_query_mean": round(statistics.fmean(timings), 3),
        "ms_per_query_p50": round(timings[len(timings) // 2], 3),
        "ms_per_query_p99": round(timings[int(len(timings) * 0.99) - 1], 3),
    }
    print(
        f"{figures['matcher']}: {figures['entries']} entries / {figures['phrasings']} phrasings loaded and "
        f"calibrated in {figures['load_seconds']} s; per question: mean {figures['ms_per_query_mean']} ms, "
        f"p50 {figures['ms_per_query_p50']} ms, p99 {figures['ms_per_query_p99']} ms"
    )
    if args.json:
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
