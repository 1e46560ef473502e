"""Teaching the bot: attach questions to an article as phrasings, or draft a new article; approve
a draft; decline a gap (its questions become a topic that only escalates); forget a phrasing or a
declined topic. Before anything is published, a replay asks the stored questions of the
KB with and without the change. Everything lands in `kb/learned.yml` (`bot.kb.learned`)."""

from __future__ import annotations

import logging
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from bot.core.privacy import LEARNED_UNCLEANED, Erasure
from bot.kb import learned as learned_file
from bot.kb.knowledge_base import KnowledgeBase, KnowledgeBaseHolder
from bot.kb.learned import DeclinedTopic, Learned, LearnedArticle, LearnedPhrasing, Status
from bot.kb.model import ID_PATTERN, Band, KBEntry
from bot.kb.semantic import embedded_ahead

log = logging.getLogger(__name__)

MAX_PHRASING = 500
"""A phrasing longer than this is a conversation, not a question: it is clipped."""
_SLUG = re.compile(r"[^a-z0-9]+")


class TeachError(ValueError):
    """Staff can fix it: an unknown article, nothing to teach, a one-file KB. The text says how."""


@dataclass(frozen=True, slots=True)
class Change:
    """What a lesson would do to the KB: `entry` is the article the questions should find."""

    entry: KBEntry
    questions: tuple[str, ...]
    new: bool
    taken: frozenset[str] = frozenset()
    """For a new article: the ids it must not have (the KB's), besides the drafts of learned.yml."""


@dataclass(frozen=True, slots=True)
class Replay:
    """Stored questions asked of the KB without and with the change."""

    entry_id: str
    answered: int
    """Of the lesson's questions, how many the changed KB answers with the article."""
    asked: int
    taken: int
    """Of the other stored questions another article answered, how many the changed KB answers
    with this one instead."""
    answered_before: int
    """Of the lesson's questions, how many the KB answered with the article already."""
    replayed: int = 0
    """How many other stored questions were asked again to count `taken`."""

    def text(self) -> str:
        return (
            f"This would have answered {self.answered} of {self.asked} "
            f"(before: {self.answered_before}), and would have taken {self.taken} "
            f"question{'s' if self.taken != 1 else ''} away from other articles "
            f"(of {self.replayed} they answered lately)."
        )


def clipped(question: str) -> str:
    """A question as a phrasing or a declined topic stores it: one line, clipped, no space at the
    cut (the learned file reads its texts back stripped)."""
    return " ".join(question.split())[:MAX_PHRASING].rstrip()


def stored_key(question: str) -> str:
    """What two questions share when the learned file would store them as one (case aside)."""
    return clipped(question).casefold()


def clean(questions: Sequence[str]) -> tuple[str, ...]:
    """One line each, clipped, blanks and repeats dropped (compared without case or spacing)."""
    seen: dict[str, str] = {}
    for question in questions:
        text = clipped(question)
        if any(c.isalnum() for c in text):
            seen.setdefault(text.casefold(), text)
    return tuple(seen.values())


def attach_change(entries: Sequence[KBEntry], *, entry_id: str, questions: Sequence[str]) -> Change:
    entry = next((e for e in entries if e.id == entry_id), None)
    if entry is None:
        raise TeachError(f"There is no article `{entry_id}`; `/support kb check` lists them.")
    have = {" ".join(q.casefold().split()) for q in entry.questions}
    fresh = tuple(q for q in clean(questions) if q.casefold() not in have)
    if not fresh:
        raise TeachError(f"`{entry_id}` already has every one of these questions.")
    return Change(replace(entry, questions=entry.questions + fresh), fresh, new=False)


def draft_change(entries: Sequence[KBEntry], *, title: str, questions: Sequence[str], answer: str) -> Change:
    title = " ".join(title.split())[:120]
    phrasings = clean(questions)
    if not title or not answer.strip():
        raise TeachError("A new article needs a title and an answer.")
    if not phrasings:
        raise TeachError("A new article needs at least one question customers asked.")
    taken = frozenset(e.id for e in entries)
    entry = KBEntry(id=_article_id(title, taken), title=title, questions=phrasings, answer=answer.strip())
    return Change(entry, phrasings, new=True, taken=taken)


def _article_id(title: str, taken: Collection[str]) -> str:
    base = _SLUG.sub("-", title.casefold()).strip("-")[:56] or "article"
    article_id, suffix = base, 2
    while article_id in taken or not ID_PATTERN.match(article_id):
        article_id, suffix = f"{base}-{suffix}", suffix + 1
    return article_id


def with_change(entries: Sequence[KBEntry], change: Change) -> list[KBEntry]:
    if change.new:
        return [*entries, change.entry]
    return [change.entry if e.id == change.entry.id else e for e in entries]


