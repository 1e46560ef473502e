"""Files sent with messages, the same on every platform: reading them, holding them to a platform's
size limit, and the note a message carries about a file that could not be attached."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace

from bot.core.events import Attachment, OutboundMessage
from bot.core.sizes import size_text

NOT_IN_PRIVATE = "files go only with messages in a channel, not with private replies or edits"

Loaded = list[tuple[Attachment, bytes]]
Failed = list[tuple[Attachment, str]]


def too_large(size: int, limit: int) -> str | None:
    """Why a file of `size` bytes cannot go where `limit` is the largest (0: no files at all)."""
    if limit <= 0:
        return "files cannot be attached here"
    if size > limit:
        return f"{size_text(size)}, over the {size_text(limit)} limit"
    return None


async def load(attachments: Sequence[Attachment], *, limit: int) -> tuple[Loaded, Failed]:
    """Each file's bytes (read off the event loop), or why it cannot go."""
    loaded: Loaded = []
    failed: Failed = []
    for attachment in attachments:
        try:
            data = await asyncio.to_thread(attachment.read)
        except OSError as error:
            failed.append((attachment, f"the file cannot be read ({error.strerror or type(error).__name__})"))
            continue
        refused = too_large(len(data), limit)
        if refused is None:
            loaded.append((attachment, data))
        else:
            failed.append((attachment, refused))
    return loaded, failed


def not_attached_note(failed: Failed) -> str:
    """One line per file that could not be attached, and why."""
    return "\n".join(f"\u26a0\ufe0f {a.label} could not be attached: {why}." for a, why in failed)


def with_note(
    message: OutboundMessage, failed: Failed, *, keep: Sequence[Attachment] = ()
) -> OutboundMessage:
    """The message saying which files could not be attached, with only the files in `keep`: it
    goes out anyway."""
    if not failed:
        return replace(message, attachments=tuple(keep))
    note = not_attached_note(failed)
    text = f"{message.text}\n{note}" if message.text.strip() else note
    return replace(message, text=text, attachments=tuple(keep))


def without_files(message: OutboundMessage, why: str = NOT_IN_PRIVATE) -> OutboundMessage:
    """Where a platform cannot attach: the message, saying so for each of its files."""
    return with_note(message, [(a, why) for a in message.attachments]) if message.attachments else message
