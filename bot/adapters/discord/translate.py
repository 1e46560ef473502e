"""Pure translation between Discord and the common event model: no I/O, no client state.

Inbound: discord.py models and raw interaction data → `MessageReceived`, `CommandInvoked`,
`ActionInvoked`, `ReactionAdded` (event ids are Discord's own ids, so redeliveries dedupe).
Outbound: `OutboundMessage` → message parts (content ≤ 2,000 characters, an embed for title and
fields, buttons on the last part) and the `AllowedMentions` that let exactly its `mentions` ping.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import discord

from bot.adapters.base import DeliveryError, DeliveryFailure
from bot.adapters.text import split_text
from bot.core.commands import Catalogue
from bot.core.events import (
    CHANNEL_ADMIN,
    ActionInvoked,
    Actor,
    Attachment,
    Button,
    ButtonStyle,
    CommandInvoked,
    Conversation,
    MessageReceived,
    Moment,
    OutboundMessage,
    Platform,
    ReactionAdded,
    SharedFile,
    plain_moments,
    render_moments,
)

MAX_TEXT = 2000
MAX_EMBED_DESCRIPTION = 4096
MAX_EMBED_TOTAL = 6000  # every text of a message's embeds together
MAX_CUSTOM_ID = 100
MAX_BUTTONS = 25  # five rows of five
UNKNOWN_CHANNEL = 10003
UNKNOWN_MESSAGE = 10008
ENTITY_TOO_LARGE = 40005  # 413: the files of a message are over the upload limit
MAX_FILE_BYTES = discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES  # 10 MiB, without boosts
MAX_FILES_PER_MESSAGE = 10

# Buttons carry their action in the custom id, so a click on a months-old message still routes
# without any state: `sb|<action_id>|<value>`. The action id may contain ':' (router prefixes), so
# the separator is '|', which action ids must not contain.
CUSTOM_ID_TEMPLATE = r"sb\|(?P<action>[^|]+)\|(?P<value>.*)"
_CUSTOM_ID = re.compile(CUSTOM_ID_TEMPLATE, re.DOTALL)

_EMOJI_NAMES = {
    "🎫": "ticket",
    "🎟️": "ticket",
    "👍": "thumbsup",
    "👎": "thumbsdown",
    "✅": "white_check_mark",
    "👀": "eyes",
    "❤️": "heart",
    "🙏": "pray",
}
_LIST_COMMAS = re.compile(r"\s*,\s*")
# Not inside a word, a link or an address (medium.com/@heretic, help@everyone.example): there it
# is no mention, and a zero-width space would break the link (allowed_mentions stops pings anyway).
# No `\b` after the word: `@here0000` cut at a length limit (an embed title, a split message) must
# not become `@here`, so every `@here`/`@everyone` that starts a word is made inert, whatever follows.
_BROADCAST = re.compile(r"(?<![\w./@-])@(everyone|here)", re.IGNORECASE)
_STYLES = {
    ButtonStyle.DEFAULT: discord.ButtonStyle.secondary,
    ButtonStyle.PRIMARY: discord.ButtonStyle.primary,
    ButtonStyle.DANGER: discord.ButtonStyle.danger,
}


# -- custom ids ---------------------------------------------------------------------------------


def encode_custom_id(action_id: str, value: str) -> str:
    """The persistent custom id of a button. ValueError when it cannot fit Discord's 100 characters."""
    if "|" in action_id:
        raise ValueError(f"button action id {action_id!r} must not contain '|'")
    custom_id = f"sb|{action_id}|{value}"
    if len(custom_id) > MAX_CUSTOM_ID:
        raise ValueError(
            f"button {action_id!r} value is too long for a Discord custom id ({len(custom_id)} > 100)"
        )
    return custom_id


def decode_custom_id(custom_id: str) -> tuple[str, str] | None:
    """(action_id, value), or None for a custom id the bot did not make."""
    found = _CUSTOM_ID.fullmatch(custom_id)
    return (found["action"], found["value"]) if found else None


