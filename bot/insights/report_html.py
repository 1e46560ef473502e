"""The report as one self-contained HTML page with its PNG charts beside it: no script, no font or
style from elsewhere (a Content-Security-Policy forbids any other request), every text escaped, and
customers' words clipped to one inert line. Customers' names and ids are never in a report."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape
from pathlib import Path

from bot.insights import charts, definitions
from bot.insights import messages as words
from bot.insights.figures import Figures, Share
from bot.insights.report import Report

EXAMPLE_LIMIT = 200
PAGE = "report.html"
_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
_FULL_DEFINITIONS = "Full definitions with their queries: docs/REPORTS.md in supportbot's repository."
_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto;
       max-width: 60rem; padding: 1rem; color: #212121; line-height: 1.4; }
h1 { margin-bottom: 0.2rem; } h2 { margin-top: 2rem; border-bottom: 1px solid #e0e0e0; }
.muted { color: #616161; } .warn { color: #b71c1c; font-weight: 600; }
table { border-collapse: collapse; margin: 0.5rem 0; }
th, td { text-align: left; padding: 0.2rem 0.8rem 0.2rem 0; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; height: auto; display: block; margin: 0.5rem 0; }
ol.gaps > li { margin-bottom: 1rem; } q { font-style: italic; overflow-wrap: anywhere; }
details.counted { margin: 0.4rem 0 0.8rem; } details.counted summary { color: #616161; cursor: pointer; }
details.counted dt { font-weight: 600; margin-top: 0.4rem; } details.counted dd { margin-left: 1rem; }
"""


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _table(head: Sequence[str], rows: Iterable[Sequence[object]], numeric: Sequence[bool] = ()) -> str:
    cells = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = []
    for row in rows:
        tds = "".join(
            f"<td class='n'>{_e(v)}</td>" if i < len(numeric) and numeric[i] else f"<td>{_e(v)}</td>"
            for i, v in enumerate(row)
        )
        body.append(f"<tr>{tds}</tr>")
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _image(name: str, alt: str) -> str:
    return f"<img src='{_e(name)}' alt='{_e(alt)}'>"


def _counted(meanings: Mapping[str, str]) -> str:
    """Under a section's heading: what its figures mean, folded, so the page explains itself to a
    reader who has no docs/REPORTS.md to open."""
    items = "".join(f"<dt>{_e(name)}</dt><dd>{_e(meaning)}</dd>" for name, meaning in meanings.items())
    return f"<details class='counted'><summary>How each figure is counted</summary><dl>{items}</dl></details>"


def _summary(now: Figures, before: Figures) -> str:
    rows = [
        ("Questions asked", now.questions, before.questions),
        ("Answered by the bot", now.answered, before.answered),
        ("Confirmed solved", now.solved, before.solved),
        ("Deflected", now.deflected, before.deflected),
        ("Clarified (did you mean)", now.clarified.total, before.clarified.total),
        ("Tickets opened", now.tickets_opened, before.tickets_opened),
        ("Tickets closed", now.tickets_closed, before.tickets_closed),
        ("Tickets reopened", now.tickets_reopened, before.tickets_reopened),
    ]
    return _table(
        ("figure", "this window", "the one before", "trend"),
        [(name, a, b, words.trend(a, b)) for name, a, b in rows],
        numeric=(False, True, True, False),
    )


def _questions(now: Figures) -> str:
    c = now.clarified
    rows = [
        (
            "answered by the bot",
            f"{now.answered} ({Share(now.answered, now.questions).percent()} of questions)",
        ),
        ("… of those after a “did you mean”", now.answered_after_clarifying),
        ("confirmed solved", f"{now.solved} ({Share(now.solved, now.answered).percent()} of answers)"),
        (
            "deflected",
            f"{now.deflected} ({now.deflection.percent()} of questions; "
            f"{now.deflection_pending} answered in the last 24 h, not settled yet)",
        ),
    ]
    clarified = [
        ("picked an article", c.picked),
        ("… then solved", c.picked_solved),
        ("… then still needed help", c.picked_still_needed_help),
        ("none of these", c.none_of_these),
        ("no reply", c.no_reply),
        ("escalated at once", c.escalated),
    ]
    return (
        _table(("", ""), rows)
        + f"<h3>“Did you mean”: {c.total}</h3>"
        + (_table(("ended", "questions"), clarified, numeric=(False, True)) if c.total else "<p>None.</p>")
    )


def _tickets(now: Figures) -> str:
    reasons = _table(
        ("why", "tickets"),
        [(words.reason_label(r), n) for r, n in now.escalations],
        numeric=(False, True),
    )
    spreads = _table(
        ("priority", "answered", "p50", "p90"),
        [(p, s.count, words.duration(s.p50), words.duration(s.p90)) for p, s in now.first_response],
        numeric=(False, True, True, True),
    )
    return (
        f"<p>{now.tickets_opened} opened, {now.tickets_closed} closed, {now.tickets_reopened} reopened.</p>"
        + (reasons if now.escalations else "<p>No tickets opened.</p>")
        + _image(charts.ESCALATIONS, "Tickets opened, by why")
        + "<h3>First response by a person</h3>"
        + "<p class='muted'>From opening to the first reply a team member wrote; the bot's messages and "
        "a claim alone do not count.</p>"
        + (spreads if now.first_response else "<p>No ticket answered by a person.</p>")
        + f"<p>{now.unanswered} not answered yet. "
        f"SLA met: {_e(words.share(now.sla, 'ticket due', 'tickets due'))}. "
        f"Resolution p50 / p90: {_e(words.spread(now.resolution))} over {now.resolution.count} closed.</p>"
        + _image(charts.FIRST_RESPONSE, "First response per priority")
    )