def _answer(kb: KnowledgeBase, question: str) -> str | None:
    decision = kb.ask(question)
    best = decision.best
    return best.entry.id if decision.band is Band.ANSWER and best is not None else None


def replay(
    before: KnowledgeBase,
    after: KnowledgeBase,
    *,
    change: Change,
    asked: Sequence[str] | None = None,
    others: Sequence[tuple[str, str]] = (),
) -> Replay:
    """Ask the lesson's questions (`asked`: every stored question of a gap; by default the change's
    own) of both KBs, and `others`, stored questions with the article that answered them, of the
    changed one: one that another article answered is taken when the changed KB answers it with
    this one."""
    target = change.entry.id
    questions = list(change.questions if asked is None else asked)
    elsewhere = [question for question, article in others if article != target]
    matcher = after.matcher
    with embedded_ahead(matcher, [*questions, *elsewhere]):
        answered = sum(_answer(after, q) == target for q in questions)
        answered_before = sum(_answer(before, q) == target for q in questions)
        taken = sum(_answer(after, q) == target for q in elsewhere)
    return Replay(target, answered, len(questions), taken, answered_before, replayed=len(elsewhere))


def rebuilt(holder: KnowledgeBaseHolder, entries: Sequence[KBEntry]) -> KnowledgeBase:
    """A KB over other entries, matched, calibrated and operated as the holder's is (fixed
    thresholds stay fixed; a chosen operating point is chosen again for the new entries, and for
    the same traffic when the KB in service aims at the traffic it gets)."""
    kb = KnowledgeBase.build(
        entries,
        matcher=holder.current.matcher.name,
        targets=holder.targets,
        answer_threshold=holder.answer_threshold,
        clarify_threshold=holder.clarify_threshold,
    )
    share = holder.current.traffic
    if share is None or kb.matcher.simulation is None:
        return kb
    # Otherwise the replay would compare two operating points, not two sets of articles.
    return kb.aimed_at(share)


def preview(
    holder: KnowledgeBaseHolder,
    change: Change,
    *,
    asked: Sequence[str] | None = None,
    others: Sequence[tuple[str, str]] = (),
) -> Replay:
    """The replay of a change against the KB in service (call it in a worker thread: it builds a KB)."""
    before = holder.current
    after = rebuilt(holder, with_change(before.matched_entries, change))
    return replay(before, after, change=change, asked=asked, others=others)


def _file(kb_root: Path) -> Path:
    path = learned_file.learned_path(kb_root)
    if path is None:
        raise TeachError("The knowledge base is one file; point KB_PATH at a folder to let the bot learn.")
    return path


def publish(
    kb_root: Path,
    change: Change,
    *,
    taught_by: str,
    from_ticket: int | None = None,
    approved: bool = False,
    again: bool = False,
) -> tuple[str, tuple[str, ...]]:
    """Write the change to learned.yml: the new phrasings, and for a new article its draft (pending
    unless `approved`). Returns the article's id and its phrasings' ids. A question the article
    has as a phrasing already is not added twice: it keeps its id. `again`: this change may have
    been written already (a process died before saying so), so the same draft counts as written."""
    path = _file(kb_root)
    with learned_file.locked(path):
        current = learned_file.read(path)
        written = _same_draft(change, current) if change.new and again else None
        if written is not None:
            change = replace(change, entry=replace(change.entry, id=written.id), new=False)
        elif change.new:
            change = _unique_draft(change, current)
        had = {stored_key(p.text): p.id for p in current.phrasings_of(change.entry.id)}
        added: list[LearnedPhrasing] = []
        ids: list[str] = []
        for text in change.questions:
            if stored_key(text) in had:
                ids.append(had[stored_key(text)])
                continue
            so_far = replace(current, phrasings=(*current.phrasings, *added))
            added.append(
                LearnedPhrasing(
                    id=so_far.next_phrasing_id(),
                    entry=change.entry.id,
                    text=text,
                    taught_by=taught_by,
                    from_ticket=from_ticket,
                )
            )
            ids.append(added[-1].id)
        articles = current.articles
        if change.new:
            articles = (
                *articles,
                LearnedArticle(
                    id=change.entry.id,
                    title=change.entry.title,
                    answer=change.entry.answer,
                    status=Status.APPROVED if approved else Status.PENDING,
                    taught_by=taught_by,
                    from_ticket=from_ticket,
                ),
            )
        if added or change.new:
            learned_file.write(
                path, replace(current, articles=articles, phrasings=(*current.phrasings, *added))
            )
    return change.entry.id, tuple(ids)


