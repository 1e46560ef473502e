"""Routing: the best score answers, ties go to the first registered, guards allow/skip/deny,
and a handler's exception is isolated with a correlation id."""

from __future__ import annotations

import logging

import pytest

from bot.core.context import HandlerContext
from bot.core.events import ActionInvoked, CommandInvoked, MessageReceived
from bot.core.router import Allow, Deny, Match, Router, Skip, action, command, pattern
from tests.harness import BotHarness, make_settings


def test_match_scores_are_bounded() -> None:
    with pytest.raises(ValueError):
        Match(1.5)


def test_subcommand_outscores_its_parent_and_keeps_the_rest() -> None:
    parent, sub = command("ticket"), command("ticket", "status")
    from tests.core.test_events import CHANNEL, CUSTOMER

    event = CommandInvoked(actor=CUSTOMER, conversation=CHANNEL, name="ticket", args="status 42")
    parent_match, sub_match = parent(event), sub(event)
    assert parent_match is not None and sub_match is not None
    assert sub_match.score > parent_match.score
    assert sub_match.rest == "42"
    assert parent_match.rest == "status 42"


def test_action_matcher_captures_suffix() -> None:
    from tests.core.test_events import CHANNEL, CUSTOMER

    event = ActionInvoked(actor=CUSTOMER, conversation=CHANNEL, action_id="ticket.claim:12", value="x")
    match = action("ticket.claim")(event)
    assert match is not None and match.captures == {"arg": "12"} and match.rest == "x"
    assert action("ticket.close")(event) is None


def _router(calls: list[str]) -> Router:
    router = Router("test")

    @router.on(MessageReceived, pattern(r"refund", score=0.5))
    async def weak(event: MessageReceived, ctx: HandlerContext) -> None:
        calls.append("weak")

    @router.on(MessageReceived, pattern(r"refund (?P<order>\d+)", score=0.9))
    async def strong(event: MessageReceived, ctx: HandlerContext) -> None:
        calls.append(f"strong:{ctx.match.captures['order']}")

    @router.on(MessageReceived, pattern(r"tie", score=0.7))
    async def tie_first(event: MessageReceived, ctx: HandlerContext) -> None:
        calls.append("tie_first")

    @router.on(MessageReceived, pattern(r"tie", score=0.7))
    async def tie_second(event: MessageReceived, ctx: HandlerContext) -> None:
        calls.append("tie_second")

    async def skip(event: MessageReceived, ctx: HandlerContext) -> Skip:
        return Skip()

    async def deny(event: MessageReceived, ctx: HandlerContext) -> Deny:
        return Deny("Only staff can do that.", audit="secret")

    async def allow(event: MessageReceived, ctx: HandlerContext) -> Allow:
        return Allow()

    @router.on(MessageReceived, pattern(r"guarded", score=0.9), guards=[allow, skip])
    async def skipped(event: MessageReceived, ctx: HandlerContext) -> None:
        calls.append("skipped-ran")

    @router.on(MessageReceived, pattern(r"guarded", score=0.6))
    async def next_best(event: MessageReceived, ctx: HandlerContext) -> None:
        calls.append("next_best")

    @router.on(MessageReceived, pattern(r"secret", score=0.9), guards=[deny])
    async def secret(event: MessageReceived, ctx: HandlerContext) -> None:
        calls.append("secret-ran")

    @router.on(MessageReceived, pattern(r"boom", score=0.9))
    async def boom(event: MessageReceived, ctx: HandlerContext) -> None:
        raise RuntimeError("handler bug")

    @router.fallback(MessageReceived)
    async def fallback(event: MessageReceived, ctx: HandlerContext) -> None:
        calls.append("fallback")

    return router


@pytest.fixture
async def routed(sqlite_database, tmp_path):  # type: ignore[no-untyped-def]
    calls: list[str] = []
    harness = await BotHarness.create(make_settings(tmp_path), database=sqlite_database)
    harness.bot.dispatcher.router = _router(calls)
    yield harness, calls
    await harness.close()


async def test_best_score_answers_exactly_once(routed) -> None:  # type: ignore[no-untyped-def]
    bot, calls = routed
    await bot.customer_says("refund 1234 please")
    assert calls == ["strong:1234"]


async def test_equal_scores_go_to_the_first_registered(routed) -> None:  # type: ignore[no-untyped-def]
    bot, calls = routed
    await bot.customer_says("a tie")
    assert calls == ["tie_first"]


async def test_a_skipping_guard_hands_over_to_the_next_candidate(routed) -> None:  # type: ignore[no-untyped-def]
    bot, calls = routed
    await bot.customer_says("guarded")
    assert calls == ["next_best"]


async def test_a_denying_guard_refuses_privately_and_audits(routed) -> None:  # type: ignore[no-untyped-def]
    from sqlmodel import select

    from storage.models import AuditEntry

    bot, calls = routed
    replies = await bot.customer_says("secret stuff")
    assert calls == []
    assert replies[0].text == "Only staff can do that."
    assert replies[0].delivery.message.private_to == bot.customer
    async with bot.bot.database.session() as session:
        entries = (await session.execute(select(AuditEntry))).scalars().all()
    assert [(e.action, e.allowed, e.actor_key) for e in entries] == [("secret", False, "console:C1")]


async def test_unmatched_goes_to_fallback(routed) -> None:  # type: ignore[no-untyped-def]
    bot, calls = routed
    await bot.customer_says("something else entirely")
    assert calls == ["fallback"]


async def test_handler_error_is_isolated_and_names_a_correlation_id(routed, caplog) -> None:  # type: ignore[no-untyped-def]
    bot, calls = routed
    with caplog.at_level(logging.ERROR):
        replies = await bot.customer_says("boom")
    assert len(replies) == 1
    reply = replies[0].text
    assert reply.startswith("Sorry, something went wrong")
    failure = next(r for r in caplog.records if r.exc_info)
    assert failure.correlation_id in reply  # type: ignore[attr-defined]
    # The bot keeps working after the failure.
    await bot.customer_says("refund 7")
    assert calls == ["strong:7"]


async def test_a_click_on_a_button_nothing_handles_any_more_gets_an_answer(bot) -> None:  # type: ignore[no-untyped-def]
    from bot.core.events import ActionInvoked

    (reply,) = await bot.send(
        ActionInvoked(actor=bot.customer, conversation=bot.community, action_id="feature.retired", value="1")
    )
    assert reply.text.startswith("That button no longer does anything")
    assert reply.delivery.message.private_to == bot.customer
