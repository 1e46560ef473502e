"""Reads knowledge-base YAML files into entries; every problem is reported as `file:line: what`.

A file holds a list of entries:

    - id: reset-api-key
      title: Reset an API key
      questions: [How do I reset my API key?, My API key leaked, what now?]
      answer: |
        Open **Settings → API keys** and choose _Roll key_.
      tags: [api, security]
      links: [{label: API keys, url: "https://docs.example.com/api-keys"}]
      component: api
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from bot.kb import learned
from bot.kb.learned import learned_path
from bot.kb.model import ID_PATTERN, KBEntry, Link

ENTRY_KEYS = ("id", "title", "questions", "answer", "tags", "links", "component")
REQUIRED_KEYS = ("id", "questions", "answer")
LINK_KEYS = ("label", "url")
MIN_QUESTIONS = 1
# Fewer than this loads, but the entry cannot be asked without itself: `kb check` warns.
ADVISED_QUESTIONS = 2
RELOAD_MARKER = ".reload"
"""Touched by `supportbot kb reload`: a bot watching the folder reloads when any stamp changes."""
_NULL = "tag:yaml.org,2002:null"
_LINE_BREAK = re.compile(r"\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")


class KBError(Exception):
    """The knowledge base cannot be loaded. Each problem is one line: `file:line: what is wrong`."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True, slots=True)
class KBFiles:
    """The files a knowledge base was read from, with their modification times (for cheap reloads)."""

    root: Path
    stamps: tuple[tuple[str, int, int], ...]
    learned_warnings: tuple[str, ...] = field(default=(), compare=False)
    """`file:line: what` for each item of learned.yml that was skipped or answers nobody."""

    @classmethod
    def scan(cls, root: Path) -> KBFiles:
        stamps = []
        marker = (root if root.is_dir() else root.parent) / RELOAD_MARKER
        for path in [*_kb_files(root), marker]:
            try:
                stat = path.stat()
            except OSError:
                continue  # no marker yet, or deleted while we looked: the next scan sees it
            stamps.append((str(path), stat.st_mtime_ns, stat.st_size))
        return cls(root, tuple(stamps))


def _kb_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())


