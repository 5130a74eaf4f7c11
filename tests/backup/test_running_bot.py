"""Backups with the bot running: its lock, its control routes, its flush before a backup, its own schedule.

Each test runs the real bot process against a sandbox and the real ``botops`` commands next to it.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import re
import sqlite3
import stat
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import aiohttp
import pytest
import zstandard

from botops.cli import ExitCode
from tests.bot.process import RunningBot, running_bot, spawn_bot
from tests.bot.test_levels import chat, configure, has_earned, stored

pytestmark = pytest.mark.asyncio

T = TypeVar("T")

_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")
WAIT = 30.0


async def eventually(check: Callable[[], T | None], what: str, timeout: float = WAIT) -> T:
    """Return ``check()`` once it is truthy; fail naming ``what`` after ``timeout``."""
    async with asyncio.timeout(timeout):
        while True:
            result = check()
            if result:
                return result
            await asyncio.sleep(0.05)  # files offer nothing to await
    raise AssertionError(f"timed out waiting for {what}")  # pragma: no cover - the timeout raises


def backup_rows(backup: Path, guild_id: int) -> dict[int, int]:
    """Return ``user_id -> xp`` of ``guild_id`` in the compressed SQLite backup ``backup``."""
    copy = backup.with_name(backup.name + ".check.db")
    copy.write_bytes(zstandard.ZstdDecompressor().decompressobj().decompress(backup.read_bytes()))
    connection = sqlite3.connect(copy)
    try:
        rows = connection.execute("SELECT user_id, xp FROM member_xp WHERE guild_id = ?", (guild_id,))
        return {int(user_id): int(xp) for user_id, xp in rows}
    finally:
        connection.close()
        copy.unlink()


def control_details(running: RunningBot) -> dict[str, object]:
    document = json.loads((running.folder / "data" / "bot.json").read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


async def post(url: str, token: str | None) -> int:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as session, session.post(url, headers=headers) as response:
        return response.status


async def get_text(url: str) -> str:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200, response.status
        return await response.text()


# -- the lock and the control routes ------------------------------------------------------------------------


async def test_a_second_bot_with_the_same_settings_refuses_to_start_naming_the_first(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as running:
        second = await spawn_bot(tmp_path, running.environment, name="second")
        code = await asyncio.wait_for(second.process.wait(), WAIT)

        assert code == ExitCode.FAILURE, second.stderr()
        assert f"running already (process {running.bot.process.pid} holds" in second.stderr()
        assert "Traceback" not in second.stderr()
        assert running.bot.process.returncode is None  # the first one runs on


async def test_the_control_details_are_private_and_go_with_the_bot(tmp_path: Path) -> None:
    async with running_bot(tmp_path) as running:
        details = running.folder / "data" / "bot.json"
        assert stat.S_IMODE(details.stat().st_mode) == 0o600
        assert control_details(running)["pid"] == running.bot.process.pid
        assert control_details(running)["control_url"] == running.http_url
        await running.bot.stop()
        assert not details.exists()


async def test_control_routes_need_the_control_token_not_the_http_token(tmp_path: Path) -> None:
    async with running_bot(tmp_path, extra={"HTTP_TOKEN": "the-http-token-0123456789"}) as running:
        url = f"{running.http_url}/control/flush"
        token = control_details(running)["token"]
        assert isinstance(token, str)

        assert await post(url, None) == 401
        assert await post(url, "the-http-token-0123456789") == 401
        assert await post(url, token) == 200


# -- flush before a backup, restore while running -------------------------------------------------------


async def test_backup_create_includes_xp_the_running_bot_still_held_in_memory(tmp_path: Path) -> None:
    async with running_bot(tmp_path, extra={"XP_FLUSH_INTERVAL": "60"}) as running:
        await configure(running, minimum=15, maximum=25, cooldown=0)
        members = running.demo.members[:3]
        for member in members:
            await chat(running, member)
        for member in members:
            await has_earned(running, member)
        assert not any(member.id in stored(running) for member in members), "flushed before the backup"

        code, output = await running.cli("backup", "create")

        assert code == ExitCode.OK, output
        backup_id = _ID.search(output)
        assert backup_id is not None, output
        in_backup = backup_rows(tmp_path / "backups" / f"{backup_id.group(0)}.db.zst", running.demo.guild.id)
        assert {member.id for member in members} <= set(in_backup)
        assert in_backup == {user_id: row.xp for user_id, row in stored(running).items()}


async def test_restore_refuses_while_the_bot_runs_and_stop_bot_stops_it_then_restores(tmp_path: Path) -> None:
    async with running_bot(tmp_path, extra={"XP_FLUSH_INTERVAL": "0.2"}) as running:
        code, output = await running.cli("backup", "create")
        assert code == ExitCode.OK, output
        found = _ID.search(output)
        assert found is not None, output
        backup_id = found.group(0)
        await configure(running, minimum=15, maximum=25, cooldown=0)
        member = running.demo.members[0]
        await chat(running, member)
        await eventually(lambda: member.id in stored(running), "the award in the database")

        code, output = await running.cli("backup", "restore", backup_id, "--yes")

        assert code == ExitCode.FAILURE, output
        assert f"the bot is running (process {running.bot.process.pid})" in output
        assert "--stop-bot" in output
        assert member.id in stored(running)  # nothing changed

        code, output = await running.cli("backup", "restore", backup_id, "--yes", "--stop-bot")

        assert code == ExitCode.OK, output
        assert await asyncio.wait_for(running.bot.process.wait(), WAIT) == 0
        assert member.id not in stored(running)
        assert "the database before it is backup" in output


# -- the bot's own schedule -------------------------------------------------------------------------------


def _in_seconds(seconds: int) -> str:
    return (datetime.datetime.now().astimezone() + datetime.timedelta(seconds=seconds)).strftime("%H:%M:%S")


async def test_the_bot_backs_up_at_backup_time_verifies_prunes_and_reports_it(tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    extra = {"BACKUP_TIME": _in_seconds(3), "BACKUP_DIR": str(backups)}
    async with running_bot(tmp_path, extra=extra) as running:
        verified = await eventually(lambda: sorted(backups.glob("*.verified")), "the scheduled backup")
        backup_id = verified[0].name.removesuffix(".verified")
        manifest = json.loads((backups / f"{backup_id}.json").read_text(encoding="utf-8"))
        assert manifest["reason"] == "scheduled"
        assert manifest["duration_seconds"] > 0

        async def status_shows_it() -> dict[str, object]:
            while True:
                document = json.loads(await get_text(f"{running.http_url}/status"))
                if document["backup"]["newest"]:
                    return dict(document["backup"])
                await asyncio.sleep(0.05)

        backup = await asyncio.wait_for(status_shows_it(), WAIT)
        newest = backup["newest"]
        assert isinstance(newest, dict)
        assert (newest["id"], newest["reason"], newest["verified"]) == (backup_id, "scheduled", True)
        assert backup["next_scheduled"] is not None  # tomorrow's
        metrics = await get_text(f"{running.http_url}/metrics")
        assert 'botops_backup_runs_total{result="ok"} 1.0' in metrics
        created = datetime.datetime.fromisoformat(manifest["created_at"]).timestamp()
        gauge = re.search(r"^botops_backup_last_success_timestamp_seconds (\S+)$", metrics, re.MULTILINE)
        assert gauge is not None, metrics
        assert float(gauge.group(1)) == pytest.approx(created)
        assert "pruning kept 1 and deleted 0" in running.logs()["botops.log"]


async def test_a_failing_scheduled_backup_is_logged_as_an_error_counted_and_the_bot_runs_on(
    tmp_path: Path,
) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the backup folder should be", encoding="utf-8")
    extra = {"BACKUP_TIME": _in_seconds(3), "BACKUP_DIR": str(blocked)}
    async with running_bot(tmp_path, extra=extra) as running:
        line = await eventually(
            lambda: next(
                (
                    x
                    for x in running.logs().get("botops.log", "").splitlines()
                    if "scheduled backup failed" in x
                ),
                None,
            ),
            "the failure in the log",
        )
        assert "ERROR" in line
        assert f"cannot use {blocked} as the backup folder" in line
        metrics = await get_text(f"{running.http_url}/metrics")
        assert 'botops_backup_runs_total{result="failed"} 1.0' in metrics
        reply = await running.slash("health", running.demo.admin)
        assert reply.embeds  # it still answers


async def test_a_bot_started_just_after_backup_time_makes_that_backup_at_once(tmp_path: Path) -> None:
    backups = tmp_path / "backups"
    just_passed = (datetime.datetime.now().astimezone() - datetime.timedelta(minutes=2)).strftime("%H:%M:%S")
    async with running_bot(
        tmp_path, extra={"BACKUP_TIME": just_passed, "BACKUP_DIR": str(backups)}
    ) as running:
        await eventually(lambda: sorted(backups.glob("*.verified")), "the backup BACKUP_TIME just missed")
        assert "BACKUP_TIME passed" in running.logs()["botops.log"]
