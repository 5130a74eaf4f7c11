"""Backups of PostgreSQL through the same commands as SQLite: create, verify, restore, drill, damage.

Each test has a database of its own on the server ``BOTOPS_TEST_POSTGRES_URL`` names (skipped without).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy.engine import make_url

from botops.backup import drill as drilling
from botops.backup import restore as restoring
from botops.backup import store
from botops.backup.manifest import Manifest
from botops.db import migrate
from botops.db.engine import create_engine_for_url
from botops.errors import BackupCorrupt, RestoreRefused
from botops.settings import Settings, load_settings
from tests.db.databases import create_postgres_database, drop_postgres_database

pytestmark = pytest.mark.asyncio

MEMBERS = 300


async def _connect(url: str) -> Any:
    return await asyncpg.connect(
        make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    )


async def _execute(url: str, sql: str, *arguments: object) -> None:
    connection = await _connect(url)
    try:
        await connection.execute(sql, *arguments)
    finally:
        await connection.close()


async def _members(url: str) -> list[tuple[int, int, int]]:
    connection = await _connect(url)
    try:
        rows = await connection.fetch("SELECT user_id, xp, messages FROM member_xp ORDER BY user_id")
        return [(row["user_id"], row["xp"], row["messages"]) for row in rows]
    finally:
        await connection.close()


async def _migrate(url: str, revision: str = "head") -> None:
    engine = create_engine_for_url(url)
    try:
        await migrate.upgrade(engine, revision)
    finally:
        await engine.dispose()


@pytest_asyncio.fixture
async def database_url() -> AsyncIterator[str]:
    """A database of its own, migrated to the head, with MEMBERS rows of member_xp."""
    url = await create_postgres_database()
    try:
        await _migrate(url)
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


def _settings(url: str, backup_dir: Path) -> Settings:
    return load_settings(
        None,
        database_url=url,
        backup_dir=backup_dir,
        http_enabled=False,
        state_dir=backup_dir.parent / "state",
    )


async def _backup(url: str, backup_dir: Path) -> Manifest:
    return await store.create_backup(_settings(url, backup_dir), reason="manual", backup_dir=backup_dir)


async def test_a_postgresql_backup_is_a_checked_pg_dump_archive_with_its_rows_and_revision(
    database_url: str, tmp_path: Path
) -> None:
    backup_dir = tmp_path / "backups"

    manifest = await _backup(database_url, backup_dir)

    assert manifest.database == "postgresql"
    assert manifest.tables["member_xp"] == MEMBERS
    assert manifest.schema_revision == migrate.head_revision()
    assert sorted(path.name for path in backup_dir.iterdir()) == [
        f"{manifest.id}.json",
        f"{manifest.id}.pgdump.zst",
    ]
    assert await store.verify_backup(backup_dir, manifest.id) == manifest


async def test_a_postgresql_backup_holds_every_commit_made_before_it_while_a_writer_commits(
    database_url: str, tmp_path: Path
) -> None:
    committed: list[int] = []
    stop, warmed_up = asyncio.Event(), asyncio.Event()

    async def writer() -> None:
        connection = await _connect(database_url)
        try:
            user_id = 10_000
            while not stop.is_set():
                await connection.execute(
                    "INSERT INTO member_xp (guild_id, user_id, xp, messages) VALUES (2, $1, 1, 1)", user_id
                )
                committed.append(user_id)
                if len(committed) == 20:
                    warmed_up.set()
                user_id += 1
                await asyncio.sleep(0.002)
        finally:
            await connection.close()

    task = asyncio.create_task(writer())
    await warmed_up.wait()
    before = len(committed)
    manifest = await _backup(database_url, tmp_path / "backups")
    stop.set()
    await task

    assert manifest.tables["member_xp"] >= MEMBERS + before
    url = await create_postgres_database()
    try:
        await restoring.restore_backup(
            _settings(url, tmp_path / "backups"), manifest.id, backup_dir=tmp_path / "backups"
        )
        rows = {user_id for user_id, _, _ in await _members(url)}
    finally:
        await drop_postgres_database(url)
    assert set(committed[:before]) <= rows
    assert len(rows) == manifest.tables["member_xp"]


async def test_restore_brings_back_the_rows_drops_what_came_later_and_saves_what_it_replaced(
    database_url: str, tmp_path: Path
) -> None:
    backup_dir = tmp_path / "backups"
    before = await _members(database_url)
    manifest = await _backup(database_url, backup_dir)
    await _execute(database_url, "UPDATE member_xp SET xp = xp + 5 WHERE user_id < 50")
    await _execute(database_url, "CREATE TABLE added_later (id integer)")
    changed = await _members(database_url)

    result = await restoring.restore_backup(
        _settings(database_url, backup_dir), manifest.id, backup_dir=backup_dir
    )

    assert await _members(database_url) == before
    assert result.schema_is_current
    assert result.safety_backup is not None
    assert result.safety_backup.tables["added_later"] == 0
    connection = await _connect(database_url)
    try:
        assert await connection.fetchval("SELECT to_regclass('public.added_later')") is None
    finally:
        await connection.close()
    await restoring.restore_backup(
        _settings(database_url, backup_dir), result.safety_backup.id, backup_dir=backup_dir
    )
    assert await _members(database_url) == changed


async def test_damaged_postgresql_backups_are_refused_by_verify_and_restore_and_change_nothing(
    database_url: str, tmp_path: Path
) -> None:
    backup_dir = tmp_path / "backups"
    manifest = await _backup(database_url, backup_dir)
    await _execute(database_url, "UPDATE member_xp SET xp = 1")
    live = await _members(database_url)
    data = store.data_path(backup_dir, manifest)
    original = data.read_bytes()
    chooser = random.Random(5)

    for attempt in range(20):
        damaged = bytearray(original)
        if attempt % 2:
            damaged[chooser.randrange(len(damaged))] ^= chooser.randrange(1, 256)
        else:
            del damaged[chooser.randrange(len(damaged)) :]
        data.write_bytes(bytes(damaged))

        with pytest.raises(BackupCorrupt):
            await store.verify_backup(backup_dir, manifest.id)
        with pytest.raises(BackupCorrupt):
            await restoring.restore_backup(
                _settings(database_url, backup_dir), manifest.id, backup_dir=backup_dir
            )

    assert await _members(database_url) == live
    assert len(store.list_backups(backup_dir)) == 1  # no safety backup was taken


async def test_a_sqlite_backup_is_not_restored_into_postgresql(database_url: str, tmp_path: Path) -> None:
    backup_dir = tmp_path / "backups"
    manifest = await _backup(database_url, backup_dir)
    sqlite_settings = load_settings(
        None,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
        backup_dir=backup_dir,
        http_enabled=False,
    )

    with pytest.raises(RestoreRefused, match="is of a postgresql database and DATABASE_URL is sqlite"):
        await restoring.restore_backup(sqlite_settings, manifest.id, backup_dir=backup_dir)


async def test_the_drill_restores_into_a_scratch_database_and_upgrades_it(tmp_path: Path) -> None:
    url = await create_postgres_database()
    try:
        previous = migrate.history()[1].id
        await _migrate(url, previous)
        backup_dir = tmp_path / "backups"
        manifest = await _backup(url, backup_dir)
        connection = await _connect(url)
        try:
            databases_before = await connection.fetchval("SELECT count(*) FROM pg_database")
        finally:
            await connection.close()

        report = await drilling.run_drill(_settings(url, backup_dir), backup_dir=backup_dir)

        assert report.backup == manifest
        assert (report.revision_before, report.revision_after) == (previous, migrate.head_revision())
        assert store.list_backups(backup_dir)[0].verified
        connection = await _connect(url)
        try:
            assert await connection.fetchval("SELECT count(*) FROM pg_database") == databases_before
            assert (
                await connection.fetchval("SELECT version_num FROM alembic_version") == previous
            )  # untouched
        finally:
            await connection.close()
    finally:
        await drop_postgres_database(url)
