"""How the shipped default thresholds were chosen, without looking at the evaluation queries.

Development set: Banking77's *training* phrasings only. In each fold a random 75% of the known
intents become the KB (10 phrasings each, from kb_examples_10.jsonl); the questions are the other
training phrasings of every known intent (kb_examples_full.jsonl minus those 10), and those of the
intents left out of the fold must be escalated. queries.jsonl is never read.

    .venv/bin/python bench/kb_thresholds.py --matcher lexical [--folds 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import defaultdict
from pathlib import Path

from bot.kb.eval import entries_from_examples, read_jsonl
from bot.kb.knowledge_base import build_matcher
from bot.kb.matching import CLARIFY_CHOICES, CLARIFY_RELATIVE_FLOOR

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "banking77"
QUESTIONS_PER_FOLD = 1500
GRID = [round(0.01 * i, 2) for i in range(30, 100)]
# Half a point of slack over the 0.95 targets, for data sets we have not seen.
TARGET = 0.955


def fold_points(matcher: str, seed: int) -> list[tuple[float, bool, bool, float]]:
    """(top confidence, top entry is right, question in scope, confidence of the choices a
    "did you mean" would offer) for one fold's questions."""
    rng = random.Random(seed)
    examples = read_jsonl(DATA / "kb_examples_10.jsonl", labels_required=True)
    full = read_jsonl(DATA / "kb_examples_full.jsonl", labels_required=True)
    labels = sorted({e.label for e in examples if e.label})
    known = set(rng.sample(labels, k=round(len(labels) * 0.75)))
    kb_texts = {e.text for e in examples}
    entries = entries_from_examples([e for e in examples if e.label in known])
    questions = [q for q in full if q.text not in kb_texts]
    questions = rng.sample(questions, k=min(QUESTIONS_PER_FOLD, len(questions)))
    built = build_matcher(entries, matcher)
    points = []
    for question in questions:
        ranked = built.rank(question.text, limit=CLARIFY_CHOICES)
        scoped = question.label in known
        floor = ranked[0].confidence * CLARIFY_RELATIVE_FLOOR
        offered = sum(c.confidence for c in ranked if c.confidence >= floor)
        points.append(
            (ranked[0].confidence, scoped and ranked[0].entry.id == question.label, scoped, offered)
        )
    return points


def sweep(points: list[tuple[float, bool, bool, float]]) -> list[dict[str, float]]:
    rows = []
    in_scope = sum(1 for p in points if p[2]) or 1
    oos = sum(1 for p in points if not p[2]) or 1
    for answer in GRID:
        answered = [p for p in points if p[0] >= answer]
        right = sum(1 for p in answered if p[1])
        for clarify in GRID:
            # The same rule as `decide`: answer first, else offer choices if they are likely enough.
            escalated_oos = sum(1 for p in points if not p[2] and p[0] < answer and p[3] < clarify)
            rows.append(
                {
                    "answer": answer,
                    "clarify": clarify,
                    "precision": right / len(answered) if answered else 1.0,
                    "coverage": right / in_scope,
                    "oos_escalation": escalated_oos / oos,
                }
            )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--matcher", choices=("lexical", "semantic"), default="lexical")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    per_fold = [sweep(fold_points(args.matcher, seed)) for seed in range(args.folds)]
    merged: dict[tuple[float, float], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for rows in per_fold:
        for row in rows:
            for key in ("precision", "coverage", "oos_escalation"):
                merged[(row["answer"], row["clarify"])][key].append(row[key])
    table = []
    for (answer, clarify), values in sorted(merged.items()):
        table.append(
            {
                "answer": answer,
                "clarify": clarify,
                "worst_precision": min(values["precision"]),
                "mean_precision": sum(values["precision"]) / len(values["precision"]),
                "mean_coverage": sum(values["coverage"]) / len(values["coverage"]),
                "worst_oos_escalation": min(values["oos_escalation"]),
                "mean_oos_escalation": sum(values["oos_escalation"]) / len(values["oos_escalation"]),
            }
        )
    # The rule: the pair with the highest coverage whose precision averaged over the folds reaches
    # TARGET and whose out-of-scope escalation reaches 0.95 in every fold (which intents are out of
    # scope moves escalation a lot between folds; precision is capped by label noise, so it is
    # averaged); among equals the lowest clarify threshold.
    ok = [r for r in table if r["mean_precision"] >= TARGET and r["worst_oos_escalation"] >= 0.95]
    chosen = max(ok, key=lambda r: (r["mean_coverage"], -r["answer"], -r["clarify"])) if ok else None
    for row in table:
        if (row["clarify"] == 0.99 and round(row["answer"] * 100) % 5 == 0) or row is chosen:
            print(
                f"answer {row['answer']:.2f} clarify {row['clarify']:.2f}:"
                f" precision {row['mean_precision']:.3f}"
                f" (worst {row['worst_precision']:.3f})  coverage {row['mean_coverage']:.3f}"
                f"  oos escalated {row['mean_oos_escalation']:.3f} (worst {row['worst_oos_escalation']:.3f})"
                + ("   <- chosen" if row is chosen else "")
            )
    print(json.dumps({"matcher": args.matcher, "chosen": chosen}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
