"""The migrations: reversible, matching the code, all-or-nothing, and the start-up rule for a stale schema."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from botops.db import migrate
from botops.db.migrate import MIGRATIONS_DIR, SchemaStatus
from botops.errors import InvalidRevision, MigrationFailed, SchemaAhead, SchemaBehind
from botops.settings import Settings, load_settings

# Test-only revisions, appended after the code's head in a copy of the migrations.
FAILING_REVISION = '''
"""Test only: creates a table, rebuilds guild_settings, writes a row, then fails."""
import sqlalchemy as sa
from alembic import op

revision = "test_fails"
down_revision = "{head}"


def upgrade():
    op.create_table("half_done", sa.Column("id", sa.Integer, primary_key=True))
    # On SQLite this copies guild_settings into a new table and drops the old one.
    recreate = "always" if op.get_bind().dialect.name == "sqlite" else "auto"
    with op.batch_alter_table("guild_settings", recreate=recreate) as batch:
        batch.add_column(sa.Column("half", sa.Integer, nullable=True))
    op.execute("INSERT INTO half_done (id) VALUES (1)")
    raise RuntimeError("this revision fails half-way")


def downgrade():
    pass
'''

GOOD_REVISION = '''
"""Test only: a table of notes."""
import sqlalchemy as sa
from alembic import op

revision = "test_notes"
down_revision = "{head}"


def upgrade():
    op.create_table("notes", sa.Column("id", sa.Integer, primary_key=True))


def downgrade():
    op.drop_table("notes")
'''

# Rebuilds guild_settings while a row of another table points at one of its rows.
REBUILD_WITH_REFERENCES = '''
"""Test only: a table that references guild_settings, then a rebuild of guild_settings."""
import sqlalchemy as sa
from alembic import op

revision = "test_rebuild"
down_revision = "{head}"


def upgrade():
    op.create_table(
        "members",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("guild_id", sa.BigInteger, sa.ForeignKey("guild_settings.guild_id"), nullable=False),
    )
    op.execute("INSERT INTO guild_settings (guild_id) VALUES (7)")
    op.execute("INSERT INTO members (id, guild_id) VALUES (1, 7)")
    recreate = "always" if op.get_bind().dialect.name == "sqlite" else "auto"
    with op.batch_alter_table("guild_settings", recreate=recreate) as batch:
        batch.alter_column("language", type_=sa.String(10), existing_nullable=False)


def downgrade():
    pass
'''


def _scripts_with(tmp_path: Path, name: str, revision: str) -> Path:
    """Copy the code's migrations and append ``revision`` after their head."""
    location = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, location, ignore=shutil.ignore_patterns("__pycache__"))
    text_ = textwrap.dedent(revision).format(head=migrate.head_revision())
    (location / "versions" / f"{name}.py").write_text(text_)
    return location


def _inspect(connection: Connection) -> dict[str, Any]:
    inspector = inspect(connection)
    snapshot: dict[str, Any] = {}
    for table in sorted(inspector.get_table_names()):
        snapshot[table] = {
            "columns": [
                (c["name"], str(c["type"]), c["nullable"], str(c.get("default")))
                for c in inspector.get_columns(table)
            ],
            "primary_key": inspector.get_pk_constraint(table),
            "indexes": sorted(inspector.get_indexes(table), key=lambda i: str(i["name"])),
            "unique": sorted(inspector.get_unique_constraints(table), key=lambda u: str(u["name"])),
            "foreign_keys": sorted(inspector.get_foreign_keys(table), key=lambda f: str(f["name"])),
        }
    return snapshot


