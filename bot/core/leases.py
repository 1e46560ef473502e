"""Leases a process holds on rows any process takes over once they run out (an event's claim owing
replies, an inbox row): which ones to renew now, so that work slower than the lease is not taken
over while it still runs, and for how long at most, so that work that hangs is."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from datetime import datetime, timedelta

log = logging.getLogger(__name__)

MAX_HOLD = timedelta(minutes=10)
"""The longest a process keeps renewing a row it holds. Work still running after this long is stuck
(a bug, a lock never released, a post that never returns), not slow: its row's lease then runs out
and another process (or this one's own sweep) takes it over, instead of it waiting for a restart."""


@dataclasses.dataclass(frozen=True, slots=True)
class Lease:
    """One row a process holds."""

    until: datetime
    """Until when the row is leased to this process, as far as it knows."""
    since: datetime
    """When this process took the row: its ceiling counts from then."""
    renewing: bool = True
    """False once this process stopped renewing it (held too long, or taken over by another)."""


Renew = Callable[[Mapping[int, datetime], datetime], Awaitable[Collection[int]]]
"""Writes the new lease (the second argument) into the rows (id -> until when this process holds
each); the rows it renewed."""


class Held:
    """The rows one process holds under a lease, renewed while it works on them, up to `ceiling`."""

    def __init__(self, *, what: str, lease: timedelta, ceiling: timedelta = MAX_HOLD) -> None:
        self.what = what
        self.lease = lease
        self.ceiling = ceiling
        self._leases: dict[int, Lease] = {}

    def __contains__(self, row: object) -> bool:
        return row in self._leases

    def take(self, row: int, *, until: datetime, since: datetime | None = None) -> None:
        """Hold `row`, leased to this process until `until`, since `since` (by default since the
        lease that ends then began)."""
        self._leases[row] = Lease(until=until, since=until - self.lease if since is None else since)

    def renewing(self, row: int) -> bool:
        """Whether this process holds `row` and still renews it: not one it stopped renewing (held
        past the ceiling, or taken over), which a sweep of its own may take again."""
        lease = self._leases.get(row)
        return lease is not None and lease.renewing

    def until(self, row: int) -> datetime | None:
        """Until when this process holds `row`; None when it does not."""
        lease = self._leases.get(row)
        return None if lease is None else lease.until

    def release(self, rows: Iterable[int]) -> None:
        """This process is done with the rows (or gives them up): they are no longer renewed."""
        for row in rows:
            self._leases.pop(row, None)

    def ending(self, now: datetime) -> dict[int, datetime]:
        """The rows to renew now (id -> until when they are held): those with less than half their
        lease left, renewed early enough that a renewal a little late does not let another process
        in. A row held longer than the ceiling is left out from then on, with a warning."""
        stuck = [
            row for row, lease in self._leases.items() if lease.renewing and now - lease.since > self.ceiling
        ]
        if stuck:
            log.warning(
                "%s %s still held after %s: no longer renewed, so another process takes them over",
                self.what,
                stuck,
                self.ceiling,
            )
            for row in stuck:
                self._leases[row] = dataclasses.replace(self._leases[row], renewing=False)
        return {
            row: lease.until
            for row, lease in self._leases.items()
            if lease.renewing and lease.until - now < self.lease / 2
        }

    async def renew(self, write: Renew, *, now: datetime) -> None:
        """Renew the rows whose lease is ending (`ending`) with `write`, until now + the lease. A row
        `write` did not renew is no longer this process's: another took it over once its lease had
        run out (this one stalled), or it is gone (settled, erased). It is no longer renewed here,
        with a warning, so that the other keeps it."""
        ending = self.ending(now)
        if not ending:
            return
        until = now + self.lease
        renewed = set(await write(ending, until))
        lost = []
        for row, was in ending.items():
            lease = self._leases.get(row)
            if lease is None or lease.until != was:  # released, or taken again, meanwhile
                continue
            if row in renewed:
                self._leases[row] = dataclasses.replace(lease, until=until)
            else:
                self._leases[row] = dataclasses.replace(lease, renewing=False)
                lost.append(row)
        if lost:
            log.warning(
                "%s %s taken over by another process once their lease ran out (or gone): no longer renewed",
                self.what,
                lost,
            )
