"""Work a handler leaves for after its event's commit (`HandlerContext.after_commit`): it runs once
the transaction committed, its replies go out with the event's, and when it fails the person is
told, with a reference; the event is claimed and does not run again."""

from __future__ import annotations

import logging

import pytest

from bot.core.context import HandlerContext
from bot.core.dispatch import Outcome
from bot.core.errors import UserError
from bot.core.events import ActionInvoked, OutboundMessage
from bot.core.router import action
from tests.harness import BotHarness


def _a_button_that_writes_after_the_commit(bot: BotHarness, done: list[str]) -> None:
    """`test.write:<what>`: writes `<what>` to `done` after the commit, and says so; `fail` raises
    as a broken write would, `refuse` as one staff can fix."""

    @bot.bot.dispatcher.router.on(ActionInvoked, action("test.write"))
    async def write_after_the_commit(event: ActionInvoked, ctx: HandlerContext) -> None:
        what = ctx.match.rest

        async def write() -> None:
            if what == "fail":
                raise RuntimeError("the disk went away")
            if what == "refuse":
                raise UserError("There is no such thing to write.")
            done.append(what)
            await ctx.reply(OutboundMessage(text=f"Wrote {what}.", private_to=event.actor))

        await ctx.reply("Writing.")
        ctx.after_commit(write)


async def _click(bot: BotHarness, value: str) -> list[str]:
    sent = await bot.send(
        ActionInvoked(
            actor=bot.staff,
            conversation=bot.staff_room,
            action_id="test.write",
            value=value,
            message_id="m-1",
            event_id=f"click-{value}",
        )
    )
    return [message.text for message in sent]


async def test_work_after_the_commit_runs_once_and_its_reply_follows_the_handlers(bot: BotHarness) -> None:
    done: list[str] = []
    _a_button_that_writes_after_the_commit(bot, done)
    assert await _click(bot, "p12") == ["Writing.", "Wrote p12."]
    assert await _click(bot, "p12") == [] and bot.last_outcome is Outcome.DUPLICATE
    assert done == ["p12"]


async def test_work_that_fails_after_the_commit_is_told_never_silently_lost(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    _a_button_that_writes_after_the_commit(bot, [])
    with caplog.at_level(logging.ERROR, logger="bot.core.dispatch"):
        writing, sorry = await _click(bot, "fail")
    assert bot.last_outcome is Outcome.HANDLED and writing == "Writing."
    assert sorry.startswith("Sorry, something went wrong on our side after I had saved that")
    assert "the disk went away" in caplog.text

    assert await _click(bot, "refuse") == ["Writing.", "There is no such thing to write."]
