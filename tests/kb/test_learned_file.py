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


@pytest.mark.parametrize("indent", ["", "  "])
def test_a_byte_that_is_not_utf8_skips_its_item_and_not_the_one_before(tmp_path: Path, indent: str) -> None:
    """Items written one key a line (as the bot writes them, or indented by hand): a bad byte on
    an item's first line is that item's, not the end of the item above."""
    path = tmp_path / "learned.yml"
    item = "{0}- id: {1}\n{0}  entry: e\n{0}  text: {2}\n{0}  taught_by: S1\n"
    path.write_bytes(
        b"phrasings:\n"
        + item.format(indent, "p1", "my export stalls").encode()
        + item.format(indent, "p2\udce9", "zebra").encode("utf-8", "surrogateescape")
    )
    found, problems = learned.read_valid(path)
    assert [p.id for p in found.phrasings] == ["p1"]
    assert problems == (f"{path}:6: not UTF-8 text; the item on this line is skipped",)


@pytest.mark.parametrize("number", ["²", "1" * 5000], ids=["superscript", "5000-digits"])
def test_a_hand_written_id_whose_number_cannot_be_read_is_kept_not_a_crash(
    tmp_path: Path, number: str
) -> None:
    """A hand-written id of another shape is the team's to choose; counting it as a number to
    give the next id above must not stop the bot at start-up."""
    path = tmp_path / "learned.yml"
    path.write_text(
        f"phrasings:\n{GOOD}  - {{id: p{number}, entry: export-failed, text: it hangs, taught_by: S1}}\n"
    )
    found, problems = learned.read_valid(path)
    assert [p.id for p in found.phrasings] == ["p1", f"p{number}"] and problems == ()
    assert found.next_phrasing_id() == "p2"


def test_a_line_separator_in_an_answer_does_not_shift_the_lines_below_it(tmp_path: Path) -> None:
    """A staff answer pasted with a Unicode line separator is written inside its quotes; PyYAML
    counts it as a line break, an editor does not. A bad byte in the next article must still skip
    that article (not the good one above) and be named at the line an editor shows."""
    path = tmp_path / "learned.yml"
    articles = tuple(
        learned.LearnedArticle(
            id=article_id, title=article_id, answer=answer, status=learned.Status.PENDING, taught_by="S1"
        )
        for article_id, answer in [
            ("export-csv", "Open Reports.\u2028Then Export."),
            ("import", "Drop it in."),
        ]
    )
    learned.write(path, learned.Learned(articles=articles))
    lines = path.read_bytes().split(b"\n")
    bad = lines.index(b"- id: import") + 1
    lines[bad - 1] = b"- id: import\xe9"
    path.write_bytes(b"\n".join(lines))
    found, problems = learned.read_valid(path)
    assert [a.id for a in found.articles] == ["export-csv"]
    assert problems == (f"{path}:{bad}: not UTF-8 text; the item on this line is skipped",)


def test_a_section_written_twice_is_a_problem_so_nothing_writes_over_the_first(tmp_path: Path) -> None:
    """A hand edit that adds a second `phrasings:` below the first: YAML keeps the last one alone.
    Unsaid, the first one's phrasings answered nobody and the next teach wrote the file without them."""
    path = tmp_path / "learned.yml"
    again = "  - {id: p2, entry: export-failed, text: it hangs, taught_by: S1}\n"
    path.write_text("phrasings:\n" + GOOD + "articles: []\nphrasings:\n" + again)
    found, problems = learned.read_valid(path)
    assert [p.id for p in found.phrasings] == ["p2"]
    assert problems == (f"{path}:4: 'phrasings' is already at line 1; only this one is read",)
    with pytest.raises(learned.LearnedFileError, match=r"learned\.yml:4: 'phrasings' is already at line 1"):
        learned.read(path)


def test_an_article_id_the_team_could_not_use_is_skipped_and_said(tmp_path: Path) -> None:
    """A team's article id is at most 64 lowercase characters; one edited into learned.yml by hand
    must not go further: a customer's pick of it is recorded as `picked:<id>` in a column of 80,
    which PostgreSQL refuses for a longer one ("something went wrong", the pick lost)."""
    path = tmp_path / "learned.yml"
    long_id = "download-an-invoice-as-a-pdf-from-billing-invoices-in-settings-for-accounting"
    item = (
        "  - {{id: {}, title: Invoices, answer: Billing then Invoices., status: approved, taught_by: S1}}\n"
    )
    path.write_text("articles:\n" + item.format("invoices") + item.format(long_id) + item.format("Invoices"))
    found, problems = learned.read_valid(path)
    assert [a.id for a in found.articles] == ["invoices"]
    assert [problem.split(": ", 1)[0] for problem in problems] == [f"{path}:3", f"{path}:4"]
    assert all("at most 64 characters" in problem for problem in problems), problems


def test_a_byte_that_is_not_utf8_in_a_comment_between_items_skips_neither(tmp_path: Path) -> None:
    """A note written in latin-1 between two items belongs to no item: the one above it ends on
    its last value's line, so it stays in service (writes still wait until the byte is fixed)."""
    path = tmp_path / "learned.yml"
    item = "- id: {}\n  entry: e\n  text: {}\n  taught_by: S1\n"
    path.write_bytes(
        b"phrasings:\n"
        + item.format("p1", "my export stalls").encode()
        + b"\n# caf\xe9 was asked too\n"
        + item.format("p2", "zebra").encode()
    )
    found, problems = learned.read_valid(path)
    assert [p.id for p in found.phrasings] == ["p1", "p2"]
    (problem,) = problems
    assert problem.startswith(f"{path}:7: not UTF-8 text")


def test_a_bad_byte_in_an_item_ending_in_an_alias_still_skips_that_item(tmp_path: Path) -> None:
    """`taught_by: *who` is the node written at `&who`, above: the item still ends on its own line."""
    path = tmp_path / "learned.yml"
    path.write_bytes(
        b"phrasings:\n- id: p1\n  entry: e\n  text: my export stalls\n  taught_by: &who S1\n"
        b"- id: p2\xe9\n  entry: e\n  text: zebra\n  taught_by: *who\n"
    )
    found, problems = learned.read_valid(path)
    assert [p.id for p in found.phrasings] == ["p1"]
    assert problems == (f"{path}:6: not UTF-8 text; the item on this line is skipped",)
