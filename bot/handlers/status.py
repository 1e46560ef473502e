"""Status: `/status`, natural "is X down?" questions, staff incident/component/maintenance commands,
subscriptions and announcements. Broadcasts are queued in the outbox within the command's
transaction; the broadcast worker sends them."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from bot.core.commands import Option, OptionKind, Suggest
from bot.core.context import HandlerContext
from bot.core.errors import UserError
from bot.core.events import CommandInvoked, Conversation, MessageReceived, OutboundMessage, SentRef
from bot.core.router import Allow, Deny, Guard, Match, Router, Skip, Verdict, command
from bot.handlers import guards
from bot.status import messages, parse, workflows
from bot.status.components import Known, mentioned, resolve
from bot.status.model import OPEN_STAGES, ComponentStatus, Impact, IncidentStatus
from bot.status.snapshot import known_components, load_snapshot
from storage import audit_repo, outbox_repo, status_repo, subscriptions_repo
from storage.models import Incident, StatusComponent

router = Router("status")
COMPONENT = Option("name", suggest=Suggest.COMPONENT)
COMPONENTS = Option("components", suggest=Suggest.COMPONENT, description="e.g. api,payments")
INCIDENT = Option("number", kind=OptionKind.NUMBER, label="id")
router.command(
    "status",
    "Is everything working? The state of every component, or of one",
    Option("component", required=False, suggest=Suggest.COMPONENT, description="Only this component"),
)
router.command(
    "subscribe",
    "Get status updates here (a DM: yours; a channel: staff or admins)",
    replace(
        COMPONENTS, required=False, many=True, description="Only these, e.g. api payments (default: all)"
    ),
)
router.command("unsubscribe", "Stop status updates here")
router.command("subscriptions", "What this channel (staff: every channel) is subscribed to")
router.group("incident", "Declare and update incidents")
router.command(
    "incident open",
    "Open an incident and tell every subscribed channel",
    COMPONENTS,
    Option("impact", choices=tuple(Impact)),
    Option("title"),
    staff=True,
)
router.command(
    "incident update",
    "Post an update, threaded under the first notice",
    INCIDENT,
    Option("status", choices=OPEN_STAGES),
    Option("message"),
    staff=True,
)
router.command(
    "incident resolve",
    "Resolve; customers who asked are told",
    INCIDENT,
    Option("message", required=False),
    staff=True,
)
router.group("component", "Status components")
router.command(
    "component set",
    "Set a component's status (history is kept)",
    COMPONENT,
    Option("status", choices=tuple(ComponentStatus)),
    staff=True,
)
router.command(
    "component add",
    "Add a component",
    Option("name", description="lowercase letters, digits, - or _"),
    Option("group", required=False, keyword=True, description="One word, e.g. Apps"),
    Option("aliases", required=False, keyword=True, label="a,b", description="e.g. find,lookup"),
    staff=True,
)
router.command("component history", "A component's status history", COMPONENT, staff=True)
router.group("maintenance", "Maintenance windows")
router.command(
    "maintenance schedule",
    "Schedule maintenance and announce it",
    COMPONENTS,
    Option("start", description="UTC, e.g. 2026-12-01T02:00Z"),
    Option("end", description="UTC, e.g. 2026-12-01T03:00Z"),
    Option("title"),
    staff=True,
)
router.command(
    "announce",
    "Broadcast an announcement to the subscriptions",
    replace(
        COMPONENTS, required=False, many=True, description="Only subscriptions to these, e.g. api payments"
    ),
    Option("text", after_dashes=True, description="What to announce"),
    staff=True,
)

# A channel's admins may manage its subscription. Adapters put this role on an actor who can manage
# the channel (Discord Manage Channels, Slack channel manager or workspace admin).
CHANNEL_ADMIN_ROLE = "channel_admin"


# -- guards --------------------------------------------------------------------------------------


def staff_only(action: str) -> Guard:
    return guards.staff_only(action, hint="If something looks broken, ask me `/status`.")


async def may_manage_subscription(event: CommandInvoked, ctx: HandlerContext) -> Verdict:
    if ctx.is_staff or event.conversation.is_direct or CHANNEL_ADMIN_ROLE in event.actor.roles:
        return Allow()
    return Deny(
        "Only staff or this channel's admins can change its status subscription. "
        "You can subscribe your own DMs: send me `/subscribe` in a direct message.",
        audit="status.subscribe",
    )


# -- answers -------------------------------------------------------------------------------------


def page_url(ctx: HandlerContext) -> str:
    return ctx.services.settings.public_url.rstrip("/") + "/"


async def _link(ctx: HandlerContext, incident: Incident, component: str) -> None:
    where = ctx.event.conversation
    if where.thread_id is None and not where.is_direct:
        # A question in a channel is answered in a thread under it; the resolve notice goes there too.
        message_id = getattr(ctx.event, "message_id", None)
        if message_id:
            where = where.in_thread(message_id)
    await status_repo.link_customer(
        ctx.session,
        incident_id=incident.id,  # type: ignore[arg-type]
        # One notice per person and channel, in the thread of their first question.
        conversation_key=f"{ctx.event.actor.key}@{where.channel_key}",
        platform=where.platform.value,
        workspace_id=where.workspace_id,
        channel_id=where.channel_id,
        thread_id=where.thread_id,
        is_direct=where.is_direct,
        actor_key=ctx.event.actor.key,
        component=component,
        at=ctx.now,
    )


async def answer_components(
    ctx: HandlerContext,
    names: Sequence[str],
    *,
    asked: bool,
    components: Sequence[StatusComponent] | None = None,
) -> None:
    snapshot = await load_snapshot(ctx.session, now=ctx.now, page_url=page_url(ctx), components=components)
    by_name = {c.name: c for c in snapshot.components}
    parts = []
    for name in names:
        parts.append(messages.component_answer(by_name[name], snapshot, asked=asked))
        incidents = snapshot.incidents_for(name)
        if asked and incidents and not ctx.is_staff:
            await _link(ctx, incidents[0], name)
    # One status-page line at the end, not one per component.
    lines = [p.rsplit("\nStatus page: ", 1)[0] for p in parts]
    await ctx.reply(OutboundMessage(text="\n\n".join(lines) + f"\nStatus page: {snapshot.page_url}"))


async def answer_overview(
    ctx: HandlerContext, *, asked: bool, components: Sequence[StatusComponent] | None = None
) -> None:
    snapshot = await load_snapshot(ctx.session, now=ctx.now, page_url=page_url(ctx), components=components)
    title, text = messages.status_overview(snapshot)
    if asked and not ctx.is_staff:
        for incident in snapshot.incidents:
            names = status_repo.split_names(incident.components)
            await _link(ctx, incident, names[0] if names else "")
    await ctx.reply(OutboundMessage(title=title, text=text))


@router.on(CommandInvoked, command("status"))
async def status_command(event: CommandInvoked, ctx: HandlerContext) -> None:
    query = ctx.match.rest.strip()
    if not query:
        await answer_overview(ctx, asked=False)
        return
    components = await status_repo.list_components(ctx.session)
    names = parse.components_arg(query, [Known.of(c) for c in components])
    await answer_components(ctx, names, asked=True, components=components)


# "is the api down?", "payments broken for anyone else?", "are you having an outage"
_CLEAR = re.compile(
    r"\b(outages?|down|incidents?|anyone else|everyone else|for anyone|for everyone|is it just me|"
    r"are you having|status page|service status|system status|degraded)\b",
    re.IGNORECASE,
)
_MAYBE = re.compile(
    r"\b(broken|not working|(is|are)n'?t working|doesn'?t work|failing|fails|errors?|slow|unavailable|"
    r"timing out|timeouts?|50[0234])\b",
    re.IGNORECASE,
)
QUESTION_SCORE = 0.85


def status_question(event: MessageReceived) -> Match | None:
    """A message that asks whether something is broken. Only a clear one ("outage", "down",
    "anyone else") is answered without a component; a vaguer one needs a component (see the guard)."""
    if _CLEAR.search(event.text):
        return Match(QUESTION_SCORE, data="clear")
    if _MAYBE.search(event.text):
        return Match(QUESTION_SCORE, data="maybe")
    return None


async def names_a_component_or_is_clear(event: MessageReceived, ctx: HandlerContext) -> Verdict:
    """Allows with the components read (the answer needs them again)."""
    components = await status_repo.list_components(ctx.session)
    if ctx.match.data == "clear":
        return Allow(components)
    # "my invoice export is broken" is a support question, not a status one: let the KB take it.
    known = [Known.of(c) for c in components]
    return Allow(components) if mentioned(event.text, known) else Skip()


@router.on(MessageReceived, status_question, guards=[names_a_component_or_is_clear])
async def status_question_answer(event: MessageReceived, ctx: HandlerContext) -> None:
    components: list[StatusComponent] = ctx.allowed
    names = mentioned(event.text, [Known.of(c) for c in components])
    if names:
        await answer_components(ctx, names, asked=True, components=components)
    else:
        await answer_overview(ctx, asked=True, components=components)


# -- incidents -----------------------------------------------------------------------------------


def _progress_hook(ctx: HandlerContext, broadcast_id: int):  # type: ignore[no-untyped-def]
    """After the command's reply is posted: remember it (progress edits go there) and wake the worker."""

    async def on_sent(session: object, ref: SentRef) -> None:
        await outbox_repo.set_progress_message(
            session,  # type: ignore[arg-type]
            broadcast_id=broadcast_id,
            platform=ref.platform.value,
            workspace_id=ref.workspace_id,
            channel_id=ref.channel_id,
            message_id=ref.message_id,
        )
        ctx.services.broadcaster.wake()

    return on_sent


