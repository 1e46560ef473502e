"""Slack payloads of every documented shape → event → reply, and any reply → Block Kit.

Inbound: a message, reaction, slash command or click becomes an event or is ignored (None), never
an exception. Outbound: whatever people wrote, a reply renders within Block Kit's limits and pings
nobody but its own `mentions` (Slack pings only through `<@U…>`, `<!here>`, `<!channel>`,
`<!everyone>` and `<!subteam^…>` markup; plain "@here" in verbatim text is inert).
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st

from bot.adapters.slack import translate
from bot.core.events import (
    ActionInvoked,
    Actor,
    Button,
    CommandInvoked,
    Field,
    InboundEvent,
    Mention,
    MessageReceived,
    OutboundMessage,
    Platform,
    ReactionAdded,
)
from bot.tickets import messages
from tests.strategies import outbound_messages, texts

BOT_USER = "U0SUPPORTBOT"
BOT_ID = "B0SUPPORTBOT"

# -- documented payload shapes (api.slack.com/events/message and its subtypes, block_actions,
#    slash commands, reaction_added) ------------------------------------------------------------

user_ids = st.one_of(
    st.sampled_from([BOT_USER, "U0CASEY", "W0ENTERPRISE"]),
    st.from_regex(r"[UW][A-Z0-9]{8,10}", fullmatch=True),
)
channel_ids = st.from_regex(r"[CDG][A-Z0-9]{8,10}", fullmatch=True)
team_ids = st.from_regex(r"T[A-Z0-9]{8}", fullmatch=True)
timestamps = st.builds(
    lambda s, us: f"{s}.{us:06d}", st.integers(1_000_000_000, 2_000_000_000), st.integers(0, 999_999)
)
SUBTYPES = (
    "bot_message",
    "me_message",
    "message_changed",
    "message_deleted",
    "message_replied",
    "thread_broadcast",
    "file_share",
    "channel_join",
    "channel_leave",
    "channel_topic",
    "channel_purpose",
    "channel_name",
    "channel_archive",
    "pinned_item",
    "ekm_access_denied",
    "huddle_thread",
)
MARKUP = (
    f"<@{BOT_USER}>",
    f"<@{BOT_USER}|supportbot>",
    "<@U0CASEY>",
    "<@U0ROBIN|robin>",
    "<#C0GENERAL|general>",
    "<#C0GENERAL>",
    "<!here>",
    "<!channel>",
    "<!everyone>",
    "<!subteam^S0STAFF|@staff>",
    "<!subteam^S0STAFF>",
    "<!date^1392734382^{date_short}|Feb 18, 2014>",
    "<https://example.com|a link>",
    "<https://example.com>",
    "<http://example.com|example.com>",
    "<mailto:casey@example.com|casey@example.com>",
    "&lt;!here&gt;",
    "&amp;",
)
slack_texts = st.lists(st.one_of(st.sampled_from(MARKUP), texts(max_pieces=3)), max_size=12).map("".join)


def _optional(draw: st.DrawFn, value: st.SearchStrategy[Any]) -> Any:
    return draw(value) if draw(st.booleans()) else None


def _put(target: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        target[key] = value


# A file object (api.slack.com/types/file): whole, hidden by the workspace's plan (id and mode
# alone), sent as `check_file_info`, deleted (tombstone), or with fields of the wrong type.
_FILE_FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "name": texts(max_pieces=3),
    "title": texts(max_pieces=2),
    "mimetype": st.one_of(st.sampled_from(["image/png", "text/plain", "application/pdf", ""]), texts()),
    "size": st.one_of(st.integers(-1, 2 * 1024**3), st.booleans(), st.text(max_size=3), st.floats()),
    "url_private": st.just("https://files.slack.com/files-pri/T0-F0FILE/secret.png"),
    "url_private_download": st.just("https://files.slack.com/files-pri/T0-F0FILE/download/secret.png"),
    "permalink": st.one_of(
        st.just("https://acme.slack.com/files/U0CASEY/F0FILE/export.png"),
        st.just("javascript:alert(1)"),
        st.integers(),
    ),
    "mode": st.sampled_from(["hosted", "external", "snippet", "hidden_by_limit", "tombstone"]),
    "file_access": st.sampled_from(["visible", "check_file_info"]),
}
files_fields = st.one_of(
    st.lists(
        st.one_of(
            st.fixed_dictionaries({"id": st.just("F0FILE")}, optional=_FILE_FIELDS),
            st.none(),
            st.text(max_size=3),
        ),
        max_size=12,
    ),
    st.just({"id": "F0FILE"}),
    st.none(),
)


@st.composite
def message_bodies(draw: st.DrawFn) -> dict[str, Any]:
    """An `event_callback` for `message` or `app_mention`, with or without user, subtype, thread,
    files, blocks, edits, bot fields, team."""
    ts = draw(timestamps)
    event: dict[str, Any] = {
        "type": draw(st.sampled_from(["message", "app_mention"])),
        "channel": draw(channel_ids),
        "ts": ts,
        "event_ts": ts,
    }
    _put(event, "user", _optional(draw, user_ids))
    _put(event, "text", _optional(draw, slack_texts))
    _put(event, "subtype", _optional(draw, st.sampled_from(SUBTYPES)))
    _put(
        event,
        "channel_type",
        _optional(draw, st.sampled_from(["channel", "group", "im", "mpim", "app_home"])),
    )
    _put(event, "thread_ts", _optional(draw, st.one_of(timestamps, st.just(ts))))
    _put(event, "team", _optional(draw, team_ids))
    _put(event, "client_msg_id", _optional(draw, st.uuids().map(str)))
    _put(event, "hidden", _optional(draw, st.booleans()))
    _put(event, "bot_id", _optional(draw, st.sampled_from([BOT_ID, "B0OTHERBOT"])))
    _put(
        event,
        "bot_profile",
        _optional(draw, st.fixed_dictionaries({"id": st.just("B0OTHERBOT"), "name": texts(max_pieces=2)})),
    )
    _put(event, "edited", _optional(draw, st.fixed_dictionaries({"user": user_ids, "ts": timestamps})))
    _put(event, "files", _optional(draw, files_fields))
    _put(
        event,
        "blocks",
        _optional(
            draw,
            st.lists(
                st.fixed_dictionaries(
                    {
                        "type": st.just("rich_text"),
                        "elements": st.just(
                            [{"type": "rich_text_section", "elements": [{"type": "text", "text": "hi"}]}]
                        ),
                    }
                ),
                max_size=2,
            ),
        ),
    )
    if event.get("subtype") == "message_changed":
        event["message"] = {
            "type": "message",
            "user": draw(user_ids),
            "text": draw(slack_texts),
            "ts": draw(timestamps),
        }
        event["previous_message"] = {
            "type": "message",
            "text": draw(slack_texts),
            "ts": event["message"]["ts"],
        }
    if event.get("subtype") == "message_deleted":
        event["deleted_ts"] = draw(timestamps)
    body: dict[str, Any] = {
        "type": "event_callback",
        "event": event,
        "event_id": "Ev0" + ts.replace(".", ""),
        "event_time": int(float(ts)),
    }
    _put(body, "team_id", _optional(draw, team_ids))
    return body


@st.composite
def reaction_bodies(draw: st.DrawFn) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """A `reaction_added` on a message, file or file comment, with the reacted-to message when the
    adapter could fetch it."""
    kind = draw(st.sampled_from(["message", "file", "file_comment"]))
    item: dict[str, Any] = {"type": kind}
    if kind == "message":
        item.update(channel=draw(channel_ids), ts=draw(timestamps))
    else:
        item["file"] = "F0FILE"
    event: dict[str, Any] = {
        "type": "reaction_added",
        "user": draw(user_ids),
        "reaction": draw(
            st.one_of(
                st.sampled_from(["ticket", "+1", "-1", "thumbsup::skin-tone-2", "admission_tickets"]),
                texts(max_pieces=2),
            )
        ),
        "item": item,
        "event_ts": draw(timestamps),
    }
    _put(event, "item_user", _optional(draw, user_ids))
    body: dict[str, Any] = {"type": "event_callback", "event": event}
    _put(body, "event_id", _optional(draw, st.from_regex(r"Ev[A-Z0-9]{8}", fullmatch=True)))
    _put(body, "team_id", _optional(draw, team_ids))
    message = None
    if draw(st.booleans()):
        message = {"type": "message", "text": draw(slack_texts), "ts": item.get("ts", "1.0")}
        _put(message, "user", _optional(draw, user_ids))
        _put(message, "thread_ts", _optional(draw, timestamps))
    return body, message


@st.composite
def command_forms(draw: st.DrawFn) -> dict[str, str]:
    """A slash command's form fields: all strings, `text` possibly empty."""
    form = {
        "command": draw(st.sampled_from(["/ticket", "/status", "/support", "/incident", "/TICKET", "/"])),
        "text": draw(slack_texts),
        "team_id": draw(team_ids),
        "team_domain": "example",
        "channel_id": draw(channel_ids),
        "channel_name": draw(st.sampled_from(["general", "directmessage", "privategroup", "mpdm-a--b-1"])),
        "user_id": draw(user_ids),
        "user_name": draw(texts(max_pieces=2)),
        "api_app_id": "A0SUPPORTBOT",
        "is_enterprise_install": "false",
    }
    if draw(st.booleans()):
        form["trigger_id"] = draw(st.from_regex(r"[0-9]{10}\.[0-9]{10}\.[0-9a-f]{32}", fullmatch=True))
    if draw(st.booleans()):
        form["response_url"] = "https://hooks.slack.com/commands/T0/1/x"
    return form


