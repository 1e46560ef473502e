"""Settings from the environment and `.env`; `.env.example` documents every field."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.insights.schedule import Schedule, parse_schedule, parse_zone
from bot.tickets.model import PRIORITIES


class SettingsError(Exception):
    """A setting is wrong. The message is one line that names the setting and what to do."""


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


class SlackMode(StrEnum):
    HTTP = "http"
    SOCKET = "socket"


_PLATFORMS = ("console", "slack", "discord")
_HEX_COLOUR = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})")


def _split_list(value: object) -> object:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def _is_number(text: str) -> bool:
    """ASCII digits only: `int()` also reads '١٥' and str.isdigit() also accepts '²', which it cannot."""
    return text.isascii() and text.isdigit()


_USER_EXAMPLE = "slack:U024BE7LH or discord:80351110224678912"
_ROLE_EXAMPLE = "slack:S0614TZR7 or discord:1122334455667788"
_CHANNEL_EXAMPLE = "slack:C0STAFF or discord:123456789012345678"


def _check_platform_refs(values: list[str], example: str) -> list[str]:
    """Staff ids and roles are written `platform:id` so one list serves every platform. The error
    leaves out the setting's name: load_settings puts it in front."""
    for item in values:
        platform, sep, ident = item.partition(":")
        if not sep or platform not in _PLATFORMS or not ident or " " in ident:
            raise ValueError(f"'{item}' is not platform:id (e.g. {example})")
    return values


# Who ONCALL_MENTIONS may ping (bot.core.staff.oncall_mention reads them): on Slack a person (U…, W…)
# or a user group (S…), optionally marked `@` (person) or `&` (group); on Discord a user or role
# snowflake, a 64-bit number, with the same optional markers. A malformed id would render as text
# that pings nobody, so an escalation would go unnoticed.
_SLACK_MENTION = re.compile(r"@?[UW][A-Z0-9]{2,}|&?S[A-Z0-9]{2,}")
_DISCORD_MENTION = re.compile(r"[@&]?([0-9]{1,20})")
_ONCALL_EXAMPLE = (
    "slack:S0614TZR7, slack:U024BE7LH, discord:1122334455667788 (a role) or discord:@80351110224678912"
)


def _check_oncall(values: list[str]) -> list[str]:
    _check_platform_refs(values, _ONCALL_EXAMPLE)
    for item in values:
        platform, _, ident = item.partition(":")
        if platform == "slack" and not _SLACK_MENTION.fullmatch(ident):
            raise ValueError(f"'{item}' is not a Slack user (U…, W…) or user group (S…) id")
        if platform == "discord":
            snowflake = _DISCORD_MENTION.fullmatch(ident)
            if not snowflake or int(snowflake.group(1)) >= 2**64:
                raise ValueError(
                    f"'{item}' is not a Discord user or role id (a number; discord:@id for a person)"
                )
    return values


# What a PostgreSQL URL may say after `?`. The driver, asyncpg, takes every query parameter as an
# argument of its connect(), so any other name would stop the bot at its first connection.
# `sslmode` is libpq's name, the one hosting providers hand out; storage.db passes it to asyncpg as
# `ssl`, whose string values are libpq's modes with libpq's meaning (root.crt and all). `host` is
# a Unix socket's folder, or several servers; `target_session_attrs` picks among several (asyncpg's
# SessionAttribute values, libpq's too). `prepared_statement_cache_size` is SQLAlchemy's own (its
# asyncpg dialect takes it out of the URL): 0 turns prepared statements off, as PgBouncer in
# transaction mode needs.
_SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
_SESSION_ATTRIBUTES = ("any", "primary", "standby", "prefer-standby", "read-write", "read-only")
_POSTGRES_QUERY = ("ssl", "sslmode", "host", "target_session_attrs", "prepared_statement_cache_size")


def _one_of(choices: tuple[str, ...]) -> tuple[Callable[[str], bool], str]:
    return choices.__contains__, f"one of {', '.join(choices)}"


# What a checked parameter must be: whether a value fits, and how an error says what fits.
_POSTGRES_VALUES: dict[str, tuple[Callable[[str], bool], str]] = {
    "ssl": _one_of(_SSL_MODES),
    "sslmode": _one_of(_SSL_MODES),
    "target_session_attrs": _one_of(_SESSION_ATTRIBUTES),
    "prepared_statement_cache_size": (
        lambda value: value.isascii() and value.isdigit(),
        "a whole number, 0 or more",
    ),
}