async def _reply_with_progress(ctx: HandlerContext, text: str, broadcast_id: int, total: int) -> None:
    suffix = f"\nBroadcasting to {total:,} recipient(s)…" if total else "\nNo subscriptions to tell."
    # Visible in the channel (not private) so that it can be edited with the broadcast's progress.
    await ctx.reply(OutboundMessage(text=text + suffix), on_sent=_progress_hook(ctx, broadcast_id))


async def _audit(ctx: HandlerContext, action: str, detail: str) -> None:
    await audit_repo.record(
        ctx.session, actor_key=ctx.event.actor.key, action=action, allowed=True, detail=detail
    )


@router.on(CommandInvoked, command("incident", "open"), guards=[staff_only("incident.open")])
async def incident_open(event: CommandInvoked, ctx: HandlerContext) -> None:
    known = await known_components(ctx.session)
    args = parse.parse_open(ctx.match.rest, known)
    components = [await status_repo.get_component(ctx.session, name=n) for n in args.components]
    incident = await workflows.open_incident(
        ctx.session,
        title=args.title,
        impact=args.impact,
        components=[c for c in components if c is not None],
        actor_key=event.actor.key,
        at=ctx.now,
    )
    timeline = await status_repo.updates_for(ctx.session, incident_ids=[incident.id])  # type: ignore[list-item]
    title, text = messages.incident_notice(incident, timeline[incident.id][0], page_url=page_url(ctx))  # type: ignore[index]
    broadcast = await outbox_repo.create_broadcast(
        ctx.session,
        kind="open",
        incident_id=incident.id,
        title=title,
        body=text,
        components=args.components,
        at=ctx.now,
    )
    await _audit(ctx, "incident.open", f"#{incident.id} {args.impact} {args.title}")
    await _reply_with_progress(
        ctx,
        f"Opened incident **#{incident.id}** ({args.impact}) on {', '.join(args.components)}: {args.title}",
        broadcast.id,  # type: ignore[arg-type]
        broadcast.total,
    )