def button_style(style: ButtonStyle) -> discord.ButtonStyle:
    return _STYLES.get(style, discord.ButtonStyle.secondary)


# -- inbound ------------------------------------------------------------------------------------


def actor_from_user(user: discord.abc.User) -> Actor:
    """Member role ids become `Actor.roles`, so `STAFF_ROLE_IDS=discord:<role id>` works; a member
    who may manage channels also gets `channel_admin` (they may manage a channel's status subscription)."""
    roles = {str(role.id) for role in getattr(user, "roles", ()) if not role.is_default()}
    permissions = getattr(user, "guild_permissions", None)
    if permissions is not None and (permissions.manage_channels or permissions.administrator):
        roles.add(CHANNEL_ADMIN)
    return Actor(
        platform=Platform.DISCORD,
        id=str(user.id),
        display_name=user.display_name,
        is_bot=user.bot,
        roles=frozenset(roles),
    )


def conversation_from(channel: Any, *, guild_id: int | None) -> Conversation:
    """A thread is (parent channel, thread); Discord thread ids equal their starter message's id,
    which matches Slack's `thread_ts` = parent message, so handlers treat both alike."""
    workspace = str(guild_id) if guild_id else ""
    if isinstance(channel, discord.Thread):
        return Conversation(
            platform=Platform.DISCORD,
            workspace_id=workspace,
            channel_id=str(channel.parent_id),
            thread_id=str(channel.id),
        )
    is_direct = isinstance(channel, discord.DMChannel) or (
        getattr(channel, "type", None) == discord.ChannelType.private
    )
    return Conversation(
        platform=Platform.DISCORD, workspace_id=workspace, channel_id=str(channel.id), is_direct=is_direct
    )


def strip_bot_mention(text: str, bot_user_id: int) -> str:
    return re.sub(rf"<@!?{bot_user_id}>", "", text).strip()


def files_of(message: discord.Message) -> tuple[SharedFile, ...]:
    """The files a message carried (`attachments`). Each one's link is its attachment URL, which
    anyone holding it may open until Discord's signature on it expires (about a day): the message's
    jump URL opens only for those who see the message, not the team when it is in a DM. The same
    URL is the ref the adapter downloads it by."""
    return tuple(
        SharedFile(
            name=attachment.filename or "",
            size=attachment.size if attachment.size >= 0 else None,
            kind=attachment.content_type or "",
            link=attachment.url if attachment.url.startswith("https://") else "",
            ref=attachment.url,
        )
        for attachment in message.attachments[:MAX_FILES_PER_MESSAGE]
    )


def message_to_event(
    message: discord.Message, *, bot_user_id: int, listen_channel_ids: Collection[str]
) -> MessageReceived | None:
    """None for what the bot must ignore: bots (itself included), system messages, and channels
    it does not serve unless the bot is mentioned. DMs are always served."""
    if message.author.bot or message.webhook_id is not None:
        return None
    if message.type not in (discord.MessageType.default, discord.MessageType.reply):
        return None
    conversation = conversation_from(message.channel, guild_id=message.guild.id if message.guild else None)
    mentioned = any(user.id == bot_user_id for user in message.mentions)
    served = conversation.is_direct or conversation.channel_id in listen_channel_ids
    if isinstance(message.channel, discord.Thread) and message.channel.owner_id == bot_user_id:
        served = True  # ticket threads the bot opened, wherever they are
    if not (served or mentioned):
        return None
    thread = message.channel if isinstance(message.channel, discord.Thread) else None
    return MessageReceived(
        actor=actor_from_user(message.author),
        conversation=conversation,
        text=strip_bot_mention(message.content, bot_user_id),
        message_id=str(message.id),
        event_id=str(message.id),
        occurred_at=message.created_at,
        mentions_bot=mentioned or conversation.is_direct,
        files=files_of(message),
        in_own_thread=thread is not None and started_by(thread, bot_user_id),
        thread_started_at=discord.utils.snowflake_time(thread.id) if thread is not None else None,
    )


