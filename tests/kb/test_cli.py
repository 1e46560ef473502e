"""`supportbot kb check` and `kb eval` as a user runs them: one line per problem and exit code 2
for bad input, never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.kb import semantic

ROOT = Path(__file__).resolve().parents[2]
# The development set lives beside the project (../shared), not in it; a clone elsewhere finds it
# through BANKING77_DIR or the workplace's fixed location.
BANKING77 = next(
    (
        path
        for path in (
            Path(os.environ.get("BANKING77_DIR", "/nonexistent")),
            ROOT.parent / "shared" / "data" / "banking77",
            Path("/work/shared/data/banking77"),
        )
        if (path / "queries.jsonl").exists()
    ),
    ROOT.parent / "shared" / "data" / "banking77",
)
ENTRY = "- id: {id}\n  questions:\n    - How do I {id}?\n    - Where is {id}?\n  answer: Like this.\n"
DEEP = "- id: deep\n  questions: " + "[" * 3000 + "]" * 3000 + "\n  answer: hi\n"  # breaks the YAML parser
EVAL_KEYS = {
    "answered_precision",
    "in_scope_coverage",
    "oos_escalation",
    "top1_accuracy",
    "ms_per_query",
    "coverage_at_95",
}


def supportbot(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_TOKEN", "_URL", "_SECRET"))}
    env.update(PYTHONPATH=str(ROOT), MATCHER="lexical")
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )


def test_check_accepts_the_sample_kb(tmp_path: Path) -> None:
    result = supportbot("kb", "check", "--path", str(ROOT / "kb"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "entries in 6 file(s), all valid" in result.stdout


def test_check_names_file_and_line_of_each_problem(tmp_path: Path) -> None:
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "billing.yml").write_text(
        "- id: refunds\n  questions: [Can I get a refund]\n  answer: Yes.\n  colour: blue\n"
    )
    result = supportbot("kb", "check", cwd=tmp_path)  # KB_PATH defaults to ./kb
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "kb/billing.yml:4: unknown key 'colour' in an entry; known keys: id, title, questions, answer, tags,"
        " links, component",
    ]
    assert "Traceback" not in result.stderr


def test_check_reports_deeply_nested_yaml_instead_of_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "faq.yml").write_text(DEEP)
    result = supportbot("kb", "check", "--path", str(tmp_path / "kb"), cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-300:]
    assert "Traceback" not in result.stderr and "RecursionError" not in result.stderr
    assert result.stderr.startswith(f"{tmp_path / 'kb' / 'faq.yml'}:")


def test_check_warns_about_a_component_that_components_yml_does_not_declare(tmp_path: Path) -> None:
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "faq.yml").write_text(ENTRY.format(id="a") + "  component: paymnets\n")
    (tmp_path / "components.yml").write_text("components:\n  - name: payments\n")
    result = supportbot("kb", "check", "--path", str(tmp_path / "kb"), cwd=tmp_path)
    # A warning, not an error: staff may have added the component with /component add.
    assert result.returncode == 0, result.stderr
    assert "component 'paymnets' is not in" in result.stderr
    assert f"{tmp_path / 'kb' / 'faq.yml'}:" in result.stderr


def _slice(tmp_path: Path) -> tuple[Path, Path]:
    """A small, fixed slice of Banking77: 12 intents as the KB, and queries of those and others."""
    examples = [json.loads(line) for line in (BANKING77 / "kb_examples_10.jsonl").read_text().splitlines()]
    queries = [json.loads(line) for line in (BANKING77 / "queries.jsonl").read_text().splitlines()]
    labels = sorted({e["label"] for e in examples})[:12]
    kept = [e for e in examples if e["label"] in labels]
    asked = [q for q in queries if q["label"] in labels][:120] + [q for q in queries if q["label"] is None][
        :40
    ]
    (tmp_path / "examples.jsonl").write_text("\n".join(json.dumps(e) for e in kept) + "\n")
    (tmp_path / "queries.jsonl").write_text("\n".join(json.dumps(q) for q in asked) + "\n")
    return tmp_path / "examples.jsonl", tmp_path / "queries.jsonl"


# Without the extra a user gets a skip with the reason; in CI (which installs it) a missing extra fails.
NEEDS_SEMANTIC = [
    pytest.mark.semantic,
    pytest.mark.skipif(
        not semantic.available() and not os.environ.get("CI"),
        reason="the semantic extra is not installed: pip install -e '.[semantic]'",
    ),
]


@pytest.mark.skipif(not BANKING77.exists(), reason=f"the Banking77 development set is not at {BANKING77}")
@pytest.mark.parametrize(
    ("matcher", "top1_at_least"), [("lexical", 0.6), pytest.param("semantic", 0.8, marks=NEEDS_SEMANTIC)]
)
def test_eval_reports_the_figures_as_one_json_object(
    tmp_path: Path, matcher: str, top1_at_least: float
) -> None:
    examples, queries = _slice(tmp_path)
    result = supportbot(
        "kb", "eval", "--examples", str(examples), "--queries", str(queries), "--matcher", matcher, "--json",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report.keys() >= EVAL_KEYS
    assert (report["matcher"], report["entries"], report["in_scope"], report["out_of_scope"]) == (
        matcher,
        12,
        120,
        40,
    )
    # Twelve distinct intents are far easier than 58: the matcher must do clearly better than chance.
    assert report["top1_accuracy"] > top1_at_least
    assert report["answered_precision"] is None or report["answered_precision"] >= 0.8
    assert 0.0 <= report["in_scope_coverage"] <= report["coverage_at_95"] + 0.2


def test_eval_rejects_a_bad_line_with_its_number(tmp_path: Path) -> None:
    (tmp_path / "examples.jsonl").write_text('{"text": "hi", "label": "greet"}\n{"text": "hello"}\n')
    (tmp_path / "queries.jsonl").write_text('{"text": "hey", "label": null}\n')
    result = supportbot(
        "kb",
        "eval",
        "--examples",
        "examples.jsonl",
        "--queries",
        "queries.jsonl",
        "--matcher",
        "lexical",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "supportbot kb eval: examples.jsonl:2: every example needs a label"


def test_eval_with_a_missing_file_says_so(tmp_path: Path) -> None:
    result = supportbot("kb", "eval", "--examples", "nope.jsonl", "--queries", "nope.jsonl", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "supportbot kb eval: nope.jsonl: no such file"


def test_check_on_a_path_that_does_not_exist_says_so(tmp_path: Path) -> None:
    result = supportbot("kb", "check", "--path", "nowhere", cwd=tmp_path)
    assert result.returncode == 2
    assert (
        result.stderr.strip() == "nowhere: no such file or folder (set KB_PATH to your knowledge-base folder)"
    )


def test_check_on_a_device_says_it_is_not_a_folder_or_a_file(tmp_path: Path) -> None:
    """'no .yml or .yaml files in this folder' would call /dev/zero a folder."""
    result = supportbot("kb", "check", "--path", "/dev/zero", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "/dev/zero: not a folder or a file (set KB_PATH to your knowledge-base folder)"
    )


@pytest.mark.parametrize("option", ["--examples", "--queries"])
def test_eval_given_a_folder_names_the_option(tmp_path: Path, option: str) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "both.jsonl").write_text('{"text": "How do I pay?", "label": "billing"}\n')
    files = {"--examples": "both.jsonl", "--queries": "both.jsonl", option: "data"}
    result = supportbot("kb", "eval", *[part for pair in files.items() for part in pair], cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == f"supportbot kb eval: {option} data is a folder; name a JSONL file"


def _two_articles_and_learned(tmp_path: Path, learned: str) -> Path:
    """A KB folder of two team articles and the bot's learned.yml."""
    folder = tmp_path / "kb"
    folder.mkdir()
    (folder / "faq.yml").write_text(ENTRY.format(id="export") + ENTRY.format(id="import"))
    (folder / "learned.yml").write_text(learned)
    return folder


