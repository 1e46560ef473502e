"""The report's charts as PNG files, drawn headless (matplotlib's Agg backend: no display, no
network, no fonts beyond the ones matplotlib ships)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

from bot.insights.report import Report

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.ticker import Locator

MAIN = "daily.png"
"""The chart the digest attaches: questions per day, by how they ended, and tickets opened."""
ESCALATIONS = "escalations.png"
FIRST_RESPONSE = "first_response.png"
QUALITY = "answer_quality.png"
ARTICLES_SHOWN = 12

_ANSWERED, _ESCALATED, _OTHER, _TICKETS = "#2e7d32", "#c62828", "#9e9e9e", "#1565c0"
_DPI = 100


@cache
def _pyplot() -> ModuleType:
    """matplotlib, loaded when the first chart is drawn: a third of a second that every start of
    the bot and every command-line call would otherwise pay."""
    import matplotlib

    matplotlib.use("Agg")  # before pyplot: a server has no display
    import matplotlib.pyplot as plt  # only after choosing the backend

    return plt


def _integer_ticks() -> Locator:
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def _figure(width: float = 8.0, height: float = 3.6) -> tuple[Figure, Axes]:
    figure, axes = _pyplot().subplots(figsize=(width, height), dpi=_DPI)
    axes.spines[["top", "right"]].set_visible(False)
    return figure, axes


def _save(figure: Figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, format="png", metadata={"Software": None})
    _pyplot().close(figure)
    return path


def _legend_below(axes: Axes) -> None:
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), frameon=False, ncols=4, fontsize="small")


def _nothing(axes: Axes, text: str) -> None:
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes, color="#616161")
    axes.set_xticks([])
    axes.set_yticks([])


def daily(report: Report, path: Path) -> Path:
    figure, axes = _figure()
    days = report.current.days
    labels = [f"{day.day:%a %d}" for day in days]
    answered = [day.answered for day in days]
    escalated = [day.escalated for day in days]
    other = [day.other for day in days]
    positions = range(len(days))
    axes.bar(positions, answered, color=_ANSWERED, label="answered by the bot")
    axes.bar(positions, escalated, bottom=answered, color=_ESCALATED, label="escalated")
    axes.bar(
        positions,
        other,
        bottom=[a + e for a, e in zip(answered, escalated, strict=True)],
        color=_OTHER,
        label="no answer yet",
    )
    axes.plot(positions, [day.tickets for day in days], color=_TICKETS, marker="o", label="tickets opened")
    step = max(1, len(days) // 14)
    axes.set_xticks(list(positions)[::step], labels[::step], rotation=0 if len(days) <= 14 else 45)
    axes.set_ylabel("questions")
    axes.yaxis.set_major_locator(_integer_ticks())
    axes.set_title(f"Questions per day ({report.zone.key})", loc="left")
    if report.current.questions or report.current.tickets_opened:
        _legend_below(axes)
    else:
        _nothing(axes, "No questions in this window")
    return _save(figure, path)


def _horizontal(
    path: Path, title: str, labels: Sequence[str], values: Sequence[float], *, empty: str, unit: str = ""
) -> Path:
    figure, axes = _figure(height=max(2.0, 0.45 * len(labels) + 1.2))
    axes.set_title(title, loc="left")
    if not labels:
        _nothing(axes, empty)
        return _save(figure, path)
    positions = range(len(labels))
    axes.barh(positions, values, color=_TICKETS)
    axes.xaxis.set_major_locator(_integer_ticks())
    axes.set_yticks(list(positions), labels)
    axes.invert_yaxis()
    if unit:
        axes.set_xlabel(unit)
    return _save(figure, path)


def escalations(report: Report, path: Path, labels: dict[str, str]) -> Path:
    reasons = report.current.escalations
    return _horizontal(
        path,
        "Tickets opened, by why",
        [labels.get(reason, reason) for reason, _ in reasons],
        [count for _, count in reasons],
        empty="No tickets in this window",
    )


def first_response(report: Report, path: Path) -> Path:
    figure, axes = _figure()
    axes.set_title("First response by a person, per priority (p50 and p90)", loc="left")
    spreads = [(priority, s) for priority, s in report.current.first_response if s.p50 is not None]
    if not spreads:
        _nothing(axes, "No ticket answered by a person in this window")
        return _save(figure, path)
    positions = range(len(spreads))
    p50 = [s.p50.total_seconds() / 60 if s.p50 else 0.0 for _, s in spreads]
    p90 = [s.p90.total_seconds() / 60 if s.p90 else 0.0 for _, s in spreads]
    axes.bar([p - 0.2 for p in positions], p50, width=0.4, color=_ANSWERED, label="p50")
    axes.bar([p + 0.2 for p in positions], p90, width=0.4, color=_ESCALATED, label="p90")
    axes.set_xticks(list(positions), [priority for priority, _ in spreads])
    axes.set_ylabel("minutes")
    _legend_below(axes)
    return _save(figure, path)


def answer_quality(report: Report, path: Path) -> Path:
    quality = report.quality
    articles = [a for a in quality.articles if a.followed.value is not None][:ARTICLES_SHOWN]
    figure, axes = _figure(height=max(2.0, 0.4 * len(articles) + 1.4))
    axes.set_title("Answers followed by a ticket, per article", loc="left")
    if not articles:
        _nothing(axes, "No settled answers in this window")
        return _save(figure, path)
    positions = range(len(articles))
    shares = [100 * (a.followed.value or 0.0) for a in articles]
    colours = [_ESCALATED if a.misleads else _TICKETS for a in articles]
    axes.barh(positions, shares, color=colours)
    axes.set_yticks(list(positions), [f"{a.entry_id} ({a.followed.whole})" for a in articles])
    axes.invert_yaxis()
    axes.set_xlim(0, 100)
    axes.set_xlabel("% of the article's answers (misleading in red)")
    if quality.expected_precision is not None:
        limit = 100 * (1 - quality.expected_precision)
        axes.axvline(limit, color="#424242", linestyle="--", linewidth=1, label="expected at most")
        axes.legend(loc="lower right", fontsize="small")
    return _save(figure, path)


def draw_all(report: Report, folder: Path, reason_labels: dict[str, str]) -> dict[str, Path]:
    """Every chart into `folder`, by file name."""
    return {
        MAIN: daily(report, folder / MAIN),
        ESCALATIONS: escalations(report, folder / ESCALATIONS, reason_labels),
        FIRST_RESPONSE: first_response(report, folder / FIRST_RESPONSE),
        QUALITY: answer_quality(report, folder / QUALITY),
    }