def started_by(thread: discord.Thread, user_id: int) -> bool:
    """Whether `user_id` started the thread: opened it, or wrote the message it was opened on (which
    has the thread's id; known while discord.py still holds it, as it does the bot's recent posts)."""
    starter = thread.starter_message
    return thread.owner_id == user_id or (starter is not None and starter.author.id == user_id)


def flatten_command(data: Mapping[str, Any], catalogue: Catalogue | None = None) -> tuple[str, str]:
    """(name, args) of an application command, args as a Slack user types them.

    `/ticket status number:4` → ("ticket", "status 4"). With the catalogue the command came from,
    options follow their declared order (Discord sends them in the order they were filled in),
    `/ticket new summary:list` keeps the subcommand the person picked, ("ticket", "new list"), so
    the summary is never read as another subcommand, keyword options become `name=value` and a
    text after optional words is marked with `--`.
    """
    name = str(data["name"])
    route = [name]
    options: list[Mapping[str, Any]] = list(data.get("options") or [])
    while options and options[0].get("type") in (1, 2):  # subcommand, subcommand group
        sub = options[0]
        route.append(str(sub["name"]))
        options = list(sub.get("options") or [])
    values = {str(option["name"]): option.get("value") for option in options}
    command = catalogue.find(route) if catalogue is not None else None
    if command is None:
        words = [*route[1:], *(str(v).strip() for v in values.values() if v is not None and str(v).strip())]
        return name, " ".join(words)
    words = list(command.route[1:])
    for option in command.options:
        value = values.get(option.name)
        if value is None or not str(value).strip():
            continue
        text = str(value).strip()
        if option.after_dashes:
            words.append("--")
        if option.keyword:
            text = f"{option.name}={_LIST_COMMAS.sub(',', text)}"  # "a, b" is one list
        words.append(text)
    return name, " ".join(words)


def command_to_event(
    data: Mapping[str, Any],
    *,
    actor: Actor,
    conversation: Conversation,
    interaction_id: int,
    catalogue: Catalogue | None = None,
) -> CommandInvoked:
    name, args = flatten_command(data, catalogue)
    return CommandInvoked(
        actor=actor, conversation=conversation, name=name, args=args, event_id=str(interaction_id)
    )


def action_to_event(
    custom_id: str,
    *,
    actor: Actor,
    conversation: Conversation,
    interaction_id: int,
    message_id: int | None,
) -> ActionInvoked | None:
    decoded = decode_custom_id(custom_id)
    if decoded is None:
        return None
    action_id, value = decoded
    return ActionInvoked(
        actor=actor,
        conversation=conversation,
        action_id=action_id,
        value=value,
        message_id=str(message_id) if message_id else None,
        event_id=str(interaction_id),
    )


def emoji_name(emoji: discord.PartialEmoji | str) -> str:
    """A neutral name: '🎫' → 'ticket'; custom emoji keep their own name."""
    name = emoji if isinstance(emoji, str) else (emoji.name or "")
    return _EMOJI_NAMES.get(name, _EMOJI_NAMES.get(name.rstrip("\ufe0f"), name))


def reaction_to_event(
    *,
    actor: Actor,
    conversation: Conversation,
    emoji: discord.PartialEmoji | str,
    message_id: int,
    message_author_id: int | None,
    message_text: str | None,
    message_files: tuple[SharedFile, ...] = (),
    own_ids: Collection[int] = (),
) -> ReactionAdded:
    """One person's emoji on one message is one event, so a re-add after removal is not handled twice.
    `own_ids`: the bot's user id and its application's (an interaction's answer is the application's)."""
    name = emoji_name(emoji)
    return ReactionAdded(
        actor=actor,
        conversation=conversation,
        emoji=name,
        message_id=str(message_id),
        message_author_id=str(message_author_id) if message_author_id else None,
        message_text=message_text,
        message_files=message_files,
        on_own_message=message_author_id is not None and message_author_id in own_ids,
        event_id=reaction_event_id(message_id, actor.id, name),
    )


