"""`supportbot kb eval`: build a KB from labelled examples, ask it labelled queries through the
same path as live traffic, and report how often it answers, and how well.

The queries stand in for the bot's recent traffic: as the running bot does with its customers'
last questions, the KB estimates from their text alone (no labels) how many have no entry and
chooses its operating point for that (`bot.kb.traffic`; never looser than the fixed share).
`--no-traffic` keeps the point chosen at load."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from bot.kb.knowledge_base import KnowledgeBase
from bot.kb.matching import answer_confidence, decide
from bot.kb.model import Band, Candidate, KBEntry
from bot.kb.operating_point import Targets

TARGET_PRECISION = 0.95


class EvalInputError(Exception):
    """An examples or queries file is unusable; the message is `file:line: what is wrong`."""


@dataclass(frozen=True, slots=True)
class Labelled:
    text: str
    label: str | None


@dataclass(frozen=True, slots=True)
class EvalReport:
    """Figures a file cannot define (no out-of-scope queries, nothing answered, ...) are None, and
    `undefined` says why."""

    matcher: str
    answer_threshold: float
    clarify_threshold: float
    operating_point: str
    entries: int
    queries: int
    in_scope: int
    out_of_scope: int
    answered_precision: float | None
    in_scope_coverage: float | None
    oos_escalation: float | None
    top1_accuracy: float | None
    ms_per_query: float
    coverage_at_95: float | None
    clarified: float
    clarify_hit: float | None
    oos_clarified: float | None
    unknown_share_estimated: float | None = None
    """From the queries' text (None: not estimated); `operating_point` says the share assumed."""
    undefined: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def text(self) -> str:
        def show(name: str, value: float | None) -> str:
            return f"{value:.3f}" if value is not None else f"n/a ({self.undefined.get(name, 'undefined')})"

        return "\n".join(
            [
                f"matcher {self.matcher}: {self.entries} entries, {self.queries} queries "
                f"({self.in_scope} in scope, {self.out_of_scope} out of scope)",
                f"operating point: {self.operating_point}",
                "queries with no entry, estimated from their text: "
                + show("unknown_share_estimated", self.unknown_share_estimated),
                f"answered precision     {show('answered_precision', self.answered_precision)}",
                f"in-scope coverage      {show('in_scope_coverage', self.in_scope_coverage)}",
                f"out-of-scope escalated {show('oos_escalation', self.oos_escalation)}",
                f"top-1 accuracy         {show('top1_accuracy', self.top1_accuracy)}",
                f"clarified (all)        {self.clarified:.3f}",
                f"clarify hit            {show('clarify_hit', self.clarify_hit)}"
                "  (in-scope questions clarified with the right entry among the choices)",
                f"out-of-scope clarified {show('oos_clarified', self.oos_clarified)}",
                "coverage at 95% precision (best threshold, in hindsight) "
                + show("coverage_at_95", self.coverage_at_95),
                f"ms per query           {self.ms_per_query:.2f}",
            ]
        )


