"""Splitting long texts, for any text: every chunk within its limit, no character lost, no empty
chunk, and code fences closed at a split and reopened after it."""

from __future__ import annotations

from hypothesis import assume, given
from hypothesis import strategies as st

from bot.adapters.text import FENCE, split_text
from tests.strategies import long_texts, same_characters, texts

limits = st.integers(min_value=20, max_value=4096)
any_text = st.one_of(texts(), long_texts())


@given(any_text, limits)
def test_every_chunk_is_within_the_limit_and_not_empty(text: str, limit: int) -> None:
    chunks = split_text(text, limit)
    assert all(len(chunk) <= limit for chunk in chunks)
    if len(chunks) > 1:
        assert all(chunk.strip() for chunk in chunks), chunks
    if len(text) <= limit:
        assert chunks == ([text] if text else [])


@given(any_text, limits)
def test_no_character_is_lost(text: str, limit: int) -> None:
    assert same_characters(text, split_text(text, limit))


@given(any_text, limits)
def test_code_stays_code_across_a_split(text: str, limit: int) -> None:
    """Every chunk but the last has its fences paired; the last is open only when the text is.
    (A run of backticks longer than half a chunk cannot stay whole; nobody writes one.)"""
    assume("`" * (limit // 2) not in text)
    chunks = split_text(text, limit)
    assert all(chunk.count(FENCE) % 2 == 0 for chunk in chunks[:-1]), chunks
    if chunks:
        assert chunks[-1].count(FENCE) % 2 == text.count(FENCE) % 2


def test_a_run_of_tabs_after_a_break_does_not_make_an_empty_chunk() -> None:
    """Found by the property above: the break took the spaces, the tabs made a blank message."""
    chunks = split_text("x" * 15 + " " + "\t" * 30 + "y", 20)
    assert chunks == ["x" * 15, "\t" * 10 + "y"]


def test_a_split_never_cuts_a_code_fence_in_two() -> None:
    """Found by the property above: a hard cut between the backticks of a fence lost the code block."""
    chunks = split_text("x" * 18 + "```\ncode\n```", 20)
    assert chunks[0] == "x" * 18 and chunks[1].startswith("```")