def test_check_lists_pending_drafts(tmp_path: Path) -> None:
    folder = _two_articles_and_learned(
        tmp_path,
        "phrasings:\n  - {id: p1, entry: prices, text: what are your prices, taught_by: U1}\n"
        "articles:\n  - {id: prices, title: Prices, answer: $20, status: pending, taught_by: U1,"
        " from_ticket: 4}\n",
    )
    result = supportbot("kb", "check", "--path", str(folder), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2 entries in 2 file(s), all valid" in result.stdout  # the draft is not active
    assert "pending draft `prices` (Prices), taught by U1 from ticket #4" in result.stdout


def test_check_lists_declined_topics_apart_from_the_entries(tmp_path: Path) -> None:
    folder = _two_articles_and_learned(
        tmp_path,
        "declined:\n  - {id: n1, questions: [can you do my taxes, tax return help], taught_by: U1}\n",
    )
    result = supportbot("kb", "check", "--path", str(folder), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "2 entries in 2 file(s), all valid" in result.stdout, "a declined topic is not an entry"
    assert "1 declined topic (2 questions staff marked as not the bot's to answer)" in result.stdout
    assert (
        "declined topic `n1` (2 questions, \u201ccan you do my taxes\u201d), declined by U1: "
        "undo with /support kb forget n1"
    ) in result.stdout


def test_check_counts_a_declined_topic_of_one_question_in_the_singular(tmp_path: Path) -> None:
    folder = _two_articles_and_learned(
        tmp_path, "declined:\n  - {id: n1, questions: [can you do my taxes], taught_by: U1}\n"
    )
    result = supportbot("kb", "check", "--path", str(folder), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "declined topic `n1` (1 question, \u201ccan you do my taxes\u201d)" in result.stdout


def test_check_says_where_learned_yml_is_wrong_and_still_lists_the_rest(tmp_path: Path) -> None:
    folder = _two_articles_and_learned(
        tmp_path,
        "phrasings:\n  - {id: p1, entry: prices, text: what are your prices, taught_by: U1}\n"
        "  - {id: p2, entry: export, taught_by: U1}\n"
        "articles:\n  - {id: prices, title: Prices, answer: $20, status: pending, taught_by: U1}\n",
    )
    result = supportbot("kb", "check", "--path", str(folder), cwd=tmp_path)
    assert result.returncode == 2
    assert f"{folder / 'learned.yml'}:3: an item has no 'text'" in result.stderr.splitlines()
    assert "all valid" not in result.stdout
    assert "pending draft `prices` (Prices), taught by U1" in result.stdout


def test_check_skips_only_the_learned_item_with_an_unreadable_number(tmp_path: Path) -> None:
    folder = _two_articles_and_learned(
        tmp_path,
        "phrasings:\n  - {id: p1, entry: export, text: the export stalls, taught_by: U1}\n"
        f"  - {{id: p2, entry: export, text: it hangs, taught_by: U1, from_ticket: {'4' * 5000}}}\n"
        "articles:\n  - {id: prices, title: Prices, answer: $20, status: pending, taught_by: U1}\n",
    )
    result = supportbot("kb", "check", "--path", str(folder), cwd=tmp_path)
    assert result.returncode == 2
    (problem,) = [line for line in result.stderr.splitlines() if "learned.yml" in line]
    assert problem.startswith(f"{folder / 'learned.yml'}:3: a value cannot be read (")
    assert "1 learned item(s) skipped (below)" in result.stdout
    assert "pending draft `prices` (Prices), taught by U1" in result.stdout
