"""Discord gateway payloads of every documented shape → event → reply, and any reply → message parts.

Messages and interactions are built by discord.py itself from generated payloads (with and without
guild, member, user, channel object; subcommands nested; option values of any type), then read by
the translator: an event or None, never an exception. Any reply renders within Discord's limits
(content 2,000; embed description 4,096, title 256, 25 fields of 256/1,024, footer 2,048, 6,000 in
all) and pings nobody but its own `mentions`: `allowed_mentions` never lets @everyone, @here or
another role or user through, and relayed "@everyone" is shown inert.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import discord
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from bot.adapters.discord import translate
from bot.core.events import (
    Actor,
    Button,
    Conversation,
    Field,
    InboundEvent,
    Mention,
    MessageReceived,
    OutboundMessage,
    Platform,
)
from bot.tickets import messages as ticket_messages
from tests.strategies import outbound_messages, texts

BOT = 1000000000000000001
GUILD = 1200000000000000000
LISTENED = 1200000000000000010
STAFF_ROLE = 1200000000000000077

snowflakes = st.integers(min_value=1 << 32, max_value=(1 << 63) - 1)
user_refs = st.one_of(st.just(BOT), snowflakes)
MARKUP = (
    f"<@{BOT}>",
    f"<@!{BOT}>",
    "<@1100000000000000001>",
    "<@!1100000000000000001>",
    f"<@&{STAFF_ROLE}>",
    "<#1200000000000000010>",
    "<:ticket:1300000000000000009>",
    "<t:1764000000:R>",
    "@everyone",
    "@here",
    "@\u200beveryone",
    "||spoiler||",
    "> quote\n",
)
discord_texts = st.lists(st.one_of(st.sampled_from(MARKUP), texts(max_pieces=3)), max_size=12).map("".join)


@cache
def _state() -> Any:
    """A discord.py connection state that knows the bot and one guild, as after READY."""
    client = discord.Client(intents=discord.Intents.default())
    state = client._connection
    state.user = discord.ClientUser(
        state=state,
        data={"id": str(BOT), "username": "supportbot", "discriminator": "0", "avatar": None, "bot": True},
    )
    everyone = {"id": str(GUILD), "name": "@everyone", "permissions": "0", "position": 0, "color": 0}
    staff = {"id": str(STAFF_ROLE), "name": "staff", "permissions": "16", "position": 1, "color": 0}
    state._add_guild(
        discord.Guild(data={"id": str(GUILD), "name": "Example", "roles": [everyone, staff]}, state=state)
    )
    return state


def _optional(draw: st.DrawFn, value: st.SearchStrategy[Any]) -> Any:
    return draw(value) if draw(st.booleans()) else None


@st.composite
def user_payloads(draw: st.DrawFn, *, bot: bool | None = None) -> dict[str, Any]:
    user: dict[str, Any] = {
        "id": str(draw(user_refs)),
        "username": draw(st.text(min_size=1, max_size=32)),
        "discriminator": draw(st.sampled_from(["0", "0001"])),
        "avatar": None,
        "global_name": _optional(draw, st.text(max_size=32)),
    }
    is_bot = draw(st.booleans()) if bot is None else bot
    if is_bot or draw(st.booleans()):
        user["bot"] = is_bot
    if draw(st.booleans()):
        user["system"] = draw(st.booleans())
    return user


@st.composite
def member_payloads(draw: st.DrawFn) -> dict[str, Any]:
    """A guild member as sent with a message (no user) or an interaction (with user and permissions)."""
    member: dict[str, Any] = {
        "roles": draw(st.lists(st.one_of(st.just(str(STAFF_ROLE)), snowflakes.map(str)), max_size=3)),
        "joined_at": "2025-01-10T12:00:00.000000+00:00",
        "deaf": False,
        "mute": False,
        "flags": 0,
        "nick": _optional(draw, st.text(max_size=32)),
    }
    if draw(st.booleans()):
        member["permissions"] = str(draw(st.sampled_from([0, 16, 8, 2248473465835073])))
    return member


OPEN_THREAD: dict[str, Any] = {
    "archived": False,
    "auto_archive_duration": 1440,
    "archive_timestamp": "2026-01-01T00:00:00+00:00",
    "locked": False,
}
"""A thread's `thread_metadata`: open."""


