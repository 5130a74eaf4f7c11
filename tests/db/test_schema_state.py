"""schema_state answers as Alembic would, although it reads the head from the files and asks Alembic less."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from botops.db import migrate
from botops.db.engine import pinged
from botops.db.migrate import MIGRATIONS_DIR, SchemaStatus
from botops.errors import DatabaseError


def _copy_of_migrations(tmp_path: Path) -> Path:
    location = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, location, ignore=shutil.ignore_patterns("__pycache__"))
    return location


def _add_revision(location: Path, name: str, down_revision: str, *, revision: str | None = None) -> None:
    """Write a revision file; ``revision`` is the source of its id, by default the literal ``name``."""
    (location / "versions" / f"{name}.py").write_text(
        f'"""Test only."""\n\nrevision = {revision or repr(name)}\ndown_revision = {down_revision!r}\n\n\n'
        "def upgrade():\n    pass\n\n\ndef downgrade():\n    pass\n"
    )


@pytest.mark.asyncio
async def test_schema_state_is_current_after_an_upgrade(engine: AsyncEngine) -> None:
    await migrate.upgrade(engine)

    state = await migrate.schema_state(engine)

    assert state == migrate.SchemaState(
        migrate.head_revision(), migrate.head_revision(), SchemaStatus.CURRENT
    )


@pytest.mark.asyncio
async def test_schema_state_of_an_empty_database_is_behind_by_every_revision(engine: AsyncEngine) -> None:
    state = await migrate.schema_state(engine)

    assert state.status is SchemaStatus.BEHIND
    assert state.current is None
    assert state.pending[-1] == migrate.head_revision()


@pytest.mark.asyncio
async def test_schema_state_sees_a_revision_added_after_it_was_asked(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    scripts = _copy_of_migrations(tmp_path)
    await migrate.upgrade(engine, script_location=scripts)
    assert (await migrate.schema_state(engine, script_location=scripts)).is_current

    _add_revision(scripts, "test_later", migrate.head_revision())
    state = await migrate.schema_state(engine, script_location=scripts)

    assert state.status is SchemaStatus.BEHIND
    assert state.pending == ("test_later",)


@pytest.mark.asyncio
async def test_schema_state_at_a_revision_with_a_computed_id_is_current(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    scripts = _copy_of_migrations(tmp_path)
    _add_revision(scripts, "test_computed", migrate.head_revision(), revision='"test_" + "computed"')
    await migrate.upgrade(engine, script_location=scripts)

    state = await migrate.schema_state(engine, script_location=scripts)

    assert state == migrate.SchemaState("test_computed", "test_computed", SchemaStatus.CURRENT)


@pytest.mark.asyncio
async def test_schema_state_refuses_migrations_with_two_heads(engine: AsyncEngine, tmp_path: Path) -> None:
    scripts = _copy_of_migrations(tmp_path)
    _add_revision(scripts, "test_left", migrate.head_revision())
    _add_revision(scripts, "test_right", migrate.head_revision())

    with pytest.raises(DatabaseError, match="2 heads"):
        await migrate.schema_state(engine, script_location=scripts)


@pytest.mark.asyncio
async def test_schema_state_of_a_database_ahead_of_the_code_is_unknown(engine: AsyncEngine) -> None:
    await migrate.upgrade(engine)
    async with engine.begin() as connection:
        await connection.execute(text("UPDATE alembic_version SET version_num = 'from_the_future'"))

    state = await migrate.schema_state(engine)

    assert state.status is SchemaStatus.UNKNOWN
    assert state.current == "from_the_future"


@pytest.mark.asyncio
async def test_schema_state_on_a_pinged_connection_matches_schema_state(engine: AsyncEngine) -> None:
    await migrate.upgrade(engine)

    async with pinged(engine) as (connection, milliseconds):
        state = await migrate.schema_state_on(connection)

    assert state == await migrate.schema_state(engine)
    assert milliseconds >= 0


@pytest.mark.asyncio
async def test_schema_state_on_an_empty_database_leaves_the_connection_usable(engine: AsyncEngine) -> None:
    async with pinged(engine) as (connection, _):
        state = await migrate.schema_state_on(connection)
        after = (await connection.execute(text("SELECT 1"))).scalar_one()

    assert state.status is SchemaStatus.BEHIND
    assert after == 1
