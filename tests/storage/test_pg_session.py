"""PostgreSQL's transactions run BEGIN, COMMIT and the hottest statements on asyncpg directly, with the
ORM on the same connection (storage/postgres/session.py). What they write must be what SQLAlchemy
writes, both kinds of statement must share one transaction, and no connection may go back to the
pool inside a transaction or dead."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import select

from storage import decisions_repo, events_repo, tickets_repo
from storage.db import Database
from storage.models import KBDecision
from storage.postgres.session import PgSession
from tests.storage.test_opening_a_ticket import _open_in as open_a_ticket

pytestmark = pytest.mark.postgres

AT = datetime(2026, 11, 24, 9, 30, 15, 123456, tzinfo=UTC)


async def _record(session: object, question: str) -> decisions_repo.RecordedDecision:
    return await decisions_repo.record(
        session,  # type: ignore[arg-type]  # a PgSession or an AsyncSession
        actor_key="fake:C1",
        platform="fake",
        conversation_key="fake:W1:community:m1",
        question=question,
        band="answer",
        candidates=[("reset-api-key", 0.97), ("rotate-token", 0.41)],
        at=AT,
    )


async def _count(database: Database, sql: str) -> int:
    async with database.session() as session:
        return int((await session.execute(text(sql))).scalar_one())


async def test_the_driver_path_stores_what_sqlalchemy_stores(postgres_database: Database) -> None:
    database = postgres_database
    async with database.transaction() as session:
        assert isinstance(session, PgSession)
        await _record(session, "driver")
    async with AsyncSession(database.engine) as orm_session, orm_session.begin():
        await _record(orm_session, "sqlalchemy")
    async with database.session() as session:
        rows = (
            await session.execute(text("SELECT question, at, candidates FROM kb_decisions ORDER BY id"))
        ).all()
        loaded = (await session.execute(select(KBDecision).order_by(KBDecision.id))).scalars().all()  # type: ignore[arg-type]
    assert [tuple(row)[1:] for row in rows] == [(AT, '[["reset-api-key", 0.97], ["rotate-token", 0.41]]')] * 2
    assert [d.at for d in loaded] == [AT, AT] and loaded[0].top_entry_id == "reset-api-key"
    async with database.transaction() as session:
        recent = await decisions_repo.recent_questions(session, actor_key="fake:C1", since=AT)
        later = await decisions_repo.recent_questions(
            session, actor_key="fake:C1", since=AT + timedelta(microseconds=1)
        )
    assert (recent, later) == (["sqlalchemy", "driver"], [])


async def test_orm_and_driver_statements_share_one_transaction(postgres_database: Database) -> None:
    database = postgres_database
    async with database.transaction() as session:
        session.add(
            KBDecision(
                actor_key="fake:C1",
                platform="fake",
                conversation_key="c",
                question="pending question",
                band="answer",
                at=AT,
            )
        )
        # The driver path flushes pending ORM changes first, as SQLAlchemy's autoflush does.
        assert await decisions_repo.recent_questions(session, actor_key="fake:C1", since=AT) == [
            "pending question"
        ]
        assert await events_repo.claim_event(session, platform="fake", event_id="E1")
    with pytest.raises(RuntimeError):
        async with database.transaction() as session:
            assert await events_repo.claim_event(session, platform="fake", event_id="E2")
            session.add(
                KBDecision(
                    actor_key="fake:C2",
                    platform="fake",
                    conversation_key="c",
                    question="q",
                    band="answer",
                    at=AT,
                )
            )
            await session.flush()
            raise RuntimeError("handler failed")
    assert await _count(database, "SELECT count(*) FROM kb_decisions") == 1
    assert await _count(database, "SELECT count(*) FROM processed_events") == 1
    async with database.transaction() as session:
        assert not await events_repo.claim_event(session, platform="fake", event_id="E1")
        assert await events_repo.claim_event(session, platform="fake", event_id="E2")


async def test_objects_loaded_in_a_transaction_stay_readable_after_it(postgres_database: Database) -> None:
    database = postgres_database
    async with database.transaction() as session:
        await _record(session, "kept")
    async with database.transaction() as session:
        decision = (await session.execute(select(KBDecision))).scalar_one()
    assert decision.question == "kept" and decision.at == AT


async def _own_connections(database: Database) -> set[int]:
    """The server pids of every connection `database` opens from now on: the test database is
    shared by the other tests' schemas (another worker's, another person's run), whose
    connections are none of this test's business."""
    await database.engine.dispose()  # the fixture's connections were opened before anyone listened
    pids: set[int] = set()

    @event.listens_for(database.engine.sync_engine, "connect")
    def remember(connection: Any, _record: object) -> None:
        pids.add(connection.driver_connection.get_server_pid())

    return pids


