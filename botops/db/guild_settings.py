"""Guild settings: the per-guild choices an administrator made (language, XP, level-ups, role rewards).

:func:`load_config` reads them as one :class:`GuildConfig`; a guild that never changed anything has no
row and gets the defaults. :func:`update_config`, :func:`set_reward` and :func:`remove_reward` validate,
write in one transaction and log every change (who, guild, what, old -> new) at INFO.
:class:`GuildSettingsCache` is how the bot reads them: a TTL cache that botops invalidates on every write
it makes, so an administrator never sees a stale value after a change through botops. A change made
behind botops' back (SQL by hand, another process) shows after at most the TTL.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Final, TypedDict, Unpack

from sqlalchemy import delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from botops.db.schema import MAX_XP_COOLDOWN_SECONDS, MAX_XP_PER_MESSAGE, guild_settings, level_rewards
from botops.errors import GuildSettingOutOfRange, InvalidGuildSetting, XpRangeInverted

if TYPE_CHECKING:
    from sqlalchemy import Table
    from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = [
    "REWARD_LEVEL_MAX",
    "ConfigChanges",
    "GuildConfig",
    "GuildSettingsCache",
    "load_config",
    "remove_reward",
    "set_reward",
    "update_config",
]

log = logging.getLogger(__name__)

#: Role rewards exist for levels 1..REWARD_LEVEL_MAX; everyone starts at level 0.
REWARD_LEVEL_MAX: Final = 1000
_SNOWFLAKE_MAX: Final = 2**63 - 1
# A language code as stored (``en``, ``de``, ``pt-BR``); which ones botops speaks is the bot's business.
_LANGUAGE_CODE: Final = re.compile(r"[a-z]{2}(-[A-Z]{2})?")

_EMPTY_REWARDS: Final[Mapping[int, int]] = MappingProxyType({})


@dataclass(frozen=True)
class GuildConfig:
    """One guild's settings; the defaults are those of a guild that never changed anything.

    ``language`` None means: answer each member in their Discord language. ``levelup_channel_id`` None
    means: announce a level-up in the channel of the message that earned it. ``rewards`` maps a level
    to the role a member gets on reaching it; it is read-only, since one instance is shared by every
    reader of the cache.
    """

    language: str | None = None
    xp_enabled: bool = True
    xp_min: int = 15
    xp_max: int = 25
    xp_cooldown_seconds: int = 60
    levelup_channel_id: int | None = None
    rewards: Mapping[int, int] = field(default_factory=lambda: _EMPTY_REWARDS, hash=False)


class ConfigChanges(TypedDict, total=False):
    """The settings :func:`update_config` can change; each key left out stays as it is."""

    language: str | None
    xp_enabled: bool
    xp_min: int
    xp_max: int
    xp_cooldown_seconds: int
    levelup_channel_id: int | None


_COLUMNS: Final = tuple(ConfigChanges.__annotations__)


# -- reading ----------------------------------------------------------------------------------------


async def load_config(engine: AsyncEngine, guild_id: int) -> GuildConfig:
    """Return a guild's settings and role rewards; the defaults for a guild without a row."""
    async with engine.connect() as connection:
        return await _read_config(connection, guild_id)


async def _read_config(connection: AsyncConnection, guild_id: int) -> GuildConfig:
    columns = [guild_settings.c[name] for name in _COLUMNS]
    row = (
        await connection.execute(select(*columns).where(guild_settings.c.guild_id == guild_id))
    ).one_or_none()
    rewards = (
        await connection.execute(
            select(level_rewards.c.level, level_rewards.c.role_id)
            .where(level_rewards.c.guild_id == guild_id)
            .order_by(level_rewards.c.level)
        )
    ).all()
    values: dict[str, Any] = dict(row._mapping) if row is not None else {}
    return GuildConfig(**values, rewards=MappingProxyType({level: role for level, role in rewards}))


# -- writing ----------------------------------------------------------------------------------------


async def update_config(
    engine: AsyncEngine, guild_id: int, *, actor: int | None = None, **changes: Unpack[ConfigChanges]
) -> dict[str, tuple[object, object]]:
    """Change some of a guild's settings in one transaction; return ``{setting: (old, new)}`` that changed.

    The result is validated as a whole (a new ``xp_min`` against the stored ``xp_max``), with the bounds
    of the database's check constraints. ``actor`` (a user id) goes to the audit log line.

    Raises:
        InvalidGuildSetting: a value is not allowed (``GuildSettingOutOfRange``, ``XpRangeInverted``);
            nothing was changed.
        TypeError: ``changes`` names a setting that does not exist.
    """
    unknown = sorted(set(changes) - set(_COLUMNS))
    if unknown:
        raise TypeError(f"no guild setting named {unknown[0]!r} (there are: {', '.join(_COLUMNS)})")
    async with engine.begin() as connection:
        # Make sure the row exists, then lock it: two administrators changing xp_min and xp_max at the
        # same moment are validated one after the other, not both against the old pair.
        await connection.execute(
            _insert(connection, guild_settings).values(guild_id=guild_id).on_conflict_do_nothing()
        )
        columns = [guild_settings.c[name] for name in _COLUMNS]
        row = (
            await connection.execute(
                select(*columns).where(guild_settings.c.guild_id == guild_id).with_for_update()
            )
        ).one()
        current: dict[str, object] = dict(row._mapping)
        _validate({**current, **changes})
        changed = {name: (current[name], value) for name, value in changes.items() if current[name] != value}
        if changed:
            await connection.execute(
                update(guild_settings)
                .where(guild_settings.c.guild_id == guild_id)
                .values({**{name: new for name, (_, new) in changed.items()}, "updated_at": func.now()})
            )
    # Logged once committed, so the audit log never claims a change that was rolled back.
    for name, (old, new) in changed.items():
        log.info("audit: user %s changed %s of guild %s: %r -> %r", actor, name, guild_id, old, new)
    return changed