def reaction_event_id(message_id: int | str, user_id: int | str, emoji: str) -> str:
    """A reaction's event id: one person's emoji on one message."""
    return f"{message_id}:{user_id}:{emoji}"


# -- outbound -----------------------------------------------------------------------------------


def neutralise(text: str) -> str:
    """`@everyone`/`@here` in relayed text stay readable but are no longer mentions (zero-width space)."""
    return _BROADCAST.sub("@\u200b\\1", text)


def timestamp_token(moment: Moment) -> str:
    """`<t:UNIX:f>` / `<t:UNIX:R>`: Discord shows it in each reader's own zone and language."""
    return f"<t:{moment.unix}:{moment.style.value}>"


def with_timestamps(text: str) -> str:
    """Message content, an embed's description and field values render timestamps."""
    return render_moments(neutralise(text), timestamp_token)


def plain(text: str) -> str:
    """Embed titles, field names and footers do not render timestamps: the fallback text instead."""
    return plain_moments(neutralise(text))


@dataclass(frozen=True, slots=True)
class Part:
    """One Discord message: what `Messageable.send` gets."""

    content: str
    embed: discord.Embed | None = None
    buttons: tuple[Button, ...] = ()


def allowed_mentions(message: OutboundMessage) -> discord.AllowedMentions:
    """Only the message's deliberate mentions may ping: never @everyone/@here, never other roles."""
    users = [discord.Object(id=int(m.id)) for m in message.mentions if m.kind == "user" and m.id.isdigit()]
    roles = [discord.Object(id=int(m.id)) for m in message.mentions if m.kind == "group" and m.id.isdigit()]
    return discord.AllowedMentions(everyone=False, users=users, roles=roles, replied_user=False)


def mention_line(message: OutboundMessage) -> str:
    tags = [f"<@{m.id}>" if m.kind == "user" else f"<@&{m.id}>" for m in message.mentions if m.id.isdigit()]
    return " ".join(tags)


def _embed(message: OutboundMessage) -> discord.Embed | None:
    """The card (title, fields, footer) without a description; None when it would be empty.
    Within the 6,000 characters of all embed texts: fields that do not fit are shortened or left
    out. Discord refuses a blank field name or value: a zero-width space stands in."""
    title = plain(message.title or "").strip()[:256]
    footer = plain(message.footer or "").strip()[:2048]
    embed = discord.Embed(title=title or None, colour=discord.Colour.blurple())
    room = MAX_EMBED_TOTAL - len(title) - len(footer)
    for field in message.fields[:25]:
        name = plain(field.name).strip()[:256] or "\u200b"
        value = with_timestamps(field.value).strip()[:1024] or "\u200b"
        if len(name) + len(value) > room:
            keep = room - len(name) - 1
            if keep < 1:
                break
            value = value[:keep] + "…"
        embed.add_field(name=name, value=value, inline=field.inline)
        room -= len(name) + len(value)
    if footer:
        embed.set_footer(text=footer)
    return embed if title or embed.fields or footer else None


def files(attachments: Collection[tuple[Attachment, bytes]]) -> list[discord.File]:
    """The files for `send(files=...)`: discord.py posts them as multipart/form-data (`files[n]`
    beside `payload_json`). The description is the alt text screen readers read (1,024 at most)."""
    return [
        discord.File(io.BytesIO(data), filename=a.filename, description=a.alt_text[:1024] or None)
        for a, data in attachments
    ]


