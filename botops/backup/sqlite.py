"""SQLite file work for backups: the one-step online copy and its checks.

Everything here is blocking (stdlib ``sqlite3``) and meant to run in a worker thread; compression is
:mod:`botops.backup.compression`, and
:mod:`botops.backup.store` arranges the files, names and permissions around it.

The copy is taken with the online backup API in one step (``pages=-1``): SQLite restarts a paged backup
whenever another connection commits, so under a busy writer a paged backup never finishes, while one
step reads a consistent snapshot (including commits still in the ``-wal``) and lets the writer go on.
"""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from botops.backup.compression import header_problem

__all__ = [
    "SQLITE_HEADER",
    "integrity_problem",
    "online_copy",
    "read_revision",
    "row_counts",
]

log = logging.getLogger(__name__)

#: The first 16 bytes of every SQLite database file.
SQLITE_HEADER = b"SQLite format 3\x00"
_BUSY_TIMEOUT_MS = 30_000


def online_copy(source: Path, target: Path) -> None:
    """Copy the database at ``source`` into the existing empty file ``target`` in one backup step.

    The copy is switched from WAL to a rollback journal, so it is one self-contained file. It is a scratch
    file (compressed, then deleted), so it is written without fsync: the compressed file is what reaches
    the disk for sure, and a gigabyte flushed at once would stall the bot's own commits behind it.

    Raises:
        sqlite3.Error: the source cannot be read or the target written.
    """
    source_connection = sqlite3.connect(source, timeout=_BUSY_TIMEOUT_MS / 1000)
    try:
        target_connection = sqlite3.connect(target)
        try:
            target_connection.execute("PRAGMA synchronous=OFF")
            source_connection.backup(target_connection, pages=-1)
            target_connection.execute("PRAGMA journal_mode=DELETE")
        finally:
            target_connection.close()
    finally:
        source_connection.close()


def integrity_problem(path: Path, *, quick: bool = False) -> str | None:
    """Run ``PRAGMA integrity_check`` on the database at ``path``; return its complaint or ``None``.

    ``quick`` runs ``quick_check`` instead: every page, b-tree and record, but not whether each index
    holds exactly its table's rows; several times faster on a large database.
    """
    problem = header_problem(path, SQLITE_HEADER, "a SQLite database")
    if problem is not None:
        return problem
    try:
        connection = sqlite3.connect(path)
        try:
            rows = connection.execute("PRAGMA quick_check" if quick else "PRAGMA integrity_check").fetchall()
        finally:
            connection.close()
    except sqlite3.Error as error:
        return f"integrity check failed ({error})"
    answers = [str(row[0]) for row in rows]
    if answers == ["ok"]:
        return None
    return "integrity check failed: " + "; ".join(answers[:3])


def row_counts(path: Path) -> dict[str, int]:
    """Return the number of rows of every table of the database at ``path``.

    Raises:
        sqlite3.Error: the database cannot be read.
    """
    connection = sqlite3.connect(path)
    try:
        names = [
            str(row[0])
            for row in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                "ORDER BY name"
            )
        ]
        counts: dict[str, int] = {}
        for name in names:
            quoted = '"' + name.replace('"', '""') + '"'
            # A table name cannot be a bound parameter; it comes from sqlite_master and is quoted.
            (count,) = connection.execute(f"SELECT count(*) FROM {quoted}").fetchone()  # noqa: S608
            counts[name] = int(count)
        return counts
    finally:
        connection.close()


def read_revision(path: Path) -> str | None:
    """Return the Alembic revision recorded in the database at ``path``, ``None`` without one.

    Raises:
        sqlite3.Error: the database cannot be read.
    """
    connection = sqlite3.connect(path)
    try:
        exists = connection.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'alembic_version'"
        ).fetchone()
        if exists is None:
            return None
        versions = sorted(
            str(row[0]) for row in connection.execute("SELECT version_num FROM alembic_version")
        )
        return ",".join(versions) if versions else None
    finally:
        connection.close()
