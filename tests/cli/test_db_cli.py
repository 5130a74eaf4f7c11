"""``botops db``: upgrade, current, history, check, downgrade, and errors in one line without a traceback."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from typer.testing import CliRunner, Result

from botops.cli import ExitCode, app
from botops.db import migrate
from tests.db.databases import (
    BACKENDS,
    create_postgres_database,
    drop_postgres_database,
    postgres_server,
    sqlite_url,
)

runner = CliRunner()


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty folder with none of the developer's database or environment settings."""
    monkeypatch.chdir(tmp_path)
    for variable in ("ENVIRONMENT", "DATABASE_URL", "DATABASE_AUTO_MIGRATE"):
        monkeypatch.delenv(variable, raising=False)
    return tmp_path


@pytest.fixture(params=BACKENDS)
def database_url(
    request: pytest.FixtureRequest, isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    """An empty database of its own, on SQLite and on PostgreSQL, set as DATABASE_URL."""
    if request.param == "sqlite":
        url = sqlite_url(isolated)
    else:
        postgres_server()  # skips when no server is configured
        url = asyncio.run(create_postgres_database())
    monkeypatch.setenv("DATABASE_URL", url)
    try:
        yield url
    finally:
        if request.param == "postgresql":
            asyncio.run(drop_postgres_database(url))


def _db(*arguments: str) -> Result:
    return runner.invoke(app, ["db", *arguments])


def test_upgrade_migrates_an_empty_database_to_the_head(database_url: str) -> None:
    result = _db("upgrade")

    assert result.exit_code == ExitCode.OK, result.output
    assert f"from base (no schema) to {migrate.head_revision()}" in result.output


def test_upgrade_again_says_the_schema_is_already_at_the_head(database_url: str) -> None:
    _db("upgrade")

    result = _db("upgrade")

    assert result.exit_code == ExitCode.OK
    assert f"already at {migrate.head_revision()}" in result.output


def test_current_says_an_empty_database_is_behind(database_url: str) -> None:
    result = _db("current")

    assert result.exit_code == ExitCode.OK
    assert "none (no schema yet)" in result.output
    assert "run `botops db upgrade`" in result.output


def test_current_says_up_to_date_after_an_upgrade(database_url: str) -> None:
    _db("upgrade")

    result = _db("current")

    assert result.exit_code == ExitCode.OK
    assert "up to date" in result.output


def test_upgrade_leaves_its_migration_in_the_log_file(database_url: str, isolated: Path) -> None:
    _db("upgrade")

    log = (isolated / "logs" / "botops.log").read_text(encoding="utf-8")
    assert f"Migrated the database schema from base (no schema) to {migrate.head_revision()}" in log


def test_db_commands_read_the_env_file_they_are_given(isolated: Path) -> None:
    database = isolated / "elsewhere" / "bot.db"
    (isolated / "bot.env").write_text(f"DATABASE_URL=sqlite+aiosqlite:///{database}\n", encoding="utf-8")

    upgraded = _db("upgrade", "--env-file", "bot.env")
    current = _db("current", "--env-file", "bot.env")

    assert upgraded.exit_code == ExitCode.OK, upgraded.output
    assert database.exists()
    assert "up to date" in current.output
    assert str(database) in current.output


def test_history_lists_every_revision_without_a_database(isolated: Path) -> None:
    result = _db("history")

    assert result.exit_code == ExitCode.OK
    for revision in migrate.history():
        assert revision.id in result.output
    assert not (isolated / "data").exists()


def test_check_is_clean_after_an_upgrade(database_url: str) -> None:
    _db("upgrade")

    result = _db("check")

    assert result.exit_code == ExitCode.OK
    assert "matches the code" in result.output


def test_check_lists_the_differences_and_fails_before_an_upgrade(database_url: str) -> None:
    result = _db("check")

    assert result.exit_code == ExitCode.FAILURE
    assert "table guild_settings is missing from the database" in result.output


def test_downgrade_minus_one_steps_back_one_revision(database_url: str) -> None:
    _db("upgrade")

    result = _db("downgrade", "-1")

    assert result.exit_code == ExitCode.OK, result.output
    parent = migrate.history()[0].parent
    assert f"to {parent or 'base (no schema)'}" in result.output


def test_downgrade_without_a_target_is_a_usage_error(database_url: str) -> None:
    result = _db("downgrade")

    assert result.exit_code == ExitCode.USAGE
    assert "Missing argument" in result.output


def test_upgrade_to_an_unknown_revision_is_a_usage_error_in_one_line(database_url: str) -> None:
    result = _db("upgrade", "no-such-revision")

    assert result.exit_code == ExitCode.USAGE
    assert "cannot migrate to 'no-such-revision'" in result.output
    assert "Traceback" not in result.output


def test_a_malformed_database_url_exits_2_naming_database_url(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://bot@localhost/bot")

    result = _db("current")

    assert result.exit_code == ExitCode.USAGE
    assert result.output.startswith("error: DATABASE_URL: ")
    assert "Traceback" not in result.output


def test_a_database_url_whose_port_is_not_a_number_exits_2_naming_database_url(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://u:p@db:notaport/x")

    result = _db("current")

    assert result.exit_code == ExitCode.USAGE, result.output
    assert result.output.startswith("error: DATABASE_URL: ")
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_an_unreachable_database_is_one_line_without_its_password(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    password = "hunter2-" + "y" * 8
    monkeypatch.setenv("DATABASE_URL", f"postgresql+asyncpg://botops:{password}@127.0.0.1:1/botops")

    result = _db("upgrade")

    assert result.exit_code == ExitCode.FAILURE
    assert result.output.count("\n") == 1
    assert "DATABASE_URL=postgresql+asyncpg://botops:***@127.0.0.1:1/botops" in result.output
    assert password not in result.output
    assert "Traceback" not in result.output


def test_current_never_prints_the_password_of_a_postgresql_url(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    postgres_server()  # skips when no server is configured
    url = make_url(asyncio.run(create_postgres_database()))
    # The local test server trusts its clients; a password given anyway must not be printed.
    with_password = url if url.password else url.set(password="never-printed-" + "z" * 6)
    monkeypatch.setenv("DATABASE_URL", with_password.render_as_string(hide_password=False))
    try:
        result = _db("current")
    finally:
        asyncio.run(drop_postgres_database(url.render_as_string(hide_password=False)))

    assert result.exit_code == ExitCode.OK, result.output
    assert "***" in result.output
    assert str(with_password.password) not in result.output
