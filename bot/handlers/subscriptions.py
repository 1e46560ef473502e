"""Status subscriptions: `/subscribe`, `/unsubscribe` and `/subscriptions`. A DM subscribes itself;
a channel's subscription is for staff and the channel's admins."""

from __future__ import annotations

from bot.core.commands import Option, Suggest
from bot.core.context import HandlerContext
from bot.core.events import CHANNEL_ADMIN, CommandInvoked, Conversation, OutboundMessage
from bot.core.router import Allow, Deny, Router, Verdict, command
from bot.handlers.guards import audit
from bot.status import parse
from bot.status.snapshot import known_components
from storage import subscriptions_repo

router = Router("subscriptions")
router.command(
    "subscribe",
    "Get status updates here (a DM: yours; a channel: staff or admins)",
    Option(
        "components",
        required=False,
        many=True,
        suggest=Suggest.COMPONENT,
        description="Only these, e.g. api payments (default: all)",
    ),
)
router.command("unsubscribe", "Stop status updates here")
router.command("subscriptions", "What this channel (staff: every channel) is subscribed to")


async def may_manage_subscription(event: CommandInvoked, ctx: HandlerContext) -> Verdict:
    if ctx.is_staff or event.conversation.is_direct or CHANNEL_ADMIN in event.actor.roles:
        return Allow()
    return Deny(
        "Only staff or this channel's admins can change its status subscription. "
        "You can subscribe your own DMs: send me `/subscribe` in a direct message.",
        audit="status.subscribe",
    )


def _where(conversation: Conversation) -> dict[str, str]:
    """The subscription's key: the place, whoever asks there."""
    return {
        "platform": conversation.platform.value,
        "workspace_id": conversation.workspace_id,
        "channel_id": conversation.channel_id,
    }


@router.on(CommandInvoked, command("subscribe"), guards=[may_manage_subscription])
async def subscribe(event: CommandInvoked, ctx: HandlerContext) -> None:
    known = await known_components(ctx.session)
    names = parse.components_arg(ctx.match.rest, known) if ctx.match.rest.strip() else []
    await subscriptions_repo.subscribe(
        ctx.session,
        platform=event.conversation.platform.value,
        workspace_id=event.conversation.workspace_id,
        channel_id=event.conversation.channel_id,
        is_direct=event.conversation.is_direct,
        components=names,
        actor_key=event.actor.key,
    )
    await audit(ctx, "status.subscribe", f"{event.conversation.channel_key} {','.join(names) or 'all'}")
    scope = ", ".join(names) if names else "every component"
    where = "your DMs" if event.conversation.is_direct else "this channel"
    await ctx.reply(f"Subscribed {where} to status updates for {scope}. `/unsubscribe` stops them.")


@router.on(CommandInvoked, command("unsubscribe"), guards=[may_manage_subscription])
async def unsubscribe(event: CommandInvoked, ctx: HandlerContext) -> None:
    removed = await subscriptions_repo.unsubscribe(ctx.session, **_where(event.conversation))
    if removed:
        await audit(ctx, "status.unsubscribe", event.conversation.channel_key)
        await ctx.reply("Unsubscribed: no more status updates here.")
    else:
        where = "Your DMs weren't" if event.conversation.is_direct else "This channel wasn't"
        text = f"{where} subscribed. `/subscribe` starts status updates here."
        await ctx.reply(OutboundMessage(text=text, private_to=event.actor))


@router.on(CommandInvoked, command("subscriptions"))
async def subscriptions(event: CommandInvoked, ctx: HandlerContext) -> None:
    if ctx.is_staff:
        found = await subscriptions_repo.list_subscriptions(ctx.session, active_only=False)
        active = [s for s in found if s.active]
        disabled = [s for s in found if not s.active and s.disabled_reason != "unsubscribed"]
        by_platform: dict[str, int] = {}
        for s in active:
            by_platform[s.platform] = by_platform.get(s.platform, 0) + 1
        places = "subscription" if len(active) == 1 else "subscriptions"
        lines = [
            f"{len(active):,} active {places}: " + ", ".join(f"{p} {n:,}" for p, n in by_platform.items())
            if active
            else "No active subscriptions."
        ]
        lines.extend(
            f"- disabled: {s.platform} `{s.channel_id}` ({s.disabled_reason})" for s in disabled[:20]
        )
        await ctx.reply(OutboundMessage(text="\n".join(lines), private_to=event.actor))
        return
    found_here = await subscriptions_repo.get_subscription(ctx.session, **_where(event.conversation))
    if found_here is None or not found_here.active:
        text = "Not subscribed here. `/subscribe` to get status updates."
    else:
        text = f"Subscribed here to: {found_here.components.replace(',', ', ') or 'every component'}."
    await ctx.reply(OutboundMessage(text=text, private_to=event.actor))