def _same_draft(change: Change, current: Learned) -> LearnedArticle | None:
    """The draft learned.yml has that says what `change`'s new article says. By what it says, not
    by id: once approved, the draft is in the KB, which gave a new one the next id."""
    entry = change.entry
    return next((a for a in current.articles if (a.title, a.answer) == (entry.title, entry.answer)), None)


def _unique_draft(change: Change, current: Learned) -> Change:
    """The KB in service does not hold drafts, so a draft's id can be one learned.yml already
    has: the same draft again (a second click) is refused, another one gets an id of its own."""
    entry = change.entry
    same = _same_draft(change, current)
    if same is not None:
        if same.status is Status.APPROVED:
            raise TeachError(f"`{same.id}` is already an article.")
        raise TeachError(f"`{same.id}` is already drafted; `/support kb approve {same.id}` publishes it.")
    if current.article(entry.id) is None:
        return change
    taken = change.taken | {article.id for article in current.articles}
    return replace(change, entry=replace(entry, id=_article_id(entry.title, taken)))


def approve(kb_root: Path, article_id: str, *, again: bool = False) -> LearnedArticle:
    """Approve a drafted article. `again`: it may have been approved already by this very request
    (a process died before saying so), which counts as approved."""
    path = _file(kb_root)
    with learned_file.locked(path):
        current = learned_file.read(path)
        article = current.article(article_id)
        if article is None:
            raise TeachError(f"There is no drafted article `{article_id}`; `/support kb check` lists them.")
        if article.status is Status.APPROVED:
            if again:
                return article
            raise TeachError(f"`{article_id}` is already approved.")
        approved = replace(article, status=Status.APPROVED)
        articles = tuple(approved if a.id == article_id else a for a in current.articles)
        learned_file.write(path, replace(current, articles=articles))
    return approved


def forget(kb_root: Path, learned_id: str, *, again: bool = False) -> LearnedPhrasing | DeclinedTopic | None:
    """Undo one learned phrasing (a drafted article left with no phrasing goes with it), or one
    declined topic. `again`: it may be gone already, forgotten by this very request (a process died
    before saying so; ids are never issued twice): then None."""
    path = _file(kb_root)
    with learned_file.locked(path):
        current = learned_file.read(path)
        topic = next((d for d in current.declined if d.id == learned_id), None)
        if topic is not None:
            kept = tuple(d for d in current.declined if d.id != learned_id)
            learned_file.write(path, replace(current, declined=kept))
            return topic
        phrasing = next((p for p in current.phrasings if p.id == learned_id), None)
        if phrasing is None and again:
            return None
        if phrasing is None:
            raise TeachError(f"There is no learned phrasing or declined topic `{learned_id}`.")
        phrasings = tuple(p for p in current.phrasings if p.id != learned_id)
        left = {p.entry for p in phrasings}
        articles = tuple(a for a in current.articles if a.id != phrasing.entry or a.id in left)
        learned_file.write(path, replace(current, articles=articles, phrasings=phrasings))
    return phrasing


def forget_questions(kb_root: Path, questions: Sequence[str]) -> int:
    """Remove every learned phrasing and declined-topic question that is one of `questions` (a
    person's own words, on their erasure), compared as the file stores them; a declined topic left
    with no question goes, and so does a drafted article left with no phrasing (as `forget` does).
    Returns how many questions were removed: none for a one-file KB, which learns nothing."""
    path = learned_file.learned_path(kb_root)
    theirs = {stored_key(question) for question in questions}
    if path is None or not theirs:
        return 0
    with learned_file.locked(path):
        learned, removed = _without(learned_file.read(path), theirs)
        if removed:
            learned_file.write(path, learned)
    return removed


def _without(current: Learned, theirs: Collection[str]) -> tuple[Learned, int]:
    """`current` without the questions whose `stored_key` is one of `theirs`, and how many went."""
    phrasings = tuple(p for p in current.phrasings if stored_key(p.text) not in theirs)
    left = {p.entry for p in phrasings}
    gone = {p.entry for p in current.phrasings} - left
    articles = tuple(a for a in current.articles if a.id not in gone)
    topics: list[DeclinedTopic] = []
    removed = len(current.phrasings) - len(phrasings)
    for topic in current.declined:
        kept = tuple(q for q in topic.questions if stored_key(q) not in theirs)
        removed += len(topic.questions) - len(kept)
        if kept:
            topics.append(replace(topic, questions=kept))
    return replace(current, articles=articles, phrasings=phrasings, declined=tuple(topics)), removed


ERASURE_BUSY: Final = (
    "Nothing was erased: learned.yml is being changed by another process; try again in a minute."
)
"""Said to whoever ran an erasure that `forget_erased` refused (`LearnedFileBusy`)."""


