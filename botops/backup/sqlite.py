"""SQLite file work for backups: the one-step online copy, its checks, and zstandard in and out.

Everything here is blocking (stdlib ``sqlite3``, ``zstandard``) and meant to run in a worker thread;
:mod:`botops.backup.store` arranges the files, names and permissions around it.

The copy is taken with the online backup API in one step (``pages=-1``): SQLite restarts a paged backup
whenever another connection commits, so under a busy writer a paged backup never finishes, while one
step reads a consistent snapshot (including commits still in the ``-wal``) and lets the writer go on.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, cast

import zstandard

__all__ = [
    "CHUNK_SIZE",
    "SQLITE_HEADER",
    "Compressed",
    "compress_file",
    "decompress_file",
    "file_sha256",
    "integrity_problem",
    "online_copy",
    "read_revision",
    "row_counts",
]

log = logging.getLogger(__name__)

CHUNK_SIZE = 1 << 20
#: The first 16 bytes of every SQLite database file.
SQLITE_HEADER = b"SQLite format 3\x00"
#: Level 2 on two threads: about twice as fast as level 3 on a gigabyte for 5 % more bytes (bench/backup.py).
_ZSTD_LEVEL = 2
#: The compressed file is flushed in steps this big, so the disk never gets a gigabyte to write at once.
_FLUSH_EVERY = 32 << 20
_ZSTD_THREADS = 2
_BUSY_TIMEOUT_MS = 30_000


@dataclass(frozen=True)
class Compressed:
    """Sizes of a compressed file and the SHA-256 of its compressed bytes."""

    raw_size: int
    compressed_size: int
    sha256: str


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
    try:
        with open(path, "rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as error:
        return f"cannot be read ({error.strerror or error})"
    if header != SQLITE_HEADER:
        return "is not a SQLite database (its header is wrong)"
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


#: fdatasync where the system has it (not Windows), fsync elsewhere.
_datasync = getattr(os, "fdatasync", os.fsync)


class _HashingWriter:
    """A file writer that also hashes and counts what goes through it, flushing to disk as it goes."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self.digest = hashlib.sha256()
        self.size = 0
        self._unflushed = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        written = self._handle.write(data)
        self._unflushed += len(data)
        if self._unflushed >= _FLUSH_EVERY:
            self._handle.flush()
            _datasync(self._handle.fileno())
            self._unflushed = 0
        return written

    def flush(self) -> None:
        self._handle.flush()


def compress_file(source: Path, target: Path, *, on_read: Callable[[int], None] | None = None) -> Compressed:
    """Compress ``source`` with zstandard into the new file ``target`` (mode 0600), flushed to disk.

    ``on_read`` is called with the size of each chunk read, for a progress bar.

    Raises:
        OSError: a file cannot be read or written (``target`` existing already included).
    """
    raw_size = source.stat().st_size
    # The frame checksum (xxHash64 of the content) catches damage the SHA-256 cannot: a manifest rewritten
    # to match a damaged file, or damage after a verification.
    compressor = zstandard.ZstdCompressor(level=_ZSTD_LEVEL, threads=_ZSTD_THREADS, write_checksum=True)
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as handle, open(source, "rb") as raw:
        writer = _HashingWriter(handle)
        # The writer has what stream_writer calls (write, flush) and hashes what reaches the file.
        with compressor.stream_writer(cast(IO[bytes], writer), size=raw_size, closefd=False) as stream:
            while chunk := raw.read(CHUNK_SIZE):
                stream.write(chunk)
                if on_read is not None:
                    on_read(len(chunk))
        handle.flush()
        os.fsync(handle.fileno())
    return Compressed(raw_size=raw_size, compressed_size=writer.size, sha256=writer.digest.hexdigest())


def decompress_file(source: Path, target: Path, *, limit: int) -> int:
    """Decompress ``source`` into the new file ``target`` (mode 0600); return the bytes written.

    Stops with ``ValueError`` past ``limit`` bytes, so a bad frame cannot fill the disk.

    Raises:
        OSError: a file cannot be read or written.
        zstandard.ZstdError: ``source`` is not a complete zstandard stream.
        ValueError: the content is longer than ``limit``.
    """
    decompressor = zstandard.ZstdDecompressor()
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    written = 0
    with os.fdopen(descriptor, "wb") as handle, open(source, "rb") as compressed:
        # read_across_frames: a frame appended after the first must not go unnoticed.
        with decompressor.stream_reader(compressed, read_across_frames=True) as stream:
            while chunk := stream.read(CHUNK_SIZE):
                written += len(chunk)
                if written > limit:
                    raise ValueError(f"it decompresses to more than the {limit} bytes its manifest says")
                handle.write(chunk)
        handle.flush()
        os.fsync(handle.fileno())
    return written


def file_sha256(path: Path) -> str:
    """Return the SHA-256 of the file at ``path`` in hex.

    Raises:
        OSError: the file cannot be read.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            digest.update(chunk)
    return digest.hexdigest()
