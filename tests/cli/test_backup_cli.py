"""``botops backup``: create, list, verify, restore, and errors in one line without a traceback."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from botops.cli import ExitCode, app
from botops.db import migrate
from botops.db.engine import create_engine_for_url
from tests.backup.sqlite_databases import add_members, dump, make_database

runner = CliRunner()

_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A migrated SQLite database with rows, as DATABASE_URL, in an empty folder; no bot is asked."""
    monkeypatch.chdir(tmp_path)
    for variable in ("ENVIRONMENT", "DATABASE_URL", "BACKUP_DIR", "HTTP_PORT", "HTTP_HOST", "STATE_DIR"):
        monkeypatch.delenv(variable, raising=False)
    database = make_database(tmp_path / "data" / "bot.db")
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{database}")
    monkeypatch.setenv("HTTP_ENABLED", "false")
    return database


def _backup(*arguments: str) -> Result:
    return runner.invoke(app, ["backup", *arguments])


def _created_id(result: Result) -> str:
    found = _ID.search(result.output)
    assert found is not None, result.output
    return found.group(0)


def _row(result: Result, backup_id: str) -> str:
    return next(line for line in result.output.splitlines() if backup_id in line).rstrip()


def test_create_writes_a_backup_into_backup_dir_and_says_where(database: Path, tmp_path: Path) -> None:
    result = _backup("create")

    assert result.exit_code == ExitCode.OK, result.output
    backup_id = _created_id(result)
    assert (tmp_path / "backups" / f"{backup_id}.db.zst").is_file()
    assert "200 rows" in result.output or "rows in" in result.output


def test_create_with_an_unknown_reason_is_a_usage_error(database: Path) -> None:
    result = _backup("create", "--reason", "whenever")

    assert result.exit_code == ExitCode.USAGE
    assert "--reason must be one of scheduled, manual, pre-deploy" in result.output


def test_list_shows_each_backup_with_its_reason(database: Path) -> None:
    backup_id = _created_id(_backup("create", "--reason", "pre-deploy"))

    result = _backup("list")

    assert result.exit_code == ExitCode.OK, result.output
    assert backup_id in result.output
    assert "pre-deploy" in result.output


def test_list_says_when_there_are_no_backups(database: Path) -> None:
    result = _backup("list")

    assert result.exit_code == ExitCode.OK
    assert "There are no backups" in result.output


def test_verify_all_passes_for_fresh_backups(database: Path) -> None:
    first = _created_id(_backup("create"))
    second = _created_id(_backup("create"))

    result = _backup("verify", "--all")

    assert result.exit_code == ExitCode.OK, result.output
    assert f"ok     {first}" in result.output
    assert f"ok     {second}" in result.output


def test_list_shows_when_a_backup_was_verified(database: Path) -> None:
    backup_id = _created_id(_backup("create"))
    unverified = _backup("list")
    _backup("verify", "--all")

    result = _backup("list")

    assert result.exit_code == ExitCode.OK, result.output
    assert _row(unverified, backup_id).split("│")[-2].strip() == "no"
    assert _row(result, backup_id).count("0 min") == 2  # its age, and how long ago it verified


def test_verify_of_a_damaged_backup_exits_1_naming_the_check(database: Path, tmp_path: Path) -> None:
    backup_id = _created_id(_backup("create"))
    data = tmp_path / "backups" / f"{backup_id}.db.zst"
    data.write_bytes(data.read_bytes()[:-10])

    result = _backup("verify", backup_id)

    assert result.exit_code == ExitCode.FAILURE
    assert f"FAILED {backup_id}" in result.output
    assert "Traceback" not in result.output


def test_verify_without_an_id_or_all_is_a_usage_error(database: Path) -> None:
    result = _backup("verify")

    assert result.exit_code == ExitCode.USAGE
    assert "give a backup ID or --all" in result.output


def test_verify_of_an_unknown_id_is_one_line(database: Path) -> None:
    result = _backup("verify", "20200101T000000Z-000000")

    assert result.exit_code == ExitCode.FAILURE
    assert result.output.count("\n") == 1
    assert "there is no backup '20200101T000000Z-000000'" in result.output


def test_restore_yes_brings_back_the_backup_and_names_the_safety_backup(database: Path) -> None:
    before = dump(database)
    backup_id = _created_id(_backup("create"))
    add_members(database, range(1000, 1050))

    result = _backup("restore", backup_id, "--yes")

    assert result.exit_code == ExitCode.OK, result.output
    assert dump(database) == before
    assert "the database before it is backup" in result.output
    assert "nothing to run" in result.output


def test_restore_asks_first_and_leaves_the_database_when_told_no(database: Path) -> None:
    backup_id = _created_id(_backup("create"))
    add_members(database, range(1000, 1050))
    before = database.read_bytes()

    result = runner.invoke(app, ["backup", "restore", backup_id], input="n\n")

    assert result.exit_code != ExitCode.OK
    assert database.read_bytes() == before


