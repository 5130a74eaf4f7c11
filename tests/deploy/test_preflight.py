"""``botops preflight``: each check of the deploy checklist, against a real sandbox, git and database."""

from __future__ import annotations

import asyncio
import datetime
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from botops.backup.store import create_backup, verify_backup
from botops.cli import ExitCode, app
from botops.db import migrate
from botops.db.engine import create_engine_for_url
from botops.deploy import checks as checks_module
from botops.deploy.preflight import CHECK_NAMES, Check, PreflightReport, run_preflight
from botops.sandbox import Sandbox
from botops.settings import Settings, load_settings
from tests.backup.sqlite_databases import make_database, sqlite_url
from tests.db.databases import temporary_database

runner = CliRunner()

PYTHON = shlex.quote(sys.executable)


# -- the place a deploy runs in ----------------------------------------------------------------------------


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder, outside any git checkout, with no botops setting in the environment."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("COLUMNS", "400")  # the CLI's table keeps each row on one line
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def database(workdir: Path) -> Path:
    """A SQLite database migrated to the head, with rows."""
    return make_database(workdir / "data" / "bot.db", members=20)


def settings_for(workdir: Path, database: Path | None = None, **overrides: Any) -> Settings:
    """Settings for a bot in ``workdir``: its database, backups and logs there, no HTTP server."""
    values: dict[str, Any] = {
        "database_url": sqlite_url(database or workdir / "data" / "bot.db"),
        "backup_dir": workdir / "backups",
        "log_dir": workdir / "logs",
        "http_enabled": False,
    }
    values.update(overrides)
    return load_settings(None, **values)


def sandbox_settings(sandbox: Sandbox) -> dict[str, Any]:
    return {
        "discord_api_base": sandbox.api_base,
        "discord_gateway_url": sandbox.gateway_url,
        "discord_token": sandbox.token,
    }


async def preflight(settings: Settings, *only: str, **options: Any) -> PreflightReport:
    options.setdefault("env_file", Path(".env"))
    return await run_preflight(settings, only=only or None, **options)


async def one(settings: Settings, name: str, **options: Any) -> Check:
    return (await preflight(settings, name, **options)).check(name)


GIT = shutil.which("git") or "git"


