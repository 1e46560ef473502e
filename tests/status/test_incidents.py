"""Staff run incidents; every subscribed channel hears about it once, updates thread under the first
notice, the first notice shows the current state, and customers who asked are told it's over."""

from __future__ import annotations

import asyncio
from datetime import datetime

import pytest
from sqlmodel import select

from bot.adapters.base import DeliveryError, DeliveryFailure
from bot.core.dispatch import Outcome
from bot.core.events import Actor, Delivery, Platform, SentRef
from bot.status import maintenance_notices
from bot.status.broadcast.pacing import LanePolicy
from bot.status.broadcast.worker import BroadcastWorker, WorkerConfig
from storage import outbox_repo, status_repo, subscriptions_repo
from storage.models import AuditEntry
from tests.fake_adapter import FakeAdapter
from tests.harness import BotHarness
from tests.status.conftest import channel, deliver, received, subscribe


async def _audit(bot: BotHarness) -> list[AuditEntry]:
    async with bot.bot.database.session() as session:
        return list((await session.execute(select(AuditEntry).order_by(AuditEntry.id))).scalars())


async def test_incident_lifecycle_threads_updates_and_edits_the_first_notice(bot: BotHarness) -> None:
    await subscribe(bot, "news")
    await subscribe(bot, "payments-watch", "payments")
    await subscribe(bot, "api-watch", "api")

    (ack,) = await bot.staff_runs("/incident open payments major Card payments failing")
    assert ack.text == (
        "Opened incident **#1** (major) on payments: Card payments failing\nBroadcasting to 2 recipient(s)…"
    )
    await deliver(bot)
    (first,) = received(bot, "news")
    assert first.delivery.message.title == "[Major] Card payments failing"
    assert first.ref.thread_id is None
    assert len(received(bot, "payments-watch")) == 1
    assert received(bot, "api-watch") == [], "the api-only channel is not told about payments"

    bot.clock.advance(minutes=10)
    await bot.staff_runs("/incident update 1 identified A bad deploy; rolling back")
    await deliver(bot)
    _first, update, edit = received(bot, "news")
    assert update.ref.thread_id == first.ref.message_id
    assert update.text.endswith("**Identified**: A bad deploy; rolling back")
    assert edit.delivery.edit is not None and edit.delivery.edit.message_id == first.ref.message_id
    assert edit.delivery.message.title == "[Identified] Card payments failing"

    await bot.staff_runs("/incident resolve 1 Payments are back")
    await deliver(bot)
    *_, resolved, final_edit = received(bot, "news")
    assert resolved.ref.thread_id == first.ref.message_id
    assert "**Resolved**: Payments are back" in resolved.text
    assert final_edit.delivery.message.title == "[Resolved] Card payments failing"
    (page,) = await bot.customer_runs("/status")
    assert page.delivery.message.title == "All systems operational"


async def test_an_incident_back_within_a_week_is_reopened_in_its_thread_with_its_history(
    bot: BotHarness,
) -> None:
    await subscribe(bot, "news")
    await bot.staff_runs("/incident open payments major Card payments failing")
    await bot.staff_runs("/incident resolve 1 Payments are back")
    await deliver(bot)
    (first, *_) = received(bot, "news")

    bot.clock.advance(days=2)
    (ack,) = await bot.staff_runs("/incident update 1 identified Failing again after the rollback")
    assert ack.text.startswith("Reopened (identified) incident **#1** Card payments failing"), ack.text
    await deliver(bot)
    *_, reopened, edit = received(bot, "news")
    assert reopened.delivery.message.title == "Reopened #1: Card payments failing"
    assert reopened.text.endswith("**Identified**: Failing again after the rollback")
    assert reopened.ref.thread_id == first.ref.message_id, "in the incident's thread, with its history"
    assert edit.delivery.message.title == "[Identified] Card payments failing"
    (status,) = await bot.customer_runs("/status")
    assert status.delivery.message.title == "Partial outage", "its impact (major) holds payments again"
    assert "#1 Card payments failing** (Major, identified)" in status.text
    assert (await _audit(bot))[-1].detail == "#1 reopened (identified): Failing again after the rollback"
    (history,) = await bot.staff_runs("/component history payments")
    assert history.text.splitlines()[-1].endswith("→ partial_outage (incident #1 reopened)")

    await bot.staff_runs("/incident resolve 1 Fixed for good")
    (status,) = await bot.customer_runs("/status")
    assert status.delivery.message.title == "All systems operational"


