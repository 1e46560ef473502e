"""Traffic where most questions have no entry, from the development sets: the KB keeps `--keep`
of the set's known intents (a fixed random draw per seed) and is asked every query, so about four
in five questions are out of scope and in the KB's own domain, as real support traffic is.

For each set x matcher x seed it prints the figures at the point chosen at load (a third of the
questions assumed unknown) and at the point chosen again for the queries' own mix (estimated from
their text, `bot.kb.traffic`), with the hindsight coverage at 95% precision, and how the "did you
mean" band fared there (questions clarified, right article among the choices, unknown questions
offered choices: the closeness floor closes most of it on this traffic). Nothing here is
tuned on these figures: they measure what the shipped code does on traffic unlike the folds.

    python -m bench.kb_mostly_unknown [--keep 15] [--seeds 4] [--matcher lexical] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from typing import Any

from bot.kb.eval import Labelled, entries_from_examples, read_jsonl, report
from bot.kb.knowledge_base import KnowledgeBase

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
SETS = ("banking77", "hwu64")
KEYS = (
    "answered_precision",
    "in_scope_coverage",
    "oos_escalation",
    "coverage_at_95",
    "answer_threshold",
    "clarified",
    "clarify_hit",
    "oos_clarified",
)


def kept_examples(examples: list[Labelled], keep: int, seed: int) -> list[Labelled]:
    """The examples of `keep` of the known intents, a fixed random draw per seed (0: all of them)."""
    if not keep:
        return examples
    labels = sorted({e.label for e in examples if e.label is not None})
    random.Random(seed).shuffle(labels)
    kept = set(labels[:keep])
    return [e for e in examples if e.label in kept]


def run(data: Path, name: str, matcher: str, keep: int, seed: int) -> dict[str, Any]:
    examples = read_jsonl(data / name / "kb_examples_10.jsonl", labels_required=True)
    queries = read_jsonl(data / name / "queries.jsonl", labels_required=False)
    kb = KnowledgeBase.build(entries_from_examples(kept_examples(examples, keep, seed)), matcher=matcher)
    started = time.perf_counter()
    ranked = [kb.matcher.rank(q.text, limit=3) for q in queries]
    seconds = time.perf_counter() - started
    fixed = report(kb, queries, ranked, traffic=False, seconds=seconds)
    adapted = report(kb, queries, ranked, traffic=True, seconds=seconds)
    return {
        "set": name,
        "matcher": matcher,
        "seed": seed,
        "unknown_share": round(fixed.out_of_scope / fixed.queries, 3),
        "estimated": adapted.unknown_share_estimated,
        "at_load": {k: getattr(fixed, k) for k in KEYS},
        "for_traffic": {k: getattr(adapted, k) for k in KEYS},
    }


def stand_in_arguments(doc: str) -> argparse.Namespace:
    """The options of the benches that build stand-ins from the development sets."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--keep", type=int, default=15, help="known intents the KB keeps (0: all)")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--matcher", action="append", choices=("lexical", "semantic"))
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--json", action="store_true")
    return parser.parse_args()


def fmt(value: float | None) -> str:
    return "  n/a" if value is None else f"{value:.3f}"


def main() -> None:
    args = stand_in_arguments(__doc__ or "")
    rows = [
        run(args.data, name, matcher, args.keep, seed)
        for matcher in args.matcher or ["lexical", "semantic"]
        for name in SETS
        for seed in range(args.seeds)
    ]

    print(
        "set        matcher  seed unknown est.  | at load: answer prec  cov   esc   "
        "| for traffic: answer prec  cov   esc   | cov@95 | for traffic: clarified  hit   oos"
    )
    for r in rows:
        a, t = r["at_load"], r["for_traffic"]
        print(
            f"{r['set']:<10} {r['matcher']:<8} {r['seed']:>4} {r['unknown_share']:.2f}"
            f"    {fmt(r['estimated'])} |"
            f" {a['answer_threshold']:.2f} {fmt(a['answered_precision'])} {fmt(a['in_scope_coverage'])}"
            f" {fmt(a['oos_escalation'])} | {t['answer_threshold']:.2f} {fmt(t['answered_precision'])}"
            f" {fmt(t['in_scope_coverage'])} {fmt(t['oos_escalation'])} | {fmt(a['coverage_at_95'])}"
            f"  |              {fmt(t['clarified'])} {fmt(t['clarify_hit'])} {fmt(t['oos_clarified'])}"
        )
    if args.json:
        print(json.dumps({"keep": args.keep, "rows": rows}, sort_keys=True))


if __name__ == "__main__":
    main()
