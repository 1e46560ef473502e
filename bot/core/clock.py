"""Time as the bot tells it: now in UTC, and spans of time in words (one wording everywhere)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def utc_now() -> datetime:
    return datetime.now(UTC)


def humanize(delta: timedelta) -> str:
    """`less than a minute`, `a minute`, `25 minutes`, `3 hours`, `4 days`; negative spans count as 0."""
    seconds = max(0, int(delta.total_seconds()))
    if seconds < 90:
        return "a minute" if seconds >= 45 else "less than a minute"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} minutes"
    hours = round(seconds / 3600)
    if hours < 48:
        return f"{hours} hours"
    return f"{round(seconds / 86400)} days"


def ago(then: datetime, now: datetime) -> str:
    return f"{humanize(now - then)} ago"
