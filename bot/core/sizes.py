"""File sizes as people read them, the same in every message: a platform's limit, a customer's file."""

from __future__ import annotations


def size_text(size: int) -> str:
    """`812 bytes`, `814 KB`, `10 MB` (powers of 1,024, as the platforms state their limits)."""
    if size < 1024:
        return f"{size} byte" if size == 1 else f"{size} bytes"
    if size < 1024 * 1024:
        return f"{round(size / 1024)} KB"
    return f"{size / (1024 * 1024):.3g} MB"
