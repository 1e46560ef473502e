"""Staff commands for the knowledge base: load it again after editing, without a restart; check it
(and the drafts awaiting approval); teach it from a closed ticket (the Teach button) or from a
knowledge gap of the report, or decline a gap ("Not ours": questions like it always go to the
team); approve an article drafted from a lesson; forget a phrasing or a declined topic."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from typing import ParamSpec, TypeVar

from bot.core.commands import Option
from bot.core.context import HandlerContext, Services
from bot.core.errors import UsageError, UserError
from bot.core.events import (
    ActionInvoked,
    Actor,
    Button,
    ButtonStyle,
    CommandInvoked,
    InboundEvent,
    OutboundMessage,
)
from bot.core.owed import WritesFirst, kept_work
from bot.core.router import Router, action, command
from bot.handlers.guards import staff_only
from bot.insights import lessons
from bot.insights.lessons import TEACH_GAP, GapRef
from bot.insights.messages import count, inert
from bot.kb import teach
from bot.kb.knowledge_base import KnowledgeBaseHolder
from bot.kb.learned import LEARNED_FILE, DeclinedTopic, LearnedFileError, LearnedPhrasing
from bot.kb.loader import KBError
from bot.kb.model import KBEntry
from storage import tickets_repo

router = Router("kb_admin")
router.group("support kb", "The knowledge base")
router.command("support kb reload", "Load the knowledge base again after editing it", staff=True)
router.command(
    "support kb check", "How the knowledge base answers, and the drafts awaiting approval", staff=True
)
router.command(
    "support kb approve",
    "Publish an article drafted from a lesson",
    Option("id", description="The drafted article's id"),
    staff=True,
)
router.command(
    "support kb forget",
    "Undo a phrasing the bot was taught, or a declined topic",
    Option("id", description="The learned phrasing's id (e.g. p12) or the declined topic's (e.g. n3)"),
    staff=True,
)
router.command(
    "support kb teach",
    "Teach the bot from a knowledge gap (attach, draft, or decline)",
    Option("gap", description="The gap's name, from its Teach button, e.g. g812-7-674a3f10"),
    Option("how", description="attach <article id>, draft <title> | <answer>, or decline"),
    staff=True,
)
USAGE = (
    "/support kb reload | check | approve <id> | forget <id> | "
    "teach <gap> attach <article> | teach <gap> draft <title> | <answer> | teach <gap> decline"
)


@router.on(CommandInvoked, command("support", "kb"), guards=[staff_only("support.kb")])
async def knowledge_base_admin(event: CommandInvoked, ctx: HandlerContext) -> None:
    words = ctx.match.rest.split()
    action = words[0].lower() if words else ""
    if action == "reload" and len(words) == 1:
        # After the commit: a slow load (a large KB, the watcher loading at the same time) would
        # otherwise hold the command's transaction open, and what it has locked, all along.
        ctx.after_commit_kept(Reload())
        return
    if action == "check" and len(words) == 1:
        await ctx.reply(
            OutboundMessage(title="Knowledge base check", text=await _check_text(ctx), private_to=event.actor)
        )
        return
    if action == "teach":
        await _teach_command(event, ctx, ctx.match.rest.strip()[len("teach") :].strip())
        return
    if action in ("approve", "forget") and len(words) == 2:
        ctx.after_commit_kept(ApproveOrForget(action, words[1]))
        return
    raise UsageError("What should I do with the knowledge base?", usage=USAGE, example="/support kb reload")


_P = ParamSpec("_P")
_T = TypeVar("_T")


async def _written(write: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """`write` to learned.yml in a worker thread. Called after the event's commit (see
    `HandlerContext.after_commit_kept`: a retried event would write twice, a failed one would leave
    the file changed), so what goes wrong is told to staff as a `UserError`, never retried."""
    try:
        return await asyncio.to_thread(write, *args, **kwargs)
    except (teach.TeachError, LearnedFileError) as error:
        raise UserError(str(error)) from None
    except OSError as error:
        raise UserError(f"I couldn't write `{LEARNED_FILE}`: {error.strerror or error}.") from None


# What is left for after the commit is kept with the event's claim until done (`@kept_work`): a
# process killed before writing learned.yml leaves it to the next one, which writes it `again`.


@kept_work
@dataclass(frozen=True, slots=True)
class Reload:
    """`/support kb reload`: load the knowledge base again, and say how it went (after `prefix`:
    what a lesson wrote before, `WriteLesson.write`)."""

    prefix: str = ""

    async def __call__(
        self, event: InboundEvent, services: Services, *, again: bool
    ) -> list[OutboundMessage]:
        return [await _reloaded(services, event.actor, prefix=self.prefix)]


@kept_work
@dataclass(frozen=True, slots=True)
class ApproveOrForget:
    """`/support kb approve <id>` or `/support kb forget <id>`: change learned.yml, load it."""

    action: str
    learned_id: str

    async def __call__(
        self, event: InboundEvent, services: Services, *, again: bool
    ) -> list[OutboundMessage]:
        root = services.settings.kb_path  # the folder the KB in service was read from
        if self.action == "approve":
            article = await _written(teach.approve, root, self.learned_id, again=again)
            done = f"Approved `{article.id}` ({inert(article.title)})."
        else:
            done = _forgotten(
                await _written(teach.forget, root, self.learned_id, again=again), self.learned_id
            )
        return [await _reloaded(services, event.actor, prefix=done + "\n")]


def _forgotten(forgotten: LearnedPhrasing | DeclinedTopic | None, learned_id: str) -> str:
    if forgotten is None:  # forgotten by this request's first run, which a kill cut short
        return f"Forgot `{learned_id}`."
    if isinstance(forgotten, DeclinedTopic):
        first = inert(forgotten.questions[0], 120)
        size = count(len(forgotten.questions), "question")
        return (
            f"Forgot declined topic `{forgotten.id}` ({size}, \u201c{first}\u201d): "
            "I may answer such questions again."
        )
    return f"Forgot `{forgotten.id}` (\u201c{inert(forgotten.text)}\u201d, on `{forgotten.entry}`)."


async def _check_text(ctx: HandlerContext) -> str:
    """What `supportbot kb check` says of the KB in service, and the drafts awaiting approval."""
    holder = ctx.services.kb
    lines: list[str] = []
    if isinstance(holder, KnowledgeBaseHolder):
        health = holder.current.health()
        lines += [
            f"{len(holder.entries)} entries loaded from `{ctx.services.settings.kb_path}`.",
            *health.lines(),
        ]
        lines += [f"Warning: {inert(warning, 300)}" for warning in health.warnings[:10]]
    learned, problems = await asyncio.to_thread(teach.learned_read, ctx.services.settings.kb_path)
    lines += [f"The learned file cannot be read: {problem}" for problem in problems[:10]]
    if isinstance(holder, KnowledgeBaseHolder):
        # Which learned items answer nobody is known from the last load, against the team's files.
        unused = [w for w in holder.files.learned_warnings if w not in problems]
        lines += [f"Warning: {warning}" for warning in unused[:10]]
    drafts, declined = learned.pending, learned.declined
    if declined:
        lines.append(f"{count(len(declined), 'declined topic')} (questions like these are escalated):")
        lines += [
            f"- `{d.id}`: {count(len(d.questions), 'question')}, \u201c{inert(d.questions[0], 120)}\u201d,"
            f" declined by {d.taught_by}: undo with `/support kb forget {d.id}`"
            for d in declined[:10]
        ]
    if not drafts:
        lines.append("No drafts await approval.")
    else:
        lines.append(f"{count(len(drafts), 'draft')} awaiting approval:")
        lines += [
            f"- `{d.id}` ({inert(d.title)}), taught by {d.taught_by}"
            + (f" from ticket #{d.from_ticket}" if d.from_ticket else "")
            + f": `/support kb approve {d.id}`"
            for d in drafts
        ]
    return "\n".join(lines)


async def _reloaded(services: Services, actor: Actor, *, prefix: str) -> OutboundMessage:
    """Load the knowledge base again; what to tell `actor` of it, after `prefix`."""
    try:
        summary = await services.kb.reload_async()
    except KBError as error:
        # The previous knowledge base stays in service; staff see exactly what to fix.
        lines = "\n".join(f"- `{problem}`" for problem in error.problems[:10])
        return OutboundMessage(
            text=f"{prefix}The knowledge base has problems, so I kept the previous one:\n{lines}",
            private_to=actor,
        )
    return OutboundMessage(text=prefix + summary.text(), private_to=actor)


# -- teaching: from a closed ticket (the Teach button) or from a knowledge gap --------------------

MAX_GAP_PHRASINGS = 20
"""A gap's most typical questions become phrasings; the replay still asks all of them."""
QUOTED = 3


