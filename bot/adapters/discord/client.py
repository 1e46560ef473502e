"""The discord.py client the adapter runs: its hooks (forwarded to the adapter), intents, sharding,
and where it connects (Discord, or an emulator or proxy)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import SimpleNamespace
from typing import Any, Final, Protocol

import aiohttp
import discord
import yarl

from bot.adapters.base import DeliveryError, DeliveryFailure
from bot.adapters.retries import SdkRetries

# The statuses discord.py sends a request again on, by itself (its HTTP client; the webhook client
# it answers interactions with retries 429, 500 and 502 and gives up on the others at once).
_SENT_AGAIN_ON: Final[Mapping[int, DeliveryFailure]] = {
    429: DeliveryFailure.RATE_LIMITED,
    500: DeliveryFailure.UNAVAILABLE,
    502: DeliveryFailure.UNAVAILABLE,
    504: DeliveryFailure.UNAVAILABLE,
    524: DeliveryFailure.UNAVAILABLE,
}


class ClientOwner(Protocol):
    """What the client's hooks and the bot's buttons forward to (the adapter)."""

    async def setup(self, client: discord.Client) -> None: ...

    def received(self, message: discord.Message) -> None: ...

    def received_reaction(self, payload: discord.RawReactionActionEvent) -> None: ...

    async def on_message(self, message: discord.Message) -> None: ...

    async def on_reaction(self, payload: discord.RawReactionActionEvent) -> None: ...

    async def on_button(self, interaction: discord.Interaction, custom_id: str) -> None: ...


class _Hooks:
    """Client hooks forwarded to the adapter (a mixin for both the plain and the sharded client)."""

    supportbot_adapter: ClientOwner

    async def setup_hook(self) -> None:
        await self.supportbot_adapter.setup(self)  # type: ignore[arg-type]  # mixed into discord.Client

    def dispatch(self, event: str, /, *args: Any, **kwargs: Any) -> None:
        # discord.py calls this while it parses a gateway message, before any listener runs: the
        # one moment its socket's sequence number is that message's (see `resume.Settled`).
        if event == "message":
            self.supportbot_adapter.received(args[0])
        elif event == "raw_reaction_add":
            self.supportbot_adapter.received_reaction(args[0])
        super().dispatch(event, *args, **kwargs)  # type: ignore[misc]  # mixed into discord.Client

    async def on_message(self, message: discord.Message) -> None:
        await self.supportbot_adapter.on_message(message)

    async def on_raw_reaction_add(self, payload: discord.RawReactionActionEvent) -> None:
        await self.supportbot_adapter.on_reaction(payload)


class _Client(_Hooks, discord.Client):
    pass


class _ShardedClient(_Hooks, discord.AutoShardedClient):
    pass


def _gave_up(error: BaseException) -> DeliveryFailure | None:
    """The response discord.py did not send again but raised (its tries ran out, or a 504 on a
    webhook): the error the send raised, or the one a `DeliveryError` was made from."""
    cause = error.__cause__ if isinstance(error, DeliveryError) else error
    return _SENT_AGAIN_ON.get(cause.status) if isinstance(cause, discord.HTTPException) else None


def http_retries() -> tuple[SdkRetries, aiohttp.TraceConfig]:
    """discord.py waits out 429s and some server errors inside its HTTP client and only logs them:
    an aiohttp trace on its session sees every response, and each one with such a status was
    sent again, but for the last, which the send raised instead (`_gave_up`)."""
    retries = SdkRetries(gave_up=_gave_up)

    async def ended(
        _session: aiohttp.ClientSession, _context: SimpleNamespace, params: aiohttp.TraceRequestEndParams
    ) -> None:
        reason = _SENT_AGAIN_ON.get(params.response.status)
        if reason is not None:
            retries.saw(reason)

    trace = aiohttp.TraceConfig()
    trace.on_request_end.append(ended)
    return retries, trace


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
    http_trace: aiohttp.TraceConfig | None = None,
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
        "http_trace": http_trace,
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
