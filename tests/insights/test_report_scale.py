"""A report over 50,000 generated questions renders, in chat, within 10 seconds."""

from __future__ import annotations

import time

from storage.db import Database
from tests.harness import BotHarness
from tests.insights.generate import CUSTOMER_NAMES, generate


async def test_a_report_over_50000_questions_renders_in_under_10_seconds(
    bot: BotHarness, database: Database
) -> None:
    await generate(database, decisions=50_000, now=bot.clock.now)
    started = time.perf_counter()
    (report,) = await bot.staff_runs("/support report 7")
    elapsed = time.perf_counter() - started
    fields = {field.name: field.value for field in report.delivery.message.fields}
    assert fields["Questions"].startswith("50000 ")
    assert fields["Knowledge gaps"].startswith("1. "), fields["Knowledge gaps"]
    assert not any(name in report.text for name in CUSTOMER_NAMES)
    assert "UCUST" not in report.text
    assert elapsed < 10, f"{elapsed:.1f} s"