@dataclass(frozen=True, slots=True)
class Lesson:
    """What staff teach from, the same for a closed ticket and a gap: the stored questions (all
    replayed), the phrasings an article would learn, and the team's answer when there is one."""

    heading: str
    action: str
    """The action id of its buttons: `kb.teach` (a ticket) or `kb.gap` (a gap)."""
    key: str
    """What its buttons carry: the ticket's number or the gap's name."""
    asked: tuple[str, ...]
    phrasings: tuple[str, ...]
    title: str
    answer: str
    from_ticket: int | None
    own_decisions: frozenset[int]
    gap: GapRef | None = None


def teach_button(ticket_number: int) -> Button:
    """On the staff note that a ticket was closed: teach the bot its question."""
    return Button(action_id="kb.teach", label="Teach", value=str(ticket_number))


def _holder(ctx: HandlerContext) -> KnowledgeBaseHolder:
    holder = ctx.services.kb
    if not isinstance(holder, KnowledgeBaseHolder):
        raise UserError("This knowledge base cannot be taught from chat.")
    return holder


async def _ticket_lesson(ctx: HandlerContext) -> Lesson:
    """The clicked ticket's question and the team's last reply on it."""
    number = ctx.match.rest.split(":", 1)[0]
    ticket = await tickets_repo.get_by_number(ctx.session, number=int(number)) if number.isdigit() else None
    if ticket is None:
        raise UserError("That button is broken; the ticket is gone.")
    lines = await tickets_repo.transcript(ctx.session, ticket=ticket, limit=200)
    reply = next((line.text for line in reversed(lines) if line.kind == "staff"), "")
    return Lesson(
        heading=f"ticket #{ticket.number}",
        action="kb.teach",
        key=str(ticket.number),
        asked=(ticket.summary,),
        phrasings=(ticket.summary,),
        title=ticket.summary,
        answer=reply or "(write the answer)",
        from_ticket=ticket.number,
        own_decisions=frozenset({ticket.decision_id} if ticket.decision_id else ()),
    )


