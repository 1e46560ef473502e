"""Customers ask whether something is down; the bot answers from the status store."""

from __future__ import annotations

from pathlib import Path

from storage.db import Database
from tests.harness import BotHarness, make_settings
from tests.status.conftest import deliver, received, subscribe


async def test_status_when_everything_is_fine(bot: BotHarness) -> None:
    (reply,) = await bot.customer_runs("/status")
    assert reply.delivery.message.title == "All systems operational"
    assert "Operational: api, payments, dashboard, webhooks" in reply.text
    assert "Status page: http://127.0.0.1:8080/" in reply.text


async def test_status_of_one_component_tolerates_typos(bot: BotHarness) -> None:
    (reply,) = await bot.customer_runs("/status paymnets")
    assert "**payments** is operational" in reply.text


async def test_unknown_component_lists_the_known_ones(bot: BotHarness) -> None:
    (reply,) = await bot.customer_runs("/status teleporter")
    assert reply.text == (
        "I don't know a component called `teleporter`; I know: api, payments, dashboard, webhooks."
    )


async def test_natural_question_during_an_incident_gets_the_latest_update(bot: BotHarness) -> None:
    await bot.staff_runs("/incident open payments major Card payments failing")
    bot.clock.advance(minutes=5)
    await bot.staff_runs("/incident update 1 identified A bad deploy; rolling back")
    bot.clock.advance(minutes=3)

    (reply,) = await bot.customer_says("payments broken for anyone else?")

    assert reply.text.startswith("Yes, we know about it. There is an active outage affecting **payments**")
    assert "#1 Card payments failing" in reply.text
    assert "Latest update, 09:05 UTC (3 minutes ago): A bad deploy; rolling back" in reply.text
    assert "Status page: http://127.0.0.1:8080/" in reply.text
    assert "I'll tell you here when it's resolved." in reply.text


async def test_questions_in_many_phrasings_are_answered(bot: BotHarness) -> None:
    await bot.staff_runs("/incident open api critical API returning 500s")
    for question in ("is the api down?", "are you having an outage", "is the rest api failing for everyone"):
        (reply,) = await bot.customer_says(question)
        assert "API returning 500s" in reply.text, question
    (dm,) = await bot.customer_dms("is the API down")
    assert "API returning 500s" in dm.text


async def test_vague_complaint_without_a_component_is_not_a_status_question(bot: BotHarness) -> None:
    replies = await bot.customer_says("my invoice export is broken")
    assert all("Status page" not in r.text for r in replies)


async def test_a_question_about_a_healthy_component_says_so(bot: BotHarness) -> None:
    (reply,) = await bot.customer_says("is the dashboard down?")
    assert reply.text.startswith("**dashboard** is operational; we don't know of any problem right now.")


async def test_answers_say_when_maintenance_is_under_way(bot: BotHarness) -> None:
    await bot.staff_runs(
        "/maintenance schedule payments 2026-11-24T10:00Z 2026-11-24T11:00Z Database upgrade"
    )
    (before,) = await bot.customer_says("is billing down?")
    assert "is operational" in before.text

    bot.clock.advance(hours=1, minutes=15)
    (during,) = await bot.customer_says("is billing down?")
    assert during.text.startswith(
        "**payments** is under scheduled maintenance until 11:00 UTC: Database upgrade."
    )
    (overview,) = await bot.customer_runs("/status")
    assert "payments: Under maintenance" in overview.text
    await deliver(bot)


async def test_maintenance_that_ends_another_day_says_which_day(bot: BotHarness) -> None:
    await bot.staff_runs(
        "/maintenance schedule payments 2026-11-24T08:00Z 2026-11-26T06:00Z Data centre move"
    )
    (during,) = await bot.customer_says("is billing down?")
    assert during.text.startswith(
        "**payments** is under scheduled maintenance until Nov 26 06:00 UTC: Data centre move."
    ), "not 06:00 today, which has passed"


