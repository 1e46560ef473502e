"""Where a KB's operating point binds: for each answer threshold, what the KB's own simulation
expects (coverage, answered precision at the assumed unknown share, the simulated out-of-scope
leak and its upper bound) beside what the set's queries give there (coverage, precision,
out-of-scope escalated). Shows which of the two constraints (precision or the escape bound) holds
the chosen point where it is, and how far the real figures would have allowed it to go.

Reads the development set's `queries.jsonl`, so it is a diagnosis, never a way to choose constants.

    .venv/bin/python -m research.kb_point_binding banking77 semantic
    .venv/bin/python -m research.kb_point_binding hwu64 lexical

Findings: research/notes/kb_operating_point.md (stop 27).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from bot.kb import operating_point
from bot.kb.eval import entries_from_examples, read_jsonl
from bot.kb.knowledge_base import KnowledgeBase
from bot.kb.matching import answer_confidence

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def main(set_name: str, matcher: str) -> None:
    folder = DATA / set_name
    examples = read_jsonl(folder / "kb_examples_10.jsonl", labels_required=True)
    queries = read_jsonl(folder / "queries.jsonl", labels_required=False)
    kb = KnowledgeBase.build(entries_from_examples(examples), matcher=matcher)
    print(kb.operating_point.describe())
    known = {entry.id for entry in kb.entries}
    ranked = [kb.matcher.rank(query.text, limit=3) for query in queries]
    confidence = np.array([answer_confidence(found) for found in ranked])
    labels = [query.label if query.label in known else None for query in queries]
    right = np.array(
        [
            bool(found) and label is not None and found[0].entry.id == label
            for found, label in zip(ranked, labels, strict=True)
        ]
    )
    in_scope = np.array([label is not None for label in labels])

    simulation = kb.matcher.simulation
    if simulation is None:
        print("too small to simulate")
        return
    inside, outside = operating_point.outcomes(
        simulation, kb.matcher.calibration, kb.matcher.choice_calibration
    )
    bound = operating_point._EscapeBound(outside.cluster)
    share = kb.operating_point.unknown_share
    print(
        f"answer | simulated: coverage, precision (at {share:.0%} unknown), leak, leak bound"
        " | real: coverage, precision, out-of-scope escalated"
    )
    for answer in operating_point.ANSWER_GRID:
        answered_in = inside.confidence >= answer
        answered_out = outside.confidence >= answer
        coverage = float((answered_in & inside.right).mean())
        wrong = float((answered_in & ~inside.right).mean())
        leak = float(answered_out.mean())
        precision = operating_point._precision(coverage, wrong, leak, share)
        leak_bound = float(bound.upper(answered_out[:, None])[0])
        answered = confidence >= answer
        real_coverage = (answered & right & in_scope).sum() / max(in_scope.sum(), 1)
        real_precision = (answered & right).sum() / max(answered.sum(), 1)
        real_escalated = 1 - (answered & ~in_scope).sum() / max((~in_scope).sum(), 1)
        shown = "  n/a" if precision is None else f"{precision:.3f}"
        print(
            f"{answer:.2f}   | {coverage:.3f} {shown} {leak:.3f} {leak_bound:.3f}"
            f" | {real_coverage:.3f} {real_precision:.3f} {real_escalated:.3f}"
        )


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
