"""Privacy requests: a person's export holds everything stored about them, and after erasing them no
text column of any table holds their id, their name or their words, while everyone else's tickets
are untouched and every count stays."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import String, func, select
from sqlmodel import SQLModel, col

from bot.adapters.base import DeliveryError, DeliveryFailure
from bot.core import privacy
from bot.core.events import Actor, Conversation, Platform
from bot.core.retention import purge_old_text, run_forever
from storage import privacy_repo
from storage.db import Database
from storage.models import KBDecision, Ticket, TicketMessage
from tests.harness import STAFF_CHANNEL, BotHarness, button, make_settings

QUENTIN = Actor(platform=Platform.CONSOLE, id="U7QZERA", display_name="Quentin Zephyrine")
ROBIN = Actor(platform=Platform.CONSOLE, id="U8ROBINX", display_name="Robin Ashgrove")
# Words only Quentin wrote, in every place a person's words are kept.
QUENTIN_WORDS = ("flibbertigibbet", "quokkaville", "zanzibarish", "Zephyrine", "Quentin")
QUENTIN_DM = Conversation(platform=Platform.CONSOLE, workspace_id="W1", channel_id="D0QDM", is_direct=True)


async def _conversation(bot: BotHarness) -> None:
    """Two customers, a ticket each, questions, a rating, a subscription, an incident follow-up, a
    refused command, staff replies naming them, and an export already made by staff."""
    await bot.staff_runs("/incident open api major API errors")

    # Quentin: a question the bot answers, a ticket with a follow-up, a reply naming him, a rating.
    await bot.says(QUENTIN, "how do I reset my API key? the flibbertigibbet one")
    sent = await bot.says(QUENTIN, "can I talk to a human? my quokkaville export keeps failing")
    card = next(m for m in sent if m.channel_id == STAFF_CHANNEL)
    to_quentin = next(m for m in sent if m.channel_id != STAFF_CHANNEL)
    await bot.says(QUENTIN, "the zanzibarish error shows since tuesday", thread=to_quentin.ref.thread_id)
    await bot.click(bot.staff, button(card, "Claim"), on=card)
    staff_thread = bot.staff_room.in_thread(card.ref.message_id)
    await bot.says(
        bot.staff, "Hi Quentin, thanks Quentin Zephyrine, we fixed the worker", conversation=staff_thread
    )
    await bot.staff_runs("/ticket note 1 Quentin Zephyrine (console:U7QZERA) is on the legacy plan")
    sent = await bot.staff_runs("/ticket close 1 fixed for Quentin")
    question = next(m for m in sent if m.channel_id == "community")
    sent = await bot.click(QUENTIN, button(question, "Yes"), on=question)
    rating = next(m for m in sent if m.delivery.message.buttons)
    await bot.click(QUENTIN, button(rating, "5"), on=rating)
    # A DM subscription, a status question during the incident, a command he may not use.
    await bot.run(QUENTIN, "/subscribe", conversation=QUENTIN_DM)
    await bot.says(QUENTIN, "is the api down?")
    await bot.run(QUENTIN, "/incident open api major flibbertigibbet outage")

    # Robin: a ticket of her own, with a staff reply naming her, and a question.
    sent = await bot.says(ROBIN, "can I talk to a human about my robinsworld invoice")
    card = next(m for m in sent if m.channel_id == STAFF_CHANNEL)
    to_robin = next(m for m in sent if m.channel_id != STAFF_CHANNEL)
    await bot.says(ROBIN, "it is the March one", thread=to_robin.ref.thread_id)
    await bot.says(
        bot.staff,
        "Hello Robin Ashgrove, looking now",
        conversation=bot.staff_room.in_thread(card.ref.message_id),
    )
    await bot.says(ROBIN, "where can I download my invoices?")

    # Staff exported Quentin's data before the erasure (the audit row names him).
    (reply,) = await bot.staff_runs("/support privacy export console:U7QZERA")
    assert "Exported" in reply.text


async def _every_text_value(database: Database) -> list[tuple[str, str, str]]:
    """(table, column, value) of every String/Text value of every table, from the metadata."""
    found: list[tuple[str, str, str]] = []
    async with database.session() as session:
        for table in SQLModel.metadata.sorted_tables:
            columns = [column for column in table.columns if _is_text(column.type)]
            for row in (await session.execute(select(*columns))).all():
                found.extend(
                    (table.name, column.name, value)
                    for column, value in zip(columns, row, strict=True)
                    if isinstance(value, str)
                )
    return found


def _is_text(kind: Any) -> bool:
    """String and Text, and sqlmodel's AutoString (a TypeDecorator over String) of `str` fields."""
    return isinstance(kind, String) or isinstance(getattr(kind, "impl_instance", None), String)


