"""The ticket domain's vocabulary: priorities (most urgent first), and what a close answer carries."""

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


def close_answer_value(number: int, close_round: int) -> str:
    """What a "Did this solve it?" answer button carries: the ticket, and which time the team asked
    (`Ticket.close_round`), so that a click on an earlier question's button is told apart."""
    return f"{number}:{close_round}"


def split_close_answer(value: str) -> tuple[str, str | None]:
    """(number, round) as a close answer button carries them, unchecked. A button posted before
    rounds were counted carries the number alone: round None."""
    number, separator, close_round = value.partition(":")
    return number, close_round if separator else None
