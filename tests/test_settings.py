"""A wrong setting stops start-up with one line naming it, and exit code 2; never a traceback."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import Settings, SettingsError, load_settings

ROOT = Path(__file__).resolve().parent.parent


def _run(env: dict[str, str], *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.endswith(("_TOKEN", "_URL", "_SECRET"))}
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-m", "bot", *args], capture_output=True, text=True, env=clean, cwd=cwd, timeout=60
    )


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"DATABASE_URL": "mysql://nope"}, "DATABASE_URL"),
        ({"PLATFORMS": "console,irc"}, "PLATFORMS"),
        ({"STAFF_USER_IDS": "U123"}, "STAFF_USER_IDS"),
        ({"STAFF_CHANNEL": "slack"}, "STAFF_CHANNEL"),
        ({"STAFF_ROLE_IDS": "S0614TZR7"}, "STAFF_ROLE_IDS"),
        ({"WEB_PORT": "eighty"}, "WEB_PORT"),
        ({"SLACK_API_BASE": "slack.example"}, "SLACK_API_BASE"),
        ({"FIRST_RESPONSE_MINUTES": "urgent=soon"}, "FIRST_RESPONSE_MINUTES"),
        ({"PLATFORMS": "slack"}, "SLACK_BOT_TOKEN"),
    ],
)
def test_wrong_setting_names_itself_in_one_line(
    env: dict[str, str], names: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.count(names) == 1, message
    assert "\n" not in message


def test_cli_exits_2_with_one_clear_line(tmp_path: Path) -> None:
    result = _run({"PLATFORMS": "console,irc", "PYTHONPATH": str(ROOT)}, "run", "--console", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("supportbot: setting PLATFORMS:")
    assert "Traceback" not in result.stderr


def test_secrets_never_appear_in_errors(tmp_path: Path) -> None:
    secret = "xoxb-1234567890-abcdefghijkl-SECRET"
    result = _run(
        {"PLATFORMS": "slack", "SLACK_BOT_TOKEN": secret, "PYTHONPATH": str(ROOT)}, "run", cwd=tmp_path
    )
    assert result.returncode == 2
    assert "SLACK_SIGNING_SECRET" in result.stderr
    assert secret not in result.stderr + result.stdout


def _sample(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The sample knowledge base and components, on a database of its own."""
    return {
        "PYTHONPATH": str(ROOT),
        "MATCHER": "lexical",
        "WEB_ENABLED": "false",
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path}/bot.db",
        "KB_PATH": str(ROOT / "kb"),
        "COMPONENTS_FILE": str(ROOT / "components.yml"),
        **extra,
    }


@pytest.mark.parametrize("command", [("db", "current"), ("run", "--console")])
def test_a_malformed_database_url_is_one_line_and_exit_2(tmp_path: Path, command: tuple[str, ...]) -> None:
    url = "postgresql+asyncpg://admin:s3cretpw@db.example:notaport/app"
    result = _run(_sample(tmp_path, DATABASE_URL=url), *command, cwd=tmp_path)
    assert "s3cretpw" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr, result.stderr[-300:]
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "DATABASE_URL" in result.stderr


PG = "postgresql+asyncpg://support:s3cretpw@127.0.0.1"


@pytest.mark.parametrize(
    ("url", "said"),
    [
        (f"{PG}/app?foo=bar", "unknown parameter 'foo'"),
        (f"{PG}/app?sslmode=sometimes", "sslmode must be one of disable, allow, prefer, require"),
        (f"{PG}/app?ssl=true", "ssl must be one of disable, allow, prefer, require"),
        (f"{PG}/app?ssl=require&sslmode=require", "give ssl or sslmode, not both"),
        (f"{PG}:99999/app", "port 99999 is not between 1 and 65535"),
        (f"{PG}:0/app", "port 0 is not between 1 and 65535"),
        (f"{PG}/app?prepared_statement_cache_size=-1", "prepared_statement_cache_size must be a whole"),
        (f"{PG}/app?prepared_statement_cache_size=lots", "prepared_statement_cache_size must be a whole"),
        (f"{PG}/app?target_session_attrs=writable", "target_session_attrs must be one of any, primary"),
        (
            f"{PG}/app?sslmode=sometimes",
            "sslmode must be one of disable, allow, prefer, require, verify-ca, verify-full, not 'sometimes'",
        ),
        (
            f"{PG}/app?ssl=require&ssl=disable",
            "ssl must be one of disable, allow, prefer, require, verify-ca, verify-full, not given twice",
        ),
        (
            f"{PG}/app?target_session_attrs=any&target_session_attrs=any",
            "target_session_attrs must be one of any, primary, standby, prefer-standby, read-write, "
            "read-only, not given twice",
        ),
        (
            f"{PG}/app?prepared_statement_cache_size=0&prepared_statement_cache_size=0",
            "prepared_statement_cache_size must be a whole number, 0 or more, not given twice",
        ),
    ],
)
def test_a_database_url_the_driver_would_refuse_is_named_in_one_line(
    url: str, said: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SettingsError) as caught:
        load_settings(database_url=url)
    message = str(caught.value)
    assert message.startswith("DATABASE_URL: ") and said in message, message
    assert "s3cretpw" not in message and "\n" not in message


