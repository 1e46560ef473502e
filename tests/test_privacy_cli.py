"""`supportbot privacy export` and `privacy erase`: the file, the confirmation, and one line with exit
code 2 for everything a person must fix (an unknown person, a wrong argument, no terminal to ask on)."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import shutil
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bot.cli import main
from bot.core import owed, privacy
from bot.core.clock import utc_now
from bot.core.context import PendingDelivery
from bot.core.events import Actor, CommandInvoked, Conversation, Delivery, OutboundMessage, Platform
from bot.handlers.kb_admin import WriteLesson
from bot.insights.messages import inert
from bot.kb import learned, teach
from bot.kb.learned import LearnedPhrasing
from bot.tickets.workflows import RememberStaffThread
from storage import events_repo, migrate
from storage.db import Database
from storage.models import ProcessedEvent
from tests.adapters.slack.test_erasure_killed import _learned_folder_locked
from tests.harness import BotHarness, make_settings

ROOT = Path(__file__).resolve().parent
CASEY = Actor(platform=Platform.CONSOLE, id="U7CASEY", display_name="Casey Quillfeather")

Supportbot = Callable[..., subprocess.CompletedProcess[str]]


async def _seed(database_file: Path) -> None:
    """A ticket and a question from Casey, in the database the command will open."""
    database = Database.from_url(f"sqlite+aiosqlite:///{database_file}")
    await migrate.upgrade(database.engine)
    bot = await BotHarness.create(make_settings(database_file.parent), database=database)
    await bot.says(CASEY, "how do I reset my API key?")
    await bot.says(CASEY, "can I talk to a human? my gloopwidget export fails")
    await bot.close()
    await database.dispose()


@pytest.fixture
def site(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    asyncio.run(_seed(tmp_path / "data" / "supportbot.db"))
    return tmp_path


class FakeTerminal(io.StringIO):
    """What a person types at a terminal."""

    def isatty(self) -> bool:
        return True


@pytest.fixture
def command(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Iterator[Supportbot]:
    """`supportbot ...` in this process, in `folder`, with `stdin` as its standard input."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level

    def call(folder: Path, *args: str, stdin: io.StringIO | None = None) -> subprocess.CompletedProcess[str]:
        with monkeypatch.context() as patch:
            for name in os.environ:
                if name.endswith(("_TOKEN", "_SECRET", "_URL")):
                    patch.delenv(name)
            patch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{folder}/data/supportbot.db")
            patch.chdir(folder)
            patch.setattr("sys.stdin", stdin if stdin is not None else io.StringIO(""))
            capsys.readouterr()
            try:
                code = main(list(args))
            except SystemExit as exited:  # argparse, on a wrong argument
                code = int(exited.code or 0)
            out, err = capsys.readouterr()
            root.handlers[:] = handlers
            root.setLevel(level)
        return subprocess.CompletedProcess(list(args), code, out, err)

    yield call


def _one_line(result: subprocess.CompletedProcess[str], says: str) -> None:
    assert result.returncode == 2, result
    assert result.stderr.count("\n") == 1 and says in result.stderr, result.stderr


def test_export_writes_one_versioned_file_only_its_owner_can_read(site: Path, command: Supportbot) -> None:
    result = command(site, "privacy", "export", "console:U7CASEY", "casey.json")

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("wrote casey.json: 1 ticket (1 transcript line), 1 question, 0 ratings")
    file = site / "casey.json"
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    document = json.loads(file.read_text())
    assert document["manifest"]["version"] == 1 and document["manifest"]["subject"] == "console:U7CASEY"
    assert "gloopwidget" in document["tickets_opened"][0]["summary"]


def test_export_of_an_unknown_person_says_so(site: Path, command: Supportbot) -> None:
    result = command(site, "privacy", "export", "console:NOBODY9", "nobody.json")
    _one_line(result, "supportbot privacy export: nothing is stored about console:NOBODY9")
    assert not (site / "nobody.json").exists()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (
            ("privacy", "export", "U7CASEY", "x.json"),
            "`U7CASEY` is not platform:user_id (e.g. slack:U0123ABCD)",
        ),
        (("privacy", "export", "irc:U7CASEY", "x.json"), "`irc` is not a platform"),
        (("privacy", "erase", "slack:", "--yes"), "is not platform:user_id"),
        (("privacy", "export", "console:U7CASEY"), "the following arguments are required: FILE"),
        (("privacy", "forget", "console:U7CASEY"), "invalid choice: 'forget'"),
        (("privacy",), "the following arguments are required"),
    ],
)
def test_a_wrong_argument_is_one_line_and_exit_2(
    site: Path, command: Supportbot, args: tuple[str, ...], says: str
) -> None:
    _one_line(command(site, *args), says)