_ACTION_SHAPES = {
    "button": lambda draw: {"value": draw(texts(max_pieces=3))} if draw(st.booleans()) else {},
    "static_select": lambda draw: {
        "selected_option": {"text": {"type": "plain_text", "text": "x"}, "value": draw(texts(max_pieces=2))}
    },
    "overflow": lambda draw: {"selected_option": None if draw(st.booleans()) else {"value": "a"}},
    "users_select": lambda draw: {"selected_user": draw(user_ids)},
    "multi_static_select": lambda draw: {"selected_options": [{"value": "a"}, {"value": "b"}]},
    "datepicker": lambda draw: {"selected_date": "2026-12-01"},
    "checkboxes": lambda draw: {"selected_options": []},
}


@st.composite
def interaction_payloads(draw: st.DrawFn) -> dict[str, Any]:
    """An interactivity payload: block_actions from a message, an ephemeral message or a view (modal
    or App Home, no channel), and the other interaction types (shortcuts, view submissions)."""
    kind = draw(
        st.sampled_from(
            [
                "block_actions",
                "block_actions",
                "block_actions",
                "shortcut",
                "message_action",
                "view_submission",
                "view_closed",
            ]
        )
    )
    payload: dict[str, Any] = {
        "type": kind,
        "user": {"id": draw(user_ids), "name": draw(texts(max_pieces=2))},
    }
    if draw(st.booleans()):
        payload["user"]["team_id"] = draw(team_ids)
    _put(
        payload,
        "team",
        _optional(draw, st.fixed_dictionaries({"id": team_ids, "domain": st.just("example")})),
    )
    _put(
        payload,
        "trigger_id",
        _optional(draw, st.from_regex(r"[0-9]{10}\.[0-9]{10}\.[0-9a-f]{32}", fullmatch=True)),
    )
    where = draw(st.sampled_from(["message", "ephemeral", "view"]))
    ts = draw(timestamps)
    if where == "view":
        payload["container"] = {"type": "view", "view_id": "V0VIEW"}
        payload["view"] = {"id": "V0VIEW", "type": draw(st.sampled_from(["modal", "home"]))}
    else:
        channel = draw(channel_ids)
        payload["container"] = {
            "type": "message",
            "message_ts": ts,
            "channel_id": channel,
            "is_ephemeral": where == "ephemeral",
        }
        _put(payload["container"], "thread_ts", _optional(draw, timestamps))
        if draw(st.booleans()):
            payload["channel"] = {"id": channel, "name": "general"}
        if where == "message" and draw(st.booleans()):
            payload["message"] = {"type": "message", "ts": ts, "text": draw(slack_texts), "bot_id": BOT_ID}
            _put(payload["message"], "thread_ts", _optional(draw, timestamps))
    if kind == "block_actions":
        actions = []
        for _ in range(draw(st.integers(0, 2))):
            shape = draw(st.sampled_from(sorted(_ACTION_SHAPES)))
            action = {
                "type": shape,
                "action_id": draw(
                    st.one_of(
                        st.sampled_from(["ticket.claim", "kb.rate::2", "kb.rate::x", "::"]),
                        texts(max_pieces=2),
                    )
                ),
                "block_id": "B1",
                "action_ts": draw(timestamps),
            }
            action.update(_ACTION_SHAPES[shape](draw))
            actions.append(action)
        payload["actions"] = actions
    _put(payload, "response_url", _optional(draw, st.just("https://hooks.slack.com/actions/T0/1/x")))
    return payload


