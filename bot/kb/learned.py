"""`kb/learned.yml`: what staff taught the bot, in a file only the bot writes (the team's own files
are never rewritten), loaded with the rest and reviewable in git.

    phrasings:              # questions attached to an article (a team's or a learned one)
      - {id: p1, entry: reset-password, text: "I can't get in", taught_by: U123, from_ticket: 42}
    articles:               # articles drafted from a staff answer; inactive until approved
      - {id: export-csv, title: Export to CSV, answer: "...", status: pending, taught_by: U123,
         from_ticket: 42}
    declined:               # gaps staff marked "not ours": questions like these are escalated
      - {id: n1, questions: ["can you do my taxes", ...], taught_by: U123, from_gap: g812-7-674a3f10}
    issued: {phrasings: 12, declined: 3}   # the highest numbers ever given: a forgotten id is never reused
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

import yaml

from bot.kb.model import KBEntry

try:
    import fcntl
except ImportError:  # not a POSIX system: one process's threads are kept apart, no more
    fcntl = None  # type: ignore[assignment]

LEARNED_FILE = "learned.yml"
HEADER = (
    "# Written by supportbot: what staff taught it (/support kb ...). Review it in git;\n"
    "# edit it only while the bot is stopped, or with /support kb forget.\n"
)


class Status(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"


@dataclass(frozen=True, slots=True, kw_only=True)
class LearnedPhrasing:
    id: str
    entry: str
    text: str
    taught_by: str
    from_ticket: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class LearnedArticle:
    id: str
    title: str
    answer: str
    status: Status
    taught_by: str
    from_ticket: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DeclinedTopic:
    """Questions the bot must not answer however sure it is (a gap that is not the bot's job, or
    that no article should answer): they become a topic the matcher can find, which only escalates,
    and real out-of-scope questions for the simulation that chooses the operating point."""

    id: str
    questions: tuple[str, ...]
    taught_by: str
    from_gap: str | None = None

    @property
    def entry_id(self) -> str:
        # ':' is not allowed in an article's id, so a team article can never share it.
        return f"declined:{self.id}"


class LearnedFileError(ValueError):
    """learned.yml cannot be read; the message is `file: what is wrong`."""


@dataclass(frozen=True, slots=True)
class Learned:
    articles: tuple[LearnedArticle, ...] = ()
    phrasings: tuple[LearnedPhrasing, ...] = ()
    declined: tuple[DeclinedTopic, ...] = ()
    phrasings_issued: int = 0
    declined_issued: int = 0
    """The highest `p` / `n` numbers ever given out. Ids are what staff undo, audit and talk about:
    once `n3` is forgotten, a later decline must not be `n3` again."""

    def article(self, article_id: str) -> LearnedArticle | None:
        return next((a for a in self.articles if a.id == article_id), None)

    def phrasings_of(self, entry_id: str) -> tuple[LearnedPhrasing, ...]:
        return tuple(p for p in self.phrasings if p.entry == entry_id)

    @property
    def pending(self) -> tuple[LearnedArticle, ...]:
        return tuple(a for a in self.articles if a.status is Status.PENDING)

    def next_phrasing_id(self) -> str:
        return f"p{self.issued()[0] + 1}"

    def next_declined_id(self) -> str:
        return f"n{self.issued()[1] + 1}"

    def issued(self) -> tuple[int, int]:
        """The highest phrasing and declined-topic numbers given out, the present ones included."""
        return (
            max(self.phrasings_issued, _highest([p.id for p in self.phrasings])),
            max(self.declined_issued, _highest([d.id for d in self.declined])),
        )

    def apply(self, entries: Sequence[KBEntry], *, source: str = LEARNED_FILE) -> list[KBEntry]:
        """The team's entries with the learned phrasings added, then the approved learned articles.
        A phrasing whose article is gone (deleted by the team, or a pending draft) is inactive;
        so is one the article already has."""
        out = [_with_questions(entry, self.phrasings_of(entry.id)) for entry in entries]
        known = {entry.id for entry in entries}
        for article in self.articles:
            if article.status is not Status.APPROVED or article.id in known:
                continue
            questions = _unique(p.text for p in self.phrasings_of(article.id))
            if questions:
                out.append(
                    KBEntry(
                        id=article.id,
                        title=article.title,
                        questions=questions,
                        answer=article.answer,
                        source=f"{source} ({article.id})",
                    )
                )
        for topic in self.declined:
            questions = _unique(topic.questions)
            if questions:
                out.append(
                    KBEntry(
                        id=topic.entry_id,
                        title=f"declined topic {topic.id}",
                        questions=questions,
                        answer="",
                        source=f"{source} ({topic.id})",
                        declined=True,
                    )
                )
        return out

    def as_yaml(self) -> str:
        data: dict[str, Any] = {
            "phrasings": [_drop_none(_phrasing_dict(p)) for p in self.phrasings],
            "articles": [_drop_none(_article_dict(a)) for a in self.articles],
        }
        if self.declined:
            data["declined"] = [_drop_none(_declined_dict(d)) for d in self.declined]
        phrasings, declined = self.issued()
        if phrasings or declined:
            data["issued"] = {"phrasings": phrasings, "declined": declined}
        return HEADER + yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)


def _highest(ids: Sequence[str]) -> int:
    """The highest `<letter><number>` id's number (hand-written ids of other shapes are skipped)."""
    return max((int(i[1:]) for i in ids if i[1:].isdigit()), default=0)


def _phrasing_dict(p: LearnedPhrasing) -> dict[str, Any]:
    return {
        "id": p.id,
        "entry": p.entry,
        "text": p.text,
        "taught_by": p.taught_by,
        "from_ticket": p.from_ticket,
    }


