"""The discord.py client the adapter runs: its hooks (forwarded to the adapter), intents, sharding,
and where it connects (Discord, or an emulator or proxy)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import discord
import yarl


class ClientOwner(Protocol):
    """What the client's hooks and the bot's buttons forward to (the adapter)."""

    async def setup(self, client: discord.Client) -> None: ...

    async def on_message(self, message: discord.Message) -> None: ...

    async def on_reaction(self, payload: discord.RawReactionActionEvent) -> None: ...

    async def on_button(self, interaction: discord.Interaction, custom_id: str) -> None: ...


class _Hooks:
    """Client hooks forwarded to the adapter (a mixin for both the plain and the sharded client)."""

    supportbot_adapter: ClientOwner

    async def setup_hook(self) -> None:
        await self.supportbot_adapter.setup(self)  # type: ignore[arg-type]  # mixed into discord.Client

    async def on_message(self, message: discord.Message) -> None:
        await self.supportbot_adapter.on_message(message)

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        await self.supportbot_adapter.on_reaction(payload)


class _Client(_Hooks, discord.Client):
    pass


class _ShardedClient(_Hooks, discord.AutoShardedClient):
    pass


def apply_endpoints(api_base: str, gateway_url: str) -> None:
    """Point discord.py at Discord (or an emulator or proxy). Class attributes: one per process."""
    discord.http.Route.BASE = api_base.rstrip("/")
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)


def make_client(
    owner: ClientOwner,
    *,
    shard_count: int | None,
    shard_ids: Iterable[int],
    guild_ready_timeout: float,
) -> discord.Client:
    """A client whose hooks call `owner`; sharded (this process's `shard_ids` of `shard_count`)
    when a shard count is set. Nothing pings unless a message allows it."""
    intents = discord.Intents.default()
    intents.message_content = True  # privileged: enable it for the bot in the developer portal
    intents.typing = False
    options: dict[str, Any] = {
        "intents": intents,
        "guild_ready_timeout": guild_ready_timeout,
        "allowed_mentions": discord.AllowedMentions.none(),
    }
    client: _Client | _ShardedClient
    if shard_count:
        if shard_ids:
            options["shard_ids"] = list(shard_ids)  # this process's shards; else all of them
        client = _ShardedClient(shard_count=shard_count, **options)
    else:
        client = _Client(**options)
    client.supportbot_adapter = owner
    return client
