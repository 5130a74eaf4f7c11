"""The one error tree of botops; every error carries its facts and a message a user can act on.

The hierarchy::

    BotopsError
    ├── ConfigurationError          a setting is missing, malformed or not allowed here
    │   ├── EndpointRedirectRefused     DISCORD_API_BASE/DISCORD_GATEWAY_URL given in production
    │   ├── LogDirUnusable              LOG_DIR cannot be created or written to
    │   └── DevGuildUnavailable         the bot cannot sync commands to DISCORD_DEV_GUILD_ID
    ├── DiscordUnreachable          Discord (or the sandbox at DISCORD_API_BASE) cannot be reached
    ├── SessionStartReserveReached  Discord allows too few session starts today: SESSION_START_RESERVE
    ├── BotAlreadyRunning           another bot holds STATE_DIR's lock (same database, same settings)
    ├── DatabaseError               the database cannot be used as it is
    │   ├── DatabaseUnavailable         DATABASE_URL cannot be reached (the driver's reason)
    │   ├── SchemaBehind                the schema is older than the code: `botops db upgrade`
    │   ├── SchemaAhead                 the database is at a revision this code does not know
    │   ├── InvalidRevision             a migration target that does not exist or cannot be reached
    │   └── MigrationFailed             a migration raised; its transaction was rolled back
    ├── InvalidGuildSetting         a guild setting botops does not allow; nothing was changed
    │   ├── GuildSettingOutOfRange      a number outside its bounds (XP 0..1000, cooldown 0..86400 s)
    │   └── XpRangeInverted             the minimum XP per message above the maximum
    ├── BackupError                 a backup cannot be made, found, trusted or restored
    │   ├── BackupFailed                making a backup failed; no file is left under a backup's name
    │   ├── BackupNotFound              no backup of that id in BACKUP_DIR
    │   ├── BackupCorrupt               a backup fails verification: manifest, checksum, integrity, rows
    │   ├── RestoreRefused              a restore will not run now (the bot is running, not SQLite)
    │   ├── InvalidRetentionPolicy      a retention policy that would keep nothing, or with a bad count
    │   └── BackupDatedInFuture         a backup dated after now: a wrong clock; nothing was pruned
    ├── DeployError                 a deploy or rollback cannot start, or failed (and was rolled back)
    │   ├── DeployRefused               a check before the deploy failed; nothing was changed
    │   └── DeployFailed                the new version failed; ``rolled_back`` says whether it was undone
    ├── InvalidLogQuery             a `botops logs` --level, --since or --channel it cannot read
    ├── LogsUnreadable              no log file of the channel in LOG_DIR, or one botops may not read
    └── IncompatibleDiscordPy       discord.py no longer has an attribute botops relies on
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

__all__ = [
    "BackupCorrupt",
    "BackupDatedInFuture",
    "BackupError",
    "BackupFailed",
    "BackupNotFound",
    "BotAlreadyRunning",
    "BotopsError",
    "ConfigurationError",
    "DatabaseError",
    "DatabaseUnavailable",
    "DeployError",
    "DeployFailed",
    "DeployRefused",
    "DevGuildUnavailable",
    "DiscordUnreachable",
    "EndpointRedirectRefused",
    "GuildSettingOutOfRange",
    "IncompatibleDiscordPy",
    "InvalidGuildSetting",
    "InvalidLogQuery",
    "InvalidRetentionPolicy",
    "InvalidRevision",
    "LogDirUnusable",
    "LogsUnreadable",
    "MigrationFailed",
    "RestoreRefused",
    "SchemaAhead",
    "SchemaBehind",
    "SessionStartReserveReached",
    "XpRangeInverted",
]


class BotopsError(Exception):
    """Base of every error botops raises on purpose."""


class ConfigurationError(BotopsError):
    """A setting is missing, malformed or not allowed in this environment.

    ``variable`` names the environment variable, so the message can say what to change.
    """

    def __init__(self, variable: str, message: str) -> None:
        self.variable = variable
        super().__init__(message)


class EndpointRedirectRefused(ConfigurationError):
    """The Discord endpoints were redirected while ``ENVIRONMENT=production``."""

    def __init__(self, variable: str) -> None:
        super().__init__(
            variable,
            f"{variable} is set but ENVIRONMENT=production: a production bot talks to Discord itself; "
            f"unset {variable} (it is for the sandbox and tests only)",
        )


class LogDirUnusable(ConfigurationError):
    """``LOG_DIR`` is not a folder botops can create and write its log files in."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(
            "LOG_DIR",
            f"LOG_DIR {path} cannot hold the log files: {reason}; "
            "point LOG_DIR at a folder the bot's user may write to",
        )


