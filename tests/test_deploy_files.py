"""The Dockerfile, compose.yaml and the systemd unit, checked without Docker or systemd running: they
build and start the bot the way the test suite does, and name paths and settings that exist."""

from __future__ import annotations

import asyncio
import json
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from configparser import ConfigParser
from pathlib import Path
from typing import Any

import pytest
import yaml
from dockerfile_parse import DockerfileParser
from sqlalchemy.engine import make_url

from bot.settings import Settings, load_settings
from bot.web import WebServer, create_web_app
from storage.db import Database
from tests.test_install_from_wheel import BUILD_WHEEL, START, WHEEL_SOURCES

ROOT = Path(__file__).resolve().parent.parent
UNIT = ROOT / "docs" / "deploy" / "supportbot.service"


def stages() -> list[list[dict[str, Any]]]:
    """The Dockerfile's instructions, one list per build stage."""
    found: list[list[dict[str, Any]]] = []
    for instruction in DockerfileParser(path=str(ROOT / "Dockerfile")).structure:
        if instruction["instruction"] == "FROM":
            found.append([])
        if found and instruction["instruction"] != "COMMENT":
            found[-1].append(instruction)
    return found


def values(stage: list[dict[str, Any]], name: str) -> list[str]:
    return [i["value"] for i in stage if i["instruction"] == name]


def image_env() -> dict[str, str]:
    return DockerfileParser(path=str(ROOT / "Dockerfile")).envs


def healthcheck() -> list[str]:
    (check,) = values(stages()[-1], "HEALTHCHECK")
    return json.loads(check.partition("CMD")[2])


def test_the_image_builds_its_wheel_from_what_the_wheel_test_builds_from() -> None:
    wheel_stage, final = stages()
    assert all(v.startswith("python:3.11-slim") for v in values(wheel_stage, "FROM") + values(final, "FROM"))
    copied = {src.rstrip("/") for v in values(wheel_stage, "COPY") for src in shlex.split(v)[:-1]}
    assert copied == {*WHEEL_SOURCES, "LICENSE*"}
    (build,) = values(wheel_stage, "RUN")
    words = shlex.split(build)
    assert words[:2] == list(BUILD_WHEEL[:2]) and BUILD_WHEEL[2] in words and words[-1] == "."
    install = shlex.split(values(final, "RUN")[0])
    assert install[:2] == ["pip", "install"]
    assert any(re.fullmatch(r"/wheels/supportbot-\*\.whl", word) for word in install)
    # The image's dependencies at the versions `make test` installs, not whatever is newest that day.
    constraint = install[install.index("--constraint") + 1]
    assert f"constraints.txt {constraint}" in values(final, "COPY")
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {f"!{name}/" if (ROOT / name).is_dir() else f"!{name}" for name in WHEEL_SOURCES} <= set(ignored)
    assert "!constraints.txt" in ignored


def test_the_image_starts_the_bot_as_the_tests_do() -> None:
    final = stages()[-1]
    (entrypoint,) = values(final, "ENTRYPOINT")
    (cmd,) = values(final, "CMD")
    assert json.loads(entrypoint) + json.loads(cmd) == list(START)  # exec form: SIGTERM reaches the bot
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts[START[0]] == "bot.cli:main"
    assert values(final, "STOPSIGNAL") == ["SIGTERM"]
    (user,) = values(final, "USER")
    assert user not in ("root", "0")


def test_the_image_settings_are_valid_and_keep_data_in_the_volume() -> None:
    env = image_env()
    final = stages()[-1]
    assert env["WEB_HOST"] == "0.0.0.0"
    assert values(final, "EXPOSE") == [env["WEB_PORT"]]
    (volume,) = (json.loads(v) for v in values(final, "VOLUME"))
    database = make_url(env["DATABASE_URL"]).database
    assert database is not None and Path(database).parent == Path(volume[0])
    assert f"supportbot init {Path(env['KB_PATH']).parent}" in " ".join(values(final, "RUN"))
    settings_names = {name.upper() for name in Settings.model_fields}
    assert {name for name in env if not name.startswith(("PYTHON", "PIP_"))} <= settings_names
    load_settings(_env_file=None, **{k.lower(): v for k, v in env.items() if k.upper() in settings_names})


