"""Settings from random environment values for every setting: Settings the bot can start with, or
SettingsError with one line naming what is wrong; never another exception, never a secret echoed."""

from __future__ import annotations

import os
from typing import Any
from unittest import mock

from hypothesis import example, given
from hypothesis import strategies as st

from bot.settings import Settings, SettingsError, load_settings

FIELDS = sorted(Settings.model_fields)
SECRETS = ("slack_bot_token", "slack_signing_secret", "slack_app_token", "discord_token")

env_text = st.text(alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=30)
TRICKY = (
    "",
    " ",
    "0",
    "-1",
    "65536",
    "1e309",
    "nan",
    "inf",
    "-inf",
    "²",
    "١٢",
    "0x10",
    "1_000",
    "true",
    "no",
    "null",
    "[]",
    '["a", "b"]',
    '{"a": 1}',
    "slack:U024BE7LH",
    "discord:80351110224678912",
    "fake:x",
    "slack:",
    ":U1",
    "slack:U1, discord:2",
    "slack:U1,,",
    "console:staff",
    "urgent=15,normal=240",
    "urgent=²",
    "urgent=١٥",
    "urgent=0",
    "high=-5",
    "sqlite+aiosqlite:///./data/x.db",
    "postgresql+asyncpg://admin:s3cret@db.example:notaport/app",
    "postgresql+asyncpg://u@[::1/db",
    "http://127.0.0.1:8080",
    "https://slack.example/api/",
    "ws://127.0.0.1:1/",
    "DEBUG",
    "warning",
    "socket",
    "http",
    "lexical",
    "semantic",
    "console,slack,discord",
    "0,1",
    "a,b",
    "kb",
    "/nonexistent/components.yml",
)
values = st.one_of(st.sampled_from(TRICKY), env_text)


@st.composite
def environments(draw: st.DrawFn) -> dict[str, str]:
    names = draw(st.lists(st.sampled_from(FIELDS), unique=True, max_size=8))
    secrets = st.from_regex(r"xoxb-SECRET-[A-Za-z0-9]{8}", fullmatch=True)
    return {name.upper(): draw(st.one_of(secrets, values) if name in SECRETS else values) for name in names}


def _load(env: dict[str, str]) -> Settings:
    """load_settings with exactly `env` for the settings (nothing from the machine or a .env file)."""
    keep = {k: v for k, v in os.environ.items() if k.lower() not in Settings.model_fields}
    with mock.patch.dict(os.environ, {**keep, **env}, clear=True):
        return load_settings(_env_file=None)


def _use(settings: Settings) -> dict[str, Any]:
    """What start-up derives from the settings; each must work for settings that loaded."""
    return {
        "platforms": settings.active_platforms,
        "targets": settings.first_response_targets,
        "shards": [int(i) for i in settings.discord_shard_ids],
        "staff": settings.staff_channel.partition(":"),
        "discord ids": [
            int(i) for i in (settings.discord_dev_guild_id, settings.discord_ticket_forum_id) if i
        ],
    }


@example(env={"DISCORD_API_BASE": "\x1e"})  # found here: a quoted line break made two lines
@example(env={"FIRST_RESPONSE_MINUTES": "urgent=²"})
@example(env={"DISCORD_SHARD_IDS": "a,b", "DISCORD_SHARD_COUNT": "2"})
@example(env={"DISCORD_DEV_GUILD_ID": "my-guild"})
@given(environments())
def test_any_environment_is_settings_or_one_line_naming_the_setting(env: dict[str, str]) -> None:
    try:
        settings = _load(env)
    except SettingsError as error:
        message = str(error)
        assert message and len(message.splitlines()) == 1, message
        named = [name.upper() for name in FIELDS if name.upper() in message]
        assert named or "required" in message, message
        assert "xoxb-SECRET-" not in message
        return
    _use(settings)