async def _idle_in_transaction(database: Database, pids: set[int]) -> int:
    return await _count(
        database,
        "SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%' "
        f"AND pid IN ({', '.join(str(pid) for pid in pids)}) AND pid <> pg_backend_pid()",
    )


async def test_a_cancelled_transaction_leaves_no_connection_inside_it(postgres_database: Database) -> None:
    database = postgres_database
    ours = await _own_connections(database)
    started = asyncio.Event()

    async def slow() -> None:
        async with database.transaction() as session:
            assert await events_repo.claim_event(session, platform="fake", event_id="E3")
            started.set()
            await session.execute(text("SELECT pg_sleep(5)"))

    task = asyncio.create_task(slow())
    await started.wait()
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(3):  # every pooled connection is usable, and the claim was rolled back
        async with database.transaction() as session:
            await session.execute(text("SELECT 1"))
    async with database.transaction() as session:
        assert await events_repo.claim_event(session, platform="fake", event_id="E3")
    assert await _idle_in_transaction(database, ours) == 0


async def test_after_the_server_drops_every_connection_one_transaction_fails(
    postgres_database: Database,
) -> None:
    """A PostgreSQL restart kills every pooled connection: the first transaction to find out fails,
    and the pool replaces all the others at once rather than failing one transaction each."""
    database = postgres_database
    together = asyncio.Barrier(3)
    pids: list[int] = []

    async def hold() -> None:
        async with database.transaction() as session:
            pids.append(int((await session.execute(text("SELECT pg_backend_pid()"))).scalar_one()))
            await together.wait()

    await asyncio.gather(hold(), hold(), hold())
    admin = database.another_connection_pool()  # outside the pool whose connections are killed
    try:
        async with admin.transaction() as session:
            await session.execute(
                text("SELECT pg_terminate_backend(pid) FROM unnest(CAST(:pids AS int[])) AS pid"),
                {"pids": pids},
            )
    finally:
        await admin.dispose()
    failed = 0
    for attempt in range(4):
        try:
            await _claim(database, f"after-{attempt}")
        except Exception:
            failed += 1
    assert failed <= 1
    results = await asyncio.gather(
        *(_claim(database, f"burst-{i}") for i in range(3)), return_exceptions=True
    )
    assert results == [True, True, True]


async def _claim(database: Database, event_id: str) -> bool:
    async with database.transaction() as session:
        return await events_repo.claim_event(session, platform="fake", event_id=event_id) is not None


# -- BEGIN only when a statement needs it ---------------------------------------------------------


class _Wire:
    """What asyncpg sends to the server, one entry per round trip (the SQL's first word)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.sent: list[str] = []
        for method in ("execute", "fetch"):
            original = getattr(asyncpg.Connection, method)

            async def counted(self_: Any, sql: str, *args: Any, _original: Any = original, **kw: Any) -> Any:
                self.sent.append(sql.split(None, 1)[0].upper())
                return await _original(self_, sql, *args, **kw)

            monkeypatch.setattr(asyncpg.Connection, method, counted)


async def _ask(session: PgSession, event_id: str, question: str) -> int | None:
    """What the bot's answer path does with a question: the held-ticket check and repeat detection,
    the decision, then the event's claim, last."""
    await tickets_repo.held_or_reopenable(session, conversation_key="fake:W1:community:m1", closed_since=AT)
    await decisions_repo.recent_questions(session, actor_key="fake:C1", since=AT)
    await _record(session, question)
    return await events_repo.claim_event(session, platform="fake", event_id=event_id, last=True)