async def _gap_lesson(ctx: HandlerContext, holder: KnowledgeBaseHolder, name: str) -> Lesson:
    """The named gap, found again in its report's window: every question in it."""
    ref = GapRef.parse(name)
    if ref is None:
        raise UserError(
            f"`{inert(name, 40)}` is not a gap's name; the Teach buttons of `/support report` give them."
        )
    gap = await lessons.find_gap(ctx.session, kb=holder, ref=ref)
    if gap is None:
        raise UserError(
            f"Gap `{ref.text}` is no longer a gap (its questions were forgotten, or fewer than two people "
            "ask about it now); `/support report` shows the current ones."
        )
    typical = list(dict.fromkeys([*gap.examples, *(q.text for q in gap.members)]))
    return Lesson(
        heading=f"gap `{ref.text}` ({gap.people} people, {count(gap.size, 'question')})",
        action=TEACH_GAP,
        key=ref.text,
        asked=tuple(q.text for q in gap.members),
        phrasings=tuple(typical[:MAX_GAP_PHRASINGS]),
        title=gap.examples[0],
        answer="",
        from_ticket=None,
        own_decisions=frozenset(q.decision_id for q in gap.members),
        gap=ref,
    )


async def _others(ctx: HandlerContext, lesson: Lesson) -> list[tuple[str, str]]:
    """The other articles' recent answers a lesson's replay asks again (to count K)."""
    return await lessons.answered_elsewhere(ctx.session, now=ctx.now, leave_out=lesson.own_decisions)


