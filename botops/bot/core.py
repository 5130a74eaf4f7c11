"""The botops ``Bot``: a discord.py ``AutoShardedBot`` that receives its settings and database engine.

It loads the built-in features and the user's extensions in ``setup_hook``, syncs slash commands (to
the development guild in development, so they appear at once), sends every command error through the
funnel, and on close unloads its extensions first so each cog can flush what it buffers. It keeps its
own metrics (:attr:`Bot.metrics`): every finished command, gateway event, shard connection and REST
request is counted as it happens.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import json
import logging
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import discord
from discord import app_commands
from discord.ext import commands

from botops import __version__
from botops.bot.extensions import BUILTIN_EXTENSIONS, discover_extensions
from botops.bot.funnel import report_app_command_error, report_command_error
from botops.bot.i18n import DEFAULT_LANGUAGE, language_for_locale
from botops.db.guild_settings import GuildSettingsCache
from botops.db.writer import BatchedWriter
from botops.observability.metrics import (
    STARTED,
    BotMetrics,
    CommandKind,
    CommandOutcome,
    CommandUse,
    command_use,
)
from botops.observability.sentry import start_command_transaction
from botops.redaction import Redactor
from botops.version import git_commit

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from botops.backup.schedule import BackupSchedule
    from botops.settings import Settings

__all__ = ["WRITER_STOP_TIMEOUT", "Bot"]

#: Seconds each batched writer gets for its final flush when the bot closes.
WRITER_STOP_TIMEOUT = 10.0
#: The key of a command's extras that holds its Sentry transaction (None while Sentry is off).
TRACE = "botops_trace"
#: A command's outcome as the status of its Sentry transaction.
_TRACE_STATUS: dict[str, str] = {"success": "ok", "refused": "permission_denied", "error": "internal_error"}

log = logging.getLogger(__name__)
gateway_log = logging.getLogger("botops.gateway")


def build_intents(settings: Settings) -> discord.Intents:
    """Return the default intents plus the privileged ones the settings ask for."""
    intents = discord.Intents.default()
    for name in settings.privileged_intents:
        setattr(intents, name, True)
    return intents


class FunnelTree(app_commands.CommandTree["Bot"]):
    """The command tree whose errors all go through the funnel, and which times every command."""

    async def interaction_check(self, interaction: discord.Interaction[Bot], /) -> bool:
        interaction.extras[STARTED] = time.perf_counter()
        # An autocomplete request is not a command run: no transaction, and none would be finished.
        if (
            interaction.command is not None
            and interaction.type is discord.InteractionType.application_command
        ):
            interaction.extras[TRACE] = start_command_transaction(interaction.command.qualified_name)
        return True

    async def on_error(
        self, interaction: discord.Interaction[Bot], error: app_commands.AppCommandError
    ) -> None:
        await report_app_command_error(self.client, interaction, error)


class Bot(commands.AutoShardedBot):
    """The bot process's one client; features live in extensions (``botops/cogs``, ``cogs/``)."""

    def __init__(
        self,
        settings: Settings,
        engine: AsyncEngine,
        *,
        builtin_extensions: tuple[str, ...] = BUILTIN_EXTENSIONS,
    ) -> None:
        options: dict[str, Any] = {}
        if settings.shard_ids:
            options["shard_ids"] = settings.shard_ids
        self.started_at = time.monotonic()
        #: Prometheus metrics of this bot, in a registry of its own (served at /metrics).
        self.metrics = BotMetrics(self, version=__version__, commit=git_commit())
        super().__init__(
            command_prefix=commands.when_mentioned_or(settings.command_prefix),
            intents=build_intents(settings),
            shard_count=settings.shard_count,
            owner_ids=set(settings.owner_ids) or None,
            guild_ready_timeout=settings.guild_ready_timeout,
            heartbeat_timeout=settings.heartbeat_timeout,
            allowed_mentions=discord.AllowedMentions(
                everyone=False, roles=False, users=True, replied_user=True
            ),
            help_command=None,
            tree_cls=FunnelTree,
            http_trace=self.metrics.rest_trace(),
            **options,
        )
        self.settings = settings
        self.engine = engine
        self.guild_settings = GuildSettingsCache(engine, ttl=settings.guild_settings_ttl)
        self.builtin_extensions = builtin_extensions
        #: Extensions that failed to load at start-up: the error's first line, secrets redacted.
        self.failed_extensions: dict[str, str] = {}
        #: Every extension start-up loaded; readiness wants each of them loaded still.
        self.required_extensions: tuple[str, ...] = ()
        #: Set when close() begins: the bot is shutting down and no longer ready.
        self.closing = False
        self._synced_signature: str | None = None
        self._frozen = False
        #: The batched writers of the loaded features; flushed before a backup and on demand.
        self.writers: list[BatchedWriter[Any, Any]] = []
        #: State a feature keeps across reloads of its extension (its writer, caches), by extension name.
        self.extension_state: dict[str, object] = {}
        #: Synchronous per-message work of the loaded features (the levels cog's XP award), run by
        #: on_message in the one task discord.py starts per message: a listener costs a task of its own.
        self.message_hooks: list[Callable[[discord.Message], None]] = []
        #: Called with every finished command (the command statistics' writer); must not block.
        self.command_hooks: list[Callable[[CommandUse], None]] = []
        #: The daily backup and the newest backup known, while the process runs its schedule.
        self.backups: BackupSchedule | None = None

    # -- start-up -----------------------------------------------------------------------------------

    async def setup_hook(self) -> None:
        """Load every extension, then sync the slash commands."""
        for name in self.builtin_extensions:
            await self.load_extension(name)  # a broken built-in feature must stop the start
        redact = Redactor(self.settings.secret_values())
        for name in discover_extensions(self.settings.extensions_package):
            try:
                await self.load_extension(name)
            except commands.ExtensionError as error:
                cause = error.__cause__ or error
                first_line = f"{type(cause).__name__}: {cause}".splitlines()[0][:300]
                self.failed_extensions[name] = redact(first_line)  # /status and /health show it
                log.error("extension %s failed to load; the bot runs without it", name, exc_info=cause)
        self.required_extensions = tuple(sorted(self.extensions))
        log.info("extensions loaded: %s", ", ".join(self.required_extensions))
        await self.sync_commands()

    def _sync_target(self) -> discord.Object | None:
        guild_id = self.settings.discord_dev_guild_id
        if not self.settings.is_production and guild_id is not None:
            return discord.Object(guild_id)
        return None

    def command_signature(self) -> str:
        """Return a fingerprint of the slash commands as they would be synced now."""
        payload = [command.to_dict(self.tree) for command in self.tree.get_commands()]
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()

    async def sync_commands(self, *, only_if_changed: bool = False) -> bool:
        """Sync slash commands (to the development guild in development); return whether it synced."""
        signature = self.command_signature()
        if only_if_changed and signature == self._synced_signature:
            return False
        guild = self._sync_target()
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
        synced = await self.tree.sync(guild=guild)
        self._synced_signature = signature
        log.info("synced %d slash commands %s", len(synced), f"to guild {guild.id}" if guild else "globally")
        return True

    def add_writer(self, writer: BatchedWriter[Any, Any]) -> None:
        """Register a feature's batched writer: flushed before a backup and on close, and measured."""
        if writer not in self.writers:
            self.writers.append(writer)
            self.metrics.watch_writer(writer)

    async def flush_writers(self) -> int:
        """Write what every feature's batched writer holds (before a backup, say); return the rows written."""
        written = 0
        for writer in list(self.writers):
            written += await writer.flush()
        return written

    # -- shutdown -----------------------------------------------------------------------------------

    async def close(self) -> None:
        """Unload every extension (so cogs stop their loops), make the writers' final flush, disconnect."""
        self.closing = True
        for name in list(self.extensions):
            try:
                await self.unload_extension(name)
            except commands.ExtensionError:
                log.exception("extension %s failed to unload cleanly", name)
        for writer in list(self.writers):
            try:
                # Bounded, so a database that hangs cannot keep a SIGTERM from ending the process.
                await asyncio.wait_for(writer.stop(), timeout=WRITER_STOP_TIMEOUT)
            except Exception:
                log.exception(
                    "%s: the final flush failed; %d rows are not written", writer.name, writer.pending
                )
        self.writers.clear()
        self.metrics.close()
        if not self.shards:
            # Closed before it ever connected (a SIGTERM during start-up): AutoShardedClient.close() needs
            # the event queue connect() creates, so close the way an unsharded client does.
            await discord.Client.close(self)
            return
        await super().close()

    # -- messages -----------------------------------------------------------------------------------

    async def on_message(self, message: discord.Message, /) -> None:
        """Run the features' message hooks, then the text commands if the message starts like one.

        A hook runs for every message, so it must neither block nor await: one that has to wait (for
        the database, for Discord) starts a task of its own. A hook that raises is logged, and the
        other hooks and the commands still run.
        """
        for hook in self.message_hooks:
            try:
                hook(message)
            except Exception:
                log.exception("message hook %s failed on message %s", _name_of(hook), message.id)
        # Most messages are chat: a command context for each would cost more than the XP award. A text
        # command starts with the prefix or with a mention of the bot (when_mentioned_or), nothing else.
        if message.content.startswith((self.settings.command_prefix, "<@")):
            await self.process_commands(message)

    # -- errors and language ------------------------------------------------------------------------

    async def on_command_error(
        self, context: commands.Context[Any], exception: commands.CommandError
    ) -> None:
        """Send text-command errors through the funnel."""
        await report_command_error(self, context, exception)

    # -- what the metrics and the statistics see -----------------------------------------------------

    def finish_command(
        self,
        name: str,
        kind: CommandKind,
        outcome: CommandOutcome,
        guild_id: int | None,
        extras: dict[str, Any],
    ) -> None:
        """Record a command that ended (its arrival is in ``extras``) and end its Sentry transaction."""
        trace = extras.pop(TRACE, None)
        if trace is not None:
            trace.set_status(_TRACE_STATUS[outcome])
            trace.finish()
        self.record_command(command_use(name, kind, outcome, guild_id, extras))

    def record_command(self, use: CommandUse) -> None:
        """Count a finished command in the metrics and hand it to the command hooks (the statistics)."""
        self.metrics.record_command(use)
        for hook in self.command_hooks:
            try:
                hook(use)
            except Exception:
                log.exception("command hook %s failed on /%s", _name_of(hook), use.name)

    async def on_app_command_completion(
        self, interaction: discord.Interaction[Bot], command: app_commands.Command[Any, ..., Any]
    ) -> None:
        self.finish_command(
            command.qualified_name, "slash", "success", interaction.guild_id, interaction.extras
        )

    async def invoke(self, ctx: commands.Context[Any], /) -> None:
        """Run a text command, noting when it started; a success is counted here, a failure by the funnel."""
        extras: dict[str, Any] = {STARTED: time.perf_counter()}
        if ctx.command is not None:
            extras[TRACE] = start_command_transaction(ctx.command.qualified_name)
        ctx.botops_extras = extras  # type: ignore[attr-defined]
        await super().invoke(ctx)
        if ctx.command is not None and not ctx.command_failed:
            guild_id = ctx.guild.id if ctx.guild else None
            self.finish_command(ctx.command.qualified_name, "text", "success", guild_id, extras)

    def dispatch(self, event_name: str, /, *args: Any, **kwargs: Any) -> None:
        if event_name == "socket_event_type":  # once per gateway event: count its type
            self.metrics.events[args[0]] += 1
        super().dispatch(event_name, *args, **kwargs)

    async def on_error(self, event_method: str, /, *args: Any, **kwargs: Any) -> None:
        """Log an event handler's exception with its traceback and count it; the bot carries on."""
        self.metrics.record_error("event")
        # discord.py calls this inside its except block, so the exception is the one being handled.
        log.error("the handler of %s failed", event_method, exc_info=sys.exc_info())

    async def language_for(self, guild_id: int | None, locale: discord.Locale | str | None) -> str:
        """Return the language to answer in: the guild's setting, else the user's locale, else English."""
        if guild_id is not None:
            try:
                chosen = (await self.guild_settings.get(guild_id)).language
            except Exception:  # the reply must not fail because the database does
                log.warning("could not read the language of guild %s", guild_id, exc_info=True)
                chosen = None
            if chosen:
                return chosen
        return language_for_locale(str(locale)) if locale else DEFAULT_LANGUAGE

    # -- connection events, for the gateway log -------------------------------------------------------

    async def on_shard_ready(self, shard_id: int) -> None:
        self.metrics.gateway.identified(shard_id)

    async def on_ready(self) -> None:
        if not self._frozen:
            # What start-up built lives as long as the process: keep it out of every full collection,
            # which otherwise pauses the loop tens of milliseconds once the bot holds many objects.
            gc.freeze()
            self._frozen = True
        gateway_log.info(
            "ready as %s in %d guilds, %d shard(s)", self.user, len(self.guilds), self.shard_count or 1
        )

    async def on_shard_connect(self, shard_id: int) -> None:
        gateway_log.info("shard %s connected", shard_id)

    async def on_shard_disconnect(self, shard_id: int) -> None:
        self.metrics.gateway.disconnected(shard_id)
        gateway_log.warning("shard %s disconnected", shard_id)

    async def on_shard_resumed(self, shard_id: int) -> None:
        self.metrics.gateway.resumed(shard_id)
        gateway_log.info("shard %s resumed its session", shard_id)

    @property
    def uptime_seconds(self) -> float:
        return time.monotonic() - self.started_at


def _name_of(hook: Callable[..., object]) -> str:
    return str(getattr(hook, "__qualname__", hook))
