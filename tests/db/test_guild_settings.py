"""Guild settings on SQLite and PostgreSQL: defaults, validated upserts, rewards, the audit log, the cache."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from botops.db import migrate
from botops.db.guild_settings import (
    GuildConfig,
    GuildSettingsCache,
    load_config,
    remove_reward,
    set_reward,
    update_config,
)
from botops.db.schema import guild_settings
from botops.errors import GuildSettingOutOfRange, InvalidGuildSetting, XpRangeInverted

pytestmark = pytest.mark.asyncio

GUILD = 111_111_111_111_111_111
OTHER_GUILD = 222_222_222_222_222_222
ADMIN = 333_333_333_333_333_333
ROLE = 444_444_444_444_444_444
CHANNEL = 555_555_555_555_555_555


class Clock:
    """A monotonic clock the test moves by hand, so the TTL is tested without sleeping."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class Reads:
    """Counts the SELECTs on guild_settings that reach the database."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.count = 0
        event.listen(engine.sync_engine, "before_cursor_execute", self._seen)

    def _seen(self, _conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM guild_settings" in statement:
            self.count += 1


@pytest_asyncio.fixture
async def db(engine: AsyncEngine) -> AsyncIterator[AsyncEngine]:
    """The test's database, migrated to the head revision."""
    await migrate.upgrade(engine)
    yield engine


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def cache(db: AsyncEngine, clock: Clock) -> GuildSettingsCache:
    return GuildSettingsCache(db, ttl=300.0, clock=clock)


async def row_count(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(select(func.count()).select_from(guild_settings))).scalar_one())


# -- reading and writing ------------------------------------------------------------------------------


async def test_a_guild_without_a_row_has_the_defaults(db: AsyncEngine) -> None:
    config = await load_config(db, GUILD)

    assert config == GuildConfig()
    assert (config.language, config.xp_enabled, config.xp_min, config.xp_max) == (None, True, 15, 25)
    assert (config.xp_cooldown_seconds, config.levelup_channel_id, dict(config.rewards)) == (60, None, {})


async def test_the_first_update_creates_the_row_with_defaults_for_the_rest(db: AsyncEngine) -> None:
    await update_config(db, GUILD, xp_cooldown_seconds=30)

    config = await load_config(db, GUILD)
    assert config.xp_cooldown_seconds == 30
    assert (config.xp_enabled, config.xp_min, config.xp_max, config.levelup_channel_id) == (
        True,
        15,
        25,
        None,
    )


async def test_changing_another_setting_leaves_members_answered_in_their_own_language(
    db: AsyncEngine,
) -> None:
    await update_config(db, GUILD, xp_cooldown_seconds=30)

    assert (await load_config(db, GUILD)).language is None


async def test_a_chosen_language_can_be_cleared_again(db: AsyncEngine) -> None:
    await update_config(db, GUILD, language="de")
    await update_config(db, GUILD, language=None)

    assert (await load_config(db, GUILD)).language is None


async def test_an_update_changes_only_the_settings_it_names(db: AsyncEngine) -> None:
    await update_config(db, GUILD, language="de", xp_min=5, xp_max=10)

    await update_config(db, GUILD, xp_enabled=False, levelup_channel_id=CHANNEL)

    config = await load_config(db, GUILD)
    assert (config.language, config.xp_min, config.xp_max) == ("de", 5, 10)
    assert (config.xp_enabled, config.levelup_channel_id) == (False, CHANNEL)


async def test_an_update_returns_old_and_new_of_what_changed_only(db: AsyncEngine) -> None:
    await update_config(db, GUILD, xp_min=5, xp_max=10)

    changed = await update_config(db, GUILD, xp_min=5, xp_max=12)

    assert changed == {"xp_max": (10, 12)}


async def test_the_levelup_channel_can_be_unset_again(db: AsyncEngine) -> None:
    await update_config(db, GUILD, levelup_channel_id=CHANNEL)

    await update_config(db, GUILD, levelup_channel_id=None)

    assert (await load_config(db, GUILD)).levelup_channel_id is None


async def test_settings_of_one_guild_do_not_touch_another(db: AsyncEngine) -> None:
    await update_config(db, GUILD, xp_enabled=False)

    assert await load_config(db, OTHER_GUILD) == GuildConfig()


# -- validation -------------------------------------------------------------------------------------


