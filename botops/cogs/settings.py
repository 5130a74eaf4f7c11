"""``/settings show|set``: administrators see and change their guild's settings, read through the cache.

Every change goes through ``bot.guild_settings`` (the cache), which validates, writes, logs the audit
line (who, guild, what, old -> new) and reads back, so the reply and every command after it see the new
value at once; the reply is in the guild's language as it is after the change. A value botops does not
allow is refused in one localized sentence and changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from botops.bot.checks import is_administrator
from botops.bot.i18n import LANGUAGES, text
from botops.db.guild_settings import REWARD_LEVEL_MAX, GuildConfig
from botops.db.schema import MAX_XP_COOLDOWN_SECONDS, MAX_XP_PER_MESSAGE
from botops.errors import GuildSettingOutOfRange, InvalidGuildSetting, XpRangeInverted

if TYPE_CHECKING:
    from botops.bot.core import Bot

__all__ = ["GuildSettings", "describe_refusal", "render_settings", "setup"]

log = logging.getLogger(__name__)

#: An embed field holds at most 1024 characters; rewards beyond that are counted, not listed.
_FIELD_LIMIT = 1024
_OUT_OF_RANGE_KEYS = {
    "xp_min": "settings.error.xp_out_of_range",
    "xp_max": "settings.error.xp_out_of_range",
    "xp_cooldown_seconds": "settings.error.cooldown_out_of_range",
    "reward level": "settings.error.level_out_of_range",
}
#: The choice that clears the guild's language, so each member is answered in their own.
_MEMBERS_LANGUAGE = "members"
# The role and channel in a confirmation are mentions for display; nobody is to be pinged by one.
_NO_MENTIONS = discord.AllowedMentions.none()


def language_name(code: str) -> str:
    """Return a language's name in itself (``Deutsch``), or its code when botops does not speak it."""
    return text("language.self", code) if code in LANGUAGES else code


def render_settings(config: GuildConfig, guild_name: str, language: str) -> discord.Embed:
    """Return the embed that shows every setting of a guild in ``language``."""
    embed = discord.Embed(
        title=text("settings.title", language, guild=guild_name), colour=discord.Colour.blurple()
    )
    chosen = (
        language_name(config.language) if config.language else text("settings.language.members", language)
    )
    embed.add_field(name=text("settings.language", language), value=chosen, inline=False)
    embed.add_field(
        name=text("settings.xp", language),
        value=text("settings.on" if config.xp_enabled else "settings.off", language),
    )
    embed.add_field(
        name=text("settings.xp_range", language),
        value=text("settings.xp_range.value", language, minimum=config.xp_min, maximum=config.xp_max),
    )
    embed.add_field(
        name=text("settings.cooldown", language),
        value=text("settings.cooldown.value", language, seconds=config.xp_cooldown_seconds),
    )
    channel = config.levelup_channel_id
    embed.add_field(
        name=text("settings.levelup_channel", language),
        value=f"<#{channel}>" if channel else text("settings.levelup_channel.message", language),
        inline=False,
    )
    embed.add_field(
        name=text("settings.rewards", language), value=_rewards_text(config, language), inline=False
    )
    return embed


def _rewards_text(config: GuildConfig, language: str) -> str:
    if not config.rewards:
        return text("settings.rewards.none", language)
    lines: list[str] = []
    items = sorted(config.rewards.items())
    for shown, (level, role_id) in enumerate(items):
        line = text("settings.rewards.item", language, level=level, role=f"<@&{role_id}>")
        more = text("settings.rewards.more", language, count=len(items) - shown)
        # Keep room for the "and N more" line whenever another line might not fit after this one.
        if sum(len(x) + 1 for x in lines) + len(line) + 1 + len(more) > _FIELD_LIMIT:
            lines.append(more)
            break
        lines.append(line)
    return "\n".join(lines)


def describe_refusal(error: InvalidGuildSetting, language: str) -> str:
    """Return the one sentence that tells an administrator why a value was refused, in ``language``."""
    if isinstance(error, XpRangeInverted):
        return text("settings.error.xp_range_inverted", language, minimum=error.xp_min, maximum=error.xp_max)
    if isinstance(error, GuildSettingOutOfRange) and error.setting in _OUT_OF_RANGE_KEYS:
        key = _OUT_OF_RANGE_KEYS[error.setting]
        return text(key, language, minimum=error.minimum, maximum=error.maximum)
    return text("settings.error.invalid", language, setting=error.setting, value=error.value)


