"""Installed from a built wheel, outside the checkout, the bot sets up a site and answers from it.

The new virtual environment gets the wheel itself (no dependencies: only PyPI is reachable from
CI, and downloading them on every run would make the suite slow and flaky). The dependencies come
from the project's .venv through a .pth file added after the install; `pip check` then confirms the
wheel's declared requirements are met, and `test_every_import_is_a_declared_dependency` that the
code imports nothing undeclared, which a shared site-packages would otherwise hide.
"""

from __future__ import annotations

import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ("bot", "storage")
WHEEL_SOURCES = ("pyproject.toml", "README.md", "components.yml", ".env.example", "kb", *SHIPPED)
"""What the wheel is built from (bot/samples/ links to kb/, components.yml and .env.example). The
Dockerfile copies the same and builds and starts the same way (tests/test_deploy_files.py)."""
BUILD_WHEEL = ("pip", "wheel", "--no-deps")
START = ("supportbot", "run")

pytestmark = pytest.mark.install


def _run(*args: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    kwargs.setdefault("timeout", 120)
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, **kwargs)  # type: ignore[call-overload, no-any-return]


def build_wheel(into: Path) -> Path:
    """The wheel CI installs: built from a copy of the working tree, so the checkout stays clean."""
    source = into / "source"
    source.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in WHEEL_SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, symlinks=True, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, source / name)
    for extra in ROOT.glob("LICENSE*"):
        shutil.copy2(extra, source / extra.name)
    pip = [sys.executable, "-m", *BUILD_WHEEL, "--no-build-isolation", "--quiet"]
    built = _run(*pip, "--wheel-dir", into / "dist", source)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = (into / "dist").glob("supportbot-*.whl")
    return wheel


def fresh_venv(where: Path, wheel: Path) -> Path:
    """A virtual environment outside the checkout with the wheel installed; returns its bin folder."""
    made = _run(sys.executable, "-m", "venv", "--without-pip", where)
    assert made.returncode == 0, made.stderr
    python = where / "bin" / "python"
    pip: list[str | Path] = [sys.executable, "-m", "pip", "--python", python]
    installed = _run(*pip, "install", "--no-deps", "--no-index", "--quiet", wheel)
    assert installed.returncode == 0, installed.stderr[-2000:]
    # After the install, so pip saw an empty environment: the dependencies, from the project's .venv.
    site_packages = _run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))")
    dependencies = Path(sysconfig.get_path("purelib"))
    (Path(site_packages.stdout.strip()) / "_dependencies.pth").write_text(f"{dependencies}\n")
    checked = _run(*pip, "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return where / "bin"


def test_a_wheel_installed_elsewhere_sets_up_a_site_and_answers(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path / "build")
    bin_dir = fresh_venv(tmp_path / "venv", wheel)
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        # A fresh install has the lexical matcher only (the semantic extra is not installed there);
        # the shared .venv has both, so say which one a new user gets.
        "MATCHER": "lexical",
        "WEB_PORT": "0",  # the site's .env says 8080, which another test or bot may hold
    }
    where = _run(bin_dir / "python", "-c", "import bot; print(bot.__file__)", env=env, cwd=tmp_path)
    assert Path(where.stdout.strip()).is_relative_to(tmp_path / "venv"), where.stdout + where.stderr

    init = _run("supportbot", "init", "site", env=env, cwd=tmp_path)
    assert init.returncode == 0, init.stderr
    site = tmp_path / "site"
    assert (site / ".env").read_bytes() == (ROOT / ".env.example").read_bytes()
    assert sorted(p.name for p in (site / "kb").iterdir()) == sorted(p.name for p in (ROOT / "kb").iterdir())

    chat = _run(*START, "--console", input="how do I reset my api key?\n", env=env, cwd=site, timeout=60)
    assert chat.returncode == 0, chat.stderr[-2000:]
    assert "Reset or roll an API key" in chat.stdout, chat.stdout
    assert (site / "data" / "supportbot.db").is_file()


def _declared() -> set[str]:
    """pyproject's dependencies and optional extras (not dev: the shipped code never imports it)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = [r for name, group in project["optional-dependencies"].items() if name != "dev" for r in group]
    return {_normalise(re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0]) for r in project["dependencies"] + extras}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_import_is_a_declared_dependency() -> None:
    providers = importlib.metadata.packages_distributions()
    declared = _declared()
    undeclared = set()
    for package in SHIPPED:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules = [node.module]
                else:
                    continue
                for module in modules:
                    top = module.partition(".")[0]
                    if top in sys.stdlib_module_names or top in SHIPPED:
                        continue
                    if not declared & {_normalise(d) for d in providers.get(top, [top])}:
                        undeclared.add(f"{path.relative_to(ROOT)}: {top}")
    assert not undeclared, "imported but not in pyproject's dependencies: " + ", ".join(sorted(undeclared))
