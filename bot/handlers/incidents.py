"""Staff's status operations: `/incident` (open, update, resolve, postmortem), `/component` (set,
add, history), `/maintenance schedule` and `/announce`. Each change and its broadcast are queued in
the command's transaction; the broadcast worker sends them. Titles, messages and notes are relayed as typed
(`Match.as_typed`): the no-break space before a French "!" stays."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta

from bot.core.commands import Option, OptionKind, Suggest
from bot.core.context import HandlerContext, Services
from bot.core.errors import UserError
from bot.core.events import CommandInvoked, OutboundMessage, SentRef
from bot.core.owed import sent_hook
from bot.core.router import Guard, Router, command
from bot.handlers import guards
from bot.handlers.guards import audit
from bot.status import messages, parse, workflows
from bot.status.components import Known, resolve
from bot.status.model import OPEN_STAGES, ComponentStatus, Impact, IncidentStatus, MaintenanceStatus
from bot.status.snapshot import known_components
from storage import outbox_repo, status_repo
from storage.models import Broadcast, Incident
from storage.session import DbSession

router = Router("incidents")
COMPONENT = Option("name", suggest=Suggest.COMPONENT)
COMPONENTS = Option("components", suggest=Suggest.COMPONENT, description="e.g. api,payments")
INCIDENT = Option("number", kind=OptionKind.NUMBER, label="id")
router.group("incident", "Declare and update incidents")
INCIDENT_OPEN = parse.Usage.of(
    router.command(
        "incident open",
        "Open an incident and tell every subscribed channel",
        COMPONENTS,
        Option("impact", choices=tuple(Impact)),
        Option("title"),
        staff=True,
    ),
    "/incident open api,payments major Card payments failing",
)
INCIDENT_UPDATE = parse.Usage.of(
    router.command(
        "incident update",
        "Post an update (and a new impact), threaded under the first notice; reopens a resolved one",
        INCIDENT,
        Option("status", choices=OPEN_STAGES),
        Option("impact", required=False, keyword=True, choices=tuple(Impact)),
        Option("message", after_dashes=True),
        staff=True,
    ),
    "/incident update 12 identified impact=major A bad deploy; rolling back",
)
INCIDENT_RESOLVE = parse.Usage.of(
    router.command(
        "incident resolve",
        "Resolve; customers who asked are told",
        INCIDENT,
        Option("message", required=False),
        staff=True,
    ),
    "/incident resolve 12 Payments are back to normal",
)
INCIDENT_POSTMORTEM = parse.Usage.of(
    router.command(
        "incident postmortem",
        "Publish a resolved incident's postmortem on the status page (not broadcast)",
        INCIDENT,
        Option("text", description="What happened, why, and what changes"),
        staff=True,
    ),
    "/incident postmortem 12 A config change cut the card processor off; changes now roll out slowly",
)
router.group("component", "Status components")
COMPONENT_SET = parse.Usage.of(
    router.command(
        "component set",
        "Set a component's status (history is kept)",
        COMPONENT,
        Option("status", choices=tuple(ComponentStatus)),
        staff=True,
    ),
    "/component set payments degraded_performance",
)
COMPONENT_ADD = parse.Usage.of(
    router.command(
        "component add",
        "Add a component",
        Option("name", description="lowercase letters, digits, - or _"),
        Option("group", required=False, keyword=True, description="One word, e.g. Apps"),
        Option("aliases", required=False, keyword=True, label="a,b", description="e.g. find,lookup"),
        staff=True,
    ),
    "/component add search group=Apps aliases=find",
)
COMPONENT_HISTORY = parse.Usage.of(
    router.command("component history", "A component's status history", COMPONENT, staff=True),
    "/component history payments",
)
router.group("maintenance", "Maintenance windows")
MAINTENANCE_SCHEDULE = router.command(
    "maintenance schedule",
    "Schedule maintenance and announce it",
    COMPONENTS,
    Option("start", description="UTC, as YYYY-MM-DDThh:mmZ"),
    Option("end", description="UTC, as YYYY-MM-DDThh:mmZ"),
    Option("title"),
    staff=True,
)


def maintenance_usage(now: datetime) -> parse.Usage:
    """`/maintenance schedule`'s usage, its example a window tomorrow 02:00-03:00 UTC: staff copy
    the example, and any fixed date in it is soon refused as "already over"."""
    start = datetime.combine(now.astimezone(UTC).date() + timedelta(days=1), time(2), tzinfo=UTC)
    window = " ".join(f"{at:%Y-%m-%dT%H:%MZ}" for at in (start, start + timedelta(hours=1)))
    return parse.Usage.of(MAINTENANCE_SCHEDULE, f"/maintenance schedule payments {window} Database upgrade")


MAINTENANCE_END = parse.Usage.of(
    router.command(
        "maintenance end",
        "End a window early, or cancel one, and tell the subscriptions",
        INCIDENT,
        Option("note", required=False),
        staff=True,
    ),
    "/maintenance end 3 The upgrade finished early",
)
ANNOUNCE = parse.Usage.of(
    router.command(
        "announce",
        "Broadcast an announcement to the subscriptions",
        replace(
            COMPONENTS,
            required=False,
            many=True,
            description="Only subscriptions to these, e.g. api payments",
        ),
        Option("text", after_dashes=True, description="What to announce"),
        staff=True,
    ),
    "/announce api Version 2.3 is out: faster search",
)


def staff_only(action: str) -> Guard:
    return guards.staff_only(action, hint="If something looks broken, ask me `/status`.")


def page_url(ctx: HandlerContext) -> str | None:
    return ctx.services.settings.status_link


# -- broadcasting a change ---------------------------------------------------------------------


@sent_hook
@dataclass(frozen=True, slots=True)
class RememberProgressMessage:
    """After the command's reply is posted: remember it (progress edits go there) and wake the worker."""

    broadcast_id: int

    async def __call__(self, session: DbSession, ref: SentRef, services: Services) -> None:
        await outbox_repo.set_progress_message(
            session,
            broadcast_id=self.broadcast_id,
            platform=ref.platform.value,
            workspace_id=ref.workspace_id,
            channel_id=ref.channel_id,
            message_id=ref.message_id,
        )
        services.broadcaster.wake()