@st.composite
def channels(draw: st.DrawFn, *, in_guild: bool) -> Any:
    """The channel a message or interaction is in: a text channel (listened to or not), a thread
    (the bot's own or someone's), or a DM."""
    state = _state()
    guild = state._get_guild(GUILD)
    if not in_guild:
        return discord.DMChannel(
            state=state, me=state.user, data={"id": str(draw(snowflakes)), "type": 1, "recipients": []}
        )
    kind = draw(st.sampled_from(["text", "thread"]))
    channel_id = draw(st.one_of(st.just(LISTENED), snowflakes))
    if kind == "text":
        return discord.TextChannel(
            state=state, guild=guild, data={"id": str(channel_id), "type": 0, "name": "help", "position": 0}
        )
    data = {
        "id": str(draw(snowflakes)),
        "type": draw(st.sampled_from([11, 12])),
        "name": "thread",
        "parent_id": str(channel_id),
        "owner_id": str(draw(user_refs)),
        "guild_id": str(GUILD),
        "message_count": 0,
        "member_count": 1,
        "thread_metadata": OPEN_THREAD,
    }
    return discord.Thread(guild=guild, state=state, data=data)


@st.composite
def messages(draw: st.DrawFn) -> discord.Message:
    """A MESSAGE_CREATE (api docs: Message object), built into a discord.Message by discord.py."""
    in_guild = draw(st.booleans())
    channel = draw(channels(in_guild=in_guild))
    data: dict[str, Any] = {
        "id": str(draw(snowflakes)),
        "channel_id": str(channel.id),
        "type": draw(st.sampled_from([0, 0, 0, 19, 6, 7, 18, 20, 21, 46])),
        "content": draw(discord_texts),
        "author": draw(user_payloads()),
        "timestamp": "2026-11-24T09:00:00.000000+00:00",
        "edited_timestamp": _optional(draw, st.just("2026-11-24T09:01:00.000000+00:00")),
        "tts": False,
        "mention_everyone": draw(st.booleans()),
        "mentions": [],
        "mention_roles": draw(st.lists(st.just(str(STAFF_ROLE)), max_size=1)),
        "attachments": [],
        "embeds": [],
        "pinned": False,
        "flags": 0,
    }
    for user in draw(st.lists(user_payloads(), max_size=3)):
        if in_guild and draw(st.booleans()):
            user["member"] = draw(member_payloads())
        data["mentions"].append(user)
    if in_guild:
        data["guild_id"] = str(GUILD)
        if draw(st.booleans()):
            data["member"] = draw(member_payloads())
    if draw(st.booleans()):
        data["webhook_id"] = str(draw(snowflakes))
    if data["type"] == 19 and draw(st.booleans()):
        data["message_reference"] = {"message_id": str(draw(snowflakes)), "channel_id": str(channel.id)}
    data["attachments"] = draw(st.lists(attachment_payloads(), max_size=12))
    return discord.Message(state=_state(), channel=channel, data=data)


@st.composite
def attachment_payloads(draw: st.DrawFn) -> dict[str, Any]:
    """An Attachment object (api docs: Attachment), its name and content type as a client sent them."""
    url = draw(st.sampled_from(["https://cdn.discordapp.com/attachments/1/2/a.png?ex=1&is=2&hm=3", "a.png"]))
    attachment: dict[str, Any] = {
        "id": str(draw(snowflakes)),
        "filename": draw(texts(max_pieces=3)),
        "size": draw(st.integers(0, 500 * 1024**2)),
        "url": url,
        "proxy_url": url,
    }
    for key in ("content_type", "title"):
        if draw(st.booleans()):
            attachment[key] = draw(
                st.one_of(st.sampled_from(["image/png", "text/plain"]), texts(max_pieces=2))
            )
    return attachment


