"""`botops deploy` end to end: a real git remote, the bot under supervisord, commands through the sandbox."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from botops.cli import ExitCode
from tests.deploy.harness import Deployed, deployed_bot, git, write_greet_version

pytestmark = pytest.mark.asyncio

_MIGRATION = '''\
"""A marker table, added by a deploy.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28 00:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("deploy_marker", sa.Column("id", sa.Integer(), primary_key=True))


def downgrade() -> None:
    op.drop_table("deploy_marker")
'''


def add_migration(deployed: Deployed) -> None:
    (deployed.dev / "botops" / "db" / "migrations" / "versions" / "0005_marker.py").write_text(
        _MIGRATION, encoding="utf-8"
    )


@contextlib.asynccontextmanager
async def greeting_continuously(deployed: Deployed) -> AsyncIterator[dict[str, list[str]]]:
    """Invoke /greet back to back for the block; collect the answers and the failures."""
    seen: dict[str, list[str]] = {"answers": [], "failures": []}
    stop = asyncio.Event()

    async def loop() -> None:
        while not stop.is_set():
            try:
                seen["answers"].append(await deployed.greet())
            except Exception as error:  # a missed answer is what the test counts
                seen["failures"].append(f"{type(error).__name__}: {error}")
            await asyncio.sleep(0.02)

    task = asyncio.create_task(loop())
    try:
        yield seen
    finally:
        stop.set()
        await task


async def test_a_cog_only_change_deploys_by_hot_reload_without_a_restart_or_a_missed_command(
    tmp_path: Path,
) -> None:
    async with deployed_bot(tmp_path) as deployed:
        pid = deployed.details()["pid"]
        write_greet_version(deployed, "v2")
        new = deployed.push("greet says v2")

        async with greeting_continuously(deployed) as seen:
            code, output = await deployed.botops("deploy", "--yes", "--feature", "DEADLOCK-12")

        assert code == ExitCode.OK, output
        assert "Mode: reload" in output
        assert "DEPLOYMENT FINISHED for DEADLOCK-12" in output
        assert deployed.details()["pid"] == pid  # the same process
        assert deployed.head() == new
        assert await deployed.greet() == "hello v2"
        assert seen["failures"] == []
        assert len(seen["answers"]) > 10
        notes = (deployed.checkout / "features" / "DEADLOCK-12.md").read_text(encoding="utf-8")
        assert "**Status:** ✅ Deployed" in notes
        assert "hot reload (cogs.greet)" in notes
        code, listing = await deployed.botops("deployments")
        assert code == ExitCode.OK, listing
        assert "succeeded" in listing
        assert "reload" in listing


async def test_a_change_with_a_migration_deploys_by_restart_and_upgrades_the_schema(tmp_path: Path) -> None:
    async with deployed_bot(tmp_path) as deployed:
        pid = deployed.details()["pid"]
        add_migration(deployed)
        new = deployed.push("a marker table")

        code, output = await deployed.botops("deploy", "--yes")

        assert code == ExitCode.OK, output
        assert "Mode: restart" in output
        assert "migrations changed" in output
        assert deployed.details()["pid"] != pid
        assert deployed.revision() == "0005"
        assert deployed.head() == new
        await deployed.wait_ready(new)
        assert await deployed.greet() == "hello v1"


async def test_a_deploy_whose_bot_never_becomes_ready_is_rolled_back_with_its_schema_and_data(
    tmp_path: Path,
) -> None:
    async with deployed_bot(tmp_path, ready_timeout=12.0) as deployed:
        old = deployed.head()
        deployed.query("SELECT 1")
        before = deployed.query("SELECT count(*) FROM guild_settings")
        add_migration(deployed)
        extensions = deployed.dev / "botops" / "bot" / "extensions.py"
        source = extensions.read_text(encoding="utf-8")
        extensions.write_text(
            source.replace('"botops.cogs.stats",\n)', '"botops.cogs.stats",\n    "botops.cogs.missing",\n)'),
            encoding="utf-8",
        )
        deployed.push("a migration and a core change that cannot start")

        code, output = await deployed.botops("deploy", "--yes")

        assert code == ExitCode.FAILURE, output
        assert "DEPLOYMENT FAILED" in output, output
        assert "rolled back" in output, output
        assert deployed.head() == old
        assert deployed.revision() == "0004"
        assert deployed.query("SELECT count(*) FROM guild_settings") == before
        await deployed.wait_ready(old)
        assert await deployed.greet() == "hello v1"
        code, listing = await deployed.botops("deployments")
        assert "rolled-back" in listing


async def test_a_dry_run_changes_nothing(tmp_path: Path) -> None:
    async with deployed_bot(tmp_path) as deployed:
        pid, old = deployed.details()["pid"], deployed.head()
        add_migration(deployed)
        deployed.push("a marker table")

        code, output = await deployed.botops("deploy", "--dry-run")

        assert code == ExitCode.OK, output
        assert "Mode: restart" in output
        assert "Dry run: nothing was changed." in output
        assert (deployed.head(), deployed.details()["pid"], deployed.revision()) == (old, pid, "0004")
        assert not (deployed.checkout / "backups").exists()
        assert git(deployed.checkout, "status", "--porcelain", "--untracked-files=no") == ""


async def test_rollback_takes_the_last_deploy_back_and_the_ledger_records_both(tmp_path: Path) -> None:
    async with deployed_bot(tmp_path) as deployed:
        old = deployed.head()
        write_greet_version(deployed, "v2")
        deployed.push("greet says v2")
        code, output = await deployed.botops("deploy", "--yes")
        assert code == ExitCode.OK, output
        assert await deployed.greet() == "hello v2"

        code, output = await deployed.botops("rollback")

        assert code == ExitCode.OK, output
        assert deployed.head() == old
        assert await deployed.greet() == "hello v1"
        code, listing = await deployed.botops("deployments")
        rows = [line for line in listing.splitlines() if "succeeded" in line]
        assert [("rollback" in row, "deploy" in row) for row in rows] == [(True, False), (False, True)]


async def test_a_hot_reload_that_fails_keeps_every_extension_at_the_old_version(tmp_path: Path) -> None:
    async with deployed_bot(tmp_path) as deployed:
        old, pid = deployed.head(), deployed.details()["pid"]
        write_greet_version(deployed, "v2", broken=True)
        deployed.push("a syntax error in greet")

        code, output = await deployed.botops("deploy", "--yes")

        assert code == ExitCode.FAILURE, output
        assert "the hot reload failed at reload cogs.greet" in output
        assert deployed.head() == old
        assert deployed.details()["pid"] == pid
        assert await deployed.greet() == "hello v1"


async def test_a_failing_preflight_refuses_the_deploy_and_changes_nothing(tmp_path: Path) -> None:
    async with deployed_bot(tmp_path) as deployed:
        old, pid = deployed.head(), deployed.details()["pid"]
        env_file = deployed.checkout / ".env"
        env_file.write_text(
            env_file.read_text(encoding="utf-8").replace(
                "DEPLOY_TEST_COMMAND=", f"DEPLOY_TEST_COMMAND={sys.executable} -c 'raise SystemExit(3)'"
            ),
            encoding="utf-8",
        )
        write_greet_version(deployed, "v2")
        deployed.push("greet says v2")

        code, output = await deployed.botops("deploy", "--yes")

        assert code == ExitCode.FAILURE, output
        assert "preflight failed (tests)" in output
        assert (deployed.head(), deployed.details()["pid"]) == (old, pid)
        assert not (deployed.checkout / "backups").exists()
        assert await deployed.greet() == "hello v1"
