"""PostgreSQL dumps and restores: one snapshot under a writer, offline checks, all-or-nothing restores."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
import zstandard
from sqlalchemy.engine import make_url

from botops.backup import postgres
from botops.backup.compression import file_sha256
from botops.db import migrate
from botops.db.engine import create_engine_for_url
from botops.errors import BackupError, BackupFailed
from tests.db.databases import create_postgres_database, drop_postgres_database

MEMBERS = 200
PASSWORD = "s3cret-Pa55word"


@pytest_asyncio.fixture
async def database_url() -> AsyncIterator[str]:
    """A database of its own, migrated to the head, with MEMBERS rows of member_xp."""
    url = await create_postgres_database()
    try:
        engine = create_engine_for_url(url)
        try:
            await migrate.upgrade(engine)
        finally:
            await engine.dispose()
        connection = await _connect(url)
        try:
            await connection.executemany(
                "INSERT INTO member_xp (guild_id, user_id, xp, messages) VALUES (1, $1, $2, 1)",
                [(user_id, user_id * 10) for user_id in range(MEMBERS)],
            )
        finally:
            await connection.close()
        yield url
    finally:
        await drop_postgres_database(url)


@pytest_asyncio.fixture
async def empty_url() -> AsyncIterator[str]:
    """An empty database of its own."""
    url = await create_postgres_database()
    try:
        yield url
    finally:
        await drop_postgres_database(url)


async def _connect(url: str) -> Any:
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    return await asyncpg.connect(dsn)


async def _execute(url: str, sql: str) -> None:
    connection = await _connect(url)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


async def _members(url: str) -> list[tuple[int, int, int, int]]:
    connection = await _connect(url)
    try:
        rows = await connection.fetch(
            "SELECT guild_id, user_id, xp, messages FROM member_xp ORDER BY guild_id, user_id"
        )
    finally:
        await connection.close()
    return [tuple(row) for row in rows]


async def _state(url: str) -> dict[str, Any]:
    """Return what a restore could change: rows, revision, objects, and the schemas' owners and grants."""
    connection = await _connect(url)
    try:
        objects = await connection.fetch(
            "SELECT n.nspname, c.relname, c.relkind "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' ORDER BY 1, 2"
        )
        schemas = await connection.fetch(
            "SELECT nspname, nspowner::regrole::text, nspacl::text[], obj_description(oid, 'pg_namespace') "
            "FROM pg_namespace WHERE nspname <> 'information_schema' AND nspname !~ '^pg_' ORDER BY 1"
        )
        revision = await connection.fetchval("SELECT string_agg(version_num, ',') FROM alembic_version")
        large_objects = await connection.fetch(
            "SELECT oid::bigint, md5(lo_get(oid)) FROM pg_largeobject_metadata ORDER BY 1"
        )
    finally:
        await connection.close()
    return {
        "members": await _members(url),
        "revision": revision,
        "objects": [tuple(row) for row in objects],
        "schemas": [tuple(row) for row in schemas],
        "large_objects": [tuple(row) for row in large_objects],
    }


async def _wait_for_sessions(watcher: Any, condition: str, wanted: int) -> int:
    """Return how many botops-backup sessions match ``condition``, after waiting a while for ``wanted``."""
    for _ in range(2000):
        sessions = int(
            await watcher.fetchval(
                "SELECT count(*) FROM pg_stat_activity "  # noqa: S608 - the tests' own constant conditions
                f"WHERE application_name = 'botops-backup' AND {condition}"
            )
        )
        if sessions == wanted:
            break
        await asyncio.sleep(0.01)
    return sessions


def _uncompressed(compressed: Path) -> Path:
    raw = compressed.with_name(compressed.name + ".raw")
    with open(compressed, "rb") as source, open(raw, "wb") as target:
        zstandard.ZstdDecompressor().copy_stream(source, target)
    return raw


async def _dump(url: str, folder: Path) -> tuple[postgres.Dumped, Path]:
    """Dump ``url`` into ``folder`` and return what the dump says and its uncompressed archive."""
    target = folder / "dump.zst"
    dumped = await postgres.dump_database(url, target)
    return dumped, _uncompressed(target)


def _with_password(url: str) -> str:
    return make_url(url).set(password=PASSWORD).render_as_string(hide_password=False)