def test_export_never_overwrites_a_file(site: Path, command: Supportbot) -> None:
    (site / "keep.json").write_text("mine")
    result = command(site, "privacy", "export", "console:U7CASEY", "keep.json")
    _one_line(result, "keep.json exists; name a new file")
    assert (site / "keep.json").read_text() == "mine"


def test_export_into_a_missing_folder_is_one_line(site: Path, command: Supportbot) -> None:
    result = command(site, "privacy", "export", "console:U7CASEY", "no/such/folder/casey.json")
    _one_line(result, "No such file or directory")


def test_without_a_database_there_is_nothing_to_export(tmp_path: Path, command: Supportbot) -> None:
    result = command(tmp_path, "privacy", "export", "console:U7CASEY", "casey.json")
    _one_line(result, "no database at")
    assert not (tmp_path / "data").exists(), "no empty database was created"


def test_erase_without_a_terminal_needs_yes(site: Path, command: Supportbot) -> None:
    result = command(site, "privacy", "erase", "console:U7CASEY")
    _one_line(result, "not asking without a terminal; add --yes to erase without asking")
    assert command(site, "privacy", "export", "console:U7CASEY", "still.json").returncode == 0


def test_erase_with_yes_leaves_nothing_to_export(site: Path, command: Supportbot) -> None:
    result = command(site, "privacy", "erase", "console:U7CASEY", "--yes")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("erased console:U7CASEY: ") and "they are now erased:" in result.stdout
    _one_line(command(site, "privacy", "export", "console:U7CASEY", "gone.json"), "nothing is stored about")
    _one_line(command(site, "privacy", "erase", "console:U7CASEY", "--yes"), "nothing is stored about")


def test_erase_at_a_terminal_asks_for_the_id(site: Path, command: Supportbot) -> None:
    wrong = command(site, "privacy", "erase", "console:U7CASEY", stdin=FakeTerminal("U7CASE\n"))
    assert wrong.returncode == 1
    assert "Erase everything about console:U7CASEY? Type the id to confirm:" in wrong.stdout
    assert "not erased (the id did not match)" in wrong.stderr
    assert command(site, "privacy", "export", "console:U7CASEY", "still.json").returncode == 0
    ended = command(site, "privacy", "erase", "console:U7CASEY", stdin=FakeTerminal(""))  # Ctrl-D
    assert ended.returncode == 1
    assert "not erased (no answer)" in ended.stderr

    typed = command(site, "privacy", "erase", "console:U7CASEY", stdin=FakeTerminal("console:U7CASEY\n"))
    assert typed.returncode == 0, typed.stderr
    assert "erased console:U7CASEY" in typed.stdout


OTHERS = "is the gloopwidget export down for everyone?"


def _learned_from_casey(site: Path) -> Path:
    """A KB folder whose learned.yml holds Casey's words, as staff taught them, and someone else's."""
    kb = site / "kb"
    shutil.copytree(ROOT / "data" / "kb", kb)
    phrasing = LearnedPhrasing(id="p1", entry="sso-setup", text="How do I reset my  API key?", taught_by="S1")
    learned.write(kb / learned.LEARNED_FILE, learned.Learned(phrasings=(phrasing,)))
    teach.decline(kb, ["can I talk to a human? my gloopwidget export fails", OTHERS], taught_by="S1")
    return kb


def test_erase_removes_their_questions_from_the_learned_file(site: Path, command: Supportbot) -> None:
    kb = _learned_from_casey(site)

    result = command(site, "privacy", "erase", "console:U7CASEY", "--yes")

    assert result.returncode == 0, result.stderr
    assert ", learned.yml 2 questions; they are now erased:" in result.stdout, result.stdout
    stored = learned.read(kb / learned.LEARNED_FILE)
    assert stored.phrasings == () and [d.questions for d in stored.declined] == [(OTHERS,)]


def test_erase_goes_ahead_when_the_learned_file_cannot_be_read(site: Path, command: Supportbot) -> None:
    kb = _learned_from_casey(site)
    (kb / learned.LEARNED_FILE).write_text("phrasings: [this is: not, a list of items\n")

    result = command(site, "privacy", "erase", "console:U7CASEY", "--yes")

    assert result.returncode == 0, result.stderr
    assert "they are now erased:" in result.stdout
    assert "learned.yml could not be cleaned of their questions: " in result.stdout
    assert "not valid YAML" in result.stdout
    _one_line(command(site, "privacy", "export", "console:U7CASEY", "gone.json"), "nothing is stored about")