async def test_xp_min_above_the_stored_xp_max_is_refused_and_nothing_changes(db: AsyncEngine) -> None:
    await update_config(db, GUILD, xp_min=5, xp_max=10)

    with pytest.raises(XpRangeInverted) as refused:
        await update_config(db, GUILD, xp_min=11)

    assert (refused.value.xp_min, refused.value.xp_max) == (11, 10)
    assert (await load_config(db, GUILD)).xp_min == 5


@pytest.mark.parametrize(
    ("setting", "value"), [("xp_min", -1), ("xp_max", 1001), ("xp_cooldown_seconds", 86_401)]
)
async def test_a_number_outside_its_bounds_is_refused_with_the_bounds(
    db: AsyncEngine, setting: str, value: int
) -> None:
    with pytest.raises(GuildSettingOutOfRange) as refused:
        await update_config(db, GUILD, **{setting: value})  # type: ignore[misc]

    error = refused.value
    assert (error.setting, error.value, error.minimum) == (setting, value, 0)
    assert error.maximum == (86_400 if setting == "xp_cooldown_seconds" else 1000)
    assert str(error).endswith("nothing was changed")


async def test_the_bounds_themselves_are_allowed(db: AsyncEngine) -> None:
    await update_config(db, GUILD, xp_min=0, xp_max=1000, xp_cooldown_seconds=86_400)

    config = await load_config(db, GUILD)
    assert (config.xp_min, config.xp_max, config.xp_cooldown_seconds) == (0, 1000, 86_400)


async def test_a_refused_first_update_leaves_no_row_behind(db: AsyncEngine) -> None:
    with pytest.raises(XpRangeInverted):
        await update_config(db, GUILD, xp_min=30)

    assert await row_count(db) == 0


async def test_a_refused_update_changes_none_of_its_settings(db: AsyncEngine) -> None:
    with pytest.raises(GuildSettingOutOfRange):
        await update_config(db, GUILD, language="de", xp_cooldown_seconds=-5)

    assert await load_config(db, GUILD) == GuildConfig()


async def test_a_language_that_is_no_language_code_is_refused(db: AsyncEngine) -> None:
    with pytest.raises(InvalidGuildSetting) as refused:
        await update_config(db, GUILD, language="german")

    assert refused.value.setting == "language"


async def test_a_setting_that_does_not_exist_is_a_type_error(db: AsyncEngine) -> None:
    with pytest.raises(TypeError, match="no guild setting named 'prefix'"):
        await update_config(db, GUILD, prefix="!")  # type: ignore[call-arg]


# -- role rewards -----------------------------------------------------------------------------------


async def test_a_reward_is_part_of_the_guilds_settings(db: AsyncEngine) -> None:
    await set_reward(db, GUILD, 5, ROLE)
    await set_reward(db, GUILD, 10, ROLE + 1)

    assert dict((await load_config(db, GUILD)).rewards) == {5: ROLE, 10: ROLE + 1}


async def test_setting_a_reward_again_replaces_its_role_and_returns_the_old_one(db: AsyncEngine) -> None:
    await set_reward(db, GUILD, 5, ROLE)

    old = await set_reward(db, GUILD, 5, ROLE + 1)

    assert old == ROLE
    assert dict((await load_config(db, GUILD)).rewards) == {5: ROLE + 1}


async def test_removing_a_reward_returns_its_role_and_leaves_the_others(db: AsyncEngine) -> None:
    await set_reward(db, GUILD, 5, ROLE)
    await set_reward(db, GUILD, 10, ROLE + 1)

    removed = await remove_reward(db, GUILD, 5)

    assert removed == ROLE
    assert dict((await load_config(db, GUILD)).rewards) == {10: ROLE + 1}


async def test_removing_a_reward_that_does_not_exist_returns_none(db: AsyncEngine) -> None:
    assert await remove_reward(db, GUILD, 5) is None


@pytest.mark.parametrize("level", [0, 1001])
async def test_a_reward_level_outside_1_to_1000_is_refused(db: AsyncEngine, level: int) -> None:
    with pytest.raises(GuildSettingOutOfRange):
        await set_reward(db, GUILD, level, ROLE)

    assert dict((await load_config(db, GUILD)).rewards) == {}


