"""The weekly digest: REPORT_SCHEDULE in REPORT_TIMEZONE, the report posted to the staff channel once
per due time (whatever the number of bot processes), its page and chart written to REPORT_DIR, and the
articles that mislead named when answers fall clearly below what the knowledge base expects."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from time import time as time_now
from zoneinfo import ZoneInfo

import pytest

from bot.adapters import files
from bot.core.events import Actor, Platform
from bot.insights import digest
from bot.insights.schedule import Schedule, ScheduleError, parse_schedule, parse_zone
from bot.settings import SettingsError, load_settings
from storage.db import Database
from tests.core.test_owed_replies import PlatformThatNeverAnswers
from tests.harness import STAFF_CHANNEL, BotHarness, button, make_settings

BERLIN = ZoneInfo("Europe/Berlin")


def test_the_schedule_is_a_day_and_a_time_in_a_time_zone() -> None:
    monday = parse_schedule("mon 09:00", BERLIN)
    assert monday == Schedule(0, time(9, 0), BERLIN)
    assert parse_schedule("Monday 9:00", BERLIN) == monday
    assert parse_schedule("daily 18:30", BERLIN) == Schedule(None, time(18, 30), BERLIN)
    assert parse_schedule("  ", BERLIN) is None
    for wrong in ("mon", "09:00", "someday 09:00", "mon 24:00", "mon 09:60", "mon 9h"):
        with pytest.raises(ScheduleError):
            parse_schedule(wrong, BERLIN)
    with pytest.raises(ScheduleError, match="IANA time zone"):
        parse_zone("Mars/Olympus")


def test_the_next_digest_is_the_next_such_local_time() -> None:
    monday = Schedule(0, time(9, 0), BERLIN)
    tuesday_noon = datetime(2026, 11, 24, 11, 0, tzinfo=UTC)
    assert monday.next_after(tuesday_noon) == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # CET: UTC+1
    due = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
    assert monday.next_after(due) == due + timedelta(days=7), "strictly after"
    assert monday.next_after(due - timedelta(seconds=1)) == due
    # Summer time: 09:00 in Berlin is 07:00 UTC.
    assert monday.next_after(datetime(2026, 6, 2, tzinfo=UTC)) == datetime(2026, 6, 8, 7, 0, tzinfo=UTC)
    # 02:30 does not exist on the night clocks go forward: it comes an hour later, once.
    night = Schedule(None, time(2, 30), BERLIN)
    spring = night.next_after(datetime(2026, 3, 28, 12, 0, tzinfo=UTC))
    assert spring == datetime(2026, 3, 29, 1, 30, tzinfo=UTC)
    assert night.next_after(spring) == datetime(2026, 3, 30, 0, 30, tzinfo=UTC)
    assert monday.period == timedelta(days=7) and night.period == timedelta(days=1)


def test_settings_read_the_schedule_and_say_in_one_line_what_is_wrong(tmp_path: Path) -> None:
    settings = load_settings(_env_file=None, report_schedule="mon 09:00", report_timezone="Europe/Berlin")
    assert settings.digest_schedule == Schedule(0, time(9, 0), BERLIN)
    assert load_settings(_env_file=None).digest_schedule is None
    with pytest.raises(SettingsError) as bad_schedule:
        load_settings(_env_file=None, report_schedule="every monday")
    assert str(bad_schedule.value).startswith("REPORT_SCHEDULE: 'every monday' is not a day and a time")
    with pytest.raises(SettingsError) as bad_zone:
        load_settings(_env_file=None, report_timezone="Berlin")
    assert (
        str(bad_zone.value)
        == "REPORT_TIMEZONE: 'Berlin' is not an IANA time zone name (e.g. Europe/Berlin or UTC)"
    )
    assert "\n" not in str(bad_schedule.value) + str(bad_zone.value)


async def _send(bot: BotHarness, tmp_path: Path, due: datetime) -> digest.Sent | None:
    return await digest.send_digest(
        bot.bot.dispatcher,
        due=due,
        schedule=Schedule(0, time(9, 0), ZoneInfo("UTC")),
        base=tmp_path / "reports",
    )


async def test_the_digest_goes_to_the_staff_channel_once_with_where_its_report_is(
    bot: BotHarness, tmp_path: Path, database: Database
) -> None:
    await bot.customer_says("my csv export failed")
    due = bot.clock.now + timedelta(hours=1)
    before = len(bot.staff_posts())
    sent = await _send(bot, tmp_path, due)
    assert sent is not None
    (post,) = bot.staff_posts()[before:]
    assert post.channel_id == STAFF_CHANNEL
    assert post.delivery.message.title == "Weekly digest: Support report: last 7 days"
    assert {f.name: f.value for f in post.delivery.message.fields}["Questions"] == "1 (new vs 0)"
    assert sent.page == tmp_path / "reports" / "2026-11-24_1000" / "report.html"
    assert sent.page.is_file() and sent.chart.read_bytes().startswith(b"\x89PNG")
    assert str(sent.page) in post.text and str(sent.chart) in post.text
    assert "Casey" not in post.text and "C1" not in post.text
    # A second bot process reaching the same due time posts nothing.
    other = database.another_connection_pool()
    second = await BotHarness.create(make_settings(tmp_path), database=other)
    try:
        assert await _send(second, tmp_path, due) is None
    finally:
        await second.close()
        await other.dispose()
    assert second.staff_posts() == [] and len(bot.staff_posts()) == before + 1


async def test_the_digest_names_the_articles_that_mislead(bot: BotHarness, tmp_path: Path) -> None:
    for number in range(4):
        customer = Actor(platform=Platform.CONSOLE, id=f"C{number + 10}", display_name=f"Customer {number}")
        (answer,) = await bot.says(customer, "my csv export failed")
        await bot.click(customer, button(answer, "I still need help"), on=answer)
    sent = await _send(bot, tmp_path, bot.clock.now + timedelta(days=2))
    assert sent is not None
    assert "clearly less precise than the knowledge base expects" in sent.message.text
    assert "Articles that mislead: `export-failed`" in sent.message.text


def _digest_loop(bot: BotHarness, schedule: Schedule, base: Path, stop: asyncio.Event) -> asyncio.Task[None]:
    """The bot's digest loop, as `supportbot run` starts it, until `stop` is set."""
    loop = digest.run_forever(bot.bot.dispatcher, schedule=schedule, base=base, stop=stop)
    return asyncio.create_task(loop)


