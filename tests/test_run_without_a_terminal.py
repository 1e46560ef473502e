"""With no platform and no terminal (a container, a service), `supportbot run` serves the web page and
API until it is stopped, instead of a console that ends with stdin; `--console` forces the console."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from bot import cli
from bot.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_TOKEN", "_SECRET", "_URL"))}
    env.update(
        PYTHONPATH=str(ROOT),
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/bot.db",
        KB_PATH=str(ROOT / "tests" / "data" / "kb"),
        COMPONENTS_FILE=str(ROOT / "tests" / "data" / "components.yml"),
        MATCHER="lexical",
        WEB_HOST="127.0.0.1",
        WEB_PORT="0",
        PLATFORMS="",
        LOG_LEVEL="INFO",
    )
    env.update(extra)
    return env


def test_no_platform_and_no_terminal_keeps_serving_the_web_until_sigterm(tmp_path: Path) -> None:
    bot = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"],
        stdin=subprocess.DEVNULL,  # stdin ends at once, as under systemd or `docker run` without -i
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(tmp_path),
        cwd=tmp_path,
    )
    try:
        assert bot.stderr is not None
        log: list[str] = []
        port = None
        deadline = time.monotonic() + 60
        while port is None or not any("serving the status page and API only" in line for line in log):
            assert time.monotonic() < deadline, "".join(log)
            line = bot.stderr.readline()
            assert line, "the bot exited:\n" + "".join(log)
            log.append(line)
            if found := re.search(r"web server on http://127\.0\.0\.1:(\d+)", line):
                port = int(found.group(1))
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as response:
            assert json.load(response)["status"] == "ok"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/status.json", timeout=10) as response:
            assert response.status == 200
        assert bot.poll() is None, "still running although stdin ended"
        bot.send_signal(signal.SIGTERM)
        assert bot.wait(timeout=20) == 0
    finally:
        if bot.poll() is None:
            bot.kill()
            bot.wait()
    assert bot.stdout is not None
    assert "supportbot console" not in bot.stdout.read()


def test_console_forces_the_console_without_a_terminal(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run", "--console"],
        input="hello\n",
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "supportbot console" in result.stdout


def test_nothing_to_run_is_one_line_and_exit_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "run"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=_env(tmp_path, WEB_ENABLED="false"),
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 2
    (line,) = result.stderr.splitlines()
    assert "nothing to run" in line and "--console" in line


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("argv", "platforms", "terminal", "mode"),
    [
        (["run"], "", True, "console"),  # `make run` in a terminal: chat there
        (["run"], "", False, "web"),  # a container or a service
        (["run", "--console"], "", False, "console"),
        (["run"], "console", False, "console"),  # asked for by name
        (["run"], "slack", False, "platforms"),
    ],
)
def test_how_run_chooses(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], platforms: str, terminal: bool, mode: str
) -> None:
    monkeypatch.setattr(sys, "stdin", _Terminal() if terminal else io.StringIO())
    extra = {"slack_bot_token": "xoxb-1", "slack_signing_secret": "s"} if platforms == "slack" else {}
    settings = load_settings(_env_file=None, platforms=platforms, **extra)
    args = cli._parser().parse_args(argv)
    chosen = (
        "console" if cli._console(args, settings) else "web" if cli._web_only(args, settings) else "platforms"
    )
    assert chosen == mode
