"""The one place every command error goes: a short localized reply to the user, a metric, and the log.

Expected failures (a check, a cooldown, bad input, missing bot permissions) get a sentence that says
what to do, are counted as ``refused`` and logged at INFO; anything else is counted as ``error`` and
logged with its traceback under a short reference that the user's reply quotes, so an operator can find
it with ``botops logs``. No traceback reaches a user.
"""

from __future__ import annotations

import logging
import secrets
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from botops.bot.i18n import text
from botops.observability.metrics import CommandOutcome
from botops.observability.sentry import capture_command_error

if TYPE_CHECKING:
    from botops.bot.core import Bot

__all__ = ["AdminOnly", "OwnerOnly", "describe_error", "report_app_command_error", "report_command_error"]

log = logging.getLogger(__name__)


class AdminOnly(app_commands.CheckFailure):
    """The command is for administrators and the user is not one."""


class OwnerOnly(app_commands.CheckFailure):
    """The command is for the bot's owner and the user is not."""


def describe_error(error: BaseException, language: str) -> tuple[str, bool]:
    """Return the sentence for the user and whether the error was expected (no traceback needed)."""
    cause = getattr(error, "original", None) or error
    if isinstance(cause, (AdminOnly, commands.MissingPermissions, app_commands.MissingPermissions)):
        return text("error.admin_only", language), True
    if isinstance(cause, (OwnerOnly, commands.NotOwner)):
        return text("error.owner_only", language), True
    if isinstance(cause, (app_commands.NoPrivateMessage, commands.NoPrivateMessage)):
        return text("error.guild_only", language), True
    if isinstance(cause, (app_commands.CommandOnCooldown, commands.CommandOnCooldown)):
        return text("error.cooldown", language, seconds=max(1, round(cause.retry_after))), True
    if isinstance(cause, (app_commands.BotMissingPermissions, commands.BotMissingPermissions)):
        return text("error.bot_permissions", language, permissions=", ".join(cause.missing_permissions)), True
    if isinstance(cause, (app_commands.TransformerError, commands.UserInputError)):
        return text("error.bad_input", language, detail=str(cause)), True
    if isinstance(cause, (app_commands.CheckFailure, commands.CheckFailure)):
        return text("error.not_allowed", language), True
    return "", False


async def report_app_command_error(
    bot: Bot, interaction: discord.Interaction[Bot], error: app_commands.AppCommandError
) -> None:
    """Answer a failed slash command in one sentence and log what an operator needs."""
    language = await bot.language_for(interaction.guild_id, interaction.locale)
    name = interaction.command.qualified_name if interaction.command else "?"
    message, expected = describe_error(error, language)
    if expected:
        log.info("/%s refused for user %s in guild %s: %s", name, interaction.user.id, interaction.guild_id,
                 type(getattr(error, "original", error)).__name__)  # fmt: skip
    else:
        reference = secrets.token_hex(4)
        message = text("error.unexpected", language, reference=reference)
        cause = getattr(error, "original", error)
        log.error(
            "/%s failed for user %s in guild %s (reference %s)",
            name,
            interaction.user.id,
            interaction.guild_id,
            reference,
            exc_info=(type(cause), cause, cause.__traceback__),
        )
        capture_command_error(
            cause,
            command=name,
            kind="slash",
            guild_id=interaction.guild_id,
            shard_id=interaction.guild.shard_id if interaction.guild else None,
            user_texts=_option_texts(interaction),
            reference=reference,
        )
    outcome: CommandOutcome = "refused" if expected else "error"
    bot.finish_command(name, "slash", outcome, interaction.guild_id, interaction.extras)
    try:
        if interaction.response.is_done():
            await interaction.followup.send(message, ephemeral=True)
        else:
            await interaction.response.send_message(message, ephemeral=True)
    except discord.HTTPException:
        log.warning("could not tell the user of /%s that it failed", name, exc_info=True)


async def report_command_error(bot: Bot, ctx: commands.Context[Bot], error: commands.CommandError) -> None:
    """Answer a failed text command in one sentence and log what an operator needs."""
    if isinstance(error, commands.CommandNotFound):
        return
    language = await bot.language_for(ctx.guild.id if ctx.guild else None, None)
    name = ctx.command.qualified_name if ctx.command else "?"
    message, expected = describe_error(error, language)
    if expected:
        log.info("!%s refused for user %s: %s", name, ctx.author.id, type(error).__name__)
    else:
        reference = secrets.token_hex(4)
        message = text("error.unexpected", language, reference=reference)
        cause = getattr(error, "original", error)
        log.error("!%s failed for user %s (reference %s)", name, ctx.author.id, reference,
                  exc_info=(type(cause), cause, cause.__traceback__))  # fmt: skip
        capture_command_error(
            cause,
            command=name,
            kind="text",
            guild_id=ctx.guild.id if ctx.guild else None,
            shard_id=ctx.guild.shard_id if ctx.guild else None,
            user_texts=[
                ctx.message.content,
                *(a for a in (*ctx.args, *ctx.kwargs.values()) if isinstance(a, str)),
            ],
            reference=reference,
        )
    outcome: CommandOutcome = "refused" if expected else "error"
    guild_id = ctx.guild.id if ctx.guild else None
    bot.finish_command(name, "text", outcome, guild_id, getattr(ctx, "botops_extras", {}))
    try:
        await ctx.reply(message, mention_author=False)
    except discord.HTTPException:
        log.warning("could not tell the user of !%s that it failed", name, exc_info=True)


def _option_texts(interaction: discord.Interaction[Bot]) -> list[str]:
    """Return what the user typed into the command's options: kept out of the Sentry event."""
    return [value for _, value in interaction.namespace if isinstance(value, str)]