async def _reply_with_progress(ctx: HandlerContext, text: str, broadcast: Broadcast) -> None:
    assert broadcast.id is not None  # flushed by create_broadcast
    total = broadcast.total
    suffix = f"\nBroadcasting to {total:,} recipient(s)…" if total else "\nNo subscriptions to tell."
    # Visible in the channel (not private) so that it can be edited with the broadcast's progress.
    await ctx.reply(OutboundMessage(text=text + suffix), on_sent=RememberProgressMessage(broadcast.id))


# -- incidents -----------------------------------------------------------------------------------


@router.on(CommandInvoked, command("incident", "open"), guards=[staff_only("incident.open")])
async def incident_open(event: CommandInvoked, ctx: HandlerContext) -> None:
    known = await known_components(ctx.session)
    args = parse.parse_open(ctx.match.rest, known, INCIDENT_OPEN)
    args = replace(args, title=ctx.match.as_typed(args.title))
    components = [await status_repo.get_component(ctx.session, name=n) for n in args.components]
    incident = await workflows.open_incident(
        ctx.session,
        title=args.title,
        impact=args.impact,
        components=[c for c in components if c is not None],
        actor_key=event.actor.key,
        at=ctx.now,
    )
    assert incident.id is not None
    timeline = await status_repo.updates_for(ctx.session, incident_ids=[incident.id])
    title, text = messages.incident_notice(incident, timeline[incident.id][0], page_url=page_url(ctx))
    broadcast = await outbox_repo.create_broadcast(
        ctx.session,
        kind="open",
        incident_id=incident.id,
        title=title,
        body=text,
        components=args.components,
        at=ctx.now,
    )
    await audit(ctx, "incident.open", f"#{incident.id} {args.impact} {args.title}")
    await _reply_with_progress(
        ctx,
        f"Opened incident **#{incident.id}** ({args.impact}) on {', '.join(args.components)}: {args.title}",
        broadcast,
    )