async def test_overlapping_maintenance_says_when_the_last_window_ends(bot: BotHarness) -> None:
    await bot.staff_runs(
        "/maintenance schedule payments 2026-11-24T08:00Z 2026-11-24T10:00Z Database upgrade"
    )
    await bot.staff_runs("/maintenance schedule payments 2026-11-24T08:30Z 2026-11-24T12:00Z Network work")
    (during,) = await bot.customer_says("is billing down?")
    assert during.text.startswith(
        "**payments** is under scheduled maintenance until 12:00 UTC: Network work."
    ), "at 10:00 the first window ends, but payments is still in maintenance"


async def test_a_problem_with_a_working_component_is_answered_as_a_support_question(bot: BotHarness) -> None:
    """Naming a component and a symptom is an outage question only while that component has trouble;
    while it works, the customer's problem goes to the knowledge base (and a person), not to
    "webhooks is operational" again and again."""
    first = await bot.customer_says("my endpoint missed some webhook events, deliveries keep failing")
    assert all("is operational" not in r.text for r in first)
    assert any("retried 8 times over 24 hours" in r.text for r in first), [r.text for r in first]

    await bot.staff_runs("/incident open webhooks major Webhook deliveries delayed")
    (during,) = await bot.customer_says("my endpoint missed some webhook events, deliveries keep failing")
    assert "Webhook deliveries delayed" in during.text


async def test_an_update_that_mentions_a_status_page_is_quoted_whole(
    database: Database, tmp_path: Path
) -> None:
    """With no status page served the answer has no page line of its own, so a staff update's line
    that starts "Status page:" is theirs and stays."""
    bot = await BotHarness.create(
        make_settings(tmp_path, web_enabled=False, public_url=""), database=database
    )
    try:
        await bot.staff_runs("/incident open api major API errors")
        await bot.staff_runs(
            "/incident update 1 identified Rolling back the deploy\nStatus page: ours is down too"
        )

        (reply,) = await bot.customer_says("is the api down?")

        assert "Rolling back the deploy\nStatus page: ours is down too" in reply.text
    finally:
        await bot.close()


async def test_maintenance_ended_early_is_over_for_customers_and_subscribers(bot: BotHarness) -> None:
    """The upgrade finished at 10:15 of a window booked until 11:00: staff end it, customers stop
    hearing "under maintenance", and the channels that heard it was coming hear it is done."""
    await subscribe(bot, "payments-watch", "payments")
    await bot.staff_runs(
        "/maintenance schedule payments 2026-11-24T10:00Z 2026-11-24T11:00Z Database upgrade"
    )
    bot.clock.advance(hours=1, minutes=15)
    (during,) = await bot.customer_says("is billing down?")
    assert "under scheduled maintenance" in during.text

    (reply,) = await bot.staff_runs("/maintenance end 1 The upgrade finished early")
    assert reply.text.startswith("Ended maintenance **#1**: Database upgrade")
    (after,) = await bot.customer_says("is billing down?")
    assert after.text.startswith("**payments** is operational")
    (overview,) = await bot.customer_runs("/status")
    assert "maintenance" not in overview.text.lower()
    (again,) = await bot.staff_runs("/maintenance end 1")
    assert again.text == "Maintenance #1 is already over."

    await deliver(bot)
    notices = [m.text for m in received(bot, "payments-watch")]
    assert notices[0].startswith("[Maintenance] Database upgrade")
    assert notices[-1].startswith("[Maintenance completed] Database upgrade")
    assert "Ended at Nov 24 10:15 UTC." in notices[-1] and "The upgrade finished early" in notices[-1]


async def test_ending_maintenance_says_what_is_wrong_with_the_window_asked_for(bot: BotHarness) -> None:
    await bot.staff_runs("/incident open api minor Slow API")
    for typed, said in (
        ("/maintenance end", "Which window? Give its number"),
        ("/maintenance end abc", "`abc` is not a maintenance window number."),
        ("/maintenance end 1", "There is no maintenance window #1."),  # #1 is an incident
        ("/maintenance cancel 1", "`/maintenance end <id>` ends or cancels one."),
    ):
        (reply,) = await bot.staff_runs(typed)
        assert said in reply.text, typed
    (refused,) = await bot.customer_runs("/maintenance end 1")
    assert refused.text.startswith("That's for the support team only.")
