"""Leases a process holds on rows any process takes over once they run out (an event's claim owing
replies, an inbox row): which ones to renew now, so that work slower than the lease is not taken
over while it still runs."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta


def ending(held: Mapping[int, datetime], *, now: datetime, lease: timedelta) -> list[int]:
    """The rows of `held` (id -> until when) with less than half their lease left: renewed early
    enough that a renewal a little late does not let another process in."""
    return [row for row, until in held.items() if until - now < lease / 2]
