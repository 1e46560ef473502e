"""The common event model: what every adapter turns platform traffic into, and what handlers reply with.

Standard library only. Inbound events are facts that happened on a platform; outbound messages are
neutral data that each adapter renders in its platform's idiom (Block Kit, embeds, plain text).
"""

from __future__ import annotations

import enum
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Final

from bot.core.clock import utc_now


class Platform(enum.StrEnum):
    SLACK = "slack"
    DISCORD = "discord"
    CONSOLE = "console"


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


# The role adapters give a person who may manage the channel they are in (Discord: Manage Channels
# or Administrator; Slack: a workspace admin or owner). Such people may manage its status subscription.
CHANNEL_ADMIN: Final = "channel_admin"


@dataclass(frozen=True, slots=True, kw_only=True)
class Actor:
    """Who did something, as the platform knows them."""

    platform: Platform
    id: str
    display_name: str = ""
    is_bot: bool = False
    roles: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        _require(bool(self.id), "Actor.id must not be empty")
        if not isinstance(self.roles, frozenset):
            object.__setattr__(self, "roles", frozenset(self.roles))

    @property
    def key(self) -> str:
        """A stable identity across platforms, e.g. `slack:U123`."""
        return f"{self.platform.value}:{self.id}"

    @property
    def name(self) -> str:
        return self.display_name or self.id


@dataclass(frozen=True, slots=True, kw_only=True)
class Conversation:
    """Where something happened: a channel, optionally a thread in it, or a direct message."""

    platform: Platform
    workspace_id: str = ""
    channel_id: str
    thread_id: str | None = None
    is_direct: bool = False

    def __post_init__(self) -> None:
        _require(bool(self.channel_id), "Conversation.channel_id must not be empty")
        _require(self.thread_id != "", "Conversation.thread_id is None or a real id, never ''")

    @property
    def key(self) -> str:
        """Identifies the channel, or the thread inside it, across platforms and workspaces."""
        base = f"{self.platform.value}:{self.workspace_id}:{self.channel_id}"
        return f"{base}:{self.thread_id}" if self.thread_id else base

    @property
    def channel_key(self) -> str:
        return f"{self.platform.value}:{self.workspace_id}:{self.channel_id}"

    def in_thread(self, thread_id: str) -> Conversation:
        return Conversation(
            platform=self.platform,
            workspace_id=self.workspace_id,
            channel_id=self.channel_id,
            thread_id=thread_id,
            is_direct=self.is_direct,
        )

    def without_thread(self) -> Conversation:
        return Conversation(
            platform=self.platform,
            workspace_id=self.workspace_id,
            channel_id=self.channel_id,
            is_direct=self.is_direct,
        )


def _new_event_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundEvent:
    """Something a person did on a platform.

    `event_id` is the platform's own id for the delivery (Slack `event_id`, Discord interaction or
    message id) so that a redelivery of the same thing is recognised and handled once.
    """

    actor: Actor
    conversation: Conversation
    event_id: str = field(default_factory=_new_event_id)
    occurred_at: datetime = field(default_factory=utc_now)

    def __post_init__(self) -> None:
        _require(bool(self.event_id), "event_id must not be empty")
        _require(
            self.actor.platform == self.conversation.platform,
            "actor and conversation must be on the same platform",
        )
        _require(self.occurred_at.tzinfo is not None, "occurred_at must be timezone-aware")

    @property
    def platform(self) -> Platform:
        return self.conversation.platform


