"""The knowledge base asked its own phrasings: how it would rank questions it has never seen.

Every phrasing is asked twice. With only itself hidden, its entry is still there: a question in
scope, and a right top answer is a success. With its whole entry hidden, nothing is right to
answer: an out-of-scope question from the KB's own domain, the hard kind real traffic brings, which
must be escalated, not answered by a neighbour. Both rankings come from one row of scores per
phrasing (the matcher scores each phrasing once; hiding is masking), so simulating a 1,000-entry KB
costs about what asking it a few thousand questions would.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from bot.kb.model import KBEntry

IntArray = NDArray[np.int64]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

# Entries kept per probe: the best, the two more a "did you mean" offers, and the next one, whose
# score tells how far the choices stand out.
TOP = 4
# Above this many phrasings, a fixed sample of them is asked (the same KB always gives the same
# sample): the simulated rates are then already tight, and loading stays quick.
MAX_PROBES = 8000
# Declined topics skipped at most per out-of-scope ranking (beyond, the ranking holds fewer entries).
MAX_DECLINED_SKIPPED = 16


class ProbeScorer(Protocol):
    """What the simulation needs of a matcher: its entries, each phrasing's entry, and entry
    scores for some of its own phrasings asked as questions, each with itself hidden."""

    entries: tuple[KBEntry, ...]
    phrasing_entry: IntArray

    def probe_entry_scores(self, phrasings: IntArray) -> Iterator[FloatArray]: ...

    def probe_out_of_scope_scores(self, phrasings: IntArray) -> Iterator[FloatArray] | None:
        """The same with each phrasing's whole entry hidden, for matchers where hiding an entry
        changes more than its own scores; None: take the entry out of the first ranking."""


@dataclass(frozen=True, slots=True)
class Ranked:
    """The best entries for each probe, best first: indices (-1 where there is none) and scores
    (NaN where there is none)."""

    entries: IntArray
    scores: FloatArray


@dataclass(frozen=True, slots=True)
class Simulation:
    """`asked[i]` is the entry of probe i's phrasing. `findable[i]`: that entry is an article with
    another phrasing, so the in-scope probe has something right to find. `declined[e]`: entry e is
    a declined topic, whose questions are only ever out-of-scope probes (real ones, from traffic)
    and which answers nobody."""

    asked: IntArray
    findable: BoolArray
    in_scope: Ranked
    out_of_scope: Ranked
    phrasings: int
    declined: BoolArray

    @property
    def size(self) -> int:
        return len(self.asked)


def sample(phrasing_entry: IntArray, *, limit: int | None = None, seed: int = 0) -> IntArray:
    """The phrasings to ask: all of them, or a fixed random sample of `limit` (MAX_PROBES)."""
    limit = MAX_PROBES if limit is None else limit
    indices = np.arange(len(phrasing_entry), dtype=np.int64)
    if len(indices) <= limit:
        return indices
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(indices, size=limit, replace=False))


def simulate(scorer: ProbeScorer, *, limit: int | None = None) -> Simulation:
    asked_phrasings = sample(scorer.phrasing_entry, limit=limit)
    asked = scorer.phrasing_entry[asked_phrasings]
    counts = np.bincount(scorer.phrasing_entry, minlength=len(scorer.entries))
    declined = np.array([entry.declined for entry in scorer.entries], dtype=bool)
    in_entries, in_scores, out_entries, out_scores = [], [], [], []
    start = 0
    rescored = scorer.probe_out_of_scope_scores(asked_phrasings)
    # Out of scope, declined topics may be taken out too (below): enough entries to fill the ranking.
    wide = TOP + 1 + min(int(declined.sum()), MAX_DECLINED_SKIPPED)
    for rows in scorer.probe_entry_scores(asked_phrasings):
        own = asked[start : start + len(rows)]
        start += len(rows)
        top_entries, top_scores = _top(rows, wide)
        in_entries.append(top_entries[:, :TOP])
        in_scores.append(top_scores[:, :TOP])
        if rescored is not None:
            top_entries, top_scores = _top(next(rescored), wide)
        # Without its entry. An article's phrasing stands for an unknown nobody declined yet, so
        # the declined topics are taken out too: the threshold must hold for the unknowns they do
        # not resemble, not lean on them. A declined question stands for an unknown that comes
        # back: only its own topic is hidden, and the others catch it as they would in service.
        visible = ~declined[np.maximum(top_entries, 0)] | declined[own][:, None]
        keep = (top_entries != own[:, None]) & (top_entries >= 0) & visible
        order = np.argsort(~keep, axis=1, kind="stable")[:, :TOP]
        kept = np.take_along_axis(keep, order, axis=1)
        out_entries.append(np.where(kept, np.take_along_axis(top_entries, order, axis=1), -1))
        out_scores.append(np.where(kept, np.take_along_axis(top_scores, order, axis=1), np.nan))
    return Simulation(
        asked=asked,
        findable=(counts[asked] >= 2) & ~declined[asked],
        in_scope=Ranked(_ints(in_entries), _floats(in_scores)),
        out_of_scope=Ranked(_ints(out_entries), _floats(out_scores)),
        phrasings=len(scorer.phrasing_entry),
        declined=declined,
    )


def _ints(parts: list[IntArray]) -> IntArray:
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros((0, TOP), dtype=np.int64)


def _floats(parts: list[FloatArray]) -> FloatArray:
    return np.concatenate(parts).astype(np.float64) if parts else np.zeros((0, TOP), dtype=np.float64)


def _top(rows: FloatArray, k: int) -> tuple[IntArray, FloatArray]:
    """The k best entries of each row, best first; -inf scores count as absent."""
    count = rows.shape[1]
    if count > k:
        best = np.argpartition(-rows, k - 1, axis=1)[:, :k]
    else:
        best = np.tile(np.arange(count), (len(rows), 1))
    scores = np.take_along_axis(rows, best, axis=1)
    order = np.argsort(-scores, axis=1, kind="stable")
    best = np.take_along_axis(best, order, axis=1)
    scores = np.take_along_axis(scores, order, axis=1)
    present = np.isfinite(scores)
    entries = np.where(present, best, -1).astype(np.int64)
    values = np.where(present, scores, np.nan)
    if count < k:
        pad = k - count
        entries = np.pad(entries, ((0, 0), (0, pad)), constant_values=-1)
        values = np.pad(values, ((0, 0), (0, pad)), constant_values=np.nan)
    return entries, values.astype(np.float64)


@dataclass(frozen=True, slots=True)
class Confusion:
    """Two entries whose phrasings the KB answers with each other."""

    first: str
    second: str
    crossed: int
    """Phrasings of either entry whose best match (with only themselves hidden) is the other."""
    phrasings: int
    """Phrasings of the two entries together that were asked."""


def confusable_pairs(
    simulation: Simulation, entries: Sequence[KBEntry], *, limit: int = 5
) -> list[Confusion]:
    """The entry pairs whose phrasings most often find the other entry first: near-twins that a
    team should merge, or rewrite so each says what sets it apart."""
    mask = simulation.findable & (simulation.in_scope.entries[:, 0] >= 0)
    own = simulation.asked[mask]
    found = simulation.in_scope.entries[mask, 0]
    crossed: Counter[tuple[int, int]] = Counter()
    for a, b in zip(own.tolist(), found.tolist(), strict=True):
        # An article shadowed by a declined topic is the decline's known cost (its replay said so),
        # not two articles to merge or rewrite.
        if a != b and not (entries[a].declined or entries[b].declined):
            crossed[(min(a, b), max(a, b))] += 1
    asked = np.bincount(simulation.asked, minlength=len(entries))
    ranked = sorted(crossed.items(), key=lambda item: (-item[1], item[0]))
    return [
        Confusion(entries[a].id, entries[b].id, count, int(asked[a] + asked[b]))
        for (a, b), count in ranked[:limit]
        if count >= 2
    ]
