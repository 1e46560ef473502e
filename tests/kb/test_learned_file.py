"""learned.yml edited by hand: each problem is said as `file:line: what`, the item it is in is
skipped, and everything else in the file is still read."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.kb import learned

GOOD = "  - {id: p1, entry: export-failed, text: my export stalls, taught_by: S1}\n"


def test_a_byte_that_is_not_utf8_skips_only_the_item_it_is_in(tmp_path: Path) -> None:
    path = tmp_path / "learned.yml"
    path.write_bytes(
        b"phrasings:\n"
        + GOOD.encode()
        + b"  - {id: p2, entry: export-failed, text: caf\xe9, taught_by: S1}\n"
    )
    found, problems = learned.read_valid(path)
    assert [p.id for p in found.phrasings] == ["p1"]
    assert problems == (f"{path}:3: not UTF-8 text; the item on this line is skipped",)
    with pytest.raises(learned.LearnedFileError, match=r"learned\.yml:3: not UTF-8 text"):
        learned.read(path)


def test_invalid_yaml_is_one_line_that_says_where(tmp_path: Path) -> None:
    path = tmp_path / "learned.yml"
    path.write_text("phrasings:\n" + GOOD + "  - {id: p2, text: [oops\n")
    found, (problem,) = learned.read_valid(path)
    assert found == learned.Learned()
    assert problem.startswith(f"{path}:4: not valid YAML: ") and "\n" not in problem


def test_a_declined_topic_without_questions_is_skipped_and_the_others_kept(tmp_path: Path) -> None:
    path = tmp_path / "learned.yml"
    path.write_text(
        "phrasings:\n" + GOOD + "declined:\n"
        "  - {id: n1, questions: [], taught_by: S1}\n"
        "  - {id: n2, questions: [can you do my taxes], taught_by: S1}\n"
    )
    found, (problem,) = learned.read_valid(path)
    assert [p.id for p in found.phrasings] == ["p1"] and [d.id for d in found.declined] == ["n2"]
    assert problem.startswith(f"{path}:4: a declined topic needs 'questions'")


def test_a_number_too_long_to_read_skips_only_the_item_it_is_in(tmp_path: Path) -> None:
    # PyYAML builds an int with int(), which refuses more than 4,300 digits.
    path = tmp_path / "learned.yml"
    path.write_text(
        "phrasings:\n"
        + GOOD
        + f"  - {{id: p2, entry: x, text: y, taught_by: S1, from_ticket: {'9' * 5000}}}\n"
        + "  - {id: p3, entry: export-failed, text: the export hangs, taught_by: S1}\n"
    )
    found, (problem,) = learned.read_valid(path)
    assert [p.id for p in found.phrasings] == ["p1", "p3"]
    assert problem.startswith(f"{path}:3: a value cannot be read (") and len(problem) < 300
    assert problem.endswith("); the item is skipped")


def test_a_value_of_a_type_yaml_may_not_build_skips_only_the_item_it_is_in(tmp_path: Path) -> None:
    path = tmp_path / "learned.yml"
    path.write_text(
        "phrasings:\n"
        + GOOD
        + "  - id: p2\n    entry: x\n    text: !!python/name:os.system y\n    taught_by: S1\n"
        + "issued: {phrasings: 2, declined: 0}\n"
    )
    found, (problem,) = learned.read_valid(path)
    assert [p.id for p in found.phrasings] == ["p1"] and found.phrasings_issued == 2
    assert problem.startswith(f"{path}:3: a value cannot be read (") and "python/name" in problem


def test_an_unreadable_number_in_issued_is_said_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "learned.yml"
    path.write_text("phrasings:\n" + GOOD + f"issued: {{phrasings: {'9' * 5000}}}\n")
    found, (problem,) = learned.read_valid(path)
    assert [p.id for p in found.phrasings] == ["p1"] and found.phrasings_issued == 1
    assert problem.startswith(f"{path}:3: a value cannot be read (")
