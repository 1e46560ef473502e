"""Slack payloads → events and outbound messages → Block Kit, on captured payloads. Pure functions."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from bot.adapters.base import DeliveryFailure
from bot.adapters.slack import translate
from bot.core.events import (
    CHANNEL_ADMIN,
    Actor,
    Button,
    ButtonStyle,
    Field,
    Mention,
    OutboundMessage,
    Platform,
)
from tests.emulators.slack import payload

CASEY = Actor(platform=Platform.SLACK, id="U0CUSTOMER", display_name="casey")
SAM = Actor(platform=Platform.SLACK, id="U0STAFF", display_name="sam")
BOT = "U0SUPPORTBOT"


# -- inbound -------------------------------------------------------------------------------------


def test_a_channel_message_becomes_a_message_received_keyed_by_channel_and_ts() -> None:
    body = payload("event_message")
    assert translate.message_author(body["event"], bot_user_id=BOT) == "U0CUSTOMER"

    event = translate.message_to_event(body, actor=CASEY, bot_user_id=BOT)

    assert event.text == "how do I reset my password?"
    assert event.message_id == "1764000000.000100"
    assert event.event_id == "msg:C0COMMUNITY:1764000000.000100"
    assert event.conversation.channel_id == "C0COMMUNITY"
    assert event.conversation.workspace_id == "T0EMULATOR"
    assert event.conversation.thread_id is None and not event.conversation.is_direct
    assert not event.mentions_bot


def test_an_app_mention_drops_the_bots_name_and_shares_the_messages_id() -> None:
    body = payload("event_app_mention")
    event = translate.message_to_event(body, actor=CASEY, bot_user_id=BOT)
    assert event.text == "is the API down?"
    assert event.mentions_bot
    same_message_as_plain_event = dict(body["event"], type="message")
    assert translate.message_event_id(same_message_as_plain_event) == event.event_id


def test_a_thread_reply_and_a_dm_land_in_the_right_conversation() -> None:
    body = payload("event_message")
    body["event"].update(thread_ts="1764000000.000001", ts="1764000000.000200")
    assert (
        translate.message_to_event(body, actor=CASEY, bot_user_id=BOT).conversation.thread_id
        == "1764000000.000001"
    )

    body = payload("event_message")
    body["event"].update(channel="D0CASEY", channel_type="im")
    event = translate.message_to_event(body, actor=CASEY, bot_user_id=BOT)
    assert event.conversation.is_direct and event.mentions_bot


def test_a_reply_under_the_bots_own_post_says_so_and_when_the_thread_began() -> None:
    body = payload("event_message")
    body["event"].update(thread_ts="1764000000.000001", ts="1764000000.000200", parent_user_id=BOT)
    under_the_bot = translate.message_to_event(body, actor=SAM, bot_user_id=BOT)
    assert under_the_bot.in_own_thread
    assert under_the_bot.thread_started_at == datetime(2025, 11, 24, 16, 0, 0, 1, tzinfo=UTC)

    body["event"]["parent_user_id"] = "U0CUSTOMER"
    assert not translate.message_to_event(body, actor=SAM, bot_user_id=BOT).in_own_thread
    outside = translate.message_to_event(payload("event_message"), actor=SAM, bot_user_id=BOT)
    assert (outside.in_own_thread, outside.thread_started_at) == (False, None)


def test_a_mention_in_a_thread_counts_as_under_the_bots_post_as_slack_does_not_say_whose_it_is() -> None:
    """Slack sends a message that mentions the bot twice, as `message` and as `app_mention`, and
    handles whichever comes first. `app_mention` carries no `parent_user_id`: read as "not the
    bot's", a team member's "@supportbot here's the fix" under a card not noted yet was dropped as
    talk, and the `message` twin, with the parent, was then a duplicate."""
    body = payload("event_app_mention")
    body["event"].update(thread_ts="1764000000.000001", ts="1764000000.000200")
    body["event"].pop("parent_user_id", None)
    assert translate.message_to_event(body, actor=SAM, bot_user_id=BOT).in_own_thread

    body["event"]["parent_user_id"] = "U0CUSTOMER"  # should Slack ever say whose it is
    assert not translate.message_to_event(body, actor=SAM, bot_user_id=BOT).in_own_thread
    outside = translate.message_to_event(payload("event_app_mention"), actor=SAM, bot_user_id=BOT)
    assert not outside.in_own_thread


@pytest.mark.parametrize("name", ["event_message_bot", "event_message_changed"])
def test_bots_edits_and_system_messages_are_ignored(name: str) -> None:
    assert translate.message_author(payload(name)["event"], bot_user_id=BOT) is None


def test_the_bots_own_posts_are_ignored() -> None:
    event = dict(payload("event_message")["event"], user=BOT)
    assert translate.message_author(event, bot_user_id=BOT) is None
    deleted = dict(payload("event_message")["event"], subtype="message_deleted")
    assert translate.message_author(deleted, bot_user_id=BOT) is None


def test_slack_markup_becomes_what_the_person_typed() -> None:
    raw = "ping <@U0SAM|sam> in <#C0HELP|help>: <!here> see <https://x.test/a?b=1&amp;c=2|docs>"
    raw += " &lt;3 &amp; more"
    assert (
        translate.slack_to_plain(raw)
        == "ping @sam in #help: @here see docs (https://x.test/a?b=1&c=2) <3 & more"
    )
    assert translate.slack_to_plain("<!subteam^S0STAFF|@support> help") == "@support help"
    # Slack's own links for what was typed as text come back as typed.
    assert translate.slack_to_plain("<mailto:a@b.test|a@b.test>") == "a@b.test"
    assert translate.slack_to_plain("<http://b.test|b.test>") == "b.test"


def test_a_slash_command_splits_name_and_arguments_and_uses_the_trigger_as_id() -> None:
    form = payload("slash_command")
    event = translate.command_to_event(form, actor=CASEY)
    assert (event.name, event.args) == ("ticket", "status 4")
    assert event.event_id == f"cmd:{form['trigger_id']}"
    assert event.conversation.channel_id == "C0COMMUNITY"


def test_a_button_click_becomes_an_action_with_value_and_message() -> None:
    body = payload("block_actions")
    event = translate.action_to_event(body, actor=SAM)
    assert event is not None
    assert (event.action_id, event.value, event.message_id) == ("ticket.claim", "4", "1764000300.000500")
    assert event.conversation.channel_id == "C0STAFF" and event.conversation.thread_id is None

    body["message"]["thread_ts"] = "1764000000.000100"
    body["actions"][0]["action_id"] = "rate::3"
    event = translate.action_to_event(body, actor=SAM)
    assert event is not None
    assert event.conversation.thread_id == "1764000000.000100"
    assert event.action_id == "rate", "the uniqueness suffix is removed again"


def test_a_ticket_reaction_carries_the_message_and_its_author() -> None:
    body = payload("event_reaction_added")
    message = {"ts": "1764000000.000100", "text": "my invoice &amp; receipt differ", "user": "U0CUSTOMER"}
    event = translate.reaction_to_event(body, actor=SAM, message=message)
    assert event is not None
    assert (event.emoji, event.message_id, event.message_author_id) == (
        "ticket",
        "1764000000.000100",
        "U0CUSTOMER",
    )
    assert event.message_text == "my invoice & receipt differ"
    assert event.event_id == "Ev0REACTION01"

    without_lookup = translate.reaction_to_event(body, actor=SAM)
    assert without_lookup is not None and without_lookup.message_text is None
    assert translate.emoji_name("+1::skin-tone-3") == "thumbsup"


def test_users_become_actors_with_display_names() -> None:
    user = payload("users_info")["user"]
    actor = translate.actor_from_user(user, roles=frozenset({"S0STAFF"}))
    assert (actor.id, actor.display_name, actor.is_bot) == ("U0CUSTOMER", "casey", False)
    assert actor.key == "slack:U0CUSTOMER" and actor.roles == {"S0STAFF"}
    user["profile"]["display_name"] = ""
    assert translate.actor_from_user(user).display_name == "Casey Jones"


# -- outbound ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed",
    ["<!channel>", "<!here>", "<!everyone>", "<!subteam^S0STAFF>", "<@U0BOSS>", "<!date^1|x>"],
)
def test_no_typed_text_can_become_a_mention(typed: str) -> None:
    rendered = translate.render(
        OutboundMessage(text=f"Casey wrote: {typed} please", title=typed, footer=typed)
    )
    (message,) = rendered
    header, text, footer = message.blocks
    assert header["text"]["type"] == "plain_text", "Slack never parses mentions in plain_text"
    mrkdwn = [text["text"]["text"], footer["elements"][0]["text"], message.text]
    assert all("<!" not in m and "<@" not in m for m in mrkdwn)
    assert "&lt;" in text["text"]["text"]


def test_only_deliberate_mentions_ping() -> None:
    message = OutboundMessage(
        text="New ticket", mentions=(Mention(kind="group", id="S0ONCALL"), Mention(kind="user", id="U0SAM"))
    )
    (rendered,) = translate.render(message)
    assert rendered.blocks[0]["text"]["text"] == "<!subteam^S0ONCALL> <@U0SAM>"
    with pytest.raises(ValueError):
        translate.mention_markup(Mention(kind="user", id="U1> <!channel"))


def test_neutral_markdown_becomes_mrkdwn() -> None:
    text = "**Reset** your password at [the portal](https://x.test/reset?a=1&b=2)\n- step one\n- `code`"
    assert translate.to_mrkdwn(text) == (
        "*Reset* your password at <https://x.test/reset?a=1&amp;b=2|the portal>\n• step one\n• `code`"
    )
    assert translate.to_mrkdwn("[evil](javascript:alert(1))") == "[evil](javascript:alert(1))"


def test_a_card_renders_title_text_fields_buttons_and_footer() -> None:
    message = OutboundMessage(
        title="Ticket #4",
        text="Casey needs help",
        fields=(Field(name="Priority", value="high"),),
        buttons=(
            Button(action_id="ticket.claim", label="Claim", value="4", style=ButtonStyle.PRIMARY),
            Button(action_id="ticket.close", label="Close", value="4"),
        ),
        footer="opened 09:00",
    )
    (rendered,) = translate.render(message)
    kinds = [b["type"] for b in rendered.blocks]
    assert kinds == ["header", "section", "section", "actions", "context"]
    claim, close = rendered.blocks[3]["elements"]
    assert claim == {
        "type": "button",
        "action_id": "ticket.claim",
        "text": {"type": "plain_text", "text": "Claim", "emoji": True},
        "value": "4",
        "style": "primary",
    }
    assert "style" not in close
    assert rendered.text.startswith("Ticket #4\nCasey needs help")


def test_long_text_is_split_into_sections_and_messages_within_limits() -> None:
    text = "\n\n".join(f"Paragraph {i}: " + "a & b < c " * 200 for i in range(80))
    parts = translate.render(OutboundMessage(text=text, buttons=(Button(action_id="ok", label="OK"),)))
    assert len(parts) > 1
    for part in parts:
        assert 0 < len(part.blocks) <= translate.MAX_BLOCKS
        assert all(
            len(b["text"]["text"]) <= translate.MAX_SECTION_TEXT
            for b in part.blocks
            if b["type"] == "section"
        )
        assert 0 < len(part.text) <= translate.MAX_FALLBACK
    assert parts[-1].blocks[-1]["type"] == "actions", "buttons stay at the end"
    assert sum(len(p.blocks) for p in parts) - 1 == len(translate.render_blocks(OutboundMessage(text=text)))
    single = translate.render_single(OutboundMessage(text=text))
    assert len(single.blocks) <= translate.MAX_BLOCKS


def test_repeated_action_ids_are_made_unique_and_decoded_back() -> None:
    stars = tuple(Button(action_id="rate", label=str(n), value=str(n)) for n in range(1, 4))
    (rendered,) = translate.render(OutboundMessage(text="How did we do?", buttons=stars))
    ids = [e["action_id"] for e in rendered.blocks[-1]["elements"]]
    assert ids == ["rate", "rate::1", "rate::2"]
    assert {translate.decode_action_id(i) for i in ids} == {"rate"}
    assert translate.decode_action_id("kb.pick:42") == "kb.pick:42"


@pytest.mark.parametrize(
    ("status", "error", "failure", "permanent"),
    [
        (200, "channel_not_found", DeliveryFailure.CHANNEL_GONE, True),
        (200, "is_archived", DeliveryFailure.CHANNEL_GONE, True),
        (200, "not_in_channel", DeliveryFailure.NO_ACCESS, True),
        (200, "message_not_found", DeliveryFailure.MESSAGE_GONE, True),
        (200, "token_revoked", DeliveryFailure.UNAUTHORIZED, True),
        (200, "msg_too_long", DeliveryFailure.REJECTED, True),
        (429, "ratelimited", DeliveryFailure.RATE_LIMITED, False),
        (200, "internal_error", DeliveryFailure.UNAVAILABLE, False),
        (503, "", DeliveryFailure.UNAVAILABLE, False),
    ],
)
def test_slack_errors_become_delivery_failures_and_keep_their_name(
    status: int, error: str, failure: DeliveryFailure, permanent: bool
) -> None:
    mapped = translate.delivery_error(status, error, retry_after="3")
    assert (mapped.code, mapped.permanent, mapped.detail) == (failure, permanent, error or f"http_{status}")
    assert mapped.retry_after == (3.0 if failure is DeliveryFailure.RATE_LIMITED else None)


def test_workspace_admins_may_manage_channel_subscriptions() -> None:
    admin = translate.actor_from_user({"id": "U1", "name": "ana", "is_admin": True})
    member = translate.actor_from_user({"id": "U2", "name": "bo"})
    assert CHANNEL_ADMIN in admin.roles
    assert CHANNEL_ADMIN not in member.roles


def test_a_truncated_slack_field_does_not_end_in_half_an_entity() -> None:
    value = "a" * 1990 + "<<<<<<<<"
    card = OutboundMessage(text="card", fields=(Field(name="n", value=value),))
    blocks = translate.render_blocks(card)
    shown = blocks[-1]["fields"][0]["text"]
    assert not re.search(r"&[a-z]*…$", shown), f"a reader sees {shown[-12:]!r}"


def test_a_plain_address_a_slack_user_typed_is_relayed_as_typed() -> None:
    # Slack auto-links what people type: `example.com` arrives as <http://example.com|example.com>.
    said = translate.slack_to_plain(
        "my site <http://example.com|example.com> stopped syncing, "
        "mail me at <mailto:casey@example.com|casey@example.com>"
    )
    assert said == "my site example.com stopped syncing, mail me at casey@example.com", said
