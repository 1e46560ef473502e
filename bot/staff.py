"""Who counts as staff: configured `platform:user` ids and `platform:role` ids."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.events import Actor, Conversation, Mention, Platform


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
        roles = frozenset(role_ids) | {"console:staff", "fake:staff"}
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
                kind = "user" if ident.startswith(("U", "W")) and platform == Platform.SLACK else "group"
                mentions.append(Mention(kind=kind, id=ident))
        return tuple(mentions)