def _article_dict(a: LearnedArticle) -> dict[str, Any]:
    return {
        "id": a.id,
        "title": a.title,
        "answer": a.answer,
        "status": a.status.value,
        "taught_by": a.taught_by,
        "from_ticket": a.from_ticket,
    }


def _declined_dict(d: DeclinedTopic) -> dict[str, Any]:
    return {"id": d.id, "questions": list(d.questions), "taught_by": d.taught_by, "from_gap": d.from_gap}


def _drop_none(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if value is not None}


def _unique(texts: Any) -> tuple[str, ...]:
    seen: dict[str, str] = {}
    for text in texts:
        seen.setdefault(" ".join(text.casefold().split()), text)
    return tuple(seen.values())


def _with_questions(entry: KBEntry, learned: Sequence[LearnedPhrasing]) -> KBEntry:
    if not learned:
        return entry
    have = {" ".join(q.casefold().split()) for q in entry.questions}
    extra = [t for t in _unique(p.text for p in learned) if " ".join(t.casefold().split()) not in have]
    return replace(entry, questions=entry.questions + tuple(extra)) if extra else entry


def learned_path(kb_root: Path) -> Path | None:
    """Where the bot keeps what it learned: beside the team's files. None for a one-file KB."""
    return Path(kb_root) / LEARNED_FILE if Path(kb_root).is_dir() else None


def read(path: Path) -> Learned:
    """The file's contents; empty when it does not exist yet."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Learned()
    except (OSError, UnicodeDecodeError) as error:
        raise LearnedFileError(f"{path}: cannot read ({error})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise LearnedFileError(f"{path}: not valid YAML ({error})") from None
    if data is None:
        return Learned()
    if not isinstance(data, dict) or set(data) - {"phrasings", "articles", "declined", "issued"}:
        raise LearnedFileError(f"{path}: expected the keys 'phrasings', 'articles', 'declined' and 'issued'")
    try:
        phrasings = tuple(
            LearnedPhrasing(
                id=_str(row, "id"),
                entry=_str(row, "entry"),
                text=_str(row, "text"),
                taught_by=_str(row, "taught_by"),
                from_ticket=_ticket(row),
            )
            for row in _rows(data, "phrasings")
        )
        articles = tuple(
            LearnedArticle(
                id=_str(row, "id"),
                title=_str(row, "title"),
                answer=_str(row, "answer"),
                status=Status(_str(row, "status")),
                taught_by=_str(row, "taught_by"),
                from_ticket=_ticket(row),
            )
            for row in _rows(data, "articles")
        )
        declined = tuple(
            DeclinedTopic(
                id=_str(row, "id"),
                questions=_questions(row),
                taught_by=_str(row, "taught_by"),
                from_gap=None if row.get("from_gap") is None else _str(row, "from_gap"),
            )
            for row in _rows(data, "declined")
        )
        given = (_issued(data, "phrasings"), _issued(data, "declined"))
    except (KeyError, TypeError, ValueError) as error:
        raise LearnedFileError(f"{path}: {error}") from None
    for kind, ids in (
        ("phrasing", [p.id for p in phrasings]),
        ("article", [a.id for a in articles]),
        ("declined topic", [d.id for d in declined]),
    ):
        if len(set(ids)) != len(ids):
            raise LearnedFileError(f"{path}: two {kind}s with one id")
    learned = Learned(articles, phrasings, declined, phrasings_issued=given[0], declined_issued=given[1])
    # The ids present count as issued from here on: a forget that drops the highest keeps its number.
    phrasings_issued, declined_issued = learned.issued()
    return replace(learned, phrasings_issued=phrasings_issued, declined_issued=declined_issued)


def _issued(data: dict[str, Any], kind: str) -> int:
    issued = data.get("issued")
    issued = {} if issued is None else issued
    if not isinstance(issued, dict) or set(issued) - {"phrasings", "declined"}:
        raise TypeError("'issued' must be 'phrasings: N, declined: N'")
    value = issued.get(kind, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"'issued: {kind}' must be a whole number")
    return value


def _rows(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    rows = data.get(key) or []
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise TypeError(f"'{key}' must be a list of 'key: value' items")
    return rows


def _str(row: dict[str, Any], key: str) -> str:
    value = row.get(key)
    if value is None or not str(value).strip():
        raise ValueError(f"an item has no '{key}'")
    return str(value).strip()


def _questions(row: dict[str, Any]) -> tuple[str, ...]:
    value = row.get("questions")
    if not isinstance(value, list) or not value or not all(isinstance(q, str) and q.strip() for q in value):
        raise ValueError("a declined topic needs 'questions': a list of non-empty questions")
    return tuple(q.strip() for q in value)


def _ticket(row: dict[str, Any]) -> int | None:
    value = row.get("from_ticket")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("'from_ticket' must be a ticket number")
    return value


_thread_lock = threading.Lock()


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Held from reading learned.yml to writing it back: the bot's threads, and processes beside it
    (`supportbot privacy erase` while the bot runs), would otherwise lose each other's changes (an
    erased question written back, an id given twice). The folder is locked, not the file: `write`
    replaces the file, so a lock on it would guard a file no longer there."""
    with _thread_lock:
        if fcntl is None:
            yield
            return
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            fcntl.flock(folder, fcntl.LOCK_EX)
            yield
        finally:
            os.close(folder)  # releases the lock


def write(path: Path, learned: Learned) -> None:
    """Atomically: a temporary file beside it, renamed over it, so the watcher never reads half a
    file. The temporary name does not end in .yml, so the loader never reads it either."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".learned.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(learned.as_yaml())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
