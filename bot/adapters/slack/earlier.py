"""What an earlier attempt at a keyed message left in a Slack channel or thread, read from a page of
its messages, so that a resend posts only what is missing.

Slack has no idempotency key. Each text part carries the message's key as message metadata. A
file cannot: the upload's message (files.completeUploadExternal) takes no `metadata`, and its
`initial_comment` or blocks would show the key to people. So the files are known by where they
are: the bot uploads them right after the message's last part, so the files it shared there, before
its next message that is not a file, are that message's, recognised by name and size. A file shared
by a later message (the same screenshot relayed again) comes after that later message's own text,
so it is never taken for this one's."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

DELIVERY_METADATA = "supportbot_delivery"
"""The metadata event type on keyed posts, whose payload is {"key": ..., "part": index}."""

SeenFile = tuple[str, int]
"""A file as a message shows it, enough to recognise it again: its name and size in bytes."""


@dataclass(frozen=True, slots=True)
class EarlierCopy:
    """The parts of the message found (part index -> ts), and the files shared after its last."""

    parts: Mapping[int, str] = field(default_factory=dict)
    files: tuple[SeenFile, ...] = ()

    def has_all(self, parts: int) -> bool:
        """Whether each of the message's `parts` was found: only then can its files have gone."""
        return all(index in self.parts for index in range(parts))


NOTHING_EARLIER = EarlierCopy()


def metadata(key: str, part: int) -> dict[str, Any]:
    """What part `part` of the message `key` carries, for `earlier_copy` to find it by."""
    return {"event_type": DELIVERY_METADATA, "event_payload": {"key": key, "part": part}}


def earlier_copy(
    messages: Iterable[Mapping[str, Any]], *, key: str, bot_user_id: str, bot_id: str
) -> EarlierCopy:
    """What the bot posted of the message `key` among `messages` (in any order)."""
    ours = _ours(messages, bot_user_id=bot_user_id, bot_id=bot_id)
    parts: dict[int, str] = {}
    for message in ours:
        part = _part_of(message, key)
        if part is not None:
            parts[part] = str(message["ts"])
    if not parts:
        return NOTHING_EARLIER
    return EarlierCopy(parts=parts, files=_files_after(ours, max(parts.values(), key=float)))


def files_after(
    messages: Iterable[Mapping[str, Any]], ts: str, *, bot_user_id: str, bot_id: str
) -> tuple[SeenFile, ...]:
    """The files the bot shared among `messages` right after its message `ts`, before its next
    message that is not a file."""
    return _files_after(_ours(messages, bot_user_id=bot_user_id, bot_id=bot_id), ts)


def still_to_upload(
    files: Iterable[SeenFile], already: Iterable[SeenFile], *, besides: Iterable[SeenFile] = ()
) -> list[bool]:
    """For each file (name, size) in order, whether it is still to go: each file `already` shared
    stands for one file of that name and size, not more, and those `besides` (the message's other
    files, known to be there) for none."""
    there = Counter(already) - Counter(besides)
    wanted: list[bool] = []
    for file in files:
        wanted.append(there[file] <= 0)
        there[file] -= 1
    return wanted


def _ours(messages: Iterable[Mapping[str, Any]], *, bot_user_id: str, bot_id: str) -> list[Mapping[str, Any]]:
    """The bot's messages, oldest first."""
    mine = (m for m in messages if _by_the_bot(m, bot_user_id=bot_user_id, bot_id=bot_id))
    return sorted(mine, key=lambda m: float(m["ts"]))


def _files_after(ours: list[Mapping[str, Any]], ts: str) -> tuple[SeenFile, ...]:
    files: list[SeenFile] = []
    for message in (m for m in ours if float(m["ts"]) > float(ts)):
        shared = message.get("files")
        if not shared or message.get("metadata"):
            break
        files.extend((str(f.get("name") or ""), int(f.get("size") or 0)) for f in shared)
    return tuple(files)


def _by_the_bot(message: Mapping[str, Any], *, bot_user_id: str, bot_id: str) -> bool:
    # A posted message names the bot's app (`bot_id`); a file share may name only the bot's user.
    if message.get("bot_id"):
        return bool(bot_id) and message["bot_id"] == bot_id
    return bool(bot_user_id) and message.get("user") == bot_user_id


def _part_of(message: Mapping[str, Any], key: str) -> int | None:
    meta = message.get("metadata") or {}
    payload = meta.get("event_payload") or {}
    if meta.get("event_type") != DELIVERY_METADATA or payload.get("key") != key:
        return None
    part = payload.get("part")
    return part if isinstance(part, int) else None
