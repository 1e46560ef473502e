"""An event a handler finds too early (`TooEarly`: what it is about is still being noted) is
handled again a moment later, with nothing of the early try kept; one that stays too early is
claimed with nothing done, and a line in the log says so."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlmodel import select

from bot.core import dispatch
from bot.core.context import HandlerContext
from bot.core.dispatch import Outcome
from bot.core.errors import TooEarly
from bot.core.events import MessageReceived
from bot.core.router import Router, always
from storage import audit_repo
from storage.db import Database
from storage.models import AuditEntry
from tests.harness import BotHarness, make_settings


@pytest.fixture
async def bot(
    database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[BotHarness]:
    monkeypatch.setattr(dispatch, "TOO_EARLY_DELAYS", (0.01, 0.01, 0.01))
    harness = await BotHarness.create(make_settings(tmp_path), database=database)
    yield harness
    await harness.close()


def noted_on_try(bot: BotHarness, ready: int | None) -> list[int]:
    """A handler in front of the bot's for "about the card": what it needs is noted on try `ready`
    (never, when None). Each try writes first, as a handler may; the tries are counted."""
    tries: list[int] = []
    router = Router("test")

    @router.on(MessageReceived, always(1.0))
    async def about_the_card(event: MessageReceived, ctx: HandlerContext) -> None:
        tries.append(len(tries) + 1)
        await audit_repo.record(ctx.session, actor_key=event.actor.key, action="tried", allowed=True)
        if ready is None or len(tries) < ready:
            raise TooEarly("the card is not noted yet")
        await ctx.reply("Passed on.")

    bot.bot.dispatcher.router = Router("test-root").include(router, bot.bot.dispatcher.router)
    return tries


async def audited(database: Database) -> list[str]:
    async with database.session() as session:
        return [entry.action for entry in (await session.execute(select(AuditEntry))).scalars()]


async def test_an_event_too_early_is_handled_again_and_only_the_try_that_worked_is_kept(
    bot: BotHarness, database: Database
) -> None:
    tries = noted_on_try(bot, ready=3)

    replies = await bot.customer_says("about the card")

    assert [r.text for r in replies] == ["Passed on."]
    assert bot.last_outcome is Outcome.HANDLED
    assert tries == [1, 2, 3]
    assert await audited(database) == ["tried"], "the early tries were rolled back"


async def test_an_event_still_too_early_after_the_last_try_is_claimed_with_nothing_done(
    bot: BotHarness, database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    tries = noted_on_try(bot, ready=None)
    caplog.set_level(logging.INFO, logger="bot.core.dispatch")

    replies = await bot.customer_says("about the card")

    assert replies == [], "nobody is told anything"
    assert tries == [1, 2, 3, 4], "the first try and one after each delay"
    assert await audited(database) == []
    (line,) = [r for r in caplog.records if "too early" in r.getMessage()]
    assert line.levelno == logging.INFO and "the card is not noted yet" in line.getMessage()
    assert getattr(line, "correlation_id", "-") != "-"
    # Claimed: the platform delivering it again is found a duplicate (at the claim, as any is).
    event = MessageReceived(
        actor=bot.customer, conversation=bot.community, text="about the card", message_id="u1", event_id="u1"
    )
    assert await bot.send(event) == [] and bot.last_outcome is Outcome.DUPLICATE
