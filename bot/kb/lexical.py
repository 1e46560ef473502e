"""The default matcher: words weighted by how rare they are in this KB, typo-tolerant through
rapidfuzz, scored against every phrasing through an inverted index, with no model to download."""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from functools import lru_cache

import numpy as np
from rapidfuzz import fuzz, process

from bot.kb.calibration import Calibration
from bot.kb.matching import PhrasingMatcher
from bot.kb.model import KBEntry, Thresholds
from bot.kb.simulation import FloatArray, IntArray

_WORD = re.compile(r"[a-z0-9]+")
_SUFFIXES = ("ing", "ed", "es", "s", "ly")
# A word the KB never uses counts like its rarest word: a question full of unknown words is
# probably about something else, and its confidence should drop accordingly.
_TYPO_CUTOFF = 80
_MIN_TYPO_LENGTH = 4
# Phrasings re-scored character by character (rapidfuzz) after the word-level pass.
_REFINE = 48
_WORD_WEIGHT = 0.75


@lru_cache(maxsize=65536)  # asked for every word of every question; words repeat
def stem(word: str) -> str:
    """A light suffix stripper, enough to make 'activating', 'activated' and 'activate' meet."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    if word.endswith("e") and len(word) > 3:
        word = word[:-1]
    return word


def words(text: str) -> list[str]:
    return _WORD.findall(text.casefold().replace("'", ""))


def normalise(text: str) -> str:
    return " ".join(words(text))


class LexicalMatcher(PhrasingMatcher):
    name = "lexical"
    # Only for KBs too small to simulate (bot/kb/operating_point.py chooses for the others): the
    # median of the points chosen on 16 folds of Banking77's training phrasings (bench.kb_thresholds).
    default_thresholds = Thresholds(answer=0.95, clarify=0.85)
    prior = Calibration(bias=-6.0, weights=(8.0, 10.0))
    # Each probe is scored twice (with its phrasing hidden, and rescored without its entry) at
    # ~0.2 ms each: 4,000 keep a 1,000 x 8 KB's load near 3 s, and its rates within about +-1%.
    max_probes = 4000

    def __init__(self, entries: Sequence[KBEntry], *, calibrate: bool = True) -> None:
        super().__init__(entries)
        self._normalised = [normalise(p) for p in self.phrasings]
        stems_of = [{stem(w) for w in words(p)} for p in self.phrasings]
        # Weights learned from the KB: a word in every entry says little, one in a single entry a lot.
        entry_stems: dict[str, set[int]] = defaultdict(set)
        for index, stems in enumerate(stems_of):
            for s in stems:
                entry_stems[s].add(int(self.phrasing_entry[index]))
        # Stems only one entry uses: while that entry is hidden (an out-of-scope stand-in), they are
        # words the KB does not know, as they would be for a real question about something else.
        self._only_in = {s: next(iter(found)) for s, found in entry_stems.items() if len(found) == 1}
        self._entries_of = {s: frozenset(found) for s, found in entry_stems.items()}
        count = max(len(self.entries), 1)
        self.idf = {s: math.log(1 + count / len(found)) for s, found in entry_stems.items()}
        self.unknown_idf = math.log(1 + count)
        norms = np.array([math.sqrt(sum(self.idf[s] ** 2 for s in stems)) or 1.0 for stems in stems_of])
        self._norms = norms
        self._norms_cache: tuple[int, FloatArray] | None = None
        self._stems_of_entry: dict[int, set[str]] = defaultdict(set)
        for index, stems in enumerate(stems_of):
            self._stems_of_entry[int(self.phrasing_entry[index])] |= stems
        postings: dict[str, list[int]] = defaultdict(list)
        for index, stems in enumerate(stems_of):
            for s in stems:
                postings[s].append(index)
        self._postings = {
            s: (np.array(ix, dtype=np.int64), self.idf[s] / norms[ix]) for s, ix in postings.items()
        }
        self._surface: dict[str, str] = {}
        for phrase in self.phrasings:
            for w in words(phrase):
                self._surface.setdefault(w, stem(w))
        self._surface_words = list(self._surface)
        self._correct = lru_cache(maxsize=8192)(self._correct_uncached)
        if calibrate:
            self.calibrate()

    def _correct_uncached(self, word: str) -> tuple[str, float] | None:
        """The KB word a misspelt word most likely means, and how sure we are of it."""
        if len(word) < _MIN_TYPO_LENGTH or not self._surface_words:
            return None
        found = process.extractOne(word, self._surface_words, scorer=fuzz.ratio, score_cutoff=_TYPO_CUTOFF)
        if found is None:
            return None
        return self._surface[found[0]], found[1] / 100.0

    def _correct_without(self, word: str, hidden: int) -> tuple[str, float] | None:
        """`_correct` for a KB whose entry `hidden` is left out: its own words are not known."""
        if len(word) < _MIN_TYPO_LENGTH or not self._surface_words:
            return None
        for surface, score, _ in process.extract(
            word, self._surface_words, scorer=fuzz.ratio, score_cutoff=_TYPO_CUTOFF, limit=8
        ):
            corrected = self._surface[surface]
            if self._only_in.get(corrected) != hidden:
                return corrected, score / 100.0
        return None

    def _idf_without(self, s: str, hidden: int) -> float:
        """A stem's weight in the KB without entry `hidden`: a word it shares with one other
        entry becomes as telling as a word of that entry alone."""
        found = self._entries_of[s]
        if hidden not in found:
            return self.idf[s]
        return math.log(1 + max(len(self.entries) - 1, 1) / max(len(found) - 1, 1))

    def _norms_without(self, hidden: int) -> FloatArray:
        """Every phrasing's norm in the KB without entry `hidden` (its shared words weigh more)."""
        cached = self._norms_cache
        if cached is not None and cached[0] == hidden:
            return cached[1]
        squared = self._norms**2
        for s in self._stems_of_entry.get(hidden, ()):
            change = self._idf_without(s, hidden) ** 2 - self.idf[s] ** 2
            if s in self._postings and change > 1e-12:
                ix = self._postings[s][0]
                squared[ix] += change
        norms: FloatArray = np.sqrt(squared)
        self._norms_cache = (hidden, norms)
        return norms

    def query_terms(self, question: str, hidden: int | None = None) -> tuple[dict[str, float], float]:
        """Query stems with their weights, and the query's norm (unknown words included).
        `hidden`: score as if that entry were not in the KB (the out-of-scope probes)."""
        terms: dict[str, float] = {}
        norm2 = 0.0
        for w in dict.fromkeys(words(question)):
            s = stem(w)
            if s in self.idf and (hidden is None or self._only_in.get(s) != hidden):
                weight = self.idf[s] if hidden is None else self._idf_without(s, hidden)
            else:
                corrected = self._correct(w) if hidden is None else self._correct_without(w, hidden)
                if corrected is None:
                    norm2 += self.unknown_idf**2
                    continue
                s, sure = corrected
                weight = (self.idf[s] if hidden is None else self._idf_without(s, hidden)) * sure
            if s not in terms:
                terms[s] = weight
                norm2 += weight**2
        return terms, math.sqrt(norm2)

    def phrasing_scores(self, question: str, hidden: int | None = None) -> FloatArray:
        scores = np.zeros(len(self.phrasings))
        terms, norm = self.query_terms(question, hidden)
        if not terms:
            return scores
        norms = self._norms_without(hidden) if hidden is not None else None
        for s, weight in terms.items():
            ix, contribution = self._postings[s]
            if hidden is not None and norms is not None:
                # The phrasing side weighs the stem as the smaller KB would, too.
                contribution = self._idf_without(s, hidden) / norms[ix]
            scores[ix] += weight * contribution
        scores /= norm
        if hidden is not None:
            scores[self.phrasing_entry == hidden] = 0.0
        # Character-level similarity on the strongest candidates catches word order, split words
        # and the typos the word pass could not place.
        touched = np.flatnonzero(scores)
        if len(touched) > _REFINE:
            touched = touched[np.argpartition(-scores[touched], _REFINE - 1)[:_REFINE]]
        text = normalise(question)
        fuzzy = process.cdist([text], [self._normalised[i] for i in touched], scorer=fuzz.token_sort_ratio)
        scores *= _WORD_WEIGHT
        scores[touched] += (1 - _WORD_WEIGHT) * fuzzy[0] / 100.0
        return scores

    def probe_out_of_scope_scores(self, phrasings: IntArray) -> Iterator[FloatArray]:
        """Entry scores for each phrasing asked of the KB without its whole entry. Scored again,
        not masked: the entry's own words must become words the KB does not know."""
        block: list[FloatArray] = []
        for phrasing in phrasings.tolist():
            hidden = int(self.phrasing_entry[phrasing])
            scores = self.phrasing_scores(self.phrasings[phrasing], hidden)
            scores[self.phrasing_entry == hidden] = -np.inf
            block.append(self.entry_scores(scores))
            if len(block) == 256:
                yield np.vstack(block)
                block = []
        if block:
            yield np.vstack(block)
