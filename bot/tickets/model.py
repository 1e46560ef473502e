"""The ticket domain's vocabulary: priorities (most urgent first)."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Priority(StrEnum):
    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


PRIORITIES: Final = tuple(Priority)
DEFAULT_PRIORITY: Final = Priority.NORMAL