def test_create_on_an_unreachable_postgresql_is_one_line_without_the_password(
    database: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://botops:hunter2secret@127.0.0.1:1/botops")

    result = _backup("create")

    assert result.exit_code == ExitCode.FAILURE
    assert result.output.count("\n") == 1
    assert "cannot connect to postgresql+asyncpg://botops:***@127.0.0.1:1/botops" in result.output
    assert "hunter2secret" not in result.output
    assert "Traceback" not in result.output
    assert list((tmp_path / "backups").iterdir()) == []


def test_prune_dry_run_lists_what_would_go_and_deletes_nothing_then_prune_deletes_it(
    database: Path, tmp_path: Path
) -> None:
    older = _created_id(_backup("create"))
    newer = _created_id(_backup("create"))
    assert _backup("verify", "--all").exit_code == ExitCode.OK
    files = sorted(path.name for path in (tmp_path / "backups").iterdir())

    dry = _backup("prune", "--daily", "1", "--weekly", "0", "--monthly", "0", "--dry-run")

    assert dry.exit_code == ExitCode.OK, dry.output
    assert f"would delete {older}" in dry.output
    assert f"keep   {newer}" in dry.output
    assert sorted(path.name for path in (tmp_path / "backups").iterdir()) == files

    pruned = _backup("prune", "--daily", "1", "--weekly", "0", "--monthly", "0")

    assert pruned.exit_code == ExitCode.OK, pruned.output
    left = {path.name for path in (tmp_path / "backups").iterdir()}
    assert not any(name.startswith(older) for name in left)
    assert {f"{newer}.db.zst", f"{newer}.json"} <= left


def test_prune_with_a_policy_that_keeps_nothing_is_a_usage_error_and_deletes_nothing(
    database: Path, tmp_path: Path
) -> None:
    _backup("create")
    files = sorted(path.name for path in (tmp_path / "backups").iterdir())

    result = _backup("prune", "--daily", "0", "--weekly", "0", "--monthly", "0")

    assert result.exit_code == ExitCode.USAGE, result.output
    assert "keep at least 1 daily, weekly or monthly backup" in result.output
    assert sorted(path.name for path in (tmp_path / "backups").iterdir()) == files


def test_create_verify_marks_the_new_backup_verified(database: Path, tmp_path: Path) -> None:
    result = _backup("create", "--verify")

    assert result.exit_code == ExitCode.OK, result.output
    assert (tmp_path / "backups" / f"{_created_id(result)}.verified").is_file()


def test_prune_without_options_follows_the_backup_keep_settings(
    database: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    older = _created_id(_backup("create", "--verify"))
    newer = _created_id(_backup("create", "--verify"))
    for variable, value in (
        ("BACKUP_KEEP_DAILY", "1"),
        ("BACKUP_KEEP_WEEKLY", "0"),
        ("BACKUP_KEEP_MONTHLY", "0"),
    ):
        monkeypatch.setenv(variable, value)

    result = _backup("prune", "--dry-run")

    assert result.exit_code == ExitCode.OK, result.output
    assert f"would delete {older}" in result.output
    assert f"keep   {newer}" in result.output
    assert "(1 daily, 0 weekly, 0 monthly)" in result.output


# -- drill ------------------------------------------------------------------------------------------------


def test_drill_restores_the_newest_backup_aside_and_leaves_the_database_alone(
    database: Path, tmp_path: Path
) -> None:
    _backup("create")
    newest = _created_id(_backup("create"))
    before = database.read_bytes()

    result = _backup("drill")

    assert result.exit_code == ExitCode.OK, result.output
    assert f"Drill passed: backup {newest}" in result.output
    assert "holds 201 rows in 6 tables" in result.output
    assert "the code's head" in result.output
    assert database.read_bytes() == before
    backups = tmp_path / "backups"
    assert (backups / f"{newest}.verified").is_file()  # a passed drill is a verification
    assert not [path for path in backups.iterdir() if path.name.startswith(".drill")]


def test_drill_upgrades_a_backup_taken_before_the_newest_migration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database: Path
) -> None:
    older = tmp_path / "old" / "bot.db"
    older.parent.mkdir()
    previous = migrate.history()[1].id

    async def at_previous_revision() -> None:
        engine = create_engine_for_url(f"sqlite+aiosqlite:///{older}")
        try:
            await migrate.upgrade(engine, previous)
        finally:
            await engine.dispose()

    asyncio.run(at_previous_revision())
    monkeypatch.setenv("DATABASE_URL", f"sqlite+aiosqlite:///{older}")
    _backup("create")

    result = _backup("drill")

    assert result.exit_code == ExitCode.OK, result.output
    assert f"upgraded {previous} -> {migrate.head_revision()}" in result.output


def test_drill_of_a_damaged_backup_exits_1_naming_the_check(database: Path, tmp_path: Path) -> None:
    backup_id = _created_id(_backup("create"))
    data = tmp_path / "backups" / f"{backup_id}.db.zst"
    data.write_bytes(data.read_bytes()[:-10])

    result = _backup("drill")

    assert result.exit_code == ExitCode.FAILURE, result.output
    assert f"backup {backup_id} cannot be trusted" in result.output
    assert "Traceback" not in result.output
    assert not [path for path in (tmp_path / "backups").iterdir() if path.name.startswith(".drill")]


def test_drill_without_backups_says_how_to_make_one(database: Path) -> None:
    result = _backup("drill")

    assert result.exit_code == ExitCode.FAILURE, result.output
    assert "no backups" in result.output
    assert "botops backup create" in result.output
