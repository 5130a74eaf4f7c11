"""The pre-deployment checks themselves, in the handbook's order, and what they share.

Each check is a coroutine taking the :class:`CheckContext` and returning an :data:`Outcome`: a status, what
was found, and the fix. :mod:`botops.deploy.preflight` runs them (one failing never stops the others) and
redacts what they say. Nothing here changes the deployment: the checks only read, except for a
temporary file created and removed in LOG_DIR, and whatever DEPLOY_TEST_COMMAND does. A SQLite file that
does not exist is not opened (opening it would create an empty database).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime
import logging
import os
import shlex
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import aiohttp
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from botops import __version__
from botops.backup.store import ListedBackup, database_kind, list_backups, sqlite_path
from botops.db.engine import create_engine, database_size, pinged
from botops.db.migrate import history, schema_state
from botops.errors import BackupFailed, ConfigurationError, DatabaseUnavailable
from botops.redaction import masked_url
from botops.settings import Settings, check_env_file_permissions

__all__ = ["CHECKS", "Check", "CheckContext", "Outcome", "RollbackPlan", "Status"]

log = logging.getLogger(__name__)

Status = Literal["pass", "warn", "fail"]

_TAIL_LINES = 20  # of the test command's output, shown when it fails
_LINE_CHARS = 300
_GIT_TIMEOUT = 10.0
_DISCORD_TIMEOUT = 10.0
_PORTAL_HINT = "put the bot token from the developer portal's Bot page in .env (see .env.example)"


@dataclass(frozen=True)
class Check:
    """The outcome of one check: ``detail`` says what was found, ``fix`` what to do (``None`` on a pass)."""

    name: str
    status: Status
    detail: str
    fix: str | None = None


@dataclass(frozen=True)
class RollbackPlan:
    """What a rollback returns to: the checkout's commit, the database's revision and the newest backup.

    ``commit`` is ``unknown`` outside a git checkout; ``schema_revision`` is ``None`` when the database
    has no schema or cannot be read; ``backup_id`` is ``None`` when there is no verified backup.
    """

    commit: str
    schema_revision: str | None
    backup_id: str | None

    def __str__(self) -> str:
        schema, backup = self.schema_revision or "none", self.backup_id or "none"
        return f"commit {self.commit}, schema {schema}, backup {backup}"


#: What a check function returns; the runner adds the name and redacts.
Outcome = tuple[Status, str, str | None]


class CheckContext:
    """What the checks share: the settings, one database engine and one HTTP session, made when needed."""

    def __init__(
        self,
        settings: Settings,
        env_file: Path,
        run_tests: bool,
        max_backup_age: datetime.timedelta,
        test_timeout: float,
    ) -> None:
        self.settings = settings
        self.env_file = env_file
        self.run_tests = run_tests
        self.max_backup_age = max_backup_age
        self.test_timeout = test_timeout
        self._engine: AsyncEngine | None = None
        self._http: aiohttp.ClientSession | None = None
        self._plan: RollbackPlan | None = None

    def engine(self) -> AsyncEngine:
        """Return the engine of DATABASE_URL, made at the first call.

        Raises:
            DatabaseUnavailable: the URL cannot be used (a SQLite folder that cannot be created).
        """
        if self._engine is None:
            self._engine = create_engine(self.settings)
        return self._engine

    def missing_sqlite_file(self) -> Path | None:
        """Return the SQLite file DATABASE_URL names when it does not exist (yet); else ``None``."""
        if database_kind(self.settings) != "sqlite":
            return None
        try:
            path = sqlite_path(self.settings)
        except BackupFailed:  # in memory: nothing on disk to miss
            return None
        return None if path.exists() else path

    async def discord_get(self, route: str, token: SecretStr) -> tuple[int, Any]:
        """GET ``route`` of Discord's REST API (or the sandbox's) with ``token``; return status and JSON.

        Raises:
            aiohttp.ClientError, TimeoutError: Discord cannot be reached.
        """
        if self._http is None:
            self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=_DISCORD_TIMEOUT))
        headers = {
            "Authorization": f"Bot {token.get_secret_value()}",
            "User-Agent": f"DiscordBot (https://github.com/botops/botops, {__version__}) botops-preflight",
        }
        async with self._http.get(f"{_discord_base(self.settings)}{route}", headers=headers) as response:
            try:
                body = await response.json(content_type=None)
            except ValueError:
                body = None
            return response.status, body

    async def rollback_plan(self) -> RollbackPlan:
        """Work out the rollback plan once; parts that cannot be read are ``unknown`` or ``None``."""
        if self._plan is None:
            commit = await _git_commit(Path.cwd())
            self._plan = RollbackPlan(commit, await self._revision(), await self._newest_backup_id())
        return self._plan

    async def _revision(self) -> str | None:
        try:
            if self.missing_sqlite_file() is not None:
                return None
            return (await schema_state(self.engine())).current
        except Exception:  # the database checks report why; the plan only lacks the revision
            log.debug("Rollback plan: the schema revision cannot be read", exc_info=True)
            return None

    async def _newest_backup_id(self) -> str | None:
        try:
            newest = _newest_verified(await asyncio.to_thread(list_backups, self.settings.backup_dir))
        except Exception:  # the backup check reports why; the plan only lacks the backup
            log.debug("Rollback plan: the backups cannot be listed", exc_info=True)
            return None
        return newest.id if newest is not None else None

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
        if self._engine is not None:
            await self._engine.dispose()


# -- the checks, in the handbook's order -------------------------------------------------------------------


async def _tests(context: CheckContext) -> Outcome:
    command = context.settings.deploy_test_command.strip()
    if not context.run_tests:
        return (
            "warn",
            f"skipped on request (DEPLOY_TEST_COMMAND is {command!r})",
            "run the tests before a deploy",
        )
    if not command:
        return "warn", "DEPLOY_TEST_COMMAND is empty, so no tests ran", "set DEPLOY_TEST_COMMAND (make test)"
    try:
        argv = shlex.split(command)
    except ValueError as error:
        return "fail", f"DEPLOY_TEST_COMMAND cannot be read as a command ({error})", "fix its quoting"
    started = time.monotonic()
    try:
        code, tail = await _run_command(argv, context.test_timeout)
    except OSError as error:
        return (
            "fail",
            f"cannot start {argv[0]} ({error.strerror or error})",
            "set DEPLOY_TEST_COMMAND to a command that exists here (make test)",
        )
    took = _duration(time.monotonic() - started)
    last_lines = "\n".join(tail)
    if code is None:
        return (
            "fail",
            f"`{command}` did not finish in {_duration(context.test_timeout)} and was stopped; its last "
            f"lines:\n{last_lines}",
            "find the test that hangs, then run the preflight again",
        )
    if code != 0:
        return (
            "fail",
            f"`{command}` exited with {code} after {took}; its last lines:\n{last_lines}",
            "make the tests pass, then run the preflight again",
        )
    return "pass", f"`{command}` passed in {took}", None


async def _settings(context: CheckContext) -> Outcome:
    settings = context.settings
    if not settings.is_production:
        return (
            "warn",
            "valid, but ENVIRONMENT=development, so the production rules (a private .env, no sandbox, "
            "no automatic migrations) do not apply",
            "set ENVIRONMENT=production in the deployed bot's .env",
        )
    if settings.discord_token is None:  # the model refuses this already; kept should that rule move
        return "fail", "DISCORD_TOKEN is not set", "put the bot token in .env (see .env.example)"
    try:
        check_env_file_permissions(context.env_file)
    except ConfigurationError as error:
        return "fail", f"the bot will refuse to start: {error}", f"chmod 600 {context.env_file}"
    return "pass", "valid for ENVIRONMENT=production", None


async def _env_file(context: CheckContext) -> Outcome:
    path = context.env_file
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return "pass", f"there is no {path}: the settings come from the environment", None
    found: list[tuple[Status, str, str]] = []
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        found.append(("fail", f"mode {mode:o} lets other users read the token in it", f"chmod 600 {path}"))
    found.extend(await _git_tracking(path))
    if not found:
        return "pass", f"{path} is private (mode {mode:o}) and ignored by git", None
    return _worst(found)


async def _log_folder(context: CheckContext) -> Outcome:
    log_dir = context.settings.log_dir
    fix = "give the bot's user write access to LOG_DIR, or point LOG_DIR at a folder it may write"
    if log_dir.exists() and not log_dir.is_dir():
        return "fail", f"LOG_DIR {log_dir} is not a folder", fix
    folder = log_dir if log_dir.is_dir() else _existing_ancestor(log_dir)
    try:
        await asyncio.to_thread(_touch_in, folder)
    except OSError as error:
        return "fail", f"cannot write in {folder} ({error.strerror or error})", fix
    if folder != log_dir:
        return "pass", f"{log_dir} does not exist yet; the bot can create it in {folder}", None
    return "pass", f"{log_dir} is writable", None


async def _disk_space(context: CheckContext) -> Outcome:
    settings = context.settings
    if database_kind(settings) == "sqlite":
        database = sqlite_path(settings)
        size = sum(path.stat().st_size for path in (database, Path(f"{database}-wal")) if path.exists())
    else:
        async with pinged(context.engine()) as (connection, _):
            size = await database_size(connection)
    backup_dir = settings.backup_dir
    free = (await asyncio.to_thread(shutil.disk_usage, _existing_ancestor(backup_dir))).free
    needed = 2 * size
    found = f"{_size(free)} free on the disk of BACKUP_DIR {backup_dir}"
    if size == 0:
        return "pass", f"{found}; the database is empty or not there yet", None
    if free < needed:
        return (
            "fail",
            f"{found}; a backup of the {_size(size)} database needs about {_size(needed)}",
            "free space on that disk (`botops backup prune`), or point BACKUP_DIR at a bigger one",
        )
    return "pass", f"{found}; a backup needs about {_size(needed)} (twice the database)", None


async def _database(context: CheckContext) -> Outcome:
    missing = context.missing_sqlite_file()
    if missing is not None:
        return (
            "warn",
            f"there is no database at {missing}: the bot will start with an empty one",
            "if the bot has data, point DATABASE_URL at its file",
        )
    try:
        async with pinged(context.engine()) as (_, took):
            pass
    except DatabaseUnavailable as error:
        return (
            "fail",
            str(error),
            "start the database, or fix DATABASE_URL (host, port, user, password)",
        )
    where = masked_url(context.settings.database_url.get_secret_value())
    return "pass", f"{where} answered in {took:.1f} ms", None


async def _migrations(context: CheckContext) -> Outcome:
    descriptions = {r.id: r.description for r in await asyncio.to_thread(history)}
    if context.missing_sqlite_file() is not None:
        pending = tuple(reversed(list(descriptions)))  # history is newest first
        current: str | None = None
    else:
        state = await schema_state(context.engine())
        if state.is_current:
            return "pass", f"none: the database is at {state.head}, the code's newest revision", None
        if state.is_unknown:
            return (
                "fail",
                f"the database is at {state.current}, a revision this code does not know (its newest is "
                f"{state.head}): newer code migrated it",
                f"deploy that code, or downgrade the database with it (`botops db downgrade {state.head}`)",
            )
        pending, current = state.pending, state.current
    listed = ", ".join(f"{revision} ({_short(descriptions.get(revision, ''))})" for revision in pending)
    return (
        "warn",
        f"{len(pending)} will run on deploy, from {current or 'no schema'}: {listed}",
        "make sure the backup is fresh: the deploy applies them (`botops db upgrade` by hand)",
    )


async def _discord_token(context: CheckContext) -> Outcome:
    settings = context.settings
    where = _discord_name(settings)
    if settings.discord_token is None:
        return "fail", "DISCORD_TOKEN is not set", _PORTAL_HINT
    try:
        status, body = await context.discord_get("/users/@me", settings.discord_token)
    except (aiohttp.ClientError, TimeoutError) as error:
        return _unreachable(where, error)
    if status == 401:
        if settings.uses_sandbox:
            fix = "use the token `botops sandbox` printed when it started (it makes a new one each time)"
        else:
            fix = "copy the token again from the developer portal's Bot page into .env"
        return "fail", f"{where} refused DISCORD_TOKEN (HTTP 401)", fix
    if status != 200 or not isinstance(body, dict):
        return "fail", f"{where} answered HTTP {status} to GET /users/@me", "try again in a few minutes"
    name = body.get("username", "?")
    if body.get("discriminator") not in (None, "0", "0000"):
        name = f"{name}#{body['discriminator']}"
    return "pass", f"{where} accepts it: the bot is {name} (id {body.get('id')})", None


async def _session_starts(context: CheckContext) -> Outcome:
    settings = context.settings
    where = _discord_name(settings)
    if settings.discord_token is None:
        return "fail", "DISCORD_TOKEN is not set, so the session starts left are unknown", _PORTAL_HINT
    try:
        status, body = await context.discord_get("/gateway/bot", settings.discord_token)
    except (aiohttp.ClientError, TimeoutError) as error:
        return _unreachable(where, error)
    if status == 401:
        return (
            "fail",
            f"{where} refused DISCORD_TOKEN (HTTP 401), so the session starts left are unknown",
            "fix DISCORD_TOKEN (see the Discord token check)",
        )
    limit: Any = body.get("session_start_limit") if status == 200 and isinstance(body, dict) else None
    try:
        remaining, total = int(limit["remaining"]), int(limit["total"])
        reset = _duration(float(limit["reset_after"]) / 1000)
    except (KeyError, TypeError, ValueError):
        return (
            "fail",
            f"{where} answered GET /gateway/bot with HTTP {status} and no session start limit",
            "try again in a few minutes",
        )
    reserve = settings.session_start_reserve
    found = f"{remaining} of {total} left, reset in {reset}"
    if remaining < max(reserve, 1):
        return (
            "fail",
            f"{found}: below SESSION_START_RESERVE ({reserve}), so the bot would refuse to log in",
            f"wait for the reset in {reset}, and find what restarts the bot so often (`botops logs`)",
        )
    if remaining < 2 * reserve:
        return (
            "warn",
            f"{found}: less than twice SESSION_START_RESERVE ({reserve})",
            "find what restarts the bot so often before restarting it more (`botops logs`)",
        )
    return "pass", found, None


async def _backup(context: CheckContext) -> Outcome:
    backup_dir = context.settings.backup_dir
    listed = await asyncio.to_thread(list_backups, backup_dir)
    newest = _newest_verified(listed)
    fix = "botops backup create --verify"
    if newest is None:
        if listed:
            return "fail", f"none of the {len(listed)} backups in {backup_dir} is verified", fix
        return "fail", f"there are no backups in BACKUP_DIR {backup_dir}", fix
    now = datetime.datetime.now(datetime.UTC)
    age = now - newest.created_at
    shown = f"{newest.id}, {_duration(age.total_seconds())} old"
    if age > context.max_backup_age:
        limit = _duration(context.max_backup_age.total_seconds())
        return "fail", f"the newest verified backup, {shown}, is older than {limit}", fix
    assert newest.verified_at is not None
    return "pass", f"{shown}, verified {_duration((now - newest.verified_at).total_seconds())} ago", None


async def _rollback(context: CheckContext) -> Outcome:
    plan = await context.rollback_plan()
    found: list[tuple[Status, str, str]] = []
    if plan.commit == "unknown":
        found.append(("warn", "no git commit to return to", "deploy from a git checkout"))
    else:
        changed = await _git(Path.cwd(), "status", "--porcelain", "--untracked-files=no")
        if changed is not None and changed[0] == 0 and changed[1].strip():
            found.append(
                (
                    "warn",
                    f"the checkout has uncommitted changes, which commit {plan.commit} does not hold",
                    "commit or discard them",
                )
            )
    if plan.schema_revision is None:
        found.append(("warn", "no schema revision to return to", "see the database and migrations checks"))
    if plan.backup_id is None:
        found.append(("warn", "no verified backup to restore", "botops backup create --verify"))
    if not found:
        return "pass", str(plan), None
    status, detail, fix = _worst(found)
    return status, f"{plan}: {detail}", fix


CHECKS: tuple[tuple[str, Callable[[CheckContext], Awaitable[Outcome]]], ...] = (
    ("tests", _tests),
    ("settings", _settings),
    (".env", _env_file),
    ("log folder", _log_folder),
    ("disk space", _disk_space),
    ("database", _database),
    ("migrations", _migrations),
    ("Discord token", _discord_token),
    ("session starts", _session_starts),
    ("backup", _backup),
    ("rollback plan", _rollback),
)


# -- helpers ---------------------------------------------------------------------------------------------


async def _run_command(argv: list[str], timeout: float) -> tuple[int | None, list[str]]:
    """Run ``argv`` without a shell; return its exit code (``None``: stopped at ``timeout``) and last lines.

    Raises:
        OSError: the command cannot be started.
    """
    process = await asyncio.create_subprocess_exec(
        *argv,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,  # its own process group, so a timeout stops what it started too
    )
    tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)

    async def read() -> None:
        assert process.stdout is not None
        pending = b""
        while chunk := await process.stdout.read(65536):
            *lines, pending = (pending + chunk).split(b"\n")
            tail.extend(_line(line) for line in lines)
            pending = pending[-4 * _LINE_CHARS :]  # a line without end stays bounded
        if pending:
            tail.append(_line(pending))

    try:
        await asyncio.wait_for(asyncio.gather(read(), process.wait()), timeout)
    except TimeoutError:
        return None, list(tail)
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            await process.wait()
    return process.returncode, list(tail)


def _line(raw: bytes) -> str:
    text = raw.decode(errors="replace").rstrip("\r")
    return text if len(text) <= _LINE_CHARS else text[: _LINE_CHARS - 3] + "..."


async def _git(folder: Path, *arguments: str) -> tuple[int, str, str] | None:
    """Run ``git -C folder arguments``; return its exit code, stdout and stderr, or ``None`` without git."""
    git = shutil.which("git")
    if git is None:
        return None

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(  # noqa: S603 - fixed arguments, no shell
            [git, "-C", str(folder), *arguments],
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT,
            check=False,
        )

    try:
        completed = await asyncio.to_thread(run)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return completed.returncode, completed.stdout, completed.stderr


async def _git_commit(folder: Path) -> str:
    """Return the short commit of the checkout at ``folder`` now (not cached), or ``unknown``."""
    found = await _git(folder, "rev-parse", "--short=12", "HEAD")
    return found[1].strip() if found is not None and found[0] == 0 else "unknown"


async def _git_tracking(path: Path) -> list[tuple[Status, str, str]]:
    """Say whether git tracks ``path`` (fail) or would let ``git add .`` take it (warn); empty: neither."""
    folder, name = Path.cwd() / path.parent, path.name  # cwd / an absolute path is that path
    inside = await _git(folder, "rev-parse", "--is-inside-work-tree")
    if inside is None:
        return [("warn", "git cannot be run, so whether git tracks it is unknown", "install git")]
    if inside[0] != 0:
        return [("warn", f"{folder} is not a git checkout", "deploy from a git checkout")]
    tracked = await _git(folder, "ls-files", "--error-unmatch", "--", name)
    if tracked is not None and tracked[0] == 0:
        return [
            (
                "fail",
                f"git tracks {path}, so the token is in the repository",
                f"git rm --cached {path}, add it to .gitignore, and reset the token on the developer "
                "portal (the history keeps it)",
            )
        ]
    ignored = await _git(folder, "check-ignore", "--quiet", "--", name)
    if ignored is not None and ignored[0] == 1:
        return [("warn", f"git does not ignore {path}: `git add .` would commit it", "add it to .gitignore")]
    return []


def _worst(found: list[tuple[Status, str, str]]) -> Outcome:
    """Merge several findings of one check: the worst status, every detail and every fix."""
    status: Status = "fail" if any(s == "fail" for s, _, _ in found) else "warn"
    return status, "; ".join(detail for _, detail, _ in found), "; ".join(fix for _, _, fix in found)


def _newest_verified(listed: list[ListedBackup]) -> ListedBackup | None:
    verified = [backup for backup in listed if backup.verified]
    return max(verified, key=lambda backup: backup.created_at) if verified else None


def _discord_base(settings: Settings) -> str:
    if settings.discord_api_base:
        return settings.discord_api_base.rstrip("/")
    from botops.endpoints import DISCORD_API_BASE  # imports discord.py, which only this check needs

    return DISCORD_API_BASE


def _discord_name(settings: Settings) -> str:
    return f"the sandbox at {settings.discord_api_base}" if settings.uses_sandbox else "Discord"


def _unreachable(where: str, error: BaseException) -> Outcome:
    reason = "no answer in time" if isinstance(error, TimeoutError) else str(error) or type(error).__name__
    return (
        "fail",
        f"cannot reach {where} ({reason})",
        "check the network and DNS, or DISCORD_API_BASE if you use the sandbox",
    )


def _existing_ancestor(path: Path) -> Path:
    """Return ``path`` or its nearest ancestor that exists (the folder a new ``path`` is made in)."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _touch_in(folder: Path) -> None:
    with tempfile.TemporaryFile(dir=folder, prefix=".preflight-"):
        pass


def _short(description: str) -> str:
    """Return the name part of a revision's description: what comes before its first colon."""
    name = description.split(":", 1)[0].strip()
    return name if len(name) <= 40 else name[:37] + "..."


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        hours, minutes = divmod(seconds // 60, 60)
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{seconds // 86400} d {seconds % 86400 // 3600} h"


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"
