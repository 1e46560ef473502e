"""/metrics: what the bot did (events, handlers, KB decisions, deliveries) and what the database holds
(tickets, outbox), in Prometheus' text format, with labels that never carry what people typed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from bot.adapters.base import DeliveryError, DeliveryFailure
from bot.core.events import Actor, Conversation, Delivery, OutboundMessage, Platform
from bot.core.metrics import Metrics
from bot.core.outbound import Outbound
from bot.tickets.clocks import check_ticket_clocks
from bot.web import create_web_app
from storage.db import Database
from tests.fake_adapter import FakeAdapter
from tests.harness import BotHarness, make_settings
from tests.status.conftest import subscribe

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
async def scrape(bot: BotHarness) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    app = create_web_app(bot.bot.database, metrics=bot.bot.services.metrics, connections=bot.bot.connections)
    async with TestClient(TestServer(app)) as client:
        yield client


async def metrics_text(client: TestClient) -> str:  # type: ignore[type-arg]
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return await response.text()


async def test_a_conversation_shows_in_the_counters_and_the_ticket_gauges(
    bot: BotHarness,
    scrape: TestClient,  # type: ignore[type-arg]
) -> None:
    await bot.customer_says("my csv export failed")  # answered from the KB
    await bot.customer_says("do you have an office in Lisbon where I can drop by?")  # escalated
    await bot.customer_runs("/support help")
    samples = parse(await metrics_text(scrape))

    handled = {"platform": "console", "outcome": "handled"}
    assert value(samples, "supportbot_events_total", kind="message", **handled) == 2
    assert value(samples, "supportbot_events_total", kind="command", **handled) == 1
    assert value(samples, "supportbot_kb_decisions_total", band="answer") == 1
    assert value(samples, "supportbot_kb_decisions_total", band="escalate") == 1
    handlers = {
        dict(labels)["handler"] for name, labels in samples if name == "supportbot_handler_seconds_count"
    }
    assert any(name.startswith("answers.") for name in handlers), handlers
    assert any(name.startswith("basics.") for name in handlers), handlers
    assert value(samples, "supportbot_deliveries_total", platform="console", result="sent") == len(
        bot.adapter.sent
    )
    assert value(samples, "supportbot_tickets_open", state="open") == 1
    assert value(samples, "supportbot_tickets_past_target") == 0
    assert value(samples, "supportbot_database_up") == 1
    # Started by the test itself, not by the bot: not connected as far as the bot knows.
    assert value(samples, "supportbot_adapter_connected", platform="console") == 0

    bot.clock.advance(hours=5)  # past the normal priority's 4 hours
    await check_ticket_clocks(bot.bot.database, bot.bot.services, bot.bot.dispatcher.outbound)
    samples = parse(await metrics_text(scrape))
    assert value(samples, "supportbot_tickets_past_target") == 1
    await bot.staff_runs("/ticket claim 1")
    samples = parse(await metrics_text(scrape))
    assert value(samples, "supportbot_tickets_past_target") == 0
    assert value(samples, "supportbot_tickets_open", state="claimed") == 1


async def test_queued_broadcasts_show_in_the_outbox_gauge(
    bot: BotHarness,
    scrape: TestClient,  # type: ignore[type-arg]
) -> None:
    await subscribe(bot, "news")
    await subscribe(bot, "more-news")
    await bot.staff_runs("/announce Version 2.3 is out")  # the worker is not running: rows wait
    samples = parse(await metrics_text(scrape))
    assert value(samples, "supportbot_outbox_deliveries", state="pending") == 2
    assert value(samples, "supportbot_outbox_deliveries", state="failed") == 0


async def test_process_metrics_are_there() -> None:
    samples = parse(Metrics().exposition()[0].decode())
    assert any(name == "python_info" for name, _ in samples)
    assert any(name == "process_cpu_seconds_total" for name, _ in samples)


async def test_two_bots_in_one_process_count_apart() -> None:
    first, second = Metrics(), Metrics()  # the default registry would refuse the second
    first.kb_decisions.labels("answer").inc()
    assert value(parse(second.exposition()[0].decode()), "supportbot_kb_decisions_total", band="answer") == 0


async def test_rate_limits_retries_and_failures_are_counted_per_platform() -> None:
    adapter = FakeAdapter(Platform.SLACK)
    metrics = Metrics(process=False)

    async def no_wait(_: float) -> None:
        return None

    outbound = Outbound({Platform.SLACK: adapter}, metrics=metrics, sleep=no_wait)
    where = Conversation(platform=Platform.SLACK, workspace_id="T1", channel_id="C1")
    adapter.fail_channel("C1", DeliveryError("ratelimited", permanent=False, retry_after=1.0))
    await outbound.send(Delivery(conversation=where, message=OutboundMessage(text="hello")))
    gone = Conversation(platform=Platform.SLACK, workspace_id="T1", channel_id="C2")
    adapter.fail_channel("C2", DeliveryError("channel_not_found", permanent=True))
    await outbound.send(Delivery(conversation=gone, message=OutboundMessage(text="hello")))

    samples = parse(metrics.exposition()[0].decode())
    assert value(samples, "supportbot_rate_limited_total", platform="slack") == 1
    assert value(samples, "supportbot_delivery_retries_total", platform="slack") == 1
    assert value(samples, "supportbot_deliveries_total", platform="slack", result="sent") == 1
    assert value(samples, "supportbot_deliveries_total", platform="slack", result="failed") == 1


async def test_a_message_that_reached_the_person_by_its_planned_fallback_is_no_failure() -> None:
    adapter = FakeAdapter(Platform.DISCORD)
    metrics = Metrics(process=False)
    outbound = Outbound({Platform.DISCORD: adapter}, metrics=metrics)
    casey = Actor(platform=Platform.DISCORD, id="C1")
    private = Conversation(platform=Platform.DISCORD, workspace_id="G1", channel_id="private")
    adapter.fail_channel(
        "private", DeliveryError("Missing Access", permanent=True, code=DeliveryFailure.NO_ACCESS)
    )
    in_dms = Delivery(conversation=private, message=OutboundMessage(text="ticket #1"), direct_to=casey)
    sent = await outbound.send(
        Delivery(conversation=private, message=OutboundMessage(text="ticket #1"), or_else=in_dms)
    )
    assert sent is not None and sent.is_direct and sent.fallback

    # Their DMs closed too, and nothing planned after that: a failure.
    adapter.fail_channel(
        "D-C1",
        DeliveryError(
            "Cannot send messages to this user", permanent=True, code=DeliveryFailure.PERSON_UNREACHABLE
        ),
    )
    assert (
        await outbound.send(
            Delivery(conversation=private, message=OutboundMessage(text="hi"), or_else=in_dms)
        )
        is None
    )

    samples = parse(metrics.exposition()[0].decode())
    assert value(samples, "supportbot_deliveries_total", platform="discord", result="sent") == 1
    assert value(samples, "supportbot_deliveries_total", platform="discord", result="failed") == 1
    fallbacks = "supportbot_delivery_fallbacks_total"
    assert value(samples, fallbacks, platform="discord", reason="no_access") == 2


async def test_metrics_never_show_what_people_typed_their_ids_or_tokens(
    database: Database, tmp_path: object
) -> None:
    token = "xoxb-2741-9918273645-Zq8RtW3nLp0YvKx"
    bot = await BotHarness.create(make_settings(tmp_path), database=database)
    quentin = Actor(platform=Platform.CONSOLE, id="U0QSECRET77", display_name="Quentin Marchbanks")
    await bot.says(quentin, f"my token {token} stopped working, is it leaked? help!!!")
    await bot.run(quentin, "/ticket new Quentin Marchbanks cannot log in")
    await bot.customer_runs(f"/ticket status {token}")
    app = create_web_app(database, metrics=bot.bot.services.metrics, connections=bot.bot.connections)
    async with TestClient(TestServer(app)) as client:
        text = await metrics_text(client)
        ready = await (await client.get("/readyz")).text()
    assert "supportbot_events_total" in text
    for secret in (token, "Quentin", "Marchbanks", "U0QSECRET77", "stopped working", "log in"):
        assert secret not in text, secret
        assert secret not in ready, secret
    await bot.close()