# Discord documents these option types (application-commands#application-command-object-option-type).
_VALUES = {
    3: texts(max_pieces=4),
    4: st.integers(-(1 << 53), 1 << 53),
    5: st.booleans(),
    6: snowflakes.map(str),
    7: snowflakes.map(str),
    8: snowflakes.map(str),
    10: st.floats(allow_nan=True, allow_infinity=True),
}
# ... and a value of the wrong type for its option, or none at all.
wrong_values = st.one_of(
    st.none(),
    st.text(max_size=5),
    st.integers(),
    st.floats(),
    st.booleans(),
    st.lists(st.integers(), max_size=2),
)


@st.composite
def options(draw: st.DrawFn, depth: int = 0) -> dict[str, Any]:
    if depth < 2 and draw(st.integers(0, 3)) == 0:
        kind = 2 if depth == 0 and draw(st.booleans()) else 1
        option: dict[str, Any] = {
            "type": kind,
            "name": draw(st.sampled_from(["new", "status", "close", "open", "add", "set"])),
        }
        children = draw(st.lists(options(depth + 1), max_size=3))
        if children or draw(st.booleans()):
            option["options"] = children
        return option
    kind = draw(st.sampled_from(sorted(_VALUES)))
    option = {
        "type": kind,
        "name": draw(st.sampled_from(["number", "summary", "text", "components", "reason", "group"])),
    }
    if draw(st.integers(0, 4)):
        option["value"] = draw(_VALUES[kind])
    else:
        option["value"] = draw(wrong_values)
    if draw(st.integers(0, 5)) == 0:
        option["focused"] = True
    return option


@st.composite
def interactions(draw: st.DrawFn) -> discord.Interaction:
    """An INTERACTION_CREATE for a slash command or a button click: in a guild (member with user,
    guild_id, maybe the guild and channel objects) or in a DM (user, maybe the channel)."""
    kind = draw(st.sampled_from([2, 3]))
    in_guild = draw(st.booleans())
    payload: dict[str, Any] = {
        "id": str(draw(snowflakes)),
        "application_id": str(BOT),
        "type": kind,
        "token": "aW50ZXJhY3Rpb24",
        "version": 1,
        "locale": "en-US",
        "attachment_size_limit": 26214400,
        "channel_id": str(draw(st.one_of(st.just(LISTENED), snowflakes))),
    }
    if in_guild:
        member = draw(member_payloads())
        member["user"] = draw(user_payloads())
        payload.update(member=member, guild_id=str(GUILD))
        if draw(st.booleans()):
            payload["guild"] = {"id": str(GUILD), "locale": "en-US", "features": []}
        if draw(st.booleans()):
            channel: dict[str, Any] = {"id": payload["channel_id"], "name": "help", "guild_id": str(GUILD)}
            if draw(st.booleans()):
                channel.update(type=0, position=0, parent_id=None, permissions="2248473465835073")
            else:
                channel.update(
                    type=draw(st.sampled_from([11, 12])),
                    parent_id=str(LISTENED),
                    owner_id=str(draw(user_refs)),
                    message_count=1,
                    member_count=1,
                    thread_metadata={
                        "archived": False,
                        "auto_archive_duration": 1440,
                        "archive_timestamp": "2026-01-01T00:00:00+00:00",
                        "locked": False,
                    },
                )
            payload["channel"] = channel
    else:
        payload["user"] = draw(user_payloads())
        if draw(st.booleans()):
            payload["channel"] = {"id": payload["channel_id"], "type": 1, "recipients": []}
    if kind == 2:
        data: dict[str, Any] = {
            "id": "1300000000000000002",
            "type": 1,
            "name": draw(st.sampled_from(["ticket", "status", "announce", "component", "incident"])),
        }
        if draw(st.booleans()):
            data["options"] = draw(st.lists(options(), max_size=4))
        payload["data"] = data
    else:
        custom_id = draw(
            st.one_of(
                st.builds(
                    lambda a, v: f"sb|{a}|{v}",
                    st.from_regex(r"[a-z.:]{1,20}", fullmatch=True),
                    st.text(max_size=20),
                ),
                st.text(max_size=100),
            )
        )
        payload["data"] = {"custom_id": custom_id, "component_type": 2}
        payload["message"] = bot_post(str(draw(snowflakes)), payload["channel_id"])
    return discord.Interaction(data=payload, state=_state())