# -- dump --------------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_dump_holds_every_commit_made_before_it_started_under_a_writer(
    database_url: str, empty_url: str, tmp_path: Path
) -> None:
    committed: list[int] = []
    writing, stop = asyncio.Event(), asyncio.Event()

    async def write() -> None:
        connection = await _connect(database_url)
        try:
            user_id = 10_000
            while not stop.is_set():
                await connection.execute(
                    "INSERT INTO member_xp (guild_id, user_id, xp, messages) VALUES (2, $1, 1, 1)", user_id
                )
                committed.append(user_id)
                if len(committed) == 20:
                    writing.set()
                user_id += 1
        finally:
            await connection.close()

    writer = asyncio.create_task(write())
    await writing.wait()
    committed_before = list(committed)
    try:
        dumped, archive = await _dump(database_url, tmp_path)
    finally:
        stop.set()
        await writer

    assert dumped.tables["member_xp"] >= MEMBERS + len(committed_before)
    assert postgres.archive_row_counts(archive) == dumped.tables
    await postgres.restore_archive(empty_url, archive)
    restored = {user_id for guild_id, user_id, _, _ in await _members(empty_url) if guild_id == 2}
    assert restored.issuperset(committed_before)
    assert len(restored) == dumped.tables["member_xp"] - MEMBERS


@pytest.mark.asyncio
async def test_dump_records_sizes_checksum_tables_and_revision(database_url: str, tmp_path: Path) -> None:
    target = tmp_path / "dump.zst"

    dumped = await postgres.dump_database(database_url, target)

    assert target.stat().st_mode & 0o777 == 0o600
    assert target.stat().st_size == dumped.compressed_size
    assert postgres.archive_row_counts(_uncompressed(target)) == dumped.tables
    assert _uncompressed(target).stat().st_size == dumped.raw_size
    assert file_sha256(target) == dumped.sha256
    assert dumped.tables == {
        "alembic_version": 1,
        "command_usage": 0,
        "deployments": 0,
        "guild_settings": 0,
        "level_rewards": 0,
        "member_xp": MEMBERS,
    }
    assert dumped.revision == migrate.head_revision()


@pytest.mark.asyncio
async def test_dump_refuses_an_existing_target_and_leaves_it_alone(database_url: str, tmp_path: Path) -> None:
    target = tmp_path / "dump.zst"
    target.write_bytes(b"an earlier file")

    with pytest.raises(BackupFailed, match="exists"):
        await postgres.dump_database(database_url, target)

    assert target.read_bytes() == b"an earlier file"


@pytest.mark.asyncio
async def test_dump_of_a_missing_database_fails_clearly_and_leaves_no_file(
    database_url: str, tmp_path: Path
) -> None:
    missing = make_url(database_url).set(database="botops_no_such_database")
    missing_url = missing.render_as_string(hide_password=False)
    target = tmp_path / "dump.zst"

    with pytest.raises(BackupFailed, match=r'database "botops_no_such_database" does not exist'):
        await postgres.dump_database(missing_url, target)

    assert not target.exists()


@pytest.mark.asyncio
async def test_dump_without_pg_dump_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    target = tmp_path / "dump.zst"

    with pytest.raises(BackupFailed, match=r"pg_dump is not installed: install .*postgresql-client"):
        await postgres.dump_database("postgresql+asyncpg://bot@127.0.0.1/botops", target)

    assert not target.exists()


@pytest.mark.asyncio
async def test_cancelled_dump_kills_pg_dump_and_leaves_no_file(database_url: str, tmp_path: Path) -> None:
    target = tmp_path / "dump.zst"
    locker = await _connect(database_url)
    watcher = await _connect(database_url)
    try:
        # pg_dump queues behind this lock, so the dump is certainly under way when it is cancelled.
        await locker.execute("BEGIN; LOCK TABLE member_xp IN ACCESS EXCLUSIVE MODE")
        dump = asyncio.create_task(postgres.dump_database(database_url, target))
        waiting = await _wait_for_sessions(
            watcher, "query LIKE 'LOCK TABLE%' AND wait_event_type = 'Lock'", 1
        )
        assert waiting == 1
        assert target.exists()

        dump.cancel()
        with pytest.raises(asyncio.CancelledError):
            await dump

        assert not target.exists()
        await locker.execute("ROLLBACK")
        # A backend waiting for a lock notices that its client is gone once it has the lock.
        assert await _wait_for_sessions(watcher, "true", 0) == 0
    finally:
        await locker.close()
        await watcher.close()


