"""The staff status commands' arguments (`bot/status/parse.py`): a mistake gets a usage error, not a
cut or a crash; an announcement can mark where its text starts, and is held to one notice."""

from __future__ import annotations

import re
from datetime import datetime

from bot.core.dispatch import Outcome
from tests.harness import BotHarness
from tests.status.conftest import deliver, received, subscribe


async def test_a_maintenance_end_at_the_edge_of_the_calendar_gets_a_usage_error(bot: BotHarness) -> None:
    sent = await bot.staff_runs(
        "/maintenance schedule payments 2026-12-01T02:00Z 9999-12-31T23:30-01:00 Database upgrade"
    )
    assert bot.last_outcome == Outcome.USER_ERROR, [m.text for m in sent]
    assert "is not a date and time" in sent[-1].text


async def test_a_date_that_is_not_one_is_told_the_format_and_no_moment_already_past(
    bot: BotHarness,
) -> None:
    """Staff copy what the error shows them: any date in it must be one still to come."""
    bot.clock.advance(days=400)
    (answer,) = await bot.staff_runs("/maintenance schedule payments tomorrow later Database upgrade")
    assert "`tomorrow` is not a date and time; write it as YYYY-MM-DDThh:mmZ (UTC)." in answer.text
    shown = re.findall(r"\d{4}-\d\d-\d\dT\d\d:\d\dZ", answer.text)
    assert shown and all(datetime.fromisoformat(at) > bot.clock.now for at in shown), answer.text


async def test_an_incident_title_too_long_is_refused_not_cut(bot: BotHarness) -> None:
    title = "Card payments failing " * 10
    (answer,) = await bot.staff_runs(f"/incident open api major {title}")
    assert "keep it to 200" in answer.text
    assert bot.last_outcome is Outcome.USER_ERROR


async def test_a_slack_style_announcement_can_mark_where_its_text_starts(bot: BotHarness) -> None:
    await bot.staff_runs("/component add api")
    (answer,) = await bot.staff_runs("/announce -- API v2 is live")
    assert answer.text.startswith("Announcing to every subscription.")


async def test_a_component_name_too_long_is_refused_with_the_limit(bot: BotHarness) -> None:
    (answer,) = await bot.staff_runs(f"/component add {'a' * 300}")
    assert bot.last_outcome is Outcome.USER_ERROR
    assert "The name is 300 characters; keep it to 80." in answer.text
    assert "lowercase letters" not in answer.text


async def test_a_component_group_too_long_is_refused_not_cut(bot: BotHarness) -> None:
    (answer,) = await bot.staff_runs(f"/component add search group={'A' * 80}")
    assert bot.last_outcome is Outcome.USER_ERROR
    assert "The group is 80 characters; keep it to 40" in answer.text
    (added,) = await bot.staff_runs(f"/component add search group={'A' * 40}")
    assert added.text == f"Added component **search** in {'A' * 40}."


async def test_a_component_alias_too_long_is_refused_not_stored(bot: BotHarness) -> None:
    (answer,) = await bot.staff_runs(f"/component add search aliases=find,{'f' * 81}")
    assert bot.last_outcome is Outcome.USER_ERROR
    assert "Alias 2 is 81 characters; keep each to 80." in answer.text
    assert "f" * 81 not in answer.text
    (added,) = await bot.staff_runs(f"/component add search aliases=find,{'f' * 80}")
    assert added.text == "Added component **search**."


async def test_a_component_alias_too_long_is_named_by_its_place_as_typed(bot: BotHarness) -> None:
    """An empty place (`find,,...`) still counts: the staff member counts commas, not what we keep."""
    (answer,) = await bot.staff_runs(f"/component add search aliases=find,,{'f' * 81}")
    assert "Alias 3 is 81 characters; keep each to 80." in answer.text


async def test_an_update_longer_than_one_notice_is_refused_with_its_length_and_the_limit(
    bot: BotHarness,
) -> None:
    await bot.staff_runs("/incident open payments major Card payments failing")
    await bot.staff_runs("/maintenance schedule api 2026-11-25T02:00Z 2026-11-25T03:00Z Upgrade")
    details = "x" * 2_001
    for line in (
        f"/incident update 1 identified {details}",
        f"/incident update 1 identified impact=critical {details}",
        f"/incident resolve 1 {details}",
        f"/maintenance end 2 {details}",
    ):
        (answer,) = await bot.staff_runs(line)
        assert bot.last_outcome is Outcome.USER_ERROR, line
        assert "is 2,001 characters; keep it to 2,000" in answer.text, answer.text
        assert details not in answer.text
    (status,) = await bot.customer_runs("/status")
    assert "investigating" in status.text and "x" * 100 not in status.text, "nothing was posted"
    (fits,) = await bot.staff_runs(f"/incident update 1 identified {'x' * 2_000}")
    assert fits.text.startswith("Updated (identified) incident **#1**")


async def test_a_maintenance_window_too_far_ahead_or_too_long_is_refused_with_the_bounds(
    bot: BotHarness,
) -> None:
    """It is Nov 24, 2026: a window booked for the year 9999, or one from year 1, is a typo."""
    cases = {
        "2027-11-25T02:00Z 2027-11-25T03:00Z": "starts in 366 days; schedule it at most 365 days ahead",
        "9999-12-01T02:00Z 9999-12-01T03:00Z": "schedule it at most 365 days ahead",
        "0001-01-01T00:00Z 2026-11-25T03:00Z": "; keep a window to 7 days",
        "2026-11-25T02:00Z 2026-12-02T03:00Z": "lasts 7 days 1 hour; keep a window to 7 days",
        "2026-11-25T03:00Z 2026-11-25T02:00Z": "The end must be after the start",
    }
    for window, expected in cases.items():
        (answer,) = await bot.staff_runs(f"/maintenance schedule api {window} Database upgrade")
        assert bot.last_outcome is Outcome.USER_ERROR, window
        assert expected in answer.text, (window, answer.text)
    for window in ("2027-11-24T02:00Z 2027-11-24T03:00Z", "2026-11-25T02:00Z 2026-12-02T02:00Z"):
        (booked,) = await bot.staff_runs(f"/maintenance schedule api {window} Database upgrade")
        assert booked.text.startswith("Scheduled maintenance"), (window, booked.text)


async def test_an_announcement_longer_than_one_notice_is_refused_with_its_length_and_the_limit(
    bot: BotHarness,
) -> None:
    await subscribe(bot, "news")
    text = "Version 2.3 is out. " * 101  # 2,020 characters, 2,019 once its last space goes
    for line in (f"/announce {text}", f"/announce api -- {text}"):
        (answer,) = await bot.staff_runs(line)
        assert bot.last_outcome is Outcome.USER_ERROR, line[:30]
        assert "The announcement is 2,019 characters; keep it to 2,000" in answer.text, answer.text
        assert "announce the rest next" in answer.text
    await deliver(bot)
    assert received(bot, "news") == [], "nothing was announced"
    (fits,) = await bot.staff_runs(f"/announce {'x' * 2_000}")
    assert fits.text.startswith("Announcing to every subscription.")