async def test_a_reopened_incident_takes_the_impact_it_is_reopened_with(bot: BotHarness) -> None:
    await bot.staff_runs("/incident open api,payments critical Everything is down")
    await bot.staff_runs("/incident open payments minor Slow card payments")
    await bot.staff_runs("/incident resolve 1 Back up")
    (ack,) = await bot.staff_runs("/incident update 1 monitoring impact=major Errors again on some calls")
    assert ack.text.startswith(
        "Reopened (monitoring) incident **#1** Everything is down; impact critical → major"
    ), ack.text
    (status,) = await bot.customer_runs("/status")
    assert "- api: Partial outage" in status.text and "- payments: Partial outage" in status.text
    assert "Impact changed from critical to major. Errors again on some calls" in status.text
    assert (await _audit(bot))[-1].detail == (
        "#1 reopened (monitoring), impact critical → major: Errors again on some calls"
    )


async def test_an_incident_resolved_over_a_week_ago_is_not_reopened(bot: BotHarness) -> None:
    await subscribe(bot, "news")
    await bot.staff_runs("/incident open payments major Card payments failing")
    await bot.staff_runs("/incident resolve 1 Payments are back")
    for line in ("/incident resolve 1 Really back", "/incident update 1 resolved Really back"):
        (again,) = await bot.staff_runs(line)
        assert again.text == (
            "Incident #1 is already resolved. If it's back, reopen it with "
            "`/incident update 1 investigating <message>`."
        ), line
    bot.clock.advance(days=7, minutes=1)
    await deliver(bot)
    told = len(received(bot, "news"))
    (refused,) = await bot.staff_runs("/incident update 1 investigating Failing again")
    assert bot.last_outcome is Outcome.USER_ERROR
    assert refused.text == (
        "Incident #1 was resolved more than 7 days ago, too long to reopen it. Open a new one if it's back."
    )
    (again,) = await bot.staff_runs("/incident resolve 1 Really back")
    assert again.text == "Incident #1 is already resolved. Open a new one if it's back."
    await deliver(bot)
    assert len(received(bot, "news")) == told, "nobody was told anything"
    (status,) = await bot.customer_runs("/status")
    assert status.delivery.message.title == "All systems operational"


async def test_staff_see_progress_and_a_summary(bot: BotHarness) -> None:
    for index in range(5):
        await subscribe(bot, f"c{index}")
    bot.adapter.fail_channel(
        "c3", DeliveryError("channel_not_found", permanent=True, code=DeliveryFailure.CHANNEL_GONE)
    )
    (ack,) = await bot.staff_runs("/incident open api minor Slow API")
    await deliver(bot)
    edits = [
        m for m in bot.adapter.sent if m.delivery.edit and m.delivery.edit.message_id == ack.ref.message_id
    ]
    assert edits[-1].text == "Incident #1 (open): Broadcast finished: delivered 4 / 5, 1 failed."


async def test_a_channel_the_bot_cannot_post_in_is_disabled_and_staff_are_told_once(bot: BotHarness) -> None:
    await subscribe(bot, "gone")
    await subscribe(bot, "fine")
    bot.adapter.fail_channel(
        "gone", DeliveryError("not_in_channel", permanent=True, code=DeliveryFailure.NO_ACCESS)
    )
    await bot.staff_runs("/incident open api minor Slow API")
    await bot.staff_runs("/incident update 1 monitoring Fix deployed")
    await deliver(bot)

    notices = [m for m in bot.staff_posts() if "turned off its subscription" in m.text]
    assert len(notices) == 1
    assert "`gone`" in notices[0].text and "no_access" in notices[0].text
    assert len(received(bot, "fine")) == 3  # notice, threaded update, edit
    (listing,) = await bot.staff_runs("/subscriptions")
    assert "1 active subscription: console 1" in listing.text
    assert "- disabled: console `gone` (no_access)" in listing.text
    async with bot.bot.database.transaction() as session:
        # The update's row for `gone` was skipped, not sent: its broadcast still finished.
        assert await outbox_repo.unfinished_broadcasts(session) == []