def bot_post(message_id: str, channel_id: str, content: str = "") -> dict[str, Any]:
    """A message payload of the bot's own."""
    return {
        "id": message_id,
        "channel_id": channel_id,
        "type": 0,
        "content": content,
        "author": {
            "id": str(BOT),
            "username": "supportbot",
            "discriminator": "0",
            "avatar": None,
            "bot": True,
        },
        "timestamp": "2026-11-24T09:00:00.000000+00:00",
        "edited_timestamp": None,
        "tts": False,
        "mention_everyone": False,
        "mentions": [],
        "mention_roles": [],
        "attachments": [],
        "embeds": [],
        "pinned": False,
        "flags": 0,
    }


# -- the adapter's reading, as pure steps --------------------------------------------------------


def interaction_conversation(interaction: discord.Interaction) -> Conversation:
    """Where an interaction happened, as the adapter reads it."""
    channel = interaction.channel
    if channel is None:
        return Conversation(platform=Platform.DISCORD, channel_id=str(interaction.channel_id), is_direct=True)
    return translate.conversation_from(channel, guild_id=interaction.guild_id)


def relay(event: InboundEvent, text: str) -> OutboundMessage:
    """A reply carrying the person's words everywhere a reply can, as tickets relay them to staff."""
    return OutboundMessage(
        title=f"From {event.actor.name}: {text[:100]}",
        text=f"{event.actor.name} asks:\n{text}",
        fields=(Field(name=event.actor.name or "-", value=text or "-"),),
        buttons=(Button(action_id="ticket.open", label=(text[:70] or "Open"), value="1"),),
        footer=text[:500] or None,
        mentions=(Mention(kind="group", id=str(STAFF_ROLE)),),
    )


# A mention Discord would show as @everyone/@here: not inside a word, a link or an address.
_BROADCAST = re.compile(r"(?<![\w./@-])@(everyone|here)\b", re.IGNORECASE)


def _visible(part: translate.Part) -> list[str]:
    texts_ = [part.content]
    embed = part.embed
    if embed is not None:
        texts_ += [embed.title or "", embed.description or "", embed.footer.text or ""]
        texts_ += [t for f in embed.fields for t in (f.name or "", f.value or "")]
    return texts_


def assert_pings_only_its_mentions(message: OutboundMessage, parts: list[translate.Part]) -> None:
    allowed = translate.allowed_mentions(message)
    assert allowed.everyone is False and allowed.replied_user is False
    users = {m.id for m in message.mentions if m.kind == "user"}
    roles = {m.id for m in message.mentions if m.kind == "group"}
    assert {str(u.id) for u in allowed.users} <= users  # type: ignore[union-attr]
    assert {str(r.id) for r in allowed.roles} <= roles  # type: ignore[union-attr]
    for part in parts:
        for text in _visible(part):
            assert not _BROADCAST.search(text), text


def assert_within_discord_limits(parts: list[translate.Part]) -> None:
    assert parts
    for part in parts:
        assert len(part.content) <= 2000  # docs/platform-limits.md: content up to 2,000 characters
        assert part.content.strip() or part.embed is not None, part
        assert len(part.buttons) <= 25
        embed = part.embed
        if embed is None:
            continue
        assert len(embed.title or "") <= 256
        assert len(embed.description or "") <= translate.MAX_EMBED_DESCRIPTION
        assert len(embed.fields) <= 25
        for f in embed.fields:
            assert 0 < len(f.name or "") <= 256 and 0 < len(f.value or "") <= 1024, f
        assert len(embed.footer.text or "") <= 2048
        assert len(embed) <= 6000, len(embed)
        assert embed.title or embed.description or embed.fields or embed.footer.text


# -- inbound properties ----------------------------------------------------------------------------