def render(message: OutboundMessage, *, limit: int = MAX_TEXT) -> list[Part]:
    """Parts to send in order. A titled message is one embed when its text fits the embed's
    description; otherwise text goes in content split at natural breaks, and the embed and the
    buttons ride on the last part. Mentions lead the first part, because embeds never ping."""
    text = with_timestamps(message.text).strip()
    mentions = mention_line(message)
    buttons = message.buttons[:MAX_BUTTONS]
    card = _embed(message)
    if card is not None and len(text) <= MAX_EMBED_DESCRIPTION and len(card) + len(text) <= MAX_EMBED_TOTAL:
        card.description = text or None
        return [Part(content=mentions, embed=card, buttons=buttons)]
    body = f"{mentions}\n{text}" if mentions and text else (mentions or text)
    # A cut with no break in reach can start a chunk with an `@everyone` that followed a letter in
    # the text (inert there, as in an address): neutralise each chunk again, in a character kept for it.
    chunks = [neutralise(chunk) for chunk in split_text(body, limit - 1)] if body else [""]
    parts = [Part(content=chunk) for chunk in chunks[:-1]]
    parts.append(Part(content=chunks[-1], embed=card, buttons=buttons))
    return parts


def thread_name(text: str, *, fallback: str = "Support") -> str:
    """A thread title from the first line of a message: Discord allows 1–100 characters."""
    first = neutralise(text).strip().splitlines()[0] if text.strip() else ""
    first = re.sub(r"<[@#][!&]?\d+>", "", first).strip()
    return (first[:97] + "...") if len(first) > 100 else (first or fallback)


def nonce_for(key: str, part: int) -> str:
    """A message nonce (Discord allows 25 characters) that is the same for the same logical message part."""
    return hashlib.blake2b(f"{key}#{part}".encode(), digest_size=12).hexdigest()


# -- errors -------------------------------------------------------------------------------------


def _retry_after(error: discord.HTTPException) -> float | None:
    """The wait a 429 asked for (discord.py already waited it out once before giving up): the core
    and the broadcast lanes honour it, and count the 429."""
    headers = getattr(error.response, "headers", None) or {}
    try:
        return max(0.0, float(headers["Retry-After"]))
    except (KeyError, TypeError, ValueError):
        return None


def delivery_error(error: Exception) -> DeliveryError:
    """What a failed request means for the delivery, in `DeliveryFailure` terms; `detail` keeps
    Discord's own error code."""
    if not isinstance(error, discord.HTTPException):
        return DeliveryError(
            f"Discord unreachable: {type(error).__name__}", permanent=False, code=DeliveryFailure.UNAVAILABLE
        )
    detail = str(error.code or error.status)
    if isinstance(error, discord.Forbidden):
        return DeliveryError(
            f"Discord refused: {error.text or 'missing access'}",
            permanent=True,
            code=DeliveryFailure.NO_ACCESS,
            detail=detail,
        )
    if isinstance(error, discord.NotFound):
        # The message (an incident card someone deleted) rather than the channel: only it is gone.
        gone = DeliveryFailure.MESSAGE_GONE if error.code == UNKNOWN_MESSAGE else DeliveryFailure.CHANNEL_GONE
        return DeliveryError(
            f"Discord: {error.text or 'not found'}", permanent=True, code=gone, detail=detail
        )
    if error.status == 429:
        return DeliveryError(
            "Discord rate limit",
            permanent=False,
            retry_after=_retry_after(error),
            code=DeliveryFailure.RATE_LIMITED,
            detail=detail,
        )
    if error.status >= 500:
        return DeliveryError(
            f"Discord answered {error.status}",
            permanent=False,
            code=DeliveryFailure.UNAVAILABLE,
            detail=detail,
        )
    if error.status == 401:
        return DeliveryError(
            "Discord rejected the bot token", permanent=True, code=DeliveryFailure.UNAUTHORIZED, detail=detail
        )
    return DeliveryError(
        f"Discord rejected the message: {error.text}",
        permanent=True,
        code=DeliveryFailure.REJECTED,
        detail=detail,
    )