@dataclass(frozen=True, slots=True, kw_only=True)
class SharedFile:
    """A file a person's message carried, as the platform describes it.

    `size` is in bytes (None when the platform did not say); `kind` its content type when known
    ("image/png"); `link` where the people the bot tells about it can open it, a page of the platform
    (Slack's file permalink, Discord's attachment URL), never a download URL that needs the bot's
    token: "" when the platform gave none."""

    name: str
    size: int | None = None
    kind: str = ""
    link: str = ""
    ref: str = field(default="", repr=False)
    """What the adapter that received it needs to fetch its bytes (`FetchesFiles`): opaque to
    everyone else, never shown or logged (Slack: its `url_private_download`, which needs the bot's
    token; Discord: its attachment URL). "" when it cannot be fetched."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MessageReceived(InboundEvent):
    """A message a person wrote in a channel, thread or DM. A file sent alone has no `text`.
    `in_own_thread`: the message is in a thread the bot started, under its own post or opened by it
    (the adapter knows its own user id, as for `ReactionAdded.on_own_message`). `thread_started_at`:
    when the message's thread began (its first post), where the platform says; None outside a
    thread. Together they tell a reply under a staff card just posted, whose thread the bot may not
    have noted yet, from talk under an older post of the bot's."""

    text: str
    message_id: str
    mentions_bot: bool = False
    files: tuple[SharedFile, ...] = ()
    in_own_thread: bool = False
    thread_started_at: datetime | None = None

    def __post_init__(self) -> None:
        InboundEvent.__post_init__(self)
        if not isinstance(self.files, tuple):
            object.__setattr__(self, "files", tuple(self.files))
        _require(
            self.thread_started_at is None or self.thread_started_at.tzinfo is not None,
            "thread_started_at must be timezone-aware",
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class CommandInvoked(InboundEvent):
    """A slash command, e.g. `/ticket status 42` is name="ticket", args="status 42". `args` is as
    typed: the router reads its words (see `router.command`), free text in it is relayed as typed."""

    name: str
    args: str = ""

    def __post_init__(self) -> None:
        InboundEvent.__post_init__(self)
        _require(bool(self.name) and not self.name.startswith("/"), "command name is bare: 'ticket'")


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionInvoked(InboundEvent):
    """A click on a button (or a select) the bot rendered."""

    action_id: str
    value: str = ""
    message_id: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReactionAdded(InboundEvent):
    """An emoji reaction added to a message. `emoji` is a neutral name: 'ticket', 'thumbsup'.
    `on_own_message`: the message is the bot's own post (the adapter knows its own user id; a
    handler cannot, for it is a platform's id, not a name). `thread_unknown`: the platform names
    the message without its thread and the adapter could not read it (Slack), so `conversation`
    is its channel although it may be a reply in a thread."""

    emoji: str
    message_id: str
    message_author_id: str | None = None
    message_text: str | None = None
    message_files: tuple[SharedFile, ...] = ()
    """The files the message carried, where the adapter read it (as `message_text`)."""
    on_own_message: bool = False
    thread_unknown: bool = False


# ---------------------------------------------------------------------------------------------
# Outbound


class ButtonStyle(enum.StrEnum):
    DEFAULT = "default"
    PRIMARY = "primary"
    DANGER = "danger"


@dataclass(frozen=True, slots=True, kw_only=True)
class Button:
    """A button; clicking it comes back as ActionInvoked(action_id, value)."""

    action_id: str
    label: str
    value: str = ""
    style: ButtonStyle = ButtonStyle.DEFAULT

    def __post_init__(self) -> None:
        _require(bool(self.action_id), "Button.action_id must not be empty")
        _require(bool(self.label), "Button.label must not be empty")


@dataclass(frozen=True, slots=True, kw_only=True)
class Field:
    name: str
    value: str
    inline: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class Mention:
    """A deliberate ping. Adapters render only these as mentions; everything in `text` is inert."""

    kind: str  # "user" or "group"
    id: str

    def __post_init__(self) -> None:
        _require(self.kind in ("user", "group"), "Mention.kind is 'user' or 'group'")
        _require(bool(self.id), "Mention.id must not be empty")


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchFrom:
    """A file someone shared on `platform`, to be fetched by that platform's adapter when the message
    carrying it is sent: a message is kept with its event until posted, so it holds this, never the
    bytes."""

    platform: Platform
    file: SharedFile


@dataclass(frozen=True, slots=True, kw_only=True)
class Attachment:
    """A file sent with a message (the digest's chart): its bytes, the path to read them from, or
    where to fetch them (`fetch`, a file relayed from a person's message; the core fetches it
    before any adapter sees the message).

    `title` names it for people ("Main chart"), also in the note an adapter adds when the file
    could not be attached; `alt_text` describes it for screen readers. `instead` is what the
    message says in that note's place, when set (a relayed file's line: its name, size and link),
    so that a file which cannot go still reaches its readers as a link."""

    filename: str
    data: bytes | None = None
    path: Path | None = None
    fetch: FetchFrom | None = None
    title: str = ""
    alt_text: str = ""
    instead: str = ""

    def __post_init__(self) -> None:
        _require(bool(self.filename.strip()), "Attachment.filename must not be empty")
        _require("/" not in self.filename and "\\" not in self.filename, "Attachment.filename is a bare name")
        sources = (self.data, self.path, self.fetch)
        _require(sum(s is not None for s in sources) == 1, "an Attachment has data, a path or a fetch")

    @property
    def label(self) -> str:
        return f"{self.title} ({self.filename})" if self.title else self.filename

    def not_attached(self, why: object) -> str:
        """The line a message carries for this file when it could not go, and why (or `instead`)."""
        return self.instead or f"\u26a0\ufe0f {self.label} could not be attached: {why}."

    def read(self) -> bytes:
        """The file's bytes (OSError when its path cannot be read)."""
        if self.data is not None:
            return self.data
        if self.path is None:
            raise OSError(0, "not fetched")  # the core fetches a relayed file before adapters read it
        return self.path.read_bytes()


class TimeStyle(enum.StrEnum):
    """How a moment in a message reads (the letters are Discord's `<t:…:f>` styles)."""

    DATETIME = "f"  # "Nov 24, 2026 9:12 AM" in the reader's own zone
    RELATIVE = "R"  # "5 minutes ago", kept current by the reader's app


@dataclass(frozen=True, slots=True)
class Moment:
    """A moment written into message text by `timestamp()`, as an adapter receives it to render."""

    unix: int
    style: TimeStyle
    fallback: str


# Private-use characters delimit the marker: nobody types them, and if someone did, the worst a
# forged one can become is a date (the pattern admits digits, a style letter and fallback text).
_MOMENT_START, _MOMENT_END = "\ue000", "\ue001"
_MOMENT = re.compile("\ue000(-?[0-9]{1,12}):([fR]):([^\ue000\ue001]{0,80})\ue001")


def timestamp(at: datetime, style: TimeStyle, *, fallback: str) -> str:
    """A moment inside message text that every reader sees in their own time zone: each adapter
    renders it in its platform's syntax (Discord `<t:…>`, Slack `<!date^…>`); the console,
    transcripts and `plain_text` show `fallback` (UTC words, written with the domain's clock)."""
    text = fallback.replace(_MOMENT_START, "").replace(_MOMENT_END, "")[:80]
    return f"{_MOMENT_START}{int(at.timestamp())}:{TimeStyle(style).value}:{text}{_MOMENT_END}"


def render_moments(text: str, render: Callable[[Moment], str]) -> str:
    """Every moment in `text` replaced by what `render` makes of it."""
    if _MOMENT_START not in text:
        return text
    return _MOMENT.sub(lambda m: render(Moment(int(m[1]), TimeStyle(m[2]), m[3])), text)


def plain_moments(text: str) -> str:
    """Moments as their fallback text: for places that show no platform markup."""
    return render_moments(text, lambda m: m.fallback)


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboundMessage:
    """A reply as data.

    `text` is a markdown subset both platforms render (**bold**, _italic_, `code`, [label](url),
    "- " bullets). Adapters escape it so that nothing in it can ping anyone; deliberate pings go in
    `mentions`. `private_to` makes the message visible only to that actor where the platform can
    (Slack ephemeral, Discord ephemeral interaction reply) and a DM or plain reply elsewhere.
    `attachments` go with the message where the platform can upload files; where one cannot be
    attached, the message still goes out and says so.
    """

    text: str
    title: str | None = None
    fields: tuple[Field, ...] = ()
    buttons: tuple[Button, ...] = ()
    mentions: tuple[Mention, ...] = ()
    private_to: Actor | None = None
    in_thread: bool = True
    footer: str | None = None
    attachments: tuple[Attachment, ...] = ()

    def __post_init__(self) -> None:
        # A blank title is no title: the platforms refuse a message with nothing to show.
        _require(bool(self.text.strip() or (self.title or "").strip()), "a message needs text or a title")
        for name in ("fields", "buttons", "mentions", "attachments"):
            value = getattr(self, name)
            if not isinstance(value, tuple):
                object.__setattr__(self, name, tuple(value))

    @property
    def plain_text(self) -> str:
        """Everything a reader would see, as one plain string (fallback text, transcripts, tests)."""
        parts = [self.title] if self.title else []
        parts.append(self.text)
        parts.extend(f"{f.name}: {f.value}" for f in self.fields)
        if self.footer:
            parts.append(self.footer)
        return plain_moments("\n".join(p for p in parts if p))


@dataclass(frozen=True, slots=True, kw_only=True)
class SentRef:
    """Where a message landed, so it can be edited or threaded under later."""

    platform: Platform
    channel_id: str
    message_id: str
    workspace_id: str = ""
    thread_id: str | None = None
    is_direct: bool = False
    """It landed in the bot's direct messages with someone (a `Delivery.direct_to`)."""
    is_private: bool = False
    """Only the person it was for sees it (an ephemeral reply): nobody can thread under it."""
    fallback: bool = False
    """It landed where the delivery's `or_else` sent it, the place it was meant for refusing it: what
    it was about did not reach that place (a staff answer the customer never saw)."""

    @property
    def conversation(self) -> Conversation:
        return Conversation(
            platform=self.platform,
            workspace_id=self.workspace_id,
            channel_id=self.channel_id,
            thread_id=self.thread_id,
            is_direct=self.is_direct,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class NewThread:
    """Ask for a new thread of its own for a message (a ticket's private room): titled `title`, with
    `invite` in it. Where the platform can (Discord private threads) the message opens it and its
    SentRef.thread_id names it; elsewhere the message is a reply in the thread under the message it
    answers, as without this."""

    title: str
    invite: tuple[Actor, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """An outbound message and where it goes.

    `conversation.thread_id` set means "in that thread"; `reply_to` is the inbound event this answers,
    so an adapter can use an interaction's response channel (Slack response_url, Discord interaction
    token) when one exists.
    """

    conversation: Conversation
    message: OutboundMessage
    reply_to: InboundEvent | None = None
    edit: SentRef | None = None
    # Stable per logical message (the broadcast outbox sets it). An adapter whose platform dedupes
    # (Discord `nonce` + `enforce_nonce`) passes it on, so a resend after a crash posts nothing new.
    idempotency_key: str | None = None
    new_thread: NewThread | None = None
    # An earlier attempt with the same key may have reached the platform (it timed out, or the
    # process died before recording it). An adapter whose platform has no dedupe of its own looks
    # for that message before posting again (Slack: message metadata).
    resend: bool = False
    # In the bot's direct messages with this person instead of `conversation` (which stays what the
    # message is about): the adapter opens them if need be, and the SentRef names them.
    direct_to: Actor | None = None
    # Sent instead when the platform refuses `conversation` for good, the bot not allowed there or
    # the channel gone (a command typed in a private channel the bot was never invited to), or the
    # person's DMs closed to the bot; with the same key, suffixed, and the same `resend`.
    or_else: Delivery | None = None
    # Sent after the message reached its conversation, when some of the files it passes on
    # (`Attachment.fetch`) could not go: its text followed by each one's name and why, on one line,
    # so the person who shared them knows (a team member's file their customer got as a name).
    files_not_attached: Delivery | None = None
