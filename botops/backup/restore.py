"""Restore the database from a backup: verify, refuse while the bot runs, save, then replace in one step.

Nothing is changed until the backup verified completely, no bot runs (its lock) or answers ``/livez``,
and a safety backup of the current database exists (reason ``pre-restore``). For SQLite the new file is
decompressed next to the database, flushed, and renamed over it; stale ``-wal``/``-shm`` files go first,
since SQLite would apply an old ``-wal`` to the new file and corrupt it. For PostgreSQL the archive is
restored in one transaction that drops what was there first and checks the row counts before it
commits, so a failure leaves the database as it was.
"""

from __future__ import annotations

import asyncio
import http.client
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from botops.backup import postgres
from botops.backup import sqlite as sqlite_files
from botops.backup.manifest import Manifest
from botops.backup.store import (
    TMP_SUFFIX,
    check_backup_into,
    create_backup,
    database_kind,
    fsync_folder,
    load_manifest,
    remove_quietly,
    sqlite_path,
)
from botops.db.migrate import head_revision, history
from botops.errors import BackupError, BackupFailed, RestoreRefused
from botops.instance import ControlFailed, RunningInstance, control, find_running_instance
from botops.redaction import masked_url
from botops.settings import Settings

__all__ = ["RestoreResult", "bot_answers", "restore_backup"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RestoreResult:
    """What a restore did: the backup restored, the safety backup taken, and where the schema stands."""

    restored: Manifest
    safety_backup: Manifest | None  # None: there was no database to save
    revision: str | None
    head: str

    @property
    def schema_is_current(self) -> bool:
        return self.revision == self.head

    def advice(self) -> str:
        """Say what the restored schema needs, in one sentence."""
        if self.schema_is_current:
            return f"The schema is at {self.head}, the code's head: nothing to run."
        if self.revision is None or self.revision in {revision.id for revision in history()}:
            shown = self.revision or "base (no schema)"
            return f"The schema is at {shown}, the code needs {self.head}: run `botops db upgrade`."
        return (
            f"The schema is at {self.revision}, a revision this code does not know: run the code that "
            f"made it, or downgrade with it to {self.head}."
        )


#: Seconds a bot asked to stop (``--stop-bot``) has to release its lock.
STOP_TIMEOUT = 30.0


async def restore_backup(
    settings: Settings, backup_id: str, *, backup_dir: Path, stop_bot: bool = False
) -> RestoreResult:
    """Replace the database with backup ``backup_id`` after verifying it and saving the current one.

    A running bot (its lock held, or its ``/livez`` answering) makes the restore refuse, unless
    ``stop_bot``: then the backup is verified first, and only then is the bot asked to stop (and waited
    for), so a bad backup never costs a running bot.

    Raises:
        RestoreRefused: the bot is running (and ``stop_bot`` is off, or it cannot be stopped), or the
            backup is of another kind of database than DATABASE_URL's.
        BackupNotFound, BackupCorrupt: the backup is missing or fails verification.
        BackupFailed: the safety backup of the current database failed.
        All of these leave the database untouched.
        BackupError: the new content could not be put in place (a PostgreSQL restore that fails changes
            nothing; for SQLite, the safety backup is named, if taken).
    """
    try:
        kind = database_kind(settings)
        database = sqlite_path(settings) if kind == "sqlite" else None
    except BackupFailed as error:
        raise RestoreRefused(error.reason) from None
    running = await asyncio.to_thread(find_running_instance, settings)
    if running is not None and not stop_bot:
        raise RestoreRefused(f"the bot is running ({running.describe()}): stop it first, or pass --stop-bot")
    where = await asyncio.to_thread(bot_answers, settings)
    if running is None and where is not None:
        raise RestoreRefused(
            f"a bot answers {where} (not one with these settings' STATE_DIR): stop it first, then run "
            "the restore again"
        )
    manifest = load_manifest(backup_dir, backup_id)
    if manifest.database != kind:
        raise RestoreRefused(
            f"backup {backup_id} is of a {manifest.database} database and DATABASE_URL is {kind}: "
            "restore it with the settings it was made with"
        )
    if database is None:
        return await _restore_postgres(settings, manifest, backup_dir, running)
    incoming = database.with_name(f".{database.name}.restore-{backup_id}{TMP_SUFFIX}")
    safety: Manifest | None = None
    try:
        database.parent.mkdir(parents=True, exist_ok=True)
        remove_quietly(incoming)
        try:
            await asyncio.to_thread(check_backup_into, backup_dir, manifest, incoming)
            if running is not None:
                await _stop(running, settings)
            if database.exists():
                safety = await create_backup(settings, reason="pre-restore", backup_dir=backup_dir)
            await asyncio.to_thread(_swap_in, incoming, database)
        finally:
            remove_quietly(incoming)
    except OSError as error:
        saved = f"; the database before it is backup {safety.id}" if safety else ""
        raise BackupError(f"restoring backup {backup_id} into {database} failed: {error}{saved}") from error
    revision = await asyncio.to_thread(sqlite_files.read_revision, database)
    return _restored(manifest, safety, revision, str(database))


async def _restore_postgres(
    settings: Settings, manifest: Manifest, backup_dir: Path, running: RunningInstance | None
) -> RestoreResult:
    url = settings.database_url.get_secret_value()
    incoming = backup_dir / f".restore-{manifest.id}{TMP_SUFFIX}"
    remove_quietly(incoming)
    try:
        await asyncio.to_thread(check_backup_into, backup_dir, manifest, incoming)
        if running is not None:
            await _stop(running, settings)
        safety = await create_backup(settings, reason="pre-restore", backup_dir=backup_dir)
        # One transaction: the row counts are compared with the manifest's before it commits.
        await postgres.restore_archive(url, incoming, expected_tables=manifest.tables)
    finally:
        remove_quietly(incoming)
    return _restored(manifest, safety, manifest.schema_revision, masked_url(url))


def _restored(manifest: Manifest, safety: Manifest | None, revision: str | None, where: str) -> RestoreResult:
    log.warning(
        "Restored %s from backup %s (safety backup %s); schema at %s",
        where,
        manifest.id,
        safety.id if safety else "none",
        revision,
    )
    return RestoreResult(manifest, safety, revision, head_revision())


def bot_answers(settings: Settings, *, timeout: float = 1.0) -> str | None:
    """Return the ``/livez`` URL when a bot answers there (any HTTP answer), ``None`` when none does.

    With the HTTP server off, or on a port picked at each start, there is nothing to ask.
    """
    if not settings.http_enabled or settings.http_port == 0:
        return None
    host = settings.http_local_host
    connection = http.client.HTTPConnection(host, settings.http_port, timeout=timeout)
    try:
        connection.request("GET", "/livez")
        connection.getresponse().read()
    except (OSError, http.client.HTTPException):
        return None
    finally:
        connection.close()
    return f"{settings.http_url}/livez"


# -- internals -------------------------------------------------------------------------------------------


async def _stop(running: RunningInstance, settings: Settings) -> None:
    """Ask the running bot to close and wait until it released its lock.

    Raises:
        RestoreRefused: it cannot be asked, or it is still running after :data:`STOP_TIMEOUT`.
    """
    try:
        await control(running, "stop")
    except ControlFailed as error:
        raise RestoreRefused(f"cannot ask the running bot to stop ({error}): stop it yourself") from None
    log.warning("Asked the running bot (%s) to stop for a restore", running.describe())
    deadline = asyncio.get_running_loop().time() + STOP_TIMEOUT
    while await asyncio.to_thread(find_running_instance, settings) is not None:
        if asyncio.get_running_loop().time() > deadline:
            raise RestoreRefused(
                f"the bot ({running.describe()}) is still running {STOP_TIMEOUT:.0f} s after "
                "it was asked to stop: stop it yourself"
            )
        await asyncio.sleep(0.2)


def _swap_in(incoming: Path, database: Path) -> None:
    # A -wal left from the old file would be applied to the new one and corrupt it: remove it first.
    # The safety backup, taken through SQLite, already holds any commit it had.
    for suffix in ("-wal", "-shm", "-journal"):
        remove_quietly(database.with_name(database.name + suffix))
    os.replace(incoming, database)
    fsync_folder(database.parent)
