"""Pure translation between Slack payloads and the common event model, and Block Kit rendering.

No I/O here: the Slack adapter (`bot/adapters/slack/adapter.py`) resolves users and calls the Web API; these
functions only reshape data, so they are tested with captured payloads alone.

Safety rule for everything outbound: text that came from people (or from handlers) is escaped
(`&`, `<`, `>`) before it reaches Slack and every mrkdwn object is `verbatim`, so `<!channel>`,
`<!here>`, `<!everyone>`, `@here` or `<!subteam^S..>` typed by anyone stays inert text. The only
pings are the message's `Mention`s, rendered here as `<@U..>` or `<!subteam^S..>`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from bot.adapters.base import DeliveryError, DeliveryFailure
from bot.adapters.text import split_text
from bot.core.events import (
    CHANNEL_ADMIN,
    ActionInvoked,
    Actor,
    ButtonStyle,
    CommandInvoked,
    Conversation,
    Mention,
    MessageReceived,
    Moment,
    OutboundMessage,
    Platform,
    ReactionAdded,
    SharedFile,
    TimeStyle,
    plain_moments,
    render_moments,
)

# Block Kit limits (Block Kit reference; docs/platform-limits.md).
MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_TEXT = 40_000
MAX_FALLBACK = 3000
MAX_HEADER = 150
MAX_FIELD = 2000
MAX_FIELDS_PER_SECTION = 10
MAX_BUTTONS_PER_BLOCK = 25
MAX_BUTTON_LABEL = 75
MAX_BUTTON_VALUE = 2000
MAX_FILE_BYTES = 1024**3  # files.getUploadURLExternal: a file of up to 1 GB
MAX_FILES_PER_MESSAGE = 10  # a person can share up to 10 files in a message

# Message subtypes that are a person writing something new; everything else (edits, deletions,
# joins, bot posts, channel topic changes) is not a question for the bot.
_PERSON_SUBTYPES = frozenset({None, "thread_broadcast", "file_share", "me_message"})

# API errors retrying cannot fix, and what each means in every platform's terms. Anything else that
# is not ok is treated as transient (Slack's internal_error, fatal_error, a 5xx page).
PERMANENT_ERRORS: Final[Mapping[str, DeliveryFailure]] = {
    "channel_not_found": DeliveryFailure.CHANNEL_GONE,
    "is_archived": DeliveryFailure.CHANNEL_GONE,
    "not_in_channel": DeliveryFailure.NO_ACCESS,
    "user_not_in_channel": DeliveryFailure.NO_ACCESS,  # from chat.postEphemeral: the person (adapter)
    "no_permission": DeliveryFailure.NO_ACCESS,
    "restricted_action": DeliveryFailure.NO_ACCESS,
    "restricted_action_read_only_channel": DeliveryFailure.NO_ACCESS,
    "restricted_action_thread_only_channel": DeliveryFailure.NO_ACCESS,
    "restricted_action_non_threadable_channel": DeliveryFailure.NO_ACCESS,
    "ekm_access_denied": DeliveryFailure.NO_ACCESS,
    "team_access_not_granted": DeliveryFailure.NO_ACCESS,
    "user_not_found": DeliveryFailure.PERSON_UNREACHABLE,  # conversations.open, chat.postEphemeral
    "user_disabled": DeliveryFailure.PERSON_UNREACHABLE,
    "cannot_dm_bot": DeliveryFailure.PERSON_UNREACHABLE,
    "account_inactive": DeliveryFailure.UNAUTHORIZED,
    "invalid_auth": DeliveryFailure.UNAUTHORIZED,
    "not_authed": DeliveryFailure.UNAUTHORIZED,
    "token_revoked": DeliveryFailure.UNAUTHORIZED,
    "token_expired": DeliveryFailure.UNAUTHORIZED,
    "missing_scope": DeliveryFailure.UNAUTHORIZED,
    "message_not_found": DeliveryFailure.MESSAGE_GONE,
    "msg_too_long": DeliveryFailure.REJECTED,
    "no_text": DeliveryFailure.REJECTED,
    "invalid_blocks": DeliveryFailure.REJECTED,
    "invalid_arguments": DeliveryFailure.REJECTED,
    "cant_update_message": DeliveryFailure.REJECTED,
    "edit_window_closed": DeliveryFailure.REJECTED,
    "method_not_supported_for_channel_type": DeliveryFailure.REJECTED,
    "used_url": DeliveryFailure.REJECTED,
    "expired_url": DeliveryFailure.REJECTED,
}

# Slack names a few emoji differently from everyone else.
_EMOJI_ALIASES = {"+1": "thumbsup", "-1": "thumbsdown", "admission_tickets": "ticket"}

_MENTION_ID = re.compile(r"^[A-Z0-9]+$")


# ---------------------------------------------------------------------------------------------
# Inbound text


_SLACK_MARKUP = re.compile(r"<([^<>]+)>")


def _autolinked(target: str, label: str) -> bool:
    """Slack's own link for something typed as text (`example.com`, `casey@example.com`): the label
    is the target without its scheme, so the typed text alone is what the person wrote."""
    bare = re.sub(r"^(https?://|mailto:)", "", target, flags=re.IGNORECASE).rstrip("/")
    return label.rstrip("/").lower() == bare.lower()


_UNNAMED_MENTION = re.compile(r"<@([UW][A-Z0-9]+)>")


def unnamed_mentions(text: str) -> list[str]:
    """User ids mentioned without a label (how Slack sends `@name` today), first seen first."""
    return list(dict.fromkeys(_UNNAMED_MENTION.findall(text)))


def slack_to_plain(text: str, *, bot_user_id: str = "", names: Mapping[str, str] | None = None) -> str:
    """Slack's message markup as the readable text a person typed.

    `<@U1|sam>` becomes `@sam` (`<@U1>` too, when `names` knows U1), `<#C1|general>` `#general`,
    `<!here>` `@here`, links their label and URL, and the entities `&amp; &lt; &gt;` their
    characters. A leading mention of the bot itself (how people address it in a channel) is dropped.
    """
    if bot_user_id:
        text = re.sub(rf"^\s*<@{re.escape(bot_user_id)}(\|[^>]*)?>[\s,:]*", "", text)

    def replace(match: re.Match[str]) -> str:
        inner = match.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("@"):
            return "@" + (label or (names or {}).get(target[1:]) or target[1:])
        if target.startswith("#"):
            return "#" + (label or target[1:])
        if target.startswith("!subteam^"):
            return label or "@" + target.removeprefix("!subteam^")
        if target.startswith("!"):
            return label or "@" + target[1:].split("^", 1)[0]
        if label and label != target and not _autolinked(target, label):
            return f"{label} ({target})"
        return label or target.removeprefix("mailto:")

    text = _SLACK_MARKUP.sub(replace, text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").strip()


# ---------------------------------------------------------------------------------------------
# Outbound text


def escape(text: str) -> str:
    """Slack's three control characters as entities, so no text can form `<!channel>` and the like."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# Each scan stops where another could begin (a label at '[', bold at '**', indentation at a line
# break), so converting is linear: people's text may be 40,000 characters of '[' or newlines.
_LINK = re.compile(r"\[([^\[\]\n]+)\]\(((?:https?://|mailto:)[^\s()<>]+)\)")
_BOLD = re.compile(r"\*\*(?=\S)((?:[^*\n]|\*(?!\*))+?)(?<=\S)\*\*")
_BULLET = re.compile(r"^([^\S\n]*)- ", re.MULTILINE)


def to_mrkdwn(text: str) -> str:
    """The neutral markdown subset as Slack mrkdwn: **bold** → *bold*, [label](url) → <url|label>,
    "- " bullets → "• ", everything else escaped."""
    parts: list[str] = []
    last = 0
    for match in _LINK.finditer(text):
        parts.append(escape(text[last : match.start()]))
        label = escape(match.group(1)).replace("|", "¦")
        parts.append(f"<{escape(match.group(2))}|{label}>")
        last = match.end()
    parts.append(escape(text[last:]))
    result = "".join(parts)
    result = _BOLD.sub(r"*\1*", result)
    return render_moments(_BULLET.sub(r"\1• ", result), date_token)


# Slack's date tokens (Formatting text: date formatting): `{date_short_pretty}` reads "Today",
# "Yesterday" or "Nov 24, 2026"; `{time}` follows the reader's 12/24-hour setting. Slack documents
# no relative token for `<!date>` in mrkdwn (`{ago}` is documented only for the rich-text date
# element), so a relative moment is its words as of sending: "3 minutes ago" needs no time zone.
DATE_FORMAT: Final = "{date_short_pretty} {time}"


def date_token(moment: Moment) -> str:
    """`<!date^UNIX^FORMAT|fallback>`: the moment in the reader's zone; the fallback (already
    escaped by `to_mrkdwn`) is what clients that cannot format it show. `|` would end nothing but
    reads oddly, so it becomes `¦` as in link labels."""
    if moment.style is TimeStyle.RELATIVE:
        return moment.fallback
    return f"<!date^{moment.unix}^{DATE_FORMAT}|{moment.fallback.replace('|', '¦')}>"


def mention_markup(mention: Mention) -> str:
    """The one place a ping is written. Ids are checked so a bad id cannot smuggle markup in."""
    if not _MENTION_ID.match(mention.id):
        raise ValueError(f"not a Slack id: {mention.id!r}")
    if mention.kind == "user":
        return f"<@{mention.id}>"
    return f"<!subteam^{mention.id}>"


# ---------------------------------------------------------------------------------------------
# Block Kit


@dataclass(frozen=True, slots=True)
class Part:
    """One Web API message: blocks plus the plain fallback `text` (notifications, screen readers)."""

    text: str
    blocks: list[dict[str, Any]]


ACTION_SUFFIX = "::"


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _section_texts(text: str) -> list[str]:
    """Rendered chunks each within a section's 3,000 characters; escaping can lengthen text, so
    split the neutral text and shrink the chunk size until every rendered chunk fits."""
    limit = MAX_SECTION_TEXT - 500
    while True:
        chunks = [to_mrkdwn(chunk) for chunk in split_text(text, limit)] if text.strip() else []
        if all(len(chunk) <= MAX_SECTION_TEXT for chunk in chunks):
            return chunks
        limit //= 2


_PARTIAL_ENTITY = re.compile(r"&[a-z]{0,3}$")


def _truncate(text: str, limit: int) -> str:
    """Cut to `limit` with an ellipsis, never inside an escaped `&lt;`/`&gt;`/`&amp;`."""
    if len(text) <= limit:
        return text
    return _PARTIAL_ENTITY.sub("", text[: limit - 1]) + "…"


def _button_blocks(message: OutboundMessage) -> list[dict[str, Any]]:
    """Action ids must be unique within a block; handlers may reuse one id with different values
    (rating 1-5), so repeats get a `::n` suffix that `decode_action_id` removes again."""
    seen: dict[str, int] = {}
    elements = []
    for button in message.buttons:
        count = seen.get(button.action_id, 0)
        seen[button.action_id] = count + 1
        action_id = button.action_id if count == 0 else f"{button.action_id}{ACTION_SUFFIX}{count}"
        element: dict[str, Any] = {
            "type": "button",
            "action_id": action_id,
            "text": {"type": "plain_text", "text": _truncate(button.label, MAX_BUTTON_LABEL), "emoji": True},
        }
        if button.value:
            element["value"] = button.value[:MAX_BUTTON_VALUE]
        if button.style is not ButtonStyle.DEFAULT:
            element["style"] = button.style.value
        elements.append(element)
    return [
        {"type": "actions", "elements": elements[i : i + MAX_BUTTONS_PER_BLOCK]}
        for i in range(0, len(elements), MAX_BUTTONS_PER_BLOCK)
    ]


def decode_action_id(action_id: str) -> str:
    base, sep, number = action_id.rpartition(ACTION_SUFFIX)
    return base if sep and number.isdigit() else action_id


def render_blocks(message: OutboundMessage) -> list[dict[str, Any]]:
    """Every block of the message, in reading order, without regard to the 50-block limit."""
    blocks: list[dict[str, Any]] = []
    if message.mentions:
        blocks.append({"type": "section", "text": _mrkdwn(" ".join(map(mention_markup, message.mentions)))})
    if message.title:
        if len(message.title) <= MAX_HEADER:
            title = plain_moments(message.title)  # a header is plain text: no tokens
            blocks.append({"type": "header", "text": {"type": "plain_text", "text": title}})
        else:
            blocks.extend(
                {"type": "section", "text": _mrkdwn(f"*{t}*")} for t in _section_texts(message.title)
            )
    blocks.extend({"type": "section", "text": _mrkdwn(chunk)} for chunk in _section_texts(message.text))
    fields = [
        _mrkdwn(_truncate(f"*{escape(plain_moments(f.name))}*\n{to_mrkdwn(f.value)}", MAX_FIELD))
        for f in message.fields
    ]
    for i in range(0, len(fields), MAX_FIELDS_PER_SECTION):
        blocks.append({"type": "section", "fields": fields[i : i + MAX_FIELDS_PER_SECTION]})
    blocks.extend(_button_blocks(message))
    if message.footer:
        blocks.append({"type": "context", "elements": [_mrkdwn(_truncate(to_mrkdwn(message.footer), 2000))]})
    return blocks


def _block_text(block: Mapping[str, Any]) -> str:
    if block["type"] == "actions":
        return ""
    if block["type"] == "context":
        return " ".join(element["text"] for element in block["elements"])
    if "fields" in block:
        return "\n".join(f["text"] for f in block["fields"])
    text = block["text"]["text"]
    return escape(text) if block["type"] == "header" else text


def render(message: OutboundMessage, *, max_blocks: int = MAX_BLOCKS) -> list[Part]:
    """The message as one or more Slack messages, each within Slack's limits, each with fallback text.

    More than `max_blocks` blocks become several messages in order; buttons stay on the last one.
    """
    blocks = render_blocks(message)
    parts = [blocks[i : i + max_blocks] for i in range(0, len(blocks), max_blocks)] or [[]]
    rendered = []
    for part in parts:
        fallback = "\n".join(t for t in map(_block_text, part) if t) or to_mrkdwn(message.plain_text)
        rendered.append(Part(text=_truncate(fallback, MAX_FALLBACK), blocks=part))
    return rendered


def render_single(message: OutboundMessage) -> Part:
    """For edits, which replace exactly one message: keep within 50 blocks, marking the cut."""
    blocks = render_blocks(message)
    if len(blocks) > MAX_BLOCKS:
        buttons = [b for b in blocks if b["type"] == "actions"][: MAX_BLOCKS // 2]
        others = [b for b in blocks if b["type"] != "actions"][: MAX_BLOCKS - len(buttons) - 1]
        blocks = [*others, {"type": "context", "elements": [_mrkdwn("… (shortened)")]}, *buttons]
    fallback = "\n".join(t for t in map(_block_text, blocks) if t)
    return Part(text=_truncate(fallback, MAX_FALLBACK), blocks=blocks)


# ---------------------------------------------------------------------------------------------
# Inbound payloads


def _occurred(ts: str | None) -> datetime:
    return _moment(ts) or datetime.now(UTC)


def _moment(ts: str | None) -> datetime | None:
    """The time a Slack timestamp (`1712345678.000100`) names, None for none or a malformed one."""
    try:
        return datetime.fromtimestamp(float(ts), UTC) if ts else None
    except (ValueError, OverflowError, OSError):
        return None


def conversation_from(
    team_id: str, channel_id: str, *, thread_ts: str | None = None, channel_type: str | None = None
) -> Conversation:
    is_direct = channel_type == "im" or channel_id.startswith("D")
    return Conversation(
        platform=Platform.SLACK,
        workspace_id=team_id,
        channel_id=channel_id,
        thread_id=thread_ts or None,
        is_direct=is_direct,
    )


def event_team(body: Mapping[str, Any]) -> str:
    event = body.get("event") or {}
    return str(body.get("team_id") or event.get("team") or (body.get("team") or {}).get("id") or "")


def message_author(event: Mapping[str, Any], *, bot_user_id: str, bot_id: str = "") -> str | None:
    """The person who wrote a message event, or None when the bot must ignore it: its own posts,
    other bots, edits, deletions and other system subtypes."""
    if event.get("subtype") not in _PERSON_SUBTYPES or event.get("hidden"):
        return None
    if event.get("bot_id") or event.get("bot_profile"):
        return None
    user = event.get("user")
    if not user or user == bot_user_id or (bot_id and event.get("bot_id") == bot_id):
        return None
    return str(user)


def message_event_id(event: Mapping[str, Any]) -> str:
    """One id per message, not per delivery: Slack sends a `message` and an `app_mention` event
    (two event_ids) for one mention, and both must be handled once."""
    return f"msg:{event.get('channel')}:{event.get('ts')}"


def _file(file: Mapping[str, Any]) -> SharedFile | None:
    """One of a message's `files`, or None for one deleted since (`mode: tombstone`). Its link is
    its permalink, a page people of the workspace open with their own login; `url_private` is no
    link for people (it needs the bot's token), but the ref the adapter downloads the file by. A
    file hidden by the workspace's plan, or sent as `file_access: check_file_info`, comes with its
    id alone: a file without a name, a link or a ref."""
    if file.get("mode") == "tombstone":
        return None
    name, kind, link = (file.get(key) for key in ("name", "mimetype", "permalink"))
    size = file.get("size")
    download = file.get("url_private_download") or file.get("url_private")
    return SharedFile(
        name=name if isinstance(name, str) else "",
        size=size if type(size) is int and size >= 0 else None,
        kind=kind if isinstance(kind, str) else "",
        link=link if isinstance(link, str) and link.startswith("https://") else "",
        ref=download if isinstance(download, str) and download.startswith(("https://", "http://")) else "",
    )


def files_of(event: Mapping[str, Any]) -> tuple[SharedFile, ...]:
    """The files a message event carried (`files`, with subtype `file_share` or in a thread)."""
    files = event.get("files")
    if not isinstance(files, list):
        return ()
    shared = (_file(f) for f in files[:MAX_FILES_PER_MESSAGE] if isinstance(f, Mapping))
    return tuple(f for f in shared if f is not None)


def message_to_event(
    body: Mapping[str, Any], *, actor: Actor, bot_user_id: str, names: Mapping[str, str] | None = None
) -> MessageReceived:
    """A `message` or `app_mention` event callback as a MessageReceived. Check `message_author`
    first: this assumes a person wrote it. A reply names its thread's first post by its time
    (`thread_ts`) and that post's author (`parent_user_id`): the bot's user (`bot_user_id`, from
    auth.test) when the thread is under one of the bot's posts."""
    event = body["event"]
    raw = str(event.get("text") or "")
    thread_ts = event.get("thread_ts")
    ts = str(event["ts"])
    where = conversation_from(
        event_team(body),
        str(event["channel"]),
        thread_ts=str(thread_ts) if thread_ts and thread_ts != ts else None,
        channel_type=event.get("channel_type"),
    )
    mentions_bot = (
        event.get("type") == "app_mention"
        or where.is_direct
        or (bool(bot_user_id) and f"<@{bot_user_id}" in raw)
    )
    # `app_mention` carries no `parent_user_id` (Slack's AppMentionEvent), and it may be the twin of
    # the message Slack delivers first: a thread it does not place may be under the bot's post. The
    # staff thread handler waits on that only while a card is on its way.
    parent = event.get("parent_user_id", bot_user_id if event.get("type") == "app_mention" else None)
    return MessageReceived(
        actor=actor,
        conversation=where,
        text=slack_to_plain(raw, bot_user_id=bot_user_id, names=names),
        message_id=ts,
        mentions_bot=mentions_bot,
        event_id=message_event_id(event),
        occurred_at=_occurred(ts),
        files=files_of(event),
        in_own_thread=bool(where.thread_id and bot_user_id) and parent == bot_user_id,
        thread_started_at=_moment(where.thread_id),
    )


def command_to_event(form: Mapping[str, Any], *, actor: Actor) -> CommandInvoked:
    """A slash command (form fields, or a Socket Mode payload). `trigger_id` is unique per
    invocation, so it is the event id."""
    channel_id = str(form.get("channel_id") or "")
    where = conversation_from(
        str(form.get("team_id") or ""),
        channel_id,
        channel_type="im" if form.get("channel_name") == "directmessage" else None,
    )
    return CommandInvoked(
        actor=actor,
        conversation=where,
        name=str(form.get("command", "")).lstrip("/").lower() or "support",
        args=slack_to_plain(str(form.get("text") or "")),
        event_id=f"cmd:{form.get('trigger_id') or form.get('response_url')}",
    )


def action_to_event(payload: Mapping[str, Any], *, actor: Actor) -> ActionInvoked | None:
    """A `block_actions` click on one of our buttons; None for other interaction types and for
    clicks outside a conversation (a modal, the App Home tab), which the bot has none of."""
    if payload.get("type") != "block_actions" or not payload.get("actions"):
        return None
    action = payload["actions"][0]
    container = payload.get("container") or {}
    message = payload.get("message") or {}
    channel_id = str((payload.get("channel") or {}).get("id") or container.get("channel_id") or "")
    if not channel_id:
        return None
    ts = message.get("ts") or container.get("message_ts")
    thread_ts = message.get("thread_ts") or container.get("thread_ts")
    where = conversation_from(
        str((payload.get("team") or {}).get("id") or (payload.get("user") or {}).get("team_id") or ""),
        channel_id,
        thread_ts=str(thread_ts) if thread_ts and thread_ts != ts else None,
    )
    value = action.get("value")
    if value is None and action.get("selected_option"):
        value = action["selected_option"].get("value")
    return ActionInvoked(
        actor=actor,
        conversation=where,
        action_id=decode_action_id(str(action.get("action_id", ""))),
        value=str(value or ""),
        message_id=str(ts) if ts else None,
        event_id=f"act:{payload.get('trigger_id') or action.get('action_ts')}",
        occurred_at=_occurred(action.get("action_ts")),
    )


def emoji_name(reaction: str) -> str:
    name = reaction.split("::", 1)[0]
    return _EMOJI_ALIASES.get(name, name)


def reaction_to_event(
    body: Mapping[str, Any],
    *,
    actor: Actor,
    message: Mapping[str, Any] | None = None,
    bot_user_id: str = "",
    bot_id: str = "",
) -> ReactionAdded | None:
    """A `reaction_added` on a message. `message` is the reacted-to message when the adapter could
    fetch it (its text, files and thread); without it `message_text` is None, there are no files and
    the thread is unknown (the payload names a reply by its channel alone). The bot's own posts are
    written by its user (`bot_user_id`, from auth.test) as its bot (`bot_id`)."""
    event = body["event"]
    item = event.get("item") or {}
    if item.get("type") != "message":
        return None
    ts = str(item["ts"])
    thread_ts = (message or {}).get("thread_ts")
    text = (message or {}).get("text")
    author = event.get("item_user") or (message or {}).get("user")
    own = (bool(bot_user_id) and author == bot_user_id) or (
        bool(bot_id) and (message or {}).get("bot_id") == bot_id
    )
    return ReactionAdded(
        actor=actor,
        conversation=conversation_from(
            event_team(body),
            str(item["channel"]),
            thread_ts=str(thread_ts) if thread_ts and thread_ts != ts else None,
        ),
        emoji=emoji_name(str(event.get("reaction", ""))),
        message_id=ts,
        message_author_id=author,
        message_text=slack_to_plain(str(text)) if text is not None else None,
        message_files=files_of(message or {}),
        on_own_message=own,
        thread_unknown=message is None,
        event_id=str(body.get("event_id") or f"react:{item['channel']}:{ts}:{event.get('event_ts')}"),
        occurred_at=_occurred(event.get("event_ts")),
    )


def actor_from_user(user: Mapping[str, Any], *, roles: frozenset[str] = frozenset()) -> Actor:
    """A `users.info` user as an Actor: display name first, then real name, then handle."""
    profile = user.get("profile") or {}
    name = (
        profile.get("display_name")
        or profile.get("real_name")
        or user.get("real_name")
        or user.get("name")
        or ""
    )
    if user.get("is_admin") or user.get("is_owner"):
        # Workspace admins may manage any channel's status subscription.
        roles = roles | {CHANNEL_ADMIN}
    return Actor(
        platform=Platform.SLACK,
        id=str(user["id"]),
        display_name=str(name),
        is_bot=bool(user.get("is_bot")),
        roles=roles,
    )


# ---------------------------------------------------------------------------------------------
# Errors


def delivery_error(status: int, error: str, *, retry_after: str | None = None) -> DeliveryError:
    """What a failed Web API call (HTTP `status`, Slack's `error` name) means for the delivery, in
    `DeliveryFailure` terms; `detail` keeps Slack's own name."""
    name = error or f"http_{status}"
    if status == 429 or name == "ratelimited":
        return DeliveryError(
            "Slack rate limit",
            permanent=False,
            retry_after=float(retry_after or 1),
            code=DeliveryFailure.RATE_LIMITED,
            detail=name,
        )
    failure = PERMANENT_ERRORS.get(name)
    return DeliveryError(
        f"Slack API error {name}",
        permanent=failure is not None,
        code=failure or DeliveryFailure.UNAVAILABLE,
        detail=name,
    )
