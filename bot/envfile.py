"""The `.env` file as written: every line a setting (`NAME=value`, optionally after `export`), a
comment or blank. python-dotenv skips any other line with a warning only, so a typo such as
`ANSWER_PRECISION 0.99` would leave the setting at its default without stopping start-up. A name
that is no setting is ignored by the settings (a .env may hold other tools' names too), so one a
letter or two away from a setting (`WEB_PROT`) is said, as a warning."""

from __future__ import annotations

import io
from collections.abc import Collection
from pathlib import Path

# pydantic-settings reads .env through python-dotenv; its parser is the one that decides what a line is.
from dotenv.parser import Binding, parse_stream
from rapidfuzz import fuzz, process

NOT_A_SETTING = "not NAME=value"
TYPO_SCORE = 80
"""How alike (rapidfuzz ratio, 0-100) an unknown name must be to a setting's to be taken for a typo
of it: WEB_PROT for WEB_PORT (88), SLACK_TOKEN for SLACK_BOT_TOKEN (85), not POSTGRES_PASSWORD for
DATABASE_URL (28)."""


def problem(path: Path) -> str | None:
    """`FILE:LINE: not NAME=value` for the first line that sets nothing, else None (also when there is no
    file, or it is not UTF-8 text, which loading the settings reports)."""
    for binding in _statements(path):
        if binding.error or (binding.key is not None and binding.value is None):
            return f"{path}:{_line(binding)}: {NOT_A_SETTING}"
    return None


def _statements(path: Path) -> list[Binding]:
    """The file's statements as python-dotenv parses them; none when it cannot be read (no file, or
    not UTF-8 text, which loading the settings reports)."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # as the settings read it: a byte-order mark is no text
    except (OSError, UnicodeDecodeError):
        return []
    return list(parse_stream(io.StringIO(text)))


def _line(binding: Binding) -> int:
    """The line a statement is on: its text starts with the blank lines before it."""
    original = binding.original.string
    return binding.original.line + original[: len(original) - len(original.lstrip())].count("\n")


def misspelt(path: Path, settings: Collection[str]) -> list[str]:
    """`FILE:LINE: warning: NAME is not a setting (ignored); did you mean SETTING?` for each name the
    file sets that is none of `settings` (upper case) but close to one; none when it cannot be read."""
    warnings: list[str] = []
    for binding in _statements(path):
        name = (binding.key or "").upper()
        if binding.error or not name or name in settings:
            continue
        close = process.extract(name, sorted(settings), scorer=fuzz.ratio, score_cutoff=TYPO_SCORE, limit=3)
        if close:
            # As alike as each other (SLACK_TOKEN: SLACK_APP_TOKEN and SLACK_BOT_TOKEN): all are named.
            meant = " or ".join(sorted(found for found, score, _ in close if score == close[0][1]))
            where = f"{path}:{_line(binding)}"
            warnings.append(f"{where}: warning: {name} is not a setting (ignored); did you mean {meant}?")
    return warnings