@st.composite
def users_info(draw: st.DrawFn) -> dict[str, Any]:
    """A `users.info` user: deleted, bots, admins, missing names."""
    user: dict[str, Any] = {"id": draw(user_ids)}
    for key in ("name", "real_name"):
        _put(user, key, _optional(draw, texts(max_pieces=3)))
    for key in ("is_bot", "is_admin", "is_owner", "deleted"):
        _put(user, key, _optional(draw, st.booleans()))
    if draw(st.booleans()):
        user["profile"] = {}
        for key in ("display_name", "real_name"):
            _put(user["profile"], key, _optional(draw, texts(max_pieces=3)))
    return user


# -- the adapter's reading, as pure steps ---------------------------------------------------------


def _actor(user_id: str, name: str = "") -> Actor:
    return Actor(platform=Platform.SLACK, id=user_id, display_name=name)


def read_message(body: Mapping[str, Any], names: Mapping[str, str]) -> MessageReceived | None:
    """What `SlackAdapter._read_event` does with a message, without the Web API."""
    author = translate.message_author(body["event"], bot_user_id=BOT_USER, bot_id=BOT_ID)
    if author is None:
        return None
    return translate.message_to_event(body, actor=_actor(author), bot_user_id=BOT_USER, names=names)


def relay(event: InboundEvent, text: str) -> OutboundMessage:
    """A reply that carries the person's words everywhere a reply can: title, text, a field, a
    button and the footer (as tickets relay questions to staff)."""
    return OutboundMessage(
        title=f"From {event.actor.name}: {text[:100]}",
        text=f"{event.actor.name} asks:\n{text}",
        fields=(Field(name=event.actor.name, value=text or "-"),),
        buttons=(Button(action_id="ticket.open", label=(text[:70] or "Open"), value="1"),),
        footer=text[:500] or None,
        mentions=(Mention(kind="group", id="S0STAFF"),),
    )


