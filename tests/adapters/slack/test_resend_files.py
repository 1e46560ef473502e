"""A message with files, sent again: Slack has no idempotency key, and an upload's message cannot
carry metadata, so the text goes first with its key and the files after it. A resend that finds
the text also looks right after it for the files the bot shared, and uploads only those missing,
so a thread never shows a customer's screenshot twice."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.adapters.base import DeliveryError
from bot.adapters.slack.adapter import SlackAdapter
from bot.core.events import Attachment, Conversation, Delivery, OutboundMessage, Platform
from tests.adapters.slack import test_resend
from tests.emulators.slack import SlackEmulator

# The emulated workspace and the bot that only sends, as the other resend tests have them.
slack = test_resend.slack
adapter = test_resend.adapter
STAFF = test_resend.NEWS
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 16
LOG = b"ERROR export failed\n" * 40


def _relayed(slack: SlackEmulator, *, key: str, thread_ts: str | None) -> Delivery:
    """Casey's message and her two files, passed on to the team (the thread of her ticket's card)."""
    staff = Conversation(platform=Platform.SLACK, workspace_id=slack.team_id, channel_id=STAFF)
    message = OutboundMessage(
        text="Casey: my export failed",
        attachments=(
            Attachment(filename="export error.png", data=PNG),
            Attachment(filename="export.log", data=LOG),
        ),
    )
    where = staff.in_thread(thread_ts) if thread_ts else staff
    return Delivery(conversation=where, message=message, idempotency_key=key)


def _shared(slack: SlackEmulator) -> list[str]:
    return [u.filename for u in slack.uploads if u.channel == STAFF]


async def test_a_relayed_file_posted_before_a_kill_is_not_uploaded_again_by_the_replay(
    slack: SlackEmulator, adapter: SlackAdapter
) -> None:
    card = await adapter.send(
        Delivery(
            conversation=Conversation(platform=Platform.SLACK, workspace_id=slack.team_id, channel_id=STAFF),
            message=OutboundMessage(text="Ticket #1"),
        )
    )
    relayed = _relayed(slack, key="r1", thread_ts=card.message_id)
    first = await adapter.send(relayed)
    # The process is killed before it records the post: the next one replays it, as a resend.
    again = await adapter.send(replace(relayed, resend=True))

    assert _shared(slack) == ["export error.png", "export.log"], "each file once"
    thread = [m for m in slack.history(STAFF) if m.get("thread_ts") == card.message_id]
    assert [m["text"] for m in thread if not m.get("files")] == ["Casey: my export failed"]
    assert again.message_id == first.message_id


async def test_files_whose_message_timed_out_go_once_with_the_retry(
    slack: SlackEmulator, adapter: SlackAdapter
) -> None:
    relayed = _relayed(slack, key="r2", thread_ts=None)
    # Slack posts the words but its answer never comes: the send fails before any file went.
    slack.fail_next("chat.postMessage", timeout=True, applied=True)
    with pytest.raises(DeliveryError):
        await adapter.send(relayed)
    assert _shared(slack) == []

    await adapter.send(replace(relayed, resend=True))
    await adapter.send(replace(relayed, resend=True))  # and the process dies before recording that

    assert _shared(slack) == ["export error.png", "export.log"]
    assert [m["text"] for m in slack.history(STAFF) if not m.get("files")] == ["Casey: my export failed"]


async def test_a_resend_uploads_the_files_a_kill_cut_off(slack: SlackEmulator, adapter: SlackAdapter) -> None:
    relayed = _relayed(slack, key="r3", thread_ts=None)
    # The words and the first file went; the process died before the second was uploaded.
    await adapter.send(
        replace(relayed, message=replace(relayed.message, attachments=relayed.message.attachments[:1]))
    )

    await adapter.send(replace(relayed, resend=True))

    assert _shared(slack) == ["export error.png", "export.log"]


async def test_the_same_file_in_a_later_message_is_not_taken_for_this_ones(
    slack: SlackEmulator, adapter: SlackAdapter
) -> None:
    relayed = _relayed(slack, key="r4", thread_ts=None)
    # The words went and the process died before the files; then the next message, with the same
    # screenshot, went out whole.
    await adapter.send(replace(relayed, message=replace(relayed.message, attachments=())))
    later = _relayed(slack, key="r5", thread_ts=None)
    await adapter.send(replace(later, message=replace(later.message, text="Casey: still failing")))

    await adapter.send(replace(relayed, resend=True))

    assert _shared(slack) == ["export error.png", "export.log"] * 2


async def test_a_file_whose_upload_timed_out_but_landed_is_not_said_to_be_missing(
    slack: SlackEmulator, adapter: SlackAdapter
) -> None:
    relayed = _relayed(slack, key="r6", thread_ts=None)
    # Slack shares the screenshot, but its answer to the upload's last step never comes.
    slack.fail_next("files.completeUploadExternal", timeout=True, applied=True)

    await adapter.send(relayed)
    await adapter.send(replace(relayed, resend=True))  # and the process dies before recording it

    assert _shared(slack) == ["export error.png", "export.log"]
    said = [m["text"] for m in slack.history(STAFF) if not m.get("files")]
    assert said == ["Casey: my export failed"], "no line saying a file that is there could not go"


async def test_a_file_whose_upload_timed_out_and_was_lost_is_said_to_be_missing(
    slack: SlackEmulator, adapter: SlackAdapter
) -> None:
    relayed = _relayed(slack, key="r7", thread_ts=None)
    slack.fail_next("files.completeUploadExternal", timeout=True)

    await adapter.send(relayed)

    assert _shared(slack) == ["export.log"]
    said = [m["text"] for m in slack.history(STAFF) if not m.get("files")]
    assert said == [
        "Casey: my export failed",
        "⚠️ export error.png could not be attached: the upload did not reach Slack (TimeoutError).",
    ]


@pytest.mark.parametrize("status", [500, 503])
async def test_a_file_whose_upload_slack_failed_after_sharing_it_is_not_said_to_be_missing(
    slack: SlackEmulator, adapter: SlackAdapter, status: int
) -> None:
    relayed = _relayed(slack, key=f"r8-{status}", thread_ts=None)
    # Slack shares the screenshot, then its last step answers with a server error.
    slack.fail_next("files.completeUploadExternal", status=status, applied=True)

    await adapter.send(relayed)

    assert _shared(slack) == ["export error.png", "export.log"]
    said = [m["text"] for m in slack.history(STAFF) if not m.get("files")]
    assert said == ["Casey: my export failed"], "no line saying a file that is there could not go"


async def test_a_file_whose_upload_slack_failed_is_said_to_be_missing_and_why(
    slack: SlackEmulator, adapter: SlackAdapter
) -> None:
    relayed = _relayed(slack, key="r9", thread_ts=None)
    slack.fail_next("files.completeUploadExternal", status=500)

    await adapter.send(relayed)

    assert _shared(slack) == ["export.log"]
    said = [m["text"] for m in slack.history(STAFF) if not m.get("files")]
    assert said == [
        "Casey: my export failed",
        "⚠️ export error.png could not be attached: Slack failed the upload (HTTP 500).",
    ]
