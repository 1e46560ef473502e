"""Out-of-scope signals for the semantic matcher, replayed on the development folds only.

It replays the knowledge base before issue 12's rework: run it from a checkout of commit 0f48350
(research/README.md says how).

Same protocol as bench/kb_thresholds.py (same seeds, same KBs, same questions; queries.jsonl is never
read), but over cached all-MiniLM-L6-v2 embeddings of Banking77's training phrasings, so that a
variant of the scoring costs seconds instead of re-embedding every question. Each variant is
calibrated exactly as the matcher is (bot/kb/calibration.fit on leave-one-phrasing-out and
leave-one-entry-out probes of the fold's own KB), its confidences go through the same "did you mean"
arithmetic as PhrasingMatcher.rank, and the (answer, clarify) pair is chosen by the same rule.

    .venv/bin/python -m research.kb_semantic_variants [--folds 8] [--first-seed 0] [--variants a,b,...]
        [--ridge 1e-6] [--at 0.90,0.99] [--list]

One JSON line per variant: top-1 and hindsight coverage at 95% precision (means over folds), the
pair the rule chooses and its figures (absent when no pair meets the rule), figures at --at, and
each fold's own ceiling (best coverage at precision >= 0.955 and escalation >= 0.95 in that fold).
The replay reproduces the bench: shipped 0.90 / 0.99, coverage 0.323 on 3 folds, 0.321 on 8.

The first run embeds the ~7,500 training phrasings once (1.5 min on one busy core; the
shipped+coverage-* variants also need their token embeddings, another ~1.5 min and 94 MB) and caches
them under research/results/ (git-ignored). All variants on 8 folds take about 35 minutes; one variant
5-15 s per fold.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.kb_thresholds import DATA, QUESTIONS_PER_FOLD, TARGET, sweep
from bot.kb import calibration
from bot.kb.calibration import Calibration, Observation, Probe
from bot.kb.eval import TARGET_PRECISION, coverage_at_precision, read_jsonl
from bot.kb.matching import CLARIFY_CHOICES, CLARIFY_RELATIVE_FLOOR

CACHE = Path(__file__).resolve().parent / "results" / "kb_embeddings.npz"
TOKEN_CACHE = Path(__file__).resolve().parent / "results" / "kb_token_embeddings.npz"


# --- data ---------------------------------------------------------------------------------------


def embeddings() -> dict[str, np.ndarray]:
    """Every training phrasing's embedding, as the matcher computes it (normalised, float32)."""
    texts = training_texts()
    if CACHE.is_file():
        stored = np.load(CACHE, allow_pickle=False)
        if list(stored["texts"]) == texts:
            return dict(zip(texts, stored["vectors"], strict=True))
    from bot.kb.semantic import SemanticMatcher

    matcher = SemanticMatcher([], calibrate=False)
    started = time.perf_counter()
    vectors = matcher.embed(texts)
    print(f"embedded {len(texts)} phrasings in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    CACHE.parent.mkdir(parents=True, exist_ok=True)
    np.savez(CACHE, texts=np.array(texts), vectors=vectors)
    return dict(zip(texts, vectors, strict=True))


def training_texts() -> list[str]:
    examples = read_jsonl(DATA / "kb_examples_10.jsonl", labels_required=True)
    full = read_jsonl(DATA / "kb_examples_full.jsonl", labels_required=True)
    return sorted({e.text for e in examples} | {e.text for e in full} | {e.text.strip() for e in full})


@functools.cache
def token_embeddings() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every training phrasing's contextual token embeddings (normalised, float16) and wordpiece
    ids, without [CLS] and [SEP]: the model's output before mean pooling."""
    texts = training_texts()
    if TOKEN_CACHE.is_file():
        stored = np.load(TOKEN_CACHE, allow_pickle=False)
        if list(stored["texts"]) == texts:
            # An NpzFile decompresses an array on every access: read each one once.
            bounds, ids, vectors = stored["offsets"], stored["ids"], stored["vectors"]
            return {
                text: (ids[a:b], vectors[a:b])
                for text, a, b in zip(texts, bounds[:-1], bounds[1:], strict=True)
            }
    from bot.kb.semantic import load_model

    model = load_model()
    ids, vectors, offsets = [], [], [0]
    started = time.perf_counter()
    for start in range(0, len(texts), 64):
        for row in model.encode(texts[start : start + 64], batch_size=64, output_value=None):
            length = int(row["attention_mask"].sum())
            ids.append(row["input_ids"][1 : length - 1].numpy())
            vectors.append(normalise(row["token_embeddings"][1 : length - 1].float().numpy()))
            offsets.append(offsets[-1] + length - 2)
    print(f"token-embedded {len(texts)} phrasings in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    np.savez(
        TOKEN_CACHE,
        texts=np.array(texts),
        ids=np.concatenate(ids).astype(np.int32),
        vectors=np.concatenate(vectors).astype(np.float16),
        offsets=np.array(offsets),
    )
    return token_embeddings()


@dataclass(frozen=True)
class Fold:
    kb: np.ndarray  # (phrasings, 384), the KB's phrasings
    kb_entry: np.ndarray  # entry index of each phrasing
    entries: int
    questions: np.ndarray  # (questions, 384)
    answer: np.ndarray  # the right entry per question, -1 when out of scope
    kb_texts: tuple[str, ...] = ()
    question_texts: tuple[str, ...] = ()


def make_fold(seed: int, table: dict[str, np.ndarray]) -> Fold:
    """Exactly bench/kb_thresholds.fold_points' KB and questions for this seed."""
    rng = random.Random(seed)
    examples = read_jsonl(DATA / "kb_examples_10.jsonl", labels_required=True)
    full = read_jsonl(DATA / "kb_examples_full.jsonl", labels_required=True)
    labels = sorted({e.label for e in examples if e.label})
    known = set(rng.sample(labels, k=round(len(labels) * 0.75)))
    kb_texts = {e.text for e in examples}
    questions = [q for q in full if q.text not in kb_texts]
    questions = rng.sample(questions, k=min(QUESTIONS_PER_FOLD, len(questions)))
    # entries_from_examples: one entry per label in first-seen order, phrasings stripped, deduplicated.
    by_label: dict[str, dict[str, None]] = {}
    for example in examples:
        if example.label in known:
            by_label.setdefault(str(example.label), {})[example.text.strip()] = None
    order = list(by_label)
    kb_rows = [(i, text) for i, label in enumerate(order) for text in by_label[label]]
    index = {label: i for i, label in enumerate(order)}
    return Fold(
        kb=np.stack([table[text] for _, text in kb_rows]).astype(np.float64),
        kb_entry=np.array([i for i, _ in kb_rows], dtype=np.int64),
        entries=len(order),
        questions=np.stack([table[q.text] for q in questions]).astype(np.float64),
        answer=np.array([index.get(str(q.label), -1) for q in questions], dtype=np.int64),
        kb_texts=tuple(text for _, text in kb_rows),
        question_texts=tuple(q.text for q in questions),
    )


# --- linear algebra shared by the variants -------------------------------------------------------


def ledoit_wolf(centred: np.ndarray) -> tuple[np.ndarray, float]:
    """Ledoit-Wolf shrinkage of the covariance of already-centred rows towards a scaled identity
    (the same estimate as sklearn.covariance.ledoit_wolf, without the dependency)."""
    n, p = centred.shape
    cov = centred.T @ centred / n
    mu = float(np.trace(cov)) / p
    squares = centred**2
    beta_sum = float((squares.T @ squares).sum())
    delta_sum = float((cov**2).sum())
    beta = (beta_sum / n - delta_sum) / (p * n)
    delta = (delta_sum - 2 * mu * float(np.trace(cov)) + p * mu**2) / p
    shrinkage = 0.0 if delta <= 0 else min(beta, delta) / delta
    shrunk = (1 - shrinkage) * cov
    shrunk.flat[:: p + 1] += shrinkage * mu
    return shrunk, shrinkage


def shrunk_covariance(centred: np.ndarray, shrinkage: float | None) -> np.ndarray:
    """Fixed shrinkage towards mu*I, or Ledoit-Wolf's when `shrinkage` is None."""
    if shrinkage is None:
        return ledoit_wolf(centred)[0]
    n, p = centred.shape
    cov = centred.T @ centred / n
    mu = float(np.trace(cov)) / p
    out = (1 - shrinkage) * cov
    out.flat[:: p + 1] += shrinkage * mu
    return out


def inverse_sqrt(cov: np.ndarray) -> np.ndarray:
    """W with W.T @ W = cov^-1 (rows are the eigenvectors scaled by 1/sqrt(eigenvalue))."""
    values, vectors = np.linalg.eigh(cov)
    return (vectors / np.sqrt(np.maximum(values, 1e-12))).T


def within_entry_centred(vectors: np.ndarray, entry_of: np.ndarray, entries: int) -> np.ndarray:
    sums = np.zeros((entries, vectors.shape[1]))
    np.add.at(sums, entry_of, vectors)
    counts = np.bincount(entry_of, minlength=entries).astype(float)
    return vectors - (sums / np.maximum(counts, 1)[:, None])[entry_of]


def normalise(rows: np.ndarray) -> np.ndarray:
    return rows / np.maximum(np.linalg.norm(rows, axis=-1, keepdims=True), 1e-12)


# --- variants -----------------------------------------------------------------------------------


class Variant:
    """Scores every entry for a question vector; what is hidden while calibrating is left out.
    The features default to the shipped ones: (best score, margin over the runner-up) and (best
    score, margin of the top three over the fourth)."""

    prior = Calibration(bias=-12.0, weights=(14.0, 10.0))
    kb_texts: tuple[str, ...] = ()

    def __init__(self, fold_kb: np.ndarray, kb_entry: np.ndarray, entries: int) -> None:
        self.vectors = fold_kb
        self.entry_of = kb_entry
        self.entries = entries

    def entry_scores(self, question: np.ndarray, hide_phrasing: int = -1, hide_entry: int = -1) -> np.ndarray:
        raise NotImplementedError

    def features(self, order: np.ndarray, scores: np.ndarray, position: int) -> tuple[float, ...]:
        """Calibration features of the entry at `position` (0: the best, against the runner-up;
        later ones against the best, as PhrasingMatcher.rank shares the choices)."""
        padded = np.concatenate([scores[order], np.zeros(CLARIFY_CHOICES + 1)])
        other = padded[1] if position == 0 else padded[0]
        return (float(padded[position]), float(padded[position] - other))

    def choice_features(self, order: np.ndarray, scores: np.ndarray) -> tuple[float, ...]:
        padded = np.concatenate([scores[order], np.zeros(CLARIFY_CHOICES + 1)])
        return (float(padded[0]), float(padded[0] - padded[CLARIFY_CHOICES]))

    def prepare_hidden_entry(self, entry: int) -> None:
        """Called before probes that hide `entry` (variants whose statistics must forget it)."""

    def set_question(self, text: str) -> None:
        """Called before scoring a question (variants that read more than its embedding)."""

    def done_hiding(self) -> None:
        """Called after those probes."""


class Shipped(Variant):
    """½ best phrasing + ½ centroid cosine, as bot/kb/semantic.py (BEST_PHRASING_WEIGHT)."""

    best_weight = 0.5

    def __init__(self, fold_kb: np.ndarray, kb_entry: np.ndarray, entries: int) -> None:
        super().__init__(fold_kb, kb_entry, entries)
        self.space = self.transform(fold_kb)

    def transform(self, rows: np.ndarray) -> np.ndarray:
        return rows

    def entry_scores(self, question: np.ndarray, hide_phrasing: int = -1, hide_entry: int = -1) -> np.ndarray:
        return self.cosine_scores(self.transform(question[None, :])[0], hide_phrasing, hide_entry)

    def cosine_scores(self, q: np.ndarray, hide_phrasing: int, hide_entry: int) -> np.ndarray:
        visible = np.ones(len(self.space), dtype=bool)
        if hide_phrasing >= 0:
            visible[hide_phrasing] = False
        if hide_entry >= 0:
            visible[self.entry_of == hide_entry] = False
        phrasing = self.space @ q
        best = np.full(self.entries, -np.inf)
        np.maximum.at(best, self.entry_of[visible], phrasing[visible])
        sums = np.zeros((self.entries, self.space.shape[1]))
        np.add.at(sums, self.entry_of[visible], self.space[visible])
        norms = np.linalg.norm(sums, axis=1)
        shown = np.isfinite(best) & (norms > 1e-9)
        centroid = np.divide(sums @ q, norms, out=np.zeros(self.entries), where=shown)
        return np.where(shown, self.best_weight * best + (1 - self.best_weight) * centroid, -np.inf)


class BestPhrasing(Shipped):
    best_weight = 1.0


class Whitened(Shipped):
    """Cosine after whitening with the (shrunk) within-entry covariance: directions in which an
    entry's own phrasings vary count less, directions that tell entries apart count more.
    Optionally centred on the KB's mean phrasing first."""

    def __init__(
        self,
        fold_kb: np.ndarray,
        kb_entry: np.ndarray,
        entries: int,
        *,
        shrinkage: float | None,
        centre: bool,
    ) -> None:
        centred = within_entry_centred(fold_kb, kb_entry, entries)
        self.whiten = inverse_sqrt(shrunk_covariance(centred, shrinkage))
        self.mean = fold_kb.mean(axis=0) if centre else np.zeros(fold_kb.shape[1])
        super().__init__(fold_kb, kb_entry, entries)

    def transform(self, rows: np.ndarray) -> np.ndarray:
        return normalise((rows - self.mean) @ self.whiten.T)


class Mahalanobis(Variant):
    """-d²/p to each entry's mean phrasing under the shared, shrunk within-entry covariance
    (Podolskiy et al. 2021). `relative`: minus the distance to the KB's mean under the KB's overall
    covariance (Ren et al. 2021, "relative Mahalanobis"), which only moves the best score.
    `exact`: a probe that hides an entry re-estimates the covariance without it."""

    def __init__(
        self,
        fold_kb: np.ndarray,
        kb_entry: np.ndarray,
        entries: int,
        *,
        shrinkage: float | None,
        relative: bool,
        exact: bool,
        prior: Calibration,
    ) -> None:
        super().__init__(fold_kb, kb_entry, entries)
        self.shrinkage = shrinkage
        self.relative = relative
        self.exact = exact
        self.prior = prior
        self.dim = fold_kb.shape[1]
        self._fit(np.ones(len(fold_kb), dtype=bool))

    def _fit(self, keep: np.ndarray) -> None:
        kb, entry_of = self.vectors[keep], self.entry_of[keep]
        centred = within_entry_centred(kb, entry_of, self.entries)
        self.whiten = inverse_sqrt(shrunk_covariance(centred, self.shrinkage))
        self.z = self.vectors @ self.whiten.T  # every phrasing, hidden or not: the probes mask them
        if self.relative:
            self.mean = kb.mean(axis=0)
            self.whiten0 = inverse_sqrt(shrunk_covariance(kb - self.mean, self.shrinkage))

    def prepare_hidden_entry(self, entry: int) -> None:
        if self.exact:
            self._fit(self.entry_of != entry)

    def done_hiding(self) -> None:
        if self.exact:
            self._fit(np.ones(len(self.vectors), dtype=bool))

    def entry_scores(self, question: np.ndarray, hide_phrasing: int = -1, hide_entry: int = -1) -> np.ndarray:
        visible = np.ones(len(self.z), dtype=bool)
        if hide_phrasing >= 0:
            visible[hide_phrasing] = False
        if hide_entry >= 0:
            visible[self.entry_of == hide_entry] = False
        sums = np.zeros((self.entries, self.z.shape[1]))
        np.add.at(sums, self.entry_of[visible], self.z[visible])
        counts = np.bincount(self.entry_of[visible], minlength=self.entries).astype(float)
        means = sums / np.maximum(counts, 1)[:, None]
        zq = self.whiten @ question
        distance = ((means - zq) ** 2).sum(axis=1) / self.dim
        if self.relative:
            distance -= float(((self.whiten0 @ (question - self.mean)) ** 2).sum()) / self.dim
        return np.where(counts > 0, -distance, -np.inf)


class Combined(Variant):
    """Ranks by the shipped cosine score; calibrates on its (score, margin) plus a second scorer's
    (score of the same entry, that entry's margin on the second scorer's own ranking)."""

    def __init__(self, first: Shipped, second: Variant, prior: Calibration) -> None:
        super().__init__(first.vectors, first.entry_of, first.entries)
        self.first, self.second, self.prior = first, second, prior
        self._second_scores = np.zeros(self.entries)

    def prepare_hidden_entry(self, entry: int) -> None:
        self.second.prepare_hidden_entry(entry)

    def done_hiding(self) -> None:
        self.second.done_hiding()

    def entry_scores(self, question: np.ndarray, hide_phrasing: int = -1, hide_entry: int = -1) -> np.ndarray:
        self._second_scores = self.second.entry_scores(question, hide_phrasing, hide_entry)
        return self.first.entry_scores(question, hide_phrasing, hide_entry)

    def _extra(self, entry: int) -> tuple[float, float]:
        s = self._second_scores
        others = np.delete(s, entry)
        rival = float(others[np.isfinite(others)].max()) if np.isfinite(others).any() else float(s[entry]) - 1
        return (float(s[entry]), float(s[entry]) - rival)

    def features(self, order: np.ndarray, scores: np.ndarray, position: int) -> tuple[float, ...]:
        base = super().features(order, scores, position)
        entry = int(order[position]) if position < len(order) else int(order[0])
        return base + self._extra(entry)

    def choice_features(self, order: np.ndarray, scores: np.ndarray) -> tuple[float, ...]:
        return super().choice_features(order, scores) + self._extra(int(order[0]))


class WithGlobal(Variant):
    """The shipped scores and features plus one question-level feature from `signal` (higher is
    more in scope), e.g. minus the relative Mahalanobis distance or the kNN similarity."""

    def __init__(self, first: Shipped, signal: Callable[[np.ndarray, int, int], float], prior: Calibration):
        super().__init__(first.vectors, first.entry_of, first.entries)
        self.first, self.signal, self.prior = first, signal, prior
        self._value = 0.0

    def entry_scores(self, question: np.ndarray, hide_phrasing: int = -1, hide_entry: int = -1) -> np.ndarray:
        self._value = self.signal(question, hide_phrasing, hide_entry)
        return self.first.entry_scores(question, hide_phrasing, hide_entry)

    def features(self, order: np.ndarray, scores: np.ndarray, position: int) -> tuple[float, ...]:
        return (*super().features(order, scores, position), self._value)

    def choice_features(self, order: np.ndarray, scores: np.ndarray) -> tuple[float, ...]:
        return (*super().choice_features(order, scores), self._value)


class Coverage(Variant):
    """The shipped ranking and features plus how well the entry's phrasings cover the question
    word by word (BERTScore-style recall over the model's contextual token embeddings): for each
    question token, its best cosine with any token of the entry's phrasings, weighted by the
    token's rarity across the KB's entries. A question that adds a concept the entry never mentions
    ("... at the ATM" against an entry about card payments) leaves that token uncovered.
    `features`: "recall" (weighted mean), "fit" (1 - the worst weighted gap), or "both"."""

    def __init__(
        self,
        first: Shipped,
        fold: Fold,
        tokens: dict[str, tuple[np.ndarray, np.ndarray]],
        prior: Calibration,
        mode: str,
    ) -> None:
        super().__init__(first.vectors, first.entry_of, first.entries)
        self.first, self.tokens, self.prior, self.mode = first, tokens, prior, mode
        self.phrasing_ids = [tokens[text][0] for text in fold.kb_texts]
        self.phrasing_vectors = [tokens[text][1].astype(np.float32) for text in fold.kb_texts]
        self.entry_ids: list[set[int]] = [set() for _ in range(first.entries)]
        for phrasing, entry in enumerate(self.entry_of.tolist()):
            self.entry_ids[entry].update(self.phrasing_ids[phrasing].tolist())
        self.df: dict[int, int] = defaultdict(int)
        for ids in self.entry_ids:
            for token in ids:
                self.df[token] += 1
        self.hidden = (-1, -1)
        self.question: tuple[np.ndarray, np.ndarray] = (np.zeros(0, dtype=np.int32), np.zeros((0, 384)))
        self._cache: dict[int, tuple[float, float]] = {}

    def set_question(self, text: str) -> None:
        ids, vectors = self.tokens[text]
        self.question = (ids, vectors.astype(np.float32))

    def entry_scores(self, question: np.ndarray, hide_phrasing: int = -1, hide_entry: int = -1) -> np.ndarray:
        self.hidden = (hide_phrasing, hide_entry)
        self._cache = {}
        return self.first.entry_scores(question, hide_phrasing, hide_entry)

    def coverage(self, entry: int) -> tuple[float, float]:
        if entry in self._cache:
            return self._cache[entry]
        hide_phrasing, hide_entry = self.hidden
        ids, vectors = self.question
        rows = [
            self.phrasing_vectors[p]
            for p in np.flatnonzero(self.entry_of == entry).tolist()
            if p != hide_phrasing
        ]
        if not len(ids) or not rows:
            return (0.0, 0.0)
        best = (vectors @ np.concatenate(rows).T).max(axis=1)
        entries = self.entries - (1 if hide_entry >= 0 else 0)
        gone = self.entry_ids[hide_entry] if hide_entry >= 0 else set()
        df = np.array([self.df.get(t, 0) - (t in gone) for t in ids.tolist()], dtype=float)
        idf = np.log((entries + 1) / (df + 1))
        top = np.log(entries + 1)
        recall = float((idf * best).sum() / idf.sum()) if idf.sum() > 0 else 1.0
        fit = 1.0 - float((idf / top * (1.0 - best)).max())
        self._cache[entry] = (recall, fit)
        return recall, fit

    def _extra(self, entry: int) -> tuple[float, ...]:
        recall, fit = self.coverage(entry)
        return {"recall": (recall,), "fit": (fit,), "both": (recall, fit)}[self.mode]

    def features(self, order: np.ndarray, scores: np.ndarray, position: int) -> tuple[float, ...]:
        base = super().features(order, scores, position)
        entry = int(order[position]) if position < len(order) else int(order[0])
        return base + self._extra(entry)

    def choice_features(self, order: np.ndarray, scores: np.ndarray) -> tuple[float, ...]:
        return super().choice_features(order, scores) + self._extra(int(order[0]))


# --- the replay: calibrate like the matcher, answer like PhrasingMatcher.rank --------------------


def calibrate(variant: Variant) -> tuple[Calibration, Calibration]:
    """bot/kb/calibration.fit over the variant's leave-one-out probes (hide-entry probes grouped
    so a variant that re-estimates statistics without the entry does it once per entry)."""
    observations: dict[Probe, Observation | None] = {}
    all_probes = calibration.probes(variant.entry_of.tolist())
    for probe in all_probes:
        if not probe.hide_entry:
            variant.set_question(variant_text(variant, probe.phrasing))
            observations[probe] = observe(variant, variant.vectors[probe.phrasing], probe.phrasing, -1)
    by_entry: dict[int, list[Probe]] = defaultdict(list)
    for probe in all_probes:
        if probe.hide_entry:
            by_entry[probe.entry].append(probe)
    for entry, group in by_entry.items():
        variant.prepare_hidden_entry(entry)
        for probe in group:
            variant.set_question(variant_text(variant, probe.phrasing))
            observations[probe] = observe(variant, variant.vectors[probe.phrasing], -1, entry)
    variant.done_hiding()
    return calibration.fit(observations.__getitem__, variant.entry_of.tolist(), variant.prior)


def variant_text(variant: Variant, phrasing: int) -> str:
    return variant.kb_texts[phrasing] if variant.kb_texts else ""


def observe(
    variant: Variant, question: np.ndarray, hide_phrasing: int, hide_entry: int
) -> Observation | None:
    scores = variant.entry_scores(question, hide_phrasing, hide_entry)
    order = ranked(scores, CLARIFY_CHOICES + 1)
    if not len(order):
        return None
    return Observation(
        best=int(order[0]),
        best_features=variant.features(order, scores, 0),
        choices=tuple(int(i) for i in order[:CLARIFY_CHOICES]),
        choice_features=variant.choice_features(order, scores),
    )


def ranked(scores: np.ndarray, limit: int) -> np.ndarray:
    finite = np.flatnonzero(np.isfinite(scores))
    return finite[np.argsort(-scores[finite], kind="stable")][:limit]


def answer(variant: Variant, cals: tuple[Calibration, Calibration], question: np.ndarray):
    """(best entry, its confidence, confidence of the choices a "did you mean" would offer), with
    PhrasingMatcher.rank's arithmetic and kb_thresholds.fold_points' sum over three."""
    best_cal, choice_cal = cals
    scores = variant.entry_scores(question)
    order = ranked(scores, CLARIFY_CHOICES + 1)
    best = best_cal(variant.features(order, scores, 0))
    among = max(choice_cal(variant.choice_features(order, scores)), best)
    shares = [best_cal(variant.features(order, scores, p)) for p in range(1, len(order))]
    total = sum(shares[: CLARIFY_CHOICES - 1]) or 1.0
    confidences = [best]
    for position, share in enumerate(shares, start=1):
        confidence = (among - best) * share / total if position < CLARIFY_CHOICES else share
        confidences.append(min(confidence, confidences[-1]))
    confidences = confidences[:CLARIFY_CHOICES]
    floor = confidences[0] * CLARIFY_RELATIVE_FLOOR
    return int(order[0]), best, sum(c for c in confidences if c >= floor)


def replay(
    make: Callable[[Fold], Variant], fold: Fold
) -> tuple[list[tuple[float, bool, bool, float]], float]:
    started = time.perf_counter()
    variant = make(fold)
    variant.kb_texts = fold.kb_texts
    cals = calibrate(variant)
    points = []
    for text, question, right in zip(fold.question_texts, fold.questions, fold.answer, strict=True):
        variant.set_question(text)
        best, confidence, offered = answer(variant, cals, question)
        points.append((confidence, right >= 0 and best == right, bool(right >= 0), offered))
    return points, time.perf_counter() - started


def summarise(
    per_fold: list[list[tuple[float, bool, bool, float]]], at: tuple[float, float] | None = None
) -> dict[str, object]:
    """Top-1, hindsight coverage at 95% precision (both averaged over folds), the rule's pair and
    its figures, and (with `at`) the figures at a fixed (answer, clarify) pair."""
    top1 = np.mean([sum(p[1] for p in pts) / sum(p[2] for p in pts) for pts in per_fold])
    hindsight = np.mean([coverage_at_precision([p[:3] for p in pts], TARGET_PRECISION) for pts in per_fold])
    merged: dict[tuple[float, float], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for pts in per_fold:
        for row in sweep(pts):
            for key in ("precision", "coverage", "oos_escalation"):
                merged[(row["answer"], row["clarify"])][key].append(row[key])
    ok = []
    for (answer_at, clarify_at), values in merged.items():
        if np.mean(values["precision"]) >= TARGET and min(values["oos_escalation"]) >= 0.95:
            ok.append((np.mean(values["coverage"]), -answer_at, -clarify_at, values))
    out: dict[str, object] = {"top1": round(float(top1), 3), "hindsight95": round(float(hindsight), 3)}
    if ok:
        coverage, answer_at, clarify_at, values = max(ok, key=lambda r: r[:3])
        out.update(
            answer=-answer_at,
            clarify=-clarify_at,
            rule_coverage=round(float(coverage), 3),
            precision=round(float(np.mean(values["precision"])), 3),
            worst_precision=round(min(values["precision"]), 3),
            oos=round(float(np.mean(values["oos_escalation"])), 3),
            worst_oos=round(min(values["oos_escalation"]), 3),
        )
    if at is not None:
        values = merged[at]
        out["at"] = {
            "answer": at[0],
            "clarify": at[1],
            "coverage": round(float(np.mean(values["coverage"])), 3),
            "precision": round(float(np.mean(values["precision"])), 3),
            "worst_precision": round(min(values["precision"]), 3),
            "oos": round(float(np.mean(values["oos_escalation"])), 3),
            "worst_oos": round(min(values["oos_escalation"]), 3),
        }
    # Per fold, in hindsight: coverage at the loosest answer threshold keeping precision >= 0.955
    # and escalation >= 0.95 (clarify never) -- the ceiling one threshold per fold would reach.
    per = []
    for pts in per_fold:
        best = 0.0
        for row in sweep(pts):
            if row["clarify"] == 0.99 and row["precision"] >= TARGET and row["oos_escalation"] >= 0.95:
                best = max(best, row["coverage"])
        per.append(best)
    out["per_fold_ceiling"] = [round(v, 3) for v in per]
    return out


# --- the variants measured ------------------------------------------------------------------------

NEUTRAL2 = Calibration(bias=0.0, weights=(1.0, 1.0))
NEUTRAL3 = Calibration(bias=-12.0, weights=(14.0, 10.0, 1.0))
NEUTRAL4 = Calibration(bias=-12.0, weights=(14.0, 10.0, 1.0, 1.0))


def knn_signal(k: int) -> Callable[[Fold], Callable[[np.ndarray, int, int], float]]:
    def bind(fold: Fold) -> Callable[[np.ndarray, int, int], float]:
        def signal(question: np.ndarray, hide_phrasing: int, hide_entry: int) -> float:
            scores = fold.kb @ question
            if hide_phrasing >= 0:
                scores[hide_phrasing] = -np.inf
            if hide_entry >= 0:
                scores[fold.kb_entry == hide_entry] = -np.inf
            return float(np.sort(scores)[-k])

        return signal

    return bind


def rmd_signal(fold: Fold) -> Callable[[np.ndarray, int, int], float]:
    """Minus the relative Mahalanobis distance of the best entry (the global distance subtracted),
    a question-level in-scope signal."""
    maha = Mahalanobis(
        fold.kb, fold.kb_entry, fold.entries, shrinkage=None, relative=True, exact=False, prior=NEUTRAL2
    )

    def signal(question: np.ndarray, hide_phrasing: int, hide_entry: int) -> float:
        return float(maha.entry_scores(question, hide_phrasing, hide_entry).max())

    return signal


def variants() -> dict[str, Callable[[Fold], Variant]]:
    out: dict[str, Callable[[Fold], Variant]] = {
        "shipped": lambda f: Shipped(f.kb, f.kb_entry, f.entries),
        "best-phrasing": lambda f: BestPhrasing(f.kb, f.kb_entry, f.entries),
    }
    for shrinkage in (None, 0.5, 0.8):
        tag = "lw" if shrinkage is None else f"s{shrinkage}"
        for centre in (False, True):
            out[f"whitened-{tag}{'-centred' if centre else ''}"] = lambda f, s=shrinkage, c=centre: Whitened(
                f.kb, f.kb_entry, f.entries, shrinkage=s, centre=c
            )
        for relative in (False, True):
            for exact in (False, True):
                name = f"maha-{tag}{'-relative' if relative else ''}{'-exact' if exact else ''}"
                out[name] = lambda f, s=shrinkage, r=relative, e=exact: Mahalanobis(
                    f.kb, f.kb_entry, f.entries, shrinkage=s, relative=r, exact=e, prior=NEUTRAL2
                )
    out["shipped+maha-lw"] = lambda f: Combined(
        Shipped(f.kb, f.kb_entry, f.entries),
        Mahalanobis(f.kb, f.kb_entry, f.entries, shrinkage=None, relative=False, exact=True, prior=NEUTRAL2),
        NEUTRAL4,
    )
    out["shipped+rmd-lw"] = lambda f: WithGlobal(
        Shipped(f.kb, f.kb_entry, f.entries), rmd_signal(f), NEUTRAL3
    )
    for k in (1, 5, 10):
        out[f"shipped+knn{k}"] = lambda f, k=k: WithGlobal(
            Shipped(f.kb, f.kb_entry, f.entries), knn_signal(k)(f), NEUTRAL3
        )
    for mode in ("recall", "fit", "both"):
        out[f"shipped+coverage-{mode}"] = lambda f, m=mode: Coverage(
            Shipped(f.kb, f.kb_entry, f.entries),
            f,
            token_embeddings(),
            NEUTRAL3 if m != "both" else NEUTRAL4,
            m,
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folds", type=int, default=8)
    parser.add_argument(
        "--first-seed", type=int, default=0, help="fold seeds first..first+folds-1 (0 = the bench's)"
    )
    parser.add_argument("--variants", default="", help="comma-separated names (default: all)")
    parser.add_argument(
        "--ridge",
        type=float,
        default=None,
        help="calibration's pull towards the prior (default: the shipped one); ~0 for new features",
    )
    parser.add_argument("--at", default="", help="also report figures at this pair, e.g. 0.90,0.99")
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args()
    known = variants()
    if args.list:
        print("\n".join(known))
        return 0
    chosen = [v for v in args.variants.split(",") if v] or list(known)
    if args.ridge is not None:
        calibration._RIDGE = args.ridge
    table = embeddings()
    folds = [make_fold(seed, table) for seed in range(args.first_seed, args.first_seed + args.folds)]
    for name in chosen:
        results = [replay(known[name], fold) for fold in folds]
        at = tuple(float(x) for x in args.at.split(",")) if args.at else None
        summary = summarise([points for points, _ in results], at)  # type: ignore[arg-type]
        summary["seconds_per_fold"] = round(float(np.mean([s for _, s in results])), 1)
        print(
            json.dumps(
                {
                    "variant": name,
                    "folds": args.folds,
                    "first_seed": args.first_seed,
                    "ridge": calibration._RIDGE,
                    **summary,
                }
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
