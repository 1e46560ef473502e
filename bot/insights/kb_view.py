"""What the insights read of the knowledge base: a space to place questions in (to cluster them into
topics), the article nearest to a question, and the answered precision the KB expects.

The space is the live matcher's own: sentence embeddings when the semantic matcher runs, else the
lexical matcher's word weights (stems weighted by how rare they are in the KB). Read-only: nothing
here changes the knowledge base.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from bot.core.context import KnowledgeBase
from bot.kb.knowledge_base import KnowledgeBase as LoadedKB
from bot.kb.knowledge_base import KnowledgeBaseHolder
from bot.kb.lexical import LexicalMatcher, stem, words
from bot.kb.matching import decide
from bot.kb.model import Band
from bot.kb.semantic import SemanticMatcher

# Distance cuts for average-linkage clustering (1 - cosine), chosen on Banking77's training phrasings
# with a quarter of its intents left out of the KB as stand-in gaps (research/notes/insights_gaps.md).
LEXICAL_CUT = 0.7
SEMANTIC_CUT = 0.4

_MENTION = re.compile(r"<[@#!][^<>\s]{0,80}>")
# Greetings, fillers and the words of asking for help say nothing about a topic.
_FILLER = frozenset(
    {
        *("a", "an", "and", "are", "at", "be", "but", "can", "could", "do", "does", "for", "from", "get"),
        *("got", "have", "hello", "hey", "hi", "how", "i", "im", "is", "it", "its", "me", "my", "no"),
        *("not", "of", "on", "or", "our", "please", "pls", "so", "thank", "thanks", "that", "the"),
        *("there", "this", "to", "u", "want", "was", "we", "what", "when", "where", "which", "who"),
        *("why", "will", "with", "would", "you", "your", "about", "question", "help", "need", "just"),
        *("know", "like", "any", "anyone", "some", "also", "still", "really", "problem", "issue"),
    }
)


class TopicSpace(Protocol):
    """Questions as unit vectors: close vectors are questions about the same thing."""

    @property
    def name(self) -> str: ...

    @property
    def cut(self) -> float:
        """The cosine distance beyond which two groups of questions are different topics."""
        ...

    def vectors(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True, slots=True)
class LexicalSpace:
    """Stems weighted as the lexical matcher weighs them; a stem the KB never uses weighs as much as
    its rarest (it is what a gap is about). Fillers are left out, and mention tokens (someone's id).
    Without a KB (`idf` empty) every word weighs the same."""

    idf: dict[str, float]
    unknown: float
    name: str = "lexical"
    cut: float = LEXICAL_CUT

    @classmethod
    def of(cls, matcher: LexicalMatcher) -> LexicalSpace:
        return cls(dict(matcher.idf), matcher.unknown_idf)

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        rows = [
            {stem(word) for word in words(_MENTION.sub(" ", text)) if word not in _FILLER and len(word) > 1}
            for text in texts
        ]
        vocabulary: dict[str, int] = {}
        for terms in rows:
            for term in terms:
                vocabulary.setdefault(term, len(vocabulary))
        matrix = np.zeros((len(texts), max(len(vocabulary), 1)), dtype=np.float32)
        for i, terms in enumerate(rows):
            for term in terms:
                matrix[i, vocabulary[term]] = self.idf.get(term, self.unknown)
        return _unit_rows(matrix)


@dataclass(frozen=True, slots=True)
class SemanticSpace:
    matcher: SemanticMatcher
    name: str = "semantic"
    cut: float = SEMANTIC_CUT

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 1), dtype=np.float32)
        return _unit_rows(self.matcher.embed(list(texts)))


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1; an all-zero row (nothing to go by) stays zero."""
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    unit: np.ndarray = np.divide(matrix, norms, out=np.zeros_like(matrix), where=norms > 0)
    return unit


def _loaded(kb: KnowledgeBase) -> LoadedKB | None:
    return kb.current if isinstance(kb, KnowledgeBaseHolder) else kb if isinstance(kb, LoadedKB) else None


def topic_space(kb: KnowledgeBase) -> TopicSpace:
    """The space of the matcher answering now."""
    loaded = _loaded(kb)
    matcher = loaded.matcher if loaded is not None else None
    if isinstance(matcher, SemanticMatcher):
        return SemanticSpace(matcher)
    if isinstance(matcher, LexicalMatcher):
        return LexicalSpace.of(matcher)
    return LexicalSpace({}, 1.0)


@dataclass(frozen=True, slots=True)
class Expectation:
    precision: float | None
    source: str


def expected_precision(kb: KnowledgeBase, *, setting: float) -> Expectation:
    """The answered precision `kb check` reports for the KB's operating point (simulated on its own
    phrasings); the ANSWER_PRECISION target when the KB could not simulate one."""
    loaded = _loaded(kb)
    expected = loaded.operating_point.expected if loaded is not None else None
    if expected is not None and expected.precision is not None:
        return Expectation(expected.precision, "what kb check expects at the operating point")
    return Expectation(setting, "the ANSWER_PRECISION target (the KB could not simulate its own)")


@dataclass(frozen=True, slots=True)
class Nearest:
    entry_id: str
    title: str
    confidence: float
    too_far: bool = False
    """Held back by the closeness floor (traffic mostly without an entry): answered or offered as
    a "did you mean" but for it, the question reads like the article yet is farther from it than
    its own phrasings, often a near-twin it does not answer."""

    @property
    def sureness(self) -> str:
        """How sure the matcher is, in words for a gap line."""
        held = ", but farther from it than its own phrasings" if self.too_far else ""
        return f"{self.confidence:.0%} sure{held}"


def nearest_article(kb: KnowledgeBase, question: str) -> Nearest | None:
    loaded = _loaded(kb)
    if loaded is None:  # a knowledge base that only answers: nothing says what held it back
        verdict = kb.ask(question)
        top = verdict.candidates[0] if verdict.candidates else None
        return Nearest(top.entry.id, top.entry.title, top.confidence) if top is not None else None
    # One snapshot, so its decision and its thresholds agree across a reload.
    decision = loaded.ask(question)
    if not decision.candidates:
        return None
    best, floor = decision.candidates[0], loaded.thresholds
    # The floor holds back a "did you mean" too, not only a sure answer: asked of the same
    # candidates without it, would the bot have done anything but escalate? (An escalation keeps
    # every article it ranked; one a declined topic caught is that topic's, not the floor's.)
    without = decide(decision.candidates, replace(floor, closeness=None))
    too_far = (
        decision.declined is None and decision.band is Band.ESCALATE and without.band is not Band.ESCALATE
    )
    return Nearest(best.entry.id, best.entry.title, best.confidence, too_far=too_far)
