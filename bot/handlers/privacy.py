"""Staff commands for privacy requests: export what is stored about a person, erase it (after a click)."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from functools import partial
from pathlib import Path

from bot.core import privacy
from bot.core.commands import Option
from bot.core.context import HandlerContext, KeptWork, Services
from bot.core.errors import UsageError, UserError
from bot.core.events import ActionInvoked, Button, ButtonStyle, CommandInvoked, InboundEvent, OutboundMessage
from bot.core.owed import Tell, WritesFirst, kept_work
from bot.core.router import Router, action, command
from bot.handlers.guards import audit, staff_only
from bot.handlers.kb_admin import WriteDeclined, WriteLesson
from bot.insights.messages import inert
from bot.kb import teach
from bot.kb.knowledge_base import KnowledgeBaseHolder
from bot.kb.learned import LearnedFileBusy
from bot.kb.loader import KBError
from storage.session import DbSession

log = logging.getLogger(__name__)

router = Router("privacy")
router.group("support privacy", "Privacy requests: what is stored about a person")
PERSON = Option("person", label="platform:user_id", description=f"Whose data, e.g. {privacy.EXAMPLE}")
router.command(
    "support privacy export", "Write everything stored about a person to a file", PERSON, staff=True
)
router.command(
    "support privacy erase", "Erase a person's words and identity (asks to confirm)", PERSON, staff=True
)

ERASE = "privacy.erase"
USAGES = {
    "export": f"/support privacy export {PERSON.usage}",
    "erase": f"/support privacy erase {PERSON.usage}",
}


def _subject(text: str, what: str) -> str:
    usage, example = USAGES[what], f"/support privacy {what} {privacy.EXAMPLE}"
    if not text.strip():
        raise UsageError("Whose data? Name the person as platform:user_id.", usage=usage, example=example)
    try:
        return privacy.parse_subject(text)
    except privacy.SubjectError as error:
        raise UsageError(f"{error}.", usage=usage, example=example) from None


@router.on(CommandInvoked, command("support", "privacy"), guards=[staff_only("support.privacy")])
async def privacy_request(event: CommandInvoked, ctx: HandlerContext) -> None:
    what, _, rest = ctx.match.rest.strip().partition(" ")
    if what.lower() == "export":
        await _export(event, ctx, _subject(rest, "export"))
    elif what.lower() == "erase":
        await _ask_to_erase(event, ctx, _subject(rest, "erase"))
    else:
        raise UsageError(
            "Export or erase?",
            usage=f"{USAGES['export']} | erase {PERSON.usage}",
            example=f"/support privacy export {privacy.EXAMPLE}",
        )


async def _export(event: CommandInvoked, ctx: HandlerContext, subject: str) -> None:
    document = await privacy.export(ctx.session, subject=subject, now=ctx.now)
    if document is None:
        await ctx.reply(OutboundMessage(text=f"Nothing is stored about `{subject}`.", private_to=event.actor))
        return
    await audit(ctx, "privacy.export", subject)
    # The file after the commit: an export tried again is written once, and one whose event failed
    # (answered with an apology) leaves no copy of their data behind that nobody was told of. Kept
    # with the claim until written: a process killed first leaves it to the next one.
    ctx.after_commit_kept(
        WriteExport(subject, at=ctx.now, document=privacy.dumps(document), summary=privacy.summary(document))
    )


@kept_work
@dataclass(frozen=True, slots=True)
class WriteExport(WritesFirst):
    """What was stored about `subject` at `at` (`document`, as the file holds it), to write to a
    file of its own, holding its claim (an erasure of them, waiting for it, then deletes the file;
    one that came first dropped this work); staff hear where it is."""

    subject: str
    at: datetime
    document: str
    summary: str

    async def write(self, event: InboundEvent, services: Services, *, again: bool) -> Tell:
        folder = privacy.exports_folder(services.settings.database_url)
        first = privacy.export_path(folder, subject=self.subject, now=self.at)
        try:
            path = await asyncio.to_thread(_write_new, self.document, first, again=again)
        except OSError as error:
            raise UserError(
                f"I couldn't write the export to `{error.filename or first}`: {error.strerror}."
            ) from None
        told = OutboundMessage(
            title=f"Exported what is stored about {self.subject}",
            text=(
                f"{self.summary}.\nThe file is on the bot's server: `{path.resolve()}`. "
                "Send it to them securely, then delete it; erasing them deletes it too."
            ),
            private_to=event.actor,
        )
        return Tell((told,))


def _write_new(text: str, first: Path, *, again: bool) -> Path:
    """Write the export to `first`, or beside it when that is taken (asked again within the second):
    never over a file. `again`: a file holding this very export was written by the run a kill cut
    short, and is the one; one holding its beginning is the one the kill cut short while writing,
    finished here (beside it, a second file would leave that torn copy of their data, which nobody
    was told of, on the server)."""
    first.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    document, whole = json.loads(text), text.encode("utf-8")
    path = first
    for number in range(2, 100):
        held = _held(path) if again else None
        if held == whole:
            return path
        if held is not None and whole.startswith(held):  # bytes: it may end inside a character
            _finish(path, whole)
            return path
        try:
            privacy.write(document, path)
            return path
        except FileExistsError:
            path = first.with_stem(f"{first.stem}-{number}")
    raise FileExistsError(errno.EEXIST, "too many exports this second", str(path))


def _held(path: Path) -> bytes | None:
    """What the file at `path` holds, None when there is none."""
    try:
        return path.read_bytes()
    except OSError:
        return None


def _finish(path: Path, whole: bytes) -> None:
    """Write `whole` over the torn export at `path`, which exists: its owner-only mode stays."""
    descriptor = os.open(path, os.O_WRONLY | os.O_TRUNC)
    with os.fdopen(descriptor, "wb") as file:
        file.write(whole)


async def _ask_to_erase(event: CommandInvoked, ctx: HandlerContext, subject: str) -> None:
    document = await privacy.export(ctx.session, subject=subject, now=ctx.now)
    if document is None:
        await ctx.reply(OutboundMessage(text=f"Nothing is stored about `{subject}`.", private_to=event.actor))
        return
    folder = privacy.exports_folder(ctx.services.settings.database_url)
    exports = await asyncio.to_thread(privacy.exports_text, folder, subject=subject)
    await ctx.reply(
        OutboundMessage(
            title=f"Erase everything about {subject}?",
            text=(
                f"Stored: {privacy.summary(document)}.\nTheir words become \u201c{privacy.ERASED}\u201d, "
                "their id and name a pseudonym; counts and ratings stay. Their open tickets are closed. "
                f"{exports}{' ' if exports else ''}This cannot be undone."
            ),
            buttons=(
                Button(action_id=ERASE, label=f"Erase {subject}", value=subject, style=ButtonStyle.DANGER),
            ),
            private_to=event.actor,
        )
    )


@router.on(ActionInvoked, action(ERASE), guards=[staff_only(ERASE)])
async def erase_button(event: ActionInvoked, ctx: HandlerContext) -> None:
    try:
        subject = privacy.parse_subject(ctx.match.rest)
    except privacy.SubjectError:
        raise UserError(f"That button is broken; use `{USAGES['erase']}` again instead.") from None
    erasure = await privacy.erase(ctx.session, subject=subject, now=ctx.now)
    if erasure is None:
        await ctx.reply(
            OutboundMessage(
                text=f"Nothing is stored about `{subject}` (erased already?).", private_to=event.actor
            )
        )
        return
    erasure = await forget_owed(ctx.session, erasure)
    erasure = await _forget_learned(ctx, erasure)
    erasure = await _forget_exports(ctx, erasure)
    await audit(ctx, ERASE, f"{erasure.pseudonym}: {erasure.rows} rows, {erasure.learned} learned questions")
    # The KB in service loads the cleaned file once the erasure committed; the reply, which says
    # what that load left undone, follows it.
    ctx.after_commit(partial(_reload_and_say, event, ctx, erasure))


async def _forget_learned(ctx: HandlerContext, erasure: privacy.Erasure) -> privacy.Erasure:
    """Their questions out of learned.yml too: staff may have taught the bot their exact words.
    Inside the transaction, before its claim, not after its commit: a process killed between the
    two would leave their words in the file for good (the claim makes any redelivery a duplicate)
    while the audit says they were erased. A try rolled back has only removed what the person
    asked to have erased, which the next try (or staff, clicking again) erases in the database
    too. The database erasure stands when the file cannot be cleaned (`teach.forget_erased`), but
    not while another process holds it: committed, it would leave their words in the file for good
    (clicked again, nothing is stored about them), so it is rolled back with a `UserError`.

    `learned` counts their questions the file held when this event was first tried: a try after
    a conflict or a dropped connection finds them gone, removed by the try before. (A process
    killed between the removal and the commit forgets that count: the next process's try records
    none, though the file is as clean.)"""
    try:
        erasure = await asyncio.to_thread(teach.forget_erased, ctx.services.settings.kb_path, erasure)
    except LearnedFileBusy:
        raise UserError(teach.ERASURE_BUSY) from None
    removed_before = ctx.across_tries.get(_LEARNED_ERASED, 0)
    ctx.across_tries[_LEARNED_ERASED] = learned = removed_before + erasure.learned
    return replace(erasure, learned=learned)


_LEARNED_ERASED = "privacy.erase: learned questions removed"


async def _forget_exports(ctx: HandlerContext, erasure: privacy.Erasure) -> privacy.Erasure:
    """Their exports the chat wrote, deleted from the server (`privacy.forget_exports`). Inside
    the transaction, as learned.yml is cleaned and for the same reason; a try after a conflict
    finds those the try before deleted gone, and counts them from `across_tries`."""
    folder = privacy.exports_folder(ctx.services.settings.database_url)
    erasure = await asyncio.to_thread(privacy.forget_exports, folder, erasure)
    deleted = (*ctx.across_tries.get(_EXPORTS_ERASED, ()), *erasure.exports)
    ctx.across_tries[_EXPORTS_ERASED] = deleted
    return replace(erasure, exports=deleted)


_EXPORTS_ERASED = "privacy.erase: exports deleted"


async def forget_owed(session: DbSession, erasure: privacy.Erasure) -> privacy.Erasure:
    """Their questions out of what is still owed after an event's commit, kept with its claim (a
    process killed first leaves it to another's sweep, which would write or post their words after
    this erasure): lessons still to be written (`pending_lessons`), and replies to others not
    posted yet that quote them (a report, a lesson's offer; replies to or about them are dropped by
    the erasure already). Those replies are not counted for staff: most were posted already, and
    wait only to be cleared from their claim."""
    theirs = frozenset(teach.stored_key(question) for question in erasure.asked)
    if not theirs:
        return erasure
    lessons = await privacy.clean_owed_work(session, clean=partial(_without_questions, theirs=theirs))
    await privacy.clean_owed_replies(session, clean=partial(_unquoted, forms=_quoted_forms(erasure.asked)))
    return replace(erasure, pending_lessons=lessons)


def _without_questions(work: KeptWork, *, theirs: frozenset[str]) -> KeptWork:
    if isinstance(work, WriteLesson | WriteDeclined):
        return work.without_questions(theirs)
    return work


MIN_QUOTED = 12
"""A question shorter than this is too likely to be anyone's words in a reply to be taken out."""
CLIPPED_AFTER = 20
"""A quote clipped with "…" is theirs once this much of their question precedes the "…"."""


