"""Readings of a customer's words: asking for a person or a ticket, frustration, thanks, repeats,
chatter. First the pure readings, then what the bot does with them in a conversation."""

from __future__ import annotations

import pytest

from bot.tickets import intents
from tests.harness import STAFF_CHANNEL, BotHarness
from tests.tickets.conversation import tickets


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
    "text", ["yes", "Yes!", "yes thanks", "ok, thank you!", "yep all good", "yes, solved", "that fixed it"]
)
def test_saying_it_is_solved(text: str) -> None:
    assert intents.says_solved(text)


@pytest.mark.parametrize("text", ["no", "yes but it still fails", "ok but why?", "yes the export fails"])
def test_not_saying_it_is_solved(text: str) -> None:
    assert not intents.says_solved(text)


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


# -- in a conversation -----------------------------------------------------------------------------


async def test_the_teams_own_messages_in_community_channels_are_left_alone(bot: BotHarness) -> None:
    sent = await bot.says(bot.staff, "If it happens again, open a ticket and we'll dig in")
    assert sent == [] and await tickets(bot) == [], [m.text for m in sent]
    sent = await bot.says(bot.staff, "Tip: you can always talk to a human by asking here")
    assert sent == [] and await tickets(bot) == [], [m.text for m in sent]


async def test_an_ordinary_question_about_the_trash_is_answered_not_escalated_as_frustration(
    bot: BotHarness,
) -> None:
    sent = await bot.customer_dms("How do I restore a deleted file from the trash?")
    assert not any("sounds frustrated" in m.text for m in sent if m.channel_id == STAFF_CHANNEL)


async def test_an_error_code_in_capitals_is_not_shouting(bot: BotHarness) -> None:
    sent = await bot.customer_dms("I get ERR_SSL_PROTOCOL_ERROR from the API when I connect")
    assert not any("shouting" in m.text for m in sent if m.channel_id == STAFF_CHANNEL)


async def test_a_thank_you_in_a_dm_is_acknowledged_not_escalated(bot: BotHarness) -> None:
    (answer,) = await bot.customer_dms("thank you so much!")
    assert answer.text.startswith("Glad that's sorted")
    assert await tickets(bot) == []


@pytest.mark.parametrize("text", ["ok thanks", "yes, that fixed it", "okay!"])
async def test_an_ok_in_a_dm_is_acknowledged_not_escalated(bot: BotHarness, text: str) -> None:
    (answer,) = await bot.customer_dms(text)
    assert answer.text.startswith("Glad that's sorted"), answer.text
    assert await tickets(bot) == []
