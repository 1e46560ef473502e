"""The weekly digest's main chart goes with it as an image: through Slack's external upload flow
(slack-sdk's files_upload_v2 against the Slack emulator), as a Discord attachment (discord.py's
multipart upload against the Discord emulator), and as a path the console prints. When the chart
cannot be attached, the digest still goes out and says so. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from datetime import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from bot.adapters.console import ConsoleAdapter
from bot.adapters.files import load
from bot.app import SupportBot
from bot.core.events import Attachment, Conversation, Delivery, OutboundMessage, Platform
from bot.insights import digest
from bot.insights.schedule import Schedule
from storage.db import Database
from tests.adapters.discord.harness import DiscordWorld, start_bot, stop_bot, text_of
from tests.adapters.slack.harness import STAFF_CHANNEL, SlackBot, populate, slack_bot
from tests.emulators.discord import DiscordEmulator
from tests.emulators.slack import SlackEmulator

PNG = b"\x89PNG\r\n\x1a\n"
WEEKLY = Schedule(0, time(9, 0), ZoneInfo("UTC"))


async def send_digest(bot: SupportBot, base: Path) -> digest.Sent:
    sent = await digest.send_digest(
        bot.dispatcher,
        # One of the schedule's own times, so the window is a whole week at any hour of any day
        # the test runs (an hour from now made it seven and a half days after 20:00 on a Monday).
        due=WEEKLY.next_after(bot.services.clock()),
        schedule=WEEKLY,
        base=base,
    )
    assert sent is not None
    return sent


# -- Slack -----------------------------------------------------------------------------------------


@pytest.fixture
async def slack() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator(burst=20) as emulator:
        populate(emulator)
        yield emulator


@pytest.fixture
async def on_slack(slack: SlackEmulator, database: Database, tmp_path: Path) -> AsyncIterator[SlackBot]:
    async with slack_bot(slack, database, tmp_path) as running:
        yield running


async def test_on_slack_the_chart_is_uploaded_into_the_staff_channel_after_the_digest(
    on_slack: SlackBot, slack: SlackEmulator, tmp_path: Path
) -> None:
    sent = await send_digest(on_slack.bot, tmp_path / "reports")
    post = await slack.wait_for("chat.postMessage", lambda c: c.params["channel"] == STAFF_CHANNEL)
    assert "Weekly digest" in post.shown
    (upload,) = slack.uploads
    assert (upload.channel, upload.thread_ts, upload.filename) == (STAFF_CHANNEL, None, "daily.png")
    assert upload.is_png and upload.data == sent.chart.read_bytes()
    assert upload.title == "Main chart" and upload.alt_txt == digest.CHART_ALT
    methods = [c.method for c in slack.calls if c.method.startswith(("chat.", "files."))]
    assert methods == [
        "chat.postMessage",
        "files.getUploadURLExternal",
        "files.upload",
        "files.completeUploadExternal",
    ]
    assert slack.history(STAFF_CHANNEL)[-1]["files"][0]["name"] == "daily.png"
    assert not any("could not be attached" in c.shown for c in slack.calls_to("chat.postMessage"))


async def test_on_slack_a_failed_upload_still_posts_the_digest_and_says_so(
    on_slack: SlackBot, slack: SlackEmulator, tmp_path: Path
) -> None:
    slack.fail_next("files.upload", status=500)
    await send_digest(on_slack.bot, tmp_path / "reports")
    digest_post = await slack.wait_for("chat.postMessage", lambda c: "Weekly digest" in c.shown)
    note = await slack.wait_for("chat.postMessage", lambda c: "could not be attached" in c.shown)
    assert digest_post.params["channel"] == note.params["channel"] == STAFF_CHANNEL
    assert "Main chart (daily.png) could not be attached: the upload did not reach Slack" in note.shown
    assert slack.uploads == []
    assert len(slack.calls_to("chat.postMessage")) == 2, "the digest once, then the note: no retry"


async def test_on_slack_a_refused_completion_is_said_with_slacks_reason(
    on_slack: SlackBot, slack: SlackEmulator, tmp_path: Path
) -> None:
    slack.fail_next("files.completeUploadExternal", error="not_in_channel")
    await send_digest(on_slack.bot, tmp_path / "reports")
    note = await slack.wait_for("chat.postMessage", lambda c: "could not be attached" in c.shown)
    assert "Slack refused the upload (not_in_channel)" in note.shown


# -- Discord ---------------------------------------------------------------------------------------


@pytest.fixture
async def world() -> AsyncIterator[DiscordWorld]:
    async with DiscordEmulator(route_limit=50) as emulator:
        yield DiscordWorld.build(emulator)


@pytest.fixture
async def on_discord(world: DiscordWorld, database: Database, tmp_path: Path) -> AsyncIterator[SupportBot]:
    bot, _ = await start_bot(world, database, tmp_path)
    try:
        yield bot
    finally:
        await stop_bot(bot)


async def test_on_discord_the_chart_is_attached_to_the_digest_message(
    on_discord: SupportBot, world: DiscordWorld, tmp_path: Path
) -> None:
    emu = world.emu
    sent = await send_digest(on_discord, tmp_path / "reports")
    call = await emu.wait_for("POST", f"/channels/{world.staff.id}/messages")
    assert [f.field for f in call.files] == ["files[0]"], "multipart: payload_json and files[0]"
    (upload,) = emu.uploads
    (message,) = emu.channel_messages(world.staff)
    assert (upload.channel_id, upload.message_id) == (world.staff.id, message["id"])
    assert upload.filename == "daily.png" and upload.is_png and upload.data == sent.chart.read_bytes()
    assert upload.description == digest.CHART_ALT
    assert "Weekly digest" in text_of(message)
    assert message["attachments"][0]["filename"] == "daily.png"


async def test_on_discord_a_chart_refused_as_too_large_leaves_the_digest_and_a_note(
    on_discord: SupportBot, world: DiscordWorld, tmp_path: Path
) -> None:
    emu = world.emu
    emu.upload_limit = 100  # smaller than any chart: Discord answers 413
    await send_digest(on_discord, tmp_path / "reports")
    await emu.wait_for("POST", f"/channels/{world.staff.id}/messages", where=lambda c: c.status == 200)
    refused = [c for c in emu.calls if c.files]
    assert refused and all(c.status == 413 for c in refused)
    digest_message, note = emu.channel_messages(world.staff)
    assert "Weekly digest" in text_of(digest_message) and not digest_message.get("attachments")
    assert note["content"] == (
        "\u26a0\ufe0f Main chart (daily.png) could not be attached: Discord refused it as too large."
    )
    assert emu.uploads == []


# -- the console and the files themselves -----------------------------------------------------------


async def test_the_console_prints_where_each_file_is(tmp_path: Path) -> None:
    out = io.StringIO()
    console = ConsoleAdapter(stdout=out, staff_channel_id="staff")
    chart = tmp_path / "daily.png"
    chart.write_bytes(PNG + b"chart")
    staff = Conversation(platform=Platform.CONSOLE, channel_id="staff")
    message = OutboundMessage(
        text="Weekly digest",
        attachments=(
            Attachment(filename="daily.png", path=chart, title="Main chart"),
            Attachment(filename="extra.png", data=PNG + b"bytes only"),
        ),
    )
    await console.send(Delivery(conversation=staff, message=message))
    lines = out.getvalue().splitlines()
    assert f"[file] Main chart (daily.png): {chart}" in lines[1]
    written = Path(lines[2].split("[file] extra.png: ", 1)[1])
    assert written.name == "extra.png"
    assert await asyncio.to_thread(written.read_bytes) == PNG + b"bytes only"


async def test_a_file_over_the_limit_or_unreadable_is_not_sent_and_says_why(tmp_path: Path) -> None:
    small = Attachment(filename="small.png", data=PNG)
    big = Attachment(filename="big.png", data=PNG * 200_000, title="Main chart")
    gone = Attachment(filename="gone.png", path=tmp_path / "gone.png")
    loaded, failed = await load([small, big, gone], limit=1024 * 1024)
    assert loaded == [(small, PNG)]
    assert [(a.filename, why) for a, why in failed] == [
        ("big.png", "1.53 MB, over the 1 MB limit"),
        ("gone.png", "the file cannot be read (No such file or directory)"),
    ]


def test_an_attachment_is_a_bare_file_name_with_bytes_or_a_path() -> None:
    for wrong in ({"filename": "../etc/passwd", "data": b""}, {"filename": "a.png"}):
        with pytest.raises(ValueError):
            Attachment(**wrong)  # type: ignore[arg-type]
    assert Attachment(filename="a.png", data=b"x").read() == b"x"
