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

import itertools
import logging
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.kb.model import ID_PATTERN, KBEntry

try:
    import fcntl
except ImportError:  # not a POSIX system: one process's threads are kept apart, no more
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

LEARNED_FILE = "learned.yml"
KEYS = ("phrasings", "articles", "declined", "issued")
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
    line: int = field(default=0, compare=False)
    """Where it is in the file (0: not read from one), for what kb check says of it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LearnedArticle:
    id: str
    title: str
    answer: str
    status: Status
    taught_by: str
    from_ticket: int | None = None
    line: int = field(default=0, compare=False)
    """Where it is in the file (0: not read from one), for what kb check says of it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DeclinedTopic:
    """Questions the bot must not answer however sure it is (a gap that is not the bot's job, or
    that no article should answer): they become a topic the matcher can find, which only escalates,
    and real out-of-scope questions for the simulation that chooses the operating point."""

    id: str
    questions: tuple[str, ...]
    taught_by: str
    from_gap: str | None = None
    line: int = field(default=0, compare=False)
    """Where it is in the file (0: not read from one), for what kb check says of it."""

    @property
    def entry_id(self) -> str:
        # ':' is not allowed in an article's id, so a team article can never share it.
        return f"declined:{self.id}"


Item = TypeVar("Item", LearnedPhrasing, LearnedArticle, DeclinedTopic)


class LearnedFileError(ValueError):
    """learned.yml cannot be read in full; each problem is `file:line: what is wrong`."""

    def __init__(self, problems: Sequence[str]) -> None:
        more = (
            f" (and {len(problems) - 1} more; `supportbot kb check` lists them)" if len(problems) > 1 else ""
        )
        super().__init__(problems[0] + more)
        self.problems = tuple(problems)


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

    def unused(self, entries: Sequence[KBEntry], *, source: str = LEARNED_FILE) -> list[str]:
        """`file:line: what` for each learned item `apply` leaves out of the team's `entries`
        without a word: staff must hear that what they taught answers nobody."""
        known = {entry.id for entry in entries}
        drafted = {article.id for article in self.articles}
        notes = [
            f"{source}:{p.line}: phrasing `{p.id}` is for `{p.entry}`, which is not in the knowledge base "
            f"(deleted?), so it is not used; `/support kb forget {p.id}` removes it"
            for p in self.phrasings
            if p.entry not in known and p.entry not in drafted
        ]
        for article in self.articles:
            if article.id in known:
                notes.append(
                    f"{source}:{article.line}: article `{article.id}` has the id of one of the team's "
                    "articles, so the team's is used and this one is not"
                )
            elif article.status is Status.APPROVED and not self.phrasings_of(article.id):
                notes.append(
                    f"{source}:{article.line}: article `{article.id}` has no phrasing, so no question "
                    "can find it"
                )
        return notes

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
    return max((int(i[1:]) for i in ids if _NUMBER.fullmatch(i[1:])), default=0)


# ASCII digits only, and few enough for int(): str.isdigit() also takes "²" (int() refuses it) and
# any number of digits (int() refuses more than 4,300); a hand edit must not stop the bot.
_NUMBER = re.compile(r"[0-9]{1,18}")


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
    """The file's contents, for a change to it; empty when it does not exist yet. LearnedFileError
    when any of it cannot be read: writing the file back would lose what was skipped."""
    found, problems = read_valid(path)
    if problems:
        raise LearnedFileError(problems)
    return found


