"""Each figure's meaning is stated once in the package (`bot/insights/definitions.py`) and once in
docs/REPORTS.md's tables; the two name the same figures, section by section, so neither can gain or
lose one alone."""

from __future__ import annotations

import re
from pathlib import Path

from bot.insights.definitions import BY_SECTION

REPORTS_MD = Path(__file__).resolve().parents[2] / "docs" / "REPORTS.md"
_FIGURE_ROW = re.compile(r"^\| \*\*(?P<name>[^*]+)\*\*[^|]*\|(?P<definition>[^|]*)\|")


def documented_figures() -> dict[str, dict[str, str]]:
    """{section heading: {figure named in bold in its table: its definition}}."""
    figures: dict[str, dict[str, str]] = {}
    section = ""
    for line in REPORTS_MD.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            section = line.removeprefix("## ").strip()
        elif row := _FIGURE_ROW.match(line):
            figures.setdefault(section, {})[row["name"].strip()] = row["definition"].strip()
    return figures


def test_the_code_and_reports_md_define_the_same_figures_section_by_section() -> None:
    documented = documented_figures()
    assert set(documented) == {"Questions and answers", "Tickets", "Satisfaction", "Incidents"}
    in_code = {section: list(meanings) for section, meanings in BY_SECTION.items()}
    assert in_code == {section: list(figures) for section, figures in documented.items()}


def test_every_figure_has_a_meaning_in_both_places() -> None:
    for section, figures in documented_figures().items():
        for name, definition in figures.items():
            assert definition, f"docs/REPORTS.md does not say what {name!r} ({section}) means"
            assert BY_SECTION[section][name].strip(), f"no meaning in the code for {name!r}"
