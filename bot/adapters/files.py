"""Files sent with messages, the same on every platform: reading them, holding them to a platform's
size limit, the note a message carries about a file that could not be attached, and downloading a
file a person shared (`download`, for `FetchesFiles`)."""

from __future__ import annotations

import asyncio
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace

import aiohttp
import yarl

from bot.adapters.base import FileNotFetched
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
    """One line per file that could not be attached, and why (or what the file said to say instead)."""
    return "\n".join(a.not_attached(why) for a, why in failed)


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


def origin(url: str) -> str:
    """`https://files.slack.com` of a URL: what a download is allowed by ("" for no web address)."""
    try:
        parsed = yarl.URL(url)
    except ValueError:
        return ""
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return ""
    return str(parsed.origin())


async def download(
    session: aiohttp.ClientSession,
    url: str,
    *,
    limit: int,
    origins: Collection[str],
    headers: Mapping[str, str] | None = None,
) -> tuple[bytes, str]:
    """A file's bytes and content type, read as they come and never more than `limit` of them;
    only from `origins` (a token in `headers` goes nowhere else, nor does a redirect take it
    anywhere). `FileNotFetched` says why not, without the URL."""
    if origin(url) not in origins:
        raise FileNotFetched("its address is not the platform's")
    try:
        async with session.get(url, headers=headers, allow_redirects=False) as response:
            if response.status != 200:
                raise FileNotFetched(f"the platform answered {response.status}")
            if (response.content_length or 0) > limit:
                raise FileNotFetched(f"{size_text(response.content_length or 0)}, over {size_text(limit)}")
            data = bytearray()
            async for chunk in response.content.iter_chunked(64 * 1024):
                data += chunk
                if len(data) > limit:
                    raise FileNotFetched(f"over {size_text(limit)}")
            return bytes(data), response.content_type
    except aiohttp.ClientError as error:
        raise FileNotFetched(f"the download failed ({type(error).__name__})") from None
