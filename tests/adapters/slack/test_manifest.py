"""slack-manifest.yml, the app configuration people paste into Slack, checked against the bot: its
slash commands are the handlers' command catalogue, and it asks for the events and scopes the
adapter uses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.app import build_router
from bot.core.commands import Catalogue

MANIFEST = Path(__file__).resolve().parents[3] / "slack-manifest.yml"


@pytest.fixture(scope="module")
def manifest() -> dict[str, Any]:
    return yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))


def usage_hint(catalogue: Catalogue, name: str) -> str | None:
    """What Slack shows while `/name` is typed: the forms everyone may use (a staff-only command:
    all of its forms), as the catalogue writes them."""
    forms = catalogue.under(name)
    shown = [c for c in forms if not c.staff] or forms
    return " | ".join(c.arguments for c in shown if c.arguments) or None


def test_the_manifests_slash_commands_are_the_command_catalogue(manifest: dict[str, Any]) -> None:
    catalogue = build_router().catalogue()
    registered = {c["command"].removeprefix("/"): c for c in manifest["features"]["slash_commands"]}
    assert sorted(registered) == sorted(catalogue.names), "slack-manifest.yml and the handlers disagree"
    for name, entry in registered.items():
        assert entry.get("usage_hint") == usage_hint(catalogue, name), f"/{name}'s usage_hint"
        staff_only = all(c.staff for c in catalogue.under(name))
        assert entry["description"].startswith("Staff:") == staff_only, f"/{name}'s description"
        assert entry["url"].endswith("/slack/events") and entry["should_escape"] is False


def test_the_manifest_asks_for_the_events_and_scopes_the_adapter_uses(manifest: dict[str, Any]) -> None:
    events = set(manifest["settings"]["event_subscriptions"]["bot_events"])
    assert {"app_mention", "message.channels", "message.im", "reaction_added"} <= events
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    used = {"chat:write", "commands", "users:read", "usergroups:read", "channels:history", "im:write"}
    used |= {"files:read", "files:write"}  # a customer's file downloaded, passed on as an upload
    assert used <= scopes