async def test_an_edit_of_a_deleted_first_notice_does_not_turn_off_the_subscription(
    bot: BotHarness,
) -> None:
    """Someone deletes the bot's incident card (Discord answers the edit with 404 Unknown Message,
    which the Discord adapter maps to `DeliveryFailure.MESSAGE_GONE`). The channel still works: the
    subscription must stay on, and staff must not be told the bot can't post there."""
    await subscribe(bot, "news")
    await bot.staff_runs("/incident open api minor Slow API")
    await deliver(bot)
    real_send = bot.adapter.send

    async def send(delivery: Delivery) -> SentRef:
        if delivery.edit is not None and delivery.conversation.channel_id == "news":
            raise DeliveryError("Discord: Unknown Message", permanent=True, code=DeliveryFailure.MESSAGE_GONE)
        return await real_send(delivery)

    bot.adapter.send = send  # type: ignore[method-assign]
    await bot.staff_runs("/incident update 1 monitoring Fix deployed")
    await deliver(bot)
    assert any("Fix deployed" in m.text for m in received(bot, "news")), "the update itself was posted"
    async with bot.bot.database.transaction() as session:
        found = await subscriptions_repo.get_subscription(
            session, platform="console", workspace_id="W1", channel_id="news"
        )
    assert found is not None
    assert found.active, f"subscription turned off because an edit failed ({found.disabled_reason})"
    assert not [m for m in bot.staff_posts() if "turned off its subscription" in m.text]


async def test_an_update_to_a_deleted_first_notice_stands_at_the_top_level(bot: BotHarness) -> None:
    await subscribe(bot, "news")
    await bot.staff_runs("/incident open api minor Slow API")
    await deliver(bot)
    real_send = bot.adapter.send

    async def send(delivery: Delivery) -> SentRef:
        if delivery.conversation.channel_id == "news" and delivery.conversation.thread_id is not None:
            raise DeliveryError("Discord: Unknown Message", permanent=True, code=DeliveryFailure.MESSAGE_GONE)
        return await real_send(delivery)

    bot.adapter.send = send  # type: ignore[method-assign]
    await bot.staff_runs("/incident update 1 monitoring Fix deployed")
    await deliver(bot)

    (update,) = [m for m in received(bot, "news") if "Fix deployed" in m.text and m.delivery.edit is None]
    assert update.delivery.conversation.thread_id is None


async def test_transient_errors_are_retried_until_sent(bot: BotHarness) -> None:
    await subscribe(bot, "flaky")
    bot.adapter.fail_channel(
        "flaky",
        DeliveryError("rate limited", permanent=False, retry_after=0.05, code=DeliveryFailure.RATE_LIMITED),
    )
    await bot.staff_runs("/announce Version 2.3 is out")
    await deliver(bot)
    (sent,) = received(bot, "flaky")
    assert sent.text == "Announcement\nVersion 2.3 is out"


async def test_the_broadcast_worker_stops_when_told_even_as_a_command_wakes_it(bot: BotHarness) -> None:
    worker = bot.bot.broadcaster
    assert worker is not None
    worker.start()
    await asyncio.sleep(0.05)  # idle, between two looks at the outbox
    # The bot is told to stop the moment `/incident open` wakes the worker for its broadcast.
    worker.wake()
    await asyncio.wait_for(worker.stop(), timeout=5)  # not the whole stop grace, nor forever


async def test_a_delivery_that_crashes_every_time_is_given_up_not_retried_forever(bot: BotHarness) -> None:
    class Crashing(FakeAdapter):
        async def send(self, delivery: Delivery) -> SentRef:
            raise RuntimeError("a bug in the adapter")

    await subscribe(bot, "news")
    await bot.staff_runs("/announce Version 2.3 is out")
    worker = BroadcastWorker(
        bot.bot.database,
        {Platform.CONSOLE: Crashing(Platform.CONSOLE)},
        policy=lambda lane: LanePolicy(rate=None),
        staff_channel=None,
        page_url="http://status.test/",
        config=WorkerConfig(max_attempts=3, base_backoff=0.01, max_backoff=0.02),
    )

    await worker.run_until_idle(limit_s=10)

    async with bot.bot.database.transaction() as session:
        assert await outbox_repo.delivery_counts(session) == {outbox_repo.FAILED: 1}


