"""Teaching the bot: questions attached as phrasings or drafted into an article land in the bot's
own learned.yml, are loaded with the team's files, and a replay says what the change would do."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from bot.kb import learned, semantic, teach
from bot.kb.knowledge_base import KnowledgeBase, KnowledgeBaseHolder, request_reload
from bot.kb.loader import load_entries
from bot.kb.model import Band
from bot.kb.semantic import SemanticMatcher
from tests.kb.test_cli import NEEDS_SEMANTIC

FIXTURE_KB = Path(__file__).resolve().parents[1] / "data" / "kb"
PRICES = ["what are your prices?", "how much does it cost per month", "is there a free plan"]


@pytest.fixture
def kb_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "kb"
    shutil.copytree(FIXTURE_KB, folder)
    return folder


def _team_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.yml")) if p.name != learned.LEARNED_FILE}


def test_attached_questions_are_phrasings_with_who_and_which_ticket(kb_dir: Path) -> None:
    team = _team_files(kb_dir)
    holder = KnowledgeBaseHolder(kb_dir, matcher="lexical")
    entry = holder.entries[0]
    change = teach.attach_change(holder.entries, entry_id=entry.id, questions=["  zebra   crossing quux "])
    article, ids = teach.publish(kb_dir, change, taught_by="U42", from_ticket=7)

    assert (article, ids) == (entry.id, ("p1",))
    stored = learned.read(kb_dir / "learned.yml")
    assert stored.phrasings[0].text == "zebra crossing quux"
    assert (stored.phrasings[0].taught_by, stored.phrasings[0].from_ticket) == ("U42", 7)
    assert _team_files(kb_dir) == team  # the team's own files are never rewritten
    summary = holder.reload_if_changed()  # the watcher's reload picks the file up
    assert summary is not None and summary.changed == (entry.id,)
    assert "zebra crossing quux" in holder.get(entry.id).questions  # type: ignore[union-attr]


def test_a_draft_is_inactive_until_approved_then_answers(kb_dir: Path) -> None:
    holder = KnowledgeBaseHolder(kb_dir, matcher="lexical")
    assert holder.ask("what are your prices?").band is not Band.ANSWER
    change = teach.draft_change(
        holder.entries, title="Prices and plans", questions=PRICES, answer="Plans start at $20."
    )
    replayed = teach.preview(holder, change)
    assert replayed.asked == 3 and replayed.answered_before == 0
    assert replayed.text().startswith(f"This would have answered {replayed.answered} of 3")

    article, _ = teach.publish(kb_dir, change, taught_by="U1")
    assert article == "prices-and-plans"
    assert [a.id for a in teach.pending(kb_dir)] == ["prices-and-plans"]
    holder.reload()
    assert holder.get("prices-and-plans") is None  # pending: not active

    teach.approve(kb_dir, "prices-and-plans")
    holder.reload()
    assert teach.pending(kb_dir) == ()
    decision = holder.ask("what are your prices?")
    assert decision.band is Band.ANSWER and decision.best is not None
    assert decision.best.entry.id == "prices-and-plans"
    with pytest.raises(teach.TeachError):
        teach.approve(kb_dir, "prices-and-plans")


def test_forget_undoes_a_phrasing_and_a_draft_left_without_any(kb_dir: Path) -> None:
    holder = KnowledgeBaseHolder(kb_dir, matcher="lexical")
    entry = holder.entries[0]
    teach.publish(
        kb_dir,
        teach.attach_change(holder.entries, entry_id=entry.id, questions=["zebra quux"]),
        taught_by="U1",
    )
    teach.publish(
        kb_dir,
        teach.draft_change(holder.entries, title="Prices", questions=["prices?"], answer="$20"),
        taught_by="U1",
    )
    assert teach.forget(kb_dir, "p1").entry == entry.id
    assert teach.forget(kb_dir, "p2").entry == "prices"
    stored = learned.read(kb_dir / "learned.yml")
    assert stored.phrasings == () and stored.articles == ()
    entries, _ = load_entries(kb_dir)
    assert next(e for e in entries if e.id == entry.id).questions == entry.questions
    with pytest.raises(teach.TeachError, match="no learned phrasing"):
        teach.forget(kb_dir, "p1")


def test_a_forgotten_id_is_never_given_again(kb_dir: Path) -> None:
    """Staff undo, audit and talk about ids: after `forget p2`, the next lesson is p3, not p2 again
    (also in a file written before the bot kept count)."""
    holder = KnowledgeBaseHolder(kb_dir, matcher="lexical")
    entry = holder.entries[0]
    attach = teach.attach_change(
        holder.entries, entry_id=entry.id, questions=["zebra quux", "quux zebra two"]
    )
    assert teach.publish(kb_dir, attach, taught_by="U1")[1] == ("p1", "p2")
    assert teach.decline(kb_dir, ["can you do my taxes"], taught_by="U1").id == "n1"
    teach.forget(kb_dir, "p2")
    teach.forget(kb_dir, "n1")
    again = teach.attach_change(holder.entries, entry_id=entry.id, questions=["zebra quux three"])
    assert teach.publish(kb_dir, again, taught_by="U1")[1] == ("p3",)
    assert teach.decline(kb_dir, ["file my taxes"], taught_by="U1").id == "n2"

    older = "phrasings: [{id: p7, entry: x, text: t, taught_by: U1}]\n"  # no count kept
    (kb_dir / "learned.yml").write_text(older)
    teach.forget(kb_dir, "p7")
    assert learned.read(kb_dir / "learned.yml").next_phrasing_id() == "p8"


def test_a_lesson_written_again_after_a_kill_keeps_its_phrasings_and_their_ids(kb_dir: Path) -> None:
    """A process that died after writing a lesson, before recording it done, leaves it to the next
    one, which writes it `again`: nothing is added twice, and staff hear the ids it got the first time."""
    holder = KnowledgeBaseHolder(kb_dir, matcher="lexical")
    entry = holder.entries[0]
    attach = teach.attach_change(
        holder.entries, entry_id=entry.id, questions=["zebra quux", "Zebra  QUUX two"]
    )
    draft = teach.draft_change(holder.entries, title="Prices and plans", questions=PRICES, answer="From $20.")
    decline = ["can you do my taxes", "file my taxes"]
    first = (
        teach.publish(kb_dir, attach, taught_by="U1"),
        teach.publish(kb_dir, draft, taught_by="U1", from_ticket=3),
        teach.decline(kb_dir, decline, taught_by="U1", from_gap="g1-7-a"),
    )
    written = (kb_dir / "learned.yml").read_text()

    again = (
        teach.publish(kb_dir, attach, taught_by="U1", again=True),
        teach.publish(kb_dir, draft, taught_by="U1", from_ticket=3, again=True),
        teach.decline(kb_dir, decline, taught_by="U1", from_gap="g1-7-a", again=True),
    )

    assert again == first
    assert first[0] == (entry.id, ("p1", "p2")) and first[1] == ("prices-and-plans", ("p3", "p4", "p5"))
    assert (kb_dir / "learned.yml").read_text() == written
    with pytest.raises(teach.TeachError, match="already drafted"):  # a second click is not a redo
        teach.publish(kb_dir, draft, taught_by="U1")


def test_an_approval_or_a_forget_done_again_after_a_kill_counts_as_done(kb_dir: Path) -> None:
    holder = KnowledgeBaseHolder(kb_dir, matcher="lexical")
    draft = teach.draft_change(holder.entries, title="Prices and plans", questions=PRICES, answer="From $20.")
    teach.publish(kb_dir, draft, taught_by="U1")
    approved = teach.approve(kb_dir, "prices-and-plans")
    assert teach.approve(kb_dir, "prices-and-plans", again=True) == approved
    forgotten = teach.forget(kb_dir, "p1")
    assert forgotten is not None and forgotten.text == PRICES[0]
    assert teach.forget(kb_dir, "p1", again=True) is None
    with pytest.raises(teach.TeachError, match="already approved"):
        teach.approve(kb_dir, "prices-and-plans")
    with pytest.raises(teach.TeachError, match="no learned phrasing"):
        teach.forget(kb_dir, "p1")


_SLOW_DECLINE = """
import sys, time
from pathlib import Path
from bot.kb import learned, teach
write = learned.write
def slow(path, changed):
    print("read", flush=True)
    time.sleep(1.0)
    write(path, changed)
