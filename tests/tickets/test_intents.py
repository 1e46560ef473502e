"""Pure readings of a customer's words: asking for a person or a ticket, frustration, repeats, chatter."""

from __future__ import annotations

import pytest

from bot.tickets import intents


@pytest.mark.parametrize(
    "text",
    [
        "can I talk to a human",
        "I want to speak with a real person please",
        "human",
        "agent please",
        "please connect me with an agent",
        "is there a person there I can talk to?",
        "escalate this",
    ],
)
def test_asking_for_a_person(text: str) -> None:
    assert intents.asks_for_person(text)


@pytest.mark.parametrize(
    "text", ["how do I reset my api key", "my user agent string is wrong", "the person field is empty"]
)
def test_not_asking_for_a_person(text: str) -> None:
    assert not intents.asks_for_person(text)


def test_asking_for_a_ticket() -> None:
    assert intents.asks_for_ticket("could you open a ticket for my broken export?")
    assert intents.asks_for_ticket("please file a support request")
    assert not intents.asks_for_ticket("where do I see my ticket number?")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("this is useless", "strong negative words"),
        ("THE EXPORT IS BROKEN AGAIN", "shouting"),
        ("why doesn't it work!!!", "repeated exclamation marks"),
        ("seriously????", "repeated exclamation marks"),
    ],
)
def test_frustration_and_why(text: str, why: str) -> None:
    assert intents.frustration(text) == why


def test_calm_text_and_short_capitals_are_not_frustration() -> None:
    assert intents.frustration("How do I export to CSV?") is None
    assert intents.frustration("API SSO") is None


def test_the_same_question_reworded_slightly_is_a_repeat() -> None:
    assert intents.is_repeat("My CSV export failed", ["my csv export failed!"])
    assert not intents.is_repeat("where are my invoices", ["my csv export failed"])
    assert not intents.is_repeat("ok", ["ok"]), "too short to call a repeat"


@pytest.mark.parametrize(
    ("text", "support"),
    [
        ("how do I rotate my key", True),
        ("my export failed", True),
        ("I need a new API key", True),
        ("anyone else seeing 500s?", True),
        ("thanks!", False),
        ("lol same", False),
        ("see you tomorrow", False),
    ],
)
def test_what_reads_as_a_support_request(text: str, support: bool) -> None:
    assert intents.looks_like_support_request(text) is support
