"""GuildRanks: ranks and pages equal to a naive sort and to the database's own COUNT(*) and ORDER BY."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import TypeAlias

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from botops.db.engine import create_engine_for_url
from botops.db.migrate import upgrade
from botops.levels import USER_ID_LIMIT, GuildRanks

GUILD = 42
OTHER_GUILD = 7

# Few members, so operations hit the same member again; small XP, so ties are common. The user ids
# include the ends of a signed BIGINT, which is what the database can hold.
user_ids = st.sampled_from([0, 1, 2, 3, 10, 11, 175928847299117063, 1_400_000_000_000_000_000, 2**63 - 1])
xps = st.one_of(st.integers(min_value=0, max_value=40), st.integers(min_value=0, max_value=2**40))
deltas = st.integers(min_value=-30, max_value=60)  # /xp remove may take a member below zero

Operation: TypeAlias = tuple[str, int, int] | tuple[str, dict[int, int]]
operations = st.lists(
    st.one_of(
        st.tuples(st.just("apply"), user_ids, deltas),
        st.tuples(st.just("set"), user_ids, xps),
        st.tuples(st.just("remove"), user_ids, st.just(0)),
        st.tuples(st.just("load"), st.dictionaries(user_ids, xps)),
    ),
    max_size=30,
)
pages = st.tuples(st.integers(min_value=0, max_value=12), st.integers(min_value=0, max_value=12))


def run_on_index(ranks: GuildRanks, model: dict[int, int], operation: Operation) -> None:
    """Apply one operation to the index and to a plain dict of user id to XP."""
    match operation:
        case ("apply", int(user_id), int(delta)):
            ranks.apply(user_id, delta)
            model[user_id] = model.get(user_id, 0) + delta
        case ("set", int(user_id), int(xp)):
            ranks.set(user_id, xp)
            model[user_id] = xp
        case ("remove", int(user_id), _):
            ranks.remove(user_id)
            model.pop(user_id, None)
        case ("load", dict(rows)):
            ranks.load(rows.items())
            model.clear()
            model.update(rows)


def naive_rank(model: dict[int, int], user_id: int) -> int:
    return 1 + sum(1 for xp in model.values() if xp > model[user_id])


def naive_order(model: dict[int, int]) -> list[tuple[int, int]]:
    return sorted(model.items(), key=lambda row: (-row[1], row[0]))


@given(operations=operations)
def test_rank_is_one_plus_the_members_with_more_xp(operations: list[Operation]) -> None:
    ranks, model = GuildRanks(), dict[int, int]()
    for operation in operations:
        run_on_index(ranks, model, operation)
        assert {user_id: ranks.rank_of(user_id) for user_id in model} == {
            user_id: naive_rank(model, user_id) for user_id in model
        }


@given(operations=operations, page=pages)
def test_page_follows_xp_descending_then_user_id_ascending(
    operations: list[Operation], page: tuple[int, int]
) -> None:
    ranks, model = GuildRanks(), dict[int, int]()
    for operation in operations:
        run_on_index(ranks, model, operation)
    offset, limit = page
    assert ranks.page(offset, limit) == naive_order(model)[offset : offset + limit]


@given(operations=operations)
def test_xp_of_and_len_follow_every_operation(operations: list[Operation]) -> None:
    ranks, model = GuildRanks(), dict[int, int]()
    for operation in operations:
        run_on_index(ranks, model, operation)
        assert len(ranks) == len(model)
        assert {user_id: ranks.xp_of(user_id) for user_id in model} == model


# A guild large enough that the members moved between two reads are put in place one by one, not by a
# rebuild of the whole order (which the small guilds above mostly get).
base_guild = st.dictionaries(st.integers(min_value=1000, max_value=1099), xps, min_size=100, max_size=100)
changes = st.lists(
    st.one_of(
        st.tuples(st.just("apply"), user_ids | st.integers(min_value=1000, max_value=1002), deltas),
        st.tuples(st.just("set"), user_ids, xps),
        st.tuples(st.just("remove"), user_ids | st.just(1000), st.just(0)),
    ),
    max_size=30,
)


@given(base=base_guild, operations=changes, reads=st.lists(st.booleans(), min_size=30, max_size=30))
def test_members_moved_between_reads_of_a_large_guild_take_their_exact_places(
    base: dict[int, int], operations: list[Operation], reads: list[bool]
) -> None:
    ranks, model = GuildRanks(base.items()), dict(base)
    for operation, read in zip(operations, reads, strict=False):
        run_on_index(ranks, model, operation)
        if read:
            assert ranks.page(0, len(model)) == naive_order(model)
    assert {user_id: ranks.rank_of(user_id) for user_id in model} == {
        user_id: naive_rank(model, user_id) for user_id in model
    }


def test_members_with_equal_xp_share_a_rank() -> None:
    ranks = GuildRanks([(1, 50), (2, 30), (3, 30), (4, 10)])
    assert [ranks.rank_of(user_id) for user_id in (1, 2, 3, 4)] == [1, 2, 2, 4]


def test_apply_starts_a_new_member_at_zero() -> None:
    ranks = GuildRanks()
    assert ranks.apply(5, 20) == 20
    assert ranks.xp_of(5) == 20


def test_a_member_without_xp_has_no_rank() -> None:
    ranks = GuildRanks([(1, 50)])
    assert (ranks.rank_of(2), ranks.xp_of(2)) == (None, None)


def test_remove_reports_whether_the_member_was_there() -> None:
    ranks = GuildRanks([(1, 50)])
    assert (ranks.remove(1), ranks.remove(1)) == (True, False)


def test_load_replaces_everything_indexed_before() -> None:
    ranks = GuildRanks([(1, 50), (2, 40)])
    ranks.load([(3, 10)])
    assert ranks.page(0, 10) == [(3, 10)]


def test_load_keeps_the_last_xp_of_a_repeated_user_id() -> None:
    assert GuildRanks([(1, 50), (1, 20)]).page(0, 10) == [(1, 20)]


@pytest.mark.parametrize("user_id", [-1, USER_ID_LIMIT])
def test_a_user_id_outside_64_bits_is_rejected(user_id: int) -> None:
    with pytest.raises(ValueError, match="not an unsigned 64-bit snowflake"):
        GuildRanks().set(user_id, 10)


def test_a_load_with_a_bad_user_id_leaves_the_index_as_it_was() -> None:
    ranks = GuildRanks([(1, 50)])
    with pytest.raises(ValueError, match="not an unsigned 64-bit snowflake"):
        ranks.load([(2, 10), (USER_ID_LIMIT, 5)])
    assert ranks.page(0, 10) == [(1, 50)]


def test_a_negative_offset_is_rejected() -> None:
    with pytest.raises(ValueError, match="must not be negative"):
        GuildRanks().page(-1, 10)


# The comparison with the database: the same operations on the real member_xp table, built by the
# migrations, with the writer's upsert; rows of another guild sit beside it and must not count.


@pytest.fixture(scope="module")
def member_xp_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    path = tmp_path_factory.mktemp("levels") / "bot.db"

    async def migrate() -> None:
        engine = create_engine_for_url(f"sqlite+aiosqlite:///{path}")
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(migrate())
    connection = sqlite3.connect(Path(path), isolation_level=None)
    try:
        yield connection
    finally:
        connection.close()


def run_on_database(database: sqlite3.Connection, operation: Operation) -> None:
    """Apply one operation to the guild's rows as botops' queries do."""
    match operation:
        case ("apply", int(user_id), int(delta)):
            database.execute(
                "INSERT INTO member_xp (guild_id, user_id, xp, messages) VALUES (?, ?, ?, 1) "
                "ON CONFLICT (guild_id, user_id) DO UPDATE SET xp = member_xp.xp + excluded.xp, "
                "messages = member_xp.messages + excluded.messages",
                (GUILD, user_id, delta),
            )
        case ("set", int(user_id), int(xp)):
            database.execute(
                "INSERT INTO member_xp (guild_id, user_id, xp) VALUES (?, ?, ?) "
                "ON CONFLICT (guild_id, user_id) DO UPDATE SET xp = excluded.xp",
                (GUILD, user_id, xp),
            )
        case ("remove", int(user_id), _):
            database.execute("DELETE FROM member_xp WHERE guild_id = ? AND user_id = ?", (GUILD, user_id))
        case ("load", dict(rows)):
            database.execute("DELETE FROM member_xp WHERE guild_id = ?", (GUILD,))
            database.executemany(
                "INSERT INTO member_xp (guild_id, user_id, xp) VALUES (?, ?, ?)",
                [(GUILD, user_id, xp) for user_id, xp in rows.items()],
            )


def rows_of_guild(database: sqlite3.Connection) -> list[tuple[int, int]]:
    return database.execute("SELECT user_id, xp FROM member_xp WHERE guild_id = ?", (GUILD,)).fetchall()


def rank_by_count(database: sqlite3.Connection, xp: int) -> int:
    query = "SELECT 1 + COUNT(*) FROM member_xp WHERE guild_id = ? AND xp > ?"
    rank: int = database.execute(query, (GUILD, xp)).fetchone()[0]
    return rank


def page_by_order(database: sqlite3.Connection, offset: int, limit: int) -> list[tuple[int, int]]:
    query = (
        "SELECT user_id, xp FROM member_xp WHERE guild_id = ? ORDER BY xp DESC, user_id ASC LIMIT ? OFFSET ?"
    )
    return database.execute(query, (GUILD, limit, offset)).fetchall()


@settings(deadline=None)
@given(
    operations=operations,
    other_guild=st.dictionaries(user_ids, xps, max_size=5),
)
def test_rank_and_page_equal_the_databases_answer(
    member_xp_database: sqlite3.Connection, operations: list[Operation], other_guild: dict[int, int]
) -> None:
    database = member_xp_database
    database.execute("DELETE FROM member_xp")
    database.executemany(
        "INSERT INTO member_xp (guild_id, user_id, xp) VALUES (?, ?, ?)",
        [(OTHER_GUILD, user_id, xp) for user_id, xp in other_guild.items()],
    )
    ranks, model = GuildRanks(), dict[int, int]()
    for operation in operations:
        run_on_database(database, operation)
        if operation[0] == "load":
            # As the bot does: the index of a guild is loaded from the database's rows.
            ranks.load(rows_of_guild(database))
        else:
            run_on_index(ranks, model, operation)
        members = rows_of_guild(database)
        assert len(ranks) == len(members)
        for user_id, xp in members:
            assert ranks.xp_of(user_id) == xp
            assert ranks.rank_of(user_id) == rank_by_count(database, xp)
        for offset in range(len(members) + 1):
            assert ranks.page(offset, 3) == page_by_order(database, offset, 3)
