"""Every botops setting, typed, read from the environment and ``.env``; secrets stay ``SecretStr``.

One :class:`Settings` object is built at the entry point (:func:`load_settings`) and passed down;
nothing else reads ``os.environ``. A wrong value never produces a traceback: :class:`SettingsError`
lists each problem in one line that names the variable and says how to fix it. ``.env.example`` is
generated from this model (:func:`render_env_example`), so the two cannot drift apart.
"""

from __future__ import annotations

import datetime
import ipaddress
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from botops.errors import ConfigurationError
from botops.redaction import masked_url

__all__ = [
    "ENV_FILE",
    "Settings",
    "SettingsError",
    "check_env_file_permissions",
    "load_settings",
    "render_env_example",
    "render_settings_table",
]

ENV_FILE = Path(".env")
Environment = Literal["development", "production"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
PrivilegedIntent = Literal["members", "message_content", "presences"]


def _default_privileged_intents() -> list[PrivilegedIntent]:
    # Message content lets owners use `!reload` in a guild; members and presences are opt-in.
    return ["message_content"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the configuration: the variable and what to do about it."""

    variable: str
    message: str

    def __str__(self) -> str:
        return f"{self.variable}: {self.message}"


class SettingsError(ConfigurationError):
    """The configuration has one or more problems; each names its variable and the fix."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__(problems[0].variable, "\n".join(str(p) for p in problems))


def _split_ids(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    """The bot's configuration. Each field is an environment variable of the same name in capitals."""

    model_config = SettingsConfigDict(
        env_file=ENV_FILE,
        env_file_encoding="utf-8",
        extra="ignore",
        hide_input_in_errors=True,
        validate_default=True,
    )

    environment: Environment = Field(
        "development",
        description="development or production; production refuses the sandbox, never migrates by itself "
        "and insists on a private .env",
    )

    # -- Discord ---------------------------------------------------------------------------------------
    discord_token: SecretStr | None = Field(
        None,
        description="The bot token from the Discord developer portal (Bot page). Without it, "
        "`make run` uses the offline sandbox",
    )
    discord_api_base: str | None = Field(
        None, description="Development and tests only: REST base of the sandbox (`botops sandbox` prints it)"
    )
    discord_gateway_url: str | None = Field(
        None,
        description="Development and tests only: gateway URL of the sandbox (`botops sandbox` prints it)",
    )
    discord_dev_guild_id: int | None = Field(
        None,
        description="In development, slash commands are synced to this guild only, so they appear at once",
    )
    owner_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list,
        description="Comma-separated user ids allowed to use owner tools such as /reload; empty means the "
        "application's owner",
    )
    privileged_intents: Annotated[list[PrivilegedIntent], NoDecode] = Field(
        default_factory=_default_privileged_intents,
        description="Comma-separated privileged intents to request (members, message_content, presences); "
        "each must be enabled on the developer portal's Bot page",
    )
    command_prefix: str = Field(
        "!", min_length=1, max_length=5, description="Prefix of the owner's text commands"
    )
    extensions_package: str = Field(
        "cogs",
        description="Package whose modules are loaded as extensions; modules starting with _ are helpers",
    )
    guild_ready_timeout: float = Field(
        2.0, ge=0, le=60, description="Seconds discord.py waits for guilds after READY before on_ready"
    )
    heartbeat_timeout: float = Field(
        60.0, gt=0, le=600, description="Seconds without a gateway message before the connection is restarted"
    )
    shard_count: int | None = Field(
        None, ge=1, description="Total shards across all processes; empty: Discord's recommendation"
    )
    shard_ids: Annotated[list[int], NoDecode] = Field(
        default_factory=list, description="Comma-separated shard ids this process runs; empty: all of them"
    )

    # -- database --------------------------------------------------------------------------------------
    database_url: SecretStr = Field(
        SecretStr("sqlite+aiosqlite:///data/bot.db"),
        description="sqlite+aiosqlite:///path or postgresql+asyncpg://user:password@host/db",
    )
    database_auto_migrate: bool | None = Field(
        None, description="Migrate the schema at start-up; empty: yes in development, no in production"
    )

    # -- levels --------------------------------------------------------------------------------------------
    xp_flush_interval: float = Field(
        5.0,
        gt=0,
        le=60,
        description="Seconds between XP writes to the database; a crash loses at most this much",
    )
    xp_flush_max_pending: int = Field(
        5000,
        ge=1,
        le=1_000_000,
        description="Pending member rows that trigger an XP write before the interval",
    )
    xp_admin_max_change: int = Field(
        1000,
        ge=0,
        le=1_000_000,
        description="Most XP an administrator may set, add or remove with one /xp command",
    )
    guild_settings_ttl: float = Field(
        300.0,
        ge=0,
        le=86400,
        description="Seconds a guild's settings are cached; changes through the bot show at once",
    )

    # -- observability -------------------------------------------------------------------------------
    http_enabled: bool = Field(
        True, description="Serve /livez, /readyz, /status and /metrics from the bot process"
    )
    http_host: str = Field(
        "127.0.0.1",
        description="Address of the HTTP server; anything but loopback needs HTTP_TOKEN in production",
    )
    http_port: int = Field(8080, ge=0, le=65535, description="Port of the HTTP server; 0 picks a free one")
    http_token: SecretStr | None = Field(
        None,
        description="Bearer token that /readyz, /status and /metrics require (Authorization: Bearer ...); "
        "/livez stays open",
    )
    sentry_dsn: SecretStr | None = Field(
        None, description="Sentry DSN; empty: errors are not sent to Sentry (the logs still have them)"
    )
    sentry_traces_sample_rate: float = Field(
        0.05, ge=0, le=1, description="Share of commands traced in Sentry (0 to 1)"
    )

    # -- logging ---------------------------------------------------------------------------------------
    log_level: LogLevel | None = Field(
        None, description="Lowest level logged; empty: DEBUG in development, INFO in production"
    )
    log_dir: Path = Field(Path("logs"), description="Folder of the log files")
    log_max_bytes: int = Field(10 * 1024 * 1024, ge=1024, description="Size at which a log file is rotated")
    log_backup_count: int = Field(5, ge=0, le=100, description="How many rotated files of each log are kept")
    log_format: Literal["text", "json"] = Field("text", description="text for people, json for log shippers")

    # -- backups ---------------------------------------------------------------------------------------
    backup_dir: Path = Field(
        Path("backups"), description="Folder of the database backups (`botops backup`); kept at mode 0700"
    )
    backup_time: datetime.time | None = Field(
        datetime.time(3, 0),
        description="Local time of the bot's daily backup (HH:MM), followed by pruning; empty: no "
        "backups by the bot (schedule `botops backup create` instead)",
    )
    backup_keep_daily: int = Field(7, ge=0, le=1000, description="Pruning keeps the newest backup of N days")
    backup_keep_weekly: int = Field(4, ge=0, le=1000, description="... and of N ISO weeks")
    backup_keep_monthly: int = Field(6, ge=0, le=1000, description="... and of N months")

    # -- process ---------------------------------------------------------------------------------------
    state_dir: Path = Field(
        Path("data"),
        description="Folder of the running bot's lock (one bot per settings) and its control details",
    )
    session_start_reserve: int = Field(
        50,
        ge=0,
        le=1000,
        description="Refuse to log in while Discord allows fewer session starts than this today "
        "(Discord resets the token after 1000 in a day)",
    )

    # -- deploys ---------------------------------------------------------------------------------------
    deploy_test_command: str = Field(
        "make test", description="What `botops preflight` runs as the tests; empty: no tests"
    )
    deploy_restart: str = Field(
        "",
        description="How a deploy restarts the bot: systemd:<unit>, supervisor:<program>[@<config>] or "
        "command:<shell command>; empty: deploys that need a restart are refused",
    )
    deploy_ready_timeout: float = Field(
        120.0, gt=0, le=3600, description="Seconds a deployed bot has to answer /readyz with the new commit"
    )
    deploy_watch_seconds: float = Field(
        30.0, ge=0, le=3600, description="Seconds after readiness during which errors count against a deploy"
    )
    deploy_max_errors: int = Field(
        5, ge=0, le=100_000, description="Errors in the watch window that fail a deploy and roll it back"
    )
    deploy_language: Literal["en", "de"] = Field(
        "en", description="Language of the deploy report (DEPLOYMENT FERTIG / DEPLOYMENT FINISHED)"
    )

    @field_validator("owner_ids", "shard_ids", "privileged_intents", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        return _split_ids(value)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator(
        "discord_token",
        "discord_api_base",
        "discord_gateway_url",
        "log_level",
        "http_token",
        "sentry_dsn",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if value == "" else value

    @field_validator("backup_time", mode="before")
    @classmethod
    def _clock_time(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = value.strip()
            if value == "":
                return None
            if len(value) == 4 and value[1] == ":":  # 3:00 as people write it
                return f"0{value}"
        return value

    @field_validator("sentry_dsn")
    @classmethod
    def _sentry_dsn_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        # The checks the SDK makes at start-up, made here so a typo is a settings problem, not a crash.
        # The message never quotes the DSN: it is a key.
        parts = urlsplit(value.get_secret_value())
        project = parts.path.rstrip("/").rsplit("/", 1)[-1]
        if (
            parts.scheme not in ("http", "https")
            or not parts.username
            or not parts.hostname
            or not project.isdigit()
        ):
            raise ValueError(
                "must look like https://<public key>@<host>/<project id>: copy it from the Sentry "
                "project's settings, Client Keys (DSN)"
            )
        return value

    @field_validator("database_url")
    @classmethod
    def _supported_database(cls, value: SecretStr) -> SecretStr:
        url = value.get_secret_value()
        if not url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
            raise ValueError(
                "must start with sqlite+aiosqlite:// or postgresql+asyncpg:// "
                "(for example sqlite+aiosqlite:///data/bot.db)"
            )
        # Read it as the engine will, so a URL that passes here cannot fail at the first connection.
        # The messages never quote the URL: it may hold a password.
        try:
            parsed = make_url(url)
        except (ArgumentError, ValueError):
            raise ValueError(
                "cannot be read as a URL: check the port is a number and percent-encode special "
                "characters in the user and password (postgresql+asyncpg://user:password@host:5432/db)"
            ) from None
        if parsed.host and "@" in parsed.host:
            raise ValueError("has an @ in its password: write it as %40 (percent-encoded)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        # Messages start with "VARIABLE: " so each problem is reported under the variable to change.
        if self.environment == "production":
            if self.discord_token is None:
                raise ValueError(
                    "DISCORD_TOKEN: is required in production: put it in .env (see .env.example)"
                )
            if self.discord_api_base or self.discord_gateway_url:
                raise ValueError(
                    "DISCORD_API_BASE: points at the sandbox, which production refuses: "
                    "unset DISCORD_API_BASE and DISCORD_GATEWAY_URL"
                )
            if self.http_enabled and self.http_token is None and not _is_loopback(self.http_host):
                raise ValueError(
                    f"HTTP_TOKEN: is required in production when HTTP_HOST ({self.http_host}) is not a "
                    "loopback address: set HTTP_TOKEN, or HTTP_HOST=127.0.0.1 behind a reverse proxy"
                )
        if bool(self.discord_api_base) != bool(self.discord_gateway_url):
            missing = "DISCORD_GATEWAY_URL" if self.discord_api_base else "DISCORD_API_BASE"
            raise ValueError(
                f"{missing}: is not set: DISCORD_API_BASE and DISCORD_GATEWAY_URL go together, "
                "set both or neither"
            )
        if self.shard_ids and self.shard_count is None:
            raise ValueError("SHARD_COUNT: is not set: SHARD_IDS needs the total number of shards")
        if self.shard_count is not None and any(i >= self.shard_count for i in self.shard_ids):
            raise ValueError("SHARD_IDS: must all be below SHARD_COUNT")
        return self

    # -- derived values ----------------------------------------------------------------------------------

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def effective_log_level(self) -> LogLevel:
        return self.log_level or ("INFO" if self.is_production else "DEBUG")

    @property
    def auto_migrate(self) -> bool:
        return (
            self.database_auto_migrate if self.database_auto_migrate is not None else not self.is_production
        )

    @property
    def uses_sandbox(self) -> bool:
        return self.discord_api_base is not None

    @property
    def http_local_host(self) -> str:
        """Return where a command on this machine reaches the bot's HTTP server (any address -> loopback)."""
        return "127.0.0.1" if self.http_host in _ANY_ADDRESS else self.http_host

    @property
    def http_url(self) -> str | None:
        """Return the bot's HTTP server as a URL on this machine; None when it is off or on a free port."""
        if not self.http_enabled or self.http_port == 0:
            return None
        host = self.http_local_host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.http_port}"

    def secret_values(self) -> list[str]:
        """Return every secret's value, for the log and error-report redaction."""
        values = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr) and value.get_secret_value() and name != "database_url":
                values.append(value.get_secret_value())
        passwords = _database_passwords(self.database_url.get_secret_value())
        if passwords:
            # The URL is secret for its password; one without (a SQLite path) may show in the logs.
            values += [self.database_url.get_secret_value(), *passwords]
        return values

    def describe(self) -> Iterator[tuple[str, str]]:
        """Yield ``(VARIABLE, shown value)`` for every setting, secrets masked."""
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                shown = _mask(value.get_secret_value(), url=name == "database_url")
            elif isinstance(value, list):
                shown = ",".join(str(v) for v in value)
            elif name == "log_level" and value is None:
                shown = f"{self.effective_log_level} (default in {self.environment})"
            elif name == "database_auto_migrate" and value is None:
                shown = f"{'yes' if self.auto_migrate else 'no'} (default in {self.environment})"
            elif value is None:
                shown = ""
            else:
                shown = str(value)
            yield name.upper(), shown


_ANY_ADDRESS = frozenset({"", "0.0.0.0", "::"})  # noqa: S104 - connected to, never bound


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _mask(secret: str, *, url: bool) -> str:
    if not secret:
        return ""
    if url:  # keep all but its password, which may hold any character
        return masked_url(secret)
    return "*" * 8


def _database_passwords(url: str) -> list[str]:
    """Return the password of a database URL as the driver gets it (decoded) and as it is written."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return []
    passwords = [str(value) for key, value in parsed.query.items() if "password" in key.lower()]
    if parsed.password:
        passwords.append(str(parsed.password))  # percent-decoded, as a driver's error would show it
        # As written in DATABASE_URL: between the user's ':' and the '@' (a raw @ is refused above).
        written = url.split("://", 1)[-1].split("@", 1)[0].partition(":")[2]
        if written and written != parsed.password:
            passwords.append(written)
    return passwords


def load_settings(env_file: Path | None = ENV_FILE, **overrides: Any) -> Settings:
    """Build the settings from the environment and ``env_file``.

    Raises:
        SettingsError: one or more settings are missing or malformed; each problem names its variable.
    """
    try:
        return Settings(_env_file=env_file, **overrides)  # type: ignore[call-arg]
    except ValidationError as error:
        raise SettingsError([_problem(e) for e in error.errors()]) from None


def _problem(error: Any) -> Problem:
    location = [str(part) for part in error.get("loc", ()) if part != "__root__"]
    message = str(error.get("msg", "is not valid")).removeprefix("Value error, ")
    if not location:
        variable, _, rest = message.partition(": ")
        return Problem(variable, rest)
    variable = location[0].upper()
    hint = Settings.model_fields[location[0]].description if location[0] in Settings.model_fields else None
    text = message[0].lower() + message[1:] if message else "is not valid"
    if error.get("type") == "missing":
        text = "is not set"
    if error.get("type") == "value_error":  # our own validators already say what to do
        hint = None
    return Problem(variable, f"{text} ({hint})" if hint else text)


def check_env_file_permissions(path: Path = ENV_FILE) -> None:
    """Refuse an env file that others on the machine can read, since it holds the token.

    Raises:
        ConfigurationError: ``path`` is readable or writable by group or others.
    """
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigurationError(
            "DISCORD_TOKEN",
            f"{path} is readable by other users (mode {stat.S_IMODE(mode):o}) and holds the bot token: "
            f"run `chmod 600 {path}`",
        )


def render_env_example() -> str:
    """Return the text of ``.env.example``: every setting with its description and default."""
    lines = [
        "# botops settings. Copy to .env (chmod 600 .env) and fill in what you need.",
        "# Generated by `botops config example` from botops/settings.py; do not edit by hand.",
        "",
    ]
    for name, field in Settings.model_fields.items():
        lines.append(f"# {field.description}")
        lines.append(f"{name.upper()}={_default_text(name)}")
        lines.append("")
    return "\n".join(lines)


def _default_text(field_name: str) -> str:
    field = Settings.model_fields[field_name]
    default = field.get_default(call_default_factory=True)
    if isinstance(default, SecretStr):
        default = default.get_secret_value()
    if isinstance(default, list):
        default = ",".join(str(v) for v in default)
    if isinstance(default, datetime.time):
        default = default.isoformat(timespec="minutes" if not default.second else "seconds")
    return "" if default is None else str(default)


def render_settings_table() -> str:
    """Return the README's configuration table (Markdown): variable, default, meaning."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = _default_text(name)
        shown = f"`{default}`" if default else ""
        description = (field.description or "").replace("|", "\\|")
        rows.append(f"| `{name.upper()}` | {shown} | {description} |")
    return "\n".join(rows) + "\n"