async def test_customer_who_asked_is_told_when_it_resolves_and_it_counts_as_deflected(
    bot: BotHarness,
) -> None:
    await bot.staff_runs("/incident open payments major Card payments failing")
    await bot.customer_says("are payments down?")
    await bot.customer_says("are payments down?")  # asking twice links once
    await bot.customer_dms("is checkout broken")

    await bot.staff_runs("/incident resolve 1")
    await deliver(bot)

    in_thread = [m for m in received(bot, "community") if "you asked about is resolved" in m.text]
    assert len(in_thread) == 1
    assert in_thread[0].ref.thread_id is not None, "told in the thread of their question"
    (in_dm,) = [m for m in received(bot, "D-C1") if "you asked about is resolved" in m.text]
    assert in_dm.text.startswith("Good news: the **payments** outage you asked about is resolved")
    async with bot.bot.database.transaction() as session:
        assert await status_repo.deflections(session) == 2


async def test_customer_who_asks_again_once_it_is_reopened_is_told_again_when_it_resolves(
    bot: BotHarness,
) -> None:
    await bot.staff_runs("/incident open payments major Card payments failing")
    await bot.customer_dms("are payments down?")
    await bot.staff_runs("/incident resolve 1")
    await bot.staff_runs("/incident update 1 investigating Failing again")
    (answer,) = await bot.customer_dms("are payments down again?")
    assert "I'll tell you here when it's resolved." in answer.text
    await bot.staff_runs("/incident resolve 1 Fixed for good")
    await deliver(bot)

    told = [m for m in received(bot, "D-C1") if "you asked about is resolved" in m.text]
    assert len(told) == 2, "once for each time they asked and it was resolved"


async def test_component_status_changes_are_kept(bot: BotHarness) -> None:
    (reply,) = await bot.staff_runs("/component set webhooks degraded_performance")
    assert reply.text == "**webhooks**: Operational → Degraded performance."
    await bot.staff_runs("/component set webhooks operational")
    (history,) = await bot.staff_runs("/component history webhooks")
    assert history.text.splitlines() == [
        "webhooks: operational",
        "- Nov 24 09:00 UTC: operational → degraded_performance (command)",
        "- Nov 24 09:00 UTC: degraded_performance → operational (command)",
    ]
    (added,) = await bot.staff_runs("/component add search group=Apps aliases=find,lookup")
    assert added.text == "Added component **search** in Apps."
    (answer,) = await bot.customer_runs("/status lookup")
    assert "**search** is operational" in answer.text


async def test_resolving_the_worse_of_two_incidents_leaves_the_status_the_other_one_means(
    bot: BotHarness,
) -> None:
    await bot.staff_runs("/incident open api minor Slow API responses")
    await bot.staff_runs("/incident open api,payments critical Everything is down")
    (during,) = await bot.customer_runs("/status")
    assert "- api: Major outage" in during.text

    await bot.staff_runs("/incident resolve 2 Back up")
    (after,) = await bot.customer_runs("/status")
    assert after.delivery.message.title == "Some systems are having problems"
    assert "- api: Degraded performance" in after.text, "only the slow-API incident is left"
    assert "Operational: payments," in after.text
    (history,) = await bot.staff_runs("/component history api")
    assert history.text.splitlines()[-1] == (
        "- Nov 24 09:00 UTC: major_outage → degraded_performance (incident #2 resolved)"
    )


async def test_an_incident_that_gets_worse_then_better_moves_its_components_and_says_so(
    bot: BotHarness,
) -> None:
    """Declared minor, it turns out every card payment fails: staff raise the impact in the update,
    the component and the page follow, and the subscriptions read the change. Then it eases."""
    await subscribe(bot, "payments-watch", "payments")
    await bot.staff_runs("/incident open payments minor Some card payments slow")
    await bot.staff_runs("/incident update 1 identified impact=critical Every card payment fails")
    (worse,) = await bot.customer_runs("/status")
    assert "- payments: Major outage" in worse.text

    await bot.staff_runs("/incident update 1 monitoring impact=minor A fix is out; payments recovering")
    (better,) = await bot.customer_runs("/status")
    assert "- payments: Degraded performance" in better.text
    await deliver(bot)
    texts = [m.text for m in received(bot, "payments-watch")]
    assert any("Impact changed from minor to critical. Every card payment fails" in t for t in texts)
    assert any("Impact changed from critical to minor. A fix is out" in t for t in texts)
    (history,) = await bot.staff_runs("/component history payments")
    assert history.text.splitlines()[-2:] == [
        "- Nov 24 09:00 UTC: degraded_performance → major_outage (incident #1 impact changed)",
        "- Nov 24 09:00 UTC: major_outage → degraded_performance (incident #1 impact changed)",
    ]


