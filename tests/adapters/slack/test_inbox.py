"""Nothing Slack was told we have is lost: every request is stored before it is acknowledged.

Slack never resends a request it has its 200 for. So a bot killed between that acknowledgement and
the commit of the event's handling must find the request again: in the inbox, written before the
acknowledgement, replayed once its lease has run out. Real slack-bolt and slack-sdk against the
Slack emulator, a real database, and (for the kill) a real `supportbot run` process.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.core import privacy
from bot.core.inbox import REPLAY_ATTEMPTS, DatabaseInbox, replay_due
from bot.core.leases import MAX_HOLD
from storage import inbox_repo
from storage.db import Database
from storage.models import InboxEntry, ProcessedEvent
from storage.types import utcnow
from tests.adapters.slack.harness import COMMUNITY, CUSTOMER, STAFF, STAFF_CHANNEL, SlackBot, slack_bot
from tests.bot_process import BotProcess, slack_env
from tests.emulators.slack import SlackEmulator

UNREACHABLE = "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"


async def _inbox_rows(database: Database) -> list[InboxEntry]:
    async with database.session() as session:
        return list((await session.execute(select(InboxEntry))).scalars())


async def _claims(database: Database) -> int:
    async with database.session() as session:
        return int((await session.execute(select(func.count()).select_from(ProcessedEvent))).scalar_one())


async def _stalled_on(slack: SlackEmulator, method: str, *, count: int = 1, timeout: float = 10.0) -> None:  # noqa: ASYNC109
    """Until the bot has sent `method` (`count` times), which the emulator holds without an answer."""
    deadline = time.monotonic() + timeout
    while len(slack.calls_to(method)) < count:
        assert time.monotonic() < deadline, f"the bot never called {method}"
        await asyncio.sleep(0.02)


async def _stalled_on_users_info(slack: SlackEmulator) -> None:
    await _stalled_on(slack, "users.info")


async def test_a_command_is_stored_before_its_acknowledgement_and_gone_once_answered(
    bot: SlackBot, slack: SlackEmulator, database: Database
) -> None:
    slack.fail_next("users.info", timeout=True)  # holds the bot between the ack and the handling
    ack = await slack.slash_command(CUSTOMER, COMMUNITY, "/support help")
    assert ack.status == 200
    await _stalled_on_users_info(slack)

    (row,) = await _inbox_rows(database)
    assert (row.platform, row.kind, row.person) == ("slack", "command", f"slack:{CUSTOMER}")
    assert "/support" in row.body and row.lease_until > utcnow()

    answer = await slack.wait_for("response_url", timeout=10)
    assert "/support help" in answer.shown
    await bot.settle()
    assert await _inbox_rows(database) == [], "a settled request leaves nothing to replay"


async def test_a_question_the_database_cannot_store_is_not_acknowledged_and_slacks_retry_is_answered_once(
    bot: SlackBot, slack: SlackEmulator, database: Database
) -> None:
    working = DatabaseInbox(database, platform="slack", lease=timedelta(seconds=30))
    down = Database.from_url(UNREACHABLE)
    bot.adapter.keep_inbox(DatabaseInbox(down, platform="slack", lease=timedelta(seconds=30)))
    try:
        question = await slack.user_posts(CUSTOMER, COMMUNITY, "my csv export failed")
        assert question.ack.status == 503, "not stored, so not acknowledged"
        await asyncio.sleep(0.3)
        await bot.settle()
        assert not slack.calls_to("users.info") and not slack.calls_to("chat.postMessage")
        assert await _claims(database) == 0
    finally:
        await down.dispose()

    # The database is back; Slack sends the event again, as it does with one not acknowledged.
    bot.adapter.keep_inbox(working)
    assert (await slack.send_event(question.body, retry_num=1)).status == 200
    answer = await slack.wait_for("chat.postMessage", lambda c: c.params.get("thread_ts") == question.ts)
    assert "export" in answer.shown.lower()
    await bot.settle()
    assert len(slack.calls_to("chat.postMessage")) == 1
    assert await _inbox_rows(database) == []


async def test_in_socket_mode_a_command_the_database_cannot_store_gets_no_ack(
    slack: SlackEmulator, database: Database, tmp_path: Path
) -> None:
    async with slack_bot(slack, database, tmp_path, mode="socket") as bot:
        down = Database.from_url(UNREACHABLE)
        bot.adapter.keep_inbox(DatabaseInbox(down, platform="slack", lease=timedelta(seconds=30)))
        form = slack.command_form(CUSTOMER, COMMUNITY, "/support", "help")
        try:
            with pytest.raises(TimeoutError):  # no ack: the envelope stays Slack's to deliver again
                await slack.push_envelope("slash_commands", form, timeout=1)
        finally:
            await down.dispose()

        bot.adapter.keep_inbox(DatabaseInbox(database, platform="slack", lease=timedelta(seconds=30)))
        await slack.push_envelope("slash_commands", form)
        await slack.wait_for("response_url", timeout=10)
        await bot.settle()
        assert len(slack.calls_to("response_url")) == 1
        assert await _inbox_rows(database) == []


async def test_a_second_process_leaves_alone_what_a_live_one_is_still_handling(
    bot: SlackBot, slack: SlackEmulator, database: Database, tmp_path: Path
) -> None:
    slack.fail_next("users.info", timeout=True)  # the first bot is slow to read who asked
    assert (await slack.slash_command(CUSTOMER, COMMUNITY, "/support help")).status == 200
    await _stalled_on_users_info(slack)

    first_url = slack.bot_url
    async with slack_bot(slack, database, tmp_path / "second") as second:
        assert await second.adapter.replay() == 0, "the row is leased to the live process"
        await second.settle()
        assert not slack.calls_to("response_url")

        # The first bot gets past its slow lookup and answers; nothing is left for anyone to replay.
        await slack.wait_for("response_url", timeout=10)
        await bot.settle()
        assert await second.adapter.replay() == 0
        await second.settle()
    slack.bot_url = first_url
    assert len(slack.calls_to("response_url")) == 1
    assert await _inbox_rows(database) == []


async def test_a_command_replayed_after_its_response_url_expired_is_answered_through_the_web_api(
    bot: SlackBot, slack: SlackEmulator, database: Database
) -> None:
    # Stored 31 minutes ago by a process that died at once: Slack's response_url lives 30.
    long_ago = DatabaseInbox(
        database,
        platform="slack",
        lease=timedelta(minutes=-30),
        clock=lambda: utcnow() - timedelta(minutes=31),
    )
    form = slack.command_form(CUSTOMER, COMMUNITY, "/support", "help")
    await long_ago.keep(kind="command", person=f"slack:{CUSTOMER}", body=form)

    await bot.adapter.replay()  # or the bot's own start-up pass, if it runs after the row is in
    answer = await slack.wait_for("chat.postEphemeral", timeout=10)
    assert answer.params["user"] == CUSTOMER and "/support help" in answer.shown
    await bot.settle()
    assert not slack.calls_to("response_url") and len(slack.calls_to("chat.postEphemeral")) == 1
    assert await _inbox_rows(database) == []


async def test_two_processes_claiming_an_expired_row_at_once_replay_it_once(database: Database) -> None:
    one = DatabaseInbox(database, platform="slack", lease=timedelta(seconds=30))
    dead = DatabaseInbox(database, platform="slack", lease=timedelta(seconds=-1))  # its lease ran out
    kept = await dead.keep(kind="command", person="slack:U1", body={"command": "/support"})
    other = DatabaseInbox(database.another_connection_pool(), platform="slack", lease=timedelta(seconds=30))
    try:
        first, second = await asyncio.gather(one.due(limit=10), other.due(limit=10))
    finally:
        await other.database.dispose()
    assert sorted(len(found) for found in (first, second)) == [0, 1]
    (row,) = first or second
    assert (row.id, row.kind, row.body, row.attempts) == (kept, "command", {"command": "/support"}, 1)
    assert await one.due(limit=10) == [], "leased again to the process replaying it"


async def test_a_request_whose_replays_keep_failing_is_given_up_after_five(database: Database) -> None:
    inbox = DatabaseInbox(database, platform="slack", lease=timedelta(seconds=-1))  # always due again
    await inbox.keep(kind="command", person="slack:U1", body={"command": "/support"})
    replayed: list[int] = []
    for _ in range(REPLAY_ATTEMPTS + 2):
        await replay_due(
            inbox,
            platform="slack",
            take=lambda row, _age: replayed.append(row.attempts),
            receiving=lambda: True,
        )
    assert replayed == [1, 2, 3, 4, 5]
    assert await _inbox_rows(database) == []


async def test_a_burst_of_requests_is_stored_each_in_its_own_row_and_finished_together(
    database: Database,
) -> None:
    inbox = DatabaseInbox(database, platform="slack", lease=timedelta(seconds=30))
    ids = await asyncio.gather(
        *(inbox.keep(kind="event", person=f"slack:U{n}", body={"n": n}) for n in range(50))
    )
    rows = {row.id or 0: row for row in await _inbox_rows(database)}
    assert sorted(ids) == sorted(rows)
    assert all(json.loads(rows[row_id].body) == {"n": n} for n, row_id in enumerate(ids))

    await asyncio.gather(*(inbox.finish([row_id]) for row_id in ids))
    assert await _inbox_rows(database) == []


async def test_erasing_a_person_drops_their_requests_not_yet_handled(database: Database) -> None:
    inbox = DatabaseInbox(database, platform="slack", lease=timedelta(seconds=30))
    await inbox.keep(kind="event", person=f"slack:{CUSTOMER}", body={"event": {"text": "my card 4242"}})
    await inbox.keep(kind="event", person=f"slack:{STAFF}", body={"event": {"text": "on it"}})

    async with database.transaction() as session:
        erasure = await privacy.erase(session, subject=f"slack:{CUSTOMER}", now=utcnow())
    assert erasure is not None and erasure.counts == {"inbox": 1}
    assert [row.person for row in await _inbox_rows(database)] == [f"slack:{STAFF}"]


async def test_housekeeping_drops_requests_older_than_any_claim_it_keeps(database: Database) -> None:
    inbox = DatabaseInbox(database, platform="slack", lease=timedelta(seconds=30))
    await inbox.keep(kind="event", person="slack:U1", body={})
    async with database.transaction() as session:
        assert (
            await inbox_repo.forget_received_before(session, before=utcnow() - timedelta(hours=1), limit=10)
            == 0
        )
        assert (
            await inbox_repo.forget_received_before(session, before=utcnow() + timedelta(seconds=1), limit=10)
            == 1
        )
    assert await _inbox_rows(database) == []


# -- a real process, killed ------------------------------------------------------------------------


async def test_a_command_acknowledged_by_a_process_killed_before_handling_it_is_answered_once_after_restart(
    slack: SlackEmulator, database_url: str, tmp_path: Path
) -> None:
    url = database_url
    process = BotProcess(
        "killed",
        slack_env(url, slack, staff_channel=f"slack:{STAFF_CHANNEL}", inbox_lease_seconds="2"),
        cwd=tmp_path,
    )
    await process.start()
    try:
        slack.bot_url = process.slack_url
        # users.info hangs (the bot gives up after 10 s): the command is acknowledged, not handled.
        slack.fail_next("users.info", timeout=True)
        assert (await slack.slash_command(CUSTOMER, COMMUNITY, "/support help")).status == 200
        await _stalled_on_users_info(slack)
        await process.kill()
        assert not slack.calls_to("response_url")

        await process.start()
        slack.bot_url = process.slack_url
        answer = await slack.wait_for("response_url", timeout=20)
        assert "/support help" in answer.shown
        await process.wait_for_log("replaying a slack command")
        await asyncio.sleep(3)  # another lease and replay period: nothing answers twice
        assert len(slack.calls_to("response_url")) == 1
    finally:
        await process.stop()
    database = Database.from_url(url)
    try:
        assert await _inbox_rows(database) == []
    finally:
        await database.dispose()


@pytest.mark.parametrize("landed", [False, True], ids=["post lost", "post landed"])
async def test_an_answer_committed_by_a_process_killed_while_posting_it_is_posted_once_after_restart(
    slack: SlackEmulator, database_url: str, tmp_path: Path, landed: bool
) -> None:
    """The question is handled and committed; the process dies while chat.postMessage is in flight.
    Whether that post reached Slack or not, the channel ends up with the answer exactly once."""
    process = BotProcess("killed", slack_env(database_url, slack, inbox_lease_seconds="2"), cwd=tmp_path)
    await process.start()
    try:
        slack.bot_url = process.slack_url
        slack.fail_next("chat.postMessage", timeout=True, applied=landed)
        text = f"<@{slack.bot_user_id}> how do I reset my API key?"
        question = slack.message_event(CUSTOMER, COMMUNITY, text, mention=True)
        assert (await slack.send_event(slack.event_callback(question))).status == 200
        await _stalled_on(slack, "chat.postMessage", timeout=20)
        await process.kill()

        await process.start()
        slack.bot_url = process.slack_url
        await process.wait_for_log("a stopped process owed", timeout=20)
        await asyncio.sleep(3)  # another lease and sweep: nothing is posted twice
    finally:
        await process.stop()
    answers = [m for m in slack.history(COMMUNITY) if m.get("user") != CUSTOMER]
    assert len(answers) == 1 and "API key" in str(answers[0].get("text")), answers


async def test_a_row_its_process_never_settles_is_left_to_a_replay_after_the_longest_hold(
    database: Database,
) -> None:
    """A handler that hangs (a bug, a lock never released) must not hold its request forever: the
    process renews a row it is handling only up to `MAX_HOLD`; then the lease runs out and a replay
    (of this process or another) tries it again; the claim still makes it happen once."""
    now = [utcnow()]
    working = DatabaseInbox(database, platform="slack", lease=timedelta(seconds=30), clock=lambda: now[0])
    other = DatabaseInbox(database, platform="slack", lease=timedelta(seconds=30), clock=lambda: now[0])
    await working.keep(kind="command", person="slack:U1", body={"command": "/support"})
    while now[0] < utcnow() + MAX_HOLD - timedelta(seconds=20):
        now[0] += timedelta(seconds=20)
        await working.renew_held()
        assert await other.due(limit=10) == [], "still being handled: renewed, not replayed"
    replayed = []
    for _ in range(4):  # the renewal ticks go on; past MAX_HOLD they no longer extend the row
        now[0] += timedelta(seconds=20)
        await working.renew_held()
        await other.renew_held()
        replayed += await other.due(limit=10)
    assert [row.body for row in replayed] == [{"command": "/support"}]


async def _lease_of(database: Database, row_id: int) -> datetime:
    async with database.session() as session:
        row = await session.get(InboxEntry, row_id)
    assert row is not None
    return row.lease_until


async def test_a_stalled_process_waking_up_leaves_the_lease_of_a_row_another_took_over(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """Its loop stalled past the lease (nothing renewed the row), so another process's replay took
    the row over. When it wakes, its renewal must not lengthen the other's lease: it learns the row
    is no longer its own, says so, and leaves it alone."""
    now = [utcnow()]
    stalled = DatabaseInbox(database, platform="slack", lease=timedelta(seconds=30), clock=lambda: now[0])
    other = DatabaseInbox(database, platform="slack", lease=timedelta(seconds=30), clock=lambda: now[0])
    row_id = await stalled.keep(kind="command", person="slack:U1", body={"command": "/support"})
    now[0] += timedelta(seconds=31)
    assert [row.id for row in await other.due(limit=10)] == [row_id]
    taken_until = await _lease_of(database, row_id)

    now[0] += timedelta(seconds=5)
    await stalled.renew_held()
    await stalled.renew_held()

    assert await _lease_of(database, row_id) == taken_until, "the other process's lease, as it wrote it"
    assert caplog.text.count(f"inbox rows [{row_id}] taken over by another process") == 1


async def test_a_request_that_cannot_be_read_is_let_go_to_a_replay_and_given_up_after_five(
    bot: SlackBot, slack: SlackEmulator, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    """Stored and acknowledged, but reading it fails (a shape the translation does not know): the
    process lets the row go instead of holding it while nothing handles it, so a replay tries again
    once its lease has run out, and one that fails every time is given up after five."""
    now = [utcnow()]
    inbox = DatabaseInbox(database, platform="slack", lease=timedelta(seconds=30), clock=lambda: now[0])
    bot.adapter.keep_inbox(inbox)
    question = slack.message_event(CUSTOMER, COMMUNITY, "my csv export failed")
    del question["ts"]  # what the reading needs, and Slack has always sent so far
    assert (await slack.send_event(slack.event_callback(question))).status == 200
    await bot.settle()
    (row,) = await _inbox_rows(database)
    assert "reading a Slack request failed" in caplog.text

    now[0] += timedelta(seconds=20)  # past half the lease: a row still held would be renewed now
    await inbox.renew_held()
    assert await _lease_of(database, row.id or 0) == row.lease_until, "let go: no longer renewed"

    replays = 0
    for _ in range(REPLAY_ATTEMPTS + 1):  # each replay fails to read it too, and lets it go again
        now[0] += timedelta(seconds=31)
        replays += await bot.adapter.replay()
        await bot.settle()
        await inbox.renew_held()
    assert replays == REPLAY_ATTEMPTS + 1, "five replays, then given up"
    assert await _inbox_rows(database) == []
    assert await _claims(database) == 0
    assert not slack.calls_to("chat.postMessage")
