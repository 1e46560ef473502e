"""`supportbot init` writes a working starter site; `supportbot run` where there is none says what to do."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent


def supportbot(cwd: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("KB_PATH", "COMPONENTS_FILE", "DATABASE_URL")}
    env.update(PYTHONPATH=str(ROOT), MATCHER="lexical", WEB_PORT="0")
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=60,
    )


def test_init_writes_the_sample_kb_components_and_env(tmp_path: Path) -> None:
    result = supportbot(tmp_path, "init", "site")
    assert result.returncode == 0, result.stderr
    site = tmp_path / "site"
    for sample in (ROOT / "kb").glob("*.yml"):
        assert (site / "kb" / sample.name).read_bytes() == sample.read_bytes()
    assert (site / "components.yml").read_bytes() == (ROOT / "components.yml").read_bytes()
    assert (site / ".env").read_bytes() == (ROOT / ".env.example").read_bytes()
    assert (site / ".env").stat().st_mode & 0o077 == 0, ".env will hold tokens: owner only"
    steps = [line for line in result.stdout.splitlines() if line.strip()[:3] in ("1. ", "2. ", "3. ")]
    assert len(steps) == 3, result.stdout
    assert "cd site" in result.stdout


def test_init_never_overwrites_and_says_what_it_kept(tmp_path: Path) -> None:
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "billing.yml").write_text("# mine\n")
    (tmp_path / ".env").write_text("PLATFORMS=slack\n")
    result = supportbot(tmp_path, "init")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "kb" / "billing.yml").read_text() == "# mine\n"
    assert (tmp_path / ".env").read_text() == "PLATFORMS=slack\n"
    assert (tmp_path / "kb" / "api.yml").read_bytes() == (ROOT / "kb" / "api.yml").read_bytes()
    kept = next(line for line in result.stdout.splitlines() if line.startswith("kept"))
    assert "kb/billing.yml" in kept and ".env" in kept and "components.yml" not in kept
    assert "cd " not in result.stdout, "the site is here: no cd step"


def test_the_written_env_is_valid_settings_as_it_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert supportbot(tmp_path, "init").returncode == 0
    for name in list(os.environ):
        if name.isupper() and name not in ("PATH", "HOME"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    # Empty optional values (ANSWER_THRESHOLD=, SLACK_BOT_TOKEN=) mean "not set", not "" or an error.
    assert settings.answer_threshold is None
    assert settings.slack_bot_token is None
    assert settings.active_platforms == ["console"]


def test_the_initialised_site_answers_a_sample_question(tmp_path: Path) -> None:
    assert supportbot(tmp_path, "init").returncode == 0
    result = supportbot(tmp_path, "run", "--console", stdin="how do I reset my api key?\n")
    assert result.returncode == 0, result.stderr
    assert "Reset or roll an API key" in result.stdout


def test_run_without_a_knowledge_base_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = supportbot(tmp_path, "run", "--console")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "supportbot: no knowledge base here: run `supportbot init`, or set KB_PATH"
    ]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("init", "a", "b"), "unrecognized arguments: b"),
        (("init", "--force"), "unrecognized arguments: --force"),
        (("db", "backup"), "required: FILE"),
        (("db", "restore"), "required: FILE"),
        (("db", "backup", "a", "b"), "unrecognized arguments: b"),
        (("db", "dump"), "invalid choice: 'dump'"),
    ],
)
def test_a_wrong_argument_is_one_line_and_exit_2(tmp_path: Path, args: tuple[str, ...], says: str) -> None:
    result = supportbot(tmp_path, *args)
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert says in line and "--help" in line, line


def test_init_into_a_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    result = supportbot(tmp_path, "init", "notes.txt")
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert "notes.txt is a file" in line
