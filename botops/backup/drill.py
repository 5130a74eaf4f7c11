"""The restore drill: prove the newest backup restores, verifies and upgrades, without touching the database.

A backup nobody has restored is a hope, not a backup. ``botops backup drill`` (weekly, from a timer)
takes the newest backup (or a chosen one), restores it into a scratch place (a SQLite file in a scratch
folder inside BACKUP_DIR, so on the backups' own disk; or a temporary PostgreSQL database on the
configured server), checks it as ``verify`` does, upgrades it to the code's schema with the real
migrations, checks it again and reports how long each step took. The scratch copy is always removed;
the live database is never opened for writing.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import shutil
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from botops.backup import postgres
from botops.backup import sqlite as sqlite_files
from botops.backup.manifest import Manifest
from botops.backup.store import (
    TMP_SUFFIX,
    check_backup_into,
    database_kind,
    list_backups,
    load_manifest,
    record_verification,
)
from botops.db import migrate
from botops.db.engine import create_engine_for_url
from botops.errors import BackupCorrupt, BackupError, BotopsError
from botops.settings import Settings

__all__ = ["DrillReport", "run_drill"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DrillReport:
    """What a drill found: the backup, the schema before and after the upgrade, rows, and step times."""

    backup: Manifest
    revision_before: str | None
    revision_after: str | None
    tables: dict[str, int]  # rows per table after the upgrade
    seconds: dict[str, float] = field(default_factory=dict)  # by step: restore, upgrade, check

    def age(self, now: datetime.datetime | None = None) -> datetime.timedelta:
        """Return how old the drilled backup is."""
        return (now or datetime.datetime.now(datetime.UTC)) - self.backup.created_at

    @property
    def upgraded(self) -> bool:
        return self.revision_before != self.revision_after


async def run_drill(settings: Settings, *, backup_dir: Path, backup_id: str | None = None) -> DrillReport:
    """Restore backup ``backup_id`` (the newest when ``None``) into a scratch place and upgrade it.

    Passing marks the backup verified, as ``verify`` does. A PostgreSQL backup is restored into a
    temporary database on DATABASE_URL's server, which the connecting role must be allowed to create.

    Raises:
        BackupNotFound: there is no backup of that id.
        BackupCorrupt: the backup fails verification, or the upgraded copy fails its integrity check.
        BackupError: there are no backups, the scratch copy cannot be written, or the upgrade fails.
    """
    manifest = _choose(backup_dir, backup_id)
    scratch = backup_dir / f".drill-{manifest.id}{TMP_SUFFIX}"
    await asyncio.to_thread(shutil.rmtree, scratch, True)
    try:
        scratch.mkdir(mode=0o700, parents=True)
        if manifest.database == "postgresql":
            return await _drill_postgres(settings, backup_dir, manifest, scratch / "archive")
        return await _drill_sqlite(backup_dir, manifest, scratch / "bot.db")
    except OSError as error:
        raise BackupError(f"the drill of backup {manifest.id} cannot use {scratch}: {error}") from error
    finally:
        await asyncio.to_thread(shutil.rmtree, scratch, True)


def _choose(backup_dir: Path, backup_id: str | None) -> Manifest:
    if backup_id is not None:
        return load_manifest(backup_dir, backup_id)
    readable = [entry for entry in list_backups(backup_dir) if entry.manifest is not None]
    if not readable:
        raise BackupError(
            f"there are no backups in {backup_dir} to drill: make one with `botops backup create`"
        )
    newest = max(readable, key=lambda entry: (entry.created_at, entry.id))
    return load_manifest(backup_dir, newest.id)


async def _upgrade(manifest: Manifest, url: str) -> migrate.MigrationResult:
    engine = create_engine_for_url(url)
    try:
        return await migrate.upgrade(engine)
    except BotopsError as error:
        raise BackupError(f"backup {manifest.id} restores, but does not upgrade: {error}") from error
    finally:
        await engine.dispose()


async def _drill_postgres(
    settings: Settings, backup_dir: Path, manifest: Manifest, archive: Path
) -> DrillReport:
    url = settings.database_url.get_secret_value()
    if database_kind(settings) != "postgresql":
        raise BackupError(
            f"backup {manifest.id} is of a PostgreSQL database: drill it with DATABASE_URL naming a "
            "PostgreSQL server, where the drill makes its scratch database"
        )
    seconds: dict[str, float] = {}
    started = time.monotonic()
    await asyncio.to_thread(check_backup_into, backup_dir, manifest, archive)
    seconds["verify"] = time.monotonic() - started
    await asyncio.to_thread(record_verification, backup_dir, manifest.id)
    async with postgres.scratch_database(url) as scratch_url:
        started = time.monotonic()
        await postgres.restore_archive(scratch_url, archive, expected_tables=manifest.tables)
        seconds["restore"] = time.monotonic() - started
        started = time.monotonic()
        result = await _upgrade(manifest, scratch_url)
        seconds["upgrade"] = time.monotonic() - started
        started = time.monotonic()
        tables = await postgres.count_rows(scratch_url)
        seconds["check"] = time.monotonic() - started
    return _passed(DrillReport(manifest, result.before, result.after, tables, seconds))


async def _drill_sqlite(backup_dir: Path, manifest: Manifest, copy: Path) -> DrillReport:
    seconds: dict[str, float] = {}
    started = time.monotonic()
    await asyncio.to_thread(check_backup_into, backup_dir, manifest, copy)
    seconds["restore and verify"] = time.monotonic() - started
    await asyncio.to_thread(record_verification, backup_dir, manifest.id)

    started = time.monotonic()
    result = await _upgrade(manifest, f"sqlite+aiosqlite:///{copy}")
    seconds["upgrade"] = time.monotonic() - started

    started = time.monotonic()
    problem = await asyncio.to_thread(sqlite_files.integrity_problem, copy)
    if problem is not None:
        raise BackupCorrupt(manifest.id, f"after the upgrade, the database in it {problem}")
    try:
        tables = await asyncio.to_thread(sqlite_files.row_counts, copy)
    except sqlite3.Error as error:
        raise BackupCorrupt(
            manifest.id, f"after the upgrade, its tables cannot be counted ({error})"
        ) from error
    seconds["check"] = time.monotonic() - started
    return _passed(DrillReport(manifest, result.before, result.after, tables, seconds))


def _passed(report: DrillReport) -> DrillReport:
    log.info(
        "Drill of backup %s passed: schema %s -> %s, %d rows, %.1f s",
        report.backup.id,
        report.revision_before,
        report.revision_after,
        sum(report.tables.values()),
        sum(report.seconds.values()),
    )
    return report