async def _incident_or_error(ctx: HandlerContext, number: int) -> Incident:
    incident = await status_repo.get_incident(ctx.session, incident_id=number)
    if incident is None:
        raise UserError(f"There is no incident #{number}. `/status` lists the open ones.")
    if incident.status == IncidentStatus.RESOLVED:
        raise UserError(f"Incident #{number} is already resolved. Open a new one if it's back.")
    return incident


async def _post_update(ctx: HandlerContext, incident: Incident, status: IncidentStatus, message: str) -> None:
    update = await workflows.post_update(
        ctx.session, incident=incident, status=status, body=message, actor_key=ctx.event.actor.key, at=ctx.now
    )
    title, text = messages.update_notice(incident, update)
    resolved = status is IncidentStatus.RESOLVED
    recipients: list[tuple[str, outbox_repo.Recipient, str]] = []
    if resolved:
        links = await status_repo.links_to_notify(ctx.session, incident_id=incident.id)  # type: ignore[arg-type]
        for link in links:
            where = outbox_repo.Recipient(
                link.platform, link.workspace_id, link.channel_id, link.thread_id, link.is_direct
            )
            notice = messages.resolved_for_customer(incident, link.component, page_url=page_url(ctx))
            recipients.append((f"l{link.id}", where, notice))
        # Counted as deflections now, in the transaction that queues the notices.
        await status_repo.mark_links_notified(
            ctx.session,
            link_ids=[link.id for link in links if link.id is not None],
            at=ctx.now,
        )
    broadcast = await outbox_repo.create_broadcast(
        ctx.session,
        kind="resolve" if resolved else "update",
        incident_id=incident.id,
        title=title,
        body=text,
        components=status_repo.split_names(incident.components),
        at=ctx.now,
        edit_first_notice=True,
        recipients=recipients,
    )
    action = "incident.resolve" if resolved else "incident.update"
    await _audit(ctx, action, f"#{incident.id} {message}")
    verb = "Resolved" if resolved else f"Updated ({status})"
    told = f"; telling {len(recipients)} customer(s) who asked" if recipients else ""
    await _reply_with_progress(
        ctx,
        f"{verb} incident **#{incident.id}** {incident.title}{told}",
        broadcast.id,  # type: ignore[arg-type]
        broadcast.total,
    )


