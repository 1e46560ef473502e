"""A whole bot on the fake adapter, driven like a conversation: `await bot.customer_says("hi")`."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.app import SupportBot, create_bot
from bot.core.dispatch import Outcome
from bot.core.events import (
    ActionInvoked,
    Actor,
    Button,
    CommandInvoked,
    Conversation,
    InboundEvent,
    MessageReceived,
    Platform,
    ReactionAdded,
    SharedFile,
)
from bot.settings import Settings
from storage.db import Database
from tests.fake_adapter import FakeAdapter, SentMessage

STAFF_CHANNEL = "staff"
COMMUNITY = "community"


def make_settings(tmp_path: object, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "_env_file": None,
        "database_url": f"sqlite+aiosqlite:///{tmp_path}/unused.db",
        "platforms": ["console"],
        "staff_channel": f"console:{STAFF_CHANNEL}",
        "staff_user_ids": ["console:S1"],
        "oncall_mentions": ["console:oncall"],
        "web_enabled": False,
        # Where a deployment's status page would be: answers link to it though no server runs here.
        "public_url": "http://127.0.0.1:8080/",
        # The semantic model costs seconds to load; tests that want it ask for it.
        "matcher": "lexical",
        "kb_path": str(Path(__file__).parent / "data" / "kb"),
        "components_file": str(Path(__file__).parent / "data" / "components.yml"),
    }
    values.update(overrides)
    return Settings(**values)


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 11, 24, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class BotHarness:
    def __init__(self, bot: SupportBot, adapter: FakeAdapter, clock: FakeClock) -> None:
        self.bot = bot
        self.adapter = adapter
        self.clock = clock
        self.customer = Actor(platform=Platform.CONSOLE, id="C1", display_name="Casey")
        self.other_customer = Actor(platform=Platform.CONSOLE, id="C2", display_name="Robin")
        self.staff = Actor(platform=Platform.CONSOLE, id="S1", display_name="Sam (staff)")
        self.community = Conversation(platform=Platform.CONSOLE, workspace_id="W1", channel_id=COMMUNITY)
        self.staff_room = Conversation(platform=Platform.CONSOLE, workspace_id="W1", channel_id=STAFF_CHANNEL)
        self._ids = itertools.count(1)
        self.last_outcome: Outcome | None = None

    @classmethod
    async def create(cls, settings: Settings, *, database: Database, **kwargs: Any) -> BotHarness:
        adapter = FakeAdapter(Platform.CONSOLE)
        clock = FakeClock()
        bot = await create_bot(
            settings,
            adapters={Platform.CONSOLE: adapter},
            clock=clock,
            database=database,
            with_web=False,
            **kwargs,
        )
        await adapter.start(bot.dispatcher.submit)
        return cls(bot, adapter, clock)

    async def close(self) -> None:
        await self.adapter.stop()

    # -- driving -----------------------------------------------------------------------------

    def _id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"

    async def send(self, event: InboundEvent) -> list[SentMessage]:
        """Handle one event to the end and return what the bot sent because of it."""
        before = len(self.adapter.sent)
        self.last_outcome = await self.bot.dispatcher.handle(event)
        return self.adapter.sent[before:]

    async def says(
        self,
        actor: Actor,
        text: str,
        *,
        conversation: Conversation | None = None,
        thread: str | None = None,
        files: Sequence[SharedFile] = (),
    ) -> list[SentMessage]:
        conversation = conversation or self.community
        if thread is not None:
            conversation = conversation.in_thread(thread)
        message_id = self._id("u")
        return await self.send(
            MessageReceived(
                actor=actor,
                conversation=conversation,
                text=text,
                message_id=message_id,
                event_id=message_id,
                files=tuple(files),
            )
        )

    async def customer_says(self, text: str, **kwargs: Any) -> list[SentMessage]:
        return await self.says(self.customer, text, **kwargs)

    async def customer_dms(self, text: str) -> list[SentMessage]:
        dm = Conversation(platform=Platform.CONSOLE, workspace_id="W1", channel_id="D-C1", is_direct=True)
        return await self.says(self.customer, text, conversation=dm)

    async def run(
        self, actor: Actor, line: str, *, conversation: Conversation | None = None
    ) -> list[SentMessage]:
        """A slash command typed as `/name args`."""
        name, _, args = line.removeprefix("/").partition(" ")
        return await self.send(
            CommandInvoked(
                actor=actor,
                conversation=conversation or self.community,
                name=name,
                args=args,
                event_id=self._id("cmd"),
            )
        )

    async def customer_runs(self, line: str, **kwargs: Any) -> list[SentMessage]:
        return await self.run(self.customer, line, **kwargs)

    async def staff_runs(self, line: str, **kwargs: Any) -> list[SentMessage]:
        """Staff type commands in the staff channel unless told otherwise."""
        kwargs.setdefault("conversation", self.staff_room)
        return await self.run(self.staff, line, **kwargs)

    async def click(self, actor: Actor, button: Button, *, on: SentMessage) -> list[SentMessage]:
        return await self.send(
            ActionInvoked(
                actor=actor,
                conversation=on.delivery.conversation
                if on.ref.thread_id is None
                else on.delivery.conversation.in_thread(on.ref.thread_id),
                action_id=button.action_id,
                value=button.value,
                message_id=on.ref.message_id,
                event_id=self._id("act"),
            )
        )

    async def react(
        self, actor: Actor, emoji: str, *, to: SentMessage | MessageReceived
    ) -> list[SentMessage]:
        own = not isinstance(to, MessageReceived)
        if isinstance(to, MessageReceived):
            conversation, message_id, author, text = to.conversation, to.message_id, to.actor.id, to.text
        else:
            conversation, message_id, author, text = (
                to.delivery.conversation,
                to.ref.message_id,
                "bot",
                to.text,
            )
        return await self.send(
            ReactionAdded(
                actor=actor,
                conversation=conversation,
                emoji=emoji,
                message_id=message_id,
                message_author_id=author,
                message_text=text,
                on_own_message=own,
                event_id=self._id("react"),
            )
        )

    # -- looking -----------------------------------------------------------------------------

    def staff_posts(self) -> list[SentMessage]:
        return self.adapter.in_channel(STAFF_CHANNEL)

    def sent_to(self, channel_id: str) -> list[SentMessage]:
        return self.adapter.in_channel(channel_id)


def button(message: SentMessage, label_start: str) -> Button:
    for candidate in message.delivery.message.buttons:
        if candidate.label.lower().startswith(label_start.lower()):
            return candidate
    labels = [b.label for b in message.delivery.message.buttons]
    raise AssertionError(f"no button starting {label_start!r}; buttons: {labels}")


def delivery_figures(bot: SupportBot, platform: Platform) -> dict[str, float]:
    """What /metrics says about one platform's deliveries: sent, failed, 429s, retries."""
    registry = bot.services.metrics.registry
    labels = {"platform": platform.value}

    def sample(name: str, **more: str) -> float:
        return registry.get_sample_value(name, labels | more) or 0.0

    return {
        "sent": sample("supportbot_deliveries_total", result="sent"),
        "failed": sample("supportbot_deliveries_total", result="failed"),
        "429s": sample("supportbot_rate_limited_total"),
        "retries": sample("supportbot_delivery_retries_total"),
    }