@pytest.mark.parametrize(
    "typed", ["impact = critical", "impact =critical", "impact= critical", "Impact=Critical"]
)
async def test_an_impact_typed_with_spaces_is_the_new_impact_and_staff_are_told_it_changed(
    bot: BotHarness, typed: str
) -> None:
    await bot.staff_runs("/incident open payments minor Some card payments slow")
    (reply,) = await bot.staff_runs(f"/incident update 1 identified {typed} Every card payment fails")
    assert reply.text.startswith(
        "Updated (identified) incident **#1** Some card payments slow; impact minor → critical"
    ), reply.text
    (status,) = await bot.customer_runs("/status")
    assert "- payments: Major outage" in status.text
    assert "Impact changed from minor to critical. Every card payment fails" in status.text
    audit = await _audit(bot)
    assert audit[-1].action == "incident.update"
    assert audit[-1].detail == "#1 impact minor → critical: Every card payment fails"


@pytest.mark.parametrize(
    ("opened", "by_hand", "rated", "shows"),
    [
        # Every card payment fails and staff marked payments down; calling it major must not show
        # payments as only partly out.
        ("minor", "major_outage", "major", "Major outage"),
        # Payments mostly recovered and staff marked it degraded; easing the incident to major must
        # not put payments back at a partial outage.
        ("critical", "degraded_performance", "major", "Degraded performance"),
    ],
)
async def test_a_new_impact_moves_a_component_set_by_hand_only_its_own_way(
    bot: BotHarness, opened: str, by_hand: str, rated: str, shows: str
) -> None:
    await bot.staff_runs(f"/incident open payments {opened} Card payments failing")
    await bot.staff_runs(f"/component set payments {by_hand}")
    await bot.staff_runs(f"/incident update 1 identified impact={rated} What we know now")
    (status,) = await bot.customer_runs("/status")
    assert f"- payments: {shows}" in status.text
    (history,) = await bot.staff_runs("/component history payments")
    assert history.text.splitlines()[-1].endswith(f"→ {by_hand} (command)")


@pytest.mark.parametrize(
    "eased", ["/incident update 1 monitoring impact=none Payments recovering", "/incident resolve 1"]
)
async def test_an_incident_easing_leaves_a_component_put_under_maintenance_by_hand(
    bot: BotHarness, eased: str
) -> None:
    """Payments degrade; staff take payments down for maintenance to fix it; the incident eases or
    ends while the work goes on: payments stay under maintenance until staff say otherwise."""
    await bot.staff_runs("/incident open payments minor Some card payments slow")
    await bot.staff_runs("/component set payments under_maintenance")
    await bot.staff_runs(eased)
    (status,) = await bot.customer_runs("/status")
    assert "- payments: Under maintenance" in status.text, status.text
    (history,) = await bot.staff_runs("/component history payments")
    assert history.text.splitlines()[-1].endswith("→ under_maintenance (command)")


async def test_announcements_reach_the_matching_subscriptions(bot: BotHarness) -> None:
    await subscribe(bot, "all")
    await subscribe(bot, "api-only", "api")
    await subscribe(bot, "pay-only", "payments")
    (ack,) = await bot.staff_runs("/announce api,webhooks New API version is live")
    assert ack.text.startswith("Announcing to api, webhooks.")
    await deliver(bot)
    assert [m.text for m in received(bot, "all")] == ["Announcement\nNew API version is live"]
    assert len(received(bot, "api-only")) == 1
    assert received(bot, "pay-only") == []