# -- offline checks ----------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_archive_contents_are_read_without_a_server(database_url: str, tmp_path: Path) -> None:
    await _execute(
        database_url,
        r'''
        CREATE SCHEMA "Odd ""Schema""";
        CREATE TABLE "Odd ""Schema"""."a.b c" (note text);
        INSERT INTO "Odd ""Schema"""."a.b c"
            VALUES (E'two\nlines'), (E'a\ttab'), (E'back\\slash'), (NULL), ('');
        CREATE TABLE public.no_columns ();
        INSERT INTO public.no_columns DEFAULT VALUES;
        ''',
    )
    dumped, archive = await _dump(database_url, tmp_path)

    contents = postgres.archive_contents(archive)

    assert contents.tables == dumped.tables
    assert contents.tables['Odd "Schema".a.b c'] == 5
    assert contents.tables["no_columns"] == 1
    assert contents.revision == dumped.revision == migrate.head_revision()
    assert postgres.archive_revision(archive) == dumped.revision


@pytest.mark.asyncio
async def test_archive_without_alembic_version_has_no_revision(empty_url: str, tmp_path: Path) -> None:
    await _execute(empty_url, "CREATE TABLE notes (body text)")
    dumped, archive = await _dump(empty_url, tmp_path)

    assert dumped.revision is None
    assert postgres.archive_revision(archive) is None
    assert postgres.archive_row_counts(archive) == {"notes": 0} == dumped.tables


def _truncated(data: bytes) -> bytes:
    """Cut the archive in the rows of member_xp, its last table: what comes before reads well."""
    return data[:-1000]


def _cut_in_the_table_of_contents(data: bytes) -> bytes:
    return data[:200]


def _without_last_bytes(data: bytes) -> bytes:
    return data[:-3]


def _magic_flipped(data: bytes) -> bytes:
    return bytes([data[0] ^ 0x01]) + data[1:]


def _version_flipped(data: bytes) -> bytes:
    return data[:5] + bytes([data[5] ^ 0x40]) + data[6:]


def _empty(data: bytes) -> bytes:
    return b""


@pytest.mark.parametrize(
    ("damage", "complaint"),
    [
        (_cut_in_the_table_of_contents, "is not a readable pg_dump archive"),
        (_truncated, "cannot be read to its end"),
        (_without_last_bytes, "cannot be read to its end"),
        (_magic_flipped, "is not a pg_dump archive"),
        (_version_flipped, "is not a readable pg_dump archive"),
        (_empty, "is not a pg_dump archive"),
    ],
)
@pytest.mark.asyncio
async def test_archive_problem_rejects_a_damaged_archive(
    database_url: str, tmp_path: Path, damage: Callable[[bytes], bytes], complaint: str
) -> None:
    _, archive = await _dump(database_url, tmp_path)
    assert postgres.archive_problem(archive) is None
    damaged = tmp_path / "damaged"
    damaged.write_bytes(damage(archive.read_bytes()))

    problem = postgres.archive_problem(damaged)

    assert problem is not None
    assert problem.startswith(complaint)


def test_archive_problem_names_a_missing_file(tmp_path: Path) -> None:
    assert postgres.archive_problem(tmp_path / "nothing") == "cannot be read (No such file or directory)"


@pytest.mark.asyncio
async def test_archive_row_counts_refuse_a_truncated_archive(database_url: str, tmp_path: Path) -> None:
    _, archive = await _dump(database_url, tmp_path)
    archive.write_bytes(_truncated(archive.read_bytes()))

    with pytest.raises(ValueError, match="pg_restore cannot read it"):
        postgres.archive_row_counts(archive)


# -- restore -----------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_restore_brings_back_the_data_and_drops_what_the_archive_lacks(
    database_url: str, tmp_path: Path
) -> None:
    # A grant on public that differs from the default: the restore keeps the database's own.
    await _execute(
        database_url,
        "GRANT CREATE ON SCHEMA public TO pg_monitor; SELECT lo_from_bytea(0, 'kept in the archive')",
    )
    before = await _state(database_url)
    dumped, archive = await _dump(database_url, tmp_path)
    await _execute(
        database_url,
        """
        DELETE FROM member_xp WHERE user_id < 50;
        UPDATE member_xp SET xp = 0 WHERE user_id >= 150;
        INSERT INTO member_xp (guild_id, user_id, xp, messages) VALUES (9, 9, 9, 9);
        CREATE TABLE from_a_newer_migration (id int);
        CREATE SCHEMA reports;
        CREATE TABLE reports.weekly (id int);
        COMMENT ON SCHEMA public IS 'changed';
        SELECT lo_unlink(oid) FROM pg_largeobject_metadata;
        SELECT lo_from_bytea(0, 'made after the dump');
        """,
    )

    await postgres.restore_archive(database_url, archive, expected_tables=dumped.tables)

    assert await _state(database_url) == before