learned.write = slow
teach.decline(Path(sys.argv[1]), ["can you do my taxes"], taught_by="U1")
"""


def test_two_processes_changing_learned_yml_lose_nothing(kb_dir: Path) -> None:
    """`supportbot privacy erase` changes learned.yml from the command line while the bot runs: a
    change one process makes while the other is between reading and writing must not be lost
    (an erased question back in the file, or one id given twice)."""
    other = subprocess.Popen(
        [sys.executable, "-c", _SLOW_DECLINE, str(kb_dir)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert other.stdout is not None and other.stdout.readline() == "read\n"
        teach.decline(kb_dir, ["file my taxes"], taught_by="U2")
    finally:
        assert other.wait(timeout=30) == 0
    topics = learned.read(kb_dir / "learned.yml").declined
    assert sorted((t.id, t.questions) for t in topics) == [
        ("n1", ("can you do my taxes",)),
        ("n2", ("file my taxes",)),
    ]


_STUCK_HOLDER = """
import fcntl, os, sys, time
folder = os.open(sys.argv[1], os.O_RDONLY)
fcntl.flock(folder, fcntl.LOCK_EX)
print("holding", flush=True)
time.sleep(60)
"""


def test_a_change_waits_for_a_stuck_holder_of_learned_yml_only_so_long_and_changes_nothing(
    kb_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process stopped in the middle of its change holds the file's lock: staff are told to try
    again instead of the bot's worker waiting for it for ever."""
    teach.decline(kb_dir, ["can you do my taxes"], taught_by="U1")
    before = (kb_dir / "learned.yml").read_bytes()
    monkeypatch.setattr(learned, "LOCK_WAIT_SECONDS", 0.3)
    stuck = subprocess.Popen(
        [sys.executable, "-c", _STUCK_HOLDER, str(kb_dir)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert stuck.stdout is not None and stuck.stdout.readline() == "holding\n"
        with pytest.raises(learned.LearnedFileBusy, match=r"learned\.yml is being changed elsewhere"):
            teach.decline(kb_dir, ["file my taxes"], taught_by="U2")
    finally:
        stuck.kill()
        stuck.wait(timeout=30)
    assert (kb_dir / "learned.yml").read_bytes() == before
    teach.decline(kb_dir, ["file my taxes"], taught_by="U2")  # the holder gone, the change goes through
    assert [t.questions for t in learned.read(kb_dir / "learned.yml").declined] == [
        ("can you do my taxes",),
        ("file my taxes",),
    ]


def test_a_learned_file_with_a_broken_count_says_where(kb_dir: Path) -> None:
    (kb_dir / "learned.yml").write_text("issued: {phrasings: -1}\n")
    with pytest.raises(
        learned.LearnedFileError, match=r"learned\.yml:1: 'issued: phrasings' must be a whole number"
    ):
        learned.read(kb_dir / "learned.yml")
    for wrong in ("issued: {phrasing: 12}\n", "issued: [12]\n", "issued: []\n", "issued: 12\n"):
        (kb_dir / "learned.yml").write_text(wrong)  # a misspelt count would be ignored, and ids reused
        with pytest.raises(learned.LearnedFileError, match=r"'issued' must be 'phrasings: N, declined: N'"):
            learned.read(kb_dir / "learned.yml")


def test_a_persons_questions_are_forgotten_as_the_file_stores_them(kb_dir: Path, tmp_path: Path) -> None:
    """On a person's erasure: their phrasings and declined questions go, compared one-line, clipped
    and without case; a draft left with no phrasing goes, and so does a topic left with no question."""
    holder = KnowledgeBaseHolder(kb_dir, matcher="lexical")
    long = "why is my invoice wrong " * 40
    teach.publish(
        kb_dir,
        teach.draft_change(holder.entries, title="Prices", questions=PRICES, answer="$20"),
        taught_by="U1",
    )
    teach.decline(kb_dir, ["can you do my taxes", long], taught_by="U1")
    teach.decline(kb_dir, ["write my essay"], taught_by="U1")

    asked = ["  WHAT are your\n prices? ", f"{long} and more", "write my essay", "never taught"]
    assert teach.forget_questions(kb_dir, asked) == 3
    stored = learned.read(kb_dir / "learned.yml")
    assert [p.text for p in stored.phrasings] == PRICES[1:] and [a.id for a in stored.articles] == ["prices"]
    assert [d.questions for d in stored.declined] == [("can you do my taxes",)]

    assert teach.forget_questions(kb_dir, [*PRICES, "can you do my taxes"]) == 3
    emptied = learned.read(kb_dir / "learned.yml")
    assert (emptied.phrasings, emptied.articles, emptied.declined) == ((), (), ())
    assert teach.forget_questions(kb_dir, PRICES) == 0
    one_file = tmp_path / "one.yml"
    shutil.copy(next(kb_dir.glob("*.yml")), one_file)
    assert teach.forget_questions(one_file, PRICES) == 0


def test_replay_counts_only_other_articles_answers_that_would_move(kb_dir: Path) -> None:
    """K of "would have taken K questions away from other articles": stored questions another
    article answered, asked again of the changed KB, that the lesson's article would now answer."""
    holder = KnowledgeBaseHolder(kb_dir, matcher="lexical")
    stored = [
        ("pdf of my invoice please", "invoice-download"),
        ("how do I download the invoice as a pdf", "invoice-download"),
        ("my export failed", "export-failed"),  # the lesson's own article: not "taken"
        ("how do I cancel", "cancel-subscription"),
    ]
    assert [holder.ask(q).best.entry.id for q, _ in stored] == [a for _, a in stored]  # type: ignore[union-attr]
    change = teach.attach_change(
        holder.entries, entry_id="export-failed", questions=["pdf of my invoice please"]
    )
    replayed = teach.preview(holder, change, asked=["pdf of my invoice please", "invoice pdf"], others=stored)
    assert (replayed.answered, replayed.asked, replayed.answered_before) == (1, 2, 0)
    assert (replayed.taken, replayed.replayed) == (1, 3)
    assert replayed.text() == (
        "This would have answered 1 of 2 (before: 0), and would have taken 1 question away from other "
        "articles (of 3 they answered lately)."
    )
    harmless = teach.attach_change(
        holder.entries, entry_id="sso-setup", questions=["sso with google workspace"]
    )
    assert teach.preview(holder, harmless, others=stored).taken == 0


def test_mistakes_staff_can_fix_are_said(kb_dir: Path, tmp_path: Path) -> None:
    holder = KnowledgeBaseHolder(kb_dir, matcher="lexical")
    entry = holder.entries[0]
    with pytest.raises(teach.TeachError, match="no article"):
        teach.attach_change(holder.entries, entry_id="nope", questions=["x y"])
    with pytest.raises(teach.TeachError, match="already has"):
        teach.attach_change(holder.entries, entry_id=entry.id, questions=[entry.questions[0].upper(), "!!"])
    with pytest.raises(teach.TeachError, match="title and an answer"):
        teach.draft_change(holder.entries, title=" ", questions=["a b"], answer="x")
    one_file = tmp_path / "one.yml"
    shutil.copy(next(kb_dir.glob("*.yml")), one_file)
    change = teach.attach_change(holder.entries, entry_id=entry.id, questions=["zebra quux"])
    with pytest.raises(teach.TeachError, match="one file"):
        teach.publish(one_file, change, taught_by="U1")


def test_a_draft_id_never_collides_with_an_article(kb_dir: Path) -> None:
    holder = KnowledgeBaseHolder(kb_dir, matcher="lexical")
    entry = holder.entries[0]
    change = teach.draft_change(holder.entries, title=entry.id, questions=["a question"], answer="x")
    assert change.entry.id == f"{entry.id}-2"


def test_a_broken_learned_item_is_reported_and_the_rest_reloaded(kb_dir: Path) -> None:
    holder = KnowledgeBaseHolder(kb_dir, matcher="lexical")
    team = len(holder.entries)
    (kb_dir / "learned.yml").write_text("phrasings: [{id: p1, entry: x}]\n")
    summary = holder.reload()
    assert f"Warning: {kb_dir / 'learned.yml'}:1: an item has no 'text'" in summary.text()
    assert len(holder.entries) == team  # still answering, from the team's files


def test_writes_leave_no_temporary_files(kb_dir: Path) -> None:
    holder = KnowledgeBaseHolder(kb_dir, matcher="lexical")
    change = teach.attach_change(holder.entries, entry_id=holder.entries[0].id, questions=["zebra quux"])
    teach.publish(kb_dir, change, taught_by="U1")
    assert sorted(p.name for p in kb_dir.iterdir() if p.name.startswith(".learned")) == []
    assert learned.read(kb_dir / "learned.yml").phrasings[0].id == "p1"


@pytest.mark.parametrize("matcher", [pytest.param("semantic", marks=NEEDS_SEMANTIC)])
def test_a_semantic_replay_embeds_ahead_and_counts_as_one_by_one(matcher: str, kb_dir: Path) -> None:
    holder = KnowledgeBaseHolder(kb_dir, matcher=matcher)
    semantic_matcher = holder.current.matcher
    assert isinstance(semantic_matcher, SemanticMatcher)
    questions = ["pdf of my invoice please", "my export failed", "how do I cancel", "sso with okta?"]
    one_by_one = [holder.ask(q).best for q in questions]
    with semantic_matcher.primed(questions):
        assert set(questions) <= set(semantic._primed)
        ahead = [holder.ask(q).best for q in questions]
    assert [(c.entry.id, round(c.confidence, 5)) for c in ahead if c] == [
        (c.entry.id, round(c.confidence, 5)) for c in one_by_one if c
    ]
    assert not set(questions) & set(semantic._primed), "nothing kept once the replay is done"
    many = [d.best for d in holder.ask_many(questions)]  # the report's way of asking again
    assert [(c.entry.id, round(c.confidence, 5)) for c in many if c] == [
        (c.entry.id, round(c.confidence, 5)) for c in one_by_one if c
    ]
    # The replay (primed inside) counts what asking one by one finds.
    change = teach.draft_change(
        holder.entries, title="Invoice PDFs", questions=questions[:1], answer="Billing"
    )
    after = [teach.rebuilt(holder, teach.with_change(holder.entries, change)).ask(q) for q in questions]
    new = change.entry.id
    expected = [d.band is Band.ANSWER and d.best is not None and d.best.entry.id == new for d in after]
    replayed = teach.preview(holder, change, others=[(q, "elsewhere") for q in questions[1:]])
    assert (replayed.answered, replayed.taken, replayed.replayed) == (expected[0], sum(expected[1:]), 3)


def test_the_changed_kb_aims_at_the_same_traffic_as_the_one_in_service(kb_dir: Path) -> None:
    """The KB in service chooses its operating point for the traffic it gets; the replay's changed
    KB must be chosen for the same traffic, or it compares two operating points."""
    holder = KnowledgeBaseHolder(kb_dir, matcher="lexical")
    words = ["football", "lisbon", "sponsor", "weather", "recipe", "guitar", "dragon", "ballet", "opera"]
    unknown = [" ".join(words[n % 9 : n % 9 + 3] + words[: n % 5]) + "?" for n in range(150)]
    share = holder.observe_traffic(unknown + [e.questions[0] for e in holder.entries])
    assert share is not None and share.assumed > 0.5
    plain = KnowledgeBase.build(holder.entries, matcher="lexical", targets=holder.targets)
    assert plain.operating_point != holder.current.operating_point, "the traffic moved the point"
    same = teach.rebuilt(holder, holder.entries)
    assert same.traffic == holder.current.traffic
    assert same.operating_point == holder.current.operating_point


ROUTER = ["reset the api key of my router", "router api key reset", "my wifi router's api key is lost"]


def test_a_declined_topic_escalates_questions_like_it_and_leaves_the_articles_alone(kb_dir: Path) -> None:
    holder = KnowledgeBaseHolder(kb_dir, matcher="lexical")
    wrong = holder.ask("how do I reset the api key on my router?")
    assert (wrong.band, wrong.best.entry.id if wrong.best else None) == (Band.ANSWER, "reset-api-key")

    replayed = teach.preview_decline(holder, ROUTER, others=[("how do I reset my api key", "reset-api-key")])
    assert (replayed.escalated, replayed.asked, replayed.answered_before) == (3, 3, 2)
    assert (replayed.taken, replayed.replayed) == (0, 1)
    topic = teach.decline(kb_dir, ROUTER, taught_by="U7", from_gap="g1-7-abc")
    assert holder.reload_if_changed() is not None

    declined = holder.ask("how do I reset the api key on my router?")
    assert (declined.band, declined.declined) == (Band.ESCALATE, f"declined:{topic.id}")
    assert all(not c.entry.declined for c in declined.candidates), "guesses on record are articles"
    # To the traffic estimate, a question a declined topic catches is an unknown one.
    assert holder.current.top_confidences(["how do I reset the api key on my router?"]) == [0.0]
    assert holder.ask("how do I reset my api key").best.entry.id == "reset-api-key"  # type: ignore[union-attr]
    assert [e.id for e in holder.entries] == [e.id for e in holder.current.entries]
    assert "declined:n1" not in {e.id for e in holder.entries} and holder.get("declined:n1") is None
    assert holder.declined_questions() == tuple(ROUTER)
    assert "1 declined topic (3 questions staff marked" in holder.current.health().summary()

    assert teach.forget(kb_dir, topic.id) == topic
    holder.reload()
    assert holder.ask("how do I reset the api key on my router?").band is Band.ANSWER


def test_declining_counts_only_the_answers_it_takes_away(kb_dir: Path) -> None:
    """The replay's other questions include picks from a "did you mean" (and answers of a KB since
    changed) that the KB in service does not answer either: the decline takes none of them."""
    holder = KnowledgeBaseHolder(kb_dir, matcher="lexical")
    picked = "how do I export"
    assert holder.ask(picked).band is not Band.ANSWER
    replayed = teach.preview_decline(
        holder, ROUTER, others=[("how do I reset my api key", "reset-api-key"), (picked, "export-failed")]
    )
    assert (replayed.taken, replayed.replayed) == (0, 2)


def test_a_declined_topic_of_one_question_is_told_in_the_singular(kb_dir: Path) -> None:
    teach.decline(kb_dir, ROUTER[:1], taught_by="U7")
    summary = KnowledgeBaseHolder(kb_dir, matcher="lexical").current.health().summary()
    assert "1 declined topic (1 question staff marked as not the bot's to answer)" in summary


def test_kb_reload_counts_the_articles_not_the_declined_topics(kb_dir: Path) -> None:
    teach.decline(kb_dir, ROUTER, taught_by="U7")
    holder = KnowledgeBaseHolder(kb_dir, matcher="lexical")
    assert request_reload(kb_dir) == len(holder.entries), "`supportbot kb reload` says N entries valid"


def test_a_declined_topic_survives_teaching_and_the_file_round_trips(kb_dir: Path) -> None:
    teach.decline(kb_dir, [*ROUTER, "  ", ROUTER[0].upper()], taught_by="U7")
    holder = KnowledgeBaseHolder(kb_dir, matcher="lexical")
    change = teach.attach_change(holder.entries, entry_id="reset-api-key", questions=["rotate my key"])
    teach.publish(kb_dir, change, taught_by="U1")
    stored = learned.read(kb_dir / "learned.yml")
    (topic,) = stored.declined
    assert topic.questions == tuple(ROUTER), "blanks and repeats dropped"
    assert stored.phrasings[0].text == "rotate my key"
    assert learned.read(kb_dir / "learned.yml") == stored
    (kb_dir / "learned.yml").write_text("declined:\n  - {id: n1, questions: [], taught_by: U1}\n")
    with pytest.raises(learned.LearnedFileError, match="a declined topic needs 'questions'"):
        learned.read(kb_dir / "learned.yml")
    with pytest.raises(teach.TeachError, match="no question to decline"):
        teach.decline(kb_dir, ["  ", "?!"], taught_by="U1")
