"""A broken knowledge-base file is reported as `file:line: what is wrong`, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.kb.loader import KBError, load_entries

ROOT = Path(__file__).resolve().parents[2]
GOOD = """\
- id: reset-api-key
  title: Reset an API key
  questions:
    - How do I reset my API key?
    - My API key leaked
  answer: Open **Settings → API keys**.
  tags: [api]
  links: [{label: API keys, url: "https://docs.example.com/keys"}]
  component: api
"""
ENTRY = "- id: {id}\n  questions:\n    - How do I {id}?\n    - Where is {id}?\n  answer: Like this.\n"


def _problems(tmp_path: Path, text: str, name: str = "faq.yml") -> list[str]:
    (tmp_path / name).write_text(text)
    with pytest.raises(KBError) as caught:
        load_entries(tmp_path)
    return caught.value.problems


def test_a_good_file_loads_with_every_field(tmp_path: Path) -> None:
    (tmp_path / "faq.yml").write_text(GOOD)
    entries, _ = load_entries(tmp_path)
    (entry,) = entries
    assert entry.id == "reset-api-key"
    assert entry.questions == ("How do I reset my API key?", "My API key leaked")
    assert entry.links[0].url == "https://docs.example.com/keys"
    assert (entry.component, entry.tags, entry.source) == ("api", ("api",), f"{tmp_path / 'faq.yml'}:1")


def test_the_shipped_sample_kb_is_valid_and_large_enough() -> None:
    entries, _ = load_entries(ROOT / "kb")
    assert len(entries) >= 30
    assert all(4 <= len(entry.questions) <= 8 for entry in entries)
    assert {"api", "dashboard", "payments", "exports", "webhooks", "auth"} <= {e.component for e in entries}


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("- id: a\n  questions: [x, y]\n", 1, "entry has no 'answer'"),
        ("- id: a\n  questions: []\n  answer: hi\n", 2, "has no questions; write at least 2 phrasings"),
        ("- id: a\n  questions: [x, y]\n  answer: hi\n  colour: red\n", 4, "unknown key 'colour'"),
        (
            "- id: a\n  questions: [x, y]\n  answer: hi\n  links:\n"
            "    - {label: docs, url: docs.example.com}\n",
            5,
            "link url 'docs.example.com' is not an http(s) or mailto: address",
        ),
        ("- id: a\n  questions: [x, y]\n  answer: [not, text]\n", 3, "'answer' must be non-empty text"),
        ("- id: Not An Id\n  questions: [x, y]\n  answer: hi\n", 1, "id 'Not An Id' must be lowercase"),
        ("- id: a\n  questions: [Same, same]\n  answer: hi\n", 2, "question 'same' is listed twice"),
        ("- id: a\n  questions: [x, '?!', '🙂']\n  answer: hi\n", 2, "question '?!' has no words"),
        ("- id: a\n  questions: [x, y]\n  answer: hi\n  answer: again\n", 4, "'answer' appears twice"),
        ("- id: a\n  questions: [x, y\n  answer: hi\n", 3, "YAML syntax error"),
        ("id: a\nquestions: [x, y]\n", 1, "expected a list of entries"),
        ("", 1, "the file is empty"),
        ("# only a comment\n", 1, "the file is empty"),
    ],
)
def test_each_problem_names_file_and_line(tmp_path: Path, text: str, line: int, message: str) -> None:
    problems = _problems(tmp_path, text)
    assert any(p.startswith(f"{tmp_path / 'faq.yml'}:{line}: ") and message in p for p in problems), problems


def test_duplicate_ids_across_files_point_at_both(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text(GOOD)
    problems = _problems(tmp_path, "# billing\n" + GOOD, name="b.yml")
    assert problems == [
        f"{tmp_path / 'b.yml'}:2: duplicate id 'reset-api-key' (first defined at {tmp_path / 'a.yml'}:1)"
    ]


def test_an_entry_with_one_phrasing_loads(tmp_path: Path) -> None:
    """Allowed (a team may start with one question per article); `kb check` warns about it."""
    (tmp_path / "faq.yml").write_text("- id: a\n  questions:\n    - How do I pay?\n  answer: hi\n")
    (entry,), _ = load_entries(tmp_path)
    assert entry.questions == ("How do I pay?",)


def test_every_problem_in_every_file_is_reported_at_once(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text("- id: a\n  questions: []\n  answer: hi\n")
    problems = _problems(tmp_path, "- id: b\n  questions: [x, y]\n", name="b.yml")
    assert [p.split(": ", 1)[0] for p in problems] == [f"{tmp_path / 'a.yml'}:2", f"{tmp_path / 'b.yml'}:1"]


def test_a_missing_or_empty_folder_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(KBError, match="no such file or folder"):
        load_entries(tmp_path / "nowhere")
    with pytest.raises(KBError, match=r"no \.yml or \.yaml files"):
        load_entries(tmp_path)


def test_text_that_is_not_utf8_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / "faq.yml").write_bytes(b"- id: caf\xe9\n")
    with pytest.raises(KBError, match=r"faq\.yml:1: not UTF-8 text"):
        load_entries(tmp_path)


def test_a_control_character_is_reported_on_its_own_line(tmp_path: Path) -> None:
    (problem,) = _problems(tmp_path, ENTRY.format(id="a") + ENTRY.format(id="b").replace("Like", "Li\x00ke"))
    assert problem.startswith(f"{tmp_path / 'faq.yml'}:10: "), problem