def _check_postgres_query(query: dict[str, str | tuple[str, ...]]) -> None:
    """Errors name the parameter, never its value, except a mode's (a password may be in the URL)."""
    for name, value in query.items():
        if name not in _POSTGRES_QUERY:
            raise ValueError(
                f"unknown parameter '{name}' (a PostgreSQL URL may give ssl or sslmode, host, "
                "target_session_attrs and prepared_statement_cache_size)"
            )
        if name not in _POSTGRES_VALUES:
            continue  # host: any folder or list of servers
        fits, wanted = _POSTGRES_VALUES[name]
        if not isinstance(value, str) or not fits(value):
            shown = f"'{value}'" if isinstance(value, str) else "given twice"
            raise ValueError(f"{name} must be {wanted}, not {shown}")
    if "ssl" in query and "sslmode" in query:
        raise ValueError("give ssl or sslmode, not both")


def _in_memory(database: str | None, mode: object) -> bool:
    """Whether a SQLite URL's database lives in memory: no path (`sqlite+aiosqlite://`, `...///`),
    `:memory:`, or a `file:` URI opened with mode=memory."""
    return not database or database == ":memory:" or database.startswith("file::memory:") or mode == "memory"


CommaList = Annotated[list[str], NoDecode]


class Settings(BaseSettings):
    # An empty value (`ANSWER_THRESHOLD=`, as .env.example writes every optional one) means "not set".
    # utf-8-sig drops the byte-order mark some Windows editors write, which python-dotenv before 1.2.3
    # would read as part of the first name, so the first setting went unread.
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8-sig",
        extra="ignore",
        case_sensitive=False,
        env_ignore_empty=True,
    )

    # Core
    database_url: str = "sqlite+aiosqlite:///./data/supportbot.db"
    platforms: CommaList = Field(default_factory=list)
    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.TEXT
    workers: int = Field(default=8, ge=1, le=256)
    web_enabled: bool = True
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=8080, ge=0, le=65535)
    public_url: str = ""
    """Empty: the web server's own address (WEB_HOST, WEB_PORT), so changing the port moves links."""
    stop_grace_seconds: float = Field(default=20.0, gt=0, le=3600)
    sentry_dsn: SecretStr | None = None

    # People
    staff_user_ids: CommaList = Field(default_factory=list)
    staff_role_ids: CommaList = Field(default_factory=list)
    staff_channel: str = "console:staff"
    oncall_mentions: CommaList = Field(default_factory=list)

    # Knowledge base and matching
    kb_path: Path = Path("kb")
    matcher: str = "auto"
    answer_precision: float = Field(default=0.95, ge=0.5, le=0.999)
    escalate_unknown: float = Field(default=0.95, ge=0.5, le=0.999)
    answer_threshold: float | None = Field(default=None, ge=0, le=1)
    clarify_threshold: float | None = Field(default=None, ge=0, le=1)

    # Tickets
    first_response_minutes: CommaList = Field(
        default_factory=lambda: ["urgent=15", "high=60", "normal=240", "low=1440"]
    )
    close_confirm_hours: float = Field(default=72, gt=0)
    repeat_question_minutes: float = Field(default=10, gt=0)
    dedupe_retention_hours: float = Field(default=168, gt=0)
    # Seconds a process owns a Slack request it stored before acknowledging; if it dies before the
    # request is handled, another process (or it, restarted) replays the request after this long.
    # Also how long it has to post an event's committed replies before another process does.
    inbox_lease_seconds: float = Field(default=30.0, ge=1)
    # Days to keep what people wrote (questions, transcripts); 0 (or empty) keeps it forever.
    data_retention_days: int = Field(default=0, ge=0)

    # Reports
    report_schedule: str = ""
    report_timezone: str = "UTC"
    report_dir: Path = Path("data/reports")

    # Status
    components_file: Path = Path("components.yml")
    discord_global_rate: float = Field(default=48.0, gt=0, le=50)
    broadcast_lease_seconds: float = Field(default=30.0, ge=1)

    # The public status page
    status_page_name: str = Field(default="Status", min_length=1, max_length=80)
    status_page_logo_url: str | None = None
    status_page_accent: str = "#3b6fd8"
    status_page_templates: Path | None = None

    # Slack
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_mode: SlackMode = SlackMode.HTTP
    slack_api_base: str = "https://slack.com/api/"
    slack_workspace_rate: float = Field(default=5.0, gt=0)

    # Discord
    discord_token: SecretStr | None = None
    discord_api_base: str = "https://discord.com/api/v10"
    discord_gateway_url: str = "wss://gateway.discord.gg/"
    discord_community_channel_ids: CommaList = Field(default_factory=list)
    discord_dev_guild_id: str | None = None
    discord_shard_count: int | None = Field(default=None, ge=1)
    discord_shard_ids: CommaList = Field(default_factory=list)
    discord_ticket_forum_id: str | None = None

    @field_validator(
        "platforms",
        "staff_user_ids",
        "staff_role_ids",
        "oncall_mentions",
        "first_response_minutes",
        "discord_community_channel_ids",
        "discord_shard_ids",
        mode="before",
    )
    @classmethod
    def _lists(cls, value: object) -> object:
        return _split_list(value)

    @field_validator("platforms")
    @classmethod
    def _known_platforms(cls, value: list[str]) -> list[str]:
        for item in value:
            if item not in _PLATFORMS:
                raise ValueError(f"unknown platform '{item}'; choose from {', '.join(_PLATFORMS)}")
        return value

    @field_validator("staff_user_ids")
    @classmethod
    def _staff_ids(cls, value: list[str]) -> list[str]:
        return _check_platform_refs(value, _USER_EXAMPLE)

    @field_validator("staff_role_ids")
    @classmethod
    def _staff_roles(cls, value: list[str]) -> list[str]:
        return _check_platform_refs(value, _ROLE_EXAMPLE)

    @field_validator("oncall_mentions")
    @classmethod
    def _oncall(cls, value: list[str]) -> list[str]:
        return _check_oncall(value)

    @field_validator("staff_channel")
    @classmethod
    def _staff_channel(cls, value: str) -> str:
        _check_platform_refs([value], _CHANNEL_EXAMPLE)
        return value

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not value.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError("use sqlite+aiosqlite:///path/to.db or postgresql+asyncpg://user@host:5432/db")
        from sqlalchemy.engine import make_url  # the parser the engine will use

        try:
            url = make_url(value)
            port = url.port  # a port that is not a number fails only when read
        except (ValueError, TypeError):
            # Never echo the URL: it may hold a password.
            raise ValueError(
                "is not a valid database URL (check the port and any special characters in the "
                "password, which must be %-encoded)"
            ) from None
        if port is not None and not 1 <= port <= 65535:
            raise ValueError(f"port {port} is not between 1 and 65535")
        if url.drivername.startswith("postgresql"):
            _check_postgres_query(dict(url.query))
        elif _in_memory(url.database, url.query.get("mode")):
            raise ValueError(
                "an in-memory database would lose every ticket at exit, and each connection would "
                "see its own empty one; give a file path (e.g. sqlite+aiosqlite:///./data/supportbot.db)"
            )
        return value

    @field_validator("sentry_dsn")
    @classmethod
    def _sentry_dsn(cls, value: SecretStr | None) -> SecretStr | None:
        """Parsed here by sentry-sdk's own parser, or `run` would stop on it with a traceback. The
        message never quotes the DSN (its key is a secret), nor sentry-sdk's reason, which does.
        Without sentry-sdk nothing can parse it: `run` says to install the extra first."""
        if value is None:
            return None
        try:
            from sentry_sdk.utils import Dsn
        except ImportError:
            return value
        try:
            Dsn(value.get_secret_value())
        except ValueError:  # sentry-sdk's BadDsn, or a port that is not a number
            raise ValueError(
                "is not a Sentry DSN; copy it from your Sentry project's Client Keys "
                "(https://<key>@<host>/<project number>)"
            ) from None
        return value

    @field_validator("slack_api_base", "discord_api_base", "public_url")
    @classmethod
    def _http_url(cls, value: str, info: ValidationInfo) -> str:
        if info.field_name == "public_url" and not value:
            return value
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"'{value}' is not an http(s) URL")
        return value

    @field_validator("discord_gateway_url")
    @classmethod
    def _ws_url(cls, value: str) -> str:
        if not value.startswith(("ws://", "wss://")):
            raise ValueError(f"'{value}' is not a ws(s) URL")
        return value

    @field_validator("matcher")
    @classmethod
    def _matcher(cls, value: str) -> str:
        if value not in ("auto", "lexical", "semantic"):
            raise ValueError("choose auto, lexical or semantic")
        return value

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        if value.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ValueError("choose DEBUG, INFO, WARNING or ERROR")
        return value.upper()

    @field_validator("first_response_minutes")
    @classmethod
    def _targets(cls, value: list[str]) -> list[str]:
        for item in value:
            priority, sep, minutes = item.partition("=")
            if not sep or priority not in PRIORITIES or not _is_number(minutes):
                raise ValueError(f"'{item}' is not priority=minutes (e.g. urgent=15,normal=240)")
        return value

    @field_validator("report_timezone")
    @classmethod
    def _report_timezone(cls, value: str) -> str:
        parse_zone(value)
        return value.strip()

    @field_validator("report_schedule")
    @classmethod
    def _report_schedule(cls, value: str) -> str:
        parse_schedule(value, parse_zone("UTC"))
        return value

    @field_validator("discord_shard_ids")
    @classmethod
    def _shard_ids(cls, value: list[str]) -> list[str]:
        for item in value:
            if not _is_number(item):
                raise ValueError(f"'{item}' is not a shard number (e.g. 0,1)")
        return value

    @field_validator("discord_dev_guild_id", "discord_ticket_forum_id")
    @classmethod
    def _discord_id(cls, value: str | None) -> str | None:
        if value and not _is_number(value):
            raise ValueError(f"'{value}' is not a Discord id (digits, e.g. 80351110224678912)")
        return value

    @field_validator("status_page_logo_url")
    @classmethod
    def _logo_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parsed = urlsplit(value)
        if parsed.scheme not in ("http", "https") or not parsed.netloc or any(c.isspace() for c in value):
            raise ValueError(f"'{value}' is not an http(s) URL (e.g. https://example.com/logo.png)")
        return value

    @field_validator("status_page_accent")
    @classmethod
    def _accent(cls, value: str) -> str:
        # Only a hex colour: the value is written into the page's CSS, where escaping does not help.
        if not _HEX_COLOUR.fullmatch(value):
            raise ValueError(f"'{value}' is not a colour; write #RRGGBB (e.g. #3b6fd8)")
        return value.lower()

    @field_validator("status_page_templates")
    @classmethod
    def _templates_folder(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_dir():
            raise ValueError(f"'{value}' is not a folder (templates that replace the shipped ones)")
        return value

    @model_validator(mode="after")
    def _platform_credentials(self) -> Settings:
        if "slack" in self.platforms:
            if self.slack_bot_token is None:
                raise ValueError("SLACK_BOT_TOKEN is required when PLATFORMS includes slack")
            if self.slack_mode is SlackMode.HTTP and self.slack_signing_secret is None:
                raise ValueError("SLACK_SIGNING_SECRET is required in SLACK_MODE=http")
            if self.slack_mode is SlackMode.SOCKET and self.slack_app_token is None:
                raise ValueError("SLACK_APP_TOKEN (xapp-...) is required in SLACK_MODE=socket")
        if "discord" in self.platforms and self.discord_token is None:
            raise ValueError("DISCORD_TOKEN is required when PLATFORMS includes discord")
        return self

    @property
    def active_platforms(self) -> list[str]:
        """PLATFORMS when set; otherwise every platform with credentials, or the console."""
        if self.platforms:
            return list(self.platforms)
        found = []
        if self.slack_bot_token is not None:
            found.append("slack")
        if self.discord_token is not None:
            found.append("discord")
        return found or ["console"]

    @property
    def first_response_targets(self) -> dict[str, int]:
        targets = {"urgent": 15, "high": 60, "normal": 240, "low": 1440}
        for item in self.first_response_minutes:
            priority, _, minutes = item.partition("=")
            targets[priority] = int(minutes)
        return targets

    @property
    def report_zone(self) -> ZoneInfo:
        return parse_zone(self.report_timezone)

    @property
    def digest_schedule(self) -> Schedule | None:
        """When the weekly digest goes out (None: REPORT_SCHEDULE is empty, no digest)."""
        return parse_schedule(self.report_schedule, self.report_zone)

    @property
    def status_page_url(self) -> str:
        """The status page's address as links show it: PUBLIC_URL with one trailing slash, or the web
        server's own address (a server listening on every interface is reached on this machine; on ::1
        when that is IPv6's, since asyncio binds `::` for IPv6 alone)."""
        if self.public_url:
            return self.public_url.rstrip("/") + "/"
        host = self.web_host
        if _every_interface(host):
            host = "::1" if ":" in host else "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.web_port}/"

    @property
    def status_link(self) -> str | None:
        """Where answers and incident notices send customers: the status page, or None when nothing
        serves one (WEB_ENABLED=false and no PUBLIC_URL), rather than a link that leads nowhere."""
        return self.status_page_url if self.public_url or self.web_enabled else None


def _every_interface(host: str) -> bool:
    """Empty, 0.0.0.0, or IPv6's unspecified address however it is written (::, ::0, 0:0:...:0)."""
    try:
        return not host or ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False  # a host name


def load_settings(**overrides: object) -> Settings:
    """Settings, or SettingsError with one line naming the first wrong setting."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except UnicodeDecodeError:
        raise SettingsError(".env: not UTF-8 text; save it as UTF-8") from None
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error.get("loc", ())) or "settings"
        message = error.get("msg", "invalid").removeprefix("Value error, ")
        # One line even when it quotes a value with line breaks in it (a quoted .env value can).
        message = "\\n".join(message.splitlines())
        if where == "settings":
            raise SettingsError(message) from None
        raise SettingsError(f"{where.upper()}: {message}") from None