async def test_what_staff_type_with_no_break_spaces_reaches_subscribers_as_typed(bot: BotHarness) -> None:
    """French puts a no-break space before "!", "?" and ":"; Option+Space on a Mac types one too."""
    await subscribe(bot, "news")
    nb, thin = "\u00a0", "\u202f"
    title = f"Paiements en panne{nb}!"
    update = f"Cause trouvée{nb}: un déploiement{thin}; retour arrière"
    fixed = f"Tout remarche{nb}! Merci"
    window = f"Mise à jour{nb}: base de données"
    note = f"Reportée{nb}?{nb}Oui"
    announcement = f"Version{nb}2.3 disponible{nb}!"
    for line in (
        f"/incident open{nb}payments major {title}",
        f"/incident update{nb}1{nb}identified{nb}{update}",
        f"/incident resolve 1{nb}{fixed}",
        f"/maintenance schedule api 2026-11-25T02:00Z 2026-11-25T03:00Z{nb}{window}",
        f"/maintenance end{nb}2{nb}{note}",
        f"/announce api{nb}{announcement}",
    ):
        await bot.staff_runs(line)
        assert bot.last_outcome is Outcome.HANDLED, line
    await deliver(bot)
    told = "\n".join(f"{m.delivery.message.title}\n{m.text}" for m in received(bot, "news"))
    for typed in (title, update, fixed, window, note, announcement):
        assert typed in told, (typed, told)
    (audit,) = [e for e in await _audit(bot) if e.action == "announce"]
    assert audit.detail == announcement


async def test_customers_may_subscribe_their_dms_but_not_a_channel(bot: BotHarness) -> None:
    (refused,) = await bot.customer_runs("/subscribe")
    assert refused.text.startswith("Only staff or this channel's admins")
    dm = channel("D-C1").without_thread()
    dm = type(dm)(platform=dm.platform, workspace_id="W1", channel_id="D-C1", is_direct=True)
    (ok,) = await bot.customer_runs("/subscribe payments", conversation=dm)
    assert ok.text == "Subscribed your DMs to status updates for payments. `/unsubscribe` stops them."
    admin = Actor(platform=Platform.CONSOLE, id="C9", roles=frozenset({"channel_admin"}))
    (by_admin,) = await bot.run(admin, "/subscribe", conversation=channel("team"))
    assert by_admin.text.startswith("Subscribed this channel")
    (mine,) = await bot.customer_runs("/subscriptions", conversation=dm)
    assert mine.text == "Subscribed here to: payments."
    (gone,) = await bot.customer_runs("/unsubscribe", conversation=dm)
    assert gone.text == "Unsubscribed: no more status updates here."


async def test_customers_cannot_run_staff_commands(bot: BotHarness) -> None:
    for line in ("/incident open api major Down", "/component set api major_outage", "/announce hi"):
        (reply,) = await bot.customer_runs(line)
        assert reply.text == "That's for the support team only. If something looks broken, ask me `/status`."
        assert reply.delivery.message.private_to == bot.customer, line
    (page,) = await bot.customer_runs("/status")
    assert page.delivery.message.title == "All systems operational"


async def test_malformed_arguments_get_a_usage_line_with_an_example(bot: BotHarness) -> None:
    cases = {
        "/incident open payments": "Usage: `/incident open <components> <impact> <title>`",
        "/incident open payments huge Down": "`huge` is not an impact; choose one of: none, minor, major",
        "/incident open teleporter major Down": "I don't know a component called `teleporter`",
        "/incident update abc identified x": "`abc` is not an incident number.",
        "/incident update 1 fixed x": "`fixed` is not an incident status",
        "/incident update 1 identified impact=huge x": "`huge` is not an impact",
        "/incident update 1 identified impact=major": "I need a message after the impact.",
        "/incident update 1 identified Impact = unclear so far": "starts with `impact =` goes after `--`",
        "/incident update 99 identified x": "There is no incident #99.",
        "/incident update 99999999999999999999 identified x": "is not an incident number.",
        "/incident resolve 99999999999999": "is not an incident number.",
        "/incident resolve ²": "`²` is not an incident number.",
        "/incident resolve": "Usage: `/incident resolve <id> [message]`",
        "/component set api purple": "`purple` is not a component status",
        "/maintenance schedule api tomorrow later Upgrade": "write it as YYYY-MM-DDThh:mmZ (UTC)",
        "/maintenance schedule api 2026-11-24T12:00Z 2026-11-24T11:00Z Up": "The end must be after the start",
        "/announce": "What should I announce?",
    }
    for line, expected in cases.items():
        (reply,) = await bot.staff_runs(line)
        assert expected in reply.text, (line, reply.text)
        if "Usage" in reply.text:
            assert "Example: `/" in reply.text