class DevGuildUnavailable(ConfigurationError):
    """Discord refused to sync commands to ``DISCORD_DEV_GUILD_ID``.

    It answers 10004 Unknown Guild for a guild the bot is not in, 50001 Missing Access for one that did
    not grant the ``applications.commands`` scope.
    """

    def __init__(self, guild_id: int) -> None:
        self.guild_id = guild_id
        super().__init__(
            "DISCORD_DEV_GUILD_ID",
            f"the bot is not in guild {guild_id} or lacks the applications.commands scope: invite it with "
            "that scope or fix DISCORD_DEV_GUILD_ID",
        )


class DiscordUnreachable(BotopsError):
    """No connection to Discord's REST API could be opened; ``where`` is its address, ``reason`` the cause."""

    def __init__(self, where: str, reason: str) -> None:
        self.where = where
        self.reason = reason
        super().__init__(
            f"cannot reach Discord at {where}: {reason}; check the network, or DISCORD_API_BASE if you use "
            "the sandbox"
        )


class SessionStartReserveReached(BotopsError):
    """Discord allows too few session starts until ``reset_at`` to log in and keep ``reserve`` of them.

    Discord resets a bot's token after 1000 session starts (IDENTIFYs) in 24 hours; ``remaining`` is how
    many it still allows, ``shards`` how many this start would take.
    """

    def __init__(self, remaining: int, reset_at: datetime, reserve: int, shards: int) -> None:
        self.remaining = remaining
        self.reset_at = reset_at
        self.reserve = reserve
        self.shards = shards
        when = f"{reset_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
        needs = f" and this start needs {shards}" if shards > 1 else ""
        super().__init__(
            f"Discord allows {remaining} more session starts until {when}{needs}; botops keeps "
            f"SESSION_START_RESERVE={reserve} in reserve: start again after {when}, or lower "
            "SESSION_START_RESERVE"
        )


class BotAlreadyRunning(BotopsError):
    """Another process holds ``STATE_DIR/bot.lock``: a bot with these settings is running already."""

    def __init__(self, state_dir: Path, pid: int | None) -> None:
        self.state_dir = state_dir
        self.pid = pid
        who = f"process {pid}" if pid is not None else "another process"
        super().__init__(
            f"a bot with these settings is running already ({who} holds {state_dir / 'bot.lock'}): "
            "stop it first, or give this one its own STATE_DIR, DATABASE_URL and HTTP_PORT"
        )


class DatabaseError(BotopsError):
    """The database cannot be used as it is: unreachable, or its schema does not match the code."""


class DatabaseUnavailable(DatabaseError):
    """A connection to ``DATABASE_URL`` could not be opened; ``url`` is shown with its password masked."""

    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"cannot reach the database at DATABASE_URL={url}: {reason}")


def _revision_name(revision: str | None) -> str:
    return revision if revision is not None else "base (no schema)"


class SchemaBehind(DatabaseError):
    """The database schema is older than the code and may not be migrated automatically here."""

    def __init__(self, current: str | None, head: str) -> None:
        self.current = current
        self.head = head
        if current is None:
            message = f"the database has no schema yet, the code needs {head}: run `botops db upgrade`"
        else:
            message = (
                f"the database schema is at {current}, the code needs {head}: "
                "back up the database, then run `botops db upgrade`"
            )
        super().__init__(message)


class SchemaAhead(DatabaseError):
    """The database is at a revision this code does not know, so newer code migrated it."""

    def __init__(self, current: str, head: str) -> None:
        self.current = current
        self.head = head
        super().__init__(
            f"the database schema is at {current}, a revision this code does not know (its newest is "
            f"{head}): newer code migrated it; run that code, or downgrade the database with it "
            f"(`botops db downgrade {head}`) before running this version"
        )


class InvalidRevision(DatabaseError):
    """A migration target does not exist, or cannot be reached from the database's revision."""

    def __init__(self, revision: str, reason: str) -> None:
        self.revision = revision
        self.reason = reason
        super().__init__(
            f"cannot migrate to {revision!r}: {reason} (`botops db history` lists the revisions)"
        )


class MigrationFailed(DatabaseError):
    """A migration raised; its transaction was rolled back, so the schema is still at ``before``."""

    def __init__(self, before: str | None, target: str, reason: str) -> None:
        self.before = before
        self.target = target
        self.reason = reason
        super().__init__(
            f"migrating the database to {target} failed and was rolled back, the schema is still at "
            f"{_revision_name(before)}: {reason}"
        )


class InvalidGuildSetting(BotopsError):
    """A guild setting was given a value botops does not allow; nothing was changed.

    ``setting`` is the setting's name, ``value`` what was given, ``allowed`` what would be.
    """

    def __init__(self, setting: str, value: object, allowed: str) -> None:
        self.setting = setting
        self.value = value
        self.allowed = allowed
        super().__init__(f"{setting} cannot be {value!r}, it must be {allowed}; nothing was changed")