def test_the_search_covers_every_text_column() -> None:
    columns = [c for table in SQLModel.metadata.sorted_tables for c in table.columns if _is_text(c.type)]
    assert len(columns) >= 90 and {c.name for c in columns} >= {"requester_key", "author_name", "question"}


async def _row_counts(database: Database) -> dict[str, int]:
    async with database.session() as session:
        return {
            table.name: (await session.execute(select(func.count()).select_from(table))).scalar_one()
            for table in SQLModel.metadata.sorted_tables
        }


async def _tickets_of(database: Database, key: str) -> list[tuple[Any, ...]]:
    async with database.session() as session:
        tickets = (
            (await session.execute(select(Ticket).where(col(Ticket.requester_key) == key))).scalars().all()
        )
        result = []
        for ticket in tickets:
            lines = await session.execute(
                select(
                    col(TicketMessage.kind),
                    col(TicketMessage.author_key),
                    col(TicketMessage.author_name),
                    col(TicketMessage.text),
                )
                .where(col(TicketMessage.ticket_id) == ticket.id)
                .order_by(col(TicketMessage.id))
            )
            result.append((ticket.number, ticket.summary, ticket.requester_name, ticket.state, *lines.all()))
        return result


async def test_erasing_a_person_leaves_nothing_of_them_and_everyone_else_intact(bot: BotHarness) -> None:
    database = bot.bot.database
    await _conversation(bot)
    before = await _every_text_value(database)
    for word in QUENTIN_WORDS:
        assert any(word.lower() in value.lower() for _, _, value in before), f"the scenario stores {word!r}"
    robin_before = await _tickets_of(database, ROBIN.key)
    counts_before = await _row_counts(database)

    async with database.transaction() as session:
        erasure = await privacy.erase(session, subject=QUENTIN.key, now=bot.clock())
    assert erasure is not None and erasure.pseudonym.startswith("erased:")

    left = [
        (table, column, value)
        for table, column, value in await _every_text_value(database)
        if any(needle.lower() in value.lower() for needle in (QUENTIN.id, *QUENTIN_WORDS))
    ]
    assert left == []
    assert await _tickets_of(database, ROBIN.key) == robin_before
    assert await _row_counts(database) == counts_before, "rows are kept: counts and aggregates stay"

    # His ticket, rating and questions are still counted, under the pseudonym, with his words gone.
    async with database.session() as session:
        (ticket,) = (await session.execute(select(Ticket).where(col(Ticket.number) == 1))).scalars().all()
        questions = (
            await session.execute(
                select(col(KBDecision.question)).where(col(KBDecision.actor_key) == erasure.pseudonym)
            )
        ).all()
    assert (ticket.requester_key, ticket.requester_name, ticket.rating) == (erasure.pseudonym,) * 2 + (5,)
    assert ticket.summary == privacy.ERASED
    assert questions and all(question == privacy.ERASED for (question,) in questions)

    # Nothing is stored about him any more; Robin is still known.
    async with database.session() as session:
        assert await privacy.export(session, subject=QUENTIN.key, now=bot.clock()) is None
        assert await privacy.export(session, subject=ROBIN.key, now=bot.clock()) is not None


async def test_erasing_a_team_member_leaves_their_key_and_name_nowhere(bot: BotHarness) -> None:
    database = bot.bot.database
    await _conversation(bot)
    counts = await _row_counts(database)

    async with database.transaction() as session:
        erasure = await privacy.erase(session, subject=bot.staff.key, now=bot.clock())

    assert erasure is not None and erasure.counts["tickets"] == 2, "the two tickets they held"
    left = [
        (table, column, value)
        for table, column, value in await _every_text_value(database)
        if bot.staff.key in value or bot.staff.display_name in value
    ]
    assert left == []
    assert await _row_counts(database) == counts


