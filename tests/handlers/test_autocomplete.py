"""Autocomplete's suggestions (`bot/handlers/autocomplete.py`); Discord asking for them is tested in
tests/adapters/discord/test_commands.py."""

from __future__ import annotations

from bot.handlers.autocomplete import complete_names


def test_component_completion_keeps_earlier_words_and_skips_names_already_chosen() -> None:
    known = [("api", ("rest api",)), ("payments", ("billing",)), ("dashboard", ("web app",))]
    assert complete_names("", known) == [("api", "api"), ("payments", "payments"), ("dashboard", "dashboard")]
    assert complete_names("api,", known) == [
        ("api,payments", "api,payments"),
        ("api,dashboard", "api,dashboard"),
    ]
    assert complete_names("payments a", known) == [
        ("payments api", "payments api"),
        ("payments dashboard", "payments dashboard"),
    ]
    assert complete_names("zzz", known) == []
