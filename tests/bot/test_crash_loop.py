"""Crash-loop protection: back-off after failed starts, the session-start reserve, and the supervisor files.

The end-to-end tests run the real bot process against a sandbox; a crash is a real SIGKILL, and the
session start limit is the sandbox's. Starts that failed long ago are written with the guard's own
:class:`~botops.startguard.StartLog`, so a test need not crash the bot eight times to see a long back-off.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import signal
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar, get_args

import discord
import pytest
from discord.ext import commands
from hypothesis import given
from hypothesis import strategies as st

from botops.cli import ExitCode
from botops.endpoints import redirect_discord, restore_discord
from botops.errors import SessionStartReserveReached
from botops.sandbox import Sandbox, build_demo_world
from botops.startguard import (
    MAX_BACKOFF,
    STARTS_NAME,
    Outcome,
    StartLog,
    StartRecord,
    backoff_seconds,
    failed_in_a_row,
    start_guarded,
)
from tests.bot.process import READY_LINE, BotProcess, bot_environment, running_bot, spawn_bot

T = TypeVar("T")

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
#: Generous bound on a bot process's start or refusal on a busy machine.
WAIT = 30.0
#: The exit codes on which no restart helps, which both supervisor files must leave alone.
NO_RESTART = {ExitCode.USAGE, ExitCode.SESSION_START_RESERVE}


async def eventually(check: Callable[[], T | None], what: str, timeout: float = WAIT) -> T:
    """Return ``check()`` once it is truthy; fail naming ``what`` after ``timeout``."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                result = check()
                if result:
                    return result
                await asyncio.sleep(0.05)  # log files and the starts file offer nothing to await
    except TimeoutError:
        pytest.fail(f"timed out after {timeout:g} s waiting for {what}")


def write_failed_starts(state_dir: Path, count: int) -> None:
    """Record ``count`` failed starts in the last minutes, as crashed bots leave them."""
    state_dir.mkdir(parents=True, exist_ok=True)
    starts = StartLog(state_dir)
    now = datetime.now(UTC)
    starts.records = [StartRecord(now - timedelta(minutes=count - i), "failed", 1) for i in range(count)]
    starts.save()


def main_log(log_dir: Path) -> str:
    path = log_dir / "botops.log"
    return path.read_text(encoding="utf-8") if path.exists() else ""


@contextlib.asynccontextmanager
async def sandboxed_bot(
    folder: Path, extra: dict[str, str], setup: Callable[[Sandbox], object] | None = None
) -> AsyncIterator[tuple[Sandbox, BotProcess]]:
    """Start a bot in ``folder`` against a new sandbox, after ``setup(sandbox)``; kill it at the end."""
    demo = build_demo_world()
    async with Sandbox(world=demo.world) as sandbox:
        if setup is not None:
            setup(sandbox)
        bot = await spawn_bot(folder, bot_environment(sandbox, demo, folder, folder / "logs", extra))
        try:
            yield sandbox, bot
        finally:
            if bot.process.returncode is None:
                bot.process.kill()
                await bot.process.wait()


# -- the session-start reserve ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_below_the_reserve_the_bot_exits_75_in_one_line_naming_the_reserve_and_never_identifies(
    tmp_path: Path,
) -> None:
    def five_left(sandbox: Sandbox) -> None:
        sandbox.faults.session_start_limit(5, reset_after=3600)

    async with sandboxed_bot(tmp_path, {"SESSION_START_RESERVE": "5"}, five_left) as (sandbox, bot):
        code = await asyncio.wait_for(bot.process.wait(), WAIT)

        errors = [line for line in bot.stderr().splitlines() if line.startswith("error:")]
        assert code == ExitCode.SESSION_START_RESERVE, bot.stderr()
        assert len(errors) == 1, bot.stderr()
        assert errors[0].startswith("error: Discord allows 5 more session starts until "), errors
        assert "botops keeps SESSION_START_RESERVE=5 in reserve: start again after " in errors[0]
        assert errors[0].endswith("or lower SESSION_START_RESERVE")
        assert "Traceback" not in bot.stderr()
        assert sandbox.gateway.identifies == 0
        assert "the bot stopped: Discord allows 5 more session starts" in main_log(tmp_path / "logs")


@pytest.mark.asyncio
async def test_with_one_start_above_the_reserve_the_bot_starts(tmp_path: Path) -> None:
    async with running_bot(tmp_path, extra={"SESSION_START_RESERVE": "999"}) as running:
        assert running.sandbox.gateway.identifies == 1
        assert "Discord allows 1000 more session starts (of 1000) until " in running.logs()["botops.log"]