async def test_the_healthcheck_needs_no_curl_and_asks_the_bots_health_path(tmp_path: Path) -> None:
    command = healthcheck()
    assert command[0] == "python" and "curl" not in " ".join(command)
    assert "/healthz" in command[-1]
    database = Database.from_url(f"sqlite+aiosqlite:///{tmp_path}/bot.db")
    web = WebServer(create_web_app(database), host="127.0.0.1", port=0)
    await web.start()
    try:
        up = await asyncio.create_subprocess_exec(
            sys.executable, *command[1:], env={"WEB_PORT": str(web.port)}
        )
        assert await up.wait() == 0
    finally:
        await web.stop()
        await database.dispose()
    down = await asyncio.create_subprocess_exec(sys.executable, *command[1:], env={"WEB_PORT": str(web.port)})
    assert await down.wait() != 0, "nothing answers: the check must fail"


def _substitute(text: str) -> str:
    """Compose's ${NAME:?message} and ${NAME:-default}, with POSTGRES_PASSWORD set."""
    return re.sub(r"\$\{(\w+)(?::[?-][^}]*)?\}", lambda m: {"POSTGRES_PASSWORD": "s3cret"}[m.group(1)], text)


def test_compose_runs_the_bot_on_the_postgres_service() -> None:
    compose = yaml.safe_load(_substitute((ROOT / "compose.yaml").read_text()))
    bot, db = compose["services"]["bot"], compose["services"]["db"]
    assert bot["build"] == "."
    url = make_url(bot["environment"]["DATABASE_URL"])
    assert url.drivername == "postgresql+asyncpg"
    assert url.host in compose["services"] and compose["services"][url.host] is db
    assert url.username == db["environment"]["POSTGRES_USER"]
    assert url.password == db["environment"]["POSTGRES_PASSWORD"]
    assert url.database == db["environment"]["POSTGRES_DB"]
    assert bot["depends_on"]["db"]["condition"] == "service_healthy" and "healthcheck" in db
    load_settings(_env_file=None, **{k.lower(): v for k, v in bot["environment"].items()})
    assert [m.split(":")[1] for m in bot["ports"]] == [image_env()["WEB_PORT"]]
    (volume,) = json.loads(values(stages()[-1], "VOLUME")[0])
    assert any(mount.endswith(f":{volume}") for mount in bot["volumes"])
    grace = Settings.model_fields.get("stop_grace_seconds")
    bot_grace = float(grace.default) if grace is not None else 20.0  # the documented default
    assert int(bot["stop_grace_period"].removesuffix("s")) > bot_grace


def _unit() -> ConfigParser:
    unit = ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are case-sensitive
    unit.read_string(UNIT.read_text())
    return unit


def test_the_systemd_unit_runs_a_dedicated_user_and_restarts_on_failure() -> None:
    service = _unit()["Service"]
    assert service["User"] not in ("root", "0")
    assert service["EnvironmentFile"].startswith("/")
    program, *arguments = shlex.split(service["ExecStart"])
    assert [Path(program).name, *arguments] == list(START)
    assert service["Restart"] == "on-failure"
    assert service["RestartPreventExitStatus"] == "2"  # a setting to fix: restarting will not help
    for option in ("NoNewPrivileges", "ProtectHome", "PrivateTmp"):
        assert service[option] == "yes"
    assert service["ProtectSystem"] == "strict"
    assert service["WorkingDirectory"] == f"/var/lib/{service['StateDirectory']}"
    assert float(service["TimeoutStopSec"]) >= 30


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    executable = Path(sys.executable).parent / "supportbot"
    text = UNIT.read_text().replace("/opt/supportbot/bin/supportbot", str(executable))
    (tmp_path / "supportbot.service").write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "supportbot.service")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