class GuildSettings(commands.Cog):
    """The /settings commands: one view, and one subcommand per setting an administrator can change."""

    settings = app_commands.Group(
        name="settings",
        description="This server's bot settings (administrators)",
        guild_only=True,
        default_permissions=discord.Permissions(administrator=True),
    )
    change = app_commands.Group(name="set", description="Change a setting of this server", parent=settings)

    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    # The base class takes any client's interaction; this cog only ever gets the botops Bot's.
    async def interaction_check(self, interaction: discord.Interaction[Bot], /) -> bool:  # type: ignore[override]
        """Let only administrators (and the owner) use any command of this cog, a new one included."""
        return await is_administrator(interaction)

    # -- show ---------------------------------------------------------------------------------------

    @settings.command(name="show", description="Show every setting of this server")
    async def show(self, interaction: discord.Interaction[Bot]) -> None:
        """Answer with an ephemeral embed of every setting, in the guild's language."""
        guild_id = _guild_id(interaction)
        config = await self.bot.guild_settings.get(guild_id)
        language = await self.bot.language_for(guild_id, interaction.locale)
        guild_name = interaction.guild.name if interaction.guild else str(guild_id)
        await interaction.response.send_message(
            embed=render_settings(config, guild_name, language), ephemeral=True
        )

    # -- set ----------------------------------------------------------------------------------------

    @change.command(name="language", description="The language the bot answers in on this server")
    @app_commands.describe(language="The language for every member of this server")
    @app_commands.choices(
        language=[
            *(app_commands.Choice(name=language_name(code), value=code) for code in LANGUAGES),
            app_commands.Choice(name="each member's own language", value=_MEMBERS_LANGUAGE),
        ]
    )
    async def set_language(self, interaction: discord.Interaction[Bot], language: str) -> None:
        """Set the guild's language (or none: each member's own); the confirmation is already in it."""
        chosen = None if language == _MEMBERS_LANGUAGE else language
        await self._apply(
            interaction,
            lambda guild_id, actor: self.bot.guild_settings.update(guild_id, actor=actor, language=chosen),
            lambda config, lang: text(
                "settings.done.language",
                lang,
                name=language_name(chosen) if chosen else text("settings.language.members", lang),
            ),
        )

    @change.command(name="xp", description="Whether members earn XP for their messages")
    @app_commands.describe(enabled="On: messages earn XP; off: they earn none")
    async def set_xp(self, interaction: discord.Interaction[Bot], enabled: bool) -> None:
        """Turn XP for messages on or off."""
        await self._apply(
            interaction,
            lambda guild_id, actor: self.bot.guild_settings.update(guild_id, actor=actor, xp_enabled=enabled),
            lambda config, lang: text(
                "settings.done.xp_on" if config.xp_enabled else "settings.done.xp_off", lang
            ),
        )

    @change.command(name="xp-range", description="How much XP one message earns: a random amount in a range")
    @app_commands.describe(minimum="The least XP a message earns", maximum="The most XP a message earns")
    async def set_xp_range(
        self,
        interaction: discord.Interaction[Bot],
        minimum: app_commands.Range[int, 0, MAX_XP_PER_MESSAGE],
        maximum: app_commands.Range[int, 0, MAX_XP_PER_MESSAGE],
    ) -> None:
        """Set the XP range of one message; a minimum above the maximum is refused."""
        await self._apply(
            interaction,
            lambda guild_id, actor: self.bot.guild_settings.update(
                guild_id, actor=actor, xp_min=minimum, xp_max=maximum
            ),
            lambda config, lang: text(
                "settings.done.xp_range", lang, minimum=config.xp_min, maximum=config.xp_max
            ),
        )

    @change.command(name="cooldown", description="The seconds a member waits between two XP awards")
    @app_commands.describe(seconds="0 to 86400 (a day)")
    async def set_cooldown(
        self,
        interaction: discord.Interaction[Bot],
        seconds: app_commands.Range[int, 0, MAX_XP_COOLDOWN_SECONDS],
    ) -> None:
        """Set the cooldown between two XP awards of one member."""
        await self._apply(
            interaction,
            lambda guild_id, actor: self.bot.guild_settings.update(
                guild_id, actor=actor, xp_cooldown_seconds=seconds
            ),
            lambda config, lang: text("settings.done.cooldown", lang, seconds=config.xp_cooldown_seconds),
        )

    @change.command(name="levelup-channel", description="Where level-ups are announced")
    @app_commands.describe(channel="Leave empty to announce in the channel of the message")
    async def set_levelup_channel(
        self, interaction: discord.Interaction[Bot], channel: discord.TextChannel | None = None
    ) -> None:
        """Announce level-ups in ``channel``, or (without one) in the channel of the message."""
        if channel is not None and not _can_post(channel):
            language = await self.bot.language_for(interaction.guild_id, interaction.locale)
            await self._refuse(interaction, text("settings.error.channel", language, channel=channel.mention))
            return
        channel_id = channel.id if channel else None
        await self._apply(
            interaction,
            lambda guild_id, actor: self.bot.guild_settings.update(
                guild_id, actor=actor, levelup_channel_id=channel_id
            ),
            lambda config, lang: (
                text("settings.done.levelup_channel", lang, channel=f"<#{config.levelup_channel_id}>")
                if config.levelup_channel_id
                else text("settings.done.levelup_channel_message", lang)
            ),
        )

    @change.command(name="reward", description="The role a member gets on reaching a level")
    @app_commands.describe(
        level="The level that gives the role", role="Leave empty to remove the level's reward"
    )
    async def set_reward(
        self,
        interaction: discord.Interaction[Bot],
        level: app_commands.Range[int, 1, REWARD_LEVEL_MAX],
        role: discord.Role | None = None,
    ) -> None:
        """Give ``role`` at ``level``, or (without a role) stop giving one there."""
        cache = self.bot.guild_settings
        if role is None:
            await self._apply(
                interaction,
                lambda guild_id, actor: cache.remove_reward(guild_id, level, actor=actor),
                lambda config, lang: text("settings.done.reward_removed", lang, level=level),
            )
            return
        if not role.is_assignable():
            language = await self.bot.language_for(interaction.guild_id, interaction.locale)
            await self._refuse(interaction, text("settings.error.role", language, role=role.mention))
            return
        await self._apply(
            interaction,
            lambda guild_id, actor: cache.set_reward(guild_id, level, role.id, actor=actor),
            lambda config, lang: text("settings.done.reward", lang, level=level, role=role.mention),
        )

    # -- shared -------------------------------------------------------------------------------------

    async def _apply(
        self,
        interaction: discord.Interaction[Bot],
        write: Callable[[int, int], Awaitable[GuildConfig]],
        confirm: Callable[[GuildConfig, str], str],
    ) -> None:
        """Run ``write`` (guild id, actor id); confirm in the guild's language, or refuse in one sentence."""
        guild_id = _guild_id(interaction)
        try:
            config = await write(guild_id, interaction.user.id)
        except InvalidGuildSetting as error:
            language = await self.bot.language_for(guild_id, interaction.locale)
            await self._refuse(interaction, describe_refusal(error, language), cause=str(error))
            return
        # After the write the cache holds the new settings, so this is the language as just changed.
        language = await self.bot.language_for(guild_id, interaction.locale)
        await interaction.response.send_message(
            confirm(config, language), ephemeral=True, allowed_mentions=_NO_MENTIONS
        )

    async def _refuse(self, interaction: discord.Interaction[Bot], sentence: str, *, cause: str = "") -> None:
        name = interaction.command.qualified_name if interaction.command else "settings"
        log.info(
            "/%s refused for user %s in guild %s: %s",
            name,
            interaction.user.id,
            interaction.guild_id,
            cause or sentence,
        )
        await interaction.response.send_message(sentence, ephemeral=True, allowed_mentions=_NO_MENTIONS)


def _guild_id(interaction: discord.Interaction[Bot]) -> int:
    # The group is guild_only; Discord never sends these commands from a DM.
    if interaction.guild_id is None:
        raise app_commands.NoPrivateMessage()
    return interaction.guild_id


def _can_post(channel: discord.TextChannel) -> bool:
    permissions = channel.permissions_for(channel.guild.me)
    return permissions.view_channel and permissions.send_messages


async def setup(bot: Bot) -> None:
    await bot.add_cog(GuildSettings(bot))
