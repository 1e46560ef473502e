"""Who is pinged on escalations: on-call people and groups, as configured per platform."""

from __future__ import annotations

from bot.adapters.discord import translate as discord_translate
from bot.core.events import Mention, OutboundMessage, Platform
from bot.core.staff import StaffPolicy


def _policy(*oncall: str) -> StaffPolicy:
    return StaffPolicy.from_settings(user_ids=[], role_ids=[], staff_channel="discord:G1/C1", oncall=oncall)


def test_a_discord_person_on_call_is_pinged_as_a_person() -> None:
    policy = _policy("discord:@111", "discord:&222", "discord:333", "slack:U0SAM", "slack:S0ONCALL")

    discord = policy.oncall_mentions(Platform.DISCORD)
    slack = policy.oncall_mentions(Platform.SLACK)

    assert discord == (
        Mention(kind="user", id="111"),
        Mention(kind="group", id="222"),
        Mention(kind="group", id="333"),
    )
    assert slack == (Mention(kind="user", id="U0SAM"), Mention(kind="group", id="S0ONCALL"))
    message = OutboundMessage(text="Ticket #1 needs a person", mentions=discord)
    allowed = discord_translate.allowed_mentions(message)
    assert [u.id for u in allowed.users] == [111]  # type: ignore[union-attr]
    assert sorted(r.id for r in allowed.roles) == [222, 333]  # type: ignore[union-attr]