async def _incident_or_error(ctx: HandlerContext, number: int, *, reopen: bool = False) -> Incident:
    """The incident, locked; a resolved one only to `reopen` it, within `workflows.REOPEN_WITHIN`."""
    # Locked and read fresh: of two staff resolving (or reopening) it at once, the second sees what
    # the first did, and the subscriptions hear of it once. To resolve it, the lock also waits for
    # customers being linked to it at that moment, so that they are told.
    incident = await status_repo.get_incident(
        ctx.session, incident_id=number, for_update=True, to_resolve=not reopen
    )
    if incident is None:
        raise UserError(f"There is no incident #{number}. `/status` lists the open ones.")
    if incident.status != IncidentStatus.RESOLVED or (reopen and workflows.may_reopen(incident, at=ctx.now)):
        return incident
    days = workflows.REOPEN_WITHIN.days
    if reopen:
        raise UserError(
            f"Incident #{number} was resolved more than {days} days ago, too long to reopen it. "
            "Open a new one if it's back."
        )
    if workflows.may_reopen(incident, at=ctx.now):
        raise UserError(
            f"Incident #{number} is already resolved. If it's back, reopen it with "
            f"`/incident update {number} investigating <message>`."
        )
    raise UserError(f"Incident #{number} is already resolved. Open a new one if it's back.")


async def _post_update(
    ctx: HandlerContext,
    incident: Incident,
    status: IncidentStatus,
    message: str,
    impact: Impact | None = None,
) -> None:
    impact_before = incident.impact
    resolved = status is IncidentStatus.RESOLVED
    reopened = not resolved and incident.status == IncidentStatus.RESOLVED
    update = await workflows.post_update(
        ctx.session,
        incident=incident,
        status=status,
        body=message,
        actor_key=ctx.event.actor.key,
        at=ctx.now,
        impact=impact,
    )
    title, text = messages.update_notice(incident, update, reopened=reopened)
    recipients: list[tuple[str, outbox_repo.Recipient, str]] = []
    if resolved:
        assert incident.id is not None
        links = await status_repo.links_to_notify(ctx.session, incident_id=incident.id)
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
        kind="resolve" if resolved else "reopen" if reopened else "update",
        incident_id=incident.id,
        title=title,
        body=text,
        components=status_repo.split_names(incident.components),
        at=ctx.now,
        edit_first_notice=True,
        recipients=recipients,
    )
    action = "incident.resolve" if resolved else "incident.reopen" if reopened else "incident.update"
    moved = f"impact {impact_before} → {incident.impact}" if incident.impact != impact_before else ""
    said = ", ".join(part for part in (f"reopened ({status})" if reopened else "", moved) if part)
    await audit(ctx, action, f"#{incident.id} {f'{said}: ' if said else ''}{message}")
    verb = "Resolved" if resolved else f"Reopened ({status})" if reopened else f"Updated ({status})"
    told = f"; telling {len(recipients)} customer(s) who asked" if recipients else ""
    await _reply_with_progress(
        ctx,
        f"{verb} incident **#{incident.id}** {incident.title}{f'; {moved}' if moved else ''}{told}",
        broadcast,
    )


@router.on(CommandInvoked, command("incident", "update"), guards=[staff_only("incident.update")])
async def incident_update(event: CommandInvoked, ctx: HandlerContext) -> None:
    args = parse.parse_update(ctx.match.rest, INCIDENT_UPDATE)
    args = replace(args, message=ctx.match.as_typed(args.message))
    # `resolved` as the status resolves it; said of one resolved already, it reopens nothing.
    reopen = args.status is not IncidentStatus.RESOLVED
    incident = await _incident_or_error(ctx, args.incident_id, reopen=reopen)
    await _post_update(ctx, incident, args.status, args.message, args.impact)


