"""Knowledge gaps: the period's escalated and "none of these" questions, grouped into topics the
knowledge base does not cover, ranked by how many people an article would have helped.

Average-linkage agglomerative clustering over cosine distances, cut at a distance (the space's
`cut`), so the number of topics follows the questions instead of being fixed in advance.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from bot.insights.kb_view import Nearest, TopicSpace

MAX_QUESTIONS = 1000
"""The newest questions clustered (the distance matrix grows with the square of their number)."""
MIN_PEOPLE = 2
"""A topic one person asked about is their problem, not a gap."""
EXAMPLES = 3


@dataclass(frozen=True, slots=True)
class GapQuestion:
    decision_id: int
    actor_key: str
    text: str


@dataclass(frozen=True, slots=True)
class Gap:
    size: int
    """Questions in the topic."""
    people: int
    """Different people who asked them."""
    examples: tuple[str, ...]
    """Up to three of the questions, the most typical first (raw: clip before showing)."""
    nearest: Nearest | None
    """The existing article closest to the topic, and how sure the matcher is of it."""
    anchor: int = 0
    """The decision id of its most typical question: how staff name the gap to teach from it."""
    members: tuple[GapQuestion, ...] = ()
    """Every question in the topic, the ones a lesson from the gap replays."""

    def has(self, decision_id: int) -> bool:
        return any(q.decision_id == decision_id for q in self.members)


def find_gaps(
    questions: Sequence[GapQuestion],
    space: TopicSpace,
    *,
    nearest: Callable[[str], Nearest | None],
    limit: int = 10,
) -> list[Gap]:
    """Topics asked by at least `MIN_PEOPLE` people, most people first."""
    questions = list(questions)[-MAX_QUESTIONS:]
    if len({q.actor_key for q in questions}) < MIN_PEOPLE:
        return []
    vectors = space.vectors([q.text for q in questions])
    placed = np.flatnonzero(np.linalg.norm(vectors, axis=1) > 0)  # a question of fillers goes nowhere
    if len(placed) < MIN_PEOPLE:
        return []
    kept = [questions[i] for i in placed.tolist()]
    unit = vectors[placed].astype(np.float64)
    distances = np.clip(1.0 - unit @ unit.T, 0.0, 2.0)
    np.fill_diagonal(distances, 0.0)
    # scipy is loaded only when there are questions to cluster: not at every start of the bot.
    from scipy.cluster.hierarchy import fcluster, linkage
    from scipy.spatial.distance import squareform

    tree = linkage(squareform(distances, checks=False), method="average")
    labels = fcluster(tree, t=space.cut, criterion="distance")
    gaps = []
    for label in np.unique(labels).tolist():
        members = np.flatnonzero(labels == label)
        people = {kept[i].actor_key for i in members.tolist()}
        if len(people) < MIN_PEOPLE:
            continue
        typical = _typical(members, unit, kept)
        examples = tuple(q.text for q in typical)
        gaps.append(
            Gap(
                len(members),
                len(people),
                examples,
                nearest(examples[0]),
                anchor=typical[0].decision_id,
                members=tuple(kept[i] for i in members.tolist()),
            )
        )
    gaps.sort(key=lambda gap: (-gap.people, -gap.size, gap.examples))
    return gaps[:limit]


def _typical(
    members: np.ndarray, unit: np.ndarray, questions: Sequence[GapQuestion]
) -> tuple[GapQuestion, ...]:
    """The questions closest to the topic's centre, different people's first, no text twice."""
    centre = unit[members].mean(axis=0)
    order = members[np.argsort(-(unit[members] @ centre), kind="stable")].tolist()
    chosen: list[GapQuestion] = []
    seen_people: set[str] = set()
    seen_texts: set[str] = set()
    for first_pass in (True, False):
        for i in order:
            question = questions[i]
            key = " ".join(question.text.casefold().split())
            if key in seen_texts or (first_pass and question.actor_key in seen_people):
                continue
            chosen.append(question)
            seen_texts.add(key)
            seen_people.add(question.actor_key)
            if len(chosen) == EXAMPLES:
                return tuple(chosen)
    return tuple(chosen)
