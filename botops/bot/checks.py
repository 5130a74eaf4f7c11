"""Permission checks shared by the slash commands of the built-in cogs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import discord

from botops.bot.funnel import AdminOnly

if TYPE_CHECKING:
    from botops.bot.core import Bot

__all__ = ["is_administrator"]


async def is_administrator(interaction: discord.Interaction[Bot]) -> bool:
    """Let administrators (and the bot's owner) through; refuse everyone else in one sentence.

    Raises:
        AdminOnly: the user is neither an administrator of the guild nor the bot's owner.
    """
    # default_permissions only hides the command; a guild can grant it to anyone, so check again here.
    member = interaction.user
    if isinstance(member, discord.Member) and member.guild_permissions.administrator:
        return True
    if await interaction.client.is_owner(interaction.user):
        return True
    raise AdminOnly()