def _csat(now: Figures) -> str:
    csat = now.csat
    text = f"<p>{_e(words.csat_text(now))}</p>"
    if csat.rated:
        text += _table(
            ("rating", "tickets"),
            [(f"{score} ★", count) for score, count in zip(range(1, 6), csat.distribution, strict=True)],
            numeric=(False, True),
        )
    return text


def _platforms(now: Figures) -> str:
    if not now.platforms:
        return "<p>No questions or tickets.</p>"
    return _table(
        ("platform", "questions", "answered", "tickets"),
        [(name, p.questions, p.answered, p.tickets) for name, p in now.platforms],
        numeric=(False, True, True, True),
    )


def _incidents(now: Figures) -> str:
    head = f"<p>{now.incidents_on} incident(s) on during the window.</p>"
    if not now.incidents:
        return head + "<p>Nobody asked about one.</p>"
    return head + _table(
        ("incident", "impact", "questions", "people", "settled by the status answer"),
        [(i.title, i.impact, i.asked, i.people, i.settled) for i in now.incidents],
        numeric=(False, False, True, True, True),
    )


def _quality(report: Report) -> str:
    quality = report.quality
    lines = [f"<p>{_e(words.quality_text(quality))}</p>"]
    lines.append(f"<p class='muted'>Expected precision: {_e(quality.expectation)}.</p>")
    if quality.below_expectation:
        lines.append("<p class='warn'>Answers were clearly less precise than expected.</p>")
    if quality.articles:
        lines.append(
            _table(
                ("article", "answers", "followed by a ticket", "share", "misleads"),
                [
                    (
                        a.entry_id,
                        a.followed.whole,
                        a.followed.part,
                        a.followed.percent(),
                        "yes" if a.misleads else "",
                    )
                    for a in quality.articles
                ],
                numeric=(False, True, True, True, False),
            )
        )
    lines.append(_image(charts.QUALITY, "Answers followed by a ticket, per article"))
    return "".join(lines)


def _gaps(report: Report) -> str:
    if not report.gaps:
        return (
            f"<p>No topic asked by two people or more among {report.gap_questions} unanswered "
            "question(s).</p>"
        )
    items = []
    for gap in report.gaps:
        nearest = (
            f"nearest article: <code>{_e(gap.nearest.entry_id)}</code> ({_e(gap.nearest.title)}, "
            f"{_e(gap.nearest.sureness)})"
            if gap.nearest
            else "no article near it"
        )
        examples = "".join(f"<li><q>{_e(words.inert(text, EXAMPLE_LIMIT))}</q></li>" for text in gap.examples)
        size = f"{gap.people} people, {words.count(gap.size, 'question')}"
        items.append(f"<li><strong>{size}</strong>; {nearest}<ul>{examples}</ul></li>")
    return (
        f"<p class='muted'>Among {report.gap_questions} unanswered question(s), placed by the "
        f"{_e(report.topic_space)} matcher; most people first.</p><ol class='gaps'>{''.join(items)}</ol>"
    )


def render(report: Report) -> str:
    """The page. Charts are referenced by file name: write them beside it (`write`)."""
    days = report.window.days
    title = f"Support report: last {days} day{'s' if days != 1 else ''}"
    now = report.current
    made = report.made_at.astimezone(report.zone)
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        f"<meta http-equiv='Content-Security-Policy' content=\"{_CSP}\">",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        "<meta name='referrer' content='no-referrer'>",
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f"<p class='muted'>{_e(words.period(report))}; made {made:%Y-%m-%d %H:%M}. "
        "Trends compare with the window of the same length before it; the sections below say how "
        "each figure is counted.</p>",
    ]
    if report.empty:
        parts.append(
            "<p id='nothing'><strong>Nothing to report yet:</strong> no questions, tickets or questions "
            "about incidents in this window.</p>"
        )
    parts += [
        _image(charts.MAIN, "Questions per day, by how they ended, and tickets opened"),
        "<h2>Summary</h2>",
        _summary(now, report.previous),
        "<h2>Questions and answers</h2>",
        _counted(definitions.QUESTIONS),
        _questions(now),
        "<h2>Tickets</h2>",
        _counted(definitions.TICKETS),
        _tickets(now),
        "<h2>Satisfaction (CSAT)</h2>",
        _counted(definitions.SATISFACTION),
        _csat(now),
        "<h2>By platform</h2>",
        _platforms(now),
        "<h2>Incidents</h2>",
        _counted(definitions.INCIDENTS),
        _incidents(now),
        "<h2>Answer quality</h2>",
        _quality(report),
        "<h2>Knowledge gaps</h2>",
        _gaps(report),
        f"<p class='muted'>{_e(_FULL_DEFINITIONS)}</p>",
        "</body></html>",
    ]
    return "\n".join(parts)


def write(report: Report, folder: Path) -> Path:
    """`folder/report.html` and its charts; the folder is created. Returns the page's path."""
    folder.mkdir(parents=True, exist_ok=True)
    charts.draw_all(report, folder, words.REASONS)
    page = folder / PAGE
    page.write_text(render(report), encoding="utf-8")
    return page