async def _replay(
    holder: KnowledgeBaseHolder, lesson: Lesson, change: teach.Change, others: list[tuple[str, str]]
) -> str:
    """The lesson's questions and the other stored answers asked again with the change."""
    replayed = await asyncio.to_thread(teach.preview, holder, change, asked=lesson.asked, others=others)
    return replayed.text()


def _quoted(lesson: Lesson) -> str:
    return "\n".join(f"\u201c{inert(q, 200)}\u201d" for q in lesson.asked[:QUOTED])


async def _offer(
    ctx: HandlerContext, holder: KnowledgeBaseHolder, lesson: Lesson, actor: Actor
) -> OutboundMessage:
    """Both ways to teach, each with its replay: attach to the nearest article, or draft one."""
    decision = await holder.ask_async(lesson.phrasings[0])
    nearest = decision.best.entry.id if decision.best is not None else None
    lines = [_quoted(lesson)]
    buttons = []
    others = await _others(ctx, lesson)
    if nearest is not None:
        try:
            attach = teach.attach_change(holder.entries, entry_id=nearest, questions=lesson.phrasings)
        except teach.TeachError as error:
            lines.append(f"Attach to `{nearest}`: {error}")
        else:
            lines.append(f"Attach to `{nearest}`: {await _replay(holder, lesson, attach, others)}")
            buttons.append(_attach_button(lesson, nearest))
    if lesson.answer:
        try:
            draft = _draft(holder, lesson, title=lesson.title, answer=lesson.answer)
        except teach.TeachError as error:
            lines.append(f"Draft a new article: {error}")
        else:
            replayed = await _replay(holder, lesson, draft, others)
            lines.append(f"Draft `{draft.entry.id}` from the team's reply: {replayed}")
            buttons.append(
                Button(action_id=f"{lesson.action}:draft", label="Draft new article", value=lesson.key)
            )
    if lesson.gap is not None:
        try:
            declined = await asyncio.to_thread(teach.preview_decline, holder, lesson.asked, others=others)
        except teach.TeachError as error:
            # Questions of punctuation alone are a gap to the semantic matcher: nothing to keep.
            lines.append(f"Not ours: {error}")
        else:
            lines.append(f"Not ours (escalate questions like these to the team, always): {declined.text()}")
            buttons.append(Button(action_id=f"{lesson.action}:decline", label="Not ours", value=lesson.key))
        lines.append(
            f"Attach to another article: `/support kb teach {lesson.key} attach <article id>`\n"
            f"Draft a new article: `/support kb teach {lesson.key} draft <title> | <answer>`\n"
            f"Decline it: `/support kb teach {lesson.key} decline`"
        )
    return OutboundMessage(
        title=f"Teach the bot from {lesson.heading}",
        text="\n".join(lines),
        buttons=tuple(buttons),
        private_to=actor,
    )


def _attach_button(lesson: Lesson, entry_id: str) -> Button:
    return Button(
        action_id=f"{lesson.action}:attach",
        label=f"Attach to {entry_id}"[:75],
        value=f"{lesson.key}:{entry_id}",
        style=ButtonStyle.PRIMARY,
    )


def _draft(holder: KnowledgeBaseHolder, lesson: Lesson, *, title: str, answer: str) -> teach.Change:
    return teach.draft_change(holder.entries, title=title, questions=lesson.phrasings, answer=answer)


async def _publish(ctx: HandlerContext, lesson: Lesson, change: teach.Change, *, note: str = "") -> None:
    """Once the event committed, write the lesson to learned.yml (a new article as a pending draft)
    and load the KB again; staff hear the ids it got."""
    entry = change.entry
    ctx.after_commit_kept(
        WriteLesson(
            article=entry.id,
            # What a new article says; an existing one's is in the KB already.
            title=entry.title if change.new else "",
            answer=entry.answer if change.new else "",
            questions=change.questions,
            new=change.new,
            taken=change.taken,
            source=f"ticket #{lesson.from_ticket}" if lesson.from_ticket else f"gap `{lesson.key}`",
            from_ticket=lesson.from_ticket,
            note=note,
        )
    )


