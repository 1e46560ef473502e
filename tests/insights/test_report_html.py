"""`supportbot report`: DIR/report.html with PNG charts beside it, self-contained and escaped. A real
browser opens it (headless Chromium): the charts show, nothing is fetched from anywhere, and a
customer's markup stays text."""

from __future__ import annotations

import re
import time
from html import escape
from pathlib import Path
from types import SimpleNamespace

import pytest

from bot.cli import main
from bot.insights import report, report_html
from bot.insights.charts import ESCALATIONS, FIRST_RESPONSE, MAIN, QUALITY
from bot.insights.definitions import BY_SECTION
from storage.db import Database
from tests.browser import chromium_binary
from tests.harness import BotHarness
from tests.insights.generate import CUSTOMER_NAMES, generate
from tests.insights.test_report_command import a_week_of_support
from tests.insights.test_report_definitions import documented_figures

HOSTILE = (
    "do you sponsor football clubs? <script>window.pwned = 1</script> <img src=x onerror='window.pwned=2'>"
    " **bold** `code` <@U0CASEY> @everyone\n```\nrm -rf /\n```\n" + "football sponsor " * 1200
)


async def _write(bot: BotHarness, folder: Path, days: int = 7) -> Path:
    async with bot.bot.database.session() as session:
        built = await report.build(
            session,
            kb=bot.bot.services.kb,
            days=days,
            now=bot.clock.now,
            zone=bot.bot.settings.report_zone,
            answer_precision=bot.bot.settings.answer_precision,
        )
    return report_html.write(built, folder)


async def _hostile_questions(bot: BotHarness) -> None:
    await bot.customer_dms(HOSTILE)
    bot.clock.advance(minutes=1)
    await bot.says(
        bot.other_customer,
        "do you sponsor **football** `teams`? <script>window.pwned = 1</script> <@U0ROBIN>",
    )
    bot.clock.advance(minutes=1)


async def test_an_empty_database_renders_a_page_that_says_so(bot: BotHarness, tmp_path: Path) -> None:
    page = await _write(bot, tmp_path / "out")
    html = page.read_text()
    assert "Nothing to report yet" in html
    for chart in (MAIN, ESCALATIONS, FIRST_RESPONSE, QUALITY):
        assert (tmp_path / "out" / chart).read_bytes().startswith(b"\x89PNG"), chart
        assert f"src='{chart}'" in html


def _section(html: str, heading: str) -> str:
    """The page from `heading`'s <h2> to the next one (or the end)."""
    start = html.index(f"<h2>{heading}")
    end = html.find("<h2>", start + 1)
    return html[start : end if end != -1 else len(html)]


def assert_each_figure_is_explained_in_its_section(html: str) -> None:
    """Every figure REPORTS.md defines is explained on the page, in the section that shows it: the
    page is read in a browser, by people who have no docs/ folder to open."""
    headings = {
        "Questions and answers": "Questions and answers",
        "Tickets": "Tickets",
        "Satisfaction": "Satisfaction (CSAT)",
        "Incidents": "Incidents",
    }
    for section, figures in documented_figures().items():
        shown = _section(html, headings[section])
        assert "How each figure is counted" in shown, section
        for name in figures:
            meaning = BY_SECTION[section][name]
            assert f"<dt>{escape(name)}</dt><dd>{escape(meaning)}</dd>" in shown, (section, name)
    assert "Definitions: docs/REPORTS.md" not in html, "a path the reader cannot open is no definition"
    assert "Full definitions with their queries: docs/REPORTS.md in supportbot&#x27;s repository" in html


async def test_an_empty_window_still_says_how_each_figure_is_counted(bot: BotHarness, tmp_path: Path) -> None:
    html = (await _write(bot, tmp_path)).read_text()
    assert "Nothing to report yet" in html
    assert_each_figure_is_explained_in_its_section(html)


async def test_a_week_of_support_says_how_each_figure_is_counted(bot: BotHarness, tmp_path: Path) -> None:
    await a_week_of_support(bot)
    html = (await _write(bot, tmp_path)).read_text()
    assert "Nothing to report yet" not in html
    assert_each_figure_is_explained_in_its_section(html)


async def test_customers_words_are_escaped_clipped_and_no_one_is_named(
    bot: BotHarness, tmp_path: Path
) -> None:
    await _hostile_questions(bot)
    html = (await _write(bot, tmp_path)).read_text()
    assert "<script" not in html and "<img src=x" not in html
    assert "&lt;script&gt;window.pwned = 1&lt;/script&gt;" in html
    for private in ("Casey", "Robin", "console:C1", "console:C2", "U0CASEY", "U0ROBIN"):
        assert private not in html, private
    examples = re.findall(r"<q>(.*?)</q>", html, flags=re.S)
    assert len(examples) == 2
    for example in examples:
        assert "\n" not in example and "`" not in example and "**" not in example
        assert len(example) < 400, "clipped (escaping may lengthen the 200 characters)"
    assert "http://" not in html and "https://" not in html, "nothing to fetch, nothing to follow"