class _File:
    """Problems found in one file; `where(node)` turns a YAML node into `file:line`."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems

    def where(self, node: Node | None) -> str:
        line = node.start_mark.line + 1 if node is not None else 1
        return f"{self.path}:{line}"

    def problem(self, node: Node | None, text: str) -> None:
        # One line per problem, even when it quotes a key or value that holds line breaks.
        one_line = _LINE_BREAK.sub(r"\\n", text)
        self.problems.append(f"{self.where(node)}: {one_line}")


def load_entries(root: Path) -> tuple[list[KBEntry], KBFiles]:
    """Every entry under `root` (a folder, or one file), or KBError listing every problem found."""
    root = Path(root)
    if not root.exists():
        raise KBError([f"{root}: no such file or folder (set KB_PATH to your knowledge-base folder)"])
    if not root.is_dir() and not root.is_file():  # a device (/dev/zero), a pipe or a socket
        raise KBError([f"{root}: not a folder or a file (set KB_PATH to your knowledge-base folder)"])
    # Stamped before reading, so an edit made while we read is seen by the next reload_if_changed.
    stamps = KBFiles.scan(root)
    # The bot's own file is read apart: it adds to the team's entries instead of defining them.
    bot_file = learned_path(root)
    files = [path for path in _kb_files(root) if path != bot_file]
    if not files:
        raise KBError([f"{root}: no .yml or .yaml files in this folder"])
    problems: list[str] = []
    entries: list[KBEntry] = []
    seen: dict[str, str] = {}
    for path in files:
        start = len(problems)
        for entry in _load_file(path, problems):
            if entry.id in seen:
                problems.append(
                    f"{entry.source}: duplicate id '{entry.id}' (first defined at {seen[entry.id]})"
                )
                continue
            seen[entry.id] = entry.source
            entries.append(entry)
        problems[start:] = sorted(problems[start:], key=lambda p: _line_of(p, path))
    if problems:
        raise KBError(problems)
    if bot_file is not None:
        # The bot's file never stops the team's: what cannot be read of it is skipped and said.
        found, skipped = learned.read_valid(bot_file)
        warnings = (*skipped, *found.unused(entries, source=str(bot_file)))
        entries = found.apply(entries, source=str(bot_file))
        stamps = replace(stamps, learned_warnings=warnings)
    return entries, stamps


def _line_of(problem: str, path: Path) -> int:
    line = problem[len(str(path)) + 1 :].split(":", 1)[0]
    return int(line) if line.isdigit() else 0


def _load_file(path: Path, problems: list[str]) -> Iterator[KBEntry]:
    file = _File(path, problems)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        file.problem(None, "not UTF-8 text")
        return
    except OSError as error:
        file.problem(None, f"cannot read: {error.strerror}")
        return
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else 1
        problems.append(f"{path}:{line}: YAML syntax error: {error.problem or error.context}")
        return
    except yaml.reader.ReaderError as error:
        # A control character: no line mark, but its position in the text gives the line.
        line = text.count("\n", 0, max(0, error.position)) + 1
        problems.append(f"{path}:{line}: character {error.character!r} is not allowed in YAML text")
        return
    except yaml.YAMLError as error:
        file.problem(None, f"YAML error: {error}")
        return
    except RecursionError:
        file.problem(None, "nested too deeply to read (an entry needs only a few levels)")
        return
    if root is None or (isinstance(root, SequenceNode) and not root.value):
        file.problem(
            root, "the file is empty; write a list of entries (- id: ..., questions: ..., answer: ...)"
        )
        return
    if not isinstance(root, SequenceNode):
        file.problem(root, "expected a list of entries, each starting with '- id: ...'")
        return
    for node in root.value:
        entry = _entry(node, file)
        if entry is not None:
            yield entry


def _mapping(
    node: Node, file: _File, what: str, known: tuple[str, ...]
) -> dict[str, tuple[Node, Node]] | None:
    """The known keys of a mapping; unknown or repeated keys are reported (and the rest still checked)."""
    if not isinstance(node, MappingNode):
        file.problem(node, f"expected {what} as 'key: value' lines")
        return None
    fields: dict[str, tuple[Node, Node]] = {}
    for key_node, value_node in node.value:
        key = key_node.value if isinstance(key_node, ScalarNode) else None
        if key not in known:
            file.problem(key_node, f"unknown key '{key}' in {what}; known keys: {', '.join(known)}")
        elif key in fields:
            file.problem(key_node, f"'{key}' appears twice in {what}")
        else:
            fields[key] = (key_node, value_node)
    return fields


def _text(node: Node, file: _File, name: str) -> str | None:
    if not isinstance(node, ScalarNode) or node.tag == _NULL or not str(node.value).strip():
        file.problem(node, f"'{name}' must be non-empty text")
        return None
    return str(node.value).strip()


def _texts(node: Node, file: _File, name: str) -> list[str] | None:
    if isinstance(node, ScalarNode) and node.tag == _NULL:
        return []
    if not isinstance(node, SequenceNode):
        file.problem(node, f"'{name}' must be a list")
        return None
    values = [_text(item, file, f"each item of '{name}'") for item in node.value]
    if any(value is None for value in values):
        return None
    return [value for value in values if value is not None]


def _entry(node: Node, file: _File) -> KBEntry | None:
    before = len(file.problems)
    fields = _mapping(node, file, "an entry", ENTRY_KEYS)
    if fields is None:
        return None
    for key in REQUIRED_KEYS:
        if key not in fields:
            file.problem(node, f"entry has no '{key}'")
            return None
    entry_id = _text(fields["id"][1], file, "id")
    if entry_id is not None and not ID_PATTERN.match(entry_id):
        file.problem(
            fields["id"][1],
            f"id '{entry_id}' must be lowercase letters, digits, '-', '_' or '.', at most 64 characters",
        )
    answer = _text(fields["answer"][1], file, "answer")
    questions = _texts(fields["questions"][1], file, "questions")
    if questions is not None:
        if len(questions) < MIN_QUESTIONS:
            file.problem(
                fields["questions"][1],
                f"entry '{entry_id}' has no questions; write at least {ADVISED_QUESTIONS} phrasings",
            )
        lowered = [q.casefold() for q in questions]
        for index, question in enumerate(questions):
            question_node = fields["questions"][1].value[index]
            if lowered.index(lowered[index]) != index:
                file.problem(question_node, f"question '{question}' is listed twice")
            elif not any(c.isalnum() for c in question):
                # A question of only punctuation or emoji matches nothing in words: it would make
                # the entry look like a sure answer to anything the matcher cannot read.
                file.problem(question_node, f"question '{question}' has no words; write it as customers do")
    title = _text(fields["title"][1], file, "title") if "title" in fields else None
    tags = _texts(fields["tags"][1], file, "tags") if "tags" in fields else []
    links = _links(fields["links"][1], file) if "links" in fields else []
    component = None
    if "component" in fields:
        value = fields["component"][1]
        if not (isinstance(value, ScalarNode) and value.tag == _NULL):
            component = _text(value, file, "component")
    if len(file.problems) > before or None in (entry_id, answer, questions, tags, links):
        return None
    assert entry_id is not None and answer is not None and questions is not None
    return KBEntry(
        id=entry_id,
        title=title or questions[0],
        questions=tuple(questions),
        answer=answer,
        tags=tuple(tags or ()),
        links=tuple(links or ()),
        component=component,
        source=file.where(node),
    )


def _links(node: Node, file: _File) -> list[Link] | None:
    if not isinstance(node, SequenceNode):
        file.problem(node, "'links' must be a list of {label: ..., url: ...}")
        return None
    links = []
    for item in node.value:
        before = len(file.problems)
        fields = _mapping(item, file, "a link", LINK_KEYS)
        if fields is None or len(file.problems) > before:
            return None
        if "url" not in fields:
            file.problem(item, "link has no 'url'")
            return None
        url = _text(fields["url"][1], file, "url")
        if url is None:
            return None
        parts = urlsplit(url)
        if not (parts.scheme in ("http", "https") and parts.netloc) and not (
            parts.scheme == "mailto" and "@" in parts.path
        ):
            file.problem(fields["url"][1], f"link url '{url}' is not an http(s) or mailto: address")
            return None
        label = _text(fields["label"][1], file, "label") if "label" in fields else parts.netloc or url
        if label is None:
            return None
        links.append(Link(label=label, url=url))
    return links