@kept_work
@dataclass(frozen=True, slots=True)
class WriteLesson(WritesFirst):
    """A lesson (`teach.Change`) to write to learned.yml, from a ticket or a gap (`source`): written
    holding its claim (it holds customers' words, which an erasure takes out), then loaded."""

    article: str
    title: str
    answer: str
    questions: tuple[str, ...]
    new: bool
    taken: frozenset[str]
    source: str
    from_ticket: int | None = None
    note: str = ""

    async def write(self, event: InboundEvent, services: Services, *, again: bool) -> Reload:
        entry = KBEntry(id=self.article, title=self.title, questions=self.questions, answer=self.answer)
        article, ids = await _written(
            teach.publish,
            services.settings.kb_path,
            teach.Change(entry, self.questions, new=self.new, taken=self.taken),
            taught_by=event.actor.key,
            from_ticket=self.from_ticket,
            again=again,
        )
        if self.new:
            done = f"Drafted `{article}` from {self.source}; `/support kb approve {article}` publishes it."
        else:
            what = "the question" if len(ids) == 1 else f"{len(ids)} questions"
            phrasings = ", ".join(f"`{i}`" for i in ids)
            plural = "s" if len(ids) != 1 else ""
            done = f"Taught `{article}` {what} of {self.source} (phrasing{plural} {phrasings})."
        return Reload(prefix=done + (f"\n{self.note}" if self.note else "") + "\n")

    def without_questions(self, theirs: Collection[str]) -> WriteLesson | LessonErased:
        """This lesson without an erased person's questions (`theirs`, as `teach.stored_key` has
        them, so compared as the erasure cleans learned.yml of them); with none left, nothing is
        written, and its teacher hears why (`LessonErased`)."""
        kept = tuple(q for q in self.questions if teach.stored_key(q) not in theirs)
        if kept == self.questions:
            return self
        if not kept:
            return LessonErased(f"lesson from {self.source}")
        left_out = f"{count(len(self.questions) - len(kept), 'question')} left out: {ERASED_WORDS}."
        return replace(self, questions=kept, note="\n".join(filter(None, (self.note, left_out))))


@kept_work
@dataclass(frozen=True, slots=True)
class WriteDeclined(WritesFirst):
    """A gap's questions to write to learned.yml as a declined topic (`/support kb teach <gap> decline`),
    holding its claim as `WriteLesson`, then loaded."""

    gap: str
    questions: tuple[str, ...]
    """The most typical first: a topic keeps at most MAX_DECLINED_QUESTIONS of them."""

    async def write(self, event: InboundEvent, services: Services, *, again: bool) -> Reload:
        topic = await _written(
            teach.decline,
            services.settings.kb_path,
            self.questions,
            taught_by=event.actor.key,
            from_gap=self.gap,
            again=again,
        )
        done = (
            f"Declined gap `{self.gap}` as topic `{topic.id}` ({count(len(topic.questions), 'question')}): "
            f"questions like these now go to the team. Undo: `/support kb forget {topic.id}`."
        )
        return Reload(prefix=done + "\n")

    def without_questions(self, theirs: Collection[str]) -> WriteDeclined | LessonErased:
        """These questions without an erased person's (as `WriteLesson.without_questions`)."""
        kept = tuple(q for q in self.questions if teach.stored_key(q) not in theirs)
        if kept == self.questions:
            return self
        if not kept:
            return LessonErased(f"declined topic from gap `{self.gap}`")
        return replace(self, questions=kept)


ERASED_WORDS = "erased at the person's request"


@kept_work
@dataclass(frozen=True, slots=True)
class LessonErased:
    """In place of a lesson still to be written when every question in it was erased: its teacher
    hears that `what` (`lesson from gap ...`) was not written, and why."""

    what: str

    async def __call__(
        self, event: InboundEvent, services: Services, *, again: bool
    ) -> list[OutboundMessage]:
        text = f"The {self.what} was not written: every question in it was {ERASED_WORDS}."
        return [OutboundMessage(text=text, private_to=event.actor)]


