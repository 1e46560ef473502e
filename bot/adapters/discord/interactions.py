"""Interactions: slash commands and button clicks are deferred at once (Discord's 3-second deadline),
and their tokens are kept (15 minutes) so the handler's reply can answer through them: privately,
replacing a command's "thinking…" placeholder, or publicly as a follow-up where the bot may not post.
Also the persistent buttons, which route clicks on any message, after any restart."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import discord

from bot.adapters.base import DeliveryError, DeliveryFailure
from bot.adapters.discord.bounded import SEND_TIMEOUT, bounded, once
from bot.adapters.discord.client import ClientOwner
from bot.adapters.discord.translate import (
    CUSTOM_ID_TEMPLATE,
    Part,
    allowed_mentions,
    button_style,
    conversation_from,
    encode_custom_id,
    render,
)
from bot.core.events import Conversation, Delivery, InboundEvent, Platform, SentRef

log = logging.getLogger(__name__)

INTERACTION_TOKEN_SECONDS = 15 * 60 - 30  # follow-ups work for 15 minutes; keep a margin
MAX_REMEMBERED = 2000


@dataclass
class Pending:
    """An interaction the bot deferred, kept so its reply can use the interaction's token."""

    interaction: discord.Interaction
    is_command: bool
    received: float
    channel_id: str | None = None
    replayed: bool = False
    """Deferred by a process that died: it may have answered before, so its placeholder stays."""
    original_used: bool = False
    original_key: str | None = None
    """The delivery whose answer replaced the placeholder."""

    @property
    def live(self) -> bool:
        return time.monotonic() - self.received <= INTERACTION_TOKEN_SECONDS

    def replaces_placeholder(self, key: str | None) -> bool:
        """A private answer to a command replaces its "thinking…" placeholder: the first one, and
        the same delivery sent again after a timeout (an edit is harmless to repeat, and a follow-up
        instead would be a second copy)."""
        if not self.is_command:
            return False
        return not self.original_used or (key is not None and key == self.original_key)


class PersistentButton(
    discord.ui.DynamicItem[discord.ui.Button[discord.ui.View]], template=CUSTOM_ID_TEMPLATE
):
    """Every button the bot renders. The action is in the custom id, so discord.py routes clicks
    on any message, old or new, after any restart, through this one registered template."""

    def __init__(self, button: discord.ui.Button[discord.ui.View]) -> None:
        super().__init__(button)

    @classmethod
    async def from_custom_id(  # type: ignore[override]  # discord.py declares it with a generic item
        cls, interaction: discord.Interaction, item: discord.ui.Button[discord.ui.View], match: Any, /
    ) -> PersistentButton:
        return cls(item)

    async def callback(self, interaction: discord.Interaction) -> None:
        owner: ClientOwner | None = getattr(interaction.client, "supportbot_adapter", None)
        if owner is not None:
            await owner.on_button(interaction, self.item.custom_id or "")


def send_kwargs(part: Part, mentions: discord.AllowedMentions) -> dict[str, Any]:
    """One message part as keyword arguments for `send` (channel, follow-up) or `edit`."""
    kwargs: dict[str, Any] = {"content": part.content or None, "allowed_mentions": mentions}
    if part.embed is not None:
        kwargs["embed"] = part.embed
    view = discord.ui.View(timeout=None)
    for button in part.buttons:
        try:
            custom_id = encode_custom_id(button.action_id, button.value)
        except ValueError as error:
            # One button that cannot be one on Discord must not take the message, and its other
            # buttons, with it (the texts that carry such buttons say the command as well).
            log.error("left out a button of a message: %s", error)
            continue
        view.add_item(
            PersistentButton(
                discord.ui.Button(
                    label=button.label[:80], style=button_style(button.style), custom_id=custom_id
                )
            )
        )
    if view.children:
        kwargs["view"] = view
    return kwargs


async def defer(interaction: discord.Interaction, *, ephemeral: bool, thinking: bool) -> bool:
    """Acknowledge the interaction; False when Discord refused (its token is then of no use)."""
    try:
        await interaction.response.defer(ephemeral=ephemeral, thinking=thinking)
    except discord.HTTPException as error:
        # Too late or already answered: the reply falls back to a normal message.
        log.warning("could not defer interaction %s: %s", interaction.id, error)
        return False
    return True


def conversation_of(interaction: discord.Interaction) -> Conversation:
    channel = interaction.channel
    if channel is None:
        return Conversation(platform=Platform.DISCORD, channel_id=str(interaction.channel_id), is_direct=True)
    return conversation_from(channel, guild_id=interaction.guild_id)


