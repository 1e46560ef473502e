"""Log lines: text, or one JSON object per line (LOG_FORMAT=json); correlation ids and redaction in both."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from bot.logs import configure, correlation_id

ROOT = Path(__file__).resolve().parent.parent
SLACK_TOKEN = "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"
DISCORD_TOKEN = "MTIzNDU2Nzg5MDEyMzQ1Njc4.GhIjKl.AbCdEfGhIjKlMnOpQrStUvWxYz0123456789"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    out = io.StringIO()
    yield out
    root.handlers[:] = handlers
    root.setLevel(level)


def lines(stream: io.StringIO) -> list[dict[str, str]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_time_level_logger_message_and_correlation_id(stream: io.StringIO) -> None:
    configure("INFO", stream=stream, json_lines=True)
    token = correlation_id.set("c0ffee1234")
    try:
        logging.getLogger("bot.core.dispatch").warning("slow handler: %d ms\nsecond line", 812)
    finally:
        correlation_id.reset(token)
    logging.getLogger("bot.app").info("shutting down")
    first, second = lines(stream)  # a message with a newline is still one line
    assert first == {
        "time": first["time"],
        "level": "WARNING",
        "logger": "bot.core.dispatch",
        "message": "slow handler: 812 ms\nsecond line",
        "correlation_id": "c0ffee1234",
    }
    assert datetime.fromisoformat(first["time"]).utcoffset() is not None
    assert second["correlation_id"] == "-" and second["message"] == "shutting down"


@pytest.mark.parametrize("json_lines", [True, False])
def test_tokens_are_redacted_in_messages_and_exceptions(stream: io.StringIO, json_lines: bool) -> None:
    configure("INFO", stream=stream, json_lines=json_lines)
    log = logging.getLogger("bot.adapters.slack")
    log.error("posting with %s failed", SLACK_TOKEN)
    try:
        raise RuntimeError(f"401 for Bot {DISCORD_TOKEN}")
    except RuntimeError:
        log.exception("discord login")
    text = stream.getvalue()
    assert SLACK_TOKEN not in text and DISCORD_TOKEN not in text
    assert "xoxb-" not in text
    assert text.count("[redacted]") == 2
    if json_lines:
        message, failure = lines(stream)
        assert message["message"] == "posting with [redacted] failed"
        assert failure["message"] == "discord login"
        assert (
            failure["exception"].startswith("Traceback")
            and "RuntimeError: 401 for [redacted]" in failure["exception"]
        )


def test_log_format_json_from_the_environment(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_TOKEN", "_SECRET", "_URL"))}
    env.update(
        PYTHONPATH=str(ROOT),
        LOG_FORMAT="json",
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path}/bot.db",
        KB_PATH=str(ROOT / "tests" / "data" / "kb"),
        COMPONENTS_FILE=str(ROOT / "tests" / "data" / "components.yml"),
        MATCHER="lexical",
        WEB_PORT="0",
    )
    # No platform and no terminal: the web server only, with its log at INFO, until SIGTERM.
    bot = subprocess.Popen(
        [sys.executable, "-m", "bot", "run"],
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert bot.stderr is not None
    records = []
    try:
        for line in bot.stderr:
            records.append(json.loads(line))
            if "serving the status page and API only" in records[-1]["message"]:
                break
        bot.send_signal(signal.SIGTERM)
        records.extend(json.loads(line) for line in bot.stderr)
        assert bot.wait(timeout=30) == 0
    finally:
        if bot.poll() is None:
            bot.kill()
            bot.wait()
    assert any(r["logger"] == "bot.web" and r["message"].startswith("web server on") for r in records)
    assert all(set(r) >= {"time", "level", "logger", "message", "correlation_id"} for r in records)


def test_an_unknown_log_format_is_one_line_and_exit_2(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LOG_FORMAT": "xml"}
    result = subprocess.run(
        [sys.executable, "-m", "bot", "db", "current"], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["supportbot: setting LOG_FORMAT: Input should be 'text' or 'json'"]


def test_a_model_load_is_not_narrated_at_info(stream: io.StringIO) -> None:
    """sentence-transformers says "Loading SentenceTransformer model from ..." at INFO on every load,
    `kb check` included; a warning of its own still shows."""
    configure("INFO", stream=stream)
    library = logging.getLogger("sentence_transformers.base.model")
    library.info("Loading SentenceTransformer model from /somewhere")
    library.warning("no GPU found")
    assert "Loading SentenceTransformer" not in stream.getvalue()
    assert "no GPU found" in stream.getvalue()
