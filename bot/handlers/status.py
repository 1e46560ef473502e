"""Status questions: `/status [component]` and natural "is X down?" messages, answered from the
status snapshot. A customer who asks about an active incident is told here when it is resolved."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Sequence

from bot.core.commands import Option, Suggest
from bot.core.context import HandlerContext
from bot.core.events import CommandInvoked, MessageReceived, OutboundMessage
from bot.core.router import Allow, Match, Router, Skip, Verdict, command
from bot.status import messages, parse
from bot.status.components import Known, mentioned
from bot.status.model import ComponentStatus
from bot.status.snapshot import Snapshot, load_snapshot
from storage import status_repo
from storage.models import Incident, StatusComponent

router = Router("status")
router.command(
    "status",
    "Is everything working? The state of every component, or of one",
    Option("component", required=False, suggest=Suggest.COMPONENT, description="Only this component"),
)


async def _link(ctx: HandlerContext, incident: Incident, component: str) -> bool:
    """Link the customer to the incident they were told of; False when it is resolved by now (a
    resolve committed after the snapshot was read), so the answer must be read again."""
    where = ctx.event.conversation
    if where.thread_id is None and not where.is_direct:
        # A question in a channel is answered in a thread under it; the resolve notice goes there too.
        message_id = getattr(ctx.event, "message_id", None)
        if message_id:
            where = where.in_thread(message_id)
    assert incident.id is not None
    linked = await status_repo.link_customer(
        ctx.session,
        incident_id=incident.id,
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
    return linked is not status_repo.Linked.RESOLVED


_READS = 3
"""Times a customer's status question reads the snapshot again, at most: each follows a resolve
that committed while the question was answered, a few milliseconds' window."""


async def _snapshot(ctx: HandlerContext, components: Sequence[StatusComponent] | None = None) -> Snapshot:
    return await load_snapshot(
        ctx.session, now=ctx.now, page_url=ctx.services.settings.status_link, components=components
    )


async def answer_components(
    ctx: HandlerContext, names: Sequence[str], *, asked: bool, snapshot: Snapshot
) -> None:
    async def linked(snapshot: Snapshot) -> bool:
        for name in names:
            incidents = snapshot.incidents_for(name)
            if asked and incidents and not ctx.is_staff and not await _link(ctx, incidents[0], name):
                return False
        return True

    snapshot = await _read_until_linked(ctx, snapshot, linked)
    by_name = {c.name: c for c in snapshot.components}
    parts = [messages.component_answer(by_name[n], snapshot, asked=asked, with_page=False) for n in names]
    # One status-page line at the end, not one per component.
    page = messages.page_line(snapshot.page_url)
    await ctx.reply(OutboundMessage(text="\n\n".join(parts) + (f"\n{page}" if page else "")))


async def answer_overview(ctx: HandlerContext, *, asked: bool, snapshot: Snapshot) -> None:
    async def linked(snapshot: Snapshot) -> bool:
        for incident in snapshot.active if asked and not ctx.is_staff else []:
            names = status_repo.split_names(incident.components)
            if not await _link(ctx, incident, names[0] if names else ""):
                return False
        return True

    snapshot = await _read_until_linked(ctx, snapshot, linked)
    title, text = messages.status_overview(snapshot)
    await ctx.reply(OutboundMessage(title=title, text=text))


async def _read_until_linked(
    ctx: HandlerContext, snapshot: Snapshot, linked: Callable[[Snapshot], Awaitable[bool]]
) -> Snapshot:
    """The snapshot to answer from: the customer is linked to every ongoing incident it shows, so
    the "I'll tell you when it's resolved" it promises is kept. An incident resolved after the
    snapshot was read, before the link, has told everyone it is going to: read again."""
    for _ in range(_READS):
        if await linked(snapshot):
            break
        snapshot = await _snapshot(ctx, snapshot.components)
    return snapshot


@router.on(CommandInvoked, command("status"))
async def status_command(event: CommandInvoked, ctx: HandlerContext) -> None:
    query = ctx.match.rest.strip()
    if not query:
        await answer_overview(ctx, asked=False, snapshot=await _snapshot(ctx))
        return
    components = await status_repo.list_components(ctx.session)
    names = parse.components_arg(query, [Known.of(c) for c in components])
    await answer_components(ctx, names, asked=True, snapshot=await _snapshot(ctx, components))


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


async def asks_about_an_outage(event: MessageReceived, ctx: HandlerContext) -> Verdict:
    """Allows with the status snapshot read (the answer is made from it)."""
    components = await status_repo.list_components(ctx.session)
    if ctx.match.data == "clear":
        return Allow(await _snapshot(ctx, components))
    # "my invoice export is broken" is a support question, not a status one: let the KB take it.
    names = mentioned(event.text, [Known.of(c) for c in components])
    if not names:
        return Skip()
    # So is "the API returns 500 errors" while the API is fine: it is their problem, which an article
    # or a person solves. Told "api is operational" instead, they had nowhere to go: saying what
    # they see got the same answer again.
    snapshot = await _snapshot(ctx, components)
    by_name = {c.name: c for c in snapshot.components}
    troubled = [
        name
        for name in names
        if snapshot.status_of(by_name[name]) != ComponentStatus.OPERATIONAL or snapshot.incidents_for(name)
    ]
    return Allow(snapshot) if troubled else Skip()


@router.on(MessageReceived, status_question, guards=[asks_about_an_outage])
async def status_question_answer(event: MessageReceived, ctx: HandlerContext) -> None:
    snapshot: Snapshot = ctx.allowed
    names = mentioned(event.text, [Known.of(c) for c in snapshot.components])
    if names:
        await answer_components(ctx, names, asked=True, snapshot=snapshot)
    else:
        await answer_overview(ctx, asked=True, snapshot=snapshot)