@pytest.mark.parametrize(
    "query",
    [
        "?sslmode=require",
        "?sslmode=verify-full",
        "?ssl=prefer",
        "?host=/var/run/postgresql",
        "",
        # Behind PgBouncer in transaction mode, prepared statements must be off (SQLAlchemy takes it).
        "?prepared_statement_cache_size=0",
        "?sslmode=require&prepared_statement_cache_size=100",
        # With several hosts, the one to use (asyncpg takes it, as libpq does).
        "?host=db1,db2&target_session_attrs=read-write",
        "?target_session_attrs=prefer-standby",
    ],
)
def test_the_database_urls_hosting_providers_hand_out_are_taken(
    query: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    url = f"{PG}:5432/app{query}"
    assert load_settings(database_url=url).database_url == url


@pytest.mark.parametrize(
    "command", [("db", "upgrade"), ("db", "current"), ("report", "--out", "r.md"), ("run", "--console")]
)
@pytest.mark.parametrize("url", [f"{PG}/app?foo=bar", f"{PG}:99999/app"])
def test_every_command_refuses_such_a_database_url_in_one_line_and_exit_2(
    tmp_path: Path, command: tuple[str, ...], url: str
) -> None:
    result = _run(_sample(tmp_path, DATABASE_URL=url), *command, cwd=tmp_path)
    assert "Traceback" not in result.stderr, result.stderr[-300:]
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("supportbot: setting DATABASE_URL: "), line
    assert "s3cretpw" not in result.stderr + result.stdout


IN_MEMORY = [
    "sqlite+aiosqlite:///:memory:",
    "sqlite+aiosqlite://",
    "sqlite+aiosqlite:///",
    "sqlite+aiosqlite:///file:tickets?mode=memory&cache=shared&uri=true",
]


@pytest.mark.parametrize("url", IN_MEMORY)
def test_an_in_memory_database_is_refused_as_losing_every_ticket(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SettingsError) as caught:
        load_settings(database_url=url)
    assert str(caught.value) == (
        "DATABASE_URL: an in-memory database would lose every ticket at exit, and each connection "
        "would see its own empty one; give a file path (e.g. sqlite+aiosqlite:///./data/supportbot.db)"
    )


@pytest.mark.parametrize("command", [("db", "upgrade"), ("run", "--console")])
def test_run_and_db_upgrade_refuse_an_in_memory_database_in_one_line(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    result = _run(_sample(tmp_path, DATABASE_URL="sqlite+aiosqlite:///:memory:"), *command, cwd=tmp_path)
    assert "Traceback" not in result.stderr, result.stderr[-300:]
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("supportbot: setting DATABASE_URL: an in-memory database"), line


def test_a_dotenv_that_is_not_utf8_is_one_line_and_exit_2(tmp_path: Path) -> None:
    (tmp_path / ".env").write_bytes(b"LOG_LEVEL=INFO\nSTAFF_CHANNEL=console:caf\xe9\n")
    result = _run(_sample(tmp_path), "kb", "check", cwd=tmp_path)
    assert "Traceback" not in result.stderr, result.stderr[-300:]
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and ".env" in result.stderr


def test_dotenv_is_read_and_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("WEB_PORT=9999\nLOG_LEVEL=debug\n")
    monkeypatch.setenv("WEB_PORT", "7777")
    settings = load_settings()
    assert settings.web_port == 7777
    assert settings.log_level == "DEBUG"


def test_a_dotenv_saved_with_a_byte_order_mark_sets_its_first_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Notepad's "UTF-8 with BOM": python-dotenv would read the first name as "\ufeffLOG_LEVEL".
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_bytes(b"\xef\xbb\xbfLOG_LEVEL=debug\nWEB_PORT=9999\n")
    settings = load_settings()
    assert settings.log_level == "DEBUG"
    assert settings.web_port == 9999


def test_platforms_default_to_what_has_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_settings().active_platforms == ["console"]
    monkeypatch.setenv("DISCORD_TOKEN", "abc")
    assert load_settings().active_platforms == ["discord"]


def test_env_example_documents_every_setting() -> None:
    example = (ROOT / ".env.example").read_text()
    documented = {line.split("=", 1)[0] for line in example.splitlines() if line and not line.startswith("#")}
    assert documented == {name.upper() for name in Settings.model_fields}
    lines = example.splitlines()
    for index, line in enumerate(lines):
        if line and not line.startswith("#"):
            # A setting, or a group of settings, sits right under the comment that explains it.
            above = index - 1
            while lines[above] and not lines[above].startswith("#"):
                above -= 1
            assert lines[above].startswith("#"), f"{line} has no comment above it"


@pytest.mark.parametrize(
    "bad",
    [
        "slack:C0STAFF",  # a channel, not someone to ping
        "slack:u024be7lh",
        "slack:@S0614TZR7",  # a group marked as a person
        "slack:&U024BE7LH",  # a person marked as a group
        "discord:oncall-team",
        "discord:@80351110224678912x",
        "discord:99999999999999999999",  # past 64 bits
    ],
)
def test_an_oncall_id_that_cannot_ping_is_named_in_one_line(
    bad: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ONCALL_MENTIONS", f"slack:S0ONCALL,{bad}")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith("ONCALL_MENTIONS: ") and message.count("ONCALL_MENTIONS") == 1, message
    assert f"'{bad}'" in message and "slack:S0ONCALL" not in message
    assert "\n" not in message


def test_oncall_mentions_take_slack_people_and_groups_and_discord_users_and_roles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    good = "slack:U024BE7LH,slack:W0123ABCD,slack:S0614TZR7,slack:@U0SAM,slack:&S0ONCALL,"
    good += "discord:1122334455667788,discord:@80351110224678912,discord:&998877,console:oncall"
    monkeypatch.setenv("ONCALL_MENTIONS", good)
    assert load_settings().oncall_mentions == good.split(",")


def test_every_setting_is_documented_in_env_example_and_nothing_else_is() -> None:
    example = (ROOT / ".env.example").read_text(encoding="utf-8")
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]+)=", example, re.MULTILINE))

    assert documented == {name.upper() for name in Settings.model_fields}


@pytest.mark.parametrize("command", [("kb", "check"), ("db", "current"), ("run", "--console")])
def test_a_dotenv_line_without_equals_is_one_line_and_exit_2(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    # python-dotenv only warns ("could not parse statement") and the setting silently keeps its default.
    (tmp_path / ".env").write_text("# comment\n\nANSWER_PRECISION 0.99\nLOG_LEVEL=INFO\n", encoding="utf-8")
    result = _run(_sample(tmp_path), *command, cwd=tmp_path)
    assert "Traceback" not in result.stderr, result.stderr[-300:]
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["supportbot: .env:3: not NAME=value"]


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("LOG_LEVEL=INFO\nANSWER_PRECISION\n", 2),
        ('STAFF_CHANNEL="console:a\nb"\n\n\n  ANSWER_PRECISION 0.99\n', 5),
        ("export LOG_LEVEL=INFO\n# note\n\nMATCHER=lexical  # inline\nANSWER_THRESHOLD=\n", None),
    ],
)
def test_the_first_dotenv_line_that_sets_nothing_is_named(
    tmp_path: Path, text: str, line: int | None
) -> None:
    from bot.envfile import problem

    (tmp_path / ".env").write_text(text, encoding="utf-8")
    expected = None if line is None else f"{tmp_path / '.env'}:{line}: not NAME=value"
    assert problem(tmp_path / ".env") == expected