@given(messages())
def test_a_message_of_any_documented_shape_is_an_event_or_ignored_and_its_relay_pings_nobody(
    message: discord.Message,
) -> None:
    event = translate.message_to_event(message, bot_user_id=BOT, listen_channel_ids={str(LISTENED)})
    if (
        message.author.bot
        or message.webhook_id is not None
        or message.type not in (discord.MessageType.default, discord.MessageType.reply)
    ):
        assert event is None
    if event is None:
        return
    assert isinstance(event, MessageReceived)
    assert event.event_id == event.message_id == str(message.id)
    thread = message.channel if isinstance(message.channel, discord.Thread) else None
    # No message is held here, so a thread is the bot's only when it opened it.
    assert event.in_own_thread == (thread is not None and thread.owner_id == BOT)
    assert (event.thread_started_at is None) == (thread is None)
    assert str(BOT) not in event.text or f"<@{BOT}>" not in event.text
    reply = relay(event, event.text)
    parts = translate.render(reply)
    assert_pings_only_its_mentions(reply, parts)
    assert_within_discord_limits(parts)
    shown = message.attachments[: translate.MAX_FILES_PER_MESSAGE]
    assert [f.name for f in event.files] == [a.filename for a in shown]
    assert [f.link for f in event.files] == [a.url if a.url.startswith("https://") else "" for a in shown]
    to_staff = ticket_messages.relayed(event.actor.name, event.text, from_staff=False, files=event.files)
    parts = translate.render(to_staff)
    assert_pings_only_its_mentions(to_staff, parts)
    assert_within_discord_limits(parts)


def test_a_message_in_a_thread_someone_opened_on_the_bots_post_is_in_the_bots_own_thread() -> None:
    """A team member's thread on the bot's card: theirs by owner, the bot's by the post it hangs under."""
    state, sam = _state(), "1100000000000000001"
    card_data = {**bot_post("1300000000000000100", str(LISTENED), "Ticket #1"), "guild_id": str(GUILD)}
    guild = state._get_guild(GUILD)
    staff = discord.TextChannel(
        state=state, guild=guild, data={"id": str(LISTENED), "type": 0, "name": "staff", "position": 0}
    )
    card = discord.Message(state=state, channel=staff, data=card_data)
    thread = discord.Thread(
        guild=guild,
        state=state,
        data={
            "id": card_data["id"],
            "type": 11,
            "name": "Ticket #1",
            "parent_id": str(LISTENED),
            "owner_id": sam,
            "guild_id": str(GUILD),
            "message_count": 0,
            "member_count": 1,
            "thread_metadata": OPEN_THREAD,
        },
    )
    answer_data = dict(
        card_data,
        id="1300000000000000200",
        channel_id=card_data["id"],
        content="Which export?",
        author={"id": sam, "username": "sam", "discriminator": "0", "avatar": None},
    )
    answer = discord.Message(state=state, channel=thread, data=answer_data)

    def read() -> MessageReceived | None:
        return translate.message_to_event(answer, bot_user_id=BOT, listen_channel_ids={str(LISTENED)})

    before = read()
    assert before is not None and not before.in_own_thread, (
        "the card not held: Sam's thread, for all it knows"
    )
    assert before.thread_started_at == discord.utils.snowflake_time(card.id), "when the card was posted"
    assert state._messages is not None
    state._messages.append(card)
    try:
        after = read()
        assert after is not None and after.in_own_thread
    finally:
        state._messages.remove(card)


@given(interactions())
def test_an_interaction_of_any_documented_shape_is_an_event_or_ignored(
    interaction: discord.Interaction,
) -> None:
    actor = translate.actor_from_user(interaction.user)
    assert actor.id == str(interaction.user.id)
    conversation = interaction_conversation(interaction)
    data: Any = interaction.data
    if interaction.type is discord.InteractionType.application_command:
        event = translate.command_to_event(
            data, actor=actor, conversation=conversation, interaction_id=interaction.id
        )
        assert event.name == data["name"]
        reply = relay(event, event.args)
    else:
        message = interaction.message
        clicked = translate.action_to_event(
            data["custom_id"],
            actor=actor,
            conversation=conversation,
            interaction_id=interaction.id,
            message_id=message.id if message else None,
        )
        if not data["custom_id"].startswith("sb|"):
            assert clicked is None
        if clicked is None:
            return
        reply = relay(clicked, clicked.value)
    parts = translate.render(reply)
    assert_pings_only_its_mentions(reply, parts)
    assert_within_discord_limits(parts)


