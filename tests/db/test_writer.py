"""The batched writer: merges per key, one transaction per flush, nothing lost and nothing counted twice."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from botops.db import migrate
from botops.db.engine import create_engine_for_url
from botops.db.levels import XpDelta, write_xp_deltas
from botops.db.schema import member_xp
from botops.db.writer import BatchedWriter, backoff_delay
from tests.db.databases import temporary_database

GUILD = 100
T0 = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)

Batch = dict[tuple[int, int], XpDelta]
Write = Callable[[AsyncConnection, Batch], Awaitable[None]]


@pytest_asyncio.fixture
async def migrated(engine: AsyncEngine) -> AsyncEngine:
    """The test database at the code's head revision."""
    await migrate.upgrade(engine)
    return engine


def _writer(
    engine: AsyncEngine,
    write: Write = write_xp_deltas,
    *,
    interval: float = 5.0,
    max_pending: int = 5000,
    backoff_start: float = 0.5,
    on_flushed: Callable[[Batch], None] | None = None,
) -> BatchedWriter[tuple[int, int], XpDelta]:
    return BatchedWriter(
        engine,
        write,
        merge=XpDelta.merge,
        name="test-xp",
        interval=interval,
        max_pending=max_pending,
        backoff_start=backoff_start,
        on_flushed=on_flushed,
    )


def _award(xp: int, seconds: int = 0) -> XpDelta:
    return XpDelta(xp, 1, T0 + timedelta(seconds=seconds))


async def _rows(engine: AsyncEngine) -> dict[int, tuple[int, int]]:
    """Every member's (xp, messages) in the test guild."""
    query = select(member_xp.c.user_id, member_xp.c.xp, member_xp.c.messages).where(
        member_xp.c.guild_id == GUILD
    )
    async with engine.connect() as connection:
        return {user_id: (xp, messages) for user_id, xp, messages in await connection.execute(query)}