@router.on(CommandInvoked, command("incident", "resolve"), guards=[staff_only("incident.resolve")])
async def incident_resolve(event: CommandInvoked, ctx: HandlerContext) -> None:
    number, message = parse.parse_resolve(ctx.match.rest, INCIDENT_RESOLVE)
    message = ctx.match.as_typed(message)
    incident = await _incident_or_error(ctx, number)
    await _post_update(ctx, incident, IncidentStatus.RESOLVED, message or "This incident has been resolved.")


@router.on(CommandInvoked, command("incident", "postmortem"), guards=[staff_only("incident.postmortem")])
async def incident_postmortem(event: CommandInvoked, ctx: HandlerContext) -> None:
    number, text = parse.parse_postmortem(ctx.match.rest, INCIDENT_POSTMORTEM)
    text = ctx.match.as_typed(text)
    incident = await status_repo.get_incident(ctx.session, incident_id=number, for_update=True)
    if incident is None:
        raise UserError(f"There is no incident #{number}. The status page lists them.")
    if incident.status != IncidentStatus.RESOLVED:
        raise UserError(
            f"Incident #{number} is not resolved yet: its postmortem is published once it is over "
            f"(`/incident resolve {number}`)."
        )
    replaced = await status_repo.publish_postmortem(ctx.session, incident=incident, body=text, at=ctx.now)
    await audit(ctx, "incident.postmortem", f"#{number} {'replaced' if replaced else 'published'}: {text}")
    verb = "Replaced the postmortem published before for" if replaced else "Published the postmortem of"
    url = page_url(ctx)
    where = f": {url}history#incident-{number}" if url else " once one is served."
    await ctx.reply(
        f"{verb} incident **#{number}** {incident.title}. Subscribers are not notified; "
        f"it shows on the status page{where}"
    )


@router.on(CommandInvoked, command("incident"), guards=[staff_only("incident")])
async def incident_usage(event: CommandInvoked, ctx: HandlerContext) -> None:
    usages = (INCIDENT_OPEN, INCIDENT_UPDATE, INCIDENT_RESOLVE, INCIDENT_POSTMORTEM)
    lines = [f"- `{u.usage}`, e.g. `{u.example}`" for u in usages]
    await ctx.reply(OutboundMessage(text="Incident commands:\n" + "\n".join(lines), private_to=event.actor))


# -- components and maintenance ------------------------------------------------------------------


@router.on(CommandInvoked, command("component", "set"), guards=[staff_only("component.set")])
async def component_set(event: CommandInvoked, ctx: HandlerContext) -> None:
    known = await known_components(ctx.session)
    name, status = parse.parse_component_set(ctx.match.rest, known, COMPONENT_SET)
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
    await audit(ctx, "component.set", f"{name} {status}")
    if change is None:
        await ctx.reply(OutboundMessage(text=f"**{name}** is already {status}.", private_to=event.actor))
        return
    await ctx.reply(f"**{name}**: {messages.STATUS_LABEL[before]} → {messages.STATUS_LABEL[status]}.")


@router.on(CommandInvoked, command("component", "add"), guards=[staff_only("component.add")])
async def component_add(event: CommandInvoked, ctx: HandlerContext) -> None:
    args = parse.parse_component_add(ctx.match.rest, COMPONENT_ADD)
    known = await known_components(ctx.session)
    clash = {k.name for k in known} | {a for k in known for a in k.aliases}
    taken = [n for n in (args.name, *args.aliases) if n in clash]
    if taken:
        raise UserError(f"`{taken[0]}` is already a component name or alias.")
    await status_repo.add_component(
        ctx.session, name=args.name, group=args.group, aliases=args.aliases, at=ctx.now
    )
    await audit(ctx, "component.add", args.name)
    await ctx.reply(f"Added component **{args.name}**{f' in {args.group}' if args.group else ''}.")


