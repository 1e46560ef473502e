"""A whole bot on the real Slack adapter (slack-bolt + slack-sdk) against the Slack emulator.

People and places used by the Slack tests: Casey (a customer), Sam (staff by user id), Riley
(staff through the user group S0STAFFGRP), #community, #staff and Casey's DM with the bot.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from bot.adapters.slack.adapter import SlackAdapter
from bot.app import SupportBot, create_bot
from bot.core.events import Platform
from bot.core.router import Router
from storage.db import Database
from tests.emulators.slack import SlackEmulator
from tests.harness import make_settings

CUSTOMER = "U0CUSTOMER"
STAFF = "U0STAFF"
GROUP_STAFF = "U0RILEY"
OTHER = "U0ROBIN"
STAFF_GROUP = "S0STAFFGRP"
COMMUNITY = "C0COMMUNITY"
STAFF_CHANNEL = "C0STAFF"
DM = "D0CASEY"


def populate(slack: SlackEmulator) -> None:
    slack.add_user(CUSTOMER, "casey", display_name="Casey")
    slack.add_user(OTHER, "robin", display_name="Robin")
    slack.add_user(STAFF, "sam", display_name="Sam")
    slack.add_user(GROUP_STAFF, "riley", display_name="Riley", groups=(STAFF_GROUP,))
    slack.add_channel(COMMUNITY, "community")
    slack.add_channel(STAFF_CHANNEL, "staff", private=True)
    slack.add_channel(DM)


@asynccontextmanager
async def populated_slack(**limits: Any) -> AsyncIterator[SlackEmulator]:
    """The Slack emulator holding the test workspace: its people, channels and the staff group."""
    async with SlackEmulator(**limits) as emulator:
        populate(emulator)
        yield emulator


@dataclass
class SlackBot:
    slack: SlackEmulator
    bot: SupportBot
    adapter: SlackAdapter

    @property
    def outcomes(self) -> dict[str, int]:
        return {str(k): v for k, v in self.bot.dispatcher.outcomes.items()}

    async def settle(self) -> None:
        """Everything Slack delivered so far has been read, handled and answered."""
        await self.adapter.drain()
        await self.bot.dispatcher.drain()


@asynccontextmanager
async def slack_bot(
    slack: SlackEmulator,
    database: Database,
    tmp_path: object,
    *,
    mode: str = "http",
    routers: Iterable[Router] = (),
    timeout: float = 2.0,  # noqa: ASYNC109 - the adapter's Web API timeout, not a wait
    rate_limit_retries: int = 2,
    **settings: Any,
) -> AsyncIterator[SlackBot]:
    """Start a bot whose Slack adapter talks to `slack`; `routers` add test-only handlers."""
    values: dict[str, Any] = {
        "staff_channel": f"slack:{STAFF_CHANNEL}",
        "staff_user_ids": [f"slack:{STAFF}"],
        "staff_role_ids": [f"slack:{STAFF_GROUP}"],
        "oncall_mentions": [f"slack:{STAFF_GROUP}"],
        "web_host": "127.0.0.1",
        "web_port": 0,
    }
    values.update(settings)
    adapter = SlackAdapter(
        bot_token=slack.token,
        signing_secret=slack.signing_secret,
        app_token=slack.app_token,
        mode=mode,
        api_base=slack.base_url,
        staff_group_ids=[STAFF_GROUP],
        timeout=timeout,
        rate_limit_retries=rate_limit_retries,
    )
    bot = await create_bot(
        make_settings(tmp_path, **values),
        adapters={Platform.SLACK: adapter},
        database=database,
        with_web=mode == "http",
    )
    extra = list(routers)
    if extra:
        bot.dispatcher.router = Router("test-root").include(*extra, bot.dispatcher.router)
    # Keep retries quick in tests; the schedule itself is tested with the core.
    bot.dispatcher.outbound.base_delay = 0.05
    await bot.start()
    slack.default_via = mode
    if bot.web is not None:
        slack.bot_url = f"http://127.0.0.1:{bot.web.port}/slack/events"
    try:
        yield SlackBot(slack, bot, adapter)
    finally:
        await bot.stop()