@router.on(CommandInvoked, command("incident", "update"), guards=[staff_only("incident.update")])
async def incident_update(event: CommandInvoked, ctx: HandlerContext) -> None:
    args = parse.parse_update(ctx.match.rest)
    incident = await _incident_or_error(ctx, args.incident_id)
    await _post_update(ctx, incident, args.status, args.message)


@router.on(CommandInvoked, command("incident", "resolve"), guards=[staff_only("incident.resolve")])
async def incident_resolve(event: CommandInvoked, ctx: HandlerContext) -> None:
    number, message = parse.parse_resolve(ctx.match.rest)
    incident = await _incident_or_error(ctx, number)
    await _post_update(ctx, incident, IncidentStatus.RESOLVED, message or "This incident has been resolved.")


@router.on(CommandInvoked, command("incident"), guards=[staff_only("incident")])
async def incident_usage(event: CommandInvoked, ctx: HandlerContext) -> None:
    usages = (parse.INCIDENT_OPEN, parse.INCIDENT_UPDATE, parse.INCIDENT_RESOLVE)
    lines = [f"- `{u.usage}`, e.g. `{u.example}`" for u in usages]
    await ctx.reply(OutboundMessage(text="Incident commands:\n" + "\n".join(lines), private_to=event.actor))


# -- components and maintenance ------------------------------------------------------------------


@router.on(CommandInvoked, command("component", "set"), guards=[staff_only("component.set")])
async def component_set(event: CommandInvoked, ctx: HandlerContext) -> None:
    known = await known_components(ctx.session)
    name, status = parse.parse_component_set(ctx.match.rest, known)
    component = await status_repo.get_component(ctx.session, name=name)
    assert component is not None
    before = component.status
    change = await workflows.set_component_status(
        ctx.session,
        component=component,
        status=status,
        actor_key=event.actor.key,
        at=ctx.now,
        reason="command",
    )
    await _audit(ctx, "component.set", f"{name} {status}")
    if change is None:
        await ctx.reply(OutboundMessage(text=f"**{name}** is already {status}.", private_to=event.actor))
        return
    await ctx.reply(f"**{name}**: {messages.STATUS_LABEL[before]} → {messages.STATUS_LABEL[status]}.")


@router.on(CommandInvoked, command("component", "add"), guards=[staff_only("component.add")])
async def component_add(event: CommandInvoked, ctx: HandlerContext) -> None:
    args = parse.parse_component_add(ctx.match.rest)
    known = await known_components(ctx.session)
    clash = {k.name for k in known} | {a for k in known for a in k.aliases}
    taken = [n for n in (args.name, *args.aliases) if n in clash]
    if taken:
        raise UserError(f"`{taken[0]}` is already a component name or alias.")
    await status_repo.add_component(
        ctx.session, name=args.name, group=args.group, aliases=args.aliases, at=ctx.now
    )
    await _audit(ctx, "component.add", args.name)
    await ctx.reply(f"Added component **{args.name}**{f' in {args.group}' if args.group else ''}.")


@router.on(CommandInvoked, command("component", "history"), guards=[staff_only("component.history")])
async def component_history(event: CommandInvoked, ctx: HandlerContext) -> None:
    known = await known_components(ctx.session)
    query = ctx.match.rest.strip()
    if not query:
        raise parse.COMPONENT_HISTORY.error("Which component?")
    name = resolve(query, known)
    if name is None:
        raise parse.UnknownComponent(query, known)
    component = await status_repo.get_component(ctx.session, name=name)
    assert component is not None
    changes = await status_repo.component_history(ctx.session, component_id=component.id)  # type: ignore[arg-type]
    lines = [
        f"- {c.at.strftime('%b %d %H:%M UTC')}: {c.old_status} → {c.new_status} ({c.reason or c.actor_key})"
        for c in changes[-15:]
    ]
    text = "\n".join(lines) if lines else "No changes yet."
    await ctx.reply(OutboundMessage(title=f"{name}: {component.status}", text=text, private_to=event.actor))


@router.on(CommandInvoked, command("component"), guards=[staff_only("component")])
async def component_usage(event: CommandInvoked, ctx: HandlerContext) -> None:
    usages = (parse.COMPONENT_SET, parse.COMPONENT_ADD, parse.COMPONENT_HISTORY)
    lines = [f"- `{u.usage}`, e.g. `{u.example}`" for u in usages]
    await ctx.reply(OutboundMessage(text="Component commands:\n" + "\n".join(lines), private_to=event.actor))


