"""What a person typed, quoted back: one line, no control of theirs, cut with "…"."""

from __future__ import annotations

from bot.core.echo import echo


def test_an_invisible_character_after_a_word_leaves_no_space_at_the_end_of_the_quote() -> None:
    assert echo("all \u200b", 20) == "all"
    assert echo("\u200b all\u200b \u200b", 20) == "all"


def test_line_breaks_and_tabs_become_single_spaces() -> None:
    assert echo("reset\n\tmy   key", 40) == "reset my key"


def test_a_long_text_is_cut_with_an_ellipsis_within_the_limit() -> None:
    shown = echo("12345678901234567890123", 20)
    assert shown == "1234567890123456789…" and len(shown) == 20
