"""WAL checkpoints off the commit path: the bot checkpoints its SQLite database from a thread of its own.

SQLite's automatic checkpoint runs inside the commit that crosses ``wal_autocheckpoint`` pages, and its
fsync of the database file then waits behind whatever else the disk is flushing (a backup writing
hundreds of megabytes, another program): that one commit, and the event loop waiting on it, stalls for
tens of milliseconds (``bench/backup.py``). botops switches the automatic checkpoint off on every
connection (:data:`botops.db.engine.SQLITE_PRAGMAS`) and the running bot checkpoints instead, PASSIVE
(never blocking a writer or a reader) every :data:`INTERVAL` seconds from a worker thread. A PASSIVE
checkpoint that caught up lets the next writer start the WAL from its beginning again, so the ``-wal``
file stays about as large as a few seconds of writes; ``journal_size_limit`` trims what a burst left.

Without a running bot (the CLI, tests), SQLite checkpoints when the last connection to the database
closes, as it always does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

from sqlalchemy.engine import make_url

from botops.aio import cancel_and_wait

__all__ = ["INTERVAL", "WalCheckpointer", "checkpoint_sqlite"]

log = logging.getLogger(__name__)

#: Seconds between two checkpoints: the WAL holds at most about this much of the bot's writes.
INTERVAL = 1.0
_BUSY_TIMEOUT_MS = 5000


class WalCheckpointer:
    """Checkpoint one SQLite database (PASSIVE) every :data:`INTERVAL` seconds from a worker thread."""

    def __init__(self, database: Path, *, interval: float = INTERVAL) -> None:
        self.database = database
        self.interval = interval
        self.checkpoints = 0
        self._connection: sqlite3.Connection | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start checkpointing."""
        self._task = asyncio.create_task(self._run(), name="botops-wal-checkpoint")

    async def stop(self) -> None:
        """Stop, then checkpoint once more so the ``-wal`` is small for whoever opens the file next."""
        if self._task is not None:
            await cancel_and_wait([self._task])
            self._task = None
        with contextlib.suppress(sqlite3.Error):
            await asyncio.to_thread(self._checkpoint)
        if self._connection is not None:
            await asyncio.to_thread(self._connection.close)
            self._connection = None

    async def _run(self) -> None:
        failures = 0
        while True:
            await asyncio.sleep(self.interval)
            try:
                await asyncio.to_thread(self._checkpoint)
            except sqlite3.Error as error:  # the next one tries again; SQLite keeps the WAL meanwhile
                failures += 1
                if failures in (1, 10) or failures % 100 == 0:
                    log.warning(
                        "WAL checkpoint of %s failed (%d in a row): %s", self.database, failures, error
                    )
            else:
                failures = 0

    def _checkpoint(self) -> None:
        if self._connection is None:
            # check_same_thread=False: every call runs in some worker thread, one at a time.
            self._connection = sqlite3.connect(
                self.database, timeout=_BUSY_TIMEOUT_MS / 1000, check_same_thread=False
            )
        self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.checkpoints += 1


@contextlib.asynccontextmanager
async def checkpoint_sqlite(database_url: str) -> AsyncIterator[WalCheckpointer | None]:
    """Checkpoint the SQLite file ``database_url`` names for the block; nothing for PostgreSQL or memory."""
    url = make_url(database_url)
    database = url.database or ""
    if (
        url.get_backend_name() != "sqlite"
        or not database
        or database == ":memory:"
        or database.startswith("file:")
    ):
        yield None
        return
    checkpointer = WalCheckpointer(Path(database))
    checkpointer.start()
    try:
        yield checkpointer
    finally:
        await checkpointer.stop()
