"""Does fine-tuning MiniLM on the KB's own phrasings raise semantic coverage? Development folds only.

It replays the knowledge base before issue 12's rework: run it from a checkout of commit 0f48350
(research/README.md says how).

An experiment, not a product path. Same folds as bench/kb_thresholds.py and
research/kb_semantic_variants.py (same seeds: a random 75% of Banking77's 58 known intents as the KB,
10 phrasings each from kb_examples_10.jsonl; 1,500 questions from the other training phrasings;
held-out intents' questions must be escalated). queries.jsonl is never read.

Per fold, all-MiniLM-L6-v2 is fine-tuned on that fold's KB phrasings only (never its questions, never
held-out intents), SetFit-style but with a plain torch loop: pairs of phrasings of the same entry are
positives, the other pairs in the batch (every one from a different entry) negatives, symmetric
MultipleNegativesRankingLoss (cross-entropy over scaled cosines), AdamW with linear warm-up and decay.
Then, for the base and the fine-tuned model alike, with the shipped entry score (½ best phrasing
cosine + ½ centroid cosine) used *raw* as the confidence (no calibration):

- top-1 accuracy on in-scope questions;
- hindsight coverage at 95% answered precision, out-of-scope questions counted
  (bot/kb/eval.coverage_at_precision);
- the fold's ceiling: best in-scope coverage over every threshold on the raw score with precision
  >= 0.955 and out-of-scope escalation >= 0.95 (exact sweep, no clarify band), with its escalation;
- one raw threshold for all folds by the bench's rule (mean precision >= 0.955, escalation >= 0.95
  in every fold; 0.005 grid).

Calibrated figures (research/kb_semantic_variants' replay: calibration.fit on leave-one-out probes,
PhrasingMatcher.rank's arithmetic, the bench's (answer, clarify) rule) are also given for the base
model, for the fine-tuned model probed naively (the probes are phrasings it was trained on) and,
with --crossfit, probed by cross-fitting: two more models each fine-tuned on half of every entry's
phrasings, each half probed with the model that did not see it (hide-entry probes still come from a
model that was trained on the probed entry's other half, unlike a real out-of-scope question).

    .venv/bin/python -m research.kb_finetune_experiment [--folds 8] [--first-seed 0] [--epochs 5]
        [--lr 3e-5] [--batch 32] [--scale 20] [--crossfit]

Fine-tuned embeddings are cached per fold and setting under research/results/kb_finetune/ (git-ignored).
One JSON line per fold, then one summary line. Needs the semantic extra; one torch thread.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import random
import sys
import time
from pathlib import Path

import numpy as np

from bench.kb_thresholds import TARGET
from bot.kb import calibration
from bot.kb.eval import TARGET_PRECISION, coverage_at_precision
from bot.kb.semantic import BEST_PHRASING_WEIGHT, load_model
from research.kb_semantic_variants import Fold, Shipped, embeddings, make_fold, observe, replay, summarise
from research.kb_semantic_variants import answer as calibrated_answer

CACHE = Path(__file__).resolve().parent / "results" / "kb_finetune"
ESCALATION = 0.95
RAW_GRID = [round(0.005 * i, 3) for i in range(40, 200)]


# --- fine-tuning ------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Settings:
    epochs: int
    lr: float
    batch: int
    scale: float
    warmup: float = 0.1
    weight_decay: float = 0.01

    def tag(self) -> str:
        return f"e{self.epochs}-lr{self.lr:g}-b{self.batch}-s{self.scale:g}"


def pair_batches(
    groups: list[list[str]], settings: Settings, rng: random.Random
) -> list[list[tuple[str, str]]]:
    """Each epoch, every entry's phrasings are shuffled and paired off (each phrasing used once);
    round r takes the r-th pair of every entry, shuffled and split into batches of at most
    `batch` pairs, so no batch holds two pairs of one entry (no false negatives)."""
    batches = []
    for _ in range(settings.epochs):
        paired = []
        for texts in groups:
            order = rng.sample(texts, len(texts))
            paired.append([(order[i], order[i + 1]) for i in range(0, len(order) - 1, 2)])
        for r in range(max(len(p) for p in paired)):
            round_pairs = [p[r] for p in paired if r < len(p)]
            rng.shuffle(round_pairs)
            parts = math.ceil(len(round_pairs) / settings.batch)
            for part in np.array_split(np.arange(len(round_pairs)), parts):
                if len(part) >= 2:
                    batches.append([round_pairs[i] for i in part.tolist()])
    return batches


def fine_tune(model, base_state: dict, groups: list[list[str]], settings: Settings, seed: int) -> dict:
    """Train `model` in place from `base_state`; returns what it cost."""
    import torch
    import torch.nn.functional as F

    model.load_state_dict(base_state)
    torch.manual_seed(seed)
    batches = pair_batches(groups, settings, random.Random(seed))
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    warm = max(1, round(settings.warmup * len(batches)))

    def schedule(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return max(0.0, (len(batches) - step) / max(1, len(batches) - warm))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    model.train()
    started = time.perf_counter()
    losses = []
    for batch in batches:
        texts = [a for a, _ in batch] + [b for _, b in batch]
        features = model.tokenize(texts)
        vectors = F.normalize(model(features)["sentence_embedding"], dim=-1)
        anchors, positives = vectors[: len(batch)], vectors[len(batch) :]
        logits = settings.scale * anchors @ positives.T
        labels = torch.arange(len(batch))
        loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels)) / 2
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    model.eval()
    return {
        "seconds": round(time.perf_counter() - started, 1),
        "steps": len(batches),
        "pairs": sum(len(b) for b in batches),
        "loss_first": round(float(np.mean(losses[:3])), 3),
        "loss_last": round(float(np.mean(losses[-3:])), 3),
    }


def encode(model, texts) -> np.ndarray:
    return np.asarray(
        model.encode(
            list(texts),
            batch_size=64,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        ),
        dtype=np.float64,
    )


def entry_groups(fold: Fold, keep: np.ndarray | None = None) -> list[list[str]]:
    groups: list[list[str]] = [[] for _ in range(fold.entries)]
    for p, (text, entry) in enumerate(zip(fold.kb_texts, fold.kb_entry.tolist(), strict=True)):
        if keep is None or keep[p]:
            groups[entry].append(text)
    return groups


def halves(fold: Fold, seed: int) -> np.ndarray:
    """0/1 per KB phrasing: a seeded half of every entry's phrasings."""
    rng = random.Random(1000 + seed)
    half = np.zeros(len(fold.kb_texts), dtype=np.int64)
    for entry in range(fold.entries):
        rows = np.flatnonzero(fold.kb_entry == entry).tolist()
        rng.shuffle(rows)
        half[rows[len(rows) // 2 :]] = 1
    return half


# --- raw-score figures -----------------------------------------------------------------------------


def raw_points(kb: np.ndarray, kb_entry: np.ndarray, entries: int, questions: np.ndarray, answer: np.ndarray):
    """(raw score of the best entry, it is right, in scope) per question, with the shipped score."""
    phrasing = questions @ kb.T
    starts = np.flatnonzero(np.r_[True, kb_entry[1:] != kb_entry[:-1]])
    assert len(starts) == entries and (np.diff(kb_entry) >= 0).all()
    best = np.maximum.reduceat(phrasing, starts, axis=1)
    sums = np.zeros((entries, kb.shape[1]))
    np.add.at(sums, kb_entry, kb)
    centroid = questions @ (sums / np.linalg.norm(sums, axis=1, keepdims=True)).T
    scores = BEST_PHRASING_WEIGHT * best + (1 - BEST_PHRASING_WEIGHT) * centroid
    top = scores.argmax(axis=1)
    conf = scores[np.arange(len(top)), top]
    return [
        (float(c), bool(a >= 0 and t == a), bool(a >= 0)) for c, t, a in zip(conf, top, answer, strict=True)
    ]


def ceiling(points) -> dict[str, float]:
    """Best coverage over all thresholds with precision >= TARGET and escalation >= 0.95."""
    ordered = sorted(points, key=lambda p: p[0], reverse=True)
    in_scope = sum(1 for p in points if p[2]) or 1
    oos = sum(1 for p in points if not p[2]) or 1
    best = {"coverage": 0.0, "threshold": float("inf"), "precision": 1.0, "escalation": 1.0}
    right = leaked = 0
    for index, (score, correct, scoped) in enumerate(ordered):
        right += correct
        leaked += not scoped
        if index + 1 < len(ordered) and ordered[index + 1][0] == score:
            continue
        precision, escalation = right / (index + 1), 1 - leaked / oos
        if precision >= TARGET and escalation >= ESCALATION and right / in_scope > best["coverage"]:
            best = {
                "coverage": right / in_scope,
                "threshold": score,
                "precision": precision,
                "escalation": escalation,
            }
    return {k: round(v, 3) for k, v in best.items()}


def raw_figures(points) -> dict[str, object]:
    in_scope = sum(1 for p in points if p[2])
    return {
        "top1": round(sum(p[1] for p in points) / in_scope, 3),
        "hindsight95": round(coverage_at_precision(points, TARGET_PRECISION), 3),
        "ceiling": ceiling(points),
    }


def fixed_threshold(per_fold) -> dict[str, float] | None:
    """The bench's rule on the raw score: one threshold for every fold."""
    chosen = None
    for t in RAW_GRID:
        rows = []
        for points in per_fold:
            answered = [p for p in points if p[0] >= t]
            right = sum(p[1] for p in answered)
            rows.append(
                (
                    right / len(answered) if answered else 1.0,
                    right / max(1, sum(p[2] for p in points)),
                    sum(1 for p in points if not p[2] and p[0] < t) / max(1, sum(not p[2] for p in points)),
                )
            )
        precision, coverage = np.mean([r[0] for r in rows]), np.mean([r[1] for r in rows])
        worst_escalation = min(r[2] for r in rows)
        if (
            precision >= TARGET
            and worst_escalation >= ESCALATION
            and (chosen is None or coverage > chosen["coverage"])
        ):
            chosen = {
                "threshold": t,
                "coverage": round(float(coverage), 3),
                "precision": round(float(precision), 3),
                "worst_precision": round(min(r[0] for r in rows), 3),
                "escalation": round(float(np.mean([r[2] for r in rows])), 3),
                "worst_escalation": round(worst_escalation, 3),
            }
    return chosen


# --- calibrated figures ----------------------------------------------------------------------------


def crossfit_points(fold_ft: Fold, kb_a: np.ndarray, kb_b: np.ndarray, half: np.ndarray):
    """Calibrate on probes of each half scored by the model trained on the other half, then
    answer the fold's questions with the fully fine-tuned model and that calibration."""
    unseen = {
        0: Shipped(kb_b, fold_ft.kb_entry, fold_ft.entries),
        1: Shipped(kb_a, fold_ft.kb_entry, fold_ft.entries),
    }

    def rank(probe: calibration.Probe):
        variant = unseen[int(half[probe.phrasing])]
        hide_phrasing, hide_entry = (-1, probe.entry) if probe.hide_entry else (probe.phrasing, -1)
        return observe(variant, variant.vectors[probe.phrasing], hide_phrasing, hide_entry)

    cals = calibration.fit(rank, fold_ft.kb_entry.tolist(), Shipped.prior)
    full = Shipped(fold_ft.kb, fold_ft.kb_entry, fold_ft.entries)
    points = []
    for question, right in zip(fold_ft.questions, fold_ft.answer, strict=True):
        best, confidence, offered = calibrated_answer(full, cals, question)
        points.append((confidence, right >= 0 and best == right, bool(right >= 0), offered))
    return points


def shipped(fold: Fold) -> Shipped:
    return Shipped(fold.kb, fold.kb_entry, fold.entries)


# --- driver ----------------------------------------------------------------------------------------


def fine_tuned_fold(
    fold: Fold, seed: int, settings: Settings, model, base_state, crossfit: bool
) -> tuple[Fold, dict, dict]:
    """The fold re-embedded by a model fine-tuned on its KB (cached), the training costs, and
    (with `crossfit`) the KB embedded by the two half-trained models."""
    path = CACHE / f"fold{seed}-{settings.tag()}.npz"
    stored = dict(np.load(path, allow_pickle=False)) if path.is_file() else {}
    cost: dict = json.loads(str(stored["cost"])) if "cost" in stored else {}
    if "kb" not in stored:
        cost["full"] = fine_tune(model, base_state, entry_groups(fold), settings, seed)
        started = time.perf_counter()
        stored["kb"] = encode(model, fold.kb_texts)
        cost["embed_kb_seconds"] = round(time.perf_counter() - started, 1)
        stored["questions"] = encode(model, fold.question_texts)
    if crossfit and "kb_a" not in stored:
        half = halves(fold, seed)
        for side, name in ((0, "kb_a"), (1, "kb_b")):
            cost[f"half_{side}"] = fine_tune(
                model, base_state, entry_groups(fold, half == side), settings, seed + 1 + side
            )
            stored[name] = encode(model, fold.kb_texts)
    stored["cost"] = np.array(json.dumps(cost))
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(path, **stored)
    ft = dataclasses.replace(fold, kb=stored["kb"], questions=stored["questions"])
    extra = {"kb_a": stored["kb_a"], "kb_b": stored["kb_b"], "half": halves(fold, seed)} if crossfit else {}
    return ft, cost, extra


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=8)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=3e-5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--scale", type=float, default=20.0)
    parser.add_argument(
        "--crossfit", action="store_true", help="also calibrate by cross-fitting (3 trainings per fold)"
    )
    args = parser.parse_args()
    settings = Settings(epochs=args.epochs, lr=args.lr, batch=args.batch, scale=args.scale)
    table = embeddings()
    model = load_model()  # sets one torch thread and offline mode
    base_state = copy.deepcopy(model.state_dict())
    raw = {"base": [], "finetuned": []}
    cal: dict[str, list] = {"base": [], "finetuned_naive": [], "finetuned_crossfit": []}
    costs = []
    for seed in range(args.first_seed, args.first_seed + args.folds):
        fold = make_fold(seed, table)
        ft, cost, extra = fine_tuned_fold(fold, seed, settings, model, base_state, args.crossfit)
        costs.append(cost)
        row: dict[str, object] = {
            "seed": seed,
            "entries": fold.entries,
            "kb_phrasings": len(fold.kb_texts),
            "cost": cost,
        }
        for name, f in (("base", fold), ("finetuned", ft)):
            points = raw_points(f.kb, f.kb_entry, f.entries, f.questions, f.answer)
            raw[name].append(points)
            row[name] = raw_figures(points)
        cal["base"].append(replay(shipped, fold)[0])
        cal["finetuned_naive"].append(replay(shipped, ft)[0])
        if args.crossfit:
            cal["finetuned_crossfit"].append(crossfit_points(ft, extra["kb_a"], extra["kb_b"], extra["half"]))
        for name, runs in cal.items():
            if runs:
                one = summarise([runs[-1]])
                row[f"calibrated_{name}"] = {
                    "top1": one["top1"],
                    "hindsight95": one["hindsight95"],
                    "ceiling": one["per_fold_ceiling"][0],
                }
        print(json.dumps(row), flush=True)
    summary: dict[str, object] = {
        "settings": dataclasses.asdict(settings),
        "folds": args.folds,
        "first_seed": args.first_seed,
    }
    for name, runs in raw.items():
        figures = [raw_figures(points) for points in runs]
        summary[f"raw_{name}"] = {
            "top1": round(float(np.mean([f["top1"] for f in figures])), 3),
            "hindsight95": round(float(np.mean([f["hindsight95"] for f in figures])), 3),
            "ceiling": round(float(np.mean([f["ceiling"]["coverage"] for f in figures])), 3),
            "ceiling_escalation": round(float(np.mean([f["ceiling"]["escalation"] for f in figures])), 3),
            "fixed_threshold": fixed_threshold(runs),
        }
    for name, runs in cal.items():
        if runs:
            summary[f"calibrated_{name}"] = summarise(runs)
    summary["train_seconds_per_fold"] = round(float(np.mean([c["full"]["seconds"] for c in costs])), 1)
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
