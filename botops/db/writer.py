"""The batched writer: events merged in memory, written in one transaction every few seconds.

A feature hands each event to :meth:`BatchedWriter.add`, which merges it into a pending dict keyed by
row (the levels feature: ``(guild_id, user_id) -> XpDelta``), so a thousand messages of one member
become one row. The writer's own task flushes the pending rows every ``interval`` seconds, or sooner
once ``max_pending`` rows wait; :meth:`flush` does it on demand (before a backup) and :meth:`stop` once
more on shutdown. A crash therefore loses at most the last ``interval`` seconds of events.

Each flush is one transaction through the feature's ``write`` function. Nothing is counted twice and
nothing is lost: the pending dict is swapped out before the transaction starts (events that arrive
meanwhile go to the next batch), and if the transaction fails the whole batch is merged back in front
of them and tried again, with a bounded backoff, by the next flush. A flush outlives the cancellation
of its caller: the transaction runs in a task of its own, so a cancelled caller never leaves a batch
whose fate (committed or merged back) is unknown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Final, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from botops.db.engine import BEGIN_IMMEDIATE, connect

__all__ = ["BACKOFF_MAX", "BACKOFF_START", "BatchedWriter", "backoff_delay"]

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

#: The first wait after a failed flush, doubled per failure in a row up to :data:`BACKOFF_MAX`.
BACKOFF_START: Final = 0.5
BACKOFF_MAX: Final = 30.0
#: How many recent flush durations the writer keeps for the metrics.
RECENT_FLUSHES: Final = 128

# Typed Any so that ``dict.get(key, _MISSING)`` stays a V for the type checker after the identity test.
_MISSING: Final[Any] = object()


def backoff_delay(failures: int, *, start: float = BACKOFF_START, maximum: float = BACKOFF_MAX) -> float:
    """Return the seconds to wait after ``failures`` failed flushes in a row: ``start`` doubled, capped."""
    if failures <= 0:
        return 0.0
    # The exponent is capped too, so a writer that failed for days never computes a huge float.
    return float(min(maximum, start * 2 ** min(failures - 1, 64)))


class BatchedWriter(Generic[K, V]):
    """Merge values per key in memory and write them in batches, each batch in one transaction.

    ``write(connection, batch)`` writes one batch inside a transaction the writer opened and commits.
    ``merge(older, newer)`` returns the value of both; it may update ``older`` in place and return it,
    since every value belongs to the writer once added (that spares an allocation per event). It must
    be associative: a failed batch is merged back in front of the values added since.
    ``on_flushed(batch)`` runs after each commit.
    """

    def __init__(
        self,
        engine: AsyncEngine,
        write: Callable[[AsyncConnection, dict[K, V]], Awaitable[None]],
        *,
        merge: Callable[[V, V], V],
        interval: float = 5.0,
        max_pending: int = 5000,
        name: str,
        on_flushed: Callable[[dict[K, V]], None] | None = None,
        backoff_start: float = BACKOFF_START,
        backoff_max: float = BACKOFF_MAX,
    ) -> None:
        if interval <= 0 or max_pending <= 0:
            raise ValueError(f"{name}: interval and max_pending must be positive")
        self.name = name
        self.interval = interval
        self.max_pending = max_pending
        self.backoff_start = backoff_start
        self.backoff_max = backoff_max
        #: Flushes that committed at least one row, and flushes that failed (each merged its batch back).
        self.flushes = 0
        self.failures = 0
        #: Seconds the last committed flush took, from opening the connection to the commit.
        self.last_flush_seconds: float | None = None
        #: Called with the seconds of each committed flush (the metrics' histogram); must not raise.
        self.observe_flush: Callable[[float], None] | None = None
        self._engine = engine
        self._write = write
        self._merge = merge
        self._on_flushed = on_flushed
        self._pending: dict[K, V] = {}
        self._in_flight = 0
        self._durations: deque[float] = deque(maxlen=RECENT_FLUSHES)
        # One transaction at a time, so a batch merged back after a failure is never overtaken.
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- the hot path ----------------------------------------------------------------------------------

    def add(self, key: K, value: V) -> None:
        """Merge ``value`` into the pending row ``key``; wake an early flush once ``max_pending`` rows wait.

        O(1) and synchronous: it runs once per event, on the hot path. From here on ``value`` belongs to
        the writer, which may hand it to ``merge`` to be updated in place: add a fresh value each time.
        """
        pending = self._pending
        previous = pending.get(key, _MISSING)
        if previous is _MISSING:
            pending[key] = value
            # Only a new key can make the batch reach max_pending.
            if len(pending) >= self.max_pending:
                self._wake.set()
        else:
            pending[key] = self._merge(previous, value)

    # -- what the metrics read -------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Rows waiting for the next flush (a flush in progress holds its own batch: :attr:`in_flight`)."""
        return len(self._pending)

    @property
    def in_flight(self) -> int:
        """Rows of the flush in progress, 0 when none runs."""
        return self._in_flight

    @property
    def flush_seconds(self) -> tuple[float, ...]:
        """Durations of the recent committed flushes, oldest first."""
        return tuple(self._durations)

    @property
    def running(self) -> bool:
        """Whether the background loop runs."""
        return self._task is not None and not self._task.done()

    # -- flushing --------------------------------------------------------------------------------------

    async def flush(self) -> int:
        """Write the pending rows in one transaction and return how many there were.

        Rows added while the transaction runs wait for the next flush. If this caller is cancelled, the
        transaction still finishes (or fails and merges its batch back) in its own task.

        Raises:
            Exception: whatever ``write``, the connection or the commit raised; the batch is pending again.
        """
        task = asyncio.get_running_loop().create_task(self._flush_once(), name=f"{self.name}-flush")
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(self._orphan_finished)
            raise

    def _orphan_finished(self, task: asyncio.Task[int]) -> None:
        """Log the end of a flush whose caller was cancelled (nobody else sees its outcome)."""
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.warning(
                "%s: a flush whose caller left failed; its rows are pending again: %s", self.name, error
            )

    async def _flush_once(self) -> int:
        async with self._lock:
            batch, self._pending = self._pending, {}
            if not batch:
                return 0
            self._in_flight = len(batch)
            started = time.perf_counter()
            committed = False
            try:
                async with connect(self._engine) as connection:
                    # SQLite: take the write lock at BEGIN, so a concurrent writer waits (busy_timeout)
                    # instead of failing when a read transaction would have to turn into a write.
                    connection = await connection.execution_options(**{BEGIN_IMMEDIATE: True})
                    async with connection.begin():
                        await self._write(connection, batch)
                    committed = True
            except BaseException:
                self.failures += 1
                if committed:
                    # Only returning the connection failed: the rows are in; merging them back would
                    # write them twice. (A connection lost during COMMIT itself cannot be told apart.)
                    log.warning("%s: %d rows committed, then the connection failed", self.name, len(batch))
                else:
                    self._merge_back(batch)
                raise
            finally:
                self._in_flight = 0
            elapsed = time.perf_counter() - started
            self.flushes += 1
            self.last_flush_seconds = elapsed
            self._durations.append(elapsed)
            if self.observe_flush is not None:
                self.observe_flush(elapsed)
            log.debug("%s: flushed %d rows in %.1f ms", self.name, len(batch), elapsed * 1000)
        if self._on_flushed is not None:
            try:
                self._on_flushed(batch)
            except Exception:
                # The rows are committed; a failing observer must not make them look unwritten.
                log.exception("%s: on_flushed failed after %d rows were written", self.name, len(batch))
        return len(batch)

    def _merge_back(self, batch: dict[K, V]) -> None:
        """Put a failed batch back, in front of what arrived during the attempt (older value first)."""
        merge = self._merge
        for key, newer in self._pending.items():
            older = batch.get(key, _MISSING)
            batch[key] = newer if older is _MISSING else merge(older, newer)
        self._pending = batch

    # -- the background loop ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the background loop that flushes every ``interval`` seconds (no-op when it runs)."""
        if self.running:
            return
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"{self.name}-writer")
        self._task.add_done_callback(self._loop_ended)

    async def stop(self) -> None:
        """Stop the background loop, then flush what is pending.

        Raises:
            Exception: the final flush failed; the rows stay pending (and are logged as unwritten).
        """
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            # A flush the loop had started finishes in its own task; the final flush below queues behind it.
            with contextlib.suppress(asyncio.CancelledError):
                await task
        try:
            await self.flush()
        except Exception:
            log.error("%s: the final flush failed; %d rows are not written", self.name, self.pending)
            raise

    async def _run(self) -> None:
        failures_in_row = 0
        while True:
            if failures_in_row:
                await asyncio.sleep(
                    backoff_delay(failures_in_row, start=self.backoff_start, maximum=self.backoff_max)
                )
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.interval):
                        await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
            except Exception as error:
                failures_in_row += 1
                delay = backoff_delay(failures_in_row, start=self.backoff_start, maximum=self.backoff_max)
                # The first failure of a run gets the traceback; the repeats one line each.
                log.warning(
                    "%s: flush failed (%d in a row), %d rows kept, retrying in %.1f s: %s",
                    self.name,
                    failures_in_row,
                    self.pending,
                    delay,
                    error,
                    exc_info=failures_in_row == 1,
                )
            else:
                if failures_in_row:
                    log.info("%s: flushing again after %d failed attempts", self.name, failures_in_row)
                failures_in_row = 0

    def _loop_ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("%s: the writer loop stopped", self.name, exc_info=error)
