"""Back up, verify and list backups of the database (SQLite or PostgreSQL), as files in BACKUP_DIR.

A backup ``<id>`` is its data, zstandard-compressed (``<id>.db.zst``, the SQLite file, or
``<id>.pgdump.zst``, a ``pg_dump -Fc`` archive), and ``<id>.json`` (its
:class:`~botops.backup.manifest.Manifest`). Both are written under ``.tmp`` names and renamed only
after the copy passed its integrity check and both were flushed to disk, data first: a backup exists
when its manifest does, and a failure leaves no file under a backup's name. Folder 0700, files 0600.

A successful :func:`verify_backup` leaves ``<id>.verified`` (its time) for ``list`` and retention.
Restoring is :mod:`botops.backup.restore`, which uses the checks here.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import os
import shutil
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import zstandard
from sqlalchemy.engine import make_url

from botops import __version__
from botops.backup import compression, postgres
from botops.backup import sqlite as sqlite_files
from botops.backup.manifest import (
    BACKUP_ID_RE,
    DatabaseKind,
    Manifest,
    Reason,
    new_backup_id,
    read_manifest,
    write_manifest,
)
from botops.backup.retention import RetentionPlan, RetentionPolicy, plan_retention
from botops.errors import BackupCorrupt, BackupError, BackupFailed, BackupNotFound
from botops.redaction import masked_url
from botops.settings import Settings
from botops.version import git_commit

__all__ = [
    "DATA_SUFFIX",
    "MANIFEST_SUFFIX",
    "PG_DATA_SUFFIX",
    "TMP_SUFFIX",
    "VERIFIED_SUFFIX",
    "ListedBackup",
    "Progress",
    "check_backup_into",
    "create_backup",
    "data_path",
    "database_kind",
    "fsync_folder",
    "list_backups",
    "load_manifest",
    "prune_backups",
    "record_verification",
    "remove_quietly",
    "sqlite_path",
    "verify_backup",
]

log = logging.getLogger(__name__)

DATA_SUFFIX = ".db.zst"
PG_DATA_SUFFIX = ".pgdump.zst"
_DATA_SUFFIXES: dict[DatabaseKind, str] = {"sqlite": DATA_SUFFIX, "postgresql": PG_DATA_SUFFIX}
MANIFEST_SUFFIX = ".json"
#: Written after a backup passed :func:`verify_backup`; holds the time, removed when a verification fails.
VERIFIED_SUFFIX = ".verified"
TMP_SUFFIX = ".tmp"


@dataclass(frozen=True)
class ListedBackup:
    """One backup in the folder: its manifest (or why it cannot be read) and when it last verified.

    ``created_at`` comes from the id, so a backup with an unreadable manifest still has an age.
    """

    id: str
    created_at: datetime.datetime
    manifest: Manifest | None
    problem: str | None
    verified_at: datetime.datetime | None  # None: never verified, or its last verification failed

    @property
    def verified(self) -> bool:
        return self.verified_at is not None and self.manifest is not None


class Progress(Protocol):
    """Where a long backup step reports itself (the CLI draws a progress bar); called from worker threads."""

    def phase(self, description: str, total: int | None = None) -> None:
        """A new step begins; ``total`` is its size in bytes when known."""

    def advance(self, amount: int) -> None:
        """``amount`` more bytes of the current step are done."""


def database_kind(settings: Settings) -> DatabaseKind:
    """Return which kind of database ``settings.database_url`` names.

    Raises:
        BackupFailed: it is neither SQLite nor PostgreSQL.
    """
    backend = make_url(settings.database_url.get_secret_value()).get_backend_name()
    if backend == "sqlite":
        return "sqlite"
    if backend == "postgresql":
        return "postgresql"
    raise BackupFailed(f"DATABASE_URL is {backend}; botops backs up SQLite and PostgreSQL")


def sqlite_path(settings: Settings) -> Path:
    """Return the file of the SQLite database that ``settings.database_url`` names.

    Raises:
        BackupFailed: the database is not SQLite, or in memory.
    """
    url = make_url(settings.database_url.get_secret_value())
    if url.get_backend_name() != "sqlite":
        raise BackupFailed(f"DATABASE_URL is {url.get_backend_name()}, not a SQLite file")
    database = url.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        raise BackupFailed("DATABASE_URL names an in-memory SQLite database, which has no file to back up")
    return Path(database)


def data_path(backup_dir: Path, manifest: Manifest) -> Path:
    """Return the data file of the backup of ``manifest``."""
    return backup_dir / f"{manifest.id}{_DATA_SUFFIXES[manifest.database]}"


@dataclass(frozen=True)
class _Made:
    """What making the data file found: sizes, checksum, rows per table, schema revision."""

    raw_size: int
    compressed_size: int
    sha256: str
    tables: dict[str, int]
    revision: str | None


async def create_backup(
    settings: Settings, *, reason: Reason, backup_dir: Path, progress: Progress | None = None
) -> Manifest:
    """Back up the database into ``backup_dir``; return the new backup's manifest.

    The blocking work runs in worker threads, so an event loop stays free.

    Raises:
        BackupFailed: the database is missing, of another kind, or a step failed; no file is left behind.
    """
    kind = database_kind(settings)
    url = settings.database_url.get_secret_value()
    if kind == "sqlite":
        database = sqlite_path(settings)
        if not database.is_file():
            raise BackupFailed(f"there is no database at {database} (DATABASE_URL)")
        where = str(database)
    else:
        where = masked_url(url)
    _prepare_folder(backup_dir)
    started = time.monotonic()
    created_at = datetime.datetime.now(datetime.UTC)  # to the µs: two in a second stay ordered
    backup_id = new_backup_id(created_at)
    raw = backup_dir / f"{backup_id}.raw{TMP_SUFFIX}"
    data = backup_dir / f"{backup_id}{_DATA_SUFFIXES[kind]}"
    manifest_path = _manifest_path(backup_dir, backup_id)
    data_tmp, manifest_tmp = _tmp(data), _tmp(manifest_path)
    renamed: list[Path] = []
    try:
        if kind == "sqlite":
            made = await _make_sqlite(database, raw, data_tmp, progress)
        else:
            made = await _make_postgres(url, raw, data_tmp, progress)
        manifest = Manifest(
            id=backup_id,
            created_at=created_at,
            database=kind,
            schema_revision=made.revision,
            git_commit=await asyncio.to_thread(git_commit),
            botops_version=__version__,
            reason=reason,
            raw_size=made.raw_size,
            compressed_size=made.compressed_size,
            sha256=made.sha256,
            tables=made.tables,
            duration_seconds=round(time.monotonic() - started, 3),
        )
        write_manifest(manifest, manifest_tmp)
        for temporary, final in ((data_tmp, data), (manifest_tmp, manifest_path)):
            os.replace(temporary, final)
            renamed.append(final)
        fsync_folder(backup_dir)
    except BackupFailed:
        remove_quietly(raw, data_tmp, manifest_tmp, *renamed)
        raise
    except (OSError, sqlite3.Error, zstandard.ZstdError, ValueError) as error:
        remove_quietly(raw, data_tmp, manifest_tmp, *renamed)
        raise BackupFailed(
            f"backing up {where} into {backup_dir}: {error}{_space_hint(backup_dir)}"
        ) from error
    except BaseException:  # cancelled or interrupted: still leave nothing half-made behind
        remove_quietly(raw, data_tmp, manifest_tmp, *renamed)
        raise
    remove_quietly(raw)
    log.info(
        "Backed up %s as %s (%s, %d bytes, %d compressed)",
        where,
        backup_id,
        reason,
        manifest.raw_size,
        manifest.compressed_size,
    )
    return manifest


async def _make_sqlite(database: Path, raw: Path, data_tmp: Path, progress: Progress | None) -> _Made:
    """Copy the SQLite file online into ``raw``, then check it and compress it into ``data_tmp``."""
    os.close(os.open(raw, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    if progress is not None:
        progress.phase(f"Copying {database.name} (online backup)")
    await asyncio.to_thread(sqlite_files.online_copy, database, raw)
    if progress is not None:
        progress.phase("Compressing and checking the copy", (await asyncio.to_thread(raw.stat)).st_size)
    # The check and the compression both only read the copy: run them side by side on two cores. The
    # copy is page for page a snapshot of a database SQLite keeps consistent, so the quick check (pages,
    # b-trees, records) is the check here; verify (and create --verify, the bot's schedule, the drill)
    # runs the full integrity_check, index contents included, on what was written.
    problem, compressed = await asyncio.gather(
        asyncio.to_thread(sqlite_files.integrity_problem, raw, quick=True),
        asyncio.to_thread(
            compression.compress_file,
            raw,
            data_tmp,
            on_read=progress.advance if progress is not None else None,
        ),
    )
    if problem is not None:
        raise BackupFailed(f"the copy of {database} {problem}")
    tables = await asyncio.to_thread(sqlite_files.row_counts, raw)
    revision = await asyncio.to_thread(sqlite_files.read_revision, raw)
    return _Made(compressed.raw_size, compressed.compressed_size, compressed.sha256, tables, revision)


async def _make_postgres(url: str, raw: Path, data_tmp: Path, progress: Progress | None) -> _Made:
    """Dump PostgreSQL into ``data_tmp``, then read the archive back from it to check it end to end."""
    if progress is not None:
        progress.phase("Dumping the database (pg_dump)")
    dumped = await postgres.dump_database(url, data_tmp)
    if progress is not None:
        progress.phase("Checking the archive (pg_restore)", dumped.raw_size)
    await asyncio.to_thread(compression.decompress_file, data_tmp, raw, limit=dumped.raw_size)
    problem = await asyncio.to_thread(postgres.archive_problem, raw)
    if problem is not None:
        raise BackupFailed(f"the archive pg_dump wrote {problem}")
    contents = await asyncio.to_thread(postgres.archive_contents, raw)
    if contents.tables != dumped.tables:
        raise BackupFailed("the archive's row counts differ from the database's in the dump's snapshot")
    return _Made(dumped.raw_size, dumped.compressed_size, dumped.sha256, dumped.tables, dumped.revision)


async def verify_backup(backup_dir: Path, backup_id: str) -> Manifest:
    """Check a backup completely: manifest, checksum, decompression, integrity, row counts.

    Success is recorded in ``<id>.verified`` (for ``list`` and retention), failure removes that record.

    Raises:
        BackupNotFound: there is no such backup.
        BackupCorrupt: a check failed; the message names it.
        BackupError: the backup cannot be read or decompressed for a reason other than its content.
    """
    record = backup_dir / f"{backup_id}{VERIFIED_SUFFIX}"
    try:
        manifest = load_manifest(backup_dir, backup_id)
    except BackupCorrupt:
        remove_quietly(record)
        raise
    scratch = backup_dir / f"{backup_id}.verify{TMP_SUFFIX}"
    remove_quietly(scratch)
    try:
        await asyncio.to_thread(check_backup_into, backup_dir, manifest, scratch)
    except BackupCorrupt:
        remove_quietly(record)
        raise
    finally:
        remove_quietly(scratch)
    try:
        await asyncio.to_thread(record_verification, backup_dir, backup_id)
    except OSError as error:  # the backup is sound; only `list` and retention will not know it
        log.warning("Backup %s verified, but %s cannot be written: %s", backup_id, record, error)
    log.info("Verified backup %s", backup_id)
    return manifest


def list_backups(backup_dir: Path) -> list[ListedBackup]:
    """List the backups in ``backup_dir``, oldest first; a missing folder has none."""
    if not backup_dir.is_dir():
        return []
    listed: list[ListedBackup] = []
    for path in sorted(backup_dir.glob(f"*{MANIFEST_SUFFIX}")):
        backup_id = path.name.removesuffix(MANIFEST_SUFFIX)
        if not BACKUP_ID_RE.match(backup_id):
            continue
        created_at = datetime.datetime.strptime(backup_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
        verified_at = _read_verification(backup_dir / f"{backup_id}{VERIFIED_SUFFIX}")
        try:
            manifest = read_manifest(path, expected_id=backup_id)
        except BackupCorrupt as error:
            listed.append(ListedBackup(backup_id, created_at, None, error.reason, verified_at))
        else:
            listed.append(ListedBackup(backup_id, manifest.created_at, manifest, None, verified_at))
    return listed


def delete_backup(backup_dir: Path, backup_id: str) -> None:
    """Remove every file of backup ``backup_id``: the data last, so a half-deleted backup lists as broken."""
    remove_quietly(
        backup_dir / f"{backup_id}{VERIFIED_SUFFIX}",
        _manifest_path(backup_dir, backup_id),
        *(backup_dir / f"{backup_id}{suffix}" for suffix in _DATA_SUFFIXES.values()),
    )


def prune_backups(
    backup_dir: Path, policy: RetentionPolicy, *, now: datetime.datetime, dry_run: bool = False
) -> RetentionPlan[ListedBackup]:
    """Delete the backups ``policy`` does not keep (none with ``dry_run``); return the plan.

    Raises:
        BackupDatedInFuture: a backup is dated after ``now``; nothing is deleted.
    """
    plan = plan_retention(list_backups(backup_dir), policy, now=now)
    if not dry_run:
        for gone in plan.delete:
            delete_backup(backup_dir, gone.id)
            log.info("Pruned backup %s (%s)", gone.id, policy)
    return plan


# -- internals -------------------------------------------------------------------------------------------


def _manifest_path(backup_dir: Path, backup_id: str) -> Path:
    return backup_dir / f"{backup_id}{MANIFEST_SUFFIX}"


def _tmp(path: Path) -> Path:
    return path.with_name(path.name + TMP_SUFFIX)


def load_manifest(backup_dir: Path, backup_id: str) -> Manifest:
    """Read the manifest of backup ``backup_id``.

    Raises:
        BackupNotFound: there is no such backup.
        BackupCorrupt: its manifest is malformed.
    """
    if not BACKUP_ID_RE.match(backup_id):
        raise BackupNotFound(backup_id, backup_dir)
    path = _manifest_path(backup_dir, backup_id)
    if not path.exists():
        raise BackupNotFound(backup_id, backup_dir)
    return read_manifest(path, expected_id=backup_id)


def check_backup_into(backup_dir: Path, manifest: Manifest, target: Path) -> None:
    """Verify the backup of ``manifest`` by decompressing it into the new file ``target`` and checking that.

    Raises:
        BackupCorrupt: a check failed.
        BackupError: a file cannot be read or written.
    """
    data = data_path(backup_dir, manifest)

    def corrupt(reason: str) -> BackupCorrupt:
        return BackupCorrupt(manifest.id, reason)

    try:
        size = data.stat().st_size
        if size != manifest.compressed_size:
            raise corrupt(f"{data.name} has {size} bytes, its manifest says {manifest.compressed_size}")
        if compression.file_sha256(data) != manifest.sha256:
            raise corrupt(f"the checksum of {data.name} differs from its manifest's")
        written = compression.decompress_file(data, target, limit=manifest.raw_size)
    except FileNotFoundError as error:
        if Path(str(error.filename)) != data:
            raise BackupError(f"cannot check backup {manifest.id}: {error}") from error
        raise corrupt(f"{data.name} is missing") from None
    except (zstandard.ZstdError, ValueError) as error:
        raise corrupt(f"{data.name} cannot be decompressed ({error})") from error
    except OSError as error:  # reading the backup or writing the scratch copy: not proof of damage
        raise BackupError(f"cannot check backup {manifest.id}: {error}") from error
    if written != manifest.raw_size:
        raise corrupt(f"it decompresses to {written} bytes, its manifest says {manifest.raw_size}")
    if manifest.database == "postgresql":
        tables = _archive_tables(manifest, target)
    else:
        problem = sqlite_files.integrity_problem(target)
        if problem is not None:
            raise corrupt(f"the database in it {problem}")
        try:
            tables = sqlite_files.row_counts(target)
        except sqlite3.Error as error:
            raise corrupt(f"its tables cannot be counted ({error})") from error
    if tables != manifest.tables:
        differing = sorted(
            name
            for name in tables.keys() | manifest.tables.keys()
            if tables.get(name) != manifest.tables.get(name)
        )
        raise corrupt(f"its row counts differ from its manifest's in {', '.join(differing)}")


def _archive_tables(manifest: Manifest, archive: Path) -> dict[str, int]:
    """Check the decompressed pg_dump archive of ``manifest`` and return its rows per table.

    Raises:
        BackupCorrupt: pg_restore cannot read the archive.
        BackupError: pg_restore is missing or cannot be started.
    """
    try:
        problem = postgres.archive_problem(archive)
        if problem is not None:
            raise BackupCorrupt(manifest.id, f"the archive in it {problem}")
        return postgres.archive_contents(archive).tables
    except ValueError as error:
        raise BackupCorrupt(manifest.id, f"the archive in it cannot be read ({error})") from error
    except OSError as error:
        raise BackupError(f"cannot check backup {manifest.id}: {error}") from error


def record_verification(backup_dir: Path, backup_id: str) -> None:
    """Write ``<id>.verified`` with the time now: the backup passed every check.

    Raises:
        OSError: the record cannot be written.
    """
    record = backup_dir / f"{backup_id}{VERIFIED_SUFFIX}"
    temporary = _tmp(record)
    remove_quietly(temporary)
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(datetime.datetime.now(datetime.UTC).replace(microsecond=0).isoformat() + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, record)


def _read_verification(record: Path) -> datetime.datetime | None:
    try:
        verified_at = datetime.datetime.fromisoformat(record.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None
    return verified_at if verified_at.tzinfo is not None else None


def _space_hint(backup_dir: Path) -> str:
    """Say how much room the backup folder's disk has: a full disk is the usual cause of a failed write."""
    try:
        free = shutil.disk_usage(backup_dir).free
    except OSError:
        return ""
    return (
        f" ({free / 2**20:.0f} MiB free on the disk of {backup_dir}; a backup needs about twice the database)"
    )


def _prepare_folder(backup_dir: Path) -> None:
    try:
        backup_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(backup_dir, 0o700)
    except OSError as error:
        raise BackupFailed(
            f"cannot use {backup_dir} as the backup folder ({error.strerror or error}): "
            "point BACKUP_DIR at a folder this user may write to"
        ) from error


def fsync_folder(folder: Path) -> None:
    """Flush ``folder``'s entries to disk, so a rename in it survives a power cut."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def remove_quietly(*paths: Path) -> None:
    """Remove each of ``paths`` that exists."""
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