@pytest.mark.asyncio
async def test_restore_of_a_truncated_archive_changes_nothing(database_url: str, tmp_path: Path) -> None:
    _, archive = await _dump(database_url, tmp_path)
    archive.write_bytes(_truncated(archive.read_bytes()))
    await _execute(database_url, "CREATE TABLE from_a_newer_migration (id int); DELETE FROM member_xp")
    before = await _state(database_url)

    with pytest.raises(BackupError, match="failed and changed nothing: pg_restore says"):
        await postgres.restore_archive(database_url, archive)

    assert await _state(database_url) == before


@pytest.mark.asyncio
async def test_restore_of_an_archive_cut_in_its_large_objects_changes_nothing(
    database_url: str, tmp_path: Path
) -> None:
    # Large objects come last in the archive, and pg_restore writes them as plain statements, not COPY.
    await _execute(database_url, "SELECT lo_from_bytea(0, decode(repeat('0123456789abcdef', 20000), 'hex'))")
    _, archive = await _dump(database_url, tmp_path)
    archive.write_bytes(_truncated(archive.read_bytes()))
    await _execute(database_url, "DELETE FROM member_xp; SELECT lo_from_bytea(0, 'made after the dump')")
    before = await _state(database_url)

    with pytest.raises(BackupError, match="pg_restore says could not read from input file"):
        await postgres.restore_archive(database_url, archive)

    assert await _state(database_url) == before


