"""The KB loader on random YAML: a knowledge base, or KBError whose every problem is `file:line: what`;
never another exception, whatever the file holds (any YAML syntax, any structure, any bytes)."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from bot.kb.loader import KBError, load_entries

# Pieces of YAML, right and wrong: entry keys, flow and block syntax, anchors, tags, documents.
YAML_TOKENS = (
    "- ",
    "  ",
    "\n",
    "id: ",
    "questions:",
    "answer: ",
    "title: ",
    "tags: ",
    "links:",
    "component: ",
    "label: ",
    "url: ",
    "reset-api-key",
    "How do I reset it?",
    "https://docs.example.com",
    "mailto:help@example.com",
    "[",
    "]",
    "{",
    "}",
    ", ",
    ": ",
    "? ",
    "|\n",
    ">-\n",
    "&a ",
    "*a",
    "<<: *a\n",
    "!!python/object:os.system ",
    "!!binary ",
    "!custom ",
    "---\n",
    "...\n",
    "%YAML 1.1\n",
    "'",
    '"',
    "\\x",
    "#",
    "\t",
    "~",
    "null",
    "2026-12-01",
    "1e309",
    "0x1F",
    "\ufeff",
    "\x00",
    "\x85",
)
yaml_texts = st.lists(st.one_of(st.sampled_from(YAML_TOKENS), st.text(max_size=8)), max_size=40).map("".join)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=20),
    st.dates(),
    st.sampled_from(["reset-api-key", "How do I reset my key?", "Where is my key?", "https://x.example/a"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
ENTRY_KEYS = ("id", "title", "questions", "answer", "tags", "links", "component", "colour")


@st.composite
def entry_like(draw: st.DrawFn) -> dict[str, Any]:
    """Something shaped like an entry, with any value under each key."""
    keys = draw(st.lists(st.sampled_from(ENTRY_KEYS), unique=True, max_size=len(ENTRY_KEYS)))
    return {key: draw(values) for key in keys}


structured_yaml = st.one_of(values, st.lists(st.one_of(entry_like(), values), max_size=4)).map(
    lambda document: yaml.safe_dump(document, allow_unicode=True, sort_keys=False)
)
files = st.one_of(
    yaml_texts.map(lambda text: text.encode("utf-8", "surrogatepass")),
    structured_yaml.map(str.encode),
    st.binary(max_size=200),
)


def _load(contents: list[bytes]) -> tuple[str, list[str] | None]:
    """(the folder, its problems or None when it loaded)."""
    with tempfile.TemporaryDirectory(prefix="kb-") as folder:
        root = Path(folder)
        for index, content in enumerate(contents):
            (root / f"faq{index}.yml").write_bytes(content)
        try:
            load_entries(root)
        except KBError as error:
            return folder, error.problems
        return folder, None


@example(contents=[b"- ? '\n\n'"])  # found here: an unknown key with line breaks made a problem of 3 lines
@example(contents=[b"- &a [*a]\n"])
@example(
    contents=[
        b"- id: a\n  questions: [x, y]\n  answer: hi\n  links: [&l {url: 'https://x.example', label: *l}]\n"
    ]
)
@example(contents=["- id: a\n  questions: [x, y]\n  answer: \x85\n".encode()])
@example(contents=[b"\xff\xfe- id: a\n"])
@given(st.lists(files, min_size=1, max_size=3))
def test_any_file_is_a_knowledge_base_or_problems_each_naming_file_and_line(contents: list[bytes]) -> None:
    root, problems = _load(contents)
    if problems is None:
        return
    assert problems
    where = re.compile(rf"^{re.escape(root)}/faq\d+\.yml:\d+: \S")
    for problem in problems:
        assert where.match(problem), problem
        assert len(problem.splitlines()) == 1, problem


@given(st.lists(entry_like(), min_size=1, max_size=3))
def test_a_loaded_entry_has_what_the_bot_needs(entries: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory(prefix="kb-") as folder:
        path = Path(folder) / "faq.yml"
        path.write_text(yaml.safe_dump(entries, allow_unicode=True), encoding="utf-8")
        try:
            loaded, _ = load_entries(Path(folder))
        except KBError:
            return
    for entry in loaded:
        assert entry.id and entry.answer.strip() and entry.questions
        assert entry.source.startswith(f"{path}:")