_PING = re.compile(r"<[@!#]")


def _mrkdwn_objects(value: Any) -> Iterator[Mapping[str, Any]]:
    if isinstance(value, Mapping):
        if value.get("type") == "mrkdwn":
            yield value
        for item in value.values():
            yield from _mrkdwn_objects(item)
    elif isinstance(value, list):
        for item in value:
            yield from _mrkdwn_objects(item)


def assert_pings_only_its_mentions(message: OutboundMessage, rendered: list[translate.Part]) -> None:
    allowed = [translate.mention_markup(m) for m in message.mentions]
    for part in rendered:
        assert all(obj.get("verbatim") is True for obj in _mrkdwn_objects(part.blocks))
        # plain_text objects (headers, button labels) are never parsed for markup.
        for text in [part.text, *(obj["text"] for obj in _mrkdwn_objects(part.blocks))]:
            for markup in allowed:
                text = text.replace(markup, "")
            assert not _PING.search(text), text


def assert_within_block_kit_limits(rendered: list[translate.Part]) -> None:
    for part in rendered:
        assert len(part.blocks) <= translate.MAX_BLOCKS
        assert len(part.text) <= translate.MAX_TEXT
        for block in part.blocks:
            kind = block["type"]
            if kind == "header":
                assert 0 < len(block["text"]["text"]) <= translate.MAX_HEADER
            elif kind == "section" and "fields" in block:
                assert 0 < len(block["fields"]) <= translate.MAX_FIELDS_PER_SECTION
                assert all(0 < len(f["text"]) <= translate.MAX_FIELD for f in block["fields"])
            elif kind == "section":
                assert 0 < len(block["text"]["text"]) <= translate.MAX_SECTION_TEXT, block
                assert block["text"]["text"].strip(), block
            elif kind == "actions":
                assert 0 < len(block["elements"]) <= translate.MAX_BUTTONS_PER_BLOCK
                ids = [e["action_id"] for e in block["elements"]]
                assert len(set(ids)) == len(ids) and all(len(i) <= 255 for i in ids)
                for element in block["elements"]:
                    assert 0 < len(element["text"]["text"]) <= translate.MAX_BUTTON_LABEL
                    assert len(element.get("value", "")) <= translate.MAX_BUTTON_VALUE
            elif kind == "context":
                assert all(0 < len(e["text"]) <= 3000 for e in block["elements"])


