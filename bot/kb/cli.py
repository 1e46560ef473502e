"""`supportbot kb check | reload | eval`: bad input ends with exit code 2 and `file:line: what`."""

from __future__ import annotations

import argparse
import sys

from bot.kb.base import matcher_kind, request_reload
from bot.kb.eval import EvalInputError, evaluate, read_jsonl
from bot.kb.loader import KBError, load_entries
from bot.kb.semantic import SemanticUnavailable
from bot.settings import Settings


def kb_command(args: argparse.Namespace, settings: Settings) -> int:
    try:
        if args.kb_command == "check":
            path = args.path or settings.kb_path
            entries, files = load_entries(path)
            count = sum(1 for name, _, _ in files.stamps if not name.endswith(".reload"))
            print(f"{path}: {len(entries)} entries in {count} file(s), all valid")
            return 0
        if args.kb_command == "reload":
            path = args.path or settings.kb_path
            count = request_reload(path)
            print(f"{path}: {count} entries valid; a running bot reloads them within a few seconds")
            return 0
        if args.kb_command == "eval":
            examples = read_jsonl(args.examples, labels_required=True)
            queries = read_jsonl(args.queries, labels_required=False)
            report = evaluate(examples, queries, matcher=args.matcher or matcher_kind(settings.matcher))
            print(report.as_json() if args.json else report.text())
            return 0
    except KBError as error:
        for problem in error.problems:
            print(problem, file=sys.stderr)
        return 2
    except (EvalInputError, SemanticUnavailable) as error:
        print(f"supportbot: {error}", file=sys.stderr)
        return 2
    return 2
