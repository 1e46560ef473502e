"""`supportbot kb check | reload | eval`: bad input ends with exit code 2 and `file:line: what`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from bot.kb import teach
from bot.kb.eval import EvalInputError, evaluate, read_jsonl
from bot.kb.knowledge_base import KnowledgeBase, matcher_kind, request_reload
from bot.kb.loader import KBError, load_entries
from bot.kb.model import KBEntry
from bot.kb.operating_point import Targets
from bot.kb.semantic import SemanticUnavailable
from bot.settings import Settings
from bot.status.components import ComponentsFileError, load_components_file


def kb_command(args: argparse.Namespace, settings: Settings) -> int:
    try:
        if args.kb_command == "check":
            path = args.path or settings.kb_path
            entries, files = load_entries(path)
            count = sum(1 for name, _, _ in files.stamps if not name.endswith(".reload"))
            articles = sum(1 for entry in entries if not entry.declined)
            learned, problems = teach.learned_read(Path(path))
            verdict = "all valid" if not problems else f"{len(problems)} learned item(s) skipped (below)"
            print(f"{path}: {articles} entries in {count} file(s), {verdict}")
            for warning in _unknown_components(entries, settings.components_file):
                print(warning, file=sys.stderr)
            health = KnowledgeBase.build(
                entries,
                matcher=args.matcher or settings.matcher,
                targets=Targets(settings.answer_precision, settings.escalate_unknown),
                answer_threshold=settings.answer_threshold,
                clarify_threshold=settings.clarify_threshold,
            ).health()
            for line in health.lines():
                print(line)
            for draft in learned.pending:
                print(
                    f"pending draft `{draft.id}` ({draft.title}), taught by {draft.taught_by}"
                    + (f" from ticket #{draft.from_ticket}" if draft.from_ticket else "")
                    + f": publish with /support kb approve {draft.id}"
                )
            for topic in learned.declined:
                print(
                    f"declined topic `{topic.id}` ({len(topic.questions)} question"
                    f"{'' if len(topic.questions) == 1 else 's'}, "
                    f"\u201c{topic.questions[0][:80]}\u201d), declined by {topic.taught_by}: "
                    f"undo with /support kb forget {topic.id}"
                )
            for warning in health.warnings:
                print(f"warning: {warning}", file=sys.stderr)
            for warning in files.learned_warnings:
                print(warning if warning in problems else f"warning: {warning}", file=sys.stderr)
            return 2 if problems else 0
        if args.kb_command == "reload":
            path = args.path or settings.kb_path
            count = request_reload(path)
            print(f"{path}: {count} entries valid; a running bot reloads them within a few seconds")
            return 0
        if args.kb_command == "eval":
            for option, given in (("--examples", args.examples), ("--queries", args.queries)):
                if given.is_dir():  # reading it would say only "[Errno 21] Is a directory"
                    raise EvalInputError(f"{option} {given} is a folder; name a JSONL file")
            examples = read_jsonl(args.examples, labels_required=True)
            queries = read_jsonl(args.queries, labels_required=False)
            report = evaluate(
                examples,
                queries,
                matcher=args.matcher or matcher_kind(settings.matcher),
                targets=Targets(settings.answer_precision, settings.escalate_unknown),
                traffic=not args.no_traffic,
            )
            print(report.as_json() if args.json else report.text())
            return 0
    except KBError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        return 2
    except (EvalInputError, SemanticUnavailable) as error:
        print(f"supportbot kb {args.kb_command}: {error}", file=sys.stderr)
        return 2
    return 2


def _unknown_components(entries: Sequence[KBEntry], components_file: Path) -> list[str]:
    """Warnings for entries naming a component `components.yml` does not declare: a typo there
    means the answer never mentions an outage and maintenance never pauses its tickets' clocks.
    Only warnings: staff may have added the component with `/component add`."""
    try:
        declared = load_components_file(components_file)
    except ComponentsFileError:
        return []
    known = {spec.name for spec in declared} | {alias for spec in declared for alias in spec.aliases}
    return [
        f"{entry.source}: warning: component '{entry.component}' is not in {components_file} "
        "(fine if it was added with /component add)"
        for entry in entries
        if entry.component and entry.component.lower() not in known
    ]