# -- inbound properties ----------------------------------------------------------------------------


@given(message_bodies(), st.dictionaries(user_ids, texts(max_pieces=3), max_size=3))
def test_a_message_of_any_documented_shape_is_an_event_or_ignored_and_its_relay_pings_nobody(
    body: dict[str, Any], names: dict[str, str]
) -> None:
    event = read_message(body, names)
    raw = body["event"]
    if raw.get("subtype") not in (None, "thread_broadcast", "file_share", "me_message") or raw.get("bot_id"):
        assert event is None
    if event is None:
        return
    assert event.actor.id == raw["user"] != BOT_USER
    assert event.conversation.channel_id == raw["channel"]
    assert event.conversation.thread_id != raw["ts"]
    assert event.event_id == f"msg:{raw['channel']}:{raw['ts']}"
    reply = relay(event, event.text)
    rendered = translate.render(reply)
    assert_pings_only_its_mentions(reply, rendered)
    assert_within_block_kit_limits(rendered)
    assert len(event.files) <= translate.MAX_FILES_PER_MESSAGE
    for file in event.files:
        assert file.link in ("", "https://acme.slack.com/files/U0CASEY/F0FILE/export.png"), (
            "never url_private"
        )
        assert file.size is None or (type(file.size) is int and file.size >= 0)
    to_staff = messages.relayed(event.actor.name, event.text, from_staff=False, files=event.files)
    rendered = translate.render(to_staff)
    assert_pings_only_its_mentions(to_staff, rendered)
    assert_within_block_kit_limits(rendered)


@given(reaction_bodies(), users_info())
def test_a_reaction_of_any_documented_shape_is_an_event_or_ignored(
    reaction: tuple[dict[str, Any], dict[str, Any] | None], user: dict[str, Any]
) -> None:
    body, message = reaction
    event = translate.reaction_to_event(body, actor=translate.actor_from_user(user), message=message)
    if body["event"]["item"]["type"] != "message":
        assert event is None
        return
    assert isinstance(event, ReactionAdded)
    assert event.message_id == body["event"]["item"]["ts"]
    if event.message_text is not None:
        rendered = translate.render(relay(event, event.message_text))
        assert_pings_only_its_mentions(relay(event, event.message_text), rendered)


@given(command_forms())
def test_a_slash_command_of_any_documented_shape_is_an_event(form: dict[str, str]) -> None:
    event = translate.command_to_event(form, actor=_actor(form["user_id"], form["user_name"]))
    assert isinstance(event, CommandInvoked)
    assert event.name and not event.name.startswith("/") and event.name == event.name.lower()
    assert event.conversation.is_direct == (
        form["channel_name"] == "directmessage" or form["channel_id"].startswith("D")
    )
    reply = relay(event, event.args)
    assert_pings_only_its_mentions(reply, translate.render(reply))