async def test_the_maintenance_example_is_a_window_to_come_that_runs_as_shown(bot: BotHarness) -> None:
    """Staff who copy the example from `/maintenance`'s usage get a window scheduled, on any day the
    help is read: a fixed date in the example was soon "already over"."""
    for _ in range(2):
        bot.clock.advance(days=20)
        (usage,) = await bot.staff_runs("/maintenance")
        example = usage.text.split("Example: `")[1].split("`")[0]
        _, _, _, start, end, _ = example.split(" ", 5)
        assert bot.clock.now < datetime.fromisoformat(start) < datetime.fromisoformat(end), example

        (scheduled,) = await bot.staff_runs(example)
        assert scheduled.text.startswith("Scheduled maintenance **#"), scheduled.text


async def test_a_long_update_goes_whole_to_the_thread_and_shortened_on_the_edited_card(
    bot: BotHarness,
) -> None:
    await subscribe(bot, "news")
    await bot.staff_runs("/incident open payments major Card payments failing")
    await deliver(bot)
    # 1,900 characters: within the 2,000 an update may have, three times the card's 600.
    details = " ".join(f"Step {n}: region {n} is being rolled back and verified." for n in range(36))
    await bot.staff_runs(f"/incident update 1 identified {details}")
    await deliver(bot)

    _first, update, edit = received(bot, "news")
    assert update.text.endswith(details), "the thread gets every word"
    assert len(edit.text) < 1_000 and "…" in edit.text, "the card stays one message"


async def test_subscribers_hear_when_maintenance_begins_and_ends_by_the_clock(bot: BotHarness) -> None:
    """Told on Monday that payments has maintenance 10:00-11:00, a channel hears at 10:00 that it has
    begun and at 11:00 that it is over, once each, whichever process looks and however often."""
    await subscribe(bot, "payments-watch", "payments")
    await bot.staff_runs(
        "/maintenance schedule payments 2026-11-24T10:00Z 2026-11-24T11:00Z Database upgrade"
    )
    database = bot.bot.database
    assert await maintenance_notices.announce_turns(database, at=bot.clock.now) == 0
    bot.clock.advance(hours=1, seconds=20)
    assert await maintenance_notices.announce_turns(database, at=bot.clock.now) == 1
    assert await maintenance_notices.announce_turns(database, at=bot.clock.now) == 0, "said once"
    bot.clock.advance(hours=1)
    assert await maintenance_notices.announce_turns(database, at=bot.clock.now) == 1
    await deliver(bot)
    titles = [m.delivery.message.title for m in received(bot, "payments-watch")]
    assert titles == [
        "[Maintenance] Database upgrade",
        "[Maintenance started] Database upgrade",
        "[Maintenance completed] Database upgrade",
    ]


async def test_maintenance_ended_by_staff_or_long_past_is_not_announced_again(bot: BotHarness) -> None:
    await subscribe(bot, "news")
    await bot.staff_runs("/maintenance schedule api 2026-11-24T09:30Z 2026-11-24T12:00Z Network work")
    await bot.staff_runs("/maintenance schedule payments 2026-11-24T10:00Z 2026-11-24T10:30Z Upgrade")
    await bot.staff_runs("/maintenance schedule search 2026-11-25T02:00Z 2026-11-25T03:00Z Reindex")
    await bot.staff_runs("/maintenance end 3 Postponed")  # cancelled before it began
    bot.clock.advance(hours=1)  # 10:00: api began half an hour ago, payments begins now
    await bot.staff_runs("/maintenance end 1 Done early")
    database = bot.bot.database
    assert await maintenance_notices.announce_turns(database, at=bot.clock.now) == 1  # payments began
    bot.clock.advance(hours=20)  # the bot was down: payments ended long ago, search never began
    assert await maintenance_notices.announce_turns(database, at=bot.clock.now) == 0
    await deliver(bot)
    titles = [m.delivery.message.title for m in received(bot, "news")]
    assert titles.count("[Maintenance started] Upgrade") == 1
    assert not [t for t in titles if "Network work" in t and "started" in t]
    assert not [t for t in titles if "Reindex" in t and ("started" in t or "completed" in t)]
