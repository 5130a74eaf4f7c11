"""``botops run`` as a process: configuration mistakes in one line and exit 2, and the offline demo.

Each run starts in an empty folder with no botops setting in its environment, so neither a developer's
``.env`` nor their shell decides the outcome.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from botops.cli import ExitCode
from botops.sandbox import DemoWorld, Sandbox, build_demo_world
from tests.bot.process import STOP_TIMEOUT, bot_environment, clean_environment, read_logs, spawn_bot
from tests.test_settings import fake_token

RUN = ["run"]
CONFIG_CHECK = ["config", "check"]


def botops(folder: Path, arguments: list[str], **settings: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m botops <arguments>`` in ``folder`` with only ``settings`` set; bounded."""
    return subprocess.run(  # noqa: S603 - our own interpreter and arguments
        [sys.executable, "-m", "botops", *arguments],
        cwd=folder,
        env={**clean_environment(), **settings},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def write_production_env(path: Path, mode: int) -> None:
    path.write_text(f"ENVIRONMENT=production\nDISCORD_TOKEN={fake_token()}\n", encoding="utf-8")
    path.chmod(mode)


@pytest.mark.parametrize("command", [RUN, CONFIG_CHECK], ids=["run", "config-check"])
@pytest.mark.parametrize(
    ("variable", "value"),
    [("LOG_MAX_BYTES", "ten"), ("DATABASE_URL", "mysql://x")],
    ids=["not-a-number", "unsupported-database"],
)
def test_a_malformed_setting_exits_2_naming_the_variable_without_a_traceback(
    tmp_path: Path, command: list[str], variable: str, value: str
) -> None:
    result = botops(tmp_path, command, **{variable: value})

    assert result.returncode == ExitCode.USAGE
    assert f"error: {variable}: " in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


@pytest.mark.parametrize("command", [RUN, CONFIG_CHECK], ids=["run", "config-check"])
def test_production_without_a_token_exits_2_naming_discord_token(tmp_path: Path, command: list[str]) -> None:
    result = botops(tmp_path, command, ENVIRONMENT="production")

    assert result.returncode == ExitCode.USAGE
    assert "error: DISCORD_TOKEN: " in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_run_in_production_refuses_an_env_file_others_can_read(tmp_path: Path) -> None:
    write_production_env(tmp_path / ".env", 0o644)

    result = botops(tmp_path, RUN)

    assert result.returncode == ExitCode.USAGE
    assert "chmod 600 .env" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_in_production_checks_the_env_file_it_was_given(tmp_path: Path) -> None:
    write_production_env(tmp_path / "bot.env", 0o644)

    result = botops(tmp_path, [*RUN, "--env-file", "bot.env"])

    assert result.returncode == ExitCode.USAGE
    assert "chmod 600 bot.env" in result.stderr


@pytest.mark.asyncio
async def test_run_without_a_token_answers_health_on_the_offline_sandbox_and_stops_on_sigint(
    tmp_path: Path,
) -> None:
    with (tmp_path / "stderr").open("wb") as stderr_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "botops",
            "run",
            cwd=tmp_path,
            env=clean_environment(),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=stderr_file,
        )
    assert process.stdout is not None
    seen: list[str] = []
    try:
        async with asyncio.timeout(30):
            while not any("Database: ✅ OK" in line for line in seen):
                line = await process.stdout.readline()
                assert line, f"stdout ended before /health answered:\n{''.join(seen)}"
                seen.append(line.decode("utf-8", "replace"))
        # Keep reading, so a full pipe never holds the process up while it stops.
        drain = asyncio.create_task(process.stdout.read())
        process.send_signal(signal.SIGINT)
        code = await asyncio.wait_for(process.wait(), STOP_TIMEOUT)
        await drain
    finally:
        if process.returncode is None:
            process.kill()
            with contextlib.suppress(ProcessLookupError):
                await process.wait()

    stderr = (tmp_path / "stderr").read_text(encoding="utf-8", errors="replace")
    assert code == 0, stderr
    assert any("used /health" in line for line in seen), "".join(seen)