def test_the_env_init_writes_and_env_example_set_only_settings(tmp_path: Path) -> None:
    from bot.envfile import misspelt, problem
    from bot.init_site import init_site

    init_site(tmp_path)
    assert problem(tmp_path / ".env") is None
    assert problem(ROOT / ".env.example") is None
    settings = {name.upper() for name in Settings.model_fields}
    assert misspelt(tmp_path / ".env", settings) == misspelt(ROOT / ".env.example", settings) == []


def test_a_dotenv_name_a_letter_away_from_a_setting_is_warned_about_and_the_rest_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`WEB_PROT=8081` was ignored without a word: the web page stayed on 8080. Names of other tools
    (a docker-compose .env) are no typo of ours and pass in silence."""
    from bot.cli import main

    monkeypatch.chdir(tmp_path)
    for name in [n for n in os.environ if n in {"DATABASE_URL", "WEB_PORT", "SLACK_BOT_TOKEN"}]:
        monkeypatch.delenv(name)
    (tmp_path / ".env").write_text(
        f"DATABASE_URL=sqlite+aiosqlite:///{tmp_path}/bot.db\n"
        "# the web page\nWEB_PROT=8081\nPOSTGRES_PASSWORD=x\nslack_token=xoxb-1\n",
        encoding="utf-8",
    )

    assert main(["db", "upgrade"]) == 0

    warned = [line for line in capsys.readouterr().err.splitlines() if "warning:" in line]
    assert warned == [
        "supportbot: .env:3: warning: WEB_PROT is not a setting (ignored); did you mean WEB_PORT?",
        "supportbot: .env:5: warning: SLACK_TOKEN is not a setting (ignored); "
        "did you mean SLACK_APP_TOKEN or SLACK_BOT_TOKEN?",
    ]
    assert (tmp_path / "bot.db").is_file()