@example(
    {
        "type": "block_actions",
        "user": {"id": "U0CASEY", "name": "casey"},
        "container": {"type": "view", "view_id": "V0VIEW"},
        "view": {"id": "V0VIEW", "type": "home"},
        "actions": [{"type": "button", "action_id": "kb.solved", "block_id": "B1", "action_ts": "1.0"}],
    }
)
@given(interaction_payloads())
def test_a_click_of_any_documented_shape_is_an_event_or_ignored(payload: dict[str, Any]) -> None:
    """A click outside any channel (a modal, the App Home tab) is not ours to answer: ignored."""
    event = translate.action_to_event(payload, actor=_actor(payload["user"]["id"]))
    if (
        payload["type"] != "block_actions"
        or not payload.get("actions")
        or payload["container"]["type"] == "view"
    ):
        assert event is None
        return
    assert isinstance(event, ActionInvoked)
    action = payload["actions"][0]
    assert event.action_id == translate.decode_action_id(str(action["action_id"]))
    assert event.conversation.channel_id == payload["container"]["channel_id"]


@given(users_info())
def test_any_users_info_answer_is_an_actor(user: dict[str, Any]) -> None:
    actor = translate.actor_from_user(user)
    assert actor.id == user["id"] and actor.platform is Platform.SLACK
    assert ("channel_admin" in actor.roles) == bool(user.get("is_admin") or user.get("is_owner"))


@given(slack_texts, st.dictionaries(user_ids, texts(max_pieces=3), max_size=3))
def test_markup_read_back_then_escaped_is_inert(raw: str, names: dict[str, str]) -> None:
    """What Slack sent as markup, read as plain text and relayed, never forms markup again."""
    plain = translate.slack_to_plain(raw, bot_user_id=BOT_USER, names=names)
    assert "<" not in translate.escape(plain) and ">" not in translate.escape(plain)
    assert not _PING.search(translate.to_mrkdwn(plain))


# -- outbound properties ---------------------------------------------------------------------------


@given(outbound_messages())
def test_any_reply_renders_within_block_kit_limits_and_pings_only_its_mentions(
    message: OutboundMessage,
) -> None:
    rendered = translate.render(message)
    assert_within_block_kit_limits(rendered)
    assert_pings_only_its_mentions(message, rendered)
    assert [
        b for part in rendered for b in part.blocks if b["type"] == "actions"
    ] == translate._button_blocks(message)
    single = translate.render_single(message)
    assert_within_block_kit_limits([single])
    assert_pings_only_its_mentions(message, [single])


_MARKUP_CHARS = re.compile(r"[\s*\[\]()<>|¦•`-]")


def _characters(text: str) -> Counter[str]:
    return Counter(_MARKUP_CHARS.sub("", text))


def _unescaped(mrkdwn: str) -> str:
    return mrkdwn.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


@given(st.one_of(texts(), outbound_messages().map(lambda m: m.text)))
def test_no_character_of_a_long_text_is_lost_across_sections_and_messages(text: str) -> None:
    if not text.strip():
        return
    rendered = translate.render(OutboundMessage(text=text))
    sections = [b["text"]["text"] for part in rendered for b in part.blocks if b["type"] == "section"]
    assert _characters(_unescaped("".join(sections))) == _characters(text)


def test_converting_a_long_hostile_text_takes_linear_time() -> None:
    """Found by the reply property (a deadline): '[', '**' and blank lines made the mrkdwn patterns
    backtrack; 40,000 characters (Slack's limit) of them held the event loop for up to 36 s."""
    hostile = [
        "[a" * 20_000,
        "[" * 40_000,
        "\n" * 40_000,
        " \n" * 20_000,
        "**a " * 10_000,
        "[a](http://" * 3_600,
    ]
    started = time.perf_counter()
    for text in hostile:
        translate.to_mrkdwn(text)
        translate.render(OutboundMessage(text="x", footer=text, fields=(Field(name="q", value=text),)))
    assert time.perf_counter() - started < 2.0