async def test_an_answered_question_is_two_reads_and_one_statement(
    postgres_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    database = postgres_database
    async with database.transaction() as session:
        assert isinstance(session, PgSession)
        await _record(session, "warm up: the first question of a process reserves decision ids")
    wire = _Wire(monkeypatch)
    async with database.transaction() as session:
        assert isinstance(session, PgSession)
        assert await _ask(session, "E1", "how do I reset my key")
    assert wire.sent == ["SELECT", "SELECT", "WITH"]  # no BEGIN, no INSERT of its own, no COMMIT
    assert (
        await _count(database, "SELECT count(*) FROM kb_decisions WHERE question = 'how do I reset my key'")
        == 1
    )
    assert await _count(database, "SELECT count(*) FROM processed_events WHERE event_id = 'E1'") == 1


async def test_a_duplicate_event_records_no_decision(postgres_database: Database) -> None:
    database = postgres_database
    async with database.transaction() as session:
        assert await events_repo.claim_event(session, platform="fake", event_id="E1")
    async with database.transaction() as session:
        assert isinstance(session, PgSession)
        assert await _ask(session, "E1", "asked again by a platform's retry") is None
    assert await _count(database, "SELECT count(*) FROM kb_decisions") == 0


async def test_a_handler_that_fails_before_the_claim_leaves_no_decision(postgres_database: Database) -> None:
    database = postgres_database
    with pytest.raises(RuntimeError):
        async with database.transaction() as session:
            await _record(session, "never kept")
            raise RuntimeError("handler failed")
    assert await _count(database, "SELECT count(*) FROM kb_decisions") == 0


async def test_a_decision_waiting_for_the_claim_is_there_for_what_reads_or_changes_it(
    postgres_database: Database,
) -> None:
    database = postgres_database
    async with database.transaction() as session:
        await _record(session, "escalated later in the same event")
        assert await decisions_repo.recent_questions(session, actor_key="fake:C1", since=AT) == [
            "escalated later in the same event"
        ]
        (decision_id,) = [row.id for row in (await session.execute(select(KBDecision))).scalars().all()]
        await decisions_repo.settle(
            session, decision_id=decision_id, outcome="escalated", reason="x", ticket_id=None
        )
        assert await events_repo.claim_event(session, platform="fake", event_id="E1", last=True)
    async with database.session() as session:
        decision = (await session.execute(select(KBDecision))).scalar_one()
    assert (decision.question, decision.outcome) == ("escalated later in the same event", "escalated")


async def test_a_decision_settled_as_soon_as_it_is_recorded_stays_settled(
    postgres_database: Database,
) -> None:
    """Writes folded into the claim's statement run side by side and none sees another's rows: the
    decision's settling must not be folded beside the INSERT it changes."""
    database = postgres_database
    async with database.transaction() as session:
        decision = await _record(session, "escalated straight away")
        await decisions_repo.settle(
            session, decision_id=decision.id, outcome="escalated", reason="frustration", ticket_id=None
        )
        assert await events_repo.claim_event(session, platform="fake", event_id="E1", last=True)
    async with database.session() as session:
        stored = (await session.execute(select(KBDecision))).scalar_one()
    assert (stored.question, stored.outcome, stored.reason, stored.at) == (
        "escalated straight away",
        "escalated",
        "frustration",
        AT,
    )


async def test_nothing_runs_after_the_last_statement(postgres_database: Database) -> None:
    database = postgres_database
    with pytest.raises(RuntimeError, match="last statement"):
        async with database.transaction() as session:
            assert await events_repo.claim_event(session, platform="fake", event_id="E1", last=True)
            await _record(session, "too late")
    assert await _count(database, "SELECT count(*) FROM kb_decisions") == 0


async def test_nothing_runs_after_the_last_statement_inside_a_transaction_either(
    postgres_database: Database,
) -> None:
    database = postgres_database
    with pytest.raises(RuntimeError, match="last statement"):
        async with database.transaction() as session:
            assert await events_repo.claim_event(session, platform="fake", event_id="E1")  # begins
            assert await events_repo.claim_event(session, platform="fake", event_id="E2", last=True)
            await _record(session, "too late")
    assert await _count(database, "SELECT count(*) FROM processed_events") == 0
    assert await _count(database, "SELECT count(*) FROM kb_decisions") == 0


async def test_a_posted_escalation_is_recorded_in_one_statement(
    postgres_database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once an escalation's messages are posted: the ticket's staff thread and the claim's owed
    replies cleared, which took BEGIN, two UPDATEs and COMMIT."""
    database = postgres_database
    async with database.transaction() as session:
        claim = await events_repo.claim_event(
            session, platform="fake", event_id="E1", owed="[]", owed_until=AT
        )
        ticket_id = (await open_a_ticket(session, "ana", at=AT)).ticket.id
    assert claim is not None and ticket_id is not None
    wire = _Wire(monkeypatch)
    async with database.transaction() as session:
        await tickets_repo.set_staff_thread(
            session, ticket_id=ticket_id, platform="fake", channel_id="staff", thread_id="t1"
        )
        await events_repo.settle_owed(session, ids=[claim], last=True)
    assert wire.sent == ["WITH"]
    assert await _count(database, "SELECT count(*) FROM tickets WHERE staff_thread_id = 't1'") == 1
    assert await _count(database, "SELECT count(*) FROM processed_events WHERE owed IS NULL") == 1


async def test_nothing_is_added_after_the_last_statement_either(postgres_database: Database) -> None:
    """The last statement has committed on its own: an object added after it could only be lost or
    written behind the claim's back, so adding it fails at once, not when the block ends."""
    database = postgres_database
    with pytest.raises(RuntimeError, match="last statement"):
        async with database.transaction() as session:
            assert await events_repo.claim_event(session, platform="fake", event_id="E1", last=True)
            late = KBDecision(
                actor_key="fake:C1", platform="fake", conversation_key="c", question="late", band="answer"
            )
            session.add(late)
            pytest.fail("the add was accepted")
    assert await _count(database, "SELECT count(*) FROM kb_decisions") == 0


async def test_transactions_read_committed_whatever_the_database_default(postgres_database: Database) -> None:
    """Reads run before BEGIN on the assumption that, under READ COMMITTED, they see what they would
    inside the transaction. A database whose default is stricter must not quietly break that."""
    database = postgres_database
    await _repeatable_read_by_default(database)
    async with database.transaction() as session:
        assert await events_repo.claim_event(session, platform="fake", event_id="E1")  # begins
        level = (await session.execute(text("SHOW transaction_isolation"))).scalar_one()
    assert level == "read committed"


async def _repeatable_read_by_default(database: Database) -> None:
    """New connections start as on a database whose default_transaction_isolation is REPEATABLE
    READ (ALTER DATABASE ... SET): in place before any of the bot's own statements."""
    await database.engine.dispose()

    def stricter_default(dbapi_connection: Any, _: Any) -> None:
        # Outside a transaction, or the SET would be rolled back with it when the pool resets.
        dbapi_connection.autocommit = True
        cursor = dbapi_connection.cursor()
        cursor.execute("SET default_transaction_isolation = 'repeatable read'")
        cursor.close()
        dbapi_connection.autocommit = False

    event.listen(database.engine.sync_engine, "connect", stricter_default, insert=True)


async def test_a_duplicate_claimed_alone_is_a_duplicate_whatever_the_database_default(
    postgres_database: Database,
) -> None:
    """Slack delivers an event again while the first delivery's claim is not yet committed; the
    second's claim, its transaction's last statement, runs alone, outside any BEGIN. It must wait
    and find the event taken (None), as under READ COMMITTED, not fail with a serialization error
    because the database's default isolation is stricter."""
    database = postgres_database
    await _repeatable_read_by_default(database)
    claimed, let_go = asyncio.Event(), asyncio.Event()

    async def first_delivery() -> int | None:
        async with database.transaction() as session:
            claim = await events_repo.claim_event(session, platform="slack", event_id="E1")
            claimed.set()
            await let_go.wait()
            return claim

    async def second_delivery() -> int | None:
        await claimed.wait()
        async with database.transaction() as session:
            return await events_repo.claim_event(session, platform="slack", event_id="E1", last=True)

    first, second = asyncio.create_task(first_delivery()), asyncio.create_task(second_delivery())
    await claimed.wait()
    await asyncio.sleep(0.2)  # the second delivery's claim now waits for the first's row
    let_go.set()
    assert await first is not None
    assert await second is None
    assert await _count(database, "SELECT count(*) FROM processed_events") == 1