async def set_reward(
    engine: AsyncEngine, guild_id: int, level: int, role_id: int, *, actor: int | None = None
) -> int | None:
    """Give the role ``role_id`` to members who reach ``level``; return the role it gave before, if any.

    Raises:
        GuildSettingOutOfRange: ``level`` is outside 1..REWARD_LEVEL_MAX or ``role_id`` is no snowflake;
            nothing was changed.
    """
    _check_range("reward level", level, 1, REWARD_LEVEL_MAX)
    _check_range("reward role", role_id, 1, _SNOWFLAKE_MAX)
    key = (level_rewards.c.guild_id == guild_id) & (level_rewards.c.level == level)
    async with engine.begin() as connection:
        old: int | None = (
            await connection.execute(select(level_rewards.c.role_id).where(key))
        ).scalar_one_or_none()
        if old == role_id:
            return old
        insert = _insert(connection, level_rewards).values(guild_id=guild_id, level=level, role_id=role_id)
        await connection.execute(
            insert.on_conflict_do_update(
                index_elements=[level_rewards.c.guild_id, level_rewards.c.level],
                set_={"role_id": insert.excluded.role_id},
            )
        )
    log.info(
        "audit: user %s changed the level %s reward of guild %s: %r -> %r",
        actor,
        level,
        guild_id,
        old,
        role_id,
    )
    return old


async def remove_reward(
    engine: AsyncEngine, guild_id: int, level: int, *, actor: int | None = None
) -> int | None:
    """Stop giving a role at ``level``; return the role it gave, or ``None`` when it gave none."""
    key = (level_rewards.c.guild_id == guild_id) & (level_rewards.c.level == level)
    async with engine.begin() as connection:
        old: int | None = (
            await connection.execute(select(level_rewards.c.role_id).where(key))
        ).scalar_one_or_none()
        if old is None:
            return None
        await connection.execute(delete(level_rewards).where(key))
    log.info(
        "audit: user %s removed the level %s reward of guild %s: %r -> None", actor, level, guild_id, old
    )
    return old


