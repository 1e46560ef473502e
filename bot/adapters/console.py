"""Talk to the bot in a terminal (or through a pipe): no tokens, no network.

Lines starting with `/` are slash commands; a number clicks a button of the answer to the line
before (numbered from 1 in each answer); anything else is a message in #general. Posts to the staff
channel are printed with a `[#staff]` prefix.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import sys
import tempfile
import threading
import uuid
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from bot.adapters.base import Capabilities, EventSink
from bot.core.events import (
    ActionInvoked,
    Actor,
    Attachment,
    CommandInvoked,
    Conversation,
    Delivery,
    InboundEvent,
    MessageReceived,
    Platform,
    SentRef,
    plain_moments,
)

GENERAL = "general"


def _valid_text(text: str) -> str:
    """Bytes that were not UTF-8 reach us as lone surrogates (Python's surrogateescape): make them
    the replacement character, as any chat platform would, so storing the question cannot fail."""
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


NUMBERS_CLICK = "a number clicks a button of the last answer; type your question in words"


def line_to_event(
    line: str,
    *,
    actor: Actor,
    conversation: Conversation,
    message_id: str,
    buttons: dict[str, tuple[str, str]],
) -> InboundEvent | None:
    """Pure translation of one typed line; None for a blank line."""
    text = _valid_text(line.rstrip("\n"))
    if not text.strip():
        return None
    stripped = text.strip()
    if stripped in buttons:
        action_id, value = buttons[stripped]
        return ActionInvoked(
            actor=actor, conversation=conversation, action_id=action_id, value=value, event_id=message_id
        )
    # `/ticket ...` is a command; `/` alone, `/ x` and `//x` (a path, a comment) are words to the bot.
    if stripped.startswith("/") and len(stripped) > 1 and not (stripped[1].isspace() or stripped[1] == "/"):
        name, _, args = stripped[1:].partition(" ")
        return CommandInvoked(
            actor=actor, conversation=conversation, name=name.lower(), args=args.strip(), event_id=message_id
        )
    return MessageReceived(
        actor=actor,
        conversation=conversation,
        text=text,
        message_id=message_id,
        event_id=message_id,
        mentions_bot=True,
    )


def render(
    delivery: Delivery, *, staff_channel_id: str, button_numbers: itertools.count[int]
) -> tuple[str, dict[str, tuple[str, str]]]:
    """Plain-text rendering; returns the text and the numbers assigned to its buttons."""
    message = delivery.message
    prefix = "bot> "
    if delivery.conversation.channel_id == staff_channel_id:
        prefix = "[#staff] bot> "
    elif delivery.conversation.channel_id != GENERAL:
        prefix = f"[#{delivery.conversation.channel_id}] bot> "
    if message.private_to is not None:
        prefix += "(only you) "
    lines = []
    if message.title:
        lines.append(f"**{message.title}**")
    lines.append(message.text)
    lines.extend(f"  {f.name}: {f.value}" for f in message.fields)
    if message.footer:
        lines.append(f"  {message.footer}")
    # A terminal shows no images: it says where each file is.
    lines.extend(f"  [file] {a.label}: {a.path or '(not saved)'}" for a in message.attachments)
    mentions = " ".join(f"@{m.id}" for m in message.mentions)
    if mentions:
        lines.append(f"  (pinging {mentions})")
    buttons: dict[str, tuple[str, str]] = {}
    if message.buttons:
        labels = []
        for button in message.buttons:
            number = str(next(button_numbers))
            buttons[number] = (button.action_id, button.value)
            labels.append(f"[{number}] {button.label}")
        lines.append("  " + "  ".join(labels) + "  (type the number)")
    # The terminal has no time tokens: moments read as UTC words.
    body = plain_moments("\n".join(lines)).replace("\n", "\n     ")
    return prefix + body, buttons


class ConsoleAdapter:
    platform = Platform.CONSOLE
    capabilities = Capabilities(max_text=100_000, max_file_bytes=2**62)  # a file stays where it is

    def __init__(
        self,
        *,
        as_staff: bool = False,
        staff_channel_id: str = "staff",
        stdin: TextIO | None = None,
        stdout: TextIO | None = None,
    ) -> None:
        self.actor = Actor(
            platform=Platform.CONSOLE,
            id="you",
            display_name="you (staff)" if as_staff else "you",
            roles=frozenset({"staff"}) if as_staff else frozenset(),
        )
        # The terminal is a one-to-one chat with the bot, like a DM: every line is addressed to it,
        # and a ticket opened here keeps relaying follow-ups to the team.
        self.conversation = Conversation(platform=Platform.CONSOLE, channel_id=GENERAL, is_direct=True)
        self.staff_channel_id = staff_channel_id
        self.finished = asyncio.Event()
        self._settling: dict[str, asyncio.Future[None]] = {}
        self._stdin = stdin or sys.stdin
        self._stdout = stdout or sys.stdout
        self._ids = itertools.count(1)
        # Event ids are remembered across runs (dedupe): a session's own prefix keeps the next run's
        # "c1" from being taken for a redelivery of this one's.
        self._session = uuid.uuid4().hex[:8]
        self._button_numbers = itertools.count(1)
        self._buttons: dict[str, tuple[str, str]] = {}
        # Buttons are numbered from 1 in each answer to a typed line, and only the last answer's
        # answer a number: a "5" typed at "[1] 1 ★ … [5] 5 ★" is five stars, and a number typed
        # after another line is words, never a click on an answer the person has moved on from.
        self._reader: asyncio.Task[None] | None = None

    async def start(self, sink: EventSink) -> None:
        self._write("supportbot console. Type a question, `/support help` for commands, Ctrl-D to quit.")
        self._reader = asyncio.create_task(self._read(sink))

    async def stop(self) -> None:
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()
        self.finished.set()

    def _pump_stdin(self, loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[str]) -> None:
        # A daemon thread, not the loop's executor: a blocked readline must not hold up shutdown.
        for line in iter(self._stdin.readline, ""):
            loop.call_soon_threadsafe(lines.put_nowait, line)
        loop.call_soon_threadsafe(lines.put_nowait, "")

    async def _read(self, sink: EventSink) -> None:
        lines: asyncio.Queue[str] = asyncio.Queue()
        threading.Thread(
            target=self._pump_stdin, args=(asyncio.get_running_loop(), lines), daemon=True
        ).start()
        try:
            while (line := await lines.get()) != "":
                typed = line.strip()
                if typed.isdecimal() and typed not in self._buttons:
                    # A number meant for a button that is gone: as words it would open a ticket
                    # titled "2" ("I wasn't sure how to answer").
                    self._write(f"(no button [{typed[:10]}] to click: {NUMBERS_CLICK})")
                    continue
                event = line_to_event(
                    line,
                    actor=self.actor,
                    conversation=self.conversation,
                    message_id=f"c{self._session}-{next(self._ids)}",
                    buttons=self._buttons,
                )
                if event is None:
                    continue
                self._button_numbers = itertools.count(1)
                self._buttons = {}
                # Each line is handled fully (answered, committed) before the next is read, like a
                # person waiting for the answer: the dispatcher calls `event_settled` when it is.
                settled = self._settling[event.event_id] = asyncio.get_running_loop().create_future()
                await sink(event)
                await settled
        finally:
            self.finished.set()

    async def event_settled(self, event: InboundEvent, *, duplicate: bool) -> None:
        settled = self._settling.pop(event.event_id, None)
        if settled is not None and not settled.done():
            settled.set_result(None)

    def _saved(self, attachment: Attachment) -> Attachment:
        """A file given as bytes, written where the person at the terminal can open it."""
        if attachment.path is not None or attachment.data is None:
            return attachment
        folder = Path(tempfile.mkdtemp(prefix="supportbot-console-"))
        path = folder / attachment.filename
        path.write_bytes(attachment.data)
        return replace(attachment, data=None, path=path)

    async def send(self, delivery: Delivery) -> SentRef:
        if delivery.message.attachments:
            saved = tuple([self._saved(a) for a in delivery.message.attachments])
            delivery = replace(delivery, message=replace(delivery.message, attachments=saved))
        text, buttons = render(
            delivery, staff_channel_id=self.staff_channel_id, button_numbers=self._button_numbers
        )
        self._buttons.update(buttons)
        self._write(text)
        return SentRef(
            platform=Platform.CONSOLE,
            channel_id=delivery.conversation.channel_id,
            message_id=delivery.edit.message_id if delivery.edit else f"b{next(self._ids)}",
            thread_id=delivery.conversation.thread_id,
        )

    def _write(self, text: str) -> None:
        try:
            self._stdout.write(text + "\n")
            self._stdout.flush()
        except BrokenPipeError:
            # Whoever read the console went away (`supportbot run --console | head`): nobody is left
            # to answer, so the session ends as at the end of input, with nothing left for Python to
            # flush into the closed pipe at exit (each reply had logged a failed delivery).
            silence(self._stdout)
            if self._reader is not None and not self._reader.done():
                self._reader.cancel()
            self.finished.set()


def silence(stream: TextIO) -> None:
    """Point a stream whose reader went away (a closed pipe) at the null device, so that nothing is
    left for Python to flush into it at exit. A stream that is not a file (a test's, an embedding
    program's) has no descriptor to point, and nothing to flush at exit either."""
    try:
        descriptor = stream.fileno()
    except (OSError, ValueError, AttributeError):
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, descriptor)
    finally:
        os.close(null)
