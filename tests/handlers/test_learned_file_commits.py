"""learned.yml is written once per event, and only after its transaction committed: an event handled
again (a platform's redelivery, a connection the database dropped) teaches once and says so, and an
event whose transaction fails, answered with an apology, leaves the file as it was. SQLite and
PostgreSQL."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select, text

from bot.core.dispatch import Outcome
from bot.core.events import ActionInvoked, Button
from bot.kb import learned, teach
from bot.kb.knowledge_base import KnowledgeBaseHolder
from storage.db import Database
from storage.models import AuditEntry
from tests.core.test_database_drops import _drop_pooled_connections
from tests.fake_adapter import SentMessage
from tests.handlers.test_privacy_commands import ASHAS, BRAMS, _taught_from_their_gap
from tests.handlers.test_teach_from_gap import a_gap_about_the_theme
from tests.harness import BotHarness, button, make_settings

_REFUSE_CLAIMS = {
    "sqlite": [
        "CREATE TRIGGER refuse_claims BEFORE INSERT ON processed_events"
        " BEGIN SELECT RAISE(ABORT, 'the disk is full'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION refuse_claims() RETURNS trigger LANGUAGE plpgsql"
        " AS $$ BEGIN RAISE EXCEPTION 'the disk is full'; END $$",
        "CREATE TRIGGER refuse_claims BEFORE INSERT ON processed_events"
        " FOR EACH ROW EXECUTE FUNCTION refuse_claims()",
    ],
}


async def _database_refuses_every_event(database: Database) -> None:
    """From now on the database fails every event's transaction at its last statement, the claim
    (as a full disk would): whatever the handler did before is rolled back."""
    async with database.engine.begin() as connection:
        for statement in _REFUSE_CLAIMS[database.dialect]:
            await connection.execute(text(statement))


def _click(bot: BotHarness, message: SentMessage, label: str) -> ActionInvoked:
    """A staff member's click on `message`'s button, as the platform delivers it (maybe twice)."""
    clicked: Button = button(message, label)
    return ActionInvoked(
        actor=bot.staff,
        conversation=message.delivery.conversation,
        action_id=clicked.action_id,
        value=clicked.value,
        message_id=message.ref.message_id,
        event_id=f"click-{label}",
    )


@pytest.fixture
async def postgres_bot(postgres_database: Database, tmp_path: Path, kb: Path) -> AsyncIterator[BotHarness]:
    """The bot on PostgreSQL alone, where a transaction can be ended by a conflict or a restart."""
    harness = await BotHarness.create(make_settings(tmp_path, kb_path=str(kb)), database=postgres_database)
    yield harness
    await harness.close()


def _a_team_file_half_written(kb: Path) -> None:
    """A file of the team's that does not load: a reload keeps the KB in service, in which the gap
    is still a gap, so an event handled again would decline it again."""
    (kb / "broken.yml").write_text("- id: half-written\n  questions: [only one]\n")


async def test_a_not_ours_click_delivered_twice_declines_the_gap_once(bot: BotHarness, kb: Path) -> None:
    report = await a_gap_about_the_theme(bot)
    (offer,) = await bot.click(bot.staff, button(report, "Teach gap 1"), on=report)
    _a_team_file_half_written(kb)
    not_ours = _click(bot, offer, "Not ours")

    (declined,) = await bot.send(not_ours)
    assert await bot.send(not_ours) == [] and bot.last_outcome is Outcome.DUPLICATE

    assert "as topic `n1`" in declined.text and "kept the previous one" in declined.text
    assert [topic.id for topic in learned.read(kb / "learned.yml").declined] == ["n1"]


_CONFLICT_ONCE = [
    "CREATE SEQUENCE claims_tried",
    "CREATE FUNCTION conflict_once() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    " IF nextval('claims_tried') = 1 THEN RAISE EXCEPTION 'could not serialize access'"
    " USING ERRCODE = 'serialization_failure'; END IF; RETURN NEW; END $$",
    "CREATE TRIGGER conflict_once BEFORE INSERT ON processed_events"
    " FOR EACH ROW EXECUTE FUNCTION conflict_once()",
]


async def _the_next_claim_meets_a_serialization_failure(database: Database) -> None:
    """PostgreSQL ends the next event's first transaction at its claim, as a serialization failure
    with another process would (the sequence counts tries: it is not rolled back)."""
    async with database.engine.begin() as connection:
        for statement in _CONFLICT_ONCE:
            await connection.execute(text(statement))


@pytest.mark.postgres
async def test_a_not_ours_click_handled_again_after_a_serialization_failure_declines_once(
    postgres_bot: BotHarness, postgres_database: Database, kb: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bot = postgres_bot
    report = await a_gap_about_the_theme(bot)
    (offer,) = await bot.click(bot.staff, button(report, "Teach gap 1"), on=report)
    _a_team_file_half_written(kb)
    await _the_next_claim_meets_a_serialization_failure(postgres_database)

    with caplog.at_level(logging.WARNING, logger="bot.core.dispatch"):
        (declined,) = await bot.click(bot.staff, button(offer, "Not ours"), on=offer)

    assert any("could not serialize" in r.getMessage() for r in caplog.records), "handled twice"
    assert "as topic `n1`" in declined.text, declined.text
    assert [topic.id for topic in learned.read(kb / "learned.yml").declined] == ["n1"]


async def test_a_not_ours_click_whose_transaction_fails_declines_nothing(
    bot: BotHarness, kb: Path, database: Database
) -> None:
    report = await a_gap_about_the_theme(bot)
    (offer,) = await bot.click(bot.staff, button(report, "Teach gap 1"), on=report)
    await _database_refuses_every_event(database)

    (apology,) = await bot.click(bot.staff, button(offer, "Not ours"), on=offer)

    assert bot.last_outcome is Outcome.FAILED and "something went wrong" in apology.text
    assert not (kb / "learned.yml").exists(), "the file agrees with the database: nothing declined"
    holder = bot.bot.services.kb
    assert isinstance(holder, KnowledgeBaseHolder) and not holder.current.declined_questions()


async def test_an_erasure_whose_transaction_fails_has_already_taken_their_words_out_of_the_file(
    bot: BotHarness, kb: Path, database: Database
) -> None:
    """The file is cleaned inside the transaction, so that no kill after the commit can leave their
    words in it: a failed try has removed only what the person asked to have erased."""
    await _taught_from_their_gap(bot, "Not ours")
    assert ASHAS in (kb / "learned.yml").read_text()
    (question,) = await bot.staff_runs("/support privacy erase console:C11")
    await _database_refuses_every_event(database)

    (apology,) = await bot.click(bot.staff, button(question, "Erase console:C11"), on=question)

    assert bot.last_outcome is Outcome.FAILED and "something went wrong" in apology.text
    assert ASHAS not in (kb / "learned.yml").read_text()
    assert [topic.questions for topic in learned.read(kb / "learned.yml").declined] == [(BRAMS,)]


@pytest.mark.postgres
async def test_an_erasure_handled_again_after_a_serialization_failure_counts_the_words_the_first_try_removed(
    postgres_bot: BotHarness, postgres_database: Database, kb: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bot = postgres_bot
    await _taught_from_their_gap(bot, "Not ours")
    (question,) = await bot.staff_runs("/support privacy erase console:C11")
    await _the_next_claim_meets_a_serialization_failure(postgres_database)

    with caplog.at_level(logging.WARNING, logger="bot.core.dispatch"):
        (done,) = await bot.click(bot.staff, button(question, "Erase console:C11"), on=question)

    assert any("could not serialize" in r.getMessage() for r in caplog.records), "handled twice"
    assert done.text.startswith("Erased console:C11: ") and ", learned.yml 1 question;" in done.text, (
        done.text
    )
    async with postgres_database.session() as session:
        (audited,) = (
            await session.execute(select(AuditEntry.detail).where(AuditEntry.action == "privacy.erase"))
        ).scalars()
    assert audited.endswith(", 1 learned questions"), audited
    assert ASHAS not in (kb / "learned.yml").read_text()


@pytest.mark.postgres
async def test_a_forget_handled_again_after_the_connection_dropped_forgets_once_and_says_so(
    postgres_bot: BotHarness, postgres_database: Database, kb: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bot = postgres_bot
    holder = bot.bot.services.kb
    assert isinstance(holder, KnowledgeBaseHolder)
    change = teach.attach_change(holder.entries, entry_id=holder.entries[0].id, questions=["zebra quux"])
    teach.publish(kb, change, taught_by="U1")
    await bot.staff_runs("/support kb reload")  # the pool now holds a connection
    assert await _drop_pooled_connections(postgres_database) >= 1

    with caplog.at_level(logging.WARNING, logger="bot.core.dispatch"):
        (forgot,) = await bot.staff_runs("/support kb forget p1")

    assert any("connection lost" in r.getMessage() for r in caplog.records), "handled twice"
    assert forgot.text.startswith("Forgot `p1`"), forgot.text
    assert learned.read(kb / "learned.yml").phrasings == ()


async def test_an_export_whose_transaction_fails_leaves_no_file_of_their_data(
    bot: BotHarness, database: Database, tmp_path: Path
) -> None:
    await bot.says(bot.other_customer, "can I talk to a human? my export keeps failing")
    await _database_refuses_every_event(database)

    (apology,) = await bot.staff_runs(f"/support privacy export {bot.other_customer.key}")

    assert bot.last_outcome is Outcome.FAILED and "something went wrong" in apology.text
    assert not (tmp_path / "privacy-exports").exists(), "nobody was told of it: none is written"
