"""The console adapter end to end: a real `supportbot run --console` subprocess fed through a pipe."""

from __future__ import annotations

import io
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from bot.adapters.console import ConsoleAdapter

ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path: Path) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.endswith(("_TOKEN", "_SECRET")) and k != "DATABASE_URL"
    }
    env.update(
        PYTHONPATH=str(ROOT),
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/bot.db",
        WEB_PORT="0",
        KB_PATH=str(ROOT / "kb"),
        COMPONENTS_FILE=str(ROOT / "components.yml"),
        # The console is under test, not the matcher: the semantic model would add 6 s to each start
        # (tests/kb/test_semantic.py and the `kb eval` test load it).
        MATCHER="lexical",
    )
    return env


def _supportbot(tmp_path: Path, *args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "run", "--console", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        cwd=tmp_path,
        timeout=120,
    )


def _console(tmp_path: Path) -> subprocess.Popen[str]:
    """A console bot to talk to through its pipes, line by line."""
    return subprocess.Popen(
        [sys.executable, "-m", "bot", "run", "--console"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp_path),
        cwd=tmp_path,
    )


def test_piped_session_greets_and_lists_help(tmp_path: Path) -> None:
    result = _supportbot(tmp_path, stdin="hello\n/support help\n/nonsense\n")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "bot> Hi you!" in out
    assert "How I can help" in out and "/support help" in out
    assert "I don't know the command `/nonsense`" in out
    assert "Traceback" not in result.stderr


def test_end_of_input_exits_cleanly_and_keeps_committed_rows(tmp_path: Path) -> None:
    result = _supportbot(tmp_path, stdin="hello\nhelp\n")
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(tmp_path / "bot.db") as db:
        handled = db.execute("SELECT count(*) FROM processed_events WHERE platform='console'").fetchone()[0]
    assert handled == 2


def test_sigterm_stops_the_bot_cleanly(tmp_path: Path) -> None:
    process = _console(tmp_path)
    assert process.stdin and process.stdout
    process.stdin.write("hello\n")
    process.stdin.flush()
    assert process.stdout.readline().startswith("supportbot console")
    assert "Hi you!" in process.stdout.readline()
    time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    with sqlite3.connect(tmp_path / "bot.db") as db:
        assert db.execute("SELECT count(*) FROM processed_events").fetchone()[0] == 1


def _session(tmp_path: Path, stdin: bytes, **env: str) -> subprocess.CompletedProcess[bytes]:
    """A console session fed raw bytes, without the web server."""
    return subprocess.run(
        [sys.executable, "-m", "bot", "run", "--console"],
        input=stdin,
        capture_output=True,
        env={**_env(tmp_path), "WEB_ENABLED": "false", **env},
        cwd=tmp_path,
        timeout=120,
    )


def test_a_second_console_session_on_the_same_database_is_answered(tmp_path: Path) -> None:
    first = _session(tmp_path, b"/status\n")
    assert first.returncode == 0 and b"All systems operational" in first.stdout
    second = _session(tmp_path, b"/status\n")
    assert second.returncode == 0
    assert b"All systems operational" in second.stdout, second.stdout.decode()


def test_piped_bytes_that_are_not_utf8_do_not_break_the_question(tmp_path: Path) -> None:
    result = _session(tmp_path, b"how do I reset my API key? caf\xe9\n", LC_ALL="C.UTF-8")
    assert result.returncode == 0
    out = result.stdout.decode(errors="replace")
    assert "something went wrong" not in out, out
    assert "UnicodeEncodeError" not in result.stderr.decode(errors="replace")


def test_a_reader_that_goes_away_ends_the_session_quietly(tmp_path: Path) -> None:
    """`supportbot run --console | head -1`: the rest of the answers have nobody to go to."""
    bot = _console(tmp_path)
    assert bot.stdout is not None and bot.stdin is not None
    assert bot.stdout.readline().startswith("supportbot console.")
    bot.stdout.close()  # as `head -1` does after its line
    bot.stdin.write("hello\n/support help\nhow do I reset my api key?\n")
    bot.stdin.close()
    assert bot.wait(timeout=60) == 0
    errors = bot.stderr.read() if bot.stderr else ""
    assert "Traceback" not in errors and "BrokenPipe" not in errors, errors


class _GoneStream(io.StringIO):
    """A stream that is not a file (no descriptor) whose reader has gone away."""

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")


async def test_a_reader_gone_from_a_stream_that_is_not_a_file_ends_the_session() -> None:
    """stdout replaced by an object with no file descriptor: the session still just ends."""
    adapter = ConsoleAdapter(stdin=io.StringIO(""), stdout=_GoneStream())
    adapter._write("bot> hello")
    assert adapter.finished.is_set()


def test_a_line_starting_with_two_slashes_is_a_message_and_the_session_goes_on(tmp_path: Path) -> None:
    """`//x` (a path, a comment, a typo) made a command named `/x`, which no event may have: the
    reader stopped on a traceback and every later line went unanswered."""
    result = _supportbot(tmp_path, stdin="//usr/local is full\n/status\n")
    assert result.returncode == 0
    assert "Traceback" not in result.stderr, result.stderr[-500:]
    assert "All systems operational" in result.stdout, result.stdout


def test_buttons_are_numbered_from_one_in_each_answer_and_only_the_last_ones_answer(tmp_path: Path) -> None:
    """Typing 5 at "[1] 1 ★ … [5] 5 ★" must be five stars, and a number must not click a button of
    an answer the person has moved on from."""
    result = _supportbot(tmp_path, stdin="How do I reset my API key?\n1\n2\nI want to talk to a person\n1\n")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "[1] That solved it  [2] I still need help" in out
    assert "Glad that solved it" in out
    assert "(no button [2] to click: a number clicks a button of the last answer" in out
    assert out.count("ticket **#") == 1, "2 clicked nothing: the answer's buttons went with the next line"
    assert "[1] Claim  [2] Close" in out, "the card's buttons start again from 1"
    assert "That's for the support team only" in out, "1 is the card's Claim now"