@pytest.mark.asyncio
async def test_a_refused_start_does_not_count_as_a_failed_one(tmp_path: Path) -> None:
    async with sandboxed_bot(tmp_path, {"SESSION_START_RESERVE": "1000"}) as (_, refused):
        assert await asyncio.wait_for(refused.process.wait(), WAIT) == ExitCode.SESSION_START_RESERVE

    async with running_bot(tmp_path, log_dir=tmp_path / "logs-2") as running:
        log = running.logs()["botops.log"]
        assert "0 identifies in the last 24 h; 0 failed starts in a row before this one" in log
        assert "backing off" not in log


# -- back-off after failed starts ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_start_after_a_crash_backs_off_before_it_identifies(tmp_path: Path) -> None:
    async with sandboxed_bot(tmp_path, {}) as (sandbox, crashing):
        await sandbox.wait_until_ready(timeout=WAIT)
        crashing.process.send_signal(signal.SIGKILL)
        await crashing.process.wait()

    async with running_bot(tmp_path, log_dir=tmp_path / "logs-2") as running:
        log = running.logs()["botops.log"]
        assert "1 identify in the last 24 h; 1 failed start in a row before this one" in log
        assert "backing off 2 s after 1 failed start" in log
        assert log.index("backing off") < log.index("Discord allows") < log.index(READY_LINE)


@pytest.mark.asyncio
async def test_a_run_that_reached_ready_ends_the_streak_of_failed_starts(tmp_path: Path) -> None:
    write_failed_starts(tmp_path / "data", 1)
    async with running_bot(tmp_path, log_dir=tmp_path / "logs-1") as first:
        assert "backing off 2 s after 1 failed start" in first.logs()["botops.log"]

    async with running_bot(tmp_path, log_dir=tmp_path / "logs-2") as second:
        log = second.logs()["botops.log"]
        assert "2 identifies in the last 24 h; 0 failed starts in a row before this one" in log
        assert "backing off" not in log


@pytest.mark.asyncio
async def test_sigterm_while_backing_off_exits_0_without_logging_in(tmp_path: Path) -> None:
    write_failed_starts(tmp_path / "data", 8)
    async with sandboxed_bot(tmp_path, {}) as (sandbox, bot):
        await eventually(
            lambda: "backing off 256 s after 8 failed starts" in main_log(tmp_path / "logs"), "the back-off"
        )

        assert await bot.stop() == 0, bot.stderr()
        assert sandbox.gateway.identifies == 0
        assert not [r for r in sandbox.requests if r.path.startswith("/users/@me")], "it logged in"


