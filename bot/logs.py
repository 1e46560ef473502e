"""Logging with a correlation id on every line, and redaction of anything that looks like a token.
Text for a terminal, or one JSON object per line (LOG_FORMAT=json) for a log collector."""

from __future__ import annotations

import contextvars
import json
import logging
import re
import uuid
from datetime import UTC, datetime
from typing import TextIO

correlation_id: contextvars.ContextVar[str] = contextvars.ContextVar("correlation_id", default="-")

# Slack tokens (xoxb-, xapp-, xoxp-), Discord bot tokens (three base64 parts) and bearer headers.
_SECRET = re.compile(
    r"(xox[abposr]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+"
    r"|[MNO][A-Za-z0-9_-]{23,}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,}"
    r"|(?i:bot|bearer) [A-Za-z0-9._-]{20,})"
)


def new_correlation_id() -> str:
    return uuid.uuid4().hex[:10]


def redact(text: str) -> str:
    return _SECRET.sub("[redacted]", text)


_base_factory = logging.getLogRecordFactory()


def _record_with_correlation(*args: object, **kwargs: object) -> logging.LogRecord:
    record = _base_factory(*args, **kwargs)
    record.correlation_id = correlation_id.get()
    return record


# Every record, whichever handler formats it, carries the id of the event being handled.
logging.setLogRecordFactory(_record_with_correlation)


class _RedactingFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, correlation_id, and
    exception (the traceback) when there is one. Redacted like the text lines."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, str] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
            "correlation_id": getattr(record, "correlation_id", "-"),
        }
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            line["exception"] = redact(record.exc_text)
        if record.stack_info:
            line["stack"] = redact(self.formatStack(record.stack_info))
        return json.dumps(line, ensure_ascii=False)


def configure(level: str = "INFO", *, stream: TextIO | None = None, json_lines: bool = False) -> None:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(
        JsonFormatter()
        if json_lines
        else _RedactingFormatter("%(asctime)s %(levelname)s %(name)s [%(correlation_id)s] %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiohttp.access", "sqlalchemy.engine", "discord.gateway", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
