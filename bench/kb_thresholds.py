"""How the operating point's constants were chosen, without looking at the evaluation queries.

Each fold: a seeded random 75% of the known intents become the KB (their 10 phrasings from
kb_examples_10.jsonl); 1,500 questions are drawn from the development pool, and those of the intents
left out of the fold must be escalated. The KB chooses its own operating point (bot/kb/operating_point.py)
for each candidate pair of constants (UNKNOWN_SHARE, CONFIDENCE_Z), and the fold's questions say
how that point does: the issue's targets per fold are answered precision >= 0.95, out-of-scope
escalated >= 0.95 ("safe"), and coverage >= 0.8 x the fold's best coverage at 95% precision in
hindsight.

    --source banking77  the development pool is Banking77's *training* phrasings
                        (kb_examples_full.jsonl minus the KB's 10); queries.jsonl is never read.
    --source hwu64      the pool is HWU64's queries.jsonl (known intents only): for the reverse
                        transfer check (choose on HWU64, measure on Banking77).

Rule: the pair with the most safe folds over both matchers, among pairs whose mean coverage ratio is
at least 0.6 for each matcher; ties go to the higher mean ratio.

    .venv/bin/python -m bench.kb_thresholds [--source banking77|hwu64] [--folds 16] [--json]

The semantic matcher's embeddings are cached under bench/results/ (git-ignored) on the first run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bot.kb import operating_point
from bot.kb.eval import Labelled, entries_from_examples, read_jsonl
from bot.kb.lexical import LexicalMatcher
from bot.kb.matching import PhrasingMatcher
from bot.kb.model import Thresholds
from bot.kb.operating_point import Outcomes, Targets

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
CACHE = Path(__file__).resolve().parent / "results"
QUESTIONS_PER_FOLD = 1500
SHARES = (0.25, 1 / 3, 0.5)
MARGINS = (0.5, 1.0, 1.645)
RATIO_FLOOR = 0.6


class CachedModel:
    """The sentence model behind a cache of every text the folds will embed."""

    def __init__(self, texts: Sequence[str], path: Path) -> None:
        from bot.kb.semantic import load_model

        self.vectors: dict[str, np.ndarray[Any, Any]] = {}
        if path.is_file():
            stored = np.load(path, allow_pickle=False)
            self.vectors = dict(zip(stored["texts"].tolist(), stored["vectors"], strict=True))
        missing = sorted({t for t in texts if t not in self.vectors})
        if missing:
            print(f"embedding {len(missing)} texts once (cached in {path})", file=sys.stderr)
            encoded = load_model().encode(
                missing,
                batch_size=64,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
            self.vectors.update(zip(missing, encoded, strict=True))
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez(path, texts=np.array(list(self.vectors)), vectors=np.stack(list(self.vectors.values())))

    def encode(self, texts: Sequence[str], **_: Any) -> np.ndarray[Any, Any]:
        return np.stack([self.vectors[t] for t in texts])


@dataclass(frozen=True, slots=True)
class Fold:
    matcher: PhrasingMatcher
    scores: np.ndarray[Any, Any]
    entries: np.ndarray[Any, Any]
    labels: np.ndarray[Any, Any]


def pools(source: str) -> tuple[list[Labelled], list[Labelled]]:
    examples = read_jsonl(DATA / source / "kb_examples_10.jsonl", labels_required=True)
    if source == "banking77":
        in_kb = {e.text for e in examples}
        full = read_jsonl(DATA / source / "kb_examples_full.jsonl", labels_required=True)
        return examples, [q for q in full if q.text not in in_kb]
    queries = read_jsonl(DATA / source / "queries.jsonl", labels_required=False)
    return examples, [q for q in queries if q.label is not None]


def folds(source: str, kind: str, count: int) -> Iterator[Fold]:
    examples, pool = pools(source)
    model = None
    if kind == "semantic":
        texts = [e.text.strip() for e in examples] + [q.text for q in pool]
        model = CachedModel(texts, CACHE / f"kb_thresholds_{source}.npz")
    labels = sorted({e.label for e in examples if e.label})
    for seed in range(count):
        rng = random.Random(seed)
        known = set(rng.sample(labels, k=round(len(labels) * 0.75)))
        entries = entries_from_examples([e for e in examples if e.label in known])
        questions = rng.sample(pool, k=min(QUESTIONS_PER_FOLD, len(pool)))
        if kind == "semantic":
            from bot.kb.semantic import SemanticMatcher

            matcher: PhrasingMatcher = SemanticMatcher(entries, model=model)
        else:
            matcher = LexicalMatcher(entries)
        index = {entry.id: i for i, entry in enumerate(matcher.entries)}
        scores = np.full((len(questions), 4), np.nan)
        top = np.full((len(questions), 4), -1, dtype=np.int64)
        for row, question in enumerate(questions):
            for column, (entry, score) in enumerate(
                matcher._scored(matcher.phrasing_scores(question.text), 4)
            ):
                scores[row, column], top[row, column] = score, entry
        truth = np.array([index.get(q.label or "", -1) for q in questions], dtype=np.int64)
        yield Fold(matcher, scores, top, truth)


def figures(fold: Fold, thresholds: Thresholds) -> dict[str, float | None]:
    """The fold's questions at `thresholds`, counted as `kb eval` counts them."""
    m = fold.matcher
    scoped = fold.labels >= 0
    asked = Outcomes.of(fold.scores, fold.entries, fold.labels, m.calibration, m.choice_calibration)
    answered = asked.confidence >= thresholds.answer
    clarified = ~answered & (asked.offered >= thresholds.clarify)
    right = int((answered & asked.right).sum())
    order = np.argsort(-asked.confidence, kind="stable")
    cumulative = np.cumsum(asked.right[order])
    ranks = np.arange(1, len(order) + 1)
    last = np.r_[asked.confidence[order][1:] != asked.confidence[order][:-1], True]
    reachable = last & (cumulative / ranks >= 0.95)
    hindsight = float(cumulative[reachable].max() / scoped.sum()) if reachable.any() else 0.0
    in_clarified = clarified & scoped
    return {
        "precision": right / answered.sum() if answered.any() else None,
        "coverage": right / scoped.sum(),
        "coverage_at_95": hindsight,
        "oos_escalated": float(1 - (answered | clarified)[~scoped].mean()),
        "clarify_hit": float((in_clarified & asked.hit).sum() / in_clarified.sum())
        if in_clarified.any()
        else None,
        "oos_clarified": float(clarified[~scoped].mean()),
        "answer": thresholds.answer,
        "clarify": thresholds.clarify,
    }


