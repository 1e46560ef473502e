"""Declined topics on traffic where most questions have no entry: does the KB answer more precisely
once staff have said which of last period's gaps are not the bot's to answer?

As `bench.kb_mostly_unknown`, the KB keeps `--keep` of the set's known intents (fixed random draws;
`--keep 0` keeps them all) and every query is asked, so most questions have no entry and are in the
KB's own domain. The queries, in a fixed random order (support traffic brings the same topics back),
are cut in two halves. The first half is "last period": it is asked of the KB, its escalated
questions (and the out-of-scope ones offered choices, which a customer answers with "None of
these") are grouped into gaps by the report's own gap finder (`bot.insights.gaps`, in the live
matcher's space, each question a different person), and "staff" decline every gap most of whose
questions have no entry (the labels say so), through the same path as the Not ours button
(`bot.kb.teach.decline_topic`, loaded as `learned.yml` loads it). Gaps mostly about a known intent
are left alone (staff would attach them to the article; not measured here). The second half is
then asked of the KB without and with the declined topics, both aimed at that half's traffic as
`kb eval` does. Nothing is tuned on these figures.

    python -m bench.kb_declined [--keep 15] [--seeds 4] [--matcher lexical] [--json]
"""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import Any

from bench.kb_mostly_unknown import KEYS, fmt, kept_examples, stand_in_arguments
from bot.insights.gaps import GapQuestion, find_gaps
from bot.insights.kb_view import nearest_article, topic_space
from bot.kb import teach
from bot.kb.eval import EvalReport, Labelled, entries_from_examples, read_jsonl, report
from bot.kb.knowledge_base import KnowledgeBase
from bot.kb.learned import DeclinedTopic, Learned
from bot.kb.matching import answer_confidence, decide
from bot.kb.model import Band, KBEntry

SETS = ("banking77", "hwu64")
ORDER_SEED = 1000


def _asked(kb: KnowledgeBase, queries: list[Labelled]) -> EvalReport:
    started = time.perf_counter()
    ranked = [kb.matcher.rank(q.text, limit=3) for q in queries]
    return report(kb, queries, ranked, traffic=True, seconds=time.perf_counter() - started)


def unanswered(kb: KnowledgeBase, queries: list[Labelled]) -> list[tuple[int, Labelled]]:
    """What the report's gaps are made of: escalated questions, and the unknown ones offered choices
    (none of them can be right, so the customer says "None of these")."""
    known = {entry.id for entry in kb.entries}
    ranked = [kb.matcher.rank(q.text, limit=3) for q in queries]
    aimed = kb.for_traffic([answer_confidence(found) for found in ranked])
    out = []
    for index, (query, found) in enumerate(zip(queries, ranked, strict=True)):
        band = decide(found, aimed.thresholds).band
        if band is Band.ESCALATE or (band is Band.CLARIFY and query.label not in known):
            out.append((index, query))
    return out


def gaps_to_decline(kb: KnowledgeBase, asked: list[Labelled]) -> list[tuple[str, ...]]:
    """The questions of each gap (found as the report finds them, each question a different
    person) that staff decline: most of its questions have no entry."""
    known = {entry.id for entry in kb.entries}
    questions = [GapQuestion(index, f"person-{index}", query.text) for index, query in enumerate(asked)]
    gaps = find_gaps(
        questions, topic_space(kb), nearest=lambda text: nearest_article(kb, text), limit=len(questions)
    )
    return [
        tuple(q.text for q in gap.members)
        for gap in gaps
        if sum(asked[q.decision_id].label not in known for q in gap.members) * 2 > len(gap.members)
    ]


def declined_by_staff(kb: KnowledgeBase, history: list[Labelled]) -> list[DeclinedTopic]:
    """Last period's gaps, each declined when most of its questions have no entry."""
    declined = gaps_to_decline(kb, [query for _, query in unanswered(kb, history)])
    return [
        DeclinedTopic(id=f"n{number}", questions=teach.decline_topic(texts).questions, taught_by="bench")
        for number, texts in enumerate(declined, start=1)
    ]


def run(data: Path, name: str, matcher: str, keep: int, seed: int) -> dict[str, Any]:
    examples = read_jsonl(data / name / "kb_examples_10.jsonl", labels_required=True)
    queries = read_jsonl(data / name / "queries.jsonl", labels_required=False)
    examples = kept_examples(examples, keep, seed)
    random.Random(ORDER_SEED + seed).shuffle(queries)
    history, future = queries[: len(queries) // 2], queries[len(queries) // 2 :]
    entries: list[KBEntry] = entries_from_examples(examples)
    before = KnowledgeBase.build(entries, matcher=matcher)
    topics = declined_by_staff(before, history)
    after = KnowledgeBase.build(Learned(declined=tuple(topics)).apply(entries), matcher=matcher)
    known = {entry.id for entry in before.entries}
    without, with_declined = _asked(before, future), _asked(after, future)
    return {
        "set": name,
        "matcher": matcher,
        "keep": keep,
        "seed": seed,
        "unknown_share": round(sum(q.label not in known for q in future) / len(future), 3),
        "declined_topics": len(topics),
        "declined_questions": sum(len(t.questions) for t in topics),
        "before": {k: getattr(without, k) for k in KEYS},
        "after": {k: getattr(with_declined, k) for k in KEYS},
    }


def _point(figures: dict[str, Any]) -> str:
    """Threshold, answered precision, coverage and out-of-scope escalated, as the header says."""
    shown = [figures[k] for k in ("answered_precision", "in_scope_coverage", "oos_escalation")]
    return f"{figures['answer_threshold']:.2f} " + " ".join(
        "  n/a" if value is None else f"{value:.3f}" for value in shown
    )


def main() -> None:
    args = stand_in_arguments(__doc__ or "")

    print(
        "set        matcher  keep seed unknown declined (questions) "
        "| before: answer prec  cov   esc   | after: answer prec  cov   esc   | cov@95 before"
    )
    rows = []
    for matcher in args.matcher or ["lexical", "semantic"]:
        for name in SETS:
            for seed in range(args.seeds if args.keep else 1):
                r = run(args.data, name, matcher, args.keep, seed)
                rows.append(r)
                b, a = r["before"], r["after"]
                print(
                    f"{r['set']:<10} {r['matcher']:<8} {r['keep']:>4} {r['seed']:>4} {r['unknown_share']:.2f}"
                    f"    {r['declined_topics']:>4} ({r['declined_questions']:>4})    |"
                    f" {_point(b)} | {_point(a)} | {fmt(b['coverage_at_95'])}",
                    flush=True,
                )
    if args.json:
        print(json.dumps({"keep": args.keep, "rows": rows}, sort_keys=True))


if __name__ == "__main__":
    main()
