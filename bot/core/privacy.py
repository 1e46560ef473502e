"""Privacy requests: everything stored about one person as one versioned JSON file, and erasing it.

A person is named as their actor key, `platform:user_id` (`slack:U0123ABCD`, `discord:80351110224678912`),
the key every table stores. Which columns identify a person, and what erasing does to each, is
written at the top of `storage/privacy_repo.py`. The command line (`supportbot privacy ...`) and the
staff chat commands (`/support privacy ...`) both come here.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from bot.core import owed
from bot.core.context import KeptWork
from bot.core.events import OutboundMessage, Platform
from storage import privacy_repo
from storage.backup import sqlite_file
from storage.session import DbSession

FORMAT: Final = "supportbot-privacy-export"
VERSION: Final = 1
ERASED: Final = "removed at the person's request"
EXPIRED: Final = "removed after the retention period (DATA_RETENTION_DAYS)"
EXAMPLE: Final = "slack:U0123ABCD"
LEARNED_FILE: Final = "learned.yml"  # the knowledge base's (`bot.kb.learned`), named as staff see it
LEARNED_UNCLEANED: Final = f"{LEARNED_FILE} could not be cleaned of their questions"

log = logging.getLogger(__name__)

_ID = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")

# Each section of the file: the table its rows come from and what it means.
SECTIONS: Final = {
    "tickets_opened": (
        "tickets",
        "Tickets this person opened, each with its whole transcript (ticket_messages): what they, the "
        "team and the bot said, the team's internal notes and the system's lines; `rating` is their "
        "1-5 rating when they gave one.",
    ),
    "lines_elsewhere": ("ticket_messages", "Transcript lines they wrote in tickets someone else opened."),
    "tickets_held": (
        "tickets",
        "Tickets they held as a team member (only the holding: the rest is the customer's).",
    ),
    "kb_questions": (
        "kb_decisions",
        "Every question they asked the bot, what it decided (answer, clarify, escalate) and how it ended.",
    ),
    "ratings": ("tickets", "Their ratings of closed tickets, from `tickets_opened`, for convenience."),
    "status_subscriptions": (
        "status_subscriptions",
        "Status-update subscriptions they made (a channel or their DMs).",
    ),
    "incident_follow_ups": (
        "status_incident_links",
        "Incidents they asked about, where the bot promised to tell them when it resolves.",
    ),
    "status_changes": ("status_component_history", "Component status changes they made (team members)."),
    "incidents_opened": ("status_incidents", "Incidents and maintenance windows they opened (team members)."),
    "incident_updates": ("status_incident_updates", "Incident updates they posted (team members)."),
    "audit_log": (
        "audit_log",
        "Audit rows of what they did or tried (a refused command keeps its text), and rows naming them.",
    ),
}


class SubjectError(ValueError):
    """`platform:user_id` written wrong; the text says how to write it."""


def parse_subject(text: str) -> str:
    """`slack:U0123ABCD` as typed (whitespace around it ignored), checked; its actor key."""
    written = text.strip()
    platform, sep, user_id = written.partition(":")
    if not sep or not user_id:
        raise SubjectError(f"`{written[:40]}` is not platform:user_id (e.g. {EXAMPLE})")
    if platform.lower() not in {p.value for p in Platform}:
        known = ", ".join(p.value for p in Platform)
        raise SubjectError(
            f"`{platform[:20]}` is not a platform ({known}); write platform:user_id, e.g. {EXAMPLE}"
        )
    if not _ID.match(user_id):
        raise SubjectError(f"`{user_id[:40]}` is not a user id (letters, digits, . _ @ -; e.g. {EXAMPLE})")
    return f"{platform.lower()}:{user_id}"


# -- export ---------------------------------------------------------------------------------------


async def export(session: DbSession, *, subject: str, now: datetime) -> dict[str, Any] | None:
    """The export document for `subject`; None when nothing is stored about them."""
    if not await privacy_repo.is_known(session, key=subject):
        return None
    found = await privacy_repo.footprint(session, key=subject)
    opened = [
        {**ticket, "transcript": found.transcripts.get(ticket["id"], [])} for ticket in found.tickets_opened
    ]
    sections: dict[str, list[dict[str, Any]]] = {
        "tickets_opened": opened,
        "lines_elsewhere": found.lines_elsewhere,
        "tickets_held": found.tickets_held,
        "kb_questions": found.kb_questions,
        "ratings": sorted(
            (
                {"ticket": t["number"], "rating": t["rating"], "closed_at": t["closed_at"]}
                for t in found.tickets_opened
                if t["rating"] is not None
            ),
            key=lambda rating: rating["closed_at"],  # rated once closed: in the order they were
        ),
        "status_subscriptions": found.status_subscriptions,
        "incident_follow_ups": found.incident_follow_ups,
        "status_changes": found.status_changes,
        "incidents_opened": found.incidents_opened,
        "incident_updates": found.incident_updates,
        "audit_log": found.audit_log,
    }
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "generated_at": now,
        "subject": subject,
        "names": await privacy_repo.names_of(session, key=subject),
        "counts": _table_counts(found),
        "sections": {name: {"table": table, "means": means} for name, (table, means) in SECTIONS.items()},
        "times": "UTC, ISO 8601",
    }
    return {"manifest": manifest, **sections}


def _table_counts(found: privacy_repo.Footprint) -> dict[str, int]:
    """Rows of each table in the file (a ticket both opened and held counts once)."""
    tickets = {t["id"] for t in found.tickets_opened} | {t["id"] for t in found.tickets_held}
    counts = {
        "tickets": len(tickets),
        "ticket_messages": sum(len(lines) for lines in found.transcripts.values())
        + len(found.lines_elsewhere),
        "kb_decisions": len(found.kb_questions),
        "status_subscriptions": len(found.status_subscriptions),
        "status_incident_links": len(found.incident_follow_ups),
        "status_component_history": len(found.status_changes),
        "status_incidents": len(found.incidents_opened),
        "status_incident_updates": len(found.incident_updates),
        "audit_log": len(found.audit_log),
    }
    return counts


def summary(document: dict[str, Any]) -> str:
    """`2 tickets (9 transcript lines), 3 questions, ...`: what an export holds, in a line."""
    counts = document["manifest"]["counts"]
    parts = [
        f"{_count(counts['tickets'], 'ticket')} ({_count(counts['ticket_messages'], 'transcript line')})",
        _count(counts["kb_decisions"], "question"),
        _count(len(document["ratings"]), "rating"),
        _count(counts["status_subscriptions"], "subscription"),
        _count(counts["status_incident_links"], "incident follow-up"),
        _count(counts["audit_log"], "audit row"),
    ]
    team = counts["status_component_history"] + counts["status_incidents"] + counts["status_incident_updates"]
    if team:
        parts.append(f"{team} status changes, incidents and updates")
    return ", ".join(parts)


def _count(number: int, thing: str) -> str:
    return f"{number} {thing}" if number == 1 else f"{number} {thing}s"


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, default=_json_value) + "\n"


def _json_value(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def write(document: dict[str, Any], path: Path) -> None:
    """Write the file readable by its owner only, never over an existing file (FileExistsError)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(dumps(document))