def _quoted_forms(asked: Sequence[str]) -> tuple[str, ...]:
    """Each question as a reply may show it: on one line, or quoted in a staff report (`inert`);
    the longest first."""
    forms = {form for q in asked for form in (" ".join(q.split()), inert(q, len(q) + 1))}
    return tuple(sorted((form for form in forms if len(form) >= MIN_QUOTED), key=len, reverse=True))


def _unquoted(message: OutboundMessage, *, forms: Sequence[str]) -> OutboundMessage:
    """`message` with their questions (`forms`) in its title, text and fields replaced by
    `privacy.ERASED`."""

    def without(text: str) -> str:
        for form in forms:
            text = _without_quote(text, form)
        return text

    return replace(
        message,
        text=without(message.text),
        title=message.title and without(message.title),
        fields=tuple(replace(field, value=without(field.value)) for field in message.fields),
    )


def _without_quote(text: str, form: str) -> str:
    """`text` with `form` in it, whole or clipped (as `inert` clips it: its beginning, then "…"),
    replaced by `privacy.ERASED`."""
    start = text.find(form[:CLIPPED_AFTER])
    while start != -1:
        shown = text[start : start + len(form)]
        same = next((i for i, (a, b) in enumerate(zip(shown, form, strict=False)) if a != b), len(shown))
        end = start + same if same == len(form) else None
        if end is None and text.startswith("\u2026", start + same):
            end = start + same + 1
        if end is None:
            start = text.find(form[:CLIPPED_AFTER], start + 1)
            continue
        text = text[:start] + privacy.ERASED + text[end:]
        start = text.find(form[:CLIPPED_AFTER], start + len(privacy.ERASED))
    return text


async def _reload_and_say(event: ActionInvoked, ctx: HandlerContext, erasure: privacy.Erasure) -> None:
    """Load the cleaned learned.yml into the KB in service, then tell staff what was erased."""
    holder = ctx.services.kb
    if erasure.learned and isinstance(holder, KnowledgeBaseHolder):
        try:
            await holder.reload_async()
        except KBError as error:
            log.warning(
                "erased %s from learned.yml; the knowledge base did not reload: %s", erasure.pseudonym, error
            )
            erasure = erasure.warned(
                f"The knowledge base in service keeps their questions until it loads again: {error}"
            )
    await ctx.reply(
        OutboundMessage(text=f"Erased {erasure.subject}: {erasure.text()}.", private_to=event.actor)
    )