def may_follow_up(pending: Pending | None, target: str, error: Exception) -> bool:
    """A public answer to a command in its own channel, refused for lack of access."""
    if pending is None or not pending.is_command or pending.channel_id != target:
        return False
    return isinstance(error, discord.Forbidden) or (
        isinstance(error, DeliveryError) and error.code is DeliveryFailure.NO_ACCESS
    )


class Interactions:
    """The deferred interactions by event id, and the public follow-ups by message id, both bounded."""

    def __init__(self, size: int = MAX_REMEMBERED, *, timeout: float = SEND_TIMEOUT) -> None:
        self._size = size
        self._timeout = timeout
        self._pending: OrderedDict[str, Pending] = OrderedDict()
        self._follow_ups: OrderedDict[str, Pending] = OrderedDict()

    def remember(
        self,
        event: InboundEvent,
        interaction: discord.Interaction,
        *,
        is_command: bool,
        channel_id: str | None,
        age: float = 0.0,
        replayed: bool = False,
    ) -> None:
        """Keep `interaction` for the replies to `event`; `age`: seconds since Discord sent it."""
        if replayed and event.event_id in self._pending:
            # Deferred by this very process, still at it past the lease: its own entry knows
            # whether an answer already replaced the placeholder (a fresh one would edit over it).
            return
        received = time.monotonic() - age
        self._pending[event.event_id] = Pending(interaction, is_command, received, channel_id, replayed)
        while len(self._pending) > self._size:
            self._pending.popitem(last=False)

    def live(self, event: InboundEvent | None) -> Pending | None:
        """The interaction `event` came from, while its token still works."""
        pending = self._pending.get(event.event_id) if event is not None else None
        return pending if pending is not None and pending.live else None

    def follow_up(self, message_id: str) -> Pending | None:
        """The interaction whose follow-up posted `message_id`, while its token still works."""
        pending = self._follow_ups.get(message_id)
        return pending if pending is not None and pending.live else None

    async def drop_placeholder(self, pending: Pending) -> None:
        """Remove a command's private "thinking…" placeholder, unless a reply already used it."""
        if not pending.is_command or pending.original_used:
            return
        pending.original_used = True
        try:
            await bounded(pending.interaction.delete_original_response(), self._timeout)
        except (discord.HTTPException, TimeoutError) as error:
            log.info("could not remove the command's placeholder: %r", error)

    async def settle(self, event: InboundEvent, *, duplicate: bool) -> None:
        """The dispatcher is done with `event`: a command no reply answered would keep its private
        "thinking…" placeholder forever, so it goes. Not a duplicate's: the handling that claimed
        the event (another process that replayed it while this one was slow) put its answer there.
        Nor a replayed one's: the process that deferred it may have answered there before it died."""
        pending = self.live(event)
        if pending is not None and not pending.replayed and not duplicate:
            await self.drop_placeholder(pending)

    async def reply(self, pending: Pending, delivery: Delivery, *, ephemeral: bool) -> SentRef:
        """Answer through the interaction's token: privately (the first part replaces a command's
        "thinking…" placeholder), or publicly as follow-ups where the bot cannot post itself."""
        interaction = pending.interaction
        mentions = allowed_mentions(delivery.message)
        sent: discord.Message | None = None
        key = delivery.idempotency_key
        for index, part in enumerate(render(delivery.message)):
            kwargs = send_kwargs(part, mentions)
            if index == 0 and ephemeral and pending.replaces_placeholder(key):
                pending.original_used, pending.original_key = True, key
                sent = await bounded(interaction.edit_original_response(**kwargs), self._timeout)
            else:
                kwargs = {k: v for k, v in kwargs.items() if v is not None}
                sent = await once(
                    interaction.followup.send(**kwargs, ephemeral=ephemeral, wait=True),
                    self._timeout,
                    what="an interaction's follow-up",
                )
                if not ephemeral:
                    self._remember_follow_up(str(sent.id), pending)
        assert sent is not None  # render() always returns at least one part
        conversation = delivery.conversation
        return SentRef(
            platform=Platform.DISCORD,
            workspace_id=conversation.workspace_id,
            channel_id=conversation.channel_id,
            message_id=str(sent.id),
            thread_id=conversation.thread_id,
            is_private=ephemeral,
        )

    def _remember_follow_up(self, message_id: str, pending: Pending) -> None:
        self._follow_ups[message_id] = pending
        while len(self._follow_ups) > self._size:
            self._follow_ups.popitem(last=False)