def read_valid(path: Path) -> tuple[Learned, tuple[str, ...]]:
    """What can be read of the file, and a `file:line: what` for each item skipped (all of it, when
    it is not YAML): a hand edit gone wrong must not take the rest of what the bot learned away."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Learned(), ()
    except OSError as error:
        return Learned(), (f"{path}:1: cannot read: {error.strerror}",)
    problems: list[str] = []
    bad_lines = _not_utf8_lines(raw)
    problems += [f"{path}:{n}: not UTF-8 text; the item on this line is skipped" for n in bad_lines]
    text = raw.decode("utf-8", errors="replace")
    try:
        root = _compose(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        what = " ".join(f"{error.context or ''} {error.problem or ''}".split())
        return Learned(), (
            *problems,
            f"{path}:{_line_at(text, mark.index) if mark else 1}: not valid YAML: {what}",
        )
    except yaml.reader.ReaderError as error:
        line = text.count("\n", 0, max(0, error.position)) + 1
        return Learned(), (*problems, f"{path}:{line}: character {error.character!r} is not allowed in YAML")
    except yaml.YAMLError as error:
        return Learned(), (*problems, f"{path}:1: not valid YAML: {' '.join(str(error).split())}")
    except RecursionError:
        return Learned(), (*problems, f"{path}:1: nested too deeply to read")
    if root is None or root.tag == _NULL:
        return Learned(), tuple(problems)
    expected = "expected the keys 'phrasings', 'articles', 'declined' and 'issued'"
    if not isinstance(root, MappingNode) or root.tag != _MAP:
        return Learned(), (*problems, f"{path}:{_line(root, text)}: {expected}")
    sections = {str(key.value): value for key, value in root.value if isinstance(key, ScalarNode)}
    problems += [
        f"{path}:{_line(key, text)}: {expected}, not '{key.value}'"
        for key, _ in root.value
        if not isinstance(key, ScalarNode) or key.value not in KEYS
    ]
    # YAML keeps a repeated key's last value alone: said, so that no write drops the first one's items.
    seen: dict[str, int] = {}
    for key, _ in root.value:
        if isinstance(key, ScalarNode) and key.value in KEYS:
            line = _line(key, text)
            if key.value in seen:
                again = f"'{key.value}' is already at line {seen[key.value]}; only this one is read"
                problems.append(f"{path}:{line}: {again}")
            seen.setdefault(key.value, line)

    def items(key: str, build: Callable[[dict[str, Any], int], Item]) -> tuple[Item, ...]:
        node = sections.get(key)
        if node is None or node.tag == _NULL:
            return ()
        if not isinstance(node, SequenceNode) or node.tag != _SEQ:
            problems.append(f"{path}:{_line(node, text)}: '{key}' must be a list of 'key: value' items")
            return ()
        built: list[Item] = []
        for item in node.value:
            line = _line(item, text)
            if any(line <= bad <= _last_line(_last_value(item), text) for bad in bad_lines):
                continue
            try:
                row = _value(item)
            except _UNBUILDABLE as error:
                problems.append(f"{path}:{line}: {_unbuildable(error)}; the item is skipped")
                continue
            try:
                if not isinstance(row, dict):
                    raise TypeError(f"expected a 'key: value' item in '{key}'")
                built.append(build(row, line))
            except (KeyError, TypeError, ValueError) as error:
                problems.append(f"{path}:{line}: {error}")
        return tuple(built)

    phrasings = _first_of_each_id(path, "phrasing", items("phrasings", _phrasing), problems)
    articles = _first_of_each_id(path, "article", items("articles", _article), problems)
    declined = _first_of_each_id(path, "declined topic", items("declined", _declined), problems)
    issued_node, issued = sections.get("issued"), None
    try:
        issued = None if issued_node is None else _value(issued_node)
    except _UNBUILDABLE as error:
        problems.append(f"{path}:{_line(issued_node, text)}: {_unbuildable(error)}; the ids present count")
    given = [0, 0]
    for i, kind in enumerate(("phrasings", "declined")):
        try:
            given[i] = _issued(issued, kind)
        except (TypeError, ValueError) as error:
            problems.append(f"{path}:{_line(issued_node, text)}: {error}")
    learned = Learned(articles, phrasings, declined, phrasings_issued=given[0], declined_issued=given[1])
    # The ids present count as issued from here on: a forget that drops the highest keeps its number.
    phrasings_issued, declined_issued = learned.issued()
    learned = replace(learned, phrasings_issued=phrasings_issued, declined_issued=declined_issued)
    where = len(str(path)) + 1
    return learned, tuple(sorted(dict.fromkeys(problems), key=lambda p: int(p[where:].split(":", 1)[0])))


_NULL, _MAP, _SEQ = (f"tag:yaml.org,2002:{name}" for name in ("null", "map", "seq"))
# What building one value can raise: a tag safe loading does not build (`!!python/name:...`), a
# number too long for int() (more than 4,300 digits), a date that is no date, nesting too deep.
_UNBUILDABLE = (yaml.constructor.ConstructorError, ValueError, RecursionError)


def _compose(text: str) -> Node | None:
    """The document's node tree, for line numbers; its values are built item by item (`_value`),
    so one that cannot be built takes only its item out of service."""
    loader = yaml.SafeLoader(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def _value(node: Node) -> Any:
    return yaml.constructor.SafeConstructor().construct_document(node)


def _unbuildable(error: Exception) -> str:
    if isinstance(error, yaml.MarkedYAMLError):
        why = " ".join(f"{error.context or ''} {error.problem or ''}".split())
    else:
        why = " ".join(str(error).split())
    return f"a value cannot be read ({why[:160]})"


def _not_utf8_lines(raw: bytes) -> list[int]:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        pass
    else:
        return []
    bad = []
    for number, line in enumerate(raw.split(b"\n"), 1):
        try:
            line.decode("utf-8")
        except UnicodeDecodeError:
            bad.append(number)
    return bad


def _line(node: Node | None, text: str) -> int:
    return _line_at(text, node.start_mark.index) if node is not None else 1


def _line_at(text: str, index: int) -> int:
    """The line an editor shows at `index`. Not PyYAML's mark.line: it also breaks lines at U+0085,
    U+2028 and U+2029, which the bot writes inside quotes (an answer pasted with them)."""
    return text.count("\n", 0, index) + 1


def _last_value(node: Node) -> Node:
    """The innermost last value of a block collection: where it ends is where the item's content
    ends. The block itself ends where the next item begins, after any comment in between."""
    item = node
    while isinstance(node, MappingNode | SequenceNode) and node.value and not node.flow_style:
        node = node.value[-1][1] if isinstance(node, MappingNode) else node.value[-1]
    # An alias is the node it names, which can stand above the item: then the block's own end.
    return node if node.start_mark.index >= item.start_mark.index else item


def _last_line(node: Node, text: str) -> int:
    """The node's last line. A block item ends where the next one begins: that line is not its."""
    end = node.end_mark.index
    line_start = text.rfind("\n", 0, end) + 1
    line = _line_at(text, end)
    return line if text[line_start:end].strip() else line - 1