def forget_erased(kb_root: Path, erasure: Erasure) -> Erasure:
    """`erasure` with its person's questions also out of learned.yml (`forget_questions`), counted
    in `learned`. The database erasure stands when the file cannot be read (said in `warning` and
    logged) or written (a full disk): trying again would clean it no better.

    Raises `learned.LearnedFileBusy` when another process holds the file past the wait: the caller
    must then roll its erasure back and say `ERASURE_BUSY`. Committed, the erasure would leave their
    words in the file for good, since a second try finds nothing stored about them."""
    try:
        removed = forget_questions(kb_root, erasure.asked)
    except learned_file.LearnedFileBusy:
        raise
    except (learned_file.LearnedFileError, OSError) as error:
        log.warning("erased %s, but not from learned.yml: %s", erasure.pseudonym, error)
        return replace(erasure, warning=f"{LEARNED_UNCLEANED}: {error}")
    return replace(erasure, learned=removed)


MAX_DECLINED_QUESTIONS = 200
"""A declined topic keeps at most this many questions, the first given (callers put the most
typical first)."""


def decline_topic(questions: Sequence[str]) -> KBEntry:
    """The entry a gap's questions would become if declined (for the replay; `decline` writes it)."""
    kept = clean(questions)[:MAX_DECLINED_QUESTIONS]
    if not kept:
        raise TeachError("There is no question to decline.")
    return KBEntry(id="declined:new", title="declined topic", questions=kept, answer="", declined=True)


def decline(
    kb_root: Path,
    questions: Sequence[str],
    *,
    taught_by: str,
    from_gap: str | None = None,
    again: bool = False,
) -> DeclinedTopic:
    """Write a declined topic to learned.yml: from the next load, questions like these escalate.
    `again`: it may have been written already (a process died before saying so), so the same topic
    of the same gap counts as written, under the id it got."""
    topic_entry = decline_topic(questions)
    path = _file(kb_root)
    with learned_file.locked(path):
        current = learned_file.read(path)
        same = (from_gap, topic_entry.questions)
        written = next((d for d in current.declined if (d.from_gap, d.questions) == same), None)
        if again and written is not None:
            return written
        topic = DeclinedTopic(
            id=current.next_declined_id(),
            questions=topic_entry.questions,
            taught_by=taught_by,
            from_gap=from_gap,
        )
        learned_file.write(path, replace(current, declined=(*current.declined, topic)))
    return topic


@dataclass(frozen=True, slots=True)
class DeclineReplay:
    """Stored questions asked of the KB without and with a declined topic."""

    escalated: int
    """Of the gap's questions, how many the changed KB escalates as declined."""
    asked: int
    answered_before: int
    """Of the gap's questions, how many the KB answered (wrongly: there is no article for them)."""
    taken: int
    """Of the other stored questions an article answered, how many the KB in service answers and
    the changed KB would not."""
    replayed: int

    def text(self) -> str:
        return (
            f"From now on I would escalate {self.escalated} of these {self.asked} questions "
            f"(before, I answered {self.answered_before} of them with an article), and would stop "
            f"answering {self.taken} of the {self.replayed} questions articles answered lately."
        )


def preview_decline(
    holder: KnowledgeBaseHolder, questions: Sequence[str], *, others: Sequence[tuple[str, str]] = ()
) -> DeclineReplay:
    """The replay of declining a gap's questions against the KB in service (in a worker thread)."""
    before = holder.current
    after = rebuilt(holder, [*before.matched_entries, decline_topic(questions)])
    elsewhere = [question for question, _ in others]
    with embedded_ahead(after.matcher, [*questions, *elsewhere]):
        escalated = sum(after.ask(q).declined is not None for q in questions)
        answered_before = sum(_answer(before, q) is not None for q in questions)
        # Only what the decline takes away: a pick from a "did you mean" was never an answer of
        # the KB in service, and stays unanswered with or without the topic.
        taken = sum(_answer(before, q) is not None and _answer(after, q) is None for q in elsewhere)
    return DeclineReplay(escalated, len(questions), answered_before, taken, len(elsewhere))


def learned_of(kb_root: Path) -> Learned:
    """What the bot learned beside the KB at `kb_root` (nothing, for a one-file KB), read once."""
    path = learned_file.learned_path(kb_root)
    return learned_file.read(path) if path is not None else Learned()


def learned_read(kb_root: Path) -> tuple[Learned, tuple[str, ...]]:
    """What can be read of what the bot learned beside the KB at `kb_root`, and a `file:line:
    what` for each item skipped (nothing, for a one-file KB)."""
    path = learned_file.learned_path(kb_root)
    return learned_file.read_valid(path) if path is not None else (Learned(), ())


def pending(kb_root: Path) -> tuple[LearnedArticle, ...]:
    return learned_of(kb_root).pending
