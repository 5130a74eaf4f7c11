"""Owner tools: hot reload of extensions with ``/reload`` and ``!reload``.

A reload goes through ``bot.reload_extension``, which is atomic: if the new code fails to import or to
set up, discord.py puts the previous module back, so the running feature keeps working. When the set
of slash commands changed, they are synced again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from botops.bot.funnel import OwnerOnly
from botops.bot.i18n import text
from botops.redaction import Redactor

if TYPE_CHECKING:
    from botops.bot.core import Bot

__all__ = ["Admin", "ReloadOutcome", "reload_extensions", "setup"]

log = logging.getLogger(__name__)


@dataclass
class ReloadOutcome:
    """What a reload did: which extensions reloaded, which failed and why, and whether commands synced."""

    reloaded: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    unknown: str | None = None
    synced: bool = False

    def describe(self, language: str, loaded: list[str]) -> str:
        """Return the reply: one line per fact."""
        if self.unknown is not None:
            return text("reload.not_loaded", language, name=self.unknown, loaded=", ".join(loaded))
        lines = []
        if self.reloaded:
            lines.append(text("reload.done", language, names=", ".join(self.reloaded)))
        lines += [
            text("reload.failed", language, name=name, cause=cause) for name, cause in self.failed.items()
        ]
        if self.synced:
            lines.append(text("reload.synced", language))
        return "\n".join(lines)


def resolve_extension(bot: Bot, name: str) -> str | None:
    """Return the loaded extension called ``name``, also by its last part (``greet`` for ``cogs.greet``)."""
    if name in bot.extensions:
        return name
    matches = [loaded for loaded in bot.extensions if loaded.rsplit(".", 1)[-1] == name]
    return matches[0] if len(matches) == 1 else None


async def reload_extensions(bot: Bot, target: str) -> ReloadOutcome:
    """Reload one extension, or ``all``; a failure keeps the old version and is reported with its cause.

    The cause is redacted: it goes into a Discord reply, and an exception's text may quote a secret.
    """
    outcome = ReloadOutcome()
    redact = Redactor(bot.settings.secret_values())
    if target == "all":
        names = sorted(bot.extensions)
    else:
        resolved = resolve_extension(bot, target)
        if resolved is None:
            outcome.unknown = target
            return outcome
        names = [resolved]
    for name in names:
        try:
            await bot.reload_extension(name)
        except commands.ExtensionError as error:
            cause = error.__cause__ or error
            outcome.failed[name] = redact(f"{type(cause).__name__}: {cause}".splitlines()[0])
            log.error("reload of %s failed; the previous version keeps running", name, exc_info=cause)
        else:
            outcome.reloaded.append(name)
            log.info("reloaded %s", name)
    if outcome.reloaded:
        outcome.synced = await bot.sync_commands(only_if_changed=True)
    return outcome


async def is_owner(interaction: discord.Interaction[Bot]) -> bool:
    """Let the bot's owner through; refuse everyone else in one sentence."""
    if await interaction.client.is_owner(interaction.user):
        return True
    raise OwnerOnly()


class Admin(commands.Cog):
    """Owner-only operations on the running bot."""

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    @app_commands.command(name="reload", description="Reload an extension, or all of them (bot owner)")
    @app_commands.describe(extension="The extension to reload, e.g. cogs.greet, or all")
    @app_commands.default_permissions(administrator=True)
    @app_commands.check(is_owner)
    async def reload_slash(self, interaction: discord.Interaction[Bot], extension: str) -> None:
        """Reload ``extension`` (or ``all``) and say what happened."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        outcome = await reload_extensions(self.bot, extension)
        language = await self.bot.language_for(interaction.guild_id, interaction.locale)
        await interaction.followup.send(
            outcome.describe(language, sorted(self.bot.extensions)), ephemeral=True
        )

    @reload_slash.autocomplete("extension")
    async def _extension_choices(
        self, interaction: discord.Interaction[Bot], current: str
    ) -> list[app_commands.Choice[str]]:
        names = ["all", *sorted(self.bot.extensions)]
        return [app_commands.Choice(name=n, value=n) for n in names if current.lower() in n.lower()][:25]

    @commands.command(name="reload")
    @commands.is_owner()
    async def reload_text(self, ctx: commands.Context[Bot], extension: str) -> None:
        """Reload ``extension`` (or ``all``) from a message: ``!reload cogs.greet``."""
        outcome = await reload_extensions(self.bot, extension)
        language = await self.bot.language_for(ctx.guild.id if ctx.guild else None, None)
        await ctx.reply(outcome.describe(language, sorted(self.bot.extensions)), mention_author=False)


async def setup(bot: Bot) -> None:
    await bot.add_cog(Admin(bot))