async def _total_xp(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        total = (await connection.execute(select(func.coalesce(func.sum(member_xp.c.xp), 0)))).scalar_one()
    return int(total)


class FailingOnce:
    """A write function that writes the batch, then fails the first ``failures`` times before the commit."""

    def __init__(self, failures: int = 1) -> None:
        self.failures = failures
        self.batches: list[Batch] = []

    async def __call__(self, connection: AsyncConnection, batch: Batch) -> None:
        self.batches.append(dict(batch))
        await write_xp_deltas(connection, batch)
        if self.failures:
            self.failures -= 1
            raise RuntimeError("the database went away")


class Flushed:
    """An ``on_flushed`` observer that a test can wait on."""

    def __init__(self) -> None:
        self.batches: list[Batch] = []
        self._event = asyncio.Event()

    def __call__(self, batch: Batch) -> None:
        self.batches.append(batch)
        self._event.set()

    async def wait(self, timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            await self._event.wait()
        self._event.clear()


# -- merging and one transaction ----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_adds_of_one_member_merge_into_one_pending_row(migrated: AsyncEngine) -> None:
    writer = _writer(migrated)

    writer.add((GUILD, 1), _award(15, seconds=1))
    writer.add((GUILD, 1), _award(20, seconds=3))
    writer.add((GUILD, 2), _award(25, seconds=2))

    assert writer.pending == 2


@pytest.mark.asyncio
async def test_flush_writes_the_merged_deltas_and_returns_the_row_count(migrated: AsyncEngine) -> None:
    writer = _writer(migrated)
    writer.add((GUILD, 1), _award(15))
    writer.add((GUILD, 1), _award(20))
    writer.add((GUILD, 2), _award(25))

    written = await writer.flush()

    assert written == 2
    assert writer.pending == 0
    assert await _rows(migrated) == {1: (35, 2), 2: (25, 1)}


@pytest.mark.asyncio
async def test_a_flush_is_one_transaction(migrated: AsyncEngine) -> None:
    seen: list[bool] = []

    async def write_then_fail(connection: AsyncConnection, batch: Batch) -> None:
        seen.append(connection.in_transaction())
        await write_xp_deltas(connection, batch)
        raise RuntimeError("fails after writing every row")

    writer = _writer(migrated, write_then_fail)
    for user_id in range(1, 1200):  # several chunks of parameters
        writer.add((GUILD, user_id), _award(10))

    with pytest.raises(RuntimeError):
        await writer.flush()

    assert seen == [True]
    assert await _rows(migrated) == {}


@pytest.mark.asyncio
async def test_a_flush_with_nothing_pending_opens_no_transaction(migrated: AsyncEngine) -> None:
    calls: list[Batch] = []

    async def record(connection: AsyncConnection, batch: Batch) -> None:
        calls.append(batch)

    writer = _writer(migrated, record)

    assert await writer.flush() == 0
    assert calls == []
    assert writer.flushes == 0


# -- failures: nothing lost, nothing counted twice ---------------------------------------------------


@pytest.mark.asyncio
async def test_a_failed_flush_keeps_every_row_and_reraises(migrated: AsyncEngine) -> None:
    writer = _writer(migrated, FailingOnce())
    writer.add((GUILD, 1), _award(15))
    writer.add((GUILD, 2), _award(25))

    with pytest.raises(RuntimeError, match="went away"):
        await writer.flush()

    assert writer.pending == 2
    assert writer.failures == 1
    assert await _rows(migrated) == {}


@pytest.mark.asyncio
async def test_the_flush_after_a_failure_writes_each_row_exactly_once(migrated: AsyncEngine) -> None:
    writer = _writer(migrated, FailingOnce())
    writer.add((GUILD, 1), _award(15))
    writer.add((GUILD, 2), _award(25))
    with pytest.raises(RuntimeError):
        await writer.flush()

    assert await writer.flush() == 2

    assert await _rows(migrated) == {1: (15, 1), 2: (25, 1)}
    assert await writer.flush() == 0


@pytest.mark.asyncio
async def test_a_failed_batch_merges_with_awards_made_after_it(migrated: AsyncEngine) -> None:
    writer = _writer(migrated, FailingOnce())
    writer.add((GUILD, 1), _award(15, seconds=1))
    with pytest.raises(RuntimeError):
        await writer.flush()
    writer.add((GUILD, 1), _award(20, seconds=2))
    writer.add((GUILD, 3), _award(5, seconds=2))

    await writer.flush()

    assert await _rows(migrated) == {1: (35, 2), 3: (5, 1)}


@pytest.mark.asyncio
async def test_a_cancelled_flush_still_commits_its_batch_once(migrated: AsyncEngine) -> None:
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow_write(connection: AsyncConnection, batch: Batch) -> None:
        entered.set()
        await release.wait()
        await write_xp_deltas(connection, batch)

    flushed = Flushed()
    writer = _writer(migrated, slow_write, on_flushed=flushed)
    writer.add((GUILD, 1), _award(15))
    caller = asyncio.create_task(writer.flush())
    await entered.wait()

    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    release.set()
    await flushed.wait()

    assert await writer.flush() == 0
    assert await _rows(migrated) == {1: (15, 1)}


@pytest_asyncio.fixture
async def postgres_engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An engine on a fresh PostgreSQL database (the test skips only where the server is not configured)."""
    async with temporary_database("postgresql", tmp_path) as url:
        engine = create_engine_for_url(url)
        try:
            yield engine
        finally:
            await engine.dispose()


@pytest.mark.asyncio
async def test_a_connection_killed_during_the_flush_loses_no_row(postgres_engine: AsyncEngine) -> None:
    # Ending a session from the server side is a PostgreSQL feature; SQLite has no server to do it.
    engine = postgres_engine
    await migrate.upgrade(engine)
    killed: list[bool] = []

    async def write_then_lose_the_connection(connection: AsyncConnection, batch: Batch) -> None:
        await write_xp_deltas(connection, batch)
        if not killed:
            killed.append(True)
            await connection.execute(text("SELECT pg_terminate_backend(pg_backend_pid())"))

    writer = _writer(engine, write_then_lose_the_connection)
    writer.add((GUILD, 1), _award(15))
    writer.add((GUILD, 2), _award(25))
    with pytest.raises(Exception, match="terminat"):
        await writer.flush()

    assert await writer.flush() == 2

    assert await _rows(engine) == {1: (15, 1), 2: (25, 1)}


# -- adds while a flush runs ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_adds_during_a_flush_go_to_the_next_batch(migrated: AsyncEngine) -> None:
    entered, release = asyncio.Event(), asyncio.Event()
    batches: list[Batch] = []

    async def held_write(connection: AsyncConnection, batch: Batch) -> None:
        batches.append(dict(batch))
        entered.set()
        await release.wait()
        await write_xp_deltas(connection, batch)

    writer = _writer(migrated, held_write)
    writer.add((GUILD, 1), _award(15))
    first = asyncio.create_task(writer.flush())
    await entered.wait()

    writer.add((GUILD, 1), _award(20))
    writer.add((GUILD, 2), _award(25))
    assert writer.pending == 2
    assert writer.in_flight == 1
    release.set()
    assert await first == 1
    assert await writer.flush() == 2

    assert [set(batch) for batch in batches] == [{(GUILD, 1)}, {(GUILD, 1), (GUILD, 2)}]
    assert await _rows(migrated) == {1: (35, 2), 2: (25, 1)}


# -- the background loop -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_loop_flushes_every_interval(migrated: AsyncEngine) -> None:
    flushed = Flushed()
    writer = _writer(migrated, interval=0.02, on_flushed=flushed)
    await writer.start()
    try:
        writer.add((GUILD, 1), _award(15))
        await flushed.wait()
    finally:
        await writer.stop()

    assert await _rows(migrated) == {1: (15, 1)}


@pytest.mark.asyncio
async def test_reaching_max_pending_flushes_before_the_interval(migrated: AsyncEngine) -> None:
    flushed = Flushed()
    writer = _writer(migrated, interval=3600, max_pending=3, on_flushed=flushed)
    await writer.start()
    try:
        writer.add((GUILD, 1), _award(15))
        writer.add((GUILD, 2), _award(15))
        await asyncio.sleep(0.05)
        assert writer.flushes == 0

        writer.add((GUILD, 3), _award(15))
        await flushed.wait()
    finally:
        await writer.stop()

    assert set(await _rows(migrated)) == {1, 2, 3}


@pytest.mark.asyncio
async def test_stop_flushes_what_is_pending_and_ends_the_loop(migrated: AsyncEngine) -> None:
    writer = _writer(migrated, interval=3600)
    await writer.start()
    writer.add((GUILD, 1), _award(15))

    await writer.stop()

    assert not writer.running
    assert writer.pending == 0
    assert await _rows(migrated) == {1: (15, 1)}


@pytest.mark.asyncio
async def test_stop_reraises_a_failed_final_flush_and_keeps_the_rows(migrated: AsyncEngine) -> None:
    writer = _writer(migrated, FailingOnce())
    writer.add((GUILD, 1), _award(15))

    with pytest.raises(RuntimeError, match="went away"):
        await writer.stop()

    assert writer.pending == 1


@pytest.mark.asyncio
async def test_the_loop_retries_a_failed_flush_and_logs_each_failure(
    migrated: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    write = FailingOnce(failures=2)
    flushed = Flushed()
    writer = _writer(migrated, write, interval=0.01, backoff_start=0.01, on_flushed=flushed)
    caplog.set_level(logging.WARNING, logger="botops.db.writer")
    writer.add((GUILD, 1), _award(15))
    await writer.start()
    try:
        await flushed.wait()
    finally:
        await writer.stop()

    assert writer.failures == 2
    assert [record.getMessage() for record in caplog.records] == [
        "test-xp: flush failed (1 in a row), 1 rows kept, retrying in 0.0 s: the database went away",
        "test-xp: flush failed (2 in a row), 1 rows kept, retrying in 0.0 s: the database went away",
    ]
    assert await _rows(migrated) == {1: (15, 1)}


def test_backoff_doubles_from_half_a_second_and_stops_at_thirty() -> None:
    delays = [backoff_delay(failures) for failures in range(1, 10)]

    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]
    assert backoff_delay(10_000) == 30.0


# -- what the metrics read -----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_each_committed_flush_records_its_duration(migrated: AsyncEngine) -> None:
    writer = _writer(migrated)
    for seconds in range(3):
        writer.add((GUILD, 1), _award(15, seconds))
        await writer.flush()

    assert writer.flushes == 3
    assert len(writer.flush_seconds) == 3
    assert writer.last_flush_seconds == writer.flush_seconds[-1]


@pytest.mark.asyncio
async def test_on_flushed_receives_each_committed_batch(migrated: AsyncEngine) -> None:
    seen: list[Batch] = []
    writer = BatchedWriter(
        migrated, write_xp_deltas, merge=XpDelta.merge, name="test-xp", on_flushed=seen.append
    )
    writer.add((GUILD, 1), _award(15))

    await writer.flush()

    assert seen == [{(GUILD, 1): _award(15)}]


@pytest.mark.asyncio
async def test_a_failing_on_flushed_does_not_put_committed_rows_back(migrated: AsyncEngine) -> None:
    def broken(batch: Batch) -> None:
        raise RuntimeError("observer bug")

    writer = BatchedWriter(migrated, write_xp_deltas, merge=XpDelta.merge, name="test-xp", on_flushed=broken)
    writer.add((GUILD, 1), _award(15))

    assert await writer.flush() == 1

    assert writer.pending == 0
    assert await _rows(migrated) == {1: (15, 1)}


# -- the invariant, on random histories ----------------------------------------------------------------

_steps = st.lists(
    st.one_of(
        st.tuples(st.just("award"), st.integers(1, 8), st.integers(0, 1000)),
        st.tuples(st.just("flush"), st.booleans(), st.just(0)),
    ),
    max_size=40,
)


@pytest.mark.asyncio
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=_steps)
async def test_the_database_holds_exactly_the_sum_of_awards_whatever_fails(
    migrated: AsyncEngine, steps: list[tuple[str, int | bool, int]]
) -> None:
    async with migrated.begin() as connection:
        await connection.execute(delete(member_xp))
    write = FailingOnce(failures=0)
    writer = _writer(migrated, write)
    expected: dict[int, tuple[int, int]] = {}

    for step, who_or_fails, xp in steps:
        if step == "award":
            user_id = int(who_or_fails)
            writer.add((GUILD, user_id), _award(xp))
            total, messages = expected.get(user_id, (0, 0))
            expected[user_id] = (total + xp, messages + 1)
        else:
            write.failures = int(bool(who_or_fails))
            with contextlib.suppress(RuntimeError):
                await writer.flush()
    write.failures = 0
    await writer.flush()

    assert await _rows(migrated) == expected
    assert await _total_xp(migrated) == sum(xp for xp, _ in expected.values())
