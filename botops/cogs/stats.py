"""Command statistics: every finished command counted per hour in the database, and ``/stats`` to read them.

The bot hands each finished command (slash or text; success, refused or error) to its command hooks;
this cog's hook (:meth:`Stats.record`) merges it into a batched writer keyed by hour, guild, command,
kind and outcome, which writes the sums every :data:`FLUSH_INTERVAL` seconds (sooner once
:data:`MAX_PENDING` keys wait), before a backup and on shutdown, as RoboDanny's stats cog does. No user
id is kept, and a command costs one row an hour per guild, however often it runs.

The writer lives in ``bot.extension_state``, so a reload neither loses pending uses nor starts a second
writer; the hook is added in ``cog_load`` and removed in ``cog_unload``, so a reload never counts a
command twice. ``/stats`` flushes the writer first, so it shows every command finished before it.
"""

from __future__ import annotations

import datetime
import logging
from typing import TYPE_CHECKING, Final, cast

import discord
from discord import app_commands
from discord.ext import commands

from botops.bot.checks import is_administrator
from botops.bot.funnel import OwnerOnly
from botops.bot.health import HealthReport, collect_health
from botops.bot.i18n import text
from botops.db.stats import (
    DIRECT_MESSAGES,
    UsageDelta,
    UsageKey,
    UsageSummary,
    UsageWindow,
    hour_of,
    merge_usage,
    sparkline,
    usage_summary,
    write_command_usage,
)
from botops.db.writer import BatchedWriter

if TYPE_CHECKING:
    from botops.bot.core import Bot
    from botops.observability.metrics import CommandUse

__all__ = ["FLUSH_INTERVAL", "MAX_PENDING", "Stats", "render_stats", "setup"]

log = logging.getLogger(__name__)

#: Seconds between two flushes of the statistics. Fixed rather than a setting: commands are rarer than
#: messages, and a crash losing ten seconds of counts costs nothing anyone acts on.
FLUSH_INTERVAL: Final = 10.0
#: Keys (hour, guild, command, kind, outcome) that make the writer flush before the interval is up.
MAX_PENDING: Final = 1000
#: Longest command name shown in a top list, so ten lines fit in an embed field.
_SHOWN_NAME_LENGTH: Final = 40

_STATE_KEY: Final = "botops.cogs.stats"
_SCOPE_GUILD: Final = "guild"
_SCOPE_BOT: Final = "bot"


def _shown(name: str) -> str:
    return name if len(name) <= _SHOWN_NAME_LENGTH else name[: _SHOWN_NAME_LENGTH - 1] + "…"


def _top_lines(window: UsageWindow, language: str) -> str:
    if not window.top:
        return text("stats.none", language)
    return "\n".join(
        f"**{position}.** `{_shown(command)}`: {uses}"
        for position, (command, uses) in enumerate(window.top, 1)
    )


def render_stats(summary: UsageSummary, report: HealthReport, language: str) -> discord.Embed:
    """Return the embed that shows ``summary`` and the process figures of ``report`` in ``language``."""
    scope = "stats.scope.bot" if summary.guild_id is None else "stats.scope.guild"
    embed = discord.Embed(
        title=text("stats.title", language),
        description=text(scope, language),
        colour=discord.Colour.blurple(),
        timestamp=datetime.datetime.now(datetime.UTC),
    )
    for window in summary.windows:
        embed.add_field(
            name=text(f"stats.window.{window.name}", language, uses=window.totals.uses),
            value=_top_lines(window, language),
            inline=False,
        )
    embed.add_field(
        name=text("stats.errors", language),
        value=text(
            "stats.errors.value",
            language,
            sparkline=sparkline(summary.errors_per_hour),
            total=sum(summary.errors_per_hour),
            since=summary.errors_since.strftime("%Y-%m-%d %H:%M"),
        ),
        inline=False,
    )
    embed.add_field(
        name=text("health.uptime", language),
        value=str(datetime.timedelta(seconds=int(report.uptime_seconds))),
    )
    size = report.database_size_bytes
    embed.add_field(
        name=text("stats.database_size", language),
        value=f"{size / 2**20:.1f} MiB" if size is not None else text("health.error", language),
    )
    embed.add_field(name=text("health.memory", language), value=f"{report.memory_bytes / 2**20:.1f} MiB")
    latency = report.latency_ms
    embed.add_field(
        name=text("health.latency", language),
        value=f"{latency:.0f} ms" if latency is not None else text("health.not_connected", language),
    )
    return embed


