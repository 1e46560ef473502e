"""The knowledge base the bot asks: entries, a matcher and thresholds, behind a holder that
reloads edited files without a restart."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, overload

from bot.kb import operating_point, traffic
from bot.kb.calibration import FIT_NOTES
from bot.kb.lexical import LexicalMatcher
from bot.kb.loader import ADVISED_QUESTIONS, RELOAD_MARKER, KBError, KBFiles, load_entries
from bot.kb.matching import Matcher, answer_confidence, decide
from bot.kb.model import Decision, KBEntry, Thresholds
from bot.kb.operating_point import OperatingPoint, Targets
from bot.kb.semantic import SemanticUnavailable, embedded_ahead
from bot.kb.simulation import Confusion, confusable_pairs
from bot.kb.traffic import UNKNOWN_SHARE, TrafficShare

if TYPE_CHECKING:
    from bot.settings import Settings

log = logging.getLogger(__name__)

# Questions asked of the KB between two looks at whether the bot is stopping (`top_confidences`):
# a few tenths of a second on the semantic matcher, and batches large enough to embed efficiently.
CONFIDENCE_BATCH = 128


def matcher_kind(requested: str) -> str:
    """`auto` means semantic when its extra is installed, else lexical."""
    if requested != "auto":
        return requested
    from bot.kb import semantic

    return "semantic" if semantic.available() else "lexical"


def build_matcher(entries: Sequence[KBEntry], kind: str) -> Matcher:
    """A calibrated matcher over `entries`. Raises SemanticUnavailable without the extra."""
    kind = matcher_kind(kind)
    if kind == "semantic":
        from bot.kb.semantic import SemanticMatcher

        return SemanticMatcher(entries)
    if kind == "lexical":
        return LexicalMatcher(entries)
    raise ValueError(f"unknown matcher '{kind}'; choose auto, lexical or semantic")


def choose_operating_point(
    matcher: Matcher,
    targets: Targets,
    answer: float | None = None,
    clarify: float | None = None,
    *,
    unknown_share: float = UNKNOWN_SHARE,
) -> OperatingPoint:
    """The KB's operating point: chosen from its own simulation for `targets`, unless
    ANSWER_THRESHOLD / CLARIFY_THRESHOLD fix it (one fixed, the other is still chosen)."""
    chosen = operating_point.choose(
        matcher.simulation,
        matcher.calibration,
        matcher.choice_calibration,
        targets,
        matcher.default_thresholds,
        unknown_share=unknown_share,
    )
    if answer is None and clarify is None:
        return chosen
    fixed = Thresholds(
        answer=chosen.thresholds.answer if answer is None else answer,
        clarify=chosen.thresholds.clarify if clarify is None else clarify,
    )
    return operating_point.at_setting(
        matcher.simulation,
        matcher.calibration,
        matcher.choice_calibration,
        fixed,
        unknown_share=unknown_share,
    )


@dataclass(frozen=True, slots=True)
class Health:
    """What a team should know about how its KB will answer: `kb check`, the load log line and the
    reload summary say it."""

    matcher: str
    entries: int
    phrasings: int
    point: OperatingPoint
    calibration_note: str
    confusions: tuple[Confusion, ...]
    warnings: tuple[str, ...]
    traffic: TrafficShare | None = None
    declined: int = 0
    declined_questions: int = 0

    def _notes(self) -> list[str]:
        notes = [note for note in (self.calibration_note, self.point.note) if note]
        if self.declined:
            topics, questions = self.declined, self.declined_questions
            notes.append(
                f"{topics} declined topic{'s' if topics != 1 else ''} ({questions} "
                f"question{'s' if questions != 1 else ''} staff marked as not the bot's to answer): "
                "questions like them are escalated"
            )
        return notes + ([self.traffic.describe()] if self.traffic is not None else [])

    def lines(self) -> list[str]:
        """What `kb check` prints (the warnings go separately, to stderr)."""
        out = [f"{self.matcher} matcher: {self.point.describe()}"]
        out += self._notes()
        if self.confusions:
            out.append("most confusable entries (their phrasings find each other first):")
            out += [
                f"  {c.first} <-> {c.second}: {c.crossed} of {c.phrasings} phrasings" for c in self.confusions
            ]
        return out

    def summary(self) -> str:
        """One line: the operating point and the most confusable pair."""
        pair = self.confusions[0] if self.confusions else None
        return (
            self.point.describe()
            + "".join(f"; {note}" for note in self._notes())
            + (f"; most confusable: `{pair.first}` / `{pair.second}`" if pair else "")
        )


def health(kb: KnowledgeBase) -> Health:
    matcher = kb.matcher
    sim = matcher.simulation
    warnings = [
        f"{entry.source or entry.id}: entry '{entry.id}' has one phrasing: the bot cannot ask it "
        f"without itself, so it cannot tell how well it is found; write at least {ADVISED_QUESTIONS} "
        "(4-8 work best)"
        for entry in kb.entries
        if len(entry.questions) < ADVISED_QUESTIONS
    ]
    seen: dict[str, str] = {}
    for entry in kb.entries:
        for question in entry.questions:
            key = " ".join(question.casefold().split())
            first = seen.setdefault(key, entry.id)
            if first != entry.id:
                warnings.append(
                    f"{entry.source or entry.id}: question '{question}' is also in '{first}': "
                    "the bot cannot tell the two apart on it"
                )
    if len(kb.entries) == 1:
        warnings.append("only one entry: every question is either that entry or escalated")
    return Health(
        matcher=matcher.name,
        entries=len(kb.entries),
        phrasings=sum(len(e.questions) for e in kb.entries),
        point=kb.operating_point,
        calibration_note=FIT_NOTES[matcher.fit_status],
        confusions=tuple(confusable_pairs(sim, matcher.entries)) if sim is not None else (),
        warnings=tuple(warnings[:20]),
        traffic=kb.traffic,
        declined=len(kb.declined),
        declined_questions=sum(len(e.questions) for e in kb.declined),
    )


class KnowledgeBase:
    """Entries and how to match them. `ask` is the one path live traffic and `kb eval` share."""

    def __init__(
        self,
        entries: Sequence[KBEntry],
        matcher: Matcher,
        point: Thresholds | OperatingPoint,
        *,
        targets: Targets | None = None,
        fixed: tuple[float | None, float | None] = (None, None),
        traffic: TrafficShare | None = None,
        at_load: OperatingPoint | None = None,
    ) -> None:
        """`targets` and `fixed` (ANSWER_THRESHOLD, CLARIFY_THRESHOLD) are what the point was chosen
        with, kept to choose it again for real traffic (`for_traffic`); `at_load` is the point
        chosen without traffic (this one, unless it was chosen for traffic). `entries` may hold
        declined topics: the matcher sees them, `entries` keeps the articles and `declined` them."""
        self.entries = tuple(entry for entry in entries if not entry.declined)
        self.declined = tuple(entry for entry in entries if entry.declined)
        self.matcher = matcher
        self.targets = targets or Targets()
        if isinstance(point, Thresholds) and fixed == (None, None):
            fixed = (point.answer, point.clarify)  # thresholds given outright are fixed ones
        self.fixed = fixed
        self.traffic = traffic
        if isinstance(point, Thresholds):
            point = operating_point.at_setting(
                matcher.simulation, matcher.calibration, matcher.choice_calibration, point
            )
        self.operating_point = point
        self.at_load = at_load or point
        self.thresholds = point.thresholds
        self._by_id = {entry.id: entry for entry in self.entries}

    @classmethod
    def build(
        cls,
        entries: Sequence[KBEntry],
        *,
        matcher: str = "auto",
        targets: Targets | None = None,
        answer_threshold: float | None = None,
        clarify_threshold: float | None = None,
    ) -> KnowledgeBase:
        """Match, calibrate, simulate and choose the operating point: what every load does."""
        built = build_matcher(entries, matcher)
        targets = targets or Targets()
        point = choose_operating_point(built, targets, answer_threshold, clarify_threshold)
        return cls(entries, built, point, targets=targets, fixed=(answer_threshold, clarify_threshold))

    def ask(self, question: str) -> Decision:
        return decide(self.matcher.rank(question, limit=3), self.thresholds)

    def ask_many(self, questions: Sequence[str]) -> list[Decision]:
        """`ask` for each question; a semantic matcher embeds them in batches first."""
        return [self.ask(question) for batch in self._embedded_batches(questions) for question in batch]

    @overload
    def top_confidences(self, questions: Sequence[str]) -> list[float]: ...
    @overload
    def top_confidences(
        self, questions: Sequence[str], *, stopping: Callable[[], bool]
    ) -> list[float] | None: ...
    def top_confidences(
        self, questions: Sequence[str], *, stopping: Callable[[], bool] | None = None
    ) -> list[float] | None:
        """The best entry's confidence for each question (0 where nothing matches); a semantic
        matcher embeds them in batches first. None when `stopping()` turns true between batches
        (a thousand questions take seconds on the semantic matcher; a stop should not wait)."""
        confidences = [
            answer_confidence(self.matcher.rank(question, limit=1))
            for batch in self._embedded_batches(questions, stopping=stopping)
            for question in batch
        ]
        return confidences if len(confidences) == len(questions) else None

    def _embedded_batches(
        self, questions: Sequence[str], *, stopping: Callable[[], bool] | None = None
    ) -> Iterator[Sequence[str]]:
        """The questions CONFIDENCE_BATCH at a time, each embedded ahead (semantic matcher) while the
        caller asks it; no more batches once `stopping()` turns true."""
        for start in range(0, len(questions), CONFIDENCE_BATCH):
            if stopping is not None and stopping():
                return
            batch = questions[start : start + CONFIDENCE_BATCH]
            with embedded_ahead(self.matcher, batch):
                yield batch

    def for_traffic(self, confidences: Sequence[float]) -> KnowledgeBase:
        """This KB with its operating point chosen again for the traffic whose best-entry
        confidences these are (`bot.kb.traffic`): stricter when more of it has no entry. The same
        KB when there is no simulation or too few questions to tell."""
        sim = self.matcher.simulation
        if sim is None:
            return self
        in_scope, out_of_scope = operating_point.outcomes(
            sim, self.matcher.calibration, self.matcher.choice_calibration
        )
        share = traffic.estimate(in_scope.confidence, out_of_scope.confidence, confidences)
        return self if share is None else self.aimed_at(share)

    def aimed_at(self, share: TrafficShare) -> KnowledgeBase:
        """This KB with its operating point chosen again for traffic where `share.assumed` of the
        questions have no entry, never looser than the point chosen at load."""
        point = choose_operating_point(self.matcher, self.targets, *self.fixed, unknown_share=share.assumed)
        at_load = self.at_load
        new, old = point.thresholds, at_load.thresholds
        if new.answer < old.answer or new.clarify < old.clarify:
            # Traffic only ever makes the bot more careful, threshold by threshold. The search can
            # land on a pair looser in one of them: its "closest" fallback maximises a noisy curve,
            # and a stricter answer threshold leaves more questions to offer choices for, which a
            # lower clarify threshold may then do. The stricter of the two points in each stays,
            # judged at this share (keeping the point chosen at load whole threw a stricter answer
            # threshold away: tests/kb/test_traffic.py).
            stricter = Thresholds(answer=max(new.answer, old.answer), clarify=max(new.clarify, old.clarify))
            judged = operating_point.at_setting(
                self.matcher.simulation,
                self.matcher.calibration,
                self.matcher.choice_calibration,
                stricter,
                unknown_share=share.assumed,
            )
            point = replace(judged, source=point.source if new.answer > old.answer else at_load.source)
        if share.mostly_unknown and self.fixed == (None, None) and not self.declined:
            point = self._with_closeness_floor(point, share)
        return KnowledgeBase(
            self.matched_entries,
            self.matcher,
            point,
            targets=self.targets,
            fixed=self.fixed,
            traffic=share,
            at_load=at_load,
        )

    def _with_closeness_floor(self, point: OperatingPoint, share: TrafficShare) -> OperatingPoint:
        """`point` with the closeness floor of traffic that is mostly unknown (`traffic.MOSTLY_UNKNOWN`),
        judged at that share. Only for a KB with no declined topics: the floor stands in for the real
        negatives it lacks, and once staff have declined some, the simulation asks those as its
        out-of-scope probes (on the mostly-unknown stand-ins, `bench.kb_declined`, the floor on top
        of them answered fewer questions and none more precisely). As it was when the simulation
        cannot place a floor, or when the floor would make the KB's own phrasings answered less
        precisely (or not at all): on a KB whose unknowns score as close as its right answers, the
        floor only takes right answers away."""
        sim = self.matcher.simulation
        if sim is None or not sim.findable.any():
            return point
        in_scope, out_of_scope = operating_point.outcomes(
            sim, self.matcher.calibration, self.matcher.choice_calibration
        )
        floor = operating_point.closeness_floor(in_scope)
        if floor is None:
            return point
        thresholds = replace(point.thresholds, closeness=floor)
        floored = operating_point.expected_at(in_scope, out_of_scope, thresholds, share.assumed)
        before = point.expected
        if floored.precision is None:
            return point
        if before is not None and before.precision is not None and floored.precision < before.precision:
            return point
        return replace(point, thresholds=thresholds, expected=floored, unknown_share=share.assumed)

    @property
    def matched_entries(self) -> tuple[KBEntry, ...]:
        """The articles and the declined topics: what the matcher was built over."""
        return self.entries + self.declined

    def get(self, entry_id: str) -> KBEntry | None:
        return self._by_id.get(entry_id)

    def declined_questions(self) -> tuple[str, ...]:
        return tuple(question for topic in self.declined for question in topic.questions)

    def health(self) -> Health:
        return health(self)


@dataclass(frozen=True, slots=True)
class ReloadSummary:
    entries: int
    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    matcher: str
    seconds: float
    health: str = ""
    """The operating point, what it is expected to give, and the most confusable pair."""
    warnings: tuple[str, ...] = ()
    """learned.yml's items skipped or unused (`file:line: what`)."""

    def text(self) -> str:
        parts = [
            f"Knowledge base reloaded: {self.entries} entries ({self.matcher} matcher, {self.seconds:.1f} s)"
        ]
        for label, ids in (("added", self.added), ("changed", self.changed), ("removed", self.removed)):
            if ids:
                shown = ", ".join(f"`{i}`" for i in ids[:10]) + (
                    f" and {len(ids) - 10} more" if len(ids) > 10 else ""
                )
                parts.append(f"{label}: {shown}")
        if not (self.added or self.removed or self.changed):
            parts.append("no entry changed")
        warned = "".join(f"\nWarning: {warning}" for warning in self.warnings[:10])
        return "; ".join(parts) + "." + (f"\n{self.health}." if self.health else "") + warned


