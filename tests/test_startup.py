"""A broken knowledge base stops start-up with a clear message, never a traceback."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _env(tmp_path: Path, **env: str) -> dict[str, str]:
    """This process's environment without secrets or URLs, pointed at the tests' KB and a fresh database."""
    clean = {k: v for k, v in os.environ.items() if not k.endswith(("_TOKEN", "_SECRET", "_URL"))}
    clean.update(
        PYTHONPATH=str(ROOT),
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/bot.db",
        WEB_PORT="0",
        KB_PATH=str(ROOT / "tests" / "data" / "kb"),
        COMPONENTS_FILE=str(ROOT / "tests" / "data" / "components.yml"),
        MATCHER="lexical",
    )
    clean.update(env)
    return clean


def _start(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "run", "--console"],
        input="",
        capture_output=True,
        text=True,
        env=_env(tmp_path, **env),
        cwd=tmp_path,
        timeout=60,
    )


def test_a_broken_kb_names_file_and_line(tmp_path: Path) -> None:
    kb = tmp_path / "kb"
    kb.mkdir()
    (kb / "billing.yml").write_text(
        "- id: refunds\n  questions:\n    - How do I get a refund?\n    - Refund please\n"
    )
    result = _start(tmp_path, KB_PATH=str(kb))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{kb / 'billing.yml'}:1: entry has no 'answer'" in result.stderr


def test_a_web_port_already_taken_is_one_line_and_exit_2(tmp_path: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _start(tmp_path, WEB_ENABLED="true", WEB_HOST="127.0.0.1", WEB_PORT=str(port))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "check WEB_HOST and WEB_PORT" in result.stderr


def test_output_piped_into_a_reader_that_stops_early_ends_quietly(tmp_path: Path) -> None:
    """`supportbot kb check | head -1`: the reader goes away; no traceback about a broken pipe."""
    env = _env(tmp_path)
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the command writes its first line
    try:
        result = subprocess.run(
            [sys.executable, "-m", "bot", "kb", "check"],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=60,
        )
    finally:
        os.close(write)
    assert "Traceback" not in result.stderr and "BrokenPipeError" not in result.stderr, result.stderr


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (("--bogus",), "supportbot: unrecognized arguments: --bogus (see `supportbot --help`)"),
        (
            ("db", "upgrade", "--x"),
            "supportbot db upgrade: unrecognized arguments: --x (see `supportbot db upgrade --help`)",
        ),
        (("db", "--x"), "supportbot db: unrecognized arguments: --x (see `supportbot db --help`)"),
        (
            ("kb", "eval", "--examples", "a", "--queries", "b", "--x"),
            "supportbot kb eval: unrecognized arguments: --x (see `supportbot kb eval --help`)",
        ),
        ((), "supportbot: the following arguments are required: command (see `supportbot --help`)"),
        (
            ("db",),
            "supportbot db: the following arguments are required: db_command (see `supportbot db --help`)",
        ),
    ],
)
def test_a_wrong_argument_is_named_by_the_command_it_was_given_to(
    tmp_path: Path, args: tuple[str, ...], line: str
) -> None:
    clean = {k: v for k, v in os.environ.items() if not k.endswith(("_TOKEN", "_SECRET", "_URL"))}
    result = subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        env={**clean, "PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [line]


def test_starting_the_bot_loads_no_chart_or_clustering_library(tmp_path: Path) -> None:
    """matplotlib and scipy cost a start (and every `supportbot` command) more than half a second;
    they load when a report draws a chart or clusters its gaps, not before."""
    probe = (
        "import sys, bot.app, bot.cli; print(sorted(m for m in ('matplotlib', 'scipy') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=_env(tmp_path), timeout=60
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("platform", "env", "setting"),
    [
        (
            "slack",
            {
                "SLACK_BOT_TOKEN": "xoxb-1",
                "SLACK_SIGNING_SECRET": "s",
                "SLACK_API_BASE": "http://127.0.0.1:9/api/",
            },
            "SLACK_API_BASE",
        ),
        (
            "discord",
            {"DISCORD_TOKEN": "x", "DISCORD_API_BASE": "http://127.0.0.1:9/api/v10"},
            "DISCORD_API_BASE",
        ),
    ],
)
def test_a_platform_api_nobody_answers_at_is_named_in_one_line_and_exit_2(
    tmp_path: Path, platform: str, env: dict[str, str], setting: str
) -> None:
    """Port 9 (discard) refuses the connection: the operator is told which platform setting to
    check, not the web server's, and nothing is left open for asyncio to complain about at exit."""
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        input="",
        capture_output=True,
        text=True,
        env=_env(tmp_path, PLATFORMS=platform, **env),
        cwd=tmp_path,
        timeout=60,
    )
    told = [line for line in result.stderr.splitlines() if line.startswith("supportbot:")]
    assert result.returncode == 2, result.stderr
    assert len(told) == 1 and told[0].startswith("supportbot: cannot start:"), result.stderr
    assert f"check {setting}" in told[0] and "WEB_HOST" not in told[0], told
    assert "Traceback" not in result.stderr and "Unclosed" not in result.stderr, result.stderr
    assert " ERROR " not in result.stderr, result.stderr