@router.on(CommandInvoked, command("component", "history"), guards=[staff_only("component.history")])
async def component_history(event: CommandInvoked, ctx: HandlerContext) -> None:
    known = await known_components(ctx.session)
    query = ctx.match.rest.strip()
    if not query:
        raise COMPONENT_HISTORY.error("Which component?")
    name = resolve(query, known)
    if name is None:
        raise parse.UnknownComponent(query, known)
    component = await status_repo.get_component(ctx.session, name=name)
    assert component is not None and component.id is not None
    changes = await status_repo.component_history(ctx.session, component_id=component.id)
    lines = [
        f"- {messages.at(c.at)}: {c.old_status} → {c.new_status} ({c.reason or c.actor_key})"
        for c in changes[-15:]
    ]
    text = "\n".join(lines) if lines else "No changes yet."
    await ctx.reply(OutboundMessage(title=f"{name}: {component.status}", text=text, private_to=event.actor))


@router.on(CommandInvoked, command("component"), guards=[staff_only("component")])
async def component_usage(event: CommandInvoked, ctx: HandlerContext) -> None:
    usages = (COMPONENT_SET, COMPONENT_ADD, COMPONENT_HISTORY)
    lines = [f"- `{u.usage}`, e.g. `{u.example}`" for u in usages]
    await ctx.reply(OutboundMessage(text="Component commands:\n" + "\n".join(lines), private_to=event.actor))


@router.on(CommandInvoked, command("maintenance"), guards=[staff_only("maintenance.schedule")])
async def maintenance_schedule(event: CommandInvoked, ctx: HandlerContext) -> None:
    known = await known_components(ctx.session)
    args = parse.parse_maintenance(ctx.match.rest, known, maintenance_usage(ctx.now), now=ctx.now)
    args = replace(args, title=ctx.match.as_typed(args.title))
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
    await audit(ctx, "maintenance.schedule", f"#{window.id} {args.title}")
    await _reply_with_progress(ctx, f"Scheduled maintenance **#{window.id}**: {args.title}", broadcast)


@router.on(CommandInvoked, command("maintenance", "end"), guards=[staff_only("maintenance.end")])
async def maintenance_end(event: CommandInvoked, ctx: HandlerContext) -> None:
    number, note = parse.parse_maintenance_end(ctx.match.rest, MAINTENANCE_END)
    note = ctx.match.as_typed(note)
    window = await status_repo.get_incident(
        ctx.session, incident_id=number, kind="maintenance", for_update=True
    )
    if window is None:
        raise UserError(f"There is no maintenance window #{number}. The status page lists them.")
    assert window.ends_at is not None
    if window.status == MaintenanceStatus.COMPLETED or window.ends_at <= ctx.now:
        raise UserError(f"Maintenance #{number} is already over.")
    cancelled = await workflows.end_maintenance(
        ctx.session, window=window, note=note, actor_key=event.actor.key, at=ctx.now
    )
    title, text = messages.maintenance_ended_notice(window, cancelled=cancelled, note=note)
    broadcast = await outbox_repo.create_broadcast(
        ctx.session,
        kind="announce",
        incident_id=None,
        title=title,
        body=text,
        components=status_repo.split_names(window.components),
        at=ctx.now,
    )
    await audit(ctx, "maintenance.end", f"#{window.id} {note}")
    verb = "Cancelled" if cancelled else "Ended"
    await _reply_with_progress(ctx, f"{verb} maintenance **#{window.id}**: {window.title}", broadcast)


# -- announcements -------------------------------------------------------------------------------


@router.on(CommandInvoked, command("announce"), guards=[staff_only("announce")])
async def announce(event: CommandInvoked, ctx: HandlerContext) -> None:
    known: list[Known] = await known_components(ctx.session)
    components, text = parse.split_announcement(ctx.match.rest, known, ANNOUNCE)
    text = ctx.match.as_typed(text)
    broadcast = await outbox_repo.create_broadcast(
        ctx.session,
        kind="announce",
        incident_id=None,
        title="Announcement",
        body=text,
        components=components,
        at=ctx.now,
    )
    await audit(ctx, "announce", text)
    audience = ", ".join(components) if components else "every subscription"
    await _reply_with_progress(ctx, f"Announcing to {audience}.", broadcast)