class KnowledgeBaseHolder:
    """The current knowledge base. A reload builds a new one beside it and swaps it in only when
    it loaded cleanly, so a broken edit never takes answers away."""

    def __init__(
        self,
        path: Path,
        *,
        matcher: str = "auto",
        targets: Targets | None = None,
        answer_threshold: float | None = None,
        clarify_threshold: float | None = None,
    ) -> None:
        self.path = Path(path)
        self.matcher_name = matcher
        self.targets = targets or Targets()
        self.answer_threshold = answer_threshold
        self.clarify_threshold = clarify_threshold
        self._lock = threading.Lock()
        # What the last look at real traffic found (`observe_traffic`): numbers only. The questions
        # themselves are not kept: one may be erased at the person's request meanwhile.
        self._traffic: TrafficShare | None = None
        # Successful reloads so far: the traffic reader looks again after each one.
        self.reloads = 0
        started = time.perf_counter()
        self.current, self.files = self._build()
        self._last_failed: KBFiles | None = None
        log.info(
            "knowledge base loaded: %d entries (%s matcher, %.1f s); %s",
            len(self.current.entries),
            self.current.matcher.name,
            time.perf_counter() - started,
            self.current.health().summary(),
        )

    def _build(self) -> tuple[KnowledgeBase, KBFiles]:
        entries, files = load_entries(self.path)
        for warning in files.learned_warnings:
            log.warning("knowledge base: %s", warning)
        try:
            kb = KnowledgeBase.build(
                entries,
                matcher=self.matcher_name,
                targets=self.targets,
                answer_threshold=self.answer_threshold,
                clarify_threshold=self.clarify_threshold,
            )
        except SemanticUnavailable as error:
            raise KBError([f"MATCHER={self.matcher_name}: {error}"]) from None
        if self._traffic is not None:
            # Until the traffic reader asks the recent questions of this KB, aim it at the share
            # they showed the last one.
            kb = kb.aimed_at(self._traffic)
        return kb, files

    @property
    def entries(self) -> tuple[KBEntry, ...]:
        return self.current.entries

    def ask(self, question: str) -> Decision:
        return self.current.ask(question)

    async def ask_async(self, question: str) -> Decision:
        """Lexical matching takes a fraction of a millisecond; embedding a question takes several, so
        the semantic matcher runs in a thread and the event loop keeps acknowledging Slack and Discord."""
        current = self.current
        if current.matcher.name == "semantic":
            return await asyncio.to_thread(current.ask, question)
        return current.ask(question)

    def ask_many(self, questions: Sequence[str]) -> list[Decision]:
        return self.current.ask_many(questions)

    def get(self, entry_id: str) -> KBEntry | None:
        return self.current.get(entry_id)

    def declined_questions(self) -> tuple[str, ...]:
        return self.current.declined_questions()

    def observe_traffic(
        self, questions: Sequence[str], *, stopping: Callable[[], bool] = lambda: False
    ) -> TrafficShare | None:
        """Choose the operating point again for the traffic these recent customer questions show
        (a reload keeps aiming at the share they showed). Asks each question once: run it in a
        thread. None, and nothing changed, when `stopping()` turns true during the pass or a reload
        swapped the KB meanwhile (its reader looks again after a reload)."""
        current = self.current
        # Asked outside the lock, so a reload never waits for a thousand questions.
        confidences = current.top_confidences(questions, stopping=stopping)
        if confidences is None:
            return None
        adapted = current.for_traffic(confidences)
        with self._lock:
            if self.current is not current:
                return None
            self._traffic = adapted.traffic
            self.current = adapted
        if adapted.traffic is not None:
            log.info("knowledge base: %s; %s", adapted.traffic.describe(), adapted.operating_point.describe())
        return adapted.traffic

    def reload(self) -> ReloadSummary:
        """Load the files again. Raises KBError (and keeps the current KB) when they are broken."""
        with self._lock:
            started = time.perf_counter()
            before = {entry.id: entry for entry in self.current.entries}
            # Taken before reading: a fix saved while this (broken) load runs must count as a change.
            scanned = KBFiles.scan(self.path)
            try:
                fresh, files = self._build()
            except KBError:
                self._last_failed = scanned
                raise
            except Exception as error:
                self._last_failed = scanned
                log.exception("loading the knowledge base failed")
                problem = f"{self.path}: could not load ({type(error).__name__}); see the log"
                raise KBError([problem]) from error
            self.current, self.files, self._last_failed = fresh, files, None
            self.reloads += 1
            after = {entry.id: entry for entry in fresh.entries}
            return ReloadSummary(
                entries=len(after),
                added=tuple(sorted(after.keys() - before.keys())),
                removed=tuple(sorted(before.keys() - after.keys())),
                changed=tuple(sorted(i for i in after.keys() & before.keys() if after[i] != before[i])),
                matcher=fresh.matcher.name,
                seconds=time.perf_counter() - started,
                health=fresh.health().summary(),
                warnings=files.learned_warnings,
            )

    async def reload_async(self) -> ReloadSummary:
        """`reload` in a worker thread, for a staff command: the event loop keeps serving."""
        return await asyncio.to_thread(self.reload)

    def changed_on_disk(self) -> bool:
        """Cheap: compares file names, sizes and modification times (a few stat calls)."""
        now = KBFiles.scan(self.path)
        return now != self.files and now != self._last_failed

    def reload_if_changed(self) -> ReloadSummary | None:
        if not self.changed_on_disk():
            return None
        return self.reload()

    async def watch(
        self, interval: float = 2.0, *, on_reload: Callable[[ReloadSummary], None] | None = None
    ) -> None:
        """Reload whenever the files change, until cancelled. Run it as a task beside the bot;
        loading happens in a thread so a large KB never stalls the event loop."""
        while True:
            await asyncio.sleep(interval)
            try:
                summary = await asyncio.to_thread(self.reload_if_changed)
            except KBError as error:
                log.warning("knowledge base not reloaded, keeping the previous one:\n%s", error)
                continue
            except Exception:
                # reload() turns a broken load into KBError and remembers the files; what gets here
                # failed around it (reading the folder). The watcher must outlive it and try again.
                log.exception("knowledge base not reloaded (unexpected error), keeping the previous one")
                continue
            if summary is not None:
                log.info("%s", summary.text())
                if on_reload is not None:
                    on_reload(summary)


def load_knowledge_base(settings: Settings) -> KnowledgeBaseHolder:
    """The knowledge base as configured, or KBError naming what is wrong."""
    return KnowledgeBaseHolder(
        settings.kb_path,
        matcher=settings.matcher,
        targets=Targets(
            answer_precision=settings.answer_precision, escalate_unknown=settings.escalate_unknown
        ),
        answer_threshold=settings.answer_threshold,
        clarify_threshold=settings.clarify_threshold,
    )


def request_reload(path: Path) -> int:
    """Check the KB at `path` and touch its reload marker. Returns the number of entries (the
    articles: a declined topic is loaded as an entry too, but answers nobody)."""
    entries, _ = load_entries(path)
    folder = Path(path) if Path(path).is_dir() else Path(path).parent
    (folder / RELOAD_MARKER).touch()
    return sum(1 for entry in entries if not entry.declined)