async def run_until_exit(
    tmp_path: Path, sandbox: Sandbox | None, demo: DemoWorld, **extra: str
) -> tuple[int, str, str]:
    """Run ``botops run`` against ``sandbox`` (or none) until it exits; return code, stderr, botops.log."""
    log_dir = tmp_path / "logs"
    if sandbox is None:
        environment = {**clean_environment(), "LOG_DIR": str(log_dir), **extra}
    else:
        environment = bot_environment(sandbox, demo, tmp_path, log_dir, extra)
    bot = await spawn_bot(tmp_path, environment)
    try:
        code = await asyncio.wait_for(bot.process.wait(), 30)
    finally:
        if bot.process.returncode is None:
            bot.process.kill()
            await bot.process.wait()
    return code, bot.stderr(), read_logs(log_dir).get("botops.log", "")


@pytest.mark.asyncio
async def test_run_with_a_dev_guild_the_bot_is_not_in_exits_2_naming_the_setting_and_logs_it(
    tmp_path: Path,
) -> None:
    demo = build_demo_world()
    async with Sandbox(world=demo.world) as sandbox:
        code, stderr, log = await run_until_exit(tmp_path, sandbox, demo, DISCORD_DEV_GUILD_ID="4242")

    expected = "the bot is not in guild 4242 or lacks the applications.commands scope"
    assert code == ExitCode.USAGE, stderr
    assert f"error: {expected}: invite it with that scope or fix DISCORD_DEV_GUILD_ID" in stderr
    assert "Traceback" not in stderr
    assert expected in log


@pytest.mark.asyncio
async def test_run_when_discord_cannot_be_reached_exits_1_naming_where_and_logs_it(tmp_path: Path) -> None:
    # Port 1 refuses at once: nothing listens there.
    code, stderr, log = await run_until_exit(
        tmp_path,
        None,
        build_demo_world(),
        DISCORD_TOKEN=fake_token(),
        DISCORD_API_BASE="http://127.0.0.1:1/api/v10",
        DISCORD_GATEWAY_URL="ws://127.0.0.1:1/gateway",
        DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}",
    )

    assert code == ExitCode.FAILURE, stderr
    assert "error: cannot reach Discord at http://127.0.0.1:1/api/v10: " in stderr
    assert "check the network, or DISCORD_API_BASE if you use the sandbox" in stderr
    assert "Traceback" not in stderr
    assert "cannot reach Discord at http://127.0.0.1:1/api/v10" in log


@pytest.mark.asyncio
async def test_run_with_a_token_the_sandbox_refuses_says_to_use_the_one_botops_sandbox_printed(
    tmp_path: Path,
) -> None:
    demo = build_demo_world()
    async with Sandbox(world=demo.world) as sandbox:
        code, stderr, _ = await run_until_exit(tmp_path, sandbox, demo, DISCORD_TOKEN=fake_token())

    assert code == ExitCode.USAGE, stderr
    assert "use the token `botops sandbox` printed" in stderr
    assert "Traceback" not in stderr


@pytest.mark.asyncio
async def test_run_that_fails_unexpectedly_exits_1_with_one_line_and_the_traceback_in_the_log(
    tmp_path: Path,
) -> None:
    demo = build_demo_world()
    async with Sandbox(world=demo.world) as sandbox:
        # 503 is not one of the statuses discord.py retries: the command sync fails at once.
        sandbox.faults.server_error("PUT", r"/commands$", status=503)
        code, stderr, log = await run_until_exit(tmp_path, sandbox, demo)

    assert code == ExitCode.FAILURE, stderr
    error_lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    log_file = tmp_path / "logs" / "botops.log"
    assert error_lines == [f"error: the bot stopped on an unexpected error; its traceback is in {log_file}"]
    assert "Traceback" not in stderr
    assert "the bot stopped on an unexpected error" in log
    assert "Traceback" in log
    assert "DiscordServerError" in log
    assert sandbox.token not in log
