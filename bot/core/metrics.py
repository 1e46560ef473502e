"""The bot's Prometheus metrics, all defined here, in a registry the bot owns (never the global one,
so two bots in one process, or two tests, keep their own counts).

Labels only ever carry names from the code (platforms, event kinds, outcomes, handler and KB band
names, states): never what people typed, their ids or tokens. Counters count what this process did;
the gauges read at scrape time (`refresh`) show the shared database, so several processes on one
PostgreSQL report the same ticket and outbox figures (aggregate those with max, not sum).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector

from bot.adapters.base import DeliveryFailure
from bot.core.events import ActionInvoked, CommandInvoked, InboundEvent, MessageReceived, ReactionAdded
from storage import outbox_repo, tickets_repo
from storage.db import Database

log = logging.getLogger(__name__)

EVENT_KINDS: Final[Mapping[type[InboundEvent], str]] = {
    MessageReceived: "message",
    CommandInvoked: "command",
    ActionInvoked: "action",
    ReactionAdded: "reaction",
}
OUTBOX_STATES: Final = (outbox_repo.PENDING, outbox_repo.SENDING, outbox_repo.FAILED)
SENT, FAILED = "sent", "failed"
"""`supportbot_deliveries_total`'s results: posted, or not (refused for good, or given up on)."""

# Handlers run from a millisecond (a greeting) to seconds (semantic matching, a slow database).
_HANDLER_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def event_kind(event: InboundEvent) -> str:
    return EVENT_KINDS.get(type(event), "other")


class Metrics:
    """Every metric of the bot. `process=False` leaves out the process, platform and GC collectors
    (for the throwaway instances parts get when no registry is wired, e.g. in unit tests)."""

    def __init__(self, *, process: bool = True) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        if process:
            ProcessCollector(registry=registry)
            PlatformCollector(registry=registry)
            GCCollector(registry=registry)
        self.events = Counter(
            "supportbot_events",
            "Inbound events handled, by platform, kind and outcome.",
            ["platform", "kind", "outcome"],
            registry=registry,
        )
        self.handler_seconds = Histogram(
            "supportbot_handler_seconds",
            "Time a handler ran, its queries included (not the commit, not sending its replies).",
            ["handler"],
            buckets=_HANDLER_BUCKETS,
            registry=registry,
        )
        self.kb_decisions = Counter(
            "supportbot_kb_decisions",
            "Knowledge-base decisions on customers' questions, by band (answer, clarify, escalate).",
            ["band"],
            registry=registry,
        )
        self.deliveries = Counter(
            "supportbot_deliveries",
            "Messages the bot tried to post or edit, replies and broadcasts, by platform and result.",
            ["platform", "result"],
            registry=registry,
        )
        self.delivery_fallbacks = Counter(
            "supportbot_delivery_fallbacks",
            "Deliveries refused for good where they were meant to go and sent to their planned"
            " fallback instead (`Delivery.or_else`: a ticket's confirmation to the customer's DMs, a"
            " staff answer that cannot reach the customer reported to its writer), by platform and"
            " why (no_access, channel_gone, person_unreachable). Not counted as failed: the message"
            " counts once, as sent or failed, where it went in the end.",
            ["platform", "reason"],
            registry=registry,
        )
        self.rate_limited = Counter(
            "supportbot_rate_limited",
            "Rate limits (429) a platform answered a delivery's request with, those the platform's SDK"
            " waited out included, by platform.",
            ["platform"],
            registry=registry,
        )
        self.delivery_retries = Counter(
            "supportbot_delivery_retries",
            "Delivery requests sent again after a transient failure (a 429, a server or connection"
            " error), by the bot or by the platform's SDK, by platform.",
            ["platform"],
            registry=registry,
        )
        self.kept_work_unreadable = Counter(
            "supportbot_kept_work_unreadable",
            "Claims whose work kept for after their commit no class of this version can read (a"
            " `@kept_work` class renamed or removed by a deploy), once each per process: the work"
            " is kept, and tried again hourly.",
            registry=registry,
        )
        self.adapter_connected = Gauge(
            "supportbot_adapter_connected",
            "1 when the platform's connection is up (Discord gateway, Slack socket), else 0.",
            ["platform"],
            registry=registry,
        )
        self.tickets_open = Gauge(
            "supportbot_tickets_open",
            "Open tickets in the database, by state (open, claimed, awaiting_confirmation).",
            ["state"],
            registry=registry,
        )
        self.tickets_past_target = Gauge(
            "supportbot_tickets_past_target",
            "Tickets still waiting for a first response past their target (as the ticket clocks found).",
            registry=registry,
        )
        self.outbox = Gauge(
            "supportbot_outbox_deliveries",
            "Broadcast deliveries in the outbox not yet sent, by state (pending, sending, failed).",
            ["state"],
            registry=registry,
        )
        self.database_up = Gauge(
            "supportbot_database_up",
            "1 when the last scrape could read the ticket and outbox figures from the database.",
            registry=registry,
        )

    # -- recording -------------------------------------------------------------------------------

    def event_handled(self, event: InboundEvent, outcome: str) -> None:
        self.events.labels(event.platform.value, event_kind(event), outcome).inc()

    def delivered(self, platform: str, *, ok: bool) -> None:
        self.deliveries.labels(platform, SENT if ok else FAILED).inc()

    def fell_back(self, platform: str, reason: DeliveryFailure) -> None:
        """A delivery refused for `reason` went to its `or_else` (which counts as it goes)."""
        self.delivery_fallbacks.labels(platform, reason.value).inc()

    def sdk_retried(self, platform: str, reason: DeliveryFailure) -> None:
        """A platform's SDK sent a delivery's request again on its own (see `ReportsRetries`)."""
        if reason is DeliveryFailure.RATE_LIMITED:
            self.rate_limited.labels(platform).inc()
        self.delivery_retries.labels(platform).inc()

    # -- scraping --------------------------------------------------------------------------------

    async def refresh(
        self,
        database: Database,
        *,
        connected: Mapping[str, bool],
        timeout: float = 2.0,  # noqa: ASYNC109 - a bound on the queries, not a wait
    ) -> None:
        """Set the gauges that describe the present: connections, and what the database holds. A
        database that does not answer within `timeout` leaves its gauges as they were and sets
        `supportbot_database_up` to 0; the rest of the scrape still answers."""
        for platform, up in connected.items():
            self.adapter_connected.labels(platform).set(1 if up else 0)
        try:
            async with asyncio.timeout(timeout), database.session() as session:
                tickets = await tickets_repo.open_counts(session)
                outbox = await outbox_repo.delivery_counts(session)
        except Exception as error:  # a scrape must answer whatever the database does
            log.warning("metrics: database figures unavailable: %s", type(error).__name__)
            self.database_up.set(0)
            return
        self.database_up.set(1)
        for state in tickets_repo.OPEN_STATES:
            self.tickets_open.labels(state).set(tickets.by_state.get(state, 0))
        self.tickets_past_target.set(tickets.past_target)
        for state in OUTBOX_STATES:
            self.outbox.labels(state).set(outbox.get(state, 0))

    def exposition(self) -> tuple[bytes, str]:
        """The registry in Prometheus' text format, and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