def read_jsonl(path: Path, *, labels_required: bool) -> list[Labelled]:
    """Lines of {"text": ..., "label": ...}; `label` may be null only where not required."""
    rows: list[Labelled] = []
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise EvalInputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise EvalInputError(f"{path}: cannot read: {error}") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise EvalInputError(f"{path}:{number}: not JSON ({error.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str) or not row["text"].strip():
            raise EvalInputError(
                f'{path}:{number}: expected {{"text": "...", "label": ...}} with non-empty text'
            )
        label = row.get("label")
        if label is not None and not isinstance(label, str | int):
            raise EvalInputError(f"{path}:{number}: label must be a string or null")
        if label is None and labels_required:
            raise EvalInputError(f"{path}:{number}: every example needs a label")
        rows.append(Labelled(row["text"], None if label is None else str(label)))
    if not rows:
        raise EvalInputError(f"{path}: no lines")
    return rows


def entries_from_examples(examples: Sequence[Labelled]) -> list[KBEntry]:
    """One entry per label; its phrasings are that label's example texts."""
    by_label: dict[str, dict[str, None]] = {}
    for example in examples:
        assert example.label is not None
        by_label.setdefault(example.label, {})[example.text.strip()] = None
    return [
        KBEntry(id=label, title=label, questions=tuple(texts), answer=f"(answer for {label})")
        for label, texts in by_label.items()
    ]


def coverage_at_precision(points: Sequence[tuple[float, bool, bool]], target: float) -> float:
    """Best in-scope coverage over all answer thresholds keeping answered precision >= target.
    `points` are (confidence, answer is right, question is in scope). Chosen in hindsight, so an
    upper bound for any fixed threshold, like the data set's reference figures."""
    in_scope = sum(1 for _, _, scoped in points if scoped)
    best = 0.0
    right = 0
    ordered = sorted(points, key=lambda p: p[0], reverse=True)
    for index, (confidence, correct, _) in enumerate(ordered):
        right += correct
        tie_follows = index + 1 < len(ordered) and ordered[index + 1][0] == confidence
        if not tie_follows and right / (index + 1) >= target and in_scope:
            best = max(best, right / in_scope)
    return best


def evaluate(
    examples: Sequence[Labelled],
    queries: Sequence[Labelled],
    *,
    matcher: str,
    targets: Targets | None = None,
    traffic: bool = True,
) -> EvalReport:
    entries = entries_from_examples(examples)
    kb = KnowledgeBase.build(entries, matcher=matcher, targets=targets)
    started = time.perf_counter()
    # `KnowledgeBase.ask`, in two steps: rank every query, then decide at the point chosen for them.
    ranked = [kb.matcher.rank(query.text, limit=3) for query in queries]
    elapsed = time.perf_counter() - started
    return report(kb, queries, ranked, traffic=traffic, seconds=elapsed)


def report(
    kb: KnowledgeBase,
    queries: Sequence[Labelled],
    ranked: Sequence[Sequence[Candidate]],
    *,
    traffic: bool,
    seconds: float,
) -> EvalReport:
    """The figures for `queries` whose best entries `kb` ranked as `ranked`."""
    known = {entry.id for entry in kb.entries}
    answered = right = top1 = escalated_oos = clarified = clarified_hit = clarified_in = clarified_oos = 0
    points: list[tuple[float, bool, bool]] = []
    if traffic:
        kb = kb.for_traffic([answer_confidence(found) for found in ranked])
    decisions = [decide(found, kb.thresholds) for found in ranked]
    for query, decision in zip(queries, decisions, strict=True):
        # A label the examples never mention cannot be answered: it counts as out of scope.
        label = query.label if query.label in known else None
        best = decision.best
        correct = best is not None and label is not None and best.entry.id == label
        points.append((best.confidence if best else 0.0, correct, label is not None))
        top1 += correct
        if decision.band is Band.ANSWER:
            answered += 1
            right += correct
        elif decision.band is Band.CLARIFY:
            clarified += 1
            if label is None:
                clarified_oos += 1
            else:
                clarified_in += 1
                clarified_hit += any(c.entry.id == label for c in decision.candidates)
        elif label is None:
            escalated_oos += 1
    in_scope = sum(1 for q in queries if q.label in known)
    out_of_scope = len(queries) - in_scope
    undefined: dict[str, str] = {}

    def share(name: str, count: int, total: int, reason: str) -> float | None:
        if total:
            return count / total
        undefined[name] = reason
        return None

    if kb.traffic is None:
        undefined["unknown_share_estimated"] = (
            "not estimated (--no-traffic)"
            if not traffic
            else "too few queries or no simulation to estimate from"
        )
    no_in_scope = "no query has a label the examples know"
    no_oos = "no out-of-scope queries (every query's label is in the examples)"
    precision = share("answered_precision", right, answered, "nothing was answered")
    coverage = share("in_scope_coverage", right, in_scope, no_in_scope)
    if coverage is None:
        undefined["coverage_at_95"] = no_in_scope
    hit = share(
        "clarify_hit",
        clarified_hit,
        clarified_in,
        no_in_scope if not in_scope else "nothing in scope was clarified",
    )
    return EvalReport(
        matcher=kb.matcher.name,
        answer_threshold=kb.thresholds.answer,
        clarify_threshold=kb.thresholds.clarify,
        operating_point=kb.operating_point.describe(),
        entries=len(kb.entries),
        queries=len(queries),
        in_scope=in_scope,
        out_of_scope=out_of_scope,
        answered_precision=precision,
        in_scope_coverage=coverage,
        oos_escalation=share("oos_escalation", escalated_oos, out_of_scope, no_oos),
        top1_accuracy=share("top1_accuracy", top1, in_scope, no_in_scope),
        ms_per_query=seconds / max(len(queries), 1) * 1000,
        coverage_at_95=coverage_at_precision(points, TARGET_PRECISION) if in_scope else None,
        clarified=clarified / max(len(queries), 1),
        clarify_hit=hit,
        oos_clarified=share("oos_clarified", clarified_oos, out_of_scope, no_oos),
        unknown_share_estimated=kb.traffic.estimate if kb.traffic is not None else None,
        undefined=undefined,
    )