async def _clicked(
    event: ActionInvoked, ctx: HandlerContext, lesson: Lesson, holder: KnowledgeBaseHolder
) -> None:
    arg = ctx.match.captures.get("arg")
    if arg is None:
        await ctx.reply(await _offer(ctx, holder, lesson, event.actor))
        return
    if arg == "decline" and lesson.gap is not None:
        # Once the event committed: staff hear the topic's id.
        ctx.after_commit_kept(WriteDeclined(lesson.key, (*lesson.phrasings, *lesson.asked)))
        return
    try:
        if arg == "attach":
            entry_id = ctx.match.rest.split(":", 1)[1] if ":" in ctx.match.rest else ""
            change = teach.attach_change(holder.entries, entry_id=entry_id, questions=lesson.phrasings)
        elif arg == "draft" and lesson.answer:
            change = _draft(holder, lesson, title=lesson.title, answer=lesson.answer)
        else:
            raise UserError("That button is broken; please click Teach again.")
    except teach.TeachError as error:
        raise UserError(str(error)) from None
    await _publish(ctx, lesson, change)


@router.on(ActionInvoked, action("kb.teach"), guards=[staff_only("kb.teach")])
async def teach_from_ticket(event: ActionInvoked, ctx: HandlerContext) -> None:
    holder = _holder(ctx)
    await _clicked(event, ctx, await _ticket_lesson(ctx), holder)


@router.on(ActionInvoked, action(TEACH_GAP), guards=[staff_only("kb.teach")])
async def teach_from_gap(event: ActionInvoked, ctx: HandlerContext) -> None:
    holder = _holder(ctx)
    await _clicked(event, ctx, await _gap_lesson(ctx, holder, ctx.match.rest.split(":", 1)[0]), holder)


TEACH_USAGE = (
    "/support kb teach <gap> attach <article id> | /support kb teach <gap> draft <title> | <answer>"
    " | /support kb teach <gap> decline"
)


async def _teach_command(event: CommandInvoked, ctx: HandlerContext, rest: str) -> None:
    """`teach <gap> attach <article>`: the replay, and a button to confirm. `teach <gap> draft
    <title> | <answer>`: a draft, inactive until approved, with its replay."""
    name, _, how = rest.partition(" ")
    mode, _, detail = how.strip().partition(" ")
    mode, detail = mode.lower(), detail.strip()
    title, bar, answer = ctx.match.as_typed(detail).partition("|")  # the article's words, as typed
    if (
        not name
        or (mode == "attach" and (not detail or " " in detail))
        or (mode == "draft" and not (bar and title.strip() and answer.strip()))
        or (mode == "decline" and detail)
        or mode not in ("attach", "draft", "decline")
    ):
        raise UsageError(
            "Which gap, and how should I teach it?",
            usage=TEACH_USAGE,
            example="/support kb teach g812-7-674a3f10 draft Export to CSV | Open Reports, then Export.",
        )
    holder = _holder(ctx)
    lesson = await _gap_lesson(ctx, holder, name)
    if mode == "decline":
        try:
            declining = await asyncio.to_thread(
                teach.preview_decline, holder, lesson.asked, others=await _others(ctx, lesson)
            )
        except teach.TeachError as error:
            raise UserError(str(error)) from None
        await ctx.reply(
            OutboundMessage(
                title=f"Decline {lesson.heading}",
                text=f"{_quoted(lesson)}\nNot ours: {declining.text()}",
                buttons=(Button(action_id=f"{lesson.action}:decline", label="Not ours", value=lesson.key),),
                private_to=event.actor,
            )
        )
        return
    try:
        if mode == "attach":
            change = teach.attach_change(holder.entries, entry_id=detail, questions=lesson.phrasings)
        else:
            change = _draft(holder, lesson, title=title, answer=answer)
    except teach.TeachError as error:
        raise UserError(str(error)) from None
    replayed = await _replay(holder, lesson, change, await _others(ctx, lesson))
    if mode == "draft":
        # A draft answers nobody until approved: the replay goes with it, and approval publishes.
        await _publish(ctx, lesson, change, note=replayed)
        return
    await ctx.reply(
        OutboundMessage(
            title=f"Teach the bot from {lesson.heading}",
            text=f"{_quoted(lesson)}\nAttach to `{detail}`: {replayed}",
            buttons=(_attach_button(lesson, detail),),
            private_to=event.actor,
        )
    )
