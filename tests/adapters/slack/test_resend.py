"""Slack has no idempotency key: a post that timed out may still have been posted. A keyed message
(a status notice) carries its key as message metadata, and a resend looks for it before posting, so
a subscribed channel never gets the same notice twice."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from aiohttp import web

from bot.adapters.base import DeliveryError
from bot.adapters.slack.adapter import SlackAdapter
from bot.core.events import Actor, Conversation, Delivery, OutboundMessage, Platform
from bot.status.broadcast.pacing import LanePolicy
from bot.status.broadcast.worker import BroadcastWorker, WorkerConfig
from storage import outbox_repo, subscriptions_repo
from storage.db import Database
from tests.emulators.slack import SlackEmulator

NEWS = "C0NEWS"


async def _ignore(_event: object) -> None:
    return None


@pytest.fixture
async def slack() -> AsyncIterator[SlackEmulator]:
    async with SlackEmulator(stall_seconds=5) as emulator:
        emulator.add_channel(NEWS, "news")
        yield emulator


@pytest.fixture
async def adapter(slack: SlackEmulator) -> AsyncIterator[SlackAdapter]:
    running = SlackAdapter(
        bot_token=slack.token, signing_secret=slack.signing_secret, api_base=slack.base_url, timeout=1.0
    )
    running.install_routes(web.Application())  # these tests only send
    await running.start(_ignore)
    yield running
    await running.stop()


async def test_a_notice_slack_accepted_but_never_confirmed_is_posted_once(
    slack: SlackEmulator, adapter: SlackAdapter, database: Database
) -> None:
    async with database.transaction() as session:
        await subscriptions_repo.subscribe(
            session,
            platform="slack",
            workspace_id=slack.team_id,
            channel_id=NEWS,
            is_direct=False,
            components=[],
            actor_key="slack:U0STAFF",
        )
        await outbox_repo.create_broadcast(
            session,
            kind="announce",
            incident_id=None,
            title="Announcement",
            body="Version 2.3 is out",
            components=[],
            at=datetime.now(UTC),
        )
    # Slack posts the notice, but its answer never arrives: the worker times out and retries.
    slack.fail_next("chat.postMessage", timeout=True, applied=True)
    worker = BroadcastWorker(
        database,
        {Platform.SLACK: adapter},
        policy=lambda lane: LanePolicy(rate=None),
        staff_channel=None,
        page_url="http://status.test/",
        config=WorkerConfig(base_backoff=0.05, max_backoff=0.1),
    )

    await worker.run_until_idle(limit_s=20)

    posted = [m for m in slack.history(NEWS) if "Version 2.3 is out" in str(m["text"])]
    assert len(posted) == 1, "the channel saw the notice once"
    assert [c.error for c in slack.calls_to("chat.postMessage")] == ["timeout"], "and it was not re-posted"
    (looked,) = slack.calls_to("conversations.history")
    assert looked.params["channel"] == NEWS
    async with database.transaction() as session:
        assert await outbox_repo.delivery_counts(session) == {outbox_repo.SENT: 1}


async def test_a_first_attempt_does_not_read_the_channel(slack: SlackEmulator, adapter: SlackAdapter) -> None:
    news = Conversation(platform=Platform.SLACK, workspace_id=slack.team_id, channel_id=NEWS)
    message = OutboundMessage(text="Scheduled maintenance tonight")

    await adapter.send(Delivery(conversation=news, message=message, idempotency_key="b1s1"))

    assert slack.calls_to("conversations.history") == []
    (notice,) = slack.history(NEWS)
    key = {"key": "b1s1", "part": 0}
    assert notice["metadata"] == {"event_type": "supportbot_delivery", "event_payload": key}


async def test_a_long_message_cut_short_by_an_error_is_finished_not_repeated(
    slack: SlackEmulator, adapter: SlackAdapter
) -> None:
    news = Conversation(platform=Platform.SLACK, workspace_id=slack.team_id, channel_id=NEWS)
    # 60 sections: more than Slack's 50 blocks in one message, so it goes out as two.
    text = "\n\n".join(f"Paragraph {n}: " + "details " * 360 for n in range(60))
    notice = Delivery(conversation=news, message=OutboundMessage(text=text), idempotency_key="b2s1")
    # The first part is posted; the second meets a server error, so the send fails as a whole.
    slack.fail_next("chat.postMessage", status=503, after=1)
    with pytest.raises(DeliveryError):
        await adapter.send(notice)
    assert len(slack.history(NEWS)) == 1

    ref = await adapter.send(replace(notice, resend=True))

    parts = slack.history(NEWS)
    assert [m["metadata"]["event_payload"]["part"] for m in parts] == [0, 1]
    assert ref.message_id == parts[0]["ts"], "the message is known by its first part"
    assert "Paragraph 59" in str(parts[1]["blocks"])


async def test_history_without_metadata_rights_is_treated_as_nothing_posted(
    slack: SlackEmulator, adapter: SlackAdapter
) -> None:
    news = Conversation(platform=Platform.SLACK, workspace_id=slack.team_id, channel_id=NEWS)
    slack.fail_next("conversations.history", error="missing_scope")
    notice = Delivery(
        conversation=news, message=OutboundMessage(text="Back to normal"), idempotency_key="b3s1", resend=True
    )

    await adapter.send(notice)

    assert [m["text"] for m in slack.history(NEWS)] == ["Back to normal"]


async def test_an_update_in_a_notice_thread_is_looked_for_in_that_thread(
    slack: SlackEmulator, adapter: SlackAdapter
) -> None:
    news = Conversation(platform=Platform.SLACK, workspace_id=slack.team_id, channel_id=NEWS)
    first = await adapter.send(
        Delivery(conversation=news, message=OutboundMessage(text="API errors"), idempotency_key="b4s1")
    )
    update = Delivery(
        conversation=news.in_thread(first.message_id),
        message=OutboundMessage(text="Identified: a bad deploy"),
        idempotency_key="b5s1",
    )
    slack.fail_next("chat.postMessage", timeout=True, applied=True)
    with pytest.raises(DeliveryError):
        await adapter.send(update)

    again = await adapter.send(replace(update, resend=True))

    in_thread = [m for m in slack.history(NEWS) if m.get("thread_ts") == first.message_id]
    assert [m["text"] for m in in_thread] == ["Identified: a bad deploy"]
    assert again.message_id == in_thread[0]["ts"]
    (looked,) = slack.calls_to("conversations.replies")
    assert looked.params["ts"] == first.message_id


async def test_a_direct_message_posted_but_never_confirmed_is_looked_for_in_the_dms(
    slack: SlackEmulator, adapter: SlackAdapter
) -> None:
    slack.add_user("U0CASEY", "casey")
    casey = Actor(platform=Platform.SLACK, id="U0CASEY")
    asked_in = Conversation(platform=Platform.SLACK, workspace_id=slack.team_id, channel_id="G0PRIVATE")
    in_dms = Delivery(
        conversation=asked_in,
        message=OutboundMessage(text="Your ticket #1 is open"),
        idempotency_key="r7-else",
        direct_to=casey,
    )
    slack.fail_next("chat.postMessage", timeout=True, applied=True)
    with pytest.raises(DeliveryError):
        await adapter.send(in_dms)

    again = await adapter.send(replace(in_dms, resend=True))

    assert [m["text"] for m in slack.history("D0CASEY")] == ["Your ticket #1 is open"]
    assert (again.channel_id, again.is_direct) == ("D0CASEY", True)