def git(folder: Path, *arguments: str) -> str:
    return subprocess.run(  # noqa: S603 - git with our own arguments, no shell
        [GIT, "-C", str(folder), "-c", "user.name=Ada", "-c", "user.email=ada@example.org", *arguments],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def make_repository(folder: Path, *, ignore_env: bool = True) -> str:
    """Make ``folder`` a git checkout with one commit (a .gitignore naming .env); return the commit."""
    git(folder, "init", "--quiet")
    (folder / ".gitignore").write_text(".env\n" if ignore_env else "*.log\n")
    git(folder, "add", ".gitignore")
    git(folder, "commit", "--quiet", "-m", "first")
    return git(folder, "rev-parse", "--short=12", "HEAD")


def write_env(folder: Path, mode: int = 0o600, **variables: str) -> Path:
    path = folder / ".env"
    path.write_text("".join(f"{name}={value}\n" for name, value in variables.items()))
    path.chmod(mode)
    return path


async def fresh_backup(settings: Settings) -> str:
    manifest = await create_backup(settings, reason="manual", backup_dir=settings.backup_dir)
    await verify_backup(settings.backup_dir, manifest.id)
    return manifest.id


# -- Discord: the token and the session starts -----------------------------------------------------------


@pytest.mark.asyncio
async def test_a_token_the_sandbox_accepts_passes_and_names_the_bot(sandbox: Sandbox, workdir: Path) -> None:
    check = await one(settings_for(workdir, **sandbox_settings(sandbox)), "Discord token")

    assert check.status == "pass", check
    assert f"the bot is {sandbox.world.bot.username} (id {sandbox.world.bot.id})" in check.detail
    assert sandbox.api_base in check.detail
    calls = [r for r in sandbox.requests if r.path.endswith("/users/@me")]
    assert [r.method for r in calls] == ["GET"]


@pytest.mark.asyncio
async def test_a_wrong_token_fails_with_the_fix_and_never_shows_the_token(
    sandbox: Sandbox, workdir: Path
) -> None:
    wrong = sandbox.token[:-4] + "abcd"
    settings = settings_for(workdir, **{**sandbox_settings(sandbox), "discord_token": wrong})

    check = await one(settings, "Discord token")

    assert check.status == "fail"
    assert "refused DISCORD_TOKEN (HTTP 401)" in check.detail
    assert check.fix is not None
    assert "the token `botops sandbox` printed" in check.fix
    assert wrong not in check.detail + check.fix


@pytest.mark.asyncio
async def test_without_a_token_both_discord_checks_fail_without_calling_anyone(workdir: Path) -> None:
    report = await preflight(settings_for(workdir), "Discord token", "session starts")

    assert [c.status for c in report.checks] == ["fail", "fail"]
    assert all("DISCORD_TOKEN is not set" in c.detail for c in report.checks)
    assert all(c.fix and "developer portal" in c.fix for c in report.checks)


@pytest.mark.asyncio
async def test_discord_that_does_not_answer_is_a_failure_naming_it(workdir: Path) -> None:
    settings = settings_for(
        workdir,
        discord_api_base="http://127.0.0.1:1/api/v10",
        discord_gateway_url="ws://127.0.0.1:1/gateway",
        discord_token="not-checked",
    )

    check = await one(settings, "Discord token")

    assert check.status == "fail"
    assert "cannot reach the sandbox at http://127.0.0.1:1/api/v10" in check.detail


@pytest.mark.parametrize(
    ("remaining", "status", "said"),
    [
        (1000, "pass", "1000 of 1000 left"),
        (99, "warn", "less than twice SESSION_START_RESERVE (50)"),
        (49, "fail", "below SESSION_START_RESERVE (50), so the bot would refuse to log in"),
    ],
)
@pytest.mark.asyncio
async def test_session_starts_are_judged_against_the_reserve(
    sandbox: Sandbox, workdir: Path, remaining: int, status: str, said: str
) -> None:
    sandbox.faults.session_start_limit(remaining, reset_after=3 * 3600)

    check = await one(settings_for(workdir, **sandbox_settings(sandbox)), "session starts")

    assert check.status == status, check
    assert said in check.detail
    assert "reset in 2 h 59 min" in check.detail or "reset in 3 h" in check.detail


@pytest.mark.asyncio
async def test_no_session_start_left_fails_even_without_a_reserve(sandbox: Sandbox, workdir: Path) -> None:
    sandbox.faults.session_start_limit(0)
    settings = settings_for(workdir, **sandbox_settings(sandbox), session_start_reserve=0)

    check = await one(settings, "session starts")

    assert check.status == "fail"
    assert check.fix is not None
    assert "wait for the reset" in check.fix


# -- .env: not tracked by git, not readable by others ---------------------------------------------------


@pytest.mark.asyncio
async def test_an_env_file_tracked_by_git_fails(workdir: Path) -> None:
    make_repository(workdir, ignore_env=False)
    write_env(workdir, DISCORD_TOKEN="x")
    git(workdir, "add", ".env")
    git(workdir, "commit", "--quiet", "-m", "oops")

    check = await one(settings_for(workdir), ".env", env_file=Path(".env"))

    assert check.status == "fail"
    assert "git tracks .env" in check.detail
    assert check.fix is not None
    assert "git rm --cached .env" in check.fix


@pytest.mark.asyncio
async def test_a_private_env_file_git_ignores_passes(workdir: Path) -> None:
    make_repository(workdir)
    env_file = write_env(workdir, DISCORD_TOKEN="x")

    check = await one(settings_for(workdir), ".env", env_file=env_file)

    assert check.status == "pass", check
    assert "mode 600" in check.detail


@pytest.mark.asyncio
async def test_an_env_file_others_can_read_fails_with_chmod(workdir: Path) -> None:
    make_repository(workdir)
    env_file = write_env(workdir, mode=0o644, DISCORD_TOKEN="x")

    check = await one(settings_for(workdir), ".env", env_file=env_file)

    assert check.status == "fail"
    assert "mode 644" in check.detail
    assert check.fix == f"chmod 600 {env_file}"


@pytest.mark.asyncio
async def test_an_env_file_git_would_add_is_a_warning(workdir: Path) -> None:
    make_repository(workdir, ignore_env=False)
    write_env(workdir, DISCORD_TOKEN="x")

    check = await one(settings_for(workdir), ".env", env_file=Path(".env"))

    assert check.status == "warn"
    assert "`git add .` would commit it" in check.detail
    assert check.fix == "add it to .gitignore"


@pytest.mark.asyncio
async def test_outside_a_git_checkout_the_env_file_is_a_warning(workdir: Path) -> None:
    env_file = write_env(workdir, DISCORD_TOKEN="x")

    check = await one(settings_for(workdir), ".env", env_file=env_file)

    assert check.status == "warn"
    assert "is not a git checkout" in check.detail


# -- the tests ------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_failing_test_command_fails_with_its_exit_code_and_last_lines(workdir: Path) -> None:
    script = "import sys\nfor n in range(100): print('line', n)\nsys.exit(3)"
    settings = settings_for(workdir, deploy_test_command=f"{PYTHON} -c {shlex.quote(script)}")

    check = await one(settings, "tests")

    assert check.status == "fail"
    assert "exited with 3" in check.detail
    assert check.detail.endswith("line 99")
    assert "line 79" not in check.detail.splitlines()  # only the last 20 lines are kept


@pytest.mark.asyncio
async def test_a_passing_test_command_passes_and_runs_in_the_working_directory(workdir: Path) -> None:
    script = "import pathlib; pathlib.Path('ran-here').touch()"
    settings = settings_for(workdir, deploy_test_command=f"{PYTHON} -c {shlex.quote(script)}")

    check = await one(settings, "tests")

    assert check.status == "pass", check
    assert (workdir / "ran-here").exists()


@pytest.mark.asyncio
async def test_an_empty_test_command_and_skipped_tests_are_warnings(workdir: Path) -> None:
    empty = await one(settings_for(workdir, deploy_test_command=""), "tests")
    skipped = await one(settings_for(workdir, deploy_test_command="false"), "tests", run_tests=False)

    assert (empty.status, skipped.status) == ("warn", "warn")
    assert "no tests ran" in empty.detail
    assert "skipped" in skipped.detail


@pytest.mark.asyncio
async def test_a_test_command_that_does_not_exist_fails(workdir: Path) -> None:
    check = await one(settings_for(workdir, deploy_test_command="no-such-program-here --all"), "tests")

    assert check.status == "fail"
    assert "cannot start no-such-program-here" in check.detail


@pytest.mark.asyncio
async def test_a_test_command_that_hangs_is_stopped_at_the_timeout(workdir: Path) -> None:
    script = "import time; print('started', flush=True); time.sleep(60)"
    settings = settings_for(workdir, deploy_test_command=f"{PYTHON} -c {shlex.quote(script)}")

    check = await one(settings, "tests", test_timeout=0.5)

    assert check.status == "fail"
    assert "did not finish" in check.detail
    assert check.detail.endswith("started")


# -- settings, log folder, disk ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_production_settings_with_a_readable_env_file_fail(workdir: Path) -> None:
    env_file = write_env(workdir, mode=0o640)
    settings = settings_for(workdir, environment="production", discord_token="a-production-token")

    check = await one(settings, "settings", env_file=env_file)

    assert check.status == "fail"
    assert "the bot will refuse to start" in check.detail
    assert check.fix == f"chmod 600 {env_file}"


@pytest.mark.asyncio
async def test_production_settings_with_a_private_env_file_pass(workdir: Path) -> None:
    env_file = write_env(workdir)
    settings = settings_for(workdir, environment="production", discord_token="a-production-token")

    check = await one(settings, "settings", env_file=env_file)

    assert check.status == "pass", check


@pytest.mark.asyncio
async def test_development_settings_are_a_warning(workdir: Path) -> None:
    check = await one(settings_for(workdir), "settings")

    assert check.status == "warn"
    assert "ENVIRONMENT=development" in check.detail


@pytest.mark.asyncio
async def test_a_log_dir_that_is_a_file_fails(workdir: Path) -> None:
    (workdir / "logs").write_text("not a folder")

    check = await one(settings_for(workdir), "log folder")

    assert check.status == "fail"
    assert "is not a folder" in check.detail


@pytest.mark.asyncio
async def test_a_missing_log_dir_passes_without_being_created(workdir: Path) -> None:
    check = await one(settings_for(workdir, log_dir=workdir / "var" / "logs"), "log folder")

    assert check.status == "pass", check
    assert "does not exist yet" in check.detail
    assert not (workdir / "var").exists()
    assert os.listdir(workdir) == []  # the probe file is gone too


@pytest.mark.asyncio
async def test_disk_space_fails_below_twice_the_database(
    workdir: Path, database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    size = os.stat(database).st_size
    monkeypatch.setattr(shutil, "disk_usage", lambda _: SimpleNamespace(total=10**9, used=10**9, free=size))

    check = await one(settings_for(workdir, database), "disk space")

    assert check.status == "fail"
    assert "a backup of the" in check.detail
    assert check.fix is not None
    assert "BACKUP_DIR" in check.fix


@pytest.mark.asyncio
async def test_disk_space_passes_with_room_for_a_backup(workdir: Path, database: Path) -> None:
    check = await one(settings_for(workdir, database), "disk space")

    assert check.status == "pass", check


# -- database and migrations ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_current_database_is_reachable_and_has_no_pending_migrations(
    workdir: Path, database: Path
) -> None:
    report = await preflight(settings_for(workdir, database), "database", "migrations")

    assert [c.status for c in report.checks] == ["pass", "pass"], report.checks
    assert "answered in" in report.check("database").detail
    assert report.check("migrations").detail.startswith("none")
    assert report.plan.schema_revision == migrate.head_revision()


@pytest.mark.asyncio
async def test_a_database_at_an_older_revision_lists_the_pending_migrations(workdir: Path) -> None:
    database = workdir / "data" / "old.db"
    engine = create_engine_for_url(sqlite_url(database))
    try:
        await migrate.upgrade(engine, "0002")
    finally:
        await engine.dispose()
    newer = [r.id for r in reversed(migrate.history())][2:]  # history is newest first

    report = await preflight(settings_for(workdir, database), "migrations")

    check = report.check("migrations")
    assert check.status == "warn"
    assert f"{len(newer)} will run on deploy, from 0002" in check.detail
    assert all(revision in check.detail for revision in newer)
    assert "0003 (Command statistics)" in check.detail
    assert report.plan.schema_revision == "0002"


@pytest.mark.asyncio
async def test_a_missing_sqlite_file_is_a_warning_and_is_not_created(workdir: Path) -> None:
    report = await preflight(settings_for(workdir), "database", "migrations")

    assert [c.status for c in report.checks] == ["warn", "warn"]
    assert "there is no database at" in report.check("database").detail
    assert "from no schema" in report.check("migrations").detail
    assert not (workdir / "data" / "bot.db").exists()


@pytest.mark.asyncio
async def test_an_unreachable_database_fails_and_every_other_check_still_runs(workdir: Path) -> None:
    settings = settings_for(
        workdir, database_url="postgresql+asyncpg://botops:hunter2secret@127.0.0.1:1/botops"
    )

    report = await preflight(settings, run_tests=False)

    assert [c.name for c in report.checks] == list(CHECK_NAMES)
    database = report.check("database")
    assert database.status == "fail"
    assert "cannot reach the database" in database.detail
    assert database.fix is not None
    assert "DATABASE_URL" in database.fix
    assert report.check("migrations").status == "fail"
    assert report.plan.schema_revision is None
    assert all("hunter2secret" not in f"{c.detail} {c.fix}" for c in report.checks)


@pytest.mark.asyncio
async def test_on_postgresql_the_database_its_size_and_migrations_are_checked(workdir: Path) -> None:
    async with temporary_database("postgresql", workdir) as url:
        engine = create_engine_for_url(url)
        try:
            await migrate.upgrade(engine)
        finally:
            await engine.dispose()

        report = await preflight(
            settings_for(workdir, database_url=url), "disk space", "database", "migrations"
        )

    assert [c.status for c in report.checks] == ["pass", "pass", "pass"], report.checks


# -- backup and rollback plan -------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_no_backup_fails_with_the_command_that_makes_one(workdir: Path, database: Path) -> None:
    check = await one(settings_for(workdir, database), "backup")

    assert check.status == "fail"
    assert "there are no backups" in check.detail
    assert check.fix == "botops backup create --verify"


@pytest.mark.asyncio
async def test_an_unverified_backup_is_not_enough(workdir: Path, database: Path) -> None:
    settings = settings_for(workdir, database)
    await create_backup(settings, reason="manual", backup_dir=settings.backup_dir)

    check = await one(settings, "backup")

    assert check.status == "fail"
    assert "none of the 1 backups" in check.detail


@pytest.mark.asyncio
async def test_a_fresh_verified_backup_passes_and_the_rollback_plan_names_it(
    workdir: Path, database: Path
) -> None:
    commit = make_repository(workdir)
    settings = settings_for(workdir, database)
    backup_id = await fresh_backup(settings)

    report = await preflight(settings, "backup", "rollback plan")

    assert report.check("backup").status == "pass", report.checks
    assert backup_id in report.check("backup").detail
    assert report.plan.backup_id == backup_id
    assert report.plan.commit == commit
    assert report.plan.schema_revision == migrate.head_revision()
    rollback = report.check("rollback plan")
    assert rollback.status == "pass", rollback
    assert rollback.detail == f"commit {commit}, schema {migrate.head_revision()}, backup {backup_id}"


@pytest.mark.asyncio
async def test_a_verified_backup_older_than_the_limit_fails(workdir: Path, database: Path) -> None:
    settings = settings_for(workdir, database)
    await fresh_backup(settings)

    check = await one(settings, "backup", max_backup_age=datetime.timedelta(0))

    assert check.status == "fail"
    assert "is older than 0 s" in check.detail


@pytest.mark.asyncio
async def test_a_rollback_plan_without_a_backup_or_a_commit_is_a_warning(
    workdir: Path, database: Path
) -> None:
    check = await one(settings_for(workdir, database), "rollback plan")

    assert check.status == "warn"
    assert "no git commit to return to" in check.detail
    assert "no verified backup to restore" in check.detail


# -- the runner -----------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_check_that_raises_fails_alone_with_its_secrets_redacted(
    workdir: Path, database: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "a-secret-token-value"

    def broken(_: Path) -> None:
        raise RuntimeError(f"cannot list while holding {token}")

    monkeypatch.setattr(checks_module, "list_backups", broken)
    settings = settings_for(workdir, database, discord_token=token)

    report = await preflight(settings, "database", "backup")

    backup = report.check("backup")
    assert backup.status == "fail"
    assert "RuntimeError: cannot list while holding [REDACTED]" in backup.detail
    assert report.check("database").status == "pass"


@pytest.mark.asyncio
async def test_an_unknown_check_name_is_refused(workdir: Path) -> None:
    with pytest.raises(ValueError, match="no such preflight checks: disco"):
        await preflight(settings_for(workdir), "disco")


# -- the command ------------------------------------------------------------------------------------------


@pytest.fixture
def deployment(workdir: Path, database: Path) -> Path:
    """A git checkout of one commit, with a migrated database and .env ignored by git."""
    make_repository(workdir)
    return workdir


def write_deployment_env(workdir: Path, database: Path, sandbox: Sandbox, test_command: str) -> Path:
    return write_env(
        workdir,
        DATABASE_URL=sqlite_url(database),
        BACKUP_DIR=str(workdir / "backups"),
        LOG_DIR=str(workdir / "logs"),
        HTTP_ENABLED="false",
        DEPLOY_TEST_COMMAND=test_command,
        DISCORD_API_BASE=sandbox.api_base,
        DISCORD_GATEWAY_URL=sandbox.gateway_url,
        DISCORD_TOKEN=sandbox.token,
    )


async def invoke(*arguments: str) -> Result:
    # The command runs its own event loop, in a thread, while the sandbox serves from this one.
    return await asyncio.to_thread(runner.invoke, app, ["preflight", *arguments])


@pytest.mark.asyncio
async def test_the_command_exits_0_when_nothing_failed_and_prints_the_rollback_plan(
    sandbox: Sandbox, deployment: Path, database: Path
) -> None:
    env_file = write_deployment_env(deployment, database, sandbox, f"{PYTHON} -c pass")
    backup_id = await fresh_backup(load_settings(env_file))
    commit = git(deployment, "rev-parse", "--short=12", "HEAD")

    result = await invoke("--env-file", str(env_file))

    assert result.exit_code == ExitCode.OK, result.output
    assert (
        f"Rollback plan: commit {commit}, schema {migrate.head_revision()}, backup {backup_id}"
        in result.output
    )
    assert "0 failed: ready to deploy" in result.output
    assert all(name in result.output for name in CHECK_NAMES)
    assert sandbox.token not in result.output


@pytest.mark.asyncio
async def test_the_command_exits_1_when_the_tests_fail(
    sandbox: Sandbox, deployment: Path, database: Path
) -> None:
    env_file = write_deployment_env(
        deployment, database, sandbox, f"{PYTHON} -c {shlex.quote('import sys; sys.exit(3)')}"
    )
    await fresh_backup(load_settings(env_file))

    result = await invoke("--env-file", str(env_file))

    assert result.exit_code == ExitCode.FAILURE, result.output
    tests_row = next(line for line in result.output.splitlines() if line.startswith("│ tests"))
    assert "✗ FAIL" in tests_row
    assert "exited with 3" in tests_row
    assert "1 failed: fix tests before deploying" in result.output


def test_the_command_skips_the_tests_when_told(deployment: Path, database: Path) -> None:
    env_file = write_env(deployment, DATABASE_URL=sqlite_url(database), DEPLOY_TEST_COMMAND="false")

    result = runner.invoke(app, ["preflight", "--skip-tests", "--env-file", str(env_file)])

    tests_row = next(line for line in result.output.splitlines() if line.startswith("│ tests"))
    assert "! warning" in tests_row
    assert "skipped on request" in tests_row


def test_settings_that_cannot_be_read_are_one_line_and_exit_2(workdir: Path) -> None:
    env_file = write_env(workdir, DATABASE_URL="mysql://somewhere/bot")

    result = runner.invoke(app, ["preflight", "--env-file", str(env_file)])

    assert result.exit_code == ExitCode.USAGE
    assert result.output.count("\n") == 1
    assert result.output.startswith("error: DATABASE_URL")
    assert "Traceback" not in result.output


def test_the_command_does_not_leave_its_probe_in_log_dir(deployment: Path, database: Path) -> None:
    env_file = write_env(deployment, DATABASE_URL=sqlite_url(database), LOG_DIR=str(deployment / "logs"))

    runner.invoke(app, ["preflight", "--skip-tests", "--env-file", str(env_file)])

    assert (deployment / "logs").is_dir()
    assert not [p for p in (deployment / "logs").iterdir() if p.name.startswith(".preflight-")]
