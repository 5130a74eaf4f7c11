"""``botops run``: the bot, on Discord with a token, or on the built-in sandbox without one."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Annotated

import typer

from botops.cli._common import EnvFile, exit_with, load_settings_or_exit, user_errors
from botops.cli.codes import ExitCode
from botops.errors import BotopsError, SessionStartReserveReached
from botops.logs import FILES_ONLY, log_path, setup_logging
from botops.settings import ENV_FILE, Settings

__all__ = ["run"]

log = logging.getLogger(__name__)


def run(
    env_file: EnvFile = ENV_FILE,
    demo: Annotated[
        bool,
        typer.Option("--demo/--no-demo", help="Without a token: have demo members chat and call /health."),
    ] = True,
) -> None:
    """Run the bot until Ctrl-C or SIGTERM; without DISCORD_TOKEN in development, on the offline sandbox."""
    settings = load_settings_or_exit(env_file)
    with user_errors(), setup_logging(settings), contextlib.suppress(KeyboardInterrupt):
        try:
            asyncio.run(_run(settings, demo=demo, env_file=env_file))
        except SessionStartReserveReached as error:
            # Its own exit code, on which supervisors do not restart: no restart helps before Discord's reset.
            log.error("the bot stopped: %s", error, extra=FILES_ONLY)
            exit_with(f"error: {error}", ExitCode.SESSION_START_RESERVE)
        except BotopsError as error:
            # user_errors prints it on the console; the log must say why the bot stopped, too.
            log.error("the bot stopped: %s", error, extra=FILES_ONLY)
            raise
        except Exception:
            # A bug, not a user's mistake: the traceback goes to the log (redacted), one line to the user.
            log.exception("the bot stopped on an unexpected error", extra=FILES_ONLY)
            exit_with(
                "error: the bot stopped on an unexpected error; its traceback is in "
                f"{log_path(settings.log_dir)}",
                ExitCode.FAILURE,
            )


def _offline(settings: Settings) -> bool:
    return settings.discord_token is None and not settings.is_production and not settings.uses_sandbox


async def _run(settings: Settings, *, demo: bool, env_file: Path) -> None:
    # Imported here, as the sandbox below: every other command (`botops health` every 30 s in a
    # HEALTHCHECK, say) starts without loading the bot, discord.py, Sentry and the metrics.
    from botops.runner import run_bot_until_stopped

    if not _offline(settings):
        await run_bot_until_stopped(settings, env_file=env_file)
        return
    # Imported here: a bot with a token never pays for starting up the sandbox's server code.
    from botops.cli.offline import OfflineDemo, offline_settings
    from botops.sandbox import Sandbox, build_demo_world

    world = build_demo_world()
    async with Sandbox(world=world.world) as sandbox:
        companion = OfflineDemo(sandbox, world, chat=demo)
        await run_bot_until_stopped(offline_settings(settings, sandbox, world), companion=companion)
