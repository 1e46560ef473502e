"""The `.env` file as written: every line a setting (`NAME=value`, optionally after `export`), a
comment or blank. python-dotenv skips any other line with a warning only, so a typo such as
`ANSWER_PRECISION 0.99` would leave the setting at its default without stopping start-up."""

from __future__ import annotations

import io
from pathlib import Path

# pydantic-settings reads .env through python-dotenv; its parser is the one that decides what a line is.
from dotenv.parser import parse_stream

NOT_A_SETTING = "not NAME=value"


def problem(path: Path) -> str | None:
    """`FILE:LINE: not NAME=value` for the first line that sets nothing, else None (also when there is no
    file, or it is not UTF-8 text, which loading the settings reports)."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # as the settings read it: a byte-order mark is no text
    except (OSError, UnicodeDecodeError):
        return None
    for binding in parse_stream(io.StringIO(text)):
        if binding.error or (binding.key is not None and binding.value is None):
            # A statement's text starts with the blank lines before it: name the line it is on.
            original = binding.original.string
            line = binding.original.line + original[: len(original) - len(original.lstrip())].count("\n")
            return f"{path}:{line}: {NOT_A_SETTING}"
    return None
