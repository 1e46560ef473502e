"""Who counts as staff: configured `platform:user` ids and `platform:role` ids."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.core.events import Actor, Conversation, Mention, Platform


def parse_platform_ref(ref: str) -> tuple[Platform, str]:
    platform, _, ident = ref.partition(":")
    return Platform(platform), ident


@dataclass(frozen=True, slots=True)
class StaffPolicy:
    user_keys: frozenset[str]
    role_keys: frozenset[str]
    staff_channel: Conversation
    oncall: tuple[str, ...] = ()

    @classmethod
    def from_settings(
        cls, *, user_ids: Iterable[str], role_ids: Iterable[str], staff_channel: str, oncall: Iterable[str]
    ) -> StaffPolicy:
        platform, channel_id = parse_platform_ref(staff_channel)
        workspace, sep, channel = channel_id.rpartition("/")
        conversation = Conversation(
            platform=platform, workspace_id=workspace if sep else "", channel_id=channel
        )
        # The console is a local, trusted terminal: `--as-staff` gives the role "staff".
        roles = frozenset(role_ids) | {"console:staff"}
        return cls(frozenset(user_ids), roles, conversation, tuple(oncall))

    def is_staff(self, actor: Actor) -> bool:
        if actor.key in self.user_keys:
            return True
        return any(f"{actor.platform.value}:{role}" in self.role_keys for role in actor.roles)

    def oncall_mentions(self, platform: Platform) -> tuple[Mention, ...]:
        mentions = []
        for ref in self.oncall:
            ref_platform, ident = parse_platform_ref(ref)
            if ref_platform == platform:
                mentions.append(oncall_mention(platform, ident))
        return tuple(mentions)


def oncall_mention(platform: Platform, ident: str) -> Mention:
    """`@id` is a person and `&id` a role or group, on any platform. Without a marker, Slack's ids
    say what they are (U…/W… people, S… user groups); Discord's don't, so a bare Discord id is a
    role, as it was before people could be named."""
    if ident.startswith("@"):
        return Mention(kind="user", id=ident[1:])
    if ident.startswith("&"):
        return Mention(kind="group", id=ident[1:])
    is_person = platform == Platform.SLACK and ident.startswith(("U", "W"))
    return Mention(kind="user" if is_person else "group", id=ident)