@pytest.mark.parametrize(
    ("exit_status", "complaint"),
    [
        (1, "pg_restore says could not read from input file: end of file"),
        (0, "pg_restore says its script does not end in the COMMIT of --single-transaction"),
    ],
)
@pytest.mark.asyncio
async def test_restore_commits_nothing_unless_pg_restore_finished_its_script(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exit_status: int, complaint: str
) -> None:
    # A pg_restore that writes a complete statement and then fails, or stops short of its COMMIT.
    _, archive = await _dump(database_url, tmp_path)
    tools = tmp_path / "bin"
    tools.mkdir()
    fake = tools / "pg_restore"
    script = [
        "#!/bin/sh",
        "printf 'DELETE FROM public.member_xp;\\n'",
        "echo 'pg_restore: error: could not read from input file: end of file' >&2",
        f"exit {exit_status}",
    ]
    fake.write_text("\n".join(script) + "\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    before = await _state(database_url)

    with pytest.raises(BackupError, match=complaint):
        await postgres.restore_archive(database_url, archive)

    assert await _state(database_url) == before


@pytest.mark.asyncio
async def test_restore_failing_midway_changes_nothing(database_url: str, tmp_path: Path) -> None:
    # pg_dump's script runs with an empty search_path, so the index calling `inner_xp` unqualified fails
    # to build after the data is in: a classic restore that breaks halfway through. The large object is
    # restored before it, and pg_restore writes large objects in a transaction of their own unless told
    # --single-transaction: its COMMIT must not end the restore's transaction.
    await _execute(
        database_url,
        """
        CREATE FUNCTION inner_xp(value bigint) RETURNS bigint IMMUTABLE LANGUAGE sql AS 'SELECT value';
        CREATE FUNCTION outer_xp(value bigint) RETURNS bigint IMMUTABLE LANGUAGE plpgsql
            AS 'BEGIN RETURN inner_xp(value); END';
        CREATE INDEX ix_member_xp_outer ON member_xp (outer_xp(xp));
        SELECT lo_from_bytea(0, 'restored before the index fails');
        """,
    )
    _, archive = await _dump(database_url, tmp_path)
    await _execute(database_url, "DELETE FROM member_xp WHERE user_id % 2 = 0; CREATE TABLE newer (id int)")
    before = await _state(database_url)

    with pytest.raises(BackupError, match=r"psql says .*inner_xp\(bigint\) does not exist"):
        await postgres.restore_archive(database_url, archive)

    assert await _state(database_url) == before


@pytest.mark.asyncio
async def test_restore_with_other_row_counts_than_expected_changes_nothing(
    database_url: str, tmp_path: Path
) -> None:
    dumped, archive = await _dump(database_url, tmp_path)
    await _execute(database_url, "DELETE FROM member_xp WHERE user_id < 10")
    before = await _state(database_url)
    expected = {**dumped.tables, "member_xp": MEMBERS + 1}

    with pytest.raises(BackupError, match="row counts differ from the backup's in member_xp"):
        await postgres.restore_archive(database_url, archive, expected_tables=expected)

    assert await _state(database_url) == before


@pytest.mark.asyncio
async def test_cancelled_restore_changes_nothing(database_url: str, tmp_path: Path) -> None:
    _, archive = await _dump(database_url, tmp_path)
    await _execute(database_url, "DELETE FROM member_xp WHERE user_id < 100")
    before = await _state(database_url)
    locker = await _connect(database_url)
    watcher = await _connect(database_url)
    try:
        # The restore's DROP SCHEMA queues behind this lock, so it is under way when it is cancelled.
        await locker.execute("BEGIN; LOCK TABLE member_xp IN ACCESS SHARE MODE")
        restore = asyncio.create_task(postgres.restore_archive(database_url, archive))
        waiting = await _wait_for_sessions(watcher, "wait_event_type = 'Lock'", 1)
        assert waiting == 1

        restore.cancel()
        with pytest.raises(asyncio.CancelledError):
            await restore

        await locker.execute("ROLLBACK")
        assert await _wait_for_sessions(watcher, "true", 0) == 0
    finally:
        await locker.close()
        await watcher.close()
    assert await _state(database_url) == before


# -- connection ----------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_password_reaches_the_client_tools_only_through_the_environment(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[tuple[list[str], dict[str, str]]] = []
    real_popen = subprocess.Popen

    class RecordingPopen(real_popen):  # type: ignore[misc, valid-type]
        def __init__(self, args: list[str], *rest: Any, **options: Any) -> None:
            started.append((list(args), dict(options.get("env") or {})))
            super().__init__(args, *rest, **options)

    monkeypatch.setattr(subprocess, "Popen", RecordingPopen)
    url = _with_password(database_url)  # the test server trusts its clients, so any password will do

    _, archive = await _dump(url, tmp_path)
    await postgres.restore_archive(url, archive)

    tools = sorted(Path(argv[0]).name for argv, _ in started)
    assert tools == ["pg_dump", "pg_restore", "psql"]
    for argv, environment in started:
        assert not any(PASSWORD in argument for argument in argv)
        assert environment["PGPASSWORD"] == PASSWORD
        assert environment["PGDATABASE"] == make_url(database_url).database


def test_libpq_environment_holds_every_part_of_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOTOPS_UNRELATED", "kept")

    environment = postgres.libpq_environment(
        "postgresql+asyncpg://bot:p%40ss%2Fw0rd@db.internal:6543/botops?ssl=verify-full"
    )

    assert environment["BOTOPS_UNRELATED"] == "kept"
    assert {name: value for name, value in environment.items() if name.startswith("PG")} == {
        "PGHOST": "db.internal",
        "PGPORT": "6543",
        "PGUSER": "bot",
        "PGPASSWORD": "p@ss/w0rd",
        "PGDATABASE": "botops",
        "PGSSLMODE": "verify-full",
        "PGAPPNAME": "botops-backup",
    }


def test_libpq_environment_takes_a_socket_folder_from_the_query(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("PGHOST", "PGPORT", "PGPASSWORD"):
        monkeypatch.delenv(name, raising=False)

    environment = postgres.libpq_environment("postgresql+asyncpg://bot@/botops?host=/run/postgresql")

    assert environment["PGHOST"] == "/run/postgresql"
    assert "PGPORT" not in environment
    assert "PGPASSWORD" not in environment


@pytest.mark.parametrize(
    ("url", "complaint"),
    [
        ("sqlite+aiosqlite:///data/bot.db", "DATABASE_URL is sqlite, not PostgreSQL"),
        ("postgresql+asyncpg://bot@db.internal", "DATABASE_URL names no database"),
        ("postgresql+asyncpg://bot@db.internal/botops?ssl=maybe", "ssl=maybe, which pg_dump does not take"),
    ],
)
def test_libpq_environment_refuses_what_libpq_cannot_take(url: str, complaint: str) -> None:
    with pytest.raises(BackupFailed, match=complaint):
        postgres.libpq_environment(url)


@pytest.mark.asyncio
async def test_failed_restore_shows_no_password(database_url: str, tmp_path: Path) -> None:
    damaged = tmp_path / "damaged"
    damaged.write_bytes(b"PGDMP garbage")

    with pytest.raises(BackupError) as caught:
        await postgres.restore_archive(_with_password(database_url), damaged)

    assert PASSWORD not in str(caught.value)