def test_erase_while_learned_yml_stays_busy_erases_nothing_so_trying_again_finds_them(
    site: Path, command: Supportbot, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process holding learned.yml's lock past the wait: an erasure committed without the
    file's cleaning would leave their words there for good (tried again, nothing is stored)."""
    kb = _learned_from_casey(site)
    before = (kb / learned.LEARNED_FILE).read_bytes()
    monkeypatch.setattr(learned, "LOCK_WAIT_SECONDS", 0.3)

    with _learned_folder_locked(kb):
        busy = command(site, "privacy", "erase", "console:U7CASEY", "--yes")

    assert busy.returncode == 2 and busy.stdout == ""
    assert busy.stderr.splitlines()[-1] == (
        "supportbot privacy erase: Nothing was erased: learned.yml is being changed by another "
        "process; try again in a minute."
    )
    assert "erased erased:" not in busy.stderr, "no log line may say it was erased"
    assert (kb / learned.LEARNED_FILE).read_bytes() == before
    assert command(site, "privacy", "export", "console:U7CASEY", "still.json").returncode == 0
    again = command(site, "privacy", "erase", "console:U7CASEY", "--yes")
    assert again.returncode == 0, again.stderr
    assert ", learned.yml 2 questions; they are now erased:" in again.stdout, again.stdout


def test_an_erasure_killed_before_learned_yml_was_cleaned_cleans_it_when_run_again(
    site: Path, command: Supportbot
) -> None:
    """The command killed while it waits for learned.yml's folder lock (a running bot writing the
    file): its erasure is not committed without the file's cleaning, so running it again does both."""
    kb = _learned_from_casey(site)
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_TOKEN", "_SECRET", "_URL"))}
    env |= {"DATABASE_URL": f"sqlite+aiosqlite:///{site}/data/supportbot.db", "PYTHONPATH": str(ROOT.parent)}
    said = site / "erasing.log"
    with _learned_folder_locked(kb), said.open("w") as log:
        erasing = subprocess.Popen(
            [sys.executable, "-m", "bot", "privacy", "erase", "console:U7CASEY", "--yes"],
            cwd=site,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            deadline = time.monotonic() + 30
            while "waiting for learned.yml" not in said.read_text():
                assert erasing.poll() is None and time.monotonic() < deadline, "it never waited for the lock"
                time.sleep(0.05)
        finally:
            erasing.kill()
            erasing.wait()

    result = command(site, "privacy", "erase", "console:U7CASEY", "--yes")

    assert result.returncode == 0, result.stderr
    assert ", learned.yml 2 questions; they are now erased:" in result.stdout, result.stdout
    assert learned.read(kb / learned.LEARNED_FILE).phrasings == ()


async def _a_lesson_still_owed(database_file: Path, *, questions: tuple[str, ...]) -> None:
    """A lesson staff taught whose bot was killed before writing it: kept with its command's claim
    for the next bot's sweep to write."""
    staff = Actor(platform=Platform.CONSOLE, id="S1", display_name="Sam")
    room = Conversation(platform=Platform.CONSOLE, workspace_id="W1", channel_id="staff")
    command = CommandInvoked(
        actor=staff, conversation=room, name="support", args="kb teach", event_id="cmd-l"
    )
    lesson = WriteLesson(
        article="sso-setup",
        title="",
        answer="",
        questions=questions,
        new=False,
        taken=frozenset(),
        source="gap `g1`",
    )
    await _claim_owing(database_file, "cmd-l", work=owed.encode_work(owed.OwedWork(command, (lesson,))))


async def _claim_owing(
    database_file: Path, event_id: str, *, replies: str = "[]", work: str | None = None
) -> None:
    """The claim of an event whose bot was killed before it was done: what it still owes."""
    database = Database.from_url(f"sqlite+aiosqlite:///{database_file}")
    async with database.transaction() as session:
        await events_repo.claim_event(
            session, platform="console", event_id=event_id, owed=replies, owed_until=utc_now(), work=work
        )
    await database.dispose()


async def _still_owed(database_file: Path, column: Any) -> list[str]:
    """What the claims still owe in `column` (`ProcessedEvent.owed` or `.work`)."""
    database = Database.from_url(f"sqlite+aiosqlite:///{database_file}")
    async with database.session() as session:
        stored = (await session.execute(select(column))).scalars().all()
    await database.dispose()
    return [text for text in stored if text]


async def _owed_lessons(database_file: Path) -> list[WriteLesson]:
    works = await _still_owed(database_file, ProcessedEvent.work)
    lessons = [w for text in works for w in owed.decode_work(text).work]
    assert all(isinstance(lesson, WriteLesson) for lesson in lessons)
    return lessons  # type: ignore[return-value]


def test_erase_takes_their_questions_out_of_a_lesson_still_to_be_written(
    site: Path, command: Supportbot
) -> None:
    database_file = site / "data" / "supportbot.db"
    asyncio.run(_a_lesson_still_owed(database_file, questions=("How do I reset my  API key?", OTHERS)))

    result = command(site, "privacy", "erase", "console:U7CASEY", "--yes")

    assert result.returncode == 0, result.stderr
    assert ", 1 pending lesson cleaned; they are now erased:" in result.stdout, result.stdout
    (lesson,) = asyncio.run(_owed_lessons(database_file))
    assert lesson.questions == (OTHERS,), "the next bot's sweep would have written Casey's words"


async def _exported_in_chat(database_file: Path, *, subject: str) -> Path:
    """What `/support privacy export` writes of `subject`, beside the database."""
    database = Database.from_url(f"sqlite+aiosqlite:///{database_file}")
    async with database.session() as session:
        document = await privacy.export(session, subject=subject, now=utc_now())
    await database.dispose()
    assert document is not None
    folder = privacy.exports_folder(f"sqlite+aiosqlite:///{database_file}")
    folder.mkdir(exist_ok=True)
    path = privacy.export_path(folder, subject=subject, now=utc_now())
    privacy.write(document, path)
    return path


def test_erase_deletes_the_chats_exports_of_them_it_named_first(site: Path, command: Supportbot) -> None:
    database_file = site / "data" / "supportbot.db"
    caseys = asyncio.run(_exported_in_chat(database_file, subject="console:U7CASEY"))
    someone_elses = caseys.with_name(caseys.name.replace("U7CASEY", "U7OTHER"))
    someone_elses.write_text('{"manifest": {"subject": "console:U7OTHER"}}')

    typed = command(site, "privacy", "erase", "console:U7CASEY", stdin=FakeTerminal("console:U7CASEY\n"))

    assert typed.returncode == 0, typed.stderr
    said = f"Their export on the bot's server is deleted with them (send it first): {caseys.resolve()}."
    assert said in typed.stdout, typed.stdout
    assert ", 1 export deleted; they are now erased:" in typed.stdout, typed.stdout
    assert not caseys.exists() and someone_elses.exists()


CASEYS = "can I talk to a human? my gloopwidget export fails"


async def _a_reply_still_owed(database_file: Path, text: str) -> None:
    """A reply to staff its bot was killed before posting, kept with its event's claim."""
    room = Conversation(platform=Platform.CONSOLE, workspace_id="W1", channel_id="staff")
    reply = PendingDelivery(Delivery(conversation=room, message=OutboundMessage(text=text)))
    await _claim_owing(database_file, "cmd-r", replies=owed.encode([reply]))


async def _owed_texts(database_file: Path) -> list[str]:
    stored = await _still_owed(database_file, ProcessedEvent.owed)
    return [reply.delivery.message.text for text in stored for reply in owed.decode(text)]


def test_erase_takes_their_words_out_of_a_reply_still_to_be_posted(site: Path, command: Supportbot) -> None:
    database_file = site / "data" / "supportbot.db"
    quoted = f"\u201c{CASEYS}\u201d, \u201c{inert(CASEYS, 30)}\u201d, \u201c{OTHERS}\u201d"
    asyncio.run(_a_reply_still_owed(database_file, f"Gap 1: {quoted}"))

    result = command(site, "privacy", "erase", "console:U7CASEY", "--yes")

    assert result.returncode == 0, result.stderr
    gone = "\u201cremoved at the person's request\u201d"
    assert asyncio.run(_owed_texts(database_file)) == [f"Gap 1: {gone}, {gone}, \u201c{OTHERS}\u201d"]


def test_erase_run_alone_takes_their_words_out_of_a_reply_whose_record_is_a_tickets(site: Path) -> None:
    """`supportbot privacy erase` in a process of its own, as people run it: a reply still owed that
    asks to record something once sent (a ticket's staff thread) is read and cleaned as in chat,
    not left with their words for the bot's sweep to post."""
    database_file = site / "data" / "supportbot.db"
    room = Conversation(platform=Platform.CONSOLE, workspace_id="W1", channel_id="staff")
    card = Delivery(conversation=room, message=OutboundMessage(text=f"Gap 1: \u201c{CASEYS}\u201d"))
    replies = owed.encode([PendingDelivery(card, RememberStaffThread(ticket_id=99))])
    asyncio.run(_claim_owing(database_file, "cmd-r", replies=replies))
    env = {k: v for k, v in os.environ.items() if not k.endswith(("_TOKEN", "_SECRET", "_URL"))}
    env |= {"DATABASE_URL": f"sqlite+aiosqlite:///{database_file}", "PYTHONPATH": str(ROOT.parent)}

    erased = subprocess.run(
        [sys.executable, "-m", "bot", "privacy", "erase", "console:U7CASEY", "--yes"],
        cwd=site,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert erased.returncode == 0, erased.stderr
    assert asyncio.run(_owed_texts(database_file)) == ["Gap 1: \u201cremoved at the person's request\u201d"]