def _insert(connection: AsyncConnection, table: Table) -> Any:
    # ON CONFLICT is spelled the same on both, but each dialect has its own construct.
    if connection.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def _check_range(setting: str, value: object, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
        raise GuildSettingOutOfRange(setting, value, minimum, maximum)
    return value


def _validate(values: Mapping[str, object]) -> None:
    """Check a whole configuration against the bounds of the database's check constraints."""
    language = values["language"]
    if language is None:
        if not guild_settings.c.language.nullable:
            raise InvalidGuildSetting("language", language, "a language code such as en or de")
    elif not (isinstance(language, str) and _LANGUAGE_CODE.fullmatch(language)):
        raise InvalidGuildSetting("language", language, "a language code such as en or de")
    if not isinstance(values["xp_enabled"], bool):
        raise InvalidGuildSetting("xp_enabled", values["xp_enabled"], "true or false")
    xp_min = _check_range("xp_min", values["xp_min"], 0, MAX_XP_PER_MESSAGE)
    xp_max = _check_range("xp_max", values["xp_max"], 0, MAX_XP_PER_MESSAGE)
    if xp_min > xp_max:
        raise XpRangeInverted(xp_min, xp_max)
    _check_range("xp_cooldown_seconds", values["xp_cooldown_seconds"], 0, MAX_XP_COOLDOWN_SECONDS)
    if values["levelup_channel_id"] is not None:
        _check_range("levelup_channel_id", values["levelup_channel_id"], 1, _SNOWFLAKE_MAX)


# -- the cache --------------------------------------------------------------------------------------


class GuildSettingsCache:
    """Guild settings read through a TTL cache that every write through it invalidates.

    ``get`` answers from memory while an entry is younger than ``ttl`` seconds (0: never), else reads
    the database; concurrent misses for one guild share that one read. ``update``, ``set_reward`` and
    ``remove_reward`` write, invalidate and read back, so the writer and everyone after it see the new
    value at once. A read that was under way when a write invalidated its guild is handed to those who
    waited for it but never stored. ``hits`` and ``misses`` count ``get`` calls, for metrics.
    """

    def __init__(
        self, engine: AsyncEngine, ttl: float = 300.0, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if ttl < 0:
            raise ValueError(f"ttl must be 0 or more seconds, not {ttl}")
        self.engine = engine
        self.ttl = ttl
        self.hits = 0
        self.misses = 0
        self._clock = clock
        self._entries: dict[int, tuple[float, GuildConfig]] = {}
        self._reads: dict[int, asyncio.Task[GuildConfig]] = {}
        # Every read under way, also one an invalidation took out of _reads: a task needs a reference.
        self._tasks: set[asyncio.Task[GuildConfig]] = set()
        # Bumped by every invalidation; a read stores its result only if its guild's count is unchanged.
        self._generations: dict[int, int] = {}

    async def get(self, guild_id: int) -> GuildConfig:
        """Return a guild's settings, from memory when younger than the TTL.

        When the TTL has passed but the database cannot be read, the settings last read are served
        again (and the failure logged): a database outage must not turn every guild's settings into
        errors. Only a guild never read before raises then.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: the database could not be read and nothing was cached.
        """
        entry = self._entries.get(guild_id)
        if entry is not None:
            stored_at, config = entry
            if self._clock() - stored_at < self.ttl:
                self.hits += 1
                return config
            try:
                return await self._reread(guild_id)
            except Exception:
                log.warning(
                    "guild %s: settings could not be read; serving the ones read before",
                    guild_id,
                    exc_info=True,
                )
                return config
        return await self._reread(guild_id)

    async def _reread(self, guild_id: int) -> GuildConfig:
        self.misses += 1
        read = self._reads.get(guild_id)
        if read is None:
            read = asyncio.create_task(self._read(guild_id), name=f"guild-settings-{guild_id}")
            self._reads[guild_id] = read
            self._tasks.add(read)
            read.add_done_callback(lambda done: self._forget_read(guild_id, done))
        # One caller giving up (a cancelled interaction) must not cancel the read the others wait for.
        return await asyncio.shield(read)

    def peek(self, guild_id: int) -> GuildConfig | None:
        """Return a guild's settings if memory holds them younger than the TTL, else ``None``; never reads.

        For a hot path that should not await once the settings are in memory (the XP award of every
        message): on ``None`` it awaits :meth:`get`, which reads and counts the miss.
        """
        entry = self._entries.get(guild_id)
        if entry is not None and self._clock() - entry[0] < self.ttl:
            self.hits += 1
            return entry[1]
        return None

    def invalidate(self, guild_id: int) -> None:
        """Forget a guild's settings, so the next ``get`` reads them again."""
        self._entries.pop(guild_id, None)
        self._reads.pop(guild_id, None)  # a read under way may predate the change: start a new one
        self._generations[guild_id] = self._generations.get(guild_id, 0) + 1

    async def update(
        self, guild_id: int, *, actor: int | None = None, **changes: Unpack[ConfigChanges]
    ) -> GuildConfig:
        """Change some settings (see :func:`update_config`) and return the guild's settings after it.

        Raises:
            InvalidGuildSetting: a value is not allowed; nothing was changed.
        """
        try:
            await update_config(self.engine, guild_id, actor=actor, **changes)
        finally:
            # Even a failed write may have committed before it failed (a lost connection at COMMIT).
            self.invalidate(guild_id)
        return await self.get(guild_id)

    async def set_reward(
        self, guild_id: int, level: int, role_id: int, *, actor: int | None = None
    ) -> GuildConfig:
        """Give a role at a level (see :func:`set_reward`) and return the guild's settings after it."""
        try:
            await set_reward(self.engine, guild_id, level, role_id, actor=actor)
        finally:
            self.invalidate(guild_id)
        return await self.get(guild_id)

    async def remove_reward(self, guild_id: int, level: int, *, actor: int | None = None) -> GuildConfig:
        """Stop giving a role at a level and return the guild's settings after it."""
        try:
            await remove_reward(self.engine, guild_id, level, actor=actor)
        finally:
            self.invalidate(guild_id)
        return await self.get(guild_id)

    async def _read(self, guild_id: int) -> GuildConfig:
        generation = self._generations.get(guild_id, 0)
        config = await load_config(self.engine, guild_id)
        if self._generations.get(guild_id, 0) == generation:
            self._entries[guild_id] = (self._clock(), config)
        return config

    def _forget_read(self, guild_id: int, read: asyncio.Task[GuildConfig]) -> None:
        self._tasks.discard(read)
        if self._reads.get(guild_id) is read:
            del self._reads[guild_id]
        # Retrieve the outcome, so a read whose every waiter was cancelled logs no "never retrieved".
        if not read.cancelled() and read.exception() is not None:
            log.debug("reading the settings of guild %s failed", guild_id, exc_info=read.exception())
