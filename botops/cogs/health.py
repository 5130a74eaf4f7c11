"""``/health``: the handbook's health check for administrators, as an ephemeral embed."""

from __future__ import annotations

import datetime
import logging
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from botops.bot.checks import is_administrator
from botops.bot.health import LATENCY_THRESHOLD_MS, HealthReport, collect_health
from botops.bot.i18n import text

if TYPE_CHECKING:
    from botops.bot.core import Bot

__all__ = ["Health", "setup"]

log = logging.getLogger(__name__)


def render_health(report: HealthReport, language: str) -> discord.Embed:
    """Return the embed that shows ``report`` in ``language``."""
    ok, high, failed = (text(k, language) for k in ("health.ok", "health.high", "health.error"))
    embed = discord.Embed(
        title=text("health.title", language),
        colour=discord.Colour.green() if report.healthy else discord.Colour.orange(),
        timestamp=datetime.datetime.now(datetime.UTC),
    )
    if not report.database_ok:
        database = f"❌ {failed}: {report.database_error}"
    elif not report.schema_current:
        database = f"⚠️ {text('health.behind', language)} ({report.schema_revision or '-'})"
    else:
        database = f"✅ {ok} ({report.database_ms:.1f} ms, {report.schema_revision})"
    embed.add_field(name=text("health.database", language), value=database, inline=False)
    if report.latency_ms is None:
        latency = f"⚠️ {high}: {text('health.not_connected', language)}"
    elif report.latency_ok:
        latency = f"✅ {report.latency_ms:.0f} ms"
    else:
        latency = f"⚠️ {report.latency_ms:.0f} ms {high} (> {LATENCY_THRESHOLD_MS:.0f} ms)"
    embed.add_field(name=text("health.latency", language), value=latency)
    extensions = f"{len(report.extensions)}: " + ", ".join(
        name.rsplit(".", 1)[-1] for name in report.extensions
    )
    if report.failed_extensions:
        names = ", ".join(report.failed_extensions)
        extensions += "\n❌ " + text(
            "health.failed", language, count=len(report.failed_extensions), names=names
        )
    embed.add_field(name=text("health.extensions", language), value=extensions[:1024], inline=False)
    embed.add_field(
        name=text("health.uptime", language),
        value=str(datetime.timedelta(seconds=int(report.uptime_seconds))),
    )
    embed.add_field(name=text("health.version", language), value=f"{report.version} ({report.commit})")
    embed.add_field(name=text("health.memory", language), value=f"{report.memory_bytes / 2**20:.1f} MiB")
    return embed


class Health(commands.Cog):
    """The /health command."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    @app_commands.command(name="health", description="Check the bot's health (administrators)")
    @app_commands.default_permissions(administrator=True)
    @app_commands.guild_only()
    @app_commands.check(is_administrator)
    async def health(self, interaction: discord.Interaction[Bot]) -> None:
        """Show database, latency, extensions, uptime, version and memory."""
        report = await collect_health(self.bot)
        language = await self.bot.language_for(interaction.guild_id, interaction.locale)
        await interaction.response.send_message(embed=render_health(report, language), ephemeral=True)


async def setup(bot: Bot) -> None:
    await bot.add_cog(Health(bot))