async def _schema(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as connection:
        return await connection.run_sync(_inspect)


def _settings(url: str, environment: str) -> Settings:
    if environment == "production":
        return load_settings(None, environment="production", discord_token="test-token", database_url=url)
    return load_settings(None, environment="development", database_url=url)


def _url(engine: AsyncEngine) -> str:
    return engine.url.render_as_string(hide_password=False)


# -- reversible and matching the code ------------------------------------------------------------------


@pytest.mark.asyncio
async def test_upgrade_downgrade_upgrade_gives_the_same_schema(engine: AsyncEngine) -> None:
    await migrate.upgrade(engine)
    first = await _schema(engine)

    await migrate.downgrade(engine, "base")
    await migrate.upgrade(engine)

    assert await _schema(engine) == first
    assert "guild_settings" in first


@pytest.mark.asyncio
async def test_each_revision_downgrades_to_the_schema_before_it(engine: AsyncEngine) -> None:
    revisions = [r.id for r in reversed(migrate.history())]
    schemas: dict[str | None, dict[str, Any]] = {None: _without_version(await _schema(engine))}
    for revision in revisions:
        await migrate.upgrade(engine, revision)
        schemas[revision] = _without_version(await _schema(engine))

    for previous in reversed([None, *revisions[:-1]]):
        await migrate.downgrade(engine, "-1")
        assert await migrate.current_revision(engine) == previous
        assert _without_version(await _schema(engine)) == schemas[previous]


def _without_version(schema: dict[str, Any]) -> dict[str, Any]:
    # Alembic keeps its (then empty) version table after the last downgrade.
    return {table: shape for table, shape in schema.items() if table != "alembic_version"}


@pytest.mark.asyncio
async def test_downgrade_to_base_leaves_only_alembic_version(engine: AsyncEngine) -> None:
    await migrate.upgrade(engine)

    result = await migrate.downgrade(engine, "base")

    assert result.after is None
    assert set(await _schema(engine)) == {"alembic_version"}


@pytest.mark.asyncio
async def test_check_is_clean_at_head(engine: AsyncEngine) -> None:
    await migrate.upgrade(engine)

    assert await migrate.check(engine) == []


@pytest.mark.asyncio
async def test_check_lists_a_column_the_code_does_not_have(engine: AsyncEngine) -> None:
    await migrate.upgrade(engine)
    async with engine.begin() as connection:
        await connection.execute(text("ALTER TABLE guild_settings ADD COLUMN stray INTEGER"))

    problems = await migrate.check(engine)

    assert problems == ["column guild_settings.stray is in the database but not in the code"]


@pytest.mark.asyncio
async def test_check_says_an_empty_database_needs_an_upgrade(engine: AsyncEngine) -> None:
    problems = await migrate.check(engine)

    assert "run `botops db upgrade`" in problems[0]
    assert "table guild_settings is missing from the database" in problems


# -- all or nothing ------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_failed_migration_leaves_schema_and_revision_as_they_were(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    scripts = _scripts_with(tmp_path, "test_fails", FAILING_REVISION)
    await migrate.upgrade(engine)
    head = migrate.head_revision()
    before = await _schema(engine)

    with pytest.raises(MigrationFailed, match="this revision fails half-way") as caught:
        await migrate.upgrade(engine, script_location=scripts)

    assert caught.value.before == head
    assert await _schema(engine) == before
    assert await migrate.current_revision(engine) == head


@pytest.mark.asyncio
async def test_failed_migration_of_an_empty_database_leaves_it_empty(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    scripts = _scripts_with(tmp_path, "test_fails", FAILING_REVISION)

    with pytest.raises(MigrationFailed, match="rolled back"):
        await migrate.upgrade(engine, script_location=scripts)

    assert await _schema(engine) == {}
    assert await migrate.current_revision(engine) is None


@pytest.mark.asyncio
async def test_rebuilding_a_referenced_table_keeps_the_rows_pointing_at_it(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    scripts = _scripts_with(tmp_path, "test_rebuild", REBUILD_WITH_REFERENCES)

    await migrate.upgrade(engine, script_location=scripts)

    async with engine.connect() as connection:
        rows = (await connection.execute(text("SELECT id, guild_id FROM members"))).all()
    assert [tuple(row) for row in rows] == [(1, 7)]


@pytest.mark.asyncio
async def test_upgrade_to_an_unknown_revision_is_refused(engine: AsyncEngine) -> None:
    with pytest.raises(InvalidRevision, match="'no-such-revision'"):
        await migrate.upgrade(engine, "no-such-revision")


# -- where the schema stands ---------------------------------------------------------------------------


def test_history_ends_with_the_first_revision_and_starts_with_the_head() -> None:
    revisions = migrate.history()

    assert revisions[0].id == migrate.head_revision()
    assert revisions[0].is_head
    assert revisions[-1].parent is None
    assert all(revision.description for revision in revisions)


@pytest.mark.asyncio
async def test_schema_state_lists_the_pending_revisions_oldest_first(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    scripts = _scripts_with(tmp_path, "test_notes", GOOD_REVISION)
    await migrate.upgrade(engine)

    state = await migrate.schema_state(engine, script_location=scripts)

    assert state.status is SchemaStatus.BEHIND
    assert state.pending == ("test_notes",)
    assert state.current == migrate.head_revision()


@pytest.mark.asyncio
async def test_schema_state_is_unknown_for_a_revision_the_code_does_not_have(engine: AsyncEngine) -> None:
    await migrate.upgrade(engine)
    async with engine.begin() as connection:
        await connection.execute(text("UPDATE alembic_version SET version_num = 'from_the_future'"))

    state = await migrate.schema_state(engine)

    assert state.is_unknown
    assert state.current == "from_the_future"


# -- the start-up rule ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_ensure_schema_migrates_an_empty_database_in_development(engine: AsyncEngine) -> None:
    state = await migrate.ensure_schema(engine, _settings(_url(engine), "development"))

    assert state.is_current
    assert await migrate.check(engine) == []


@pytest.mark.asyncio
async def test_ensure_schema_applies_a_pending_revision_in_development(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    scripts = _scripts_with(tmp_path, "test_notes", GOOD_REVISION)
    await migrate.upgrade(engine)

    state = await migrate.ensure_schema(
        engine, _settings(_url(engine), "development"), script_location=scripts
    )

    assert state.current == "test_notes"
    assert "notes" in await _schema(engine)


@pytest.mark.asyncio
async def test_ensure_schema_refuses_in_production_and_names_the_command(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    scripts = _scripts_with(tmp_path, "test_notes", GOOD_REVISION)
    await migrate.upgrade(engine)
    head = migrate.head_revision()

    with pytest.raises(SchemaBehind) as caught:
        await migrate.ensure_schema(engine, _settings(_url(engine), "production"), script_location=scripts)

    assert str(caught.value) == (
        f"the database schema is at {head}, the code needs test_notes: "
        "back up the database, then run `botops db upgrade`"
    )
    assert await migrate.current_revision(engine) == head


@pytest.mark.asyncio
async def test_ensure_schema_leaves_an_empty_database_alone_in_production(engine: AsyncEngine) -> None:
    with pytest.raises(SchemaBehind, match="run `botops db upgrade`"):
        await migrate.ensure_schema(engine, _settings(_url(engine), "production"))

    assert await _schema(engine) == {}


@pytest.mark.asyncio
async def test_ensure_schema_obeys_database_auto_migrate_in_production(engine: AsyncEngine) -> None:
    settings = load_settings(
        None,
        environment="production",
        discord_token="test-token",
        database_url=_url(engine),
        database_auto_migrate=True,
    )

    state = await migrate.ensure_schema(engine, settings)

    assert state.is_current


@pytest.mark.asyncio
async def test_a_database_ahead_of_the_code_is_refused_even_in_development(engine: AsyncEngine) -> None:
    await migrate.upgrade(engine)
    async with engine.begin() as connection:
        await connection.execute(text("UPDATE alembic_version SET version_num = 'from_the_future'"))

    with pytest.raises(SchemaAhead, match="from_the_future, a revision this code does not know"):
        await migrate.ensure_schema(engine, _settings(_url(engine), "development"))


# -- the levels revision -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_new_guild_row_gets_the_default_xp_settings(engine: AsyncEngine) -> None:
    await migrate.upgrade(engine)
    async with engine.begin() as connection:
        await connection.execute(text("INSERT INTO guild_settings (guild_id) VALUES (7)"))
        row = (
            await connection.execute(
                text("SELECT xp_min, xp_max, xp_cooldown_seconds, levelup_channel_id FROM guild_settings")
            )
        ).one()

    assert tuple(row) == (15, 25, 60, None)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "values",
    [
        "xp_min = 30, xp_max = 20",
        "xp_min = -1",
        "xp_max = 1001",
        "xp_cooldown_seconds = -1",
        "xp_cooldown_seconds = 86401",
    ],
)
async def test_guild_settings_refuse_xp_settings_out_of_bounds(engine: AsyncEngine, values: str) -> None:
    await migrate.upgrade(engine)
    async with engine.begin() as connection:
        await connection.execute(text("INSERT INTO guild_settings (guild_id) VALUES (7)"))

    with pytest.raises(IntegrityError, match="ck_guild_settings_xp_"):
        async with engine.begin() as connection:
            await connection.execute(text(f"UPDATE guild_settings SET {values}"))  # noqa: S608 - fixed test values


@pytest.mark.asyncio
async def test_the_leaderboard_index_orders_xp_descending_within_a_guild(engine: AsyncEngine) -> None:
    await migrate.upgrade(engine)
    query = (
        "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_member_xp_guild_id_xp'"
        if engine.dialect.name == "postgresql"
        else "SELECT sql FROM sqlite_master WHERE name = 'ix_member_xp_guild_id_xp'"
    )
    async with engine.connect() as connection:
        definition = (await connection.execute(text(query))).scalar_one()

    assert "(guild_id, xp DESC)" in definition
