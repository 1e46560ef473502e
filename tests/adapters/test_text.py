"""Splitting long texts into messages (`bot/adapters/text.py`), as each platform renders them: a
customer's long code block relayed to the team keeps every character."""

from __future__ import annotations

import re

from bot.adapters.discord import translate as discord_translate
from bot.adapters.slack import translate as slack_translate
from bot.core.events import OutboundMessage


def test_a_long_code_block_relayed_to_discord_keeps_every_character() -> None:
    # A customer pastes a minified JSON / base64 blob in a code block (no spaces, no newlines).
    blob = "".join(f"{i % 10}" for i in range(3000))
    message = OutboundMessage(text=f"**Casey:**\n```\n{blob}\n```")

    parts = discord_translate.render(message)

    relayed = "".join(re.sub(r"[^0-9]", "", p.content) for p in parts)
    assert relayed == blob, f"{len(blob) - len(relayed)} characters of the customer's paste were dropped"


def test_a_long_code_block_relayed_to_slack_keeps_every_character() -> None:
    blob = "".join(f"{i % 10}" for i in range(6000))
    message = OutboundMessage(text=f"```\n{blob}\n```")

    sections = [b["text"]["text"] for part in slack_translate.render(message) for b in part.blocks]

    relayed = "".join(re.sub(r"[^0-9]", "", s) for s in sections)
    assert relayed == blob, f"{len(blob) - len(relayed)} characters of the customer's paste were dropped"
