"""Levels: XP for messages, level-ups with role rewards, ``/rank``, ``/leaderboard`` and ``/xp``.

A member's message in a guild earns a random amount of XP in the guild's range, at most once per
cooldown; bots, webhooks and DMs earn nothing. Each award updates the guild's in-memory rank index at
once and is handed to a batched writer, which persists the deltas every ``XP_FLUSH_INTERVAL`` seconds
(or sooner when ``XP_FLUSH_MAX_PENDING`` rows wait), on shutdown and before a backup: a crash loses at
most the last interval. ``/rank`` and ``/leaderboard`` read the index, which equals the database once
the writer has flushed, in microseconds even for a million members. Administrators change XP with
``/xp`` through the same writer, so an award and a correction can never count each other twice.

The award runs for every message, so it is a message hook of the bot (``bot.message_hooks``), not a
listener: it runs synchronously inside the one task discord.py starts per message and, once the
guild's settings and rank index are in memory, it awaits nothing; a level-up announcement is a task of
its own. Until they are in memory (a guild's first message, the settings' TTL) the award waits in a
task. Unloading the cog stops the awards, lets the waiting ones finish, then flushes the writer.

One process owns a guild's XP (a guild lives on one shard), so its index stays exact; the cooldowns
are in memory too and start afresh after a restart or reload.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, cast

import discord
from discord import app_commands
from discord.ext import commands, tasks

from botops.bot.checks import is_administrator
from botops.bot.i18n import text
from botops.db.guild_settings import GuildConfig
from botops.db.levels import XpDelta, load_guild_xp, merge_xp_deltas, write_xp_deltas
from botops.db.writer import BatchedWriter
from botops.levels import GuildRanks, level_for, progress, total_xp_for
from botops.observability.metrics import FeatureCounters

if TYPE_CHECKING:
    from botops.bot.core import Bot

__all__ = ["Levels", "setup"]

log = logging.getLogger(__name__)

PAGE_SIZE = 10
#: Cooldown entries older than the longest cooldown a guild may set are forgotten by the pruning loop.
_COOLDOWN_MEMORY_SECONDS = 86_400
#: How long an unload waits for awards still waiting for the database before the final flush.
_UNLOAD_WAIT_SECONDS = 2.0


@dataclass
class LevelsState:
    """What outlives a reload of the levels extension: the writer with its pending XP, indexes, cooldowns."""

    writer: BatchedWriter[tuple[int, int], XpDelta]
    ranks: dict[int, GuildRanks] = field(default_factory=dict)
    last_award: dict[tuple[int, int], float] = field(default_factory=dict)
    #: For the metrics: awards made, XP they gave, level-ups reached, since the bot started.
    awards: int = 0
    xp_awarded: int = 0
    level_ups: int = 0


_STATE_KEY = "botops.cogs.levels"


class Levels(commands.Cog):
    """XP, levels and their commands."""

    xp = app_commands.Group(
        name="xp",
        description="Change a member's XP (administrators)",
        default_permissions=discord.Permissions(administrator=True),
        guild_only=True,
    )

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        # Not isinstance: a reload re-creates the LevelsState class, while the object from before lives on.
        state = cast("LevelsState | None", bot.extension_state.get(_STATE_KEY))
        if state is None:
            state = LevelsState(
                BatchedWriter(
                    bot.engine,
                    write_xp_deltas,
                    merge=merge_xp_deltas,
                    interval=bot.settings.xp_flush_interval,
                    max_pending=bot.settings.xp_flush_max_pending,
                    name="xp",
                )
            )
            bot.extension_state[_STATE_KEY] = state
        self.writer = state.writer
        self._state = state
        self._counters = FeatureCounters(
            {
                "botops_levels_awards": (
                    "XP awards made (one per message past the cooldown)",
                    lambda: state.awards,
                ),
                "botops_levels_xp": ("XP awarded by messages", lambda: state.xp_awarded),
                "botops_levels_level_ups": ("Level-ups reached by messages", lambda: state.level_ups),
            }
        )
        self._ranks = state.ranks
        self._last_award = state.last_award
        self._loading: dict[int, asyncio.Task[GuildRanks]] = {}
        self._random = random.Random()  # noqa: S311 - XP amounts are a game, not a secret
        #: Awards waiting for a guild's settings or rank index, and level-up announcements: referenced
        #: until done, since the loop keeps only weak references to tasks.
        self._waiting: set[asyncio.Task[None]] = set()
        self._announcing: set[asyncio.Task[None]] = set()
        self._clock_read_at = -1.0
        self._clock = datetime.now(UTC)

    # -- lifecycle ----------------------------------------------------------------------------------

    async def cog_load(self) -> None:
        await self.writer.start()  # a no-op when it runs on from before a reload
        self.bot.add_writer(self.writer)
        self.bot.metrics.registry.register(self._counters)
        self.bot.message_hooks.append(self.award)
        self._prune_cooldowns.start()

    async def cog_unload(self) -> None:
        self._prune_cooldowns.cancel()
        self.bot.metrics.registry.unregister(self._counters)
        if self.award in self.bot.message_hooks:
            self.bot.message_hooks.remove(self.award)  # no new award from here on
        if self._waiting:
            # Awards of messages that arrived before the unload, waiting for the database: let them in.
            await asyncio.wait(set(self._waiting), timeout=_UNLOAD_WAIT_SECONDS)
        # The writer belongs to the bot (LevelsState) and runs on: an award still in flight lands in it,
        # a failed flush stays pending and is retried, and Bot.close() makes the final flush.
        try:
            await self.writer.flush()
        except Exception:
            log.warning(
                "XP flush at unload failed; %d rows stay pending and are retried",
                self.writer.pending,
                exc_info=True,
            )

    @tasks.loop(minutes=10)
    async def _prune_cooldowns(self) -> None:
        cutoff = time.monotonic() - _COOLDOWN_MEMORY_SECONDS
        stale = [key for key, at in self._last_award.items() if at < cutoff]
        for key in stale:
            del self._last_award[key]

    # -- the rank index -----------------------------------------------------------------------------

    async def ranks_of(self, guild_id: int) -> GuildRanks:
        """Return the guild's rank index, loading it from the database on first use (once, shared)."""
        ranks = self._ranks.get(guild_id)
        if ranks is not None:
            return ranks
        loading = self._loading.get(guild_id)
        if loading is None:
            loading = asyncio.create_task(self._load(guild_id), name=f"levels-load-{guild_id}")
            self._loading[guild_id] = loading
        # Shielded: one caller giving up must not cancel the load the others wait for.
        return await asyncio.shield(loading)

    async def _load(self, guild_id: int) -> GuildRanks:
        try:
            rows = await load_guild_xp(self.bot.engine, guild_id)
            # Building the index is about a second of pure Python per million members: off the loop.
            ranks = await asyncio.to_thread(GuildRanks, rows)
            self._ranks[guild_id] = ranks
            log.debug("rank index of guild %s loaded: %d members", guild_id, len(ranks))
            return ranks
        finally:
            self._loading.pop(guild_id, None)

    # -- awarding -----------------------------------------------------------------------------------

    def award(self, message: discord.Message) -> None:
        """Award XP for a member's message, at most once per cooldown (the bot's message hook).

        Synchronous, since it runs for every message: with the guild's settings and rank index in
        memory it awards at once; otherwise the award waits for them in a task.
        """
        guild = message.guild
        if guild is None or message.author.bot or message.webhook_id is not None:
            return
        if message.type is not discord.MessageType.default and message.type is not discord.MessageType.reply:
            return  # a join, a pin or a boost notice is no chat
        config = self.bot.guild_settings.peek(guild.id)
        ranks = self._ranks.get(guild.id)
        if config is None or ranks is None:
            self._start(self._waiting, self._award_when_loaded(message, guild.id), "levels-award")
            return
        self._award(message, guild.id, config, ranks)

    async def _award_when_loaded(self, message: discord.Message, guild_id: int) -> None:
        config = await self.bot.guild_settings.get(guild_id)
        ranks = await self.ranks_of(guild_id)
        self._award(message, guild_id, config, ranks)

    def _award(self, message: discord.Message, guild_id: int, config: GuildConfig, ranks: GuildRanks) -> None:
        if not config.xp_enabled:
            return
        author = message.author
        key = (guild_id, author.id)
        now = time.monotonic()
        last = self._last_award.get(key)
        if last is not None and now - last < config.xp_cooldown_seconds:
            return
        self._last_award[key] = now
        # randint's equal: a uniform integer in [xp_min, xp_max], for a fifth of its cost per message.
        amount = config.xp_min + int(self._random.random() * (config.xp_max - config.xp_min + 1))
        after = ranks.apply(author.id, amount)
        self.writer.add(key, XpDelta(amount, 1, self._award_time(now)))
        state = self._state
        state.awards += 1
        state.xp_awarded += amount
        reached = level_for(after)
        # A level-up: the XP before this award was short of the level it has now reached.
        if after - amount < total_xp_for(reached):
            state.level_ups += 1
            if isinstance(author, discord.Member):
                previous = level_for(after - amount)
                self._start(
                    self._announcing,
                    self._announce_level_up(message, author, reached, previous, config),
                    "levels-level-up",
                )

    def _award_time(self, now: float) -> datetime:
        """Return the time of an award made at monotonic ``now``: the wall clock, read once a millisecond.

        A datetime per message (``message.created_at``) cost about half as much as the rest of the
        award together; a millisecond is the finest grain a Discord timestamp has anyway.
        """
        if now - self._clock_read_at >= 0.001:
            self._clock, self._clock_read_at = datetime.now(UTC), now
        return self._clock

    def _start(self, group: set[asyncio.Task[None]], work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(work, name=name)
        group.add(task)
        task.add_done_callback(lambda done: self._finished(group, done))

    def _finished(self, group: set[asyncio.Task[None]], task: asyncio.Task[None]) -> None:
        group.discard(task)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("%s failed", task.get_name(), exc_info=error)

    async def _announce_level_up(
        self, message: discord.Message, member: discord.Member, level: int, previous: int, config: GuildConfig
    ) -> None:
        guild = member.guild
        channel: discord.abc.Messageable = message.channel
        if config.levelup_channel_id is not None:
            chosen = guild.get_channel(config.levelup_channel_id)
            if isinstance(chosen, discord.TextChannel):
                channel = chosen
        language = await self.bot.language_for(guild.id, guild.preferred_locale)
        try:
            # The member is the only one who may be pinged, whatever the message says.
            await channel.send(
                text("levels.levelup", language, member=member.mention, level=level),
                allowed_mentions=discord.AllowedMentions(everyone=False, roles=False, users=[member]),
            )
        except discord.HTTPException:
            log.warning(
                "could not announce level %s of member %s in guild %s",
                level,
                member.id,
                guild.id,
                exc_info=True,
            )
        await self._give_rewards(member, previous, level, config)

    async def _give_rewards(
        self, member: discord.Member, previous: int, level: int, config: GuildConfig
    ) -> None:
        roles = [
            role
            for reached in range(previous + 1, level + 1)
            if (role_id := config.rewards.get(reached)) is not None
            and (role := member.guild.get_role(role_id)) is not None
            and role not in member.roles
        ]
        if not roles:
            return
        try:
            await member.add_roles(*roles, reason=f"botops level {level} reward")
        except discord.HTTPException:
            # The role may have moved above the bot's, or the bot lost Manage Roles since it was configured.
            log.warning(
                "could not give member %s of guild %s the rewards %s",
                member.id,
                member.guild.id,
                [r.id for r in roles],
                exc_info=True,
            )

    # -- reading ------------------------------------------------------------------------------------

    @app_commands.command(name="rank", description="Show a member's level, XP and rank")
    @app_commands.describe(member="Whose rank to show (default: yours)")
    @app_commands.guild_only()
    async def rank(self, interaction: discord.Interaction[Bot], member: discord.Member | None = None) -> None:
        """Show level, XP, progress to the next level, and rank in the guild."""
        assert interaction.guild is not None
        target = member or interaction.user
        ranks = await self.ranks_of(interaction.guild.id)
        language = await self.bot.language_for(interaction.guild_id, interaction.locale)
        xp = ranks.xp_of(target.id)
        position = ranks.rank_of(target.id)
        if xp is None or position is None:
            await interaction.response.send_message(
                text("levels.rank.none", language, member=target.mention),
                allowed_mentions=discord.AllowedMentions.none(),
            )
            return
        state = progress(xp)
        percent = 100 * state.xp_into_level // state.xp_for_next
        embed = discord.Embed(
            title=text("levels.rank.title", language, member=target.display_name),
            colour=discord.Colour.gold(),
        )
        embed.add_field(name=text("levels.rank.level", language), value=str(state.level))
        embed.add_field(name=text("levels.rank.xp", language), value=str(xp))
        embed.add_field(name=text("levels.rank.position", language), value=f"#{position} / {len(ranks)}")
        embed.add_field(
            name=text("levels.rank.progress", language),
            value=text(
                "levels.rank.progress_value",
                language,
                into=state.xp_into_level,
                needed=state.xp_for_next,
                percent=percent,
            ),
            inline=False,
        )
        await interaction.response.send_message(embed=embed)

    @app_commands.command(name="leaderboard", description="The members with the most XP, ten a page")
    @app_commands.describe(page="Which page (1 is the top ten)")
    @app_commands.guild_only()
    async def leaderboard(
        self, interaction: discord.Interaction[Bot], page: app_commands.Range[int, 1, 100_000] = 1
    ) -> None:
        """Show ten members a page, ranked by XP."""
        assert interaction.guild is not None
        ranks = await self.ranks_of(interaction.guild.id)
        language = await self.bot.language_for(interaction.guild_id, interaction.locale)
        entries = ranks.page((page - 1) * PAGE_SIZE, PAGE_SIZE)
        if not entries:
            await interaction.response.send_message(
                text("levels.leaderboard.empty", language, page=page), ephemeral=True
            )
            return
        lines = [
            text(
                "levels.leaderboard.entry",
                language,
                rank=ranks.rank_of(user_id),
                member=f"<@{user_id}>",
                level=level_for(xp),
                xp=xp,
            )
            for user_id, xp in entries
        ]
        embed = discord.Embed(
            title=text("levels.leaderboard.title", language, guild=interaction.guild.name, page=page),
            description="\n".join(lines),
            colour=discord.Colour.gold(),
        )
        await interaction.response.send_message(embed=embed)

    # -- administrators -----------------------------------------------------------------------------

    @xp.command(name="set", description="Set a member's XP")
    @app_commands.check(is_administrator)
    async def xp_set(
        self, interaction: discord.Interaction[Bot], member: discord.Member, amount: int
    ) -> None:
        """Set ``member``'s XP to ``amount``."""
        await self._change(interaction, member, amount, "set", lambda old: amount)

    @xp.command(name="add", description="Give a member XP")
    @app_commands.check(is_administrator)
    async def xp_add(
        self, interaction: discord.Interaction[Bot], member: discord.Member, amount: int
    ) -> None:
        """Add ``amount`` to ``member``'s XP."""
        await self._change(interaction, member, amount, "add", lambda old: old + amount)

    @xp.command(name="remove", description="Take XP from a member")
    @app_commands.check(is_administrator)
    async def xp_remove(
        self, interaction: discord.Interaction[Bot], member: discord.Member, amount: int
    ) -> None:
        """Take ``amount`` from ``member``'s XP (not below 0)."""
        await self._change(interaction, member, amount, "remove", lambda old: max(0, old - amount))

    @xp.command(name="reset", description="Set a member's XP to 0")
    @app_commands.check(is_administrator)
    async def xp_reset(self, interaction: discord.Interaction[Bot], member: discord.Member) -> None:
        """Set ``member``'s XP to 0."""
        await self._change(interaction, member, 0, "reset", lambda old: 0)

    async def _change(
        self,
        interaction: discord.Interaction[Bot],
        member: discord.Member,
        amount: int,
        action: str,
        compute: Callable[[int], int],
    ) -> None:
        assert interaction.guild is not None
        language = await self.bot.language_for(interaction.guild_id, interaction.locale)
        maximum = self.bot.settings.xp_admin_max_change
        refusal = None
        if member.bot:
            refusal = text("levels.xp.bot", language)
        elif amount < 0:
            refusal = text("levels.xp.negative", language)
        elif amount > maximum:
            refusal = text("levels.xp.too_much", language, maximum=maximum)
        if refusal is not None:
            await interaction.response.send_message(refusal, ephemeral=True)
            return
        ranks = await self.ranks_of(interaction.guild.id)
        old = ranks.xp_of(member.id) or 0
        new = compute(old)
        # A change is a delta through the writer, like an award, so the two can never overwrite each other.
        ranks.apply(member.id, new - old)
        self.writer.add((interaction.guild.id, member.id), XpDelta(new - old, 0, None))
        log.info(
            "audit: user %s did xp %s %s for member %s of guild %s: %s -> %s",
            interaction.user.id,
            action,
            amount,
            member.id,
            interaction.guild.id,
            old,
            new,
        )
        await interaction.response.send_message(
            text("levels.xp.done", language, member=member.mention, xp=new, level=level_for(new)),
            ephemeral=True,
            allowed_mentions=discord.AllowedMentions.none(),
        )


async def setup(bot: Bot) -> None:
    await bot.add_cog(Levels(bot))