async def test_the_export_holds_everything_about_the_person_and_nobody_else(bot: BotHarness) -> None:
    await _conversation(bot)
    async with bot.bot.database.session() as session:
        document = await privacy.export(session, subject=QUENTIN.key, now=bot.clock())
    assert document is not None
    text = privacy.dumps(document)
    parsed = json.loads(text)

    manifest = parsed["manifest"]
    assert (manifest["format"], manifest["version"], manifest["subject"]) == (
        "supportbot-privacy-export",
        1,
        "console:U7QZERA",
    )
    assert manifest["generated_at"] == bot.clock().isoformat()
    assert manifest["names"] == ["Quentin Zephyrine"]
    assert set(manifest["sections"]) == set(privacy.SECTIONS) == set(parsed) - {"manifest"}
    assert all(section["means"] and section["table"] for section in manifest["sections"].values())
    counts = manifest["counts"]
    assert counts["tickets"] == 1 and counts["status_subscriptions"] == 1
    assert counts["status_incident_links"] == 1 and counts["kb_decisions"] == 1
    assert counts["ticket_messages"] == len(parsed["tickets_opened"][0]["transcript"])

    (ticket,) = parsed["tickets_opened"]
    said = [line["text"] for line in ticket["transcript"]]
    assert any("quokkaville" in line for line in said) and any("zanzibarish" in line for line in said)
    assert any("Hi Quentin" in line for line in said), "the team's replies are in his transcript"
    assert parsed["ratings"] == [{"ticket": 1, "rating": 5, "closed_at": ticket["closed_at"]}]
    assert any("flibbertigibbet" in q["question"] for q in parsed["kb_questions"])
    assert any("flibbertigibbet" in row["detail"] for row in parsed["audit_log"]), "his refused command"
    assert any(row["action"] == "privacy.export" for row in parsed["audit_log"]), "the row naming him"
    assert "robinsworld" not in text and "Robin" not in text and ROBIN.id not in text


async def test_a_person_nothing_is_stored_about_is_unknown(bot: BotHarness) -> None:
    await _conversation(bot)
    async with bot.bot.database.transaction() as session:
        assert await privacy.export(session, subject="console:NOBODY1", now=bot.clock()) is None
        assert await privacy.erase(session, subject="console:NOBODY1", now=bot.clock()) is None


async def test_an_erased_persons_open_ticket_closes_and_their_dm_subscription_stops(bot: BotHarness) -> None:
    await bot.says(QUENTIN, "can I talk to a human? my quokkaville export keeps failing")
    await bot.run(QUENTIN, "/subscribe", conversation=QUENTIN_DM)

    async with bot.bot.database.transaction() as session:
        erasure = await privacy.erase(session, subject=QUENTIN.key, now=bot.clock())
    assert erasure is not None

    (ticket,) = await _tickets_of(bot.bot.database, erasure.pseudonym)
    assert ticket[3] == "closed"
    (listing,) = await bot.staff_runs("/subscriptions")
    assert "No active subscriptions." in listing.text and "erased at the person's request" in listing.text


async def test_erasing_a_person_leaves_no_key_of_a_ticket_beside_another_in_their_dms(
    bot: BotHarness,
) -> None:
    """Quentin's two tickets went on in his DMs, where the bot's adapter names the DM by his id: the
    second under a key of its own made of the DM's (`AdoptThread`). Erased, neither key names him."""
    bot.adapter.fail_channel(
        "community", DeliveryError("Missing Access", permanent=True, code=DeliveryFailure.NO_ACCESS)
    )
    await bot.run(QUENTIN, "/ticket new my quokkaville export keeps failing")
    await bot.run(QUENTIN, "/ticket new the invoices page is blank")
    async with bot.bot.database.session() as session:
        keys = (await session.execute(select(col(Ticket.conversation_key)).order_by(Ticket.number))).all()
    assert [key for (key,) in keys] == ["console:W1:D-U7QZERA", "console:W1:D-U7QZERA#ticket-2"]

    async with bot.bot.database.transaction() as session:
        erasure = await privacy.erase(session, subject=QUENTIN.key, now=bot.clock())
    assert erasure is not None
    left = [(t, c, v) for t, c, v in await _every_text_value(bot.bot.database) if QUENTIN.id in v]
    assert left == []


def test_every_text_column_of_every_table_has_a_privacy_decision() -> None:
    """A new table or column must say whether it can identify a person (storage/privacy_repo.py)."""
    declared = {table: sorted(columns) for table, columns in privacy_repo.COLUMNS.items()}
    assert declared == {table: sorted(columns) for table, columns in privacy_repo.text_columns().items()}


