"""`supportbot init`: a starter site (knowledge base, components, settings) from the packaged samples."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

SAMPLES = files("bot") / "samples"
"""The sample knowledge base, components.yml and the documented settings (env.example)."""


@dataclass
class InitResult:
    written: list[Path] = field(default_factory=list)
    skipped: list[Path] = field(default_factory=list)


def starter_files() -> list[tuple[Path, Traversable]]:
    """(where in the site, packaged source) for every file `init` writes."""
    kb = SAMPLES / "kb"
    entries = sorted((item for item in kb.iterdir() if item.name.endswith(".yml")), key=lambda i: i.name)
    return [
        *((Path("kb") / item.name, item) for item in entries),
        (Path("components.yml"), SAMPLES / "components.yml"),
        (Path(".env"), SAMPLES / "env.example"),
    ]


def init_site(target: Path) -> InitResult:
    """Write the starter files into `target`; a file that is already there is left alone."""
    result = InitResult()
    for relative, source in starter_files():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        # .env will hold tokens: readable by its owner only.
        mode = 0o600 if relative.name == ".env" else 0o644
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        except FileExistsError:
            result.skipped.append(path)
            continue
        with os.fdopen(descriptor, "wb") as out:
            out.write(source.read_bytes())
        result.written.append(path)
    return result


def next_steps(target: Path) -> str:
    where = "" if target.resolve() == Path.cwd().resolve() else f" (first: cd {target})"
    return (
        f"Next steps{where}:\n"
        "  1. Try it in this terminal: supportbot run --console   (type a question; Ctrl-D quits)\n"
        "  2. Put your own answers in kb/*.yml, then check them: supportbot kb check\n"
        "  3. Connect Slack or Discord: set PLATFORMS and its tokens in .env, then: supportbot run"
    )


def report(target: Path, result: InitResult) -> str:
    lines = []
    if result.written:
        lines.append(f"wrote {len(result.written)} files into {target}: " + _names(target, result.written))
    if result.skipped:
        lines.append("kept what was already there: " + _names(target, result.skipped))
    lines.append(next_steps(target))
    return "\n".join(lines)


def _names(target: Path, paths: list[Path]) -> str:
    relative = [path.relative_to(target) for path in paths]
    kb = [path for path in relative if path.parts[0] == "kb"]
    others = [str(path) for path in relative if path.parts[0] != "kb"]
    shown = ([f"kb/ ({len(kb)} files)" if len(kb) > 1 else str(kb[0])] if kb else []) + others
    return ", ".join(shown)
