"""Pure Discord translation: captured payloads → events, neutral messages → Discord message parts."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import discord
import pytest

from bot.adapters.base import DeliveryFailure
from bot.adapters.discord.translate import (
    decode_custom_id,
    delivery_error,
    emoji_name,
    encode_custom_id,
    flatten_command,
    neutralise,
    render,
    thread_name,
)
from bot.app import build_router
from bot.core.events import Button, Field, Mention, OutboundMessage

PAYLOADS = Path(__file__).resolve().parents[2] / "payloads" / "discord"
CATALOGUE = build_router().catalogue()


def payload(name: str) -> dict:
    return json.loads((PAYLOADS / f"{name}.json").read_text(encoding="utf-8"))


def test_a_captured_subcommand_flattens_to_what_a_slack_user_types() -> None:
    assert flatten_command(payload("interaction_command")["data"], CATALOGUE) == ("ticket", "status 4")


def test_options_follow_the_declared_order_not_the_order_they_were_filled_in() -> None:
    data = {
        "name": "ticket",
        "options": [
            {
                "type": 1,
                "name": "close",
                "options": [
                    {"name": "reason", "type": 3, "value": "duplicate"},
                    {"name": "number", "type": 4, "value": 7},
                ],
            }
        ],
    }
    assert flatten_command(data, CATALOGUE) == ("ticket", "close 7 duplicate")
    assert flatten_command(data) == ("ticket", "close duplicate 7"), "no catalogue: as Discord sent them"


def test_the_new_ticket_subcommand_arrives_as_slacks_ticket_new() -> None:
    data = {
        "name": "ticket",
        "options": [
            {"type": 1, "name": "new", "options": [{"name": "summary", "type": 3, "value": " it broke "}]}
        ],
    }
    assert flatten_command(data, CATALOGUE) == ("ticket", "new it broke")
    assert flatten_command({"name": "status"}, CATALOGUE) == ("status", "")
    incident = {
        "name": "incident",
        "options": [
            {
                "type": 1,
                "name": "open",
                "options": [
                    {"name": "title", "type": 3, "value": "Card payments failing"},
                    {"name": "components", "type": 3, "value": "api,payments"},
                    {"name": "impact", "type": 3, "value": "major"},
                ],
            }
        ],
    }
    assert flatten_command(incident, CATALOGUE) == (
        "incident",
        "open api,payments major Card payments failing",
    )


def test_custom_ids_round_trip_and_refuse_what_cannot_fit() -> None:
    custom_id = payload("interaction_component")["data"]["custom_id"]
    assert decode_custom_id(custom_id) == ("kb:solved", "how-to-reset")
    assert decode_custom_id(encode_custom_id("ticket.rate", "12:4")) == ("ticket.rate", "12:4")
    assert decode_custom_id("someone-elses-button") is None
    with pytest.raises(ValueError, match="too long"):
        encode_custom_id("kb.pick", "x" * 100)
    with pytest.raises(ValueError, match="must not contain"):
        encode_custom_id("a|b", "1")


def test_everyone_and_here_stay_readable_but_inert() -> None:
    assert neutralise("@everyone look @HERE") == "@\u200beveryone look @\u200bHERE"


def test_a_card_is_one_embed_and_mentions_lead_the_content() -> None:
    message = OutboundMessage(
        title="Ticket #4: export fails",
        text="@everyone it fails",
        fields=(Field(name="Priority", value="high"),),
        buttons=(Button(action_id="ticket.claim", label="Claim", value="4"),),
        mentions=(Mention(kind="group", id="77"), Mention(kind="user", id="88")),
    )
    (part,) = render(message)
    assert part.content == "<@&77> <@88>"
    assert part.embed is not None and part.embed.title == "Ticket #4: export fails"
    assert part.embed.description == "@\u200beveryone it fails"
    assert [(f.name, f.value) for f in part.embed.fields] == [("Priority", "high")]
    assert part.buttons == message.buttons


def test_long_text_is_split_and_the_buttons_ride_on_the_last_part() -> None:
    text = "\n\n".join(f"Step {i}: " + "word " * 60 for i in range(12))
    parts = render(OutboundMessage(text=text, buttons=(Button(action_id="kb.solved", label="Solved"),)))
    assert len(parts) == 2 and all(len(p.content) <= 2000 for p in parts)
    assert "".join(p.content for p in parts).replace("\n", "").replace(" ", "") == text.replace(
        "\n", ""
    ).replace(" ", "")
    assert parts[0].buttons == () and parts[1].buttons[0].label == "Solved"


def test_emoji_and_thread_names() -> None:
    assert (
        emoji_name("🎫") == "ticket"
        and emoji_name("🎟️") == "ticket"
        and emoji_name("party_blob") == "party_blob"
    )
    assert thread_name("") == "Support"
    assert thread_name("<@123> my export fails\nmore") == "my export fails"
    assert len(thread_name("x" * 300)) == 100


def test_keyword_options_become_key_value_words_and_the_audience_leads_an_announcement() -> None:
    add = {
        "name": "component",
        "options": [
            {
                "type": 1,
                "name": "add",
                "options": [
                    {"name": "aliases", "type": 3, "value": "find, lookup"},
                    {"name": "name", "type": 3, "value": "search"},
                    {"name": "group", "type": 3, "value": "Apps"},
                ],
            }
        ],
    }
    assert flatten_command(add, CATALOGUE) == ("component", "add search group=Apps aliases=find,lookup")
    announce = {
        "name": "announce",
        "options": [
            {"name": "text", "type": 3, "value": "Version 2.3 is out"},
            {"name": "components", "type": 3, "value": "api"},
        ],
    }
    assert flatten_command(announce, CATALOGUE) == (
        "announce",
        "api -- Version 2.3 is out",  # "--": the text starts here, whatever its first word
    )


@pytest.mark.parametrize(
    ("status", "code", "failure", "permanent"),
    [
        (403, 50001, DeliveryFailure.NO_ACCESS, True),
        (404, 10003, DeliveryFailure.CHANNEL_GONE, True),
        (404, 10008, DeliveryFailure.MESSAGE_GONE, True),
        (401, 0, DeliveryFailure.UNAUTHORIZED, True),
        (400, 50035, DeliveryFailure.REJECTED, True),
        (429, 0, DeliveryFailure.RATE_LIMITED, False),
        (502, 0, DeliveryFailure.UNAVAILABLE, False),
    ],
)
def test_discord_errors_become_delivery_failures_and_keep_their_code(
    status: int, code: int, failure: DeliveryFailure, permanent: bool
) -> None:
    response = SimpleNamespace(status=status, reason="")
    kind = {403: discord.Forbidden, 404: discord.NotFound}.get(status, discord.HTTPException)
    mapped = delivery_error(kind(response, {"code": code, "message": "refused"}))
    assert (mapped.code, mapped.permanent, mapped.detail) == (failure, permanent, str(code or status))


def test_an_unreachable_discord_is_a_transient_failure() -> None:
    mapped = delivery_error(TimeoutError())
    assert (mapped.code, mapped.permanent) == (DeliveryFailure.UNAVAILABLE, False)


def test_discord_neutralising_at_here_does_not_break_links_and_addresses() -> None:
    text = "See https://medium.com/@heretic/fix-sync and write to help@everyone.example"
    (part,) = render(OutboundMessage(text=text))
    # allowed_mentions already stops @everyone/@here; inside a word nothing is a mention anyway.
    assert "https://medium.com/@heretic/fix-sync" in part.content, repr(part.content)
    assert "help@everyone.example" in part.content, repr(part.content)


def test_discord_tells_a_deleted_message_from_a_deleted_channel() -> None:
    from types import SimpleNamespace

    import discord

    from bot.adapters.base import DeliveryFailure
    from bot.adapters.discord.translate import delivery_error

    response = SimpleNamespace(status=404, reason="Not Found")
    message = delivery_error(discord.NotFound(response, {"code": 10008, "message": "Unknown Message"}))
    channel = delivery_error(discord.NotFound(response, {"code": 10003, "message": "Unknown Channel"}))
    assert (message.code, channel.code) == (DeliveryFailure.MESSAGE_GONE, DeliveryFailure.CHANNEL_GONE)
