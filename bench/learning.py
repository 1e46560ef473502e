"""The learning loop, proved on a development set: does teaching the bot what it escalated make it
answer more, without answering worse?

The set's kb_examples_10.jsonl is the starting KB (one entry per label, written as YAML into a
temporary KB folder); its queries.jsonl, in order, is the traffic, cut into 6 simulated weeks. Each
week every question is asked of the KB in service. At the end of the week "staff" go through the
week's escalated questions: an out-of-scope one (no label the KB knows) is marked as a gap and not
taught; 20 in-scope ones are attached to their label's article through the same code path as the
Teach button (`bot.kb.teach.attach_change` + `publish` into learned.yml), and the KB is reloaded
from its folder as the watcher does, and asked the recent traffic again as the running bot does
(`KnowledgeBaseHolder.observe_traffic`). Which 20: `--staff biggest-gaps` (default) works as the
report ranks gaps, the articles the most escalated questions were about first, up to 4 questions
each, then round again; `--staff first` takes the first 20 in order. `--shuffle` replays the queries
in a fixed random order instead of file order (Banking77's file is sorted by intent, so in file
order each week holds different intents). Each week prints in-scope coverage (answered with the
right article / in-scope questions), answered precision and out-of-scope escalated.

    .venv/bin/python -m bench.learning [--set banking77|hwu64] [--matcher lexical|semantic]
        [--staff biggest-gaps|first] [--shuffle] [--held-out SHARE] [--decline] [--json]

`--held-out 0.2` keeps a fixed random fifth of the questions out of the traffic and asks them of
the KB at the start of every week and once more after the last lessons (so the last week is taught
too): the same questions each time, so the change measures what teaching added, not which intents
a week happened to hold.

`--decline`: at the end of each week staff also decline, through the Not ours path
(`bot.kb.teach.decline` into learned.yml), each of the week's gaps (its escalated questions grouped
as the report groups them) most of whose questions have no entry.

Targets: coverage_last_week >= 1.5 x coverage_first_week, precision_min >= 0.95, out-of-scope
escalated >= 0.95 every week.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from bench.kb_declined import gaps_to_decline
from bot.kb import teach
from bot.kb.eval import Labelled, entries_from_examples, read_jsonl
from bot.kb.knowledge_base import KnowledgeBaseHolder
from bot.kb.model import Band

DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
WEEKS = 6
TAUGHT_PER_WEEK = 20
PER_ARTICLE = 4
# What the running bot asks its KB again after each reload (`bot.insights.kb_traffic.LIMIT`).
RECENT = 1000


@dataclass(frozen=True, slots=True)
class Week:
    week: int
    questions: int
    coverage: float
    precision: float | None
    oos_escalated: float | None
    taught: int
    gaps: int
    phrasings: int
    point: str
    """The operating point the week was answered at."""


def _entry_id(label: str) -> str:
    """A label as an article id (Banking77 has `reverted_card_payment?`)."""
    return re.sub(r"[^a-z0-9_.-]+", "-", label.lower()).strip("-")


def _write_kb(folder: Path, examples: list[Labelled]) -> None:
    entries = entries_from_examples([Labelled(e.text, _entry_id(e.label or "")) for e in examples])
    rows = [
        {"id": e.id, "title": e.title, "questions": list(e.questions), "answer": e.answer} for e in entries
    ]
    (folder / "faq.yml").write_text(
        yaml.safe_dump(rows, sort_keys=False, allow_unicode=True), encoding="utf-8"
    )


def choose_lessons(escalated: list[Labelled], known: set[str], staff: str) -> dict[str, list[str]]:
    """The (at most 20) escalated in-scope questions staff teach, by article."""
    by_article: dict[str, list[str]] = defaultdict(list)
    for query in escalated:
        if query.label in known:
            by_article[query.label].append(query.text)
    lessons: dict[str, list[str]] = defaultdict(list)
    if staff == "first":
        for query in escalated:
            if query.label in known and sum(map(len, lessons.values())) < TAUGHT_PER_WEEK:
                lessons[query.label].append(query.text)
        return lessons
    ranked = sorted(by_article, key=lambda article: (-len(by_article[article]), article))
    taught = 0
    while taught < TAUGHT_PER_WEEK and any(by_article[a] for a in ranked):
        for article in ranked:
            take = by_article[article][:PER_ARTICLE]
            take = take[: TAUGHT_PER_WEEK - taught]
            del by_article[article][: len(take)]
            lessons[article] += take
            taught += len(take)
            if taught == TAUGHT_PER_WEEK:
                break
    return lessons


@dataclass(frozen=True, slots=True)
class Scored:
    """How the KB in service did on some questions, and which of them it escalated."""

    coverage: float
    precision: float | None
    oos_escalated: float | None
    escalated: list[Labelled]


def score(holder: KnowledgeBaseHolder, queries: list[Labelled]) -> Scored:
    known = {entry.id for entry in holder.entries}
    answered = right = in_scope = oos = oos_escalated = 0
    escalated: list[Labelled] = []
    for query in queries:
        decision = holder.ask(query.text)
        label = query.label if query.label in known else None
        best = decision.best
        in_scope += label is not None
        oos += label is None
        if decision.band is Band.ANSWER:
            answered += 1
            right += best is not None and best.entry.id == label
        elif decision.band is Band.ESCALATE:
            escalated.append(query)
            oos_escalated += label is None
    return Scored(
        coverage=right / in_scope if in_scope else 0.0,
        precision=right / answered if answered else None,
        oos_escalated=oos_escalated / oos if oos else None,
        escalated=escalated,
    )


def split_held_out(queries: list[Labelled], share: float) -> tuple[list[Labelled], list[Labelled]]:
    """(traffic in its order, a fixed random `share` of the questions that are never traffic)."""
    held = set(random.Random(1).sample(range(len(queries)), round(share * len(queries))))
    return (
        [q for i, q in enumerate(queries) if i not in held],
        [q for i, q in enumerate(queries) if i in held],
    )


def run(
    data_set: str,
    matcher: str,
    *,
    staff: str = "biggest-gaps",
    shuffle: bool = False,
    held_out: float = 0.0,
    decline: bool = False,
) -> tuple[list[Week], list[Scored], float]:
    """The weeks, the KB in service on the held-out questions at the start of each week and after
    the last lessons (with `held_out` > 0), and the seconds spent building KBs."""
    examples = read_jsonl(DATA / data_set / "kb_examples_10.jsonl", labels_required=True)
    queries = [
        Labelled(q.text, None if q.label is None else _entry_id(q.label))
        for q in read_jsonl(DATA / data_set / "queries.jsonl", labels_required=False)
    ]
    if shuffle:
        random.Random(0).shuffle(queries)
    queries, held = split_held_out(queries, held_out) if held_out else (queries, [])
    size = -(-len(queries) // WEEKS)
    weeks: list[Week] = []
    on_held: list[Scored] = []
    build_seconds = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _write_kb(folder, examples)
        started = time.perf_counter()
        holder = KnowledgeBaseHolder(folder, matcher=matcher)
        build_seconds += time.perf_counter() - started
        for number in range(WEEKS):
            traffic = queries[number * size : (number + 1) * size]
            known = {entry.id for entry in holder.entries}
            if held:
                on_held.append(score(holder, held))
            week = score(holder, traffic)
            escalated = week.escalated
            # Staff mark an out-of-scope question as a gap: there is no article to attach it to.
            gaps = sum(1 for query in escalated if query.label not in known)
            lessons = choose_lessons(escalated, known, staff)
            taught = sum(map(len, lessons.values()))
            last = number + 1 == WEEKS
            weeks.append(
                Week(
                    week=number + 1,
                    questions=len(traffic),
                    coverage=week.coverage,
                    precision=week.precision,
                    oos_escalated=week.oos_escalated,
                    taught=taught if not last or held else 0,
                    gaps=gaps,
                    phrasings=sum(len(e.questions) for e in holder.entries),
                    point=holder.current.operating_point.describe().split(";")[0],
                )
            )
            if last and not held:
                break
            if decline:
                # The gaps staff say are not the bot's (Not ours), through the button's own path.
                for texts in gaps_to_decline(holder.current, escalated):
                    teach.decline(folder, texts, taught_by="bench.learning")
            for label, texts in lessons.items():
                try:
                    change = teach.attach_change(holder.entries, entry_id=label, questions=texts)
                except teach.TeachError:
                    continue  # the article already has these words
                teach.publish(folder, change, taught_by="bench.learning")
            started = time.perf_counter()
            holder.reload()
            build_seconds += time.perf_counter() - started
            seen = queries[max(0, (number + 1) * size - RECENT) : (number + 1) * size]
            holder.observe_traffic([query.text for query in reversed(seen)])
        if held:
            on_held.append(score(holder, held))
    return weeks, on_held, build_seconds


def _figure(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", dest="data_set", choices=("banking77", "hwu64"), default="banking77")
    parser.add_argument("--matcher", choices=("lexical", "semantic"), default="lexical")
    parser.add_argument("--staff", choices=("biggest-gaps", "first"), default="biggest-gaps")
    parser.add_argument("--shuffle", action="store_true", help="replay the queries in a fixed random order")
    parser.add_argument(
        "--held-out",
        type=float,
        default=0.0,
        metavar="SHARE",
        help="keep this share of the questions (fixed, random) out of the traffic and ask them of "
        "the KB at the start of every week and after the last lessons",
    )
    parser.add_argument(
        "--decline",
        action="store_true",
        help="staff also decline each week's gaps whose questions mostly have no entry (Not ours)",
    )
    parser.add_argument("--json", action="store_true", help="also print one JSON line at the end")
    args = parser.parse_args(argv)
    if not 0.0 <= args.held_out < 1.0:
        parser.error("--held-out must be at least 0 and below 1")
    started = time.perf_counter()
    weeks, on_held, build_seconds = run(
        args.data_set,
        args.matcher,
        staff=args.staff,
        shuffle=args.shuffle,
        held_out=args.held_out,
        decline=args.decline,
    )
    seconds = time.perf_counter() - started
    for week in weeks:
        precision, oos = _figure(week.precision), _figure(week.oos_escalated)
        print(
            f"week {week.week}: {week.questions} questions, coverage {week.coverage:.3f}, "
            f"answered precision {precision}, out-of-scope escalated {oos}; "
            f"{week.phrasings} phrasings; then taught {week.taught}, gaps {week.gaps}",
            file=sys.stderr if args.json else sys.stdout,
        )
    for index, held in enumerate(on_held):
        print(
            f"held out, {'after the last lessons' if index == WEEKS else f'start of week {index + 1}'}: "
            f"coverage {held.coverage:.3f}, answered precision {_figure(held.precision)}, "
            f"out-of-scope escalated {_figure(held.oos_escalated)}",
            file=sys.stderr if args.json else sys.stdout,
        )
    precisions = [w.precision for w in weeks if w.precision is not None]
    summary = {
        "set": args.data_set,
        "matcher": args.matcher,
        "staff": args.staff,
        "shuffled": args.shuffle,
        "declined": args.decline,
        "weeks": [asdict(w) for w in weeks],
        "coverage_first_week": weeks[0].coverage,
        "coverage_last_week": weeks[-1].coverage,
        "precision_min": min(precisions) if precisions else None,
        "oos_escalated_min": min(
            (w.oos_escalated for w in weeks if w.oos_escalated is not None), default=None
        ),
        **(
            {
                "held_out_share": args.held_out,
                "held_out": [
                    {"coverage": h.coverage, "precision": h.precision, "oos_escalated": h.oos_escalated}
                    for h in on_held
                ],
                "held_out_gain": on_held[-1].coverage / on_held[0].coverage if on_held[0].coverage else None,
            }
            if on_held
            else {}
        ),
        "seconds": round(seconds, 1),
        "kb_build_seconds": round(build_seconds, 1),
    }
    if args.json:
        print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