class GuildSettingOutOfRange(InvalidGuildSetting):
    """A number setting of a guild is outside ``minimum..maximum``."""

    def __init__(self, setting: str, value: object, minimum: int, maximum: int) -> None:
        self.minimum = minimum
        self.maximum = maximum
        super().__init__(setting, value, f"a whole number from {minimum} to {maximum}")


class XpRangeInverted(InvalidGuildSetting):
    """The minimum XP per message would be more than the maximum."""

    def __init__(self, xp_min: int, xp_max: int) -> None:
        self.xp_min = xp_min
        self.xp_max = xp_max
        super().__init__("xp_min", xp_min, f"at most xp_max ({xp_max})")


class BackupError(BotopsError):
    """A backup cannot be made, found, trusted or restored."""


class BackupFailed(BackupError):
    """Making a backup failed; its temporary files were removed, earlier backups are untouched."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"the backup failed and left no file behind: {reason}")


class BackupNotFound(BackupError):
    """No backup of ``backup_id`` in ``folder``."""

    def __init__(self, backup_id: str, folder: Path) -> None:
        self.backup_id = backup_id
        self.folder = folder
        super().__init__(
            f"there is no backup {backup_id!r} in {folder}: `botops backup list` shows the ones there are"
        )


class BackupCorrupt(BackupError):
    """A backup failed verification; ``reason`` says which check, so it must not be restored."""

    def __init__(self, backup_id: str, reason: str) -> None:
        self.backup_id = backup_id
        self.reason = reason
        super().__init__(f"backup {backup_id} cannot be trusted: {reason}")


class RestoreRefused(BackupError):
    """A restore will not run now; nothing was changed. ``reason`` says why and what to do."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"restore refused, nothing was changed: {reason}")


class InvalidRetentionPolicy(BackupError):
    """A retention policy that cannot be used; ``reason`` says what to change."""

    def __init__(self, daily: object, weekly: object, monthly: object, reason: str) -> None:
        self.daily = daily
        self.weekly = weekly
        self.monthly = monthly
        self.reason = reason
        super().__init__(
            f"cannot keep {daily!r} daily, {weekly!r} weekly and {monthly!r} monthly backups: {reason}"
        )


class BackupDatedInFuture(BackupError):
    """A backup is dated after ``now``: the clock was wrong when it was made, or is wrong now."""

    def __init__(self, backup_id: str, created_at: datetime, now: datetime) -> None:
        self.backup_id = backup_id
        self.created_at = created_at
        self.now = now
        super().__init__(
            f"backup {backup_id} is dated {created_at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC, after "
            f"the clock's {now.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC: the clock was wrong when it was "
            "made or is wrong now, so nothing was pruned; fix the clock, or move that backup out of "
            "the backup folder"
        )


class DeployError(BotopsError):
    """A deploy or rollback cannot start, or failed."""


class DeployRefused(DeployError):
    """A deploy or rollback will not start; ``reason`` says why and what to do. Nothing was changed."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class DeployFailed(DeployError):
    """The deployed version failed (``reason``); ``rolled_back`` says whether the previous one runs again."""

    def __init__(
        self, reason: str, *, rolled_back: bool, rollback_problem: str | None = None, outcome: object = None
    ) -> None:
        self.reason = reason
        self.rolled_back = rolled_back
        self.rollback_problem = rollback_problem
        #: What the deploy did (a ``botops.deploy.run.DeployOutcome``), for the report.
        self.outcome = outcome
        if rolled_back:
            message = f"the deploy failed and was rolled back: {reason}"
        else:
            message = f"the deploy failed and the rollback failed too: {reason}; rollback: {rollback_problem}"
        super().__init__(message)


class InvalidLogQuery(BotopsError):
    """An option of ``botops logs`` has a value it cannot read; ``accepted`` says what it takes."""

    def __init__(self, option: str, value: str, accepted: str) -> None:
        self.option = option
        self.value = value
        self.accepted = accepted
        super().__init__(f"{option} cannot be {value!r}: give {accepted}")


class LogsUnreadable(BotopsError):
    """The logs cannot be read at ``path``: no file there yet, or one botops may not read."""

    def __init__(self, path: Path, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"cannot read the logs at {path}: {reason}")


class IncompatibleDiscordPy(BotopsError):
    """The installed discord.py lacks an attribute that botops sets to reach the sandbox."""

    def __init__(self, attribute: str, discord_version: str) -> None:
        self.attribute = attribute
        self.discord_version = discord_version
        super().__init__(
            f"discord.py {discord_version} has no {attribute}: botops cannot point it at the sandbox; "
            "install the discord.py version pinned in pyproject.toml"
        )
