"""CPU seconds of PostgreSQL backends running on this machine, read from /proc: what the research
scripts divide by the statements or events they sent."""

from __future__ import annotations

import os
from collections.abc import Iterable


def server_cpu_seconds(pids: Iterable[int]) -> float:
    """User + system CPU of these server processes (the benchmark's own backends)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                line = stat.read()
        except OSError:  # a server in another container, or the backend has gone
            continue
        fields = line[line.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")