class _DiscordDown(http.server.BaseHTTPRequestHandler):
    """Discord's API in an outage: every request answered with `status`."""

    status = 503

    def do_GET(self) -> None:
        body = b'{"message": "Service Unavailable", "code": 0}'
        self.send_response(self.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def _discord_answering(status: int) -> Iterator[str]:
    """A local Discord API answering `status` to everything; its base URL."""
    handler = type("Answering", (_DiscordDown,), {"status": status})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api/v10"
    finally:
        server.shutdown()
        server.server_close()


def _run_on_discord(tmp_path: Path, api_base: str, **env: str) -> list[str]:
    """`supportbot run` on Discord at `api_base`: exit 2, and the one line it told the operator."""
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        input="",
        capture_output=True,
        text=True,
        env=_env(tmp_path, PLATFORMS="discord", DISCORD_TOKEN="x", DISCORD_API_BASE=api_base, **env),
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "Unclosed" not in result.stderr, result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith("supportbot:")]


def test_discord_answering_503_to_the_login_is_called_its_own_trouble_not_a_setting(tmp_path: Path) -> None:
    """Nothing is misconfigured when Discord is down: 'check DISCORD_API_BASE' would send the
    operator hunting for a mistake they did not make."""
    with _discord_answering(503) as api_base:
        (told,) = _run_on_discord(tmp_path, api_base)
    assert told == (
        "supportbot: cannot start: discord: "
        "Discord answered 503 to the login; it may be down, try again later"
    ), told


def test_a_discord_token_rejected_at_the_login_says_to_check_the_token(tmp_path: Path) -> None:
    with _discord_answering(401) as api_base:
        (told,) = _run_on_discord(tmp_path, api_base)
    assert (
        told == "supportbot: cannot start: discord: Discord rejected DISCORD_TOKEN (401); check the bot token"
    )


def test_a_discord_api_base_answering_404_to_the_login_says_to_check_it(tmp_path: Path) -> None:
    with _discord_answering(404) as api_base:
        (told,) = _run_on_discord(tmp_path, api_base)
    assert told.startswith("supportbot: cannot start: discord: Discord at ") and "answered 404" in told, told
    assert told.endswith("check DISCORD_API_BASE"), told


_OUT_OF_FILES = """
import errno, aiohappyeyeballs

async def _out_of_files(*args, **kwargs):
    raise OSError(errno.EMFILE, "Too many open files")

aiohappyeyeballs.start_connection = _out_of_files
"""


def test_a_login_that_runs_out_of_files_here_is_not_called_discord_out_of_reach(tmp_path: Path) -> None:
    """The process out of file descriptors (EMFILE) as it connects: aiohttp wraps that as a
    connector error too, but Discord is not out of reach and no setting is wrong."""
    patched = tmp_path / "patched"
    patched.mkdir()
    (patched / "sitecustomize.py").write_text(_OUT_OF_FILES)
    with _discord_answering(200) as api_base:
        (told,) = _run_on_discord(tmp_path, api_base, PYTHONPATH=f"{patched}{os.pathsep}{ROOT}")
    assert told == "supportbot: cannot start: discord: the login to Discord failed here: Too many open files"
