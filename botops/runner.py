"""Run the bot process from settings to exit code: checks, redirect, schema, bot, signals, cleanup.

``SIGTERM`` and ``SIGINT`` close the bot cleanly (extensions unloaded so they flush, the gateway closed,
the database disposed) and the process exits 0, which is what systemd and supervisors expect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import discord

from botops.backup.schedule import schedule_backups
from botops.bot import Bot
from botops.db.checkpoint import checkpoint_sqlite
from botops.db.engine import create_engine
from botops.db.migrate import ensure_schema
from botops.endpoints import redirect_discord, restore_discord
from botops.errors import ConfigurationError, DevGuildUnavailable, DiscordUnreachable
from botops.instance import claim_instance, new_control_token
from botops.observability.sentry import init_sentry
from botops.observability.server import serve_observability
from botops.settings import ENV_FILE, Settings, check_env_file_permissions
from botops.startguard import start_guarded

__all__ = ["run_bot_until_stopped"]

log = logging.getLogger(__name__)

#: Called with the running bot once it is started, e.g. the offline demo's conversation.
Companion = Callable[[Bot], Awaitable[None]]


async def run_bot_until_stopped(
    settings: Settings, *, companion: Companion | None = None, env_file: Path = ENV_FILE
) -> None:
    """Run the bot until a signal or ``bot.close()``; raise ``BotopsError`` for what a user must fix.

    ``env_file`` is the file the settings were read from; production refuses it if others can read it.

    Raises:
        ConfigurationError: the token was refused, privileged intents are not enabled, the .env file is
            readable by others in production, the endpoints are redirected in production, or the
            HTTP server's port is taken.
        DevGuildUnavailable: the commands cannot be synced to DISCORD_DEV_GUILD_ID.
        DiscordUnreachable: no connection to Discord (or the sandbox) could be opened.
        SchemaBehind: the schema is behind the code and may not be migrated automatically.
        BotAlreadyRunning: a bot with these settings holds STATE_DIR's lock.
        SessionStartReserveReached: Discord allows fewer session starts than SESSION_START_RESERVE.
    """
    if settings.is_production:
        check_env_file_permissions(env_file)
    if settings.discord_token is None:
        raise ConfigurationError(
            "DISCORD_TOKEN", "DISCORD_TOKEN is not set: put it in .env (see .env.example)"
        )
    redirect_discord(
        settings.discord_api_base, settings.discord_gateway_url, environment=settings.environment
    )
    with claim_instance(settings) as claim:
        await _run_claimed(settings, settings.discord_token.get_secret_value(), claim.publish, companion)


async def _run_claimed(
    settings: Settings, token: str, publish: Callable[[str | None, str], None], companion: Companion | None
) -> None:
    sentry = init_sentry(settings)
    engine = create_engine(settings)
    try:
        await ensure_schema(engine, settings)
        bot = Bot(settings, engine)
        control_token = new_control_token()
        async with (
            # Entered first, left last: it checkpoints once more after the bot's final flush.
            checkpoint_sqlite(settings.database_url.get_secret_value()),
            bot,
            serve_observability(bot, settings, control_token=control_token) as server,
            schedule_backups(bot, settings),
        ):
            publish(server.url if server is not None else None, control_token)
            _close_on_signals(bot)
            helper = asyncio.create_task(_after_ready(bot, companion), name="botops-companion")
            try:
                # bot.start(token), after backing off from failed starts and checking the session starts
                await start_guarded(
                    bot, token, state_dir=settings.state_dir, reserve=settings.session_start_reserve
                )
            except discord.LoginFailure as error:
                raise _token_refused(settings) from error
            except discord.PrivilegedIntentsRequired as error:
                raise ConfigurationError(
                    "PRIVILEGED_INTENTS",
                    f"Discord refused the privileged intents {', '.join(settings.privileged_intents)}: "
                    "enable them on the developer portal's Bot page, or remove them from PRIVILEGED_INTENTS",
                ) from error
            except discord.HTTPException as error:
                guild_id = _refused_dev_guild(error, settings)
                if guild_id is None:
                    raise
                raise DevGuildUnavailable(guild_id) from error
            except aiohttp.ClientConnectionError as error:
                where = settings.discord_api_base or "discord.com"
                raise DiscordUnreachable(where, str(error) or type(error).__name__) from error
            finally:
                helper.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await helper
    finally:
        await engine.dispose()
        restore_discord()
        log.info("the bot stopped")
        if sentry is not None:
            await asyncio.to_thread(sentry.close)  # sends what is queued; blocks up to its timeout


def _token_refused(settings: Settings) -> ConfigurationError:
    if settings.uses_sandbox:
        # The sandbox makes a new token each time it starts, so an old .env is the usual cause.
        return ConfigurationError(
            "DISCORD_TOKEN",
            f"the sandbox at {settings.discord_api_base} refused DISCORD_TOKEN: use the token "
            "`botops sandbox` printed when it started (it makes a new one each time)",
        )
    return ConfigurationError(
        "DISCORD_TOKEN",
        "Discord refused DISCORD_TOKEN: copy it again from the developer portal's Bot page into .env",
    )


#: Discord's codes for a guild command sync the bot may not do: Unknown Guild, Missing Access.
_DEV_GUILD_REFUSALS = frozenset({10004, 50001})


def _refused_dev_guild(error: discord.HTTPException, settings: Settings) -> int | None:
    """Return DISCORD_DEV_GUILD_ID if ``error`` is Discord refusing the command sync to it."""
    guild_id = settings.discord_dev_guild_id
    if guild_id is None or settings.is_production or error.code not in _DEV_GUILD_REFUSALS:
        return None
    # Only the sync's own route: a 50001 from anywhere else is not about this setting.
    url = getattr(error.response, "url", None)
    if url is not None and f"/guilds/{guild_id}/commands" not in str(url):
        return None
    return guild_id


async def _after_ready(bot: Bot, companion: Companion | None) -> None:
    if companion is None:
        return
    await bot.wait_until_ready()
    try:
        await companion(bot)
    except Exception:  # the companion is a convenience; it never takes the bot down
        log.exception("the companion task failed")


def _close_on_signals(bot: Bot) -> None:
    loop = asyncio.get_running_loop()
    closing: list[asyncio.Task[None]] = []

    def close(received: signal.Signals) -> None:
        if closing:
            return
        log.info("%s received: closing the bot", received.name)
        closing.append(asyncio.create_task(bot.close(), name="botops-close"))

    for received in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):  # Windows has no loop signal handlers
            loop.add_signal_handler(received, close, received)
