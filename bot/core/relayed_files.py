"""Files passed on from a person's message (a customer's screenshot to the team's thread): fetched
by the adapter that received them, when the message carrying them is sent, whatever platform it
goes to. A file that cannot go is never a lost message: the message carries its line instead."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import fields, replace

from bot.adapters.base import Adapter, FetchesFiles, FileNotFetched
from bot.core.events import Attachment, Delivery, FetchFrom, Platform, SharedFile
from bot.core.sizes import size_text

log = logging.getLogger(__name__)

FETCH_LIMIT = 8 * 1024 * 1024
"""The most bytes fetched for one message, all its files together (less where the platform it
goes to takes less): what a message being sent holds in memory, whatever people shared."""
FETCH_SECONDS = 20.0
"""How long one file may take to fetch before its line goes instead."""


async def fetch_relayed(
    delivery: Delivery, adapters: Mapping[Platform, Adapter]
) -> tuple[Delivery, Delivery | None]:
    """The delivery with each file to fetch (`Attachment.fetch`) either fetched or, when it cannot
    go (too large, gone, not the bot's to read, slow, or the message cannot carry files), left out
    with its line added to the message's text; and its `files_not_attached` naming those, if any."""
    message = delivery.message
    if not any(a.fetch is not None for a in message.attachments):
        return delivery, None
    target = adapters.get(delivery.conversation.platform)
    carries_files = delivery.edit is None and message.private_to is None and target is not None
    budget = min(target.capabilities.max_file_bytes, FETCH_LIMIT) if carries_files and target else 0
    kept: list[Attachment] = []
    instead: list[str] = []
    why_not: list[str] = []
    for attachment in message.attachments:
        if attachment.fetch is None:
            kept.append(attachment)
            continue
        try:
            data = await _fetch(attachment.fetch, adapters, limit=budget)
        except FileNotFetched as why:
            log.warning("a %s file goes as its line, not attached: %s", attachment.fetch.platform.value, why)
            instead.append(attachment.not_attached(why))
            why_not.append(f"`{attachment.filename}` ({why})")
            continue
        budget -= len(data)
        kept.append(replace(attachment, data=data, fetch=None))
    text = "\n".join([message.text, *instead]) if message.text.strip() else "\n".join(instead)
    fetched = replace(delivery, message=replace(message, text=text, attachments=tuple(kept)))
    return fetched, _files_not_attached(delivery, why_not)


def _files_not_attached(delivery: Delivery, why_not: list[str]) -> Delivery | None:
    """`delivery.files_not_attached` with the files that could not go, and why, after its text."""
    notice = delivery.files_not_attached
    if notice is None or not why_not:
        return None
    said = f"{notice.message.text} {'; '.join(why_not)}".strip()
    # Its key follows from the message's, so a replay is recognised as the same notice.
    key = notice.idempotency_key or (
        f"{delivery.idempotency_key}-files" if delivery.idempotency_key else None
    )
    return replace(
        notice, message=replace(notice.message, text=said), idempotency_key=key, resend=delivery.resend
    )


async def _fetch(fetch: FetchFrom, adapters: Mapping[Platform, Adapter], *, limit: int) -> bytes:
    file = fetch.file
    if limit <= 0:
        raise FileNotFetched("no room for it: the message cannot carry files, or its others took it all")
    if file.size is not None and file.size > limit:
        raise FileNotFetched(f"{size_text(file.size)}, over {size_text(limit)}")
    source = adapters.get(fetch.platform)
    if not file.ref or not isinstance(source, FetchesFiles):
        raise FileNotFetched(f"the {fetch.platform.value} adapter cannot fetch it")
    try:
        async with asyncio.timeout(FETCH_SECONDS):
            return await source.fetch_file(file, limit=limit)
    except TimeoutError:
        raise FileNotFetched(f"not fetched within {FETCH_SECONDS:.0f}s") from None
    except FileNotFetched:
        raise
    except Exception as error:  # an adapter's failure costs the file, never the message
        raise FileNotFetched(f"the fetch failed ({type(error).__name__})") from None


_KEPT = tuple(f.name for f in fields(SharedFile))


def kept_files(files: Sequence[SharedFile]) -> str | None:
    """The files as a row keeps them (a question's, until "I still need help" opens its ticket): what
    the adapter that received them needs to fetch them again, as `SharedFile` holds it; never their
    bytes. None for no files."""
    if not files:
        return None
    return json.dumps([{name: getattr(file, name) for name in _KEPT} for file in files])


def files_kept(text: str | None) -> tuple[SharedFile, ...]:
    """The files `kept_files` wrote. Text that is not theirs is no files: an erasure or the retention
    purge replaced it, and the files went with the words."""
    try:
        kept = json.loads(text) if text else []
        return tuple(
            SharedFile(**{name: value for name, value in item.items() if name in _KEPT}) for item in kept
        )
    except (ValueError, TypeError, AttributeError):
        return ()