async def test_rewards_of_one_guild_are_not_another_guilds(db: AsyncEngine) -> None:
    await set_reward(db, GUILD, 5, ROLE)

    assert dict((await load_config(db, OTHER_GUILD)).rewards) == {}


async def test_the_rewards_of_a_config_cannot_be_changed_in_place(db: AsyncEngine) -> None:
    await set_reward(db, GUILD, 5, ROLE)
    config = await load_config(db, GUILD)

    with pytest.raises(TypeError):
        config.rewards[6] = ROLE  # type: ignore[index]


# -- the audit log ----------------------------------------------------------------------------------


async def test_every_change_is_logged_with_who_guild_what_old_and_new(
    db: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    await update_config(db, GUILD, xp_max=40)
    caplog.set_level(logging.INFO, logger="botops.db.guild_settings")

    await update_config(db, GUILD, actor=ADMIN, xp_max=50, xp_min=15)

    assert [record.getMessage() for record in caplog.records] == [
        f"audit: user {ADMIN} changed xp_max of guild {GUILD}: 40 -> 50"
    ]
    assert caplog.records[0].levelno == logging.INFO


async def test_a_refused_change_is_not_logged_as_a_change(
    db: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="botops.db.guild_settings")

    with pytest.raises(XpRangeInverted):
        await update_config(db, GUILD, actor=ADMIN, language="de", xp_min=100)

    assert [r for r in caplog.records if "audit" in r.getMessage()] == []


async def test_reward_changes_are_logged_with_who_and_old_and_new(
    db: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="botops.db.guild_settings")

    await set_reward(db, GUILD, 5, ROLE, actor=ADMIN)
    await remove_reward(db, GUILD, 5, actor=ADMIN)

    assert [record.getMessage() for record in caplog.records] == [
        f"audit: user {ADMIN} changed the level 5 reward of guild {GUILD}: None -> {ROLE}",
        f"audit: user {ADMIN} removed the level 5 reward of guild {GUILD}: {ROLE} -> None",
    ]


# -- the cache --------------------------------------------------------------------------------------


async def test_the_cache_answers_from_memory_within_the_ttl(
    db: AsyncEngine, cache: GuildSettingsCache, clock: Clock
) -> None:
    reads = Reads(db)
    first = await cache.get(GUILD)
    clock.now += 299.9

    second = await cache.get(GUILD)

    assert second is first
    assert reads.count == 1
    assert (cache.hits, cache.misses) == (1, 1)


async def test_the_cache_reads_again_once_the_ttl_has_passed(
    db: AsyncEngine, cache: GuildSettingsCache, clock: Clock
) -> None:
    await cache.get(GUILD)
    # Changed behind the cache's back (by hand, another process): seen only after the TTL.
    await update_config(db, GUILD, xp_enabled=False)
    assert (await cache.get(GUILD)).xp_enabled is True
    clock.now += 300.0

    config = await cache.get(GUILD)

    assert config.xp_enabled is False
    assert (cache.hits, cache.misses) == (1, 2)


async def test_settings_read_before_are_served_while_the_database_cannot_be_read(
    db: AsyncEngine, cache: GuildSettingsCache, clock: Clock
) -> None:
    await update_config(db, GUILD, xp_cooldown_seconds=30)
    await cache.get(GUILD)
    clock.now += 300.0
    async with db.begin() as connection:
        await connection.execute(text("ALTER TABLE guild_settings RENAME TO guild_settings_away"))

    config = await cache.get(GUILD)

    assert config.xp_cooldown_seconds == 30
    with pytest.raises(SQLAlchemyError):
        await cache.get(OTHER_GUILD)  # never read before: nothing to fall back on


async def test_peek_answers_only_what_memory_holds_within_the_ttl_and_never_reads(
    db: AsyncEngine, cache: GuildSettingsCache, clock: Clock
) -> None:
    reads = Reads(db)
    before = cache.peek(GUILD)
    held = await cache.get(GUILD)
    clock.now += 299.9
    within = cache.peek(GUILD)
    clock.now += 0.1

    assert (before, within, cache.peek(GUILD)) == (None, held, None)
    assert within is held
    assert reads.count == 1


async def test_peek_sees_nothing_after_an_invalidation_until_the_next_get(
    db: AsyncEngine, cache: GuildSettingsCache
) -> None:
    await cache.get(GUILD)
    cache.invalidate(GUILD)

    assert cache.peek(GUILD) is None
    assert (await cache.get(GUILD)) is cache.peek(GUILD)


async def test_a_change_through_the_cache_is_seen_at_once(db: AsyncEngine, cache: GuildSettingsCache) -> None:
    await cache.get(GUILD)

    returned = await cache.update(GUILD, actor=ADMIN, language="de", xp_min=1, xp_max=2)

    assert (returned.language, returned.xp_min, returned.xp_max) == ("de", 1, 2)
    assert await cache.get(GUILD) == returned


async def test_a_reward_change_through_the_cache_is_seen_at_once(
    db: AsyncEngine, cache: GuildSettingsCache
) -> None:
    await cache.get(GUILD)

    await cache.set_reward(GUILD, 5, ROLE, actor=ADMIN)
    assert dict((await cache.get(GUILD)).rewards) == {5: ROLE}
    await cache.remove_reward(GUILD, 5, actor=ADMIN)
    assert dict((await cache.get(GUILD)).rewards) == {}


async def test_a_refused_change_through_the_cache_keeps_the_old_settings(
    db: AsyncEngine, cache: GuildSettingsCache
) -> None:
    await cache.update(GUILD, xp_min=5, xp_max=10)

    with pytest.raises(XpRangeInverted):
        await cache.update(GUILD, xp_min=20)

    assert ((await cache.get(GUILD)).xp_min, (await load_config(db, GUILD)).xp_min) == (5, 5)


async def test_invalidate_makes_the_next_get_read_the_database(
    db: AsyncEngine, cache: GuildSettingsCache
) -> None:
    await cache.get(GUILD)
    await update_config(db, GUILD, xp_cooldown_seconds=5)

    cache.invalidate(GUILD)

    assert (await cache.get(GUILD)).xp_cooldown_seconds == 5


async def test_invalidate_forgets_only_that_guild(db: AsyncEngine, cache: GuildSettingsCache) -> None:
    await cache.get(GUILD)
    await cache.get(OTHER_GUILD)
    reads = Reads(db)

    cache.invalidate(GUILD)
    await cache.get(GUILD)
    await cache.get(OTHER_GUILD)

    assert reads.count == 1


async def test_concurrent_misses_for_one_guild_share_one_read(
    db: AsyncEngine, cache: GuildSettingsCache
) -> None:
    reads = Reads(db)

    configs = await asyncio.gather(*(cache.get(GUILD) for _ in range(20)))

    assert reads.count == 1
    assert all(config is configs[0] for config in configs)
    assert cache.misses == 20


async def test_concurrent_misses_for_two_guilds_read_each_guild(
    db: AsyncEngine, cache: GuildSettingsCache
) -> None:
    await update_config(db, GUILD, xp_min=1)
    reads = Reads(db)

    first, second = await asyncio.gather(cache.get(GUILD), cache.get(OTHER_GUILD))

    assert reads.count == 2
    assert (first.xp_min, second.xp_min) == (1, 15)


async def test_a_read_under_way_when_its_guild_is_invalidated_is_not_kept(
    db: AsyncEngine, cache: GuildSettingsCache
) -> None:
    early = asyncio.create_task(cache.get(GUILD))
    await asyncio.sleep(0)  # the caller starts the shared read
    await asyncio.sleep(0)  # the read starts: it may return what was there before a write
    cache.invalidate(GUILD)  # what a write through the cache does once it committed
    await early

    await cache.get(GUILD)

    assert (cache.hits, cache.misses) == (0, 2)


async def test_a_caller_that_gives_up_does_not_cancel_the_read_of_the_others(
    db: AsyncEngine, cache: GuildSettingsCache
) -> None:
    await update_config(db, GUILD, xp_min=3)
    impatient = asyncio.create_task(cache.get(GUILD))
    patient = asyncio.create_task(cache.get(GUILD))
    await asyncio.sleep(0)

    impatient.cancel()

    assert (await patient).xp_min == 3
    assert impatient.cancelled()


async def test_a_ttl_of_zero_reads_every_time(db: AsyncEngine, clock: Clock) -> None:
    cache = GuildSettingsCache(db, ttl=0, clock=clock)
    reads = Reads(db)

    await cache.get(GUILD)
    await cache.get(GUILD)

    assert reads.count == 2
    assert cache.hits == 0