@pytest.mark.asyncio
async def test_a_run_ready_for_the_healthy_time_counts_as_good_while_it_runs(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    bot = commands.AutoShardedBot(command_prefix="!", intents=discord.Intents.default())
    redirect_discord(sandbox.api_base, sandbox.gateway_url, environment="development")
    try:
        async with bot:
            run = asyncio.create_task(
                start_guarded(bot, sandbox.token, state_dir=tmp_path, reserve=0, healthy_after=0.1)
            )
            good = await eventually(
                lambda: [r for r in StartLog(tmp_path).records if r.outcome == "good"], "a good start"
            )
            await bot.close()
            await asyncio.wait_for(run, WAIT)
    finally:
        restore_discord()

    assert [(r.outcome, r.identifies) for r in good] == [("good", 1)]
    assert [(r.outcome, r.identifies) for r in StartLog(tmp_path).records] == [("good", 1)]


# -- the starts file ----------------------------------------------------------------------------------------


def test_backoff_doubles_from_2_seconds_and_stops_at_300() -> None:
    assert [backoff_seconds(n) for n in range(11)] == [0, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert backoff_seconds(10_000) == MAX_BACKOFF


outcomes = st.sampled_from(get_args(Outcome))


@given(st.lists(outcomes, max_size=30))
def test_a_good_start_ends_the_streak_and_a_failed_one_extends_it(earlier: list[Outcome]) -> None:
    now = datetime.now(UTC)
    records = [StartRecord(now, outcome) for outcome in earlier]
    before = failed_in_a_row(records)

    assert failed_in_a_row([*records, StartRecord(now, "good")]) == 0
    assert failed_in_a_row([*records, StartRecord(now, "failed")]) == before + 1
    assert failed_in_a_row([*records, StartRecord(now, "stopped")]) == before
    assert failed_in_a_row([*records, StartRecord(now, "refused")]) == before


def test_a_start_whose_process_died_reads_as_failed(tmp_path: Path) -> None:
    StartLog(tmp_path).begin()

    assert [r.outcome for r in StartLog(tmp_path).records] == ["failed"]


def test_starts_older_than_a_day_are_forgotten(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    starts = StartLog(tmp_path)
    starts.records = [
        StartRecord(now - timedelta(hours=25), "failed", 3),
        StartRecord(now - timedelta(hours=23), "good", 2),
    ]
    starts.save()

    again = StartLog(tmp_path)

    assert [r.identifies for r in again.records] == [2]
    assert again.identifies_since(now - timedelta(hours=24)) == 2


def test_a_damaged_starts_file_is_logged_and_counting_starts_afresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / STARTS_NAME).write_text(
        json.dumps({"starts": [{"started_at": "yesterday"}]}), encoding="utf-8"
    )

    assert StartLog(tmp_path).records == []
    assert f"{tmp_path / STARTS_NAME} cannot be read" in caplog.text


def test_the_starts_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    StartLog(tmp_path).begin()

    assert stat.S_IMODE((tmp_path / STARTS_NAME).stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("shards", "needs"), [(1, ""), (2, " and this start needs 2")], ids=["one-shard", "two-shards"]
)
def test_the_refusal_says_how_many_starts_are_left_until_when_and_what_to_change(
    shards: int, needs: str
) -> None:
    error = SessionStartReserveReached(40, datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC), 50, shards)

    assert str(error) == (
        f"Discord allows 40 more session starts until 2030-01-02 03:04:05 UTC{needs}; botops keeps "
        "SESSION_START_RESERVE=50 in reserve: start again after 2030-01-02 03:04:05 UTC, or lower "
        "SESSION_START_RESERVE"
    )


# -- the supervisor files -----------------------------------------------------------------------------------


def unit_settings(path: Path) -> dict[str, str]:
    """Return the ``Key=value`` lines of a systemd unit (the last one of a key wins, as in systemd)."""
    settings = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            settings[key.strip()] = value.strip()
    return settings


def test_systemd_restarts_on_failure_but_not_on_the_exit_codes_no_restart_helps() -> None:
    unit = unit_settings(DEPLOY / "botops.service")

    assert unit["Restart"] == "on-failure"
    assert {int(code) for code in unit["RestartPreventExitStatus"].split()} == NO_RESTART
    assert (unit["KillSignal"], unit["UMask"]) == ("SIGTERM", "0077")
    assert int(unit["StartLimitBurst"]) > 0
    assert int(unit["StartLimitIntervalSec"]) > 0


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_finds_nothing_wrong_with_the_unit(tmp_path: Path) -> None:
    # The unit names /opt/botops, which is not here: point ExecStart at this environment's botops.
    botops = Path(sys.executable).with_name("botops")
    text = (DEPLOY / "botops.service").read_text(encoding="utf-8")
    unit = tmp_path / "botops.service"
    unit.write_text(text.replace("/opt/botops/.venv/bin/botops", str(botops)), encoding="utf-8")

    result = subprocess.run(  # noqa: S603 - a fixed tool on our own file
        ["systemd-analyze", "verify", str(unit)],  # noqa: S607
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_supervisord_reads_its_config_and_restarts_only_on_unexpected_exit_codes(tmp_path: Path) -> None:
    from supervisor.datatypes import RestartWhenExitUnexpected
    from supervisor.options import ClientOptions, ServerOptions

    # As in a checkout: the file in deploy/, the folders it names next to it.
    (tmp_path / "deploy").mkdir()
    (tmp_path / "logs").mkdir()
    (tmp_path / "data").mkdir()
    config = tmp_path / "deploy" / "supervisord.conf"
    shutil.copy(DEPLOY / "supervisord.conf", config)
    server = ServerOptions()
    server.realize(args=["-c", str(config)])
    client = ClientOptions()
    client.realize(args=["-c", str(config)])

    programs = {p.name: p for group in server.process_group_configs for p in group.process_configs}
    bot = programs["botops"]
    assert Path(bot.command.split()[0]).resolve() == tmp_path / ".venv" / "bin" / "botops"
    assert Path(bot.directory).resolve() == tmp_path
    assert bot.autorestart is RestartWhenExitUnexpected
    assert set(bot.exitcodes) == {ExitCode.OK, *NO_RESTART}
    assert (bot.stopsignal, bot.stopwaitsecs) == (signal.SIGTERM, 30)
    assert server.umask == 0o077
    socket = tmp_path / "data" / "supervisor.sock"
    assert [Path(c["file"]) for c in server.server_configs] == [socket]
    assert client.serverurl == f"unix://{socket}"  # supervisorctl drives this supervisord
