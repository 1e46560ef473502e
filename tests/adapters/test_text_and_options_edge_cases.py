"""Text and options at the platform edge that a review found mishandled: long code blocks split
across messages, Discord options read as words (an announcement's first word taken as its audience,
"api, payments"), dates at the edge of the calendar, links broken by mention escaping, Slack's own
links doubled, shortened fields ending in half an entity. Each test failed before its fix."""

from __future__ import annotations

import re
from pathlib import Path

from bot.adapters.discord import translate as discord_translate
from bot.adapters.slack import translate as slack_translate
from bot.app import SupportBot
from bot.core.dispatch import Outcome
from bot.core.events import Field, OutboundMessage
from tests.adapters.discord.harness import DiscordWorld, start_bot
from tests.adapters.discord.test_commands import public_answer
from tests.harness import BotHarness

# -- losing text -----------------------------------------------------------------------------------


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


# -- Discord options flattened into words the handlers misread ---------------------------------------


async def test_a_discord_announcement_whose_text_starts_with_a_component_name_goes_to_everyone(
    world: DiscordWorld, database, tmp_path: Path, bots: list[SupportBot]
) -> None:
    bot, _ = await start_bot(world, database, tmp_path)
    bots.append(bot)
    # No `components` option given: the audience is every subscription, the text is as typed.
    await world.emu.run_command(world.sam, world.staff, "announce", text="API v2 is live, see the changelog")
    answer = await public_answer(world.emu, world.staff.id, "Announcing")
    assert "Announcing to every subscription." in answer, answer


async def test_discord_incident_components_written_with_a_space_after_the_comma_are_understood(
    world: DiscordWorld, database, tmp_path: Path, bots: list[SupportBot]
) -> None:
    bot, _ = await start_bot(world, database, tmp_path)
    bots.append(bot)
    run = await world.emu.run_command(
        world.sam,
        world.staff,
        "incident",
        "open",
        components="api, payments",
        impact="major",
        title="Card payments failing",
    )
    await bot.dispatcher.drain()
    opened = await world.emu.wait_for(
        "POST",
        f"/channels/{world.staff.id}/messages",
        where=lambda c: "Opened incident" in c.content,
    )
    assert "on api, payments: Card payments failing" in opened.content
    assert run is not None


# -- errors that are not friendly -------------------------------------------------------------------


async def test_a_maintenance_end_at_the_edge_of_the_calendar_gets_a_usage_error(bot: BotHarness) -> None:
    sent = await bot.staff_runs(
        "/maintenance schedule payments 2026-12-01T02:00Z 9999-12-31T23:30-01:00 Database upgrade"
    )
    assert bot.last_outcome == Outcome.USER_ERROR, [m.text for m in sent]
    assert "is not a date and time" in sent[-1].text


# -- over-escaping and garbage shown to people ---------------------------------------------------------


def test_discord_neutralising_at_here_does_not_break_links_and_addresses() -> None:
    text = "See https://medium.com/@heretic/fix-sync and write to help@everyone.example"
    (part,) = discord_translate.render(OutboundMessage(text=text))
    # allowed_mentions already stops @everyone/@here; inside a word nothing is a mention anyway.
    assert "https://medium.com/@heretic/fix-sync" in part.content, repr(part.content)
    assert "help@everyone.example" in part.content, repr(part.content)


def test_a_truncated_slack_field_does_not_end_in_half_an_entity() -> None:
    value = "a" * 1990 + "<<<<<<<<"
    card = OutboundMessage(text="card", fields=(Field(name="n", value=value),))
    blocks = slack_translate.render_blocks(card)
    shown = blocks[-1]["fields"][0]["text"]
    assert not re.search(r"&[a-z]*…$", shown), f"a reader sees {shown[-12:]!r}"


def test_a_plain_address_a_slack_user_typed_is_relayed_as_typed() -> None:
    # Slack auto-links what people type: `example.com` arrives as <http://example.com|example.com>.
    said = slack_translate.slack_to_plain(
        "my site <http://example.com|example.com> stopped syncing, "
        "mail me at <mailto:casey@example.com|casey@example.com>"
    )
    assert said == "my site example.com stopped syncing, mail me at casey@example.com", said


async def test_an_incident_title_too_long_is_refused_not_cut(bot: BotHarness) -> None:
    title = "Card payments failing " * 10
    (answer,) = await bot.staff_runs(f"/incident open api major {title}")
    assert "keep it to 200" in answer.text
    assert bot.last_outcome is Outcome.USER_ERROR


async def test_a_slack_style_announcement_can_mark_where_its_text_starts(bot: BotHarness) -> None:
    await bot.staff_runs("/component add api")
    (answer,) = await bot.staff_runs("/announce -- API v2 is live")
    assert answer.text.startswith("Announcing to every subscription.")