@example(text="@everyone look", author="@here")
@given(discord_texts, st.text(max_size=40))
def test_relayed_words_never_ping_anyone(text: str, author: str) -> None:
    event = MessageReceived(
        actor=Actor(platform=Platform.DISCORD, id="1", display_name=author),
        conversation=Conversation(platform=Platform.DISCORD, channel_id="2"),
        text=text,
        message_id="3",
    )
    reply = relay(event, text)
    assert_pings_only_its_mentions(reply, translate.render(reply))
    assert not _BROADCAST.search(translate.thread_name(text))


# -- outbound and neutralising --------------------------------------------------------------------


@given(outbound_messages())
def test_any_reply_renders_within_discords_limits_and_pings_only_its_mentions(
    message: OutboundMessage,
) -> None:
    parts = translate.render(message)
    assert_within_discord_limits(parts)
    assert_pings_only_its_mentions(message, parts)
    assert [p.buttons for p in parts[:-1]] == [()] * (len(parts) - 1)


@given(discord_texts)
def test_neutralising_keeps_every_character_and_is_idempotent(text: str) -> None:
    inert = translate.neutralise(text)
    assert inert.replace("\u200b", "") == text.replace("\u200b", "")
    assert translate.neutralise(inert) == inert
    assert not _BROADCAST.search(inert)


def test_a_broadcast_word_cut_at_a_length_limit_stays_inert() -> None:
    """Found by the reply property: `@here0000` is no mention, but cut at the title's 256 characters
    it ended in `@here`."""
    (part,) = translate.render(OutboundMessage(text="", title="```python\n @here00000000" * 30))
    assert part.embed is not None and part.embed.title is not None
    assert not _BROADCAST.search(part.embed.title)
    long_word = "x" * 1995 + " @here" + "0" * 3000  # no break: the split cuts inside the word
    assert not any(_BROADCAST.search(p.content) for p in translate.render(OutboundMessage(text=long_word)))
    # Another: inert after a letter, then the first word of the next part.
    glued = translate.render(OutboundMessage(text="@everyone@everyone" * 222))
    assert len(glued) > 1 and not any(_BROADCAST.search(p.content) for p in glued)
    assert all(len(p.content) <= translate.MAX_TEXT for p in glued)


def test_a_card_too_big_for_one_embed_moves_its_text_to_the_content() -> None:
    """Found by the reply property: a 4,000-character text with a long title and fields made an
    embed of more than 6,000 characters, which Discord refuses."""
    message = OutboundMessage(
        title="T" * 300,
        text="word " * 800,
        fields=tuple(Field(name=f"f{i}", value="v" * 1000) for i in range(3)),
    )
    parts = translate.render(message)
    assert_within_discord_limits(parts)
    assert "\n".join(p.content for p in parts).split() == message.text.split()
    assert parts[-1].embed is not None and [f.name for f in parts[-1].embed.fields] == ["f0", "f1", "f2"]


def test_blank_field_names_and_values_are_kept_as_zero_width_spaces() -> None:
    """Found by the reply property: Discord refuses an embed field whose name or value is empty."""
    (part,) = translate.render(OutboundMessage(text="x", fields=(Field(name="", value=" "),)))
    assert part.embed is not None
    assert [(f.name, f.value) for f in part.embed.fields] == [("\u200b", "\u200b")]


def test_a_message_of_only_a_blank_title_is_refused_when_built() -> None:
    """Found by the reply property: title='' and blank text rendered as an empty message."""
    with pytest.raises(ValueError, match="needs text or a title"):
        OutboundMessage(text=" ", title="")
