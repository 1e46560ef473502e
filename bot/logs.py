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


# Libraries that narrate routine steps at INFO (sentence-transformers: every model load, also in
# one-shot commands such as `kb check`); the bot's own lines say what matters.
NOISY = ("aiohttp.access", "sqlalchemy.engine", "discord.gateway", "alembic", "sentence_transformers")


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
    for noisy in NOISY:
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


class ErrorReportingUnavailable(Exception):
    """SENTRY_DSN is set, but the `sentry` extra is not installed."""


def _redacted(value: object) -> object:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: _redacted(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_redacted(item) for item in value]
    return value


def _before_send(event: dict[str, object], hint: object) -> dict[str, object]:
    """Tokens redacted everywhere in the event, and the correlation id the user was given as a tag."""
    redacted = _redacted(event)
    assert isinstance(redacted, dict)
    tags = redacted.setdefault("tags", {})
    if isinstance(tags, dict):
        tags.setdefault("correlation_id", correlation_id.get())
    return redacted


def report_errors_to_sentry(dsn: str, *, release: str | None = None) -> None:
    """Send errors (logged at ERROR and above, with their tracebacks) to Sentry. Without local
    variables, request bodies or personal data: those hold what customers typed. Tokens redacted."""
    try:
        import sentry_sdk
    except ImportError:
        raise ErrorReportingUnavailable(
            "SENTRY_DSN is set but sentry-sdk is not installed: pip install 'supportbot[sentry]'"
        ) from None
    # sentry-sdk 2.x options: the `sentry` extra stays below 3, whose differ (pyproject.toml says why).
    sentry_sdk.init(
        dsn=dsn,
        release=release,
        include_local_variables=False,
        max_request_body_size="never",
        before_send=_before_send,  # type: ignore[arg-type]  # sentry's Event is a TypedDict
        before_breadcrumb=lambda crumb, hint: _redacted(crumb),  # type: ignore[arg-type,return-value]
    )