async def test_data_retention_replaces_old_questions_and_transcripts_and_keeps_the_counts(
    bot: BotHarness,
) -> None:
    database = bot.bot.database
    await _conversation(bot)
    counts = await _row_counts(database)
    robin_open = await _tickets_of(database, ROBIN.key)

    # Nothing is old enough yet: a day after, a 30-day retention removes nothing.
    assert await purge_old_text(database, before=bot.clock() - timedelta(days=30)) == 0
    purged = await purge_old_text(database, before=bot.clock() + timedelta(days=1), batch=2)

    assert purged > 0
    async with database.session() as session:
        questions = (await session.execute(select(col(KBDecision.question)))).scalars().all()
        (closed,) = (await session.execute(select(Ticket).where(col(Ticket.number) == 1))).scalars().all()
        lines = (
            (
                await session.execute(
                    select(col(TicketMessage.text)).where(col(TicketMessage.ticket_id) == closed.id)
                )
            )
            .scalars()
            .all()
        )
    assert questions and set(questions) == {privacy.EXPIRED}
    assert closed.summary == privacy.EXPIRED and closed.close_reason is None and closed.rating == 5
    assert lines and set(lines) == {privacy.EXPIRED}
    # Robin's ticket is still open: its transcript is still in use, so it stays.
    assert await _tickets_of(database, ROBIN.key) == robin_open
    assert await _row_counts(database) == counts
    assert await purge_old_text(database, before=bot.clock() + timedelta(days=1)) == 0, "done once"


async def test_the_housekeeping_pass_purges_only_with_a_retention_set(bot: BotHarness) -> None:
    database = bot.bot.database
    await _conversation(bot)
    stop = asyncio.Event()
    stop.set()  # one pass, then return
    later = bot.clock() + timedelta(days=31)

    await run_forever(database, keep=timedelta(days=7), clock=lambda: later, stop=stop)
    async with database.session() as session:
        assert (
            privacy.EXPIRED not in (await session.execute(select(col(KBDecision.question)))).scalars().all()
        )

    await run_forever(
        database, keep=timedelta(days=7), clock=lambda: later, stop=stop, keep_text=timedelta(days=30)
    )
    async with database.session() as session:
        assert set((await session.execute(select(col(KBDecision.question)))).scalars().all()) == {
            privacy.EXPIRED
        }


def test_data_retention_days_is_off_unless_set(tmp_path: Path) -> None:
    assert make_settings(tmp_path).data_retention_days == 0
    assert make_settings(tmp_path, data_retention_days="30").data_retention_days == 30
    with pytest.raises(ValidationError):
        make_settings(tmp_path, data_retention_days="-1")


@pytest.mark.parametrize(
    ("typed", "problem"),
    [
        ("U123", "is not platform:user_id"),
        ("teams:U123", "`teams` is not a platform"),
        ("slack:", "is not platform:user_id"),
        ("slack:U 1", "is not a user id"),
    ],
)
def test_a_person_written_wrong_says_how_to_write_them(typed: str, problem: str) -> None:
    with pytest.raises(privacy.SubjectError, match=problem):
        privacy.parse_subject(typed)
    assert privacy.parse_subject(" Slack:U0123ABCD ") == "slack:U0123ABCD"


async def test_the_export_reads_as_a_history_even_when_ids_are_not_in_time_order(bot: BotHarness) -> None:
    """Ids follow the order rows were inserted, not when things happened (two processes, a clock
    corrected, rows restored): the export's sections are ordered by time, oldest first."""
    bot.clock.advance(hours=2)
    await bot.says(QUENTIN, "how do I reset my API key?")
    await bot.says(QUENTIN, "can I talk to a human? my export keeps failing")
    bot.clock.advance(hours=-1)  # written after, happened before
    await bot.says(QUENTIN, "where can I download my invoices?")
    await bot.says(QUENTIN, "can I talk to a human about my invoice", conversation=QUENTIN_DM)
    for number, stars in ((1, "4"), (2, "5")):  # the earlier-opened one closed last
        bot.clock.advance(minutes=5)
        sent = await bot.staff_runs(f"/ticket close {number}")
        question = next(m for m in sent if m.channel_id != STAFF_CHANNEL)
        sent = await bot.click(QUENTIN, button(question, "Yes"), on=question)
        rating = next(m for m in sent if m.delivery.message.buttons)
        await bot.click(QUENTIN, button(rating, stars), on=rating)
    async with bot.bot.database.session() as session:
        document = await privacy.export(session, subject=QUENTIN.key, now=bot.clock())
    assert document is not None

    assert [t["number"] for t in document["tickets_opened"]] == [2, 1]
    assert [r["ticket"] for r in document["ratings"]] == [1, 2]
    questions = [q["question"] for q in document["kb_questions"]]
    assert questions.index("where can I download my invoices?") < questions.index(
        "how do I reset my API key?"
    )
    for name, rows in document.items():
        if name == "manifest":
            continue
        times = [row.get("created_at", row.get("at", row.get("closed_at"))) for row in rows]
        assert times == sorted(times), name
