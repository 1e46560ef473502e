"""The dependency rules of docs/ARCHITECTURE.md, checked on every import statement in bot/ and storage/
(also those inside functions and under TYPE_CHECKING: a type is a dependency too).

Adapters depend on core; handlers on core, the domains and storage; the domains on core and storage;
storage on nothing of the bot. Only the platform packages touch their SDK, and only the composition
root (bot/app.py, and bot/cli.py for the command line) wires adapters and handlers together.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("bot", "storage")

SLACK_SDK = ("slack_bolt", "slack_sdk")
DISCORD_SDK = ("discord",)
SDKS = (*SLACK_SDK, *DISCORD_SDK)
DOMAINS = ("bot.kb", "bot.tickets", "bot.status", "bot.insights")
COMPOSITION_ROOT = ("bot.app", "bot.cli")


@dataclass(frozen=True)
class Rule:
    """Modules under `where` (every module when empty), except those under `exempt`, import nothing
    under `forbidden` other than what is under `allowed`."""

    why: str
    where: str
    forbidden: tuple[str, ...]
    allowed: tuple[str, ...] = ()
    exempt: tuple[str, ...] = ()

    def broken_by(self, module: str, imported: str) -> bool:
        if self.where and not _under(module, (self.where,)):
            return False
        if _under(module, self.exempt):
            return False
        return _under(imported, self.forbidden) and not _under(imported, self.allowed)


RULES = (
    Rule(
        "core is the framework: no adapter, handler, domain, platform SDK or composition root",
        where="bot.core",
        forbidden=("bot.adapters", "bot.handlers", *DOMAINS, *SDKS, *COMPOSITION_ROOT),
        # The contract every adapter implements, which core's outbound and dispatcher call.
        allowed=("bot.adapters.base",),
    ),
    Rule(
        "handlers speak events, never a platform",
        where="bot.handlers",
        forbidden=("bot.adapters", *SDKS, *COMPOSITION_ROOT),
    ),
    Rule("storage imports nothing of the bot", where="storage", forbidden=("bot",)),
    Rule(
        "the knowledge base imports nothing of storage or the adapters",
        where="bot.kb",
        forbidden=("storage", "bot.adapters", "bot.handlers", *SDKS, *COMPOSITION_ROOT),
    ),
    Rule(
        "insights read the other domains and storage, never a platform or a handler",
        where="bot.insights",
        forbidden=("bot.adapters", "bot.handlers", *SDKS, *COMPOSITION_ROOT),
    ),
    Rule(
        "only bot/adapters/slack/ imports the Slack SDK",
        where="",
        forbidden=SLACK_SDK,
        exempt=("bot.adapters.slack",),
    ),
    Rule(
        "only bot/adapters/discord/ imports discord.py",
        where="",
        forbidden=DISCORD_SDK,
        exempt=("bot.adapters.discord",),
    ),
    Rule(
        "only the composition root wires the platform adapters",
        where="",
        forbidden=("bot.adapters.slack", "bot.adapters.discord", "bot.adapters.console"),
        exempt=(*COMPOSITION_ROOT, "bot.adapters"),
    ),
    Rule(
        "only the composition root includes the handlers",
        where="",
        forbidden=("bot.handlers",),
        exempt=(*COMPOSITION_ROOT, "bot.handlers"),
    ),
    Rule(
        "nothing imports the composition root but the command line",
        where="",
        forbidden=("bot.app",),
        exempt=COMPOSITION_ROOT,
    ),
)


def _under(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str, module: str, *, is_package: bool) -> set[str]:
    """Every name an import statement in `source` brings in, absolute: `from a.b import c` gives
    `a.b.c` (a module or a name in it; rules match by prefix, so either way is right)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                anchor = package[: len(package) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def scan(root: Path) -> dict[str, set[str]]:
    """The imports of every module of `PACKAGES` under `root`."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            name = module_name(path, root)
            modules[name] = imports_of(
                path.read_text(encoding="utf-8"), name, is_package=path.name == "__init__.py"
            )
    return modules


def violations(modules: Mapping[str, set[str]]) -> list[str]:
    """`module: import (rule)` for every import that breaks a rule."""
    return [
        f"{module}: {imported} ({rule.why})"
        for module, imported_names in sorted(modules.items())
        for imported in sorted(imported_names)
        for rule in RULES
        if rule.broken_by(module, imported)
    ]


def test_every_module_keeps_the_dependency_rules() -> None:
    modules = scan(ROOT)
    assert len(modules) > 50, "the scan found the packages"
    broken = violations(modules)
    assert not broken, "imports that break the dependency rules:\n" + "\n".join(broken)


def test_a_planted_violation_is_reported_with_its_module_and_import(tmp_path: Path) -> None:
    (tmp_path / "bot" / "core").mkdir(parents=True)
    (tmp_path / "bot" / "handlers").mkdir(parents=True)
    (tmp_path / "storage").mkdir()
    (tmp_path / "bot" / "core" / "router.py").write_text(
        "from bot.adapters.base import Adapter\n"  # allowed: the adapters' contract
        "def later():\n    from bot.adapters.slack.adapter import SlackAdapter\n"
    )
    (tmp_path / "bot" / "handlers" / "status.py").write_text(
        "from __future__ import annotations\nfrom typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import discord\n"
    )
    (tmp_path / "storage" / "db.py").write_text("from .session import DbSession\n")  # storage's own
    (tmp_path / "storage" / "repo.py").write_text("from bot.core.events import Platform\n")

    assert violations(scan(tmp_path)) == [
        "bot.core.router: bot.adapters.slack.adapter.SlackAdapter (core is the framework: no adapter,"
        " handler, domain, platform SDK or composition root)",
        "bot.core.router: bot.adapters.slack.adapter.SlackAdapter (only the composition root wires the"
        " platform adapters)",
        "bot.handlers.status: discord (handlers speak events, never a platform)",
        "bot.handlers.status: discord (only bot/adapters/discord/ imports discord.py)",
        "storage.repo: bot.core.events.Platform (storage imports nothing of the bot)",
    ]


def test_relative_imports_are_resolved_from_the_importing_module() -> None:
    assert imports_of("from . import x\nfrom ..core import y", "bot.handlers.status", is_package=False) == {
        "bot.handlers.x",
        "bot.core.y",
    }
    assert imports_of("from .events import E", "bot.core", is_package=True) == {"bot.core.events.E"}