async def test_a_report_over_50000_questions_renders_as_html_in_under_10_seconds(
    bot: BotHarness, database: Database, tmp_path: Path
) -> None:
    await generate(database, decisions=50_000, now=bot.clock.now)
    started = time.perf_counter()
    page = await _write(bot, tmp_path)
    elapsed = time.perf_counter() - started
    html = page.read_text()
    assert "50000" in html and "Knowledge gaps" in html
    assert not any(name in html for name in CUSTOMER_NAMES) and "UCUST" not in html
    assert elapsed < 10, f"{elapsed:.1f} s"


async def test_the_page_opens_in_a_real_browser_with_its_charts_and_fetches_nothing(
    bot: BotHarness, tmp_path: Path
) -> None:
    chromium = chromium_binary()
    from playwright.async_api import async_playwright

    await a_week_of_support(bot)
    await _hostile_questions(bot)
    page_path = await _write(bot, tmp_path / "report")
    requested: list[str] = []
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = await browser.new_page(viewport={"width": 1000, "height": 900})
            page.on("request", lambda request: requested.append(request.url))
            await page.goto(page_path.as_uri())
            await page.wait_for_load_state("load")
            widths = await page.eval_on_selector_all("img", "images => images.map(i => i.naturalWidth)")
            assert len(widths) == 4 and all(width > 0 for width in widths), widths
            assert await page.evaluate("window.pwned === undefined")
            assert "<script>window.pwned = 1</script>" in await page.inner_text("ol.gaps")
            await page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        finally:
            await browser.close()
    assert (tmp_path / "report.png").stat().st_size > 10_000
    outside = [url for url in requested if not url.startswith(page_path.parent.as_uri())]
    assert outside == [], outside
    assert len(requested) == 5, requested  # the page and its four charts


def _exit_code(argv: list[str]) -> int | str | None:
    """`supportbot ARGV`'s exit code, whether it returns it or argparse exits with it."""
    try:
        return main(argv)
    except SystemExit as exit:
        return exit.code


def test_the_command_writes_the_report_and_bad_arguments_are_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    kb = Path(__file__).resolve().parents[1] / "data" / "kb"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/bot.db")
    monkeypatch.setenv("KB_PATH", str(kb))
    monkeypatch.setenv("MATCHER", "lexical")
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    assert main(["report", "--days", "30", "--out", "out"]) == 0
    assert capsys.readouterr().out.strip() == "wrote out/report.html (nothing to report yet)"
    assert (tmp_path / "out" / "report.html").is_file() and (tmp_path / "out" / MAIN).is_file()

    (tmp_path / "a-file").write_text("")
    for argv, problem in (
        (["report", "--days", "0", "--out", "out"], "'0' is not a number of days from 1 to 365"),
        (["report", "--days", "many", "--out", "out"], "'many' is not a number of days"),
        (["report", "--days", "9" * 5000, "--out", "out"], f"'{'9' * 20}' is not a number of days"),
        (["report"], "the following arguments are required: --out"),
        (["report", "--out", "a-file"], "a-file is a file; name a folder"),
        (["report", "--out", ""], "--out names no folder"),
        (["report", "--out", "typo/out"], "typo does not exist; name a folder in one that does"),
    ):
        assert _exit_code(argv) == 2, argv
        err = capsys.readouterr().err
        assert problem in err and err.count("\n") == 1, (argv, err)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/missing.db")
    assert _exit_code(["report", "--out", "out"]) == 2
    err = capsys.readouterr().err
    assert "no database at" in err and err.count("\n") == 1


def test_the_command_counts_one_question_in_the_singular(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def one_question(*_: object, **__: object) -> SimpleNamespace:
        return SimpleNamespace(empty=False, current=SimpleNamespace(questions=1))

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/bot.db")
    monkeypatch.setenv("KB_PATH", str(Path(__file__).resolve().parents[1] / "data" / "kb"))
    monkeypatch.setenv("MATCHER", "lexical")
    monkeypatch.setenv("LOG_LEVEL", "WARNING")
    assert main(["db", "upgrade"]) == 0
    capsys.readouterr()
    monkeypatch.setattr(report, "build", one_question)
    monkeypatch.setattr(report_html, "write", lambda _, out: out / "report.html")
    assert main(["report", "--out", "rep"]) == 0
    assert capsys.readouterr().out.strip() == "wrote rep/report.html (1 question)"