def _first_of_each_id(
    path: Path, kind: str, items: tuple[Item, ...], problems: list[str]
) -> tuple[Item, ...]:
    """A repeated id is skipped where it repeats: forget, approve and the audit name items by id."""
    first: dict[str, int] = {}
    kept = []
    for item in items:
        item_id, line = item.id, item.line
        if item_id in first:
            problems.append(f"{path}:{line}: {kind} id '{item_id}' is already used at line {first[item_id]}")
            continue
        first[item_id] = line
        kept.append(item)
    return tuple(kept)


def _phrasing(row: dict[str, Any], line: int) -> LearnedPhrasing:
    return LearnedPhrasing(
        id=_str(row, "id"),
        entry=_str(row, "entry"),
        text=_str(row, "text"),
        taught_by=_str(row, "taught_by"),
        from_ticket=_ticket(row),
        line=line,
    )


def _article(row: dict[str, Any], line: int) -> LearnedArticle:
    status = _str(row, "status")
    if status not in {s.value for s in Status}:
        raise ValueError(f"'status' must be pending or approved, not '{status}'")
    article_id = _str(row, "id")
    if not ID_PATTERN.match(article_id):
        # As for the team's articles: the id travels in buttons and is recorded with each pick.
        raise ValueError(
            f"article id '{article_id[:80]}' must be lowercase letters, digits, '-', '_' or '.', "
            "at most 64 characters"
        )
    return LearnedArticle(
        id=article_id,
        title=_str(row, "title"),
        answer=_str(row, "answer"),
        status=Status(status),
        taught_by=_str(row, "taught_by"),
        from_ticket=_ticket(row),
        line=line,
    )


def _declined(row: dict[str, Any], line: int) -> DeclinedTopic:
    return DeclinedTopic(
        id=_str(row, "id"),
        questions=_questions(row),
        taught_by=_str(row, "taught_by"),
        from_gap=None if row.get("from_gap") is None else _str(row, "from_gap"),
        line=line,
    )


def _issued(issued: Any, kind: str) -> int:
    issued = {} if issued is None else issued
    if not isinstance(issued, dict) or set(issued) - {"phrasings", "declined"}:
        raise TypeError("'issued' must be 'phrasings: N, declined: N'")
    value = issued.get(kind, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"'issued: {kind}' must be a whole number")
    return value


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

LOCK_WAIT_SECONDS = 30.0
"""The longest a change waits for another holder of learned.yml's lock. A change takes
milliseconds; a holder that keeps it longer is stuck (a process stopped mid-change), and waiting for
it without end would hold the bot's worker thread, and whoever waits for the change, as long."""
_LOCK_POLL_SECONDS = 0.05


class LearnedFileBusy(TimeoutError):
    """Another thread or process held learned.yml's lock past `LOCK_WAIT_SECONDS`: nothing was changed."""

    def __init__(self, path: Path, waited: float) -> None:
        super().__init__(
            f"{path.name} is being changed elsewhere (waited {waited:.0f} s); try again in a minute"
        )


@contextmanager
def locked(path: Path) -> Iterator[None]:
    """Held from reading learned.yml to writing it back: the bot's threads, and processes beside it
    (`supportbot privacy erase` while the bot runs), would otherwise lose each other's changes (an
    erased question written back, an id given twice). The folder is locked, not the file: `write`
    replaces the file, so a lock on it would guard a file no longer there. Waits at most
    `LOCK_WAIT_SECONDS`, then raises `LearnedFileBusy` (an OSError, as a file that cannot be written)."""
    wait = LOCK_WAIT_SECONDS
    deadline = time.monotonic() + wait
    if not _thread_lock.acquire(timeout=wait):
        raise LearnedFileBusy(path, wait)
    try:
        if fcntl is None:
            yield
            return
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            for attempt in itertools.count():
                try:
                    fcntl.flock(folder, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if attempt == 0:
                        log.info(
                            "waiting for %s: another process is changing it (up to %.0f s)", path.name, wait
                        )
                    if time.monotonic() >= deadline:
                        raise LearnedFileBusy(path, wait) from None
                    time.sleep(_LOCK_POLL_SECONDS)
            yield
        finally:
            os.close(folder)  # releases the lock
    finally:
        _thread_lock.release()


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