class Stats(commands.Cog):
    """Command statistics: the command hook that counts, and /stats."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        # Kept by the bot, not the cog: a reload re-creates this class, while the writer lives on.
        writer = cast("BatchedWriter[UsageKey, UsageDelta] | None", bot.extension_state.get(_STATE_KEY))
        if writer is None:
            writer = BatchedWriter(
                bot.engine,
                write_command_usage,
                merge=merge_usage,
                interval=FLUSH_INTERVAL,
                max_pending=MAX_PENDING,
                name="command_stats",
            )
            bot.extension_state[_STATE_KEY] = writer
        self.writer = writer

    async def cog_load(self) -> None:
        await self.writer.start()  # a no-op when it runs on from before a reload
        self.bot.add_writer(self.writer)
        self.bot.command_hooks.append(self.record)

    async def cog_unload(self) -> None:
        if self.record in self.bot.command_hooks:
            self.bot.command_hooks.remove(self.record)
        # The writer belongs to the bot and runs on: a failed flush stays pending and is retried, and
        # Bot.close() makes the final flush.
        try:
            await self.writer.flush()
        except Exception:
            log.warning(
                "command statistics flush at unload failed; %d rows stay pending and are retried",
                self.writer.pending,
                exc_info=True,
            )

    def record(self, use: CommandUse) -> None:
        """Count a finished command in its hour's row (the bot's command hook; never awaits)."""
        guild_id = DIRECT_MESSAGES if use.guild_id is None else use.guild_id
        key: UsageKey = (hour_of(use.at), guild_id, use.name, use.kind, use.outcome)
        self.writer.add(key, UsageDelta(1, use.seconds))

    @app_commands.command(
        name="stats", description="Command statistics and the bot's vital signs (administrators)"
    )
    @app_commands.describe(scope="This server (default), or the whole bot (the bot's owner only)")
    @app_commands.choices(
        scope=[
            app_commands.Choice(name="this server", value=_SCOPE_GUILD),
            app_commands.Choice(name="the whole bot", value=_SCOPE_BOT),
        ]
    )
    @app_commands.default_permissions(administrator=True)
    @app_commands.guild_only()
    @app_commands.check(is_administrator)
    async def stats(self, interaction: discord.Interaction[Bot], scope: str = _SCOPE_GUILD) -> None:
        """Show uptime, the top commands of 24 h, 7 days and all time, errors per hour, size, memory, latency.

        Raises:
            OwnerOnly: the whole bot's statistics were asked for by someone who is not its owner.
        """
        if scope == _SCOPE_BOT and not await self.bot.is_owner(interaction.user):
            raise OwnerOnly()
        # A flush, seven queries and the health checks can take longer than Discord's 3 s to answer.
        await interaction.response.defer(ephemeral=True, thinking=True)
        try:
            await self.writer.flush()  # the commands that just finished belong in the answer
        except Exception:
            log.warning(
                "command statistics flush before /stats failed; showing what is stored", exc_info=True
            )
        guild_id = None if scope == _SCOPE_BOT else interaction.guild_id
        now = datetime.datetime.now(datetime.UTC)
        summary = await usage_summary(self.bot.engine, now=now, guild_id=guild_id)
        report = await collect_health(self.bot)
        language = await self.bot.language_for(interaction.guild_id, interaction.locale)
        await interaction.followup.send(embed=render_stats(summary, report, language), ephemeral=True)


async def setup(bot: Bot) -> None:
    await bot.add_cog(Stats(bot))
