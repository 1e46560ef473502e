"""Answer quality in production: how often an answer was followed by "I still need help" or a ticket,
per article and overall, beside the precision the knowledge base expects at its operating point.

An answer that was followed is not proof of a wrong answer (the customer may need a person anyway),
so the share is an upper bound on how often answers were wrong. An article "misleads" when even the
most favourable reading of its figures (the upper end of a 95% Wilson interval on its precision)
stays below the expectation: a few unlucky answers do not flag it.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

from bot.insights.figures import Answers, Share, article_of

Z = 1.96  # a 95% two-sided interval
MIN_ANSWERS = 3
"""Fewer answers than this say nothing about an article."""


@dataclass(frozen=True, slots=True)
class ArticleQuality:
    entry_id: str
    followed: Share
    """Answers followed by a ticket, of this article's answers."""
    misleads: bool


@dataclass(frozen=True, slots=True)
class Quality:
    overall: Share
    expected_precision: float | None
    expectation: str
    """Where `expected_precision` comes from (the KB's simulation, or the ANSWER_PRECISION setting)."""
    articles: tuple[ArticleQuality, ...]
    """Most-followed first."""
    below_expectation: bool
    """The answers as a whole are clearly less precise than expected."""

    @property
    def precision(self) -> float | None:
        """What production suggests: answers not followed by a ticket, of all answers (a lower bound)."""
        value = self.overall.value
        return None if value is None else 1.0 - value

    @property
    def misleading(self) -> tuple[ArticleQuality, ...]:
        return tuple(article for article in self.articles if article.misleads)


def wilson_upper(successes: int, total: int, z: float = Z) -> float:
    """The upper end of the Wilson score interval for a proportion."""
    if total == 0:
        return 1.0
    p = successes / total
    denominator = 1 + z * z / total
    centre = p + z * z / (2 * total)
    margin = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    return min(1.0, (centre + margin) / denominator)


def _clearly_below(followed: Share, expected: float | None) -> bool:
    if expected is None or followed.whole < MIN_ANSWERS:
        return False
    return wilson_upper(followed.whole - followed.part, followed.whole) < expected


def assess(answers: Answers, *, expected_precision: float | None, expectation: str) -> Quality:
    """Answers younger than a day that no ticket followed yet are left out: they are not settled."""
    settled = [row for row in answers.answered if row.id not in answers.recent]
    total: Counter[str] = Counter()
    followed: Counter[str] = Counter()
    for row in settled:
        entry = article_of(row.band, row.top_entry_id, row.outcome) or "?"
        total[entry] += 1
        followed[entry] += row.id in answers.followed
    articles = tuple(
        ArticleQuality(
            entry_id=entry,
            followed=Share(followed[entry], total[entry]),
            misleads=_clearly_below(Share(followed[entry], total[entry]), expected_precision),
        )
        for entry in sorted(total, key=lambda e: (-followed[e], -total[e], e))
    )
    overall = Share(sum(followed.values()), len(settled))
    return Quality(
        overall=overall,
        expected_precision=expected_precision,
        expectation=expectation,
        articles=articles,
        below_expectation=_clearly_below(overall, expected_precision),
    )