async def test_the_schedule_loop_sends_each_digest_when_due_and_stops_when_asked(
    bot: BotHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    schedule = Schedule(None, time(9, 0), ZoneInfo("UTC"))
    due = schedule.next_after(bot.clock.now)
    bot.clock.now = due - timedelta(milliseconds=20)
    sent = asyncio.Event()
    send = digest.send_digest

    async def counted(*args: object, **kwargs: object) -> digest.Sent | None:
        result = await send(*args, **kwargs)  # type: ignore[arg-type]
        sent.set()
        return result

    monkeypatch.setattr(digest, "send_digest", counted)
    stop = asyncio.Event()
    loop = _digest_loop(bot, schedule, tmp_path, stop)
    await asyncio.wait_for(sent.wait(), 10)
    stop.set()
    await asyncio.wait_for(loop, 5)
    titles = [m.delivery.message.title for m in bot.staff_posts()]
    assert titles.count("Support report: last 1 day") == 1


async def test_the_log_says_when_the_next_digest_goes_out(
    bot: BotHarness, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An operator who sets REPORT_SCHEDULE sees when it will fire, in their zone and in UTC (here
    across the night Berlin's clocks go forward)."""
    caplog.set_level(logging.INFO, logger="bot.insights.digest")
    bot.clock.now = datetime(2027, 3, 27, 12, 0, tzinfo=UTC)
    stop = asyncio.Event()
    loop = _digest_loop(bot, Schedule(0, time(9, 0), BERLIN), tmp_path, stop)
    for _ in range(100):
        if "next digest" in caplog.text:
            break
        await asyncio.sleep(0.01)
    stop.set()
    await asyncio.wait_for(loop, 5)
    assert "next digest: Mon 29 Mar 2027 09:00 Europe/Berlin (07:00 UTC)" in caplog.text


async def test_the_digest_goes_out_when_its_report_cannot_be_written(
    bot: BotHarness, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """REPORT_DIR on a full disk, read-only or mistyped: the team still gets the week's figures,
    told why the page and chart are missing; the digest is not lost for the week."""
    await bot.customer_says("my csv export failed")
    (tmp_path / "a-file").write_text("")
    before = len(bot.staff_posts())
    sent = await _send(bot, tmp_path / "a-file", bot.clock.now + timedelta(hours=1))  # a-file/reports
    assert sent is not None
    (post,) = bot.staff_posts()[before:]
    assert post.delivery.message.title == "Weekly digest: Support report: last 7 days"
    assert {f.name: f.value for f in post.delivery.message.fields}["Questions"] == "1 (new vs 0)"
    assert post.delivery.message.attachments == ()
    footer = post.delivery.message.footer or ""
    assert footer.startswith("The full report and its chart could not be written: "), footer
    assert str(tmp_path / "a-file") in footer and "could not write the digest's report" in caplog.text


async def test_the_digest_after_the_clocks_change_starts_where_the_last_one_ended(
    bot: BotHarness, tmp_path: Path
) -> None:
    """Berlin's clocks go forward on 28 March 2027: from Monday 09:00 to Monday 09:00 is 167 hours.
    A question asked at 08:30 on the 22nd, before the digest of that day, was in that digest and
    must not be counted again in the next one."""
    bot.clock.now = datetime(2027, 3, 22, 7, 30, tzinfo=UTC)  # 08:30 in Berlin (CET)
    await bot.customer_says("my csv export failed")
    schedule = Schedule(0, time(9, 0), BERLIN)
    due = schedule.next_after(bot.clock.now + timedelta(days=1))
    assert due == datetime(2027, 3, 29, 7, 0, tzinfo=UTC)  # 09:00 in Berlin (CEST)
    sent = await digest.send_digest(bot.bot.dispatcher, due=due, schedule=schedule, base=tmp_path)
    assert sent is not None
    assert sent.message.text.startswith("Mon 22 Mar 09:00 – Mon 29 Mar 09:00 (Europe/Berlin)"), (
        sent.message.text
    )
    assert "Weekly digest" in (sent.message.title or "")
    # The question itself was the digest before's: nothing in this week, so nothing counted again.
    assert "nothing to report yet" in sent.message.text, sent.message.text


async def test_a_digest_missed_while_no_bot_ran_is_sent_when_one_starts_soon_after(
    bot: BotHarness, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The bot was down at Monday 09:00 (a deploy, a restart): started at 10:30 it sends that digest
    then, once, rather than skip a week. Started half a day or more after it, it waits for the next."""
    caplog.set_level(logging.INFO, logger="bot.insights.digest")
    schedule = Schedule(0, time(9, 0), BERLIN)
    missed = datetime(2027, 3, 22, 8, 0, tzinfo=UTC)  # Monday 09:00 in Berlin
    for late, expected in (
        (timedelta(hours=13), 0),
        (timedelta(hours=1, minutes=30), 1),
        (timedelta(hours=2), 0),
    ):
        caplog.clear()
        bot.clock.now = missed + late
        before = len(bot.staff_posts())
        stop = asyncio.Event()
        loop = _digest_loop(bot, schedule, tmp_path, stop)
        for _ in range(500):
            if "next digest" in caplog.text:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(loop, 5)
        titles = [m.delivery.message.title for m in bot.staff_posts()[before:]]
        assert titles == ["Weekly digest: Support report: last 7 days"] * expected, late


async def test_a_digest_lost_with_the_process_is_posted_by_the_next_one_once(
    database: Database, tmp_path: Path
) -> None:
    """The digest claimed, its post in flight when the process was killed: the next bot process, on
    another host (REPORT_DIR is not there), posts it after the lease, once, saying the chart could
    not be attached; reaching the same due time itself, it builds and posts nothing more."""
    dying = await BotHarness.create(make_settings(tmp_path), database=database)
    await dying.customer_says("my csv export failed")
    await dying.bot.dispatcher.keep_owing()  # its answer is out and cleared
    hanging = PlatformThatNeverAnswers()
    dying.bot.dispatcher.outbound.adapters[Platform.CONSOLE] = hanging
    due = dying.clock.now + timedelta(hours=1)
    sending = asyncio.create_task(_send(dying, tmp_path, due))
    await asyncio.wait_for(hanging.asked.wait(), 10)
    sending.cancel()  # a SIGKILL: nothing after this point runs
    await asyncio.gather(sending, return_exceptions=True)
    await dying.close()
    shutil.rmtree(tmp_path / "reports")
    other = database.another_connection_pool()
    next_process = await BotHarness.create(make_settings(tmp_path), database=other)
    try:
        assert await next_process.bot.dispatcher.pay_owed() == 0, "the dead process's lease still runs"
        assert await _send(next_process, tmp_path, due) is None, "claimed: not built nor posted again"
        next_process.clock.advance(seconds=31)
        assert await next_process.bot.dispatcher.pay_owed() == 1
        await next_process.bot.dispatcher.keep_owing()  # its next tick clears what it posted
        next_process.clock.advance(seconds=31)
        assert await next_process.bot.dispatcher.pay_owed() == 0

        (post,) = next_process.staff_posts()
        assert post.delivery.message.title == "Weekly digest: Support report: last 7 days"
        assert {f.name: f.value for f in post.delivery.message.fields}["Questions"] == "1 (new vs 0)"
        assert post.delivery.resend and post.delivery.idempotency_key
        assert not (tmp_path / "reports").exists(), "the next process wrote no report of its own"
        _, failed = await files.load(post.delivery.message.attachments, limit=10_000_000)
        assert files.not_attached_note(failed).startswith(
            "\u26a0\ufe0f Main chart (daily.png) could not be attached: the file cannot be read"
        )
    finally:
        await next_process.close()
        await other.dispose()


async def test_a_digest_written_by_a_process_killed_midway_leaves_no_folder_behind_for_good(
    bot: BotHarness, tmp_path: Path
) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    # What a process killed while writing a digest leaves: its scratch folder beside the week's.
    killed = reports / ".2026-11-17_1000.k1ll3d"
    killed.mkdir()
    (killed / "report.html").write_text("<html>half a page")
    an_hour_ago = time_now() - 3600  # files carry the machine's time, not the bot's clock
    os.utime(killed, (an_hour_ago, an_hour_ago))
    # Another process writing the same digest right now: its folder is not stale and stays.
    writing = reports / ".2026-11-24_1000.wr1t1ng"
    writing.mkdir()
    await bot.customer_says("my csv export failed")
    sent = await _send(bot, tmp_path, bot.clock.now + timedelta(hours=1))
    assert sent is not None and sent.page.is_file()
    assert not killed.exists()
    assert writing.is_dir()
    assert sorted(p.name for p in reports.iterdir()) == [".2026-11-24_1000.wr1t1ng", "2026-11-24_1000"]
