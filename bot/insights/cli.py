"""`supportbot report --days N --out DIR`: the report as DIR/report.html with its PNG charts beside it.
A problem the operator can fix is one line on stderr and exit code 2."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from bot.core.clock import utc_now
from bot.insights import report, report_html
from bot.insights.messages import count
from bot.kb.knowledge_base import load_knowledge_base
from bot.kb.loader import KBError
from bot.settings import Settings
from storage.db import open_migrated

WHERE = "supportbot report"


def days(text: str) -> int:
    """argparse type for `--days`: a whole number from 1 to 365."""
    number = report.days_of(text)
    if number is None:
        raise argparse.ArgumentTypeError(f"'{text[:20]}' is not a number of days from 1 to 365")
    return number


def add_parser(commands: argparse._SubParsersAction[Any]) -> None:
    parser = commands.add_parser("report", help="write DIR/report.html and its charts for the last N days")
    parser.add_argument(
        "--days", type=days, default=7, metavar="N", help="how far back, 1 to 365 (default 7)"
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for report.html")


def _out_problem(text: str, out: Path) -> str | None:
    """What is wrong with `--out`, before anything slow runs. The folder may be new, but not its
    parent: a typo in a path (`reprots/week`) would otherwise leave the report where nobody looks."""
    if not text.strip():
        return "--out names no folder; name one (new or existing)"
    if out.exists() and not out.is_dir():
        return f"{out} is a file; name a folder (new or existing)"
    if not out.exists() and not out.parent.is_dir():
        return f"{out.parent} does not exist; name a folder in one that does"
    return None


def report_command(args: argparse.Namespace, settings: Settings) -> int:
    out = Path(args.out)
    if (problem := _out_problem(args.out, out)) is not None:
        print(f"{WHERE}: {problem}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_write(settings, args.days, out))
    except OSError as error:
        problem = f"{error.filename}: {error.strerror}" if error.filename else str(error)
        print(f"{WHERE}: {problem}", file=sys.stderr)
        return 2


async def _write(settings: Settings, days: int, out: Path) -> int:
    """The database is checked first: loading the knowledge base (a model, with the semantic
    matcher) takes seconds, and a wrong DATABASE_URL should not wait for it."""
    database = await open_migrated(settings.database_url)
    if isinstance(database, str):
        print(f"{WHERE}: {database}", file=sys.stderr)
        return 2
    try:
        try:
            kb = await asyncio.to_thread(load_knowledge_base, settings)
        except KBError as error:
            first = str(error).splitlines()[0] if str(error) else "cannot be loaded"
            print(f"{WHERE}: knowledge base (KB_PATH={settings.kb_path}): {first}", file=sys.stderr)
            return 2
        async with database.session() as session:
            built = await report.build(
                session,
                kb=kb,
                days=days,
                now=utc_now(),
                zone=settings.report_zone,
                answer_precision=settings.answer_precision,
            )
    finally:
        await database.dispose()
    page = await asyncio.to_thread(report_html.write, built, out)
    what = "nothing to report yet" if built.empty else count(built.current.questions, "question")
    print(f"wrote {page} ({what})")
    return 0