@router.on(CommandInvoked, command("maintenance"), guards=[staff_only("maintenance.schedule")])
async def maintenance_schedule(event: CommandInvoked, ctx: HandlerContext) -> None:
    known = await known_components(ctx.session)
    args = parse.parse_maintenance(ctx.match.rest, known, now=ctx.now)
    components = [await status_repo.get_component(ctx.session, name=n) for n in args.components]
    window = await workflows.schedule_maintenance(
        ctx.session,
        title=args.title,
        components=[c for c in components if c is not None],
        starts_at=args.starts_at,
        ends_at=args.ends_at,
        actor_key=event.actor.key,
        at=ctx.now,
    )
    title, text = messages.maintenance_notice(window)
    broadcast = await outbox_repo.create_broadcast(
        ctx.session,
        kind="announce",
        incident_id=None,
        title=title,
        body=text,
        components=args.components,
        at=ctx.now,
    )
    await _audit(ctx, "maintenance.schedule", f"#{window.id} {args.title}")
    await _reply_with_progress(
        ctx,
        f"Scheduled maintenance **#{window.id}**: {args.title}",
        broadcast.id,
        broadcast.total,  # type: ignore[arg-type]
    )


# -- subscriptions and announcements ---------------------------------------------------------------


def _where(conversation: Conversation) -> dict[str, object]:
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
        **_where(event.conversation),  # type: ignore[arg-type]
        is_direct=event.conversation.is_direct,
        components=names,
        actor_key=event.actor.key,
    )
    await _audit(ctx, "status.subscribe", f"{event.conversation.channel_key} {','.join(names) or 'all'}")
    scope = ", ".join(names) if names else "every component"
    where = "your DMs" if event.conversation.is_direct else "this channel"
    await ctx.reply(f"Subscribed {where} to status updates for {scope}. `/unsubscribe` stops them.")


@router.on(CommandInvoked, command("unsubscribe"), guards=[may_manage_subscription])
async def unsubscribe(event: CommandInvoked, ctx: HandlerContext) -> None:
    removed = await subscriptions_repo.unsubscribe(ctx.session, **_where(event.conversation))  # type: ignore[arg-type]
    if removed:
        await _audit(ctx, "status.unsubscribe", event.conversation.channel_key)
        await ctx.reply("Unsubscribed: no more status updates here.")
    else:
        await ctx.reply(OutboundMessage(text="This place wasn't subscribed.", private_to=event.actor))


@router.on(CommandInvoked, command("subscriptions"))
async def subscriptions(event: CommandInvoked, ctx: HandlerContext) -> None:
    if ctx.is_staff:
        found = await subscriptions_repo.list_subscriptions(ctx.session, active_only=False)
        active = [s for s in found if s.active]
        disabled = [s for s in found if not s.active and s.disabled_reason != "unsubscribed"]
        by_platform: dict[str, int] = {}
        for s in active:
            by_platform[s.platform] = by_platform.get(s.platform, 0) + 1
        lines = [
            f"{len(active):,} active subscription(s): "
            + (", ".join(f"{p} {n:,}" for p, n in by_platform.items()) or "none")
        ]
        lines.extend(
            f"- disabled: {s.platform} `{s.channel_id}` ({s.disabled_reason})" for s in disabled[:20]
        )
        await ctx.reply(OutboundMessage(text="\n".join(lines), private_to=event.actor))
        return
    found_here = await subscriptions_repo.get_subscription(ctx.session, **_where(event.conversation))  # type: ignore[arg-type]
    if found_here is None or not found_here.active:
        text = "Not subscribed here. `/subscribe` to get status updates."
    else:
        text = f"Subscribed here to: {found_here.components.replace(',', ', ') or 'every component'}."
    await ctx.reply(OutboundMessage(text=text, private_to=event.actor))


@router.on(CommandInvoked, command("announce"), guards=[staff_only("announce")])
async def announce(event: CommandInvoked, ctx: HandlerContext) -> None:
    known: list[Known] = await known_components(ctx.session)
    components, text = parse.split_announcement(ctx.match.rest.strip(), known)
    broadcast = await outbox_repo.create_broadcast(
        ctx.session,
        kind="announce",
        incident_id=None,
        title="Announcement",
        body=text,
        components=components,
        at=ctx.now,
    )
    await _audit(ctx, "announce", text)
    audience = ", ".join(components) if components else "every subscription"
    await _reply_with_progress(ctx, f"Announcing to {audience}.", broadcast.id, broadcast.total)  # type: ignore[arg-type]
