"""A deferred interaction as the inbox keeps it, and rebuilt by the process that replays it.

Discord sends an interaction once. The bot defers it at once (its 3 seconds), and from then on only
the token, valid 15 minutes, can answer it: a process killed between the defer and the commit of
the event's handling took the only copy with it, and the person's "thinking…" stayed forever. So the
event and what answering needs (the application id and the token) are written to the inbox after
the defer; a process that finds the row after its lease answers through the same token. The token
is a 15-minute credential for that one interaction, kept no longer than the row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import discord

from bot.core.events import InboundEvent
from bot.core.owed import decode_event, encode_event

COMMAND: Final = "command"
BUTTON: Final = "button"


@dataclass(frozen=True, slots=True)
class KeptInteraction:
    """What a replay needs: the event to hand on, and how to answer it."""

    event: InboundEvent
    interaction: discord.Interaction
    is_command: bool
    channel_id: str | None


def kept_body(event: InboundEvent, interaction: discord.Interaction) -> dict[str, Any]:
    """The inbox row's body for a deferred interaction (never the bot token; the interaction's own)."""
    return {
        "event": encode_event(event),
        "interaction": {
            "id": str(interaction.id),
            "application_id": str(interaction.application_id),
            "type": interaction.type.value,
            "token": interaction.token,
            "version": interaction.version,
        },
        "channel_id": str(interaction.channel_id) if interaction.channel_id else None,
    }


def rebuilt(kind: str, body: dict[str, Any], client: discord.Client) -> KeptInteraction:
    """The kept interaction, answerable through `client` (its HTTP session); ValueError when the
    row is not one."""
    try:
        stored = body["interaction"]
        payload = {
            "id": str(stored["id"]),
            "application_id": str(stored["application_id"]),
            "type": int(stored["type"]),
            "token": str(stored["token"]),
            "version": int(stored["version"]),
            "attachment_size_limit": 0,  # read by discord.py; no file goes through a replay's token
        }
        channel_id = body.get("channel_id")
        event = decode_event(body["event"])
    except (KeyError, TypeError) as error:
        raise ValueError(f"not a kept interaction: {error!r}") from error
    # discord.py builds interactions only from gateway payloads; this is the part answering reads.
    interaction = discord.Interaction(data=payload, state=client._connection)  # type: ignore[arg-type]
    return KeptInteraction(event, interaction, kind == COMMAND, str(channel_id) if channel_id else None)