def exports_folder(database_url: str) -> Path:
    """Where chat-requested exports go: `privacy-exports/` beside the SQLite database, else under `data/`."""
    database = sqlite_file(database_url)
    return (database.parent if database is not None else Path("data")) / "privacy-exports"


def export_path(folder: Path, *, subject: str, now: datetime) -> Path:
    return folder / f"{_safe(subject)}-{now.strftime('%Y%m%dT%H%M%SZ')}.json"


def _safe(subject: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", subject)


# `export_path`'s name after the subject, and `-2`, `-3`... for another export in the same second.
_EXPORTED_AT = r"-\d{8}T\d{6}Z(?:-\d+)?\.json"


def exports_of(folder: Path, *, subject: str) -> list[Path]:
    """The chat's exports of `subject` in `folder`, by their names (`export_path`) and the subject
    their manifest names (two ids may make one safe name); one cut short while being written, which
    cannot be read, by its name alone. None when the folder does not exist."""
    named = re.compile(re.escape(_safe(subject)) + _EXPORTED_AT)
    try:
        files = sorted(path for path in folder.iterdir() if named.fullmatch(path.name))
    except FileNotFoundError:
        return []
    return [path for path in files if _exported_subject(path) in (subject, None)]


def _exported_subject(path: Path) -> str | None:
    """Whose export the file at `path` is, as its manifest says; None when it cannot be read."""
    try:
        return str(json.loads(path.read_text(encoding="utf-8"))["manifest"]["subject"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


# -- erasure --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Erasure:
    subject: str
    pseudonym: str
    counts: dict[str, int]
    asked: tuple[str, ...] = ()
    """What they asked (questions, ticket summaries), read before their words were replaced: the
    caller removes these from the knowledge base's learned file (`bot.kb.teach.forget_questions`),
    which core cannot reach."""
    learned: int = 0
    """How many learned questions (phrasings, declined topics' questions) were theirs and removed."""
    pending_lessons: int = 0
    """Lessons still to be written after their event's commit (kept with its claim) that held
    their questions, taken out of them (`clean_owed_work`)."""
    exports: tuple[str, ...] = ()
    """The chat's exports of them deleted from the server (`forget_exports`)."""
    warning: str | None = None
    """What did not go as it should outside the database (the learned file could not be cleaned)."""

    def warned(self, text: str) -> Erasure:
        """This erasure with `text` said after any warning it has."""
        return replace(self, warning=text if self.warning is None else f"{self.warning}. {text}")

    @property
    def rows(self) -> int:
        return sum(self.counts.values())

    def text(self) -> str:
        tables = ", ".join(f"{table} {count}" for table, count in self.counts.items())
        learned = f", {LEARNED_FILE} {_count(self.learned, 'question')}" if self.learned else ""
        if self.pending_lessons:
            learned += f", {_count(self.pending_lessons, 'pending lesson')} cleaned"
        if self.exports:
            learned += f", {_count(len(self.exports), 'export')} deleted"
        done = f"{self.rows} rows changed ({tables}){learned}; they are now `{self.pseudonym}`"
        return done if self.warning is None else f"{done}. {self.warning}"


def new_pseudonym() -> str:
    """Random, so nothing links it back to the person; one per erasure, so their rows stay together."""
    return f"erased:{secrets.token_hex(6)}"


async def erase(session: DbSession, *, subject: str, now: datetime) -> Erasure | None:
    """Erase `subject` (see `privacy_repo.erase`); None when nothing is stored about them. What they
    asked is read first, for the learned file (see `Erasure.asked`)."""
    pseudonym = new_pseudonym()
    asked = await privacy_repo.questions_of(session, key=subject)
    counts = await privacy_repo.erase(session, key=subject, pseudonym=pseudonym, words_marker=ERASED, now=now)
    return None if counts is None else Erasure(subject, pseudonym, counts, asked=tuple(asked))


def forget_exports(folder: Path, erasure: Erasure) -> Erasure:
    """`erasure` with the chat's exports of its person deleted from `folder`, named in `exports`:
    copies of their data the bot wrote, staff told where (the erasure's question named them first)
    or not (a process killed after writing one, its message dropped by the erasure). One that
    cannot be deleted is named in `warning`, for staff to delete by hand."""
    deleted: list[str] = []
    try:
        for path in exports_of(folder, subject=erasure.subject):
            try:
                path.unlink(missing_ok=True)
            except OSError as error:
                # Not its path in the log: it names them, beside their pseudonym.
                log.warning("erased %s, but not an export of theirs: %s", erasure.pseudonym, error.strerror)
                erasure = erasure.warned(
                    f"Their export `{path.resolve()}` could not be deleted ({error.strerror}): delete it"
                )
            else:
                deleted.append(str(path.resolve()))
    except OSError as error:
        log.warning("erased %s, but their exports are not read: %s", erasure.pseudonym, error)
        erasure = erasure.warned(
            f"The exports folder `{folder.resolve()}` could not be read ({error.strerror}): delete their "
            "exports in it"
        )
    return replace(erasure, exports=(*erasure.exports, *deleted))


def exports_text(folder: Path, *, subject: str) -> str:
    """What the erasure's question says of the exports of `subject` it will delete from `folder`:
    empty when there are none (or the folder cannot be read: the erasure says so then)."""
    try:
        paths = exports_of(folder, subject=subject)
    except OSError:
        return ""
    if not paths:
        return ""
    listed = ", ".join(f"`{path.resolve()}`" for path in paths)
    if len(paths) == 1:
        return f"Their export on the bot's server is deleted with them (send it first): {listed}."
    these = f"Their {len(paths)} exports on the bot's server are"
    return f"{these} deleted with them (send them first): {listed}."


async def clean_owed_work(session: DbSession, *, clean: Callable[[KeptWork], KeptWork]) -> int:
    """Rewrite each piece of work still owed after its event's commit (kept with its claim,
    `bot.core.owed`) as `clean` returns it: the caller, which knows what a piece holds, takes an
    erased person's words out of it. How many claims changed. Inside the erasure's transaction: a
    sweep would otherwise write their words after it (into learned.yml, which it cleaned)."""

    def cleaned(text: str) -> str | None:
        kept = owed.decode_work(text)
        work = tuple(clean(piece) for piece in kept.work)
        return None if work == kept.work else owed.encode_work(owed.OwedWork(kept.event, work))

    return await _rewrite_owed(session, "work", cleaned)


async def clean_owed_replies(
    session: DbSession, *, clean: Callable[[OutboundMessage], OutboundMessage]
) -> int:
    """Rewrite each reply not posted yet (`bot.core.owed`) as `clean` returns its message: the
    caller takes an erased person's words out of it (a report or a lesson quoting them to staff,
    which the sweep would post after the erasure). How many claims changed: replies posted but not
    yet cleared from their claim (`OwedReplies.clear_posted`) among them, as nobody can tell."""

    def cleaned(text: str) -> str | None:
        replies = owed.decode(text)
        rewritten = [reply.with_delivery(message=clean(reply.delivery.message)) for reply in replies]
        return None if rewritten == replies else owed.encode(rewritten)

    return await _rewrite_owed(session, "owed", cleaned)


async def _rewrite_owed(session: DbSession, column: str, cleaned: Callable[[str], str | None]) -> int:
    """Each claim's `column` still owed as `cleaned` has it (None: unchanged); how many changed."""
    changed = 0
    for claim_id, text in await privacy_repo.still_owed(session, column=column):
        try:
            new = cleaned(text)
        except ValueError as error:  # the sweep gives it up, unread, without doing it
            log.warning("%s of claim %d cannot be read (%s); left as it is", column, claim_id, error)
            continue
        if new is not None:
            await privacy_repo.rewrite_still_owed(session, claim_id=claim_id, column=column, text=new)
            changed += 1
    return changed


async def purge_expired(session: DbSession, *, before: datetime, limit: int) -> int:
    """One batch of DATA_RETENTION_DAYS: what people wrote before `before` replaced; rows changed."""
    return await privacy_repo.purge_text_before(session, before=before, marker=EXPIRED, limit=limit)
