"""Edges a review found in loading and starting: knowledge-base files that break the parser, reloads
racing edits, a second console session on the same database, bytes that are not UTF-8 (stdin, .env),
a malformed DATABASE_URL, links to past incidents on the status page. Each test failed before its fix."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import bot.kb.knowledge_base as kb_base
from bot.kb.knowledge_base import KnowledgeBaseHolder
from bot.kb.loader import KBError, load_entries

ROOT = Path(__file__).resolve().parent.parent
FIXTURE_KB = ROOT / "tests" / "data" / "kb"
ENTRY = "- id: {id}\n  questions:\n    - How do I {id}?\n    - Where is {id}?\n  answer: Like this.\n"
DEEP = "- id: deep\n  questions: " + "[" * 3000 + "]" * 3000 + "\n  answer: hi\n"


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.endswith(("_TOKEN", "_SECRET", "_URL")) and k not in ("KB_PATH", "COMPONENTS_FILE")
    }
    env.update(
        PYTHONPATH=str(ROOT),
        MATCHER="lexical",
        WEB_ENABLED="false",
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/bot.db",
        KB_PATH=str(ROOT / "kb"),
        COMPONENTS_FILE=str(ROOT / "components.yml"),
    )
    env.update(extra)
    return env


def _supportbot(
    tmp_path: Path, *args: str, stdin: bytes = b"", **env: str
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        input=stdin,
        capture_output=True,
        env=_env(tmp_path, **env),
        cwd=tmp_path,
        timeout=120,
    )


# -- knowledge base ------------------------------------------------------------------------------


def test_kb_check_reports_deeply_nested_yaml_instead_of_a_traceback(tmp_path: Path) -> None:
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "faq.yml").write_text(DEEP)
    result = _supportbot(tmp_path, "kb", "check", "--path", str(tmp_path / "kb"))
    stderr = result.stderr.decode()
    assert result.returncode == 2, stderr[-300:]
    assert "Traceback" not in stderr and "RecursionError" not in stderr
    assert stderr.startswith(f"{tmp_path / 'kb' / 'faq.yml'}:")


def test_a_control_character_is_reported_on_its_own_line(tmp_path: Path) -> None:
    (tmp_path / "faq.yml").write_text(ENTRY.format(id="a") + ENTRY.format(id="b").replace("Like", "Li\x00ke"))
    with pytest.raises(KBError) as caught:
        load_entries(tmp_path)
    (problem,) = caught.value.problems
    assert problem.startswith(f"{tmp_path / 'faq.yml'}:10: "), problem


def test_kb_check_warns_about_a_component_that_components_yml_does_not_declare(tmp_path: Path) -> None:
    (tmp_path / "kb").mkdir()
    (tmp_path / "kb" / "faq.yml").write_text(ENTRY.format(id="a") + "  component: paymnets\n")
    (tmp_path / "components.yml").write_text("components:\n  - name: payments\n")
    result = _supportbot(tmp_path, "kb", "check", "--path", str(tmp_path / "kb"))
    # A warning, not an error: staff may have added the component with /component add.
    assert result.returncode == 0, result.stderr.decode()
    assert "component 'paymnets' is not in" in result.stderr.decode()
    assert f"{tmp_path / 'kb' / 'faq.yml'}:" in result.stderr.decode()


async def test_the_watcher_keeps_reloading_after_an_edit_that_breaks_the_parser(tmp_path: Path) -> None:
    kb_dir = tmp_path / "kb"
    shutil.copytree(FIXTURE_KB, kb_dir)
    holder = KnowledgeBaseHolder(kb_dir, matcher="lexical")
    reloaded = asyncio.Event()
    watcher = asyncio.create_task(holder.watch(interval=0.01, on_reload=lambda _: reloaded.set()))
    try:
        (kb_dir / "broken.yml").write_text(DEEP)
        await asyncio.sleep(0.5)
        (kb_dir / "broken.yml").write_text(ENTRY.format(id="fixed"))
        await asyncio.wait_for(reloaded.wait(), timeout=5)
    finally:
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    assert holder.get("fixed") is not None


def test_a_fix_saved_while_a_broken_reload_runs_is_picked_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kb_dir = tmp_path / "kb"
    shutil.copytree(FIXTURE_KB, kb_dir)
    holder = KnowledgeBaseHolder(kb_dir, matcher="lexical")
    (kb_dir / "new.yml").write_text("- id: new\n  questions: [x]\n  answer: hi\n")  # broken: one question
    real_load = kb_base.load_entries

    def load_then_user_saves_the_fix(path: Path):  # type: ignore[no-untyped-def]
        try:
            return real_load(path)
        finally:
            # The author saves the corrected file while the failed load is being reported.
            (kb_dir / "new.yml").write_text(ENTRY.format(id="new") + "  title: fixed now\n")

    monkeypatch.setattr(kb_base, "load_entries", load_then_user_saves_the_fix)
    with pytest.raises(KBError):
        holder.reload_if_changed()
    monkeypatch.setattr(kb_base, "load_entries", real_load)
    holder.reload_if_changed()
    assert holder.get("new") is not None, "the valid file on disk is never loaded"


# -- settings and start-up -----------------------------------------------------------------------


@pytest.mark.parametrize("command", [("db", "current"), ("run", "--console")])
def test_a_malformed_database_url_is_one_line_and_exit_2(tmp_path: Path, command: tuple[str, ...]) -> None:
    url = "postgresql+asyncpg://admin:s3cretpw@db.example:notaport/app"
    result = _supportbot(tmp_path, *command, DATABASE_URL=url)
    stderr = result.stderr.decode()
    assert "s3cretpw" not in stderr + result.stdout.decode()
    assert "Traceback" not in stderr, stderr[-300:]
    assert result.returncode == 2
    assert len(stderr.strip().splitlines()) == 1 and "DATABASE_URL" in stderr


def test_a_dotenv_that_is_not_utf8_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / ".env").write_bytes(b"LOG_LEVEL=INFO\nSTAFF_CHANNEL=console:caf\xe9\n")
    result = _supportbot(tmp_path, "kb", "check")
    stderr = result.stderr.decode()
    assert "Traceback" not in stderr, stderr[-300:]
    assert result.returncode == 2
    assert len(stderr.strip().splitlines()) == 1 and ".env" in stderr


# -- console -------------------------------------------------------------------------------------


def test_a_second_console_session_on_the_same_database_is_answered(tmp_path: Path) -> None:
    first = _supportbot(tmp_path, "run", "--console", stdin=b"/status\n")
    assert first.returncode == 0 and b"All systems operational" in first.stdout
    second = _supportbot(tmp_path, "run", "--console", stdin=b"/status\n")
    assert second.returncode == 0
    assert b"All systems operational" in second.stdout, second.stdout.decode()


def test_piped_bytes_that_are_not_utf8_do_not_break_the_question(tmp_path: Path) -> None:
    result = _supportbot(
        tmp_path, "run", "--console", stdin=b"how do I reset my API key? caf\xe9\n", LC_ALL="C.UTF-8"
    )
    assert result.returncode == 0
    out = result.stdout.decode(errors="replace")
    assert "something went wrong" not in out, out
    assert "UnicodeEncodeError" not in result.stderr.decode(errors="replace")
