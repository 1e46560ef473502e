"""The common event model keeps its invariants: frozen, complete, platform-consistent."""

from __future__ import annotations

import dataclasses
from datetime import datetime

import pytest

from bot.core.events import (
    Actor,
    Button,
    CommandInvoked,
    Conversation,
    Field,
    Mention,
    MessageReceived,
    OutboundMessage,
    Platform,
)

CUSTOMER = Actor(platform=Platform.SLACK, id="U1", display_name="Casey")
CHANNEL = Conversation(platform=Platform.SLACK, workspace_id="T1", channel_id="C1")


def test_events_are_frozen() -> None:
    event = MessageReceived(actor=CUSTOMER, conversation=CHANNEL, text="hi", message_id="1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.text = "changed"  # type: ignore[misc]


def test_each_event_gets_its_own_id_and_an_aware_timestamp() -> None:
    first = MessageReceived(actor=CUSTOMER, conversation=CHANNEL, text="hi", message_id="1")
    second = MessageReceived(actor=CUSTOMER, conversation=CHANNEL, text="hi", message_id="1")
    assert first.event_id != second.event_id
    assert first.occurred_at.tzinfo is not None


def test_actor_and_conversation_must_share_a_platform() -> None:
    discord_channel = Conversation(platform=Platform.DISCORD, channel_id="42")
    with pytest.raises(ValueError, match="same platform"):
        MessageReceived(actor=CUSTOMER, conversation=discord_channel, text="hi", message_id="1")


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        MessageReceived(
            actor=CUSTOMER, conversation=CHANNEL, text="hi", message_id="1", occurred_at=datetime(2026, 1, 1)
        )


def test_command_names_are_bare() -> None:
    assert (
        CommandInvoked(actor=CUSTOMER, conversation=CHANNEL, name="ticket", args="status 4").name == "ticket"
    )
    with pytest.raises(ValueError):
        CommandInvoked(actor=CUSTOMER, conversation=CHANNEL, name="/ticket")


def test_keys_identify_channels_and_threads_across_platforms() -> None:
    thread = CHANNEL.in_thread("1700000000.0001")
    assert CHANNEL.key == "slack:T1:C1"
    assert thread.key == "slack:T1:C1:1700000000.0001"
    assert thread.channel_key == CHANNEL.key
    assert thread.without_thread() == CHANNEL
    assert CUSTOMER.key == "slack:U1"
    with pytest.raises(ValueError):
        Conversation(platform=Platform.SLACK, channel_id="C1", thread_id="")
    with pytest.raises(ValueError):
        Conversation(platform=Platform.SLACK, channel_id="")


def test_roles_are_always_a_frozenset() -> None:
    actor = Actor(platform=Platform.DISCORD, id="1", roles={"9"})  # type: ignore[arg-type]
    assert actor.roles == frozenset({"9"})
    assert hash(actor)


def test_outbound_message_needs_content_and_normalises_sequences() -> None:
    with pytest.raises(ValueError):
        OutboundMessage(text="  ")
    message = OutboundMessage(
        text="Body",
        title="Title",
        fields=[Field(name="State", value="open")],  # type: ignore[arg-type]
        buttons=[Button(action_id="kb.solved", label="That solved it")],  # type: ignore[arg-type]
    )
    assert isinstance(message.fields, tuple) and isinstance(message.buttons, tuple)
    assert message.plain_text == "Title\nBody\nState: open"


def test_mentions_are_explicit_and_typed() -> None:
    with pytest.raises(ValueError):
        Mention(kind="everyone", id="x")
    assert Mention(kind="group", id="S123").kind == "group"
