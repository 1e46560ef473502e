"""A rolling upgrade runs old and new code on one database: what a newer version kept (an inbox
row's event, a claim's owed replies) is read by a process that does not know its newest fields."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.core.context import PendingDelivery
from bot.core.events import Actor, Conversation, Delivery, MessageReceived, OutboundMessage, Platform
from bot.core.owed import decode, decode_event, encode, encode_event
from bot.tickets.workflows import AdoptThread
from storage import events_repo
from storage.db import Database
from tests.harness import COMMUNITY, BotHarness

SLACK = Platform.SLACK
CASEY = Actor(platform=SLACK, id="U0CASEY", display_name="Casey")
HELP = Conversation(platform=SLACK, workspace_id="T1", channel_id="C0HELP", thread_id="171.2")
AT = datetime(2026, 12, 6, 9, 30, tzinfo=UTC)


def unknown_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "does not know" in r.getMessage()]


def test_an_event_a_newer_version_kept_is_read_without_the_fields_this_one_does_not_know(
    caplog: pytest.LogCaptureFixture,
) -> None:
    question = MessageReceived(
        actor=CASEY, conversation=HELP, text="is the api down?", message_id="171.3", occurred_at=AT
    )
    stored = encode_event(question)
    stored["asked_in_language"] = "Casey's secret: fr-CA"
    stored["actor"]["pronouns_from_profile"] = "they/them"

    with caplog.at_level(logging.INFO, logger="bot.core.owed"):
        assert decode_event(stored) == question
        assert decode_event(stored) == question, "read again, by another replay"

    assert sorted(unknown_lines(caplog)) == [
        "kept Actor has a field this version does not know, ignored: pronouns_from_profile",
        "kept MessageReceived has a field this version does not know, ignored: asked_in_language",
    ], "one line per type and field, the second read says nothing new"
    assert "secret" not in caplog.text and "they/them" not in caplog.text, "names only, never values"


def test_a_reply_and_its_hook_a_newer_version_kept_are_read_without_the_fields_this_one_does_not_know(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reply = PendingDelivery(
        Delivery(conversation=HELP, message=OutboundMessage(text="Ticket #12 is open"), idempotency_key="r1"),
        AdoptThread(12),
    )
    (stored,) = json.loads(encode([reply]))
    stored["delivery"]["message"]["tone"] = "apologetic"
    stored["on_sent"]["fields"]["also_notify"] = "U0LEAD"

    with caplog.at_level(logging.INFO, logger="bot.core.owed"):
        assert decode(json.dumps([stored])) == [reply]

    assert sorted(unknown_lines(caplog)) == [
        "kept OutboundMessage has a field this version does not know, ignored: tone",
        "kept bot.tickets.workflows.AdoptThread has a field this version does not know, ignored: also_notify",
    ]
    assert "apologetic" not in caplog.text and "U0LEAD" not in caplog.text


def test_a_kept_event_missing_a_field_it_needs_is_still_refused() -> None:
    stored = encode_event(MessageReceived(actor=CASEY, conversation=HELP, text="hi", message_id="171.3"))
    del stored["text"]

    with pytest.raises(ValueError, match="text"):
        decode_event(stored)


def test_a_kept_hook_missing_a_field_it_needs_is_still_refused() -> None:
    (stored,) = json.loads(
        encode(
            [PendingDelivery(Delivery(conversation=HELP, message=OutboundMessage(text="x")), AdoptThread(3))]
        )
    )
    stored["on_sent"]["fields"] = {}

    with pytest.raises(ValueError, match="ticket_id"):
        decode(json.dumps([stored]))


def test_a_field_name_no_version_could_have_written_is_refused() -> None:
    stored: dict[str, Any] = encode_event(
        MessageReceived(actor=CASEY, conversation=HELP, text="hi", message_id="171.3")
    )
    stored["not a name\n@everyone"] = 1

    with pytest.raises(ValueError, match="not a stored value"):
        decode_event(stored)


async def test_a_reply_a_newer_process_owed_when_it_died_is_posted_by_this_one(
    bot: BotHarness, database: Database
) -> None:
    """The newer process committed the answer and was killed before posting it; only this older
    one is left to sweep the claim."""
    reply = PendingDelivery(
        Delivery(conversation=bot.community, message=OutboundMessage(text="The API is up again.")),
        AdoptThread(999),
    )
    (stored,) = json.loads(encode([reply]))
    stored["delivery"]["message"]["shown_as_card"] = True
    async with database.transaction() as session:
        claim = await events_repo.claim_event(
            session,
            platform=Platform.CONSOLE.value,
            event_id="n1",
            owed=json.dumps([stored]),
            owed_until=bot.clock() - timedelta(seconds=1),  # its process died
        )
    assert claim is not None

    assert await bot.bot.dispatcher.pay_owed() == 1

    assert [m.text for m in bot.adapter.in_channel(COMMUNITY)] == ["The API is up again."]
