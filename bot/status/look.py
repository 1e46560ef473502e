"""How the public status pages look: the operator's name, logo and accent colour, and the Jinja2
templates (shipped in `bot/status/templates/`; a file of the same name in STATUS_PAGE_TEMPLATES
replaces the shipped one, and any file it lacks falls back to ours)."""

from __future__ import annotations

import logging
import traceback
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import jinja2

log = logging.getLogger(__name__)

TEMPLATE_NAMES: Final = ("base.html", "status.html", "history.html")
"""Every template the pages render, checked at start-up so a broken one stops the bot, not a visitor."""

DEFAULT_ACCENT: Final = "#3b6fd8"


class TemplateError(Exception):
    """An operator's template cannot be compiled. The message is one line naming the file."""


@dataclass(frozen=True, slots=True)
class Branding:
    """STATUS_PAGE_NAME, STATUS_PAGE_LOGO_URL, STATUS_PAGE_ACCENT (validated by the settings)."""

    name: str = "Status"
    logo_url: str | None = None
    accent: str = DEFAULT_ACCENT


def stamp(moment: datetime | None) -> str:
    """A time as the pages print it: UTC, which every visitor can compare."""
    return moment.strftime("%b %d, %H:%M UTC") if moment else ""


def humanise(word: str) -> str:
    """A stored status word as a heading: `degraded_performance` -> `Degraded performance`."""
    return word.replace("_", " ").capitalize()


def environment(overrides: Path | None = None) -> jinja2.Environment:
    """The templates, the operator's first; raises TemplateError naming a file that does not compile."""
    loaders: list[jinja2.BaseLoader] = []
    if overrides is not None:
        loaders.append(jinja2.FileSystemLoader(str(overrides)))
    loaders.append(jinja2.PackageLoader("bot.status", "templates"))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        # Everything the pages show came from staff or customers' reports: escape it all.
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
    env.filters["stamp"] = stamp
    env.filters["humanise"] = humanise
    for name in TEMPLATE_NAMES:
        try:
            env.get_template(name)
        except jinja2.TemplateSyntaxError as error:
            where = error.filename or name
            raise TemplateError(
                f"status page template {where}, line {error.lineno}: {error.message}"
            ) from None
        except jinja2.TemplateError as error:  # e.g. an {% extends %} of a file that is not there
            raise TemplateError(f"status page template {name}: {error}") from None
    return env


class Templates:
    """The pages' templates: the operator's over ours, and ours alone behind them. An operator's
    template that compiles can still fail on some data only (a loop over incidents that breaks once
    there is one): that page is then rendered from ours, and the log names their file and line,
    so a visitor never gets a 500 for it."""

    def __init__(self, overrides: Path | None = None) -> None:
        self.overrides = overrides
        self.env = environment(overrides)
        self._shipped = environment() if overrides is not None else None
        self._told: set[str] = set()

    def render(self, name: str, *, branding: Branding, fallback: bool = True, **context: Any) -> str:
        """The page; `fallback=False` raises the operator's error instead (the start-up rehearsal)."""
        try:
            return self.env.get_template(name).render(brand=branding, **context)
        except Exception as error:  # an operator's template can raise anything
            if self._shipped is None or not fallback:
                raise
            self._tell(name, error)
            return self._shipped.get_template(name).render(brand=branding, **context)

    def _tell(self, name: str, error: Exception) -> None:
        """An error once per template, place and message (a page is rendered on every visit)."""
        detail = " ".join(str(error).split())
        problem = f"status page template {self._where(name, error)}: {type(error).__name__}: {detail}"
        if problem in self._told:
            log.debug("%s (again)", problem)
            return
        self._told.add(problem)
        log.error("%s; showing the shipped %s instead until it is fixed", problem, name)

    def _where(self, name: str, error: Exception) -> str:
        """The operator's file and line the error came from (Jinja2 names the template in its
        traceback), else the page's name."""
        assert self.overrides is not None
        folder = self.overrides.resolve()
        for frame in reversed(traceback.extract_tb(error.__traceback__)):
            # A relative STATUS_PAGE_TEMPLATES gives relative names, from the same working folder.
            path = Path(frame.filename).resolve()
            if path.is_file() and path.is_relative_to(folder):
                return f"{path}, line {frame.lineno}"
        return f"{name} (in {self.overrides})"