def at(fold: Fold, share: float, margin: float) -> dict[str, Any]:
    operating_point.CONFIDENCE_Z = margin
    m = fold.matcher
    point = operating_point.choose(
        m.simulation,
        m.calibration,
        m.choice_calibration,
        Targets(),
        m.default_thresholds,
        unknown_share=share,
    )
    return {**figures(fold, point.thresholds), "source": point.source.value}


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    def safe(r: dict[str, Any]) -> bool:
        return (r["precision"] is None or r["precision"] >= 0.95) and r["oos_escalated"] >= 0.95

    def ratio(r: dict[str, Any]) -> float:
        return min(r["coverage"] / r["coverage_at_95"], 1.5) if r["coverage_at_95"] > 0 else 1.0

    covered = [ratio(r) >= 0.8 for r in rows]
    return {
        "safe": sum(1 for r in rows if safe(r)),
        "precise": sum(1 for r in rows if r["precision"] is None or r["precision"] >= 0.95),
        "escalating": sum(1 for r in rows if r["oos_escalated"] >= 0.95),
        "covered": sum(1 for c in covered if c),
        "all": sum(1 for r, c in zip(rows, covered, strict=True) if safe(r) and c),
        "mean_ratio": round(float(np.mean([ratio(r) for r in rows])), 3),
        "mean_coverage": round(float(np.mean([r["coverage"] for r in rows])), 3),
        "folds": len(rows),
        "sources": {s: sum(1 for r in rows if r["source"] == s) for s in {r["source"] for r in rows}},
        # What a KB too small to simulate falls back to: the typical point of those that can.
        "median_point": [float(np.median([r[k] for r in rows])) for k in ("answer", "clarify")],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", choices=("banking77", "hwu64"), default="banking77")
    parser.add_argument("--matchers", default="lexical,semantic")
    parser.add_argument("--folds", type=int, default=16)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    kinds = args.matchers.split(",")
    built = {kind: list(folds(args.source, kind, args.folds)) for kind in kinds}
    table = []
    for share, margin in itertools.product(SHARES, MARGINS):
        row: dict[str, Any] = {"unknown_share": round(share, 4), "confidence_z": margin}
        for kind in kinds:
            row[kind] = summarise([at(fold, share, margin) for fold in built[kind]])
        table.append(row)
        print(
            f"share {share:.2f} z {margin:.3f}: "
            + "; ".join(
                f"{k} safe {row[k]['safe']}/{row[k]['folds']} (precise {row[k]['precise']}, escalating"
                f" {row[k]['escalating']}), coverage ratio mean {row[k]['mean_ratio']:.2f}, all targets"
                f" {row[k]['all']}"
                for k in kinds
            )
        )
    eligible = [r for r in table if all(r[k]["mean_ratio"] >= RATIO_FLOOR for k in kinds)]
    chosen = max(
        eligible,
        key=lambda r: (sum(r[k]["safe"] for k in kinds), sum(r[k]["mean_ratio"] for k in kinds)),
        default=None,
    )
    print(f"chosen: {chosen}")
    if args.json:
        print(json.dumps({"source": args.source, "folds": args.folds, "table": table, "chosen": chosen}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
