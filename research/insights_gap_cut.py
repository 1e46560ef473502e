"""How far apart two groups of unanswered questions must be to be different knowledge gaps: the
distance cut of `bot.insights.gaps` (average linkage over cosine distances), per topic space.

Banking77's training phrasings only (`kb_examples_full.jsonl`; `queries.jsonl` is never read): a
quarter of the intents is left out of the KB and stands in for the gaps; the KB is the other
intents' ten phrasings each (`kb_examples_10.jsonl`); up to 600 of the left-out intents' training
phrasings are clustered. For each cut: topics of two questions or more, the share of questions in
one, their purity (the share of the majority intent), how many left-out intents have a topic of
their own (three questions or more, 60% pure), and the adjusted Rand index against the intents.

    .venv/bin/python -m research.insights_gap_cut lexical
    .venv/bin/python -m research.insights_gap_cut semantic     # needs the semantic extra

Figures and the decision: research/notes/insights_gaps.md.
"""

from __future__ import annotations

import json
import random
import sys
from collections import Counter
from pathlib import Path

import numpy as np
from scipy.cluster.hierarchy import fcluster, linkage
from scipy.spatial.distance import squareform
from sklearn.metrics import adjusted_rand_score

from bot.insights.kb_view import LexicalSpace, SemanticSpace, TopicSpace
from bot.kb.lexical import LexicalMatcher
from bot.kb.model import KBEntry

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77"
CUTS = (0.3, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9)
SEEDS = (1, 2, 3)


def _load(name: str) -> list[dict[str, str]]:
    return [json.loads(line) for line in (DATA / name).read_text().splitlines() if line.strip()]


def _space(kind: str, entries: list[KBEntry]) -> TopicSpace:
    if kind == "semantic":
        from bot.kb.semantic import SemanticMatcher

        return SemanticSpace(SemanticMatcher(entries, calibrate=False))
    return LexicalSpace.of(LexicalMatcher(entries, calibrate=False))


def main(kind: str) -> None:
    kb_examples = _load("kb_examples_10.jsonl")
    training = _load("kb_examples_full.jsonl")
    labels = sorted({example["label"] for example in kb_examples})
    for seed in SEEDS:
        rng = random.Random(seed)
        left_out = set(rng.sample(labels, len(labels) // 4))
        phrasings: dict[str, list[str]] = {}
        for example in kb_examples:
            if example["label"] not in left_out:
                phrasings.setdefault(example["label"], []).append(example["text"])
        entries = [
            KBEntry(id=label.replace("_", "-")[:64], title=label, questions=tuple(texts), answer="-")
            for label, texts in phrasings.items()
        ]
        gap_questions = [example for example in training if example["label"] in left_out]
        rng.shuffle(gap_questions)
        gap_questions = gap_questions[:600]
        vectors = _space(kind, entries).vectors([q["text"] for q in gap_questions]).astype(float)
        placed = np.linalg.norm(vectors, axis=1) > 0
        vectors = vectors[placed]
        truth = [q["label"] for q, kept in zip(gap_questions, placed, strict=True) if kept]
        distances = np.clip(1 - vectors @ vectors.T, 0, 2)
        np.fill_diagonal(distances, 0)
        tree = linkage(squareform(distances, checks=False), method="average")
        for cut in CUTS:
            assigned = fcluster(tree, t=cut, criterion="distance")
            sizes = Counter(assigned.tolist())
            topics = [topic for topic, size in sizes.items() if size >= 2]
            in_topics = sum(sizes[topic] for topic in topics)
            majority = 0
            found_intents = set()
            for topic in topics:
                intent, count = Counter(
                    t for t, a in zip(truth, assigned, strict=True) if a == topic
                ).most_common(1)[0]
                majority += count
                if count >= 3 and count / sizes[topic] >= 0.6:
                    found_intents.add(intent)
            agreement = adjusted_rand_score(truth, assigned)
            print(
                f"{kind} seed {seed} cut {cut:.2f}: topics {len(topics):3d}, in a topic "
                f"{in_topics / len(truth):.2f}, purity {majority / max(in_topics, 1):.2f}, "
                f"intents found {len(found_intents)}/{len(left_out)}, ARI {agreement:.3f}"
            )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "lexical")
