"""The levels feature end to end: the real bot as its own process, the sandbox, and its SQLite file.

Members post messages through the sandbox; what the bot acknowledges is read back through ``/rank``
and ``/leaderboard`` (its in-memory index), and what it persisted straight from the database file
(stdlib sqlite3, read only). One bot process serves the module, flushing every 0.2 s; each test uses
members of its own and first sets the guild settings it relies on, so the order of the tests does not
matter. The SIGTERM test runs a bot of its own with a 60 s flush interval.

Gateway events reach the bot in order and an award takes no await once the guild's settings and rank
index are in memory, so "a later member's award shows in /rank" means every earlier message was
handled: that is the barrier the tests wait on before they check that something earned nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import sqlite3
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import aiohttp
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from botops.levels import level_for
from botops.sandbox import Member, Message
from tests.bot.process import READY_LINE, RunningBot, bot_environment, running_bot, spawn_bot

pytestmark = pytest.mark.asyncio(loop_scope="module")

T = TypeVar("T")

#: How long a test waits for the bot or its writer to catch up before it fails.
CATCH_UP = 10.0
ENTRY_RE = re.compile(r"^\*\*(\d+)\.\*\* <@(\d+)>: level (\d+), (\d+) XP$")
RANK_RE = re.compile(r"^#(\d+) / (\d+)$")


# -- the shared bot and its database ----------------------------------------------------------------------


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def bot(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningBot]:
    """One bot for the module, flushing XP every 0.2 s; with the members intent, so it sees role changes."""
    folder = tmp_path_factory.mktemp("levels")
    extra = {"PRIVILEGED_INTENTS": "message_content,members", "XP_FLUSH_INTERVAL": "0.2"}
    async with running_bot(folder, extra=extra) as running:
        yield running


@dataclass(frozen=True)
class Stored:
    """A member_xp row as the database holds it."""

    xp: int
    messages: int


def stored(bot: RunningBot) -> dict[int, Stored]:
    """Return the demo guild's member_xp rows by user id, read from the bot's database file (read only)."""
    uri = f"{(bot.folder / 'bot.db').as_uri()}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri, uri=True)) as connection:
        rows = connection.execute(
            "SELECT user_id, xp, messages FROM member_xp WHERE guild_id = ?", (bot.demo.guild.id,)
        ).fetchall()
    return {int(user_id): Stored(int(xp), int(messages)) for user_id, xp, messages in rows}


def stored_order(bot: RunningBot) -> list[tuple[int, int]]:
    """Return ``(user_id, xp)`` of the guild in the database's leaderboard order."""
    return [
        (user_id, row.xp)
        for user_id, row in sorted(stored(bot).items(), key=lambda item: (-item[1].xp, item[0]))
    ]


async def eventually(check: Callable[[], T | None], what: str, timeout: float = CATCH_UP) -> T:
    """Return ``check()`` once it is truthy (or not None); fail naming ``what`` after ``timeout``."""
    async with asyncio.timeout(timeout):
        while True:
            result = check()
            if result is not None and result is not False:
                return result
            await asyncio.sleep(0.05)  # a database file offers nothing to await
    raise AssertionError(f"timed out waiting for {what}")  # pragma: no cover - the timeout raises


async def stored_when(bot: RunningBot, check: Callable[[dict[int, Stored]], bool]) -> dict[int, Stored]:
    """Return the database's rows once they pass ``check`` (the writer flushes every 0.2 s)."""

    def rows() -> dict[int, Stored] | None:
        now = stored(bot)
        return now if check(now) else None

    return await eventually(rows, "the database to catch up")


async def stored_with(bot: RunningBot, member: Member) -> dict[int, Stored]:
    """Return the database's rows once ``member`` has one: every change made before theirs is in too."""
    return await stored_when(bot, lambda rows: member.id in rows)


# -- driving the bot --------------------------------------------------------------------------------------


def join(bot: RunningBot, name: str) -> Member:
    """Have a new member join the demo guild (each test chats with members of its own)."""
    return bot.demo.world.add_member(bot.demo.guild, name)


async def chat(bot: RunningBot, member: Member, count: int = 1) -> list[Message]:
    """Post ``count`` messages as ``member`` in #general, back to back."""
    return [
        await bot.sandbox.send_message(bot.demo.general, member, f"{member.user.username} says {number}")
        for number in range(count)
    ]


async def configure(bot: RunningBot, *, minimum: int, maximum: int, cooldown: int, xp: bool = True) -> None:
    """Set XP on or off, the XP range and the cooldown through /settings as the administrator."""
    changes: list[tuple[str, Mapping[str, object]]] = [
        ("xp", {"enabled": xp}),
        ("xp-range", {"minimum": minimum, "maximum": maximum}),
        ("cooldown", {"seconds": cooldown}),
    ]
    for setting, options in changes:
        reply = await bot.slash(f"settings set {setting}", bot.demo.admin, options=options)
        assert reply.content.startswith(("A message now", "A member now", "Members now", "Members no")), (
            reply.content
        )


@dataclass(frozen=True)
class Rank:
    """What /rank showed for a member."""

    level: int
    xp: int
    position: int
    of: int


async def rank(bot: RunningBot, member: Member) -> Rank | None:
    """Ask /rank for ``member`` (as the administrator); None when the bot says they have no XP yet."""
    response = await bot.slash("rank", bot.demo.admin, options={"member": member})
    if not response.embeds:
        assert response.content == f"<@{member.id}> has no XP yet.", response.content
        return None
    fields = {str(field["name"]): str(field["value"]) for field in response.embeds[0]["fields"]}  # type: ignore[attr-defined]
    position = RANK_RE.match(fields["Rank"])
    assert position, fields
    return Rank(int(fields["Level"]), int(fields["XP"]), int(position.group(1)), int(position.group(2)))


async def rank_shows(bot: RunningBot, member: Member, check: Callable[[Rank], bool]) -> Rank:
    """Ask /rank until its answer for ``member`` passes ``check``; return that answer."""
    async with asyncio.timeout(CATCH_UP):
        while True:
            shown = await rank(bot, member)
            if shown is not None and check(shown):
                return shown
            await asyncio.sleep(0.02)
    raise AssertionError("unreachable")  # pragma: no cover


async def has_earned(bot: RunningBot, member: Member) -> Rank:
    """Wait until /rank shows XP for ``member``: every message posted before theirs has been handled."""
    return await rank_shows(bot, member, lambda shown: shown.xp > 0)


async def leaderboard(bot: RunningBot) -> list[tuple[int, int, int, int]]:
    """Return every page of /leaderboard as ``(rank, user_id, level, xp)``, top first."""
    entries: list[tuple[int, int, int, int]] = []
    for page in range(1, 100):
        response = await bot.slash("leaderboard", bot.demo.admin, options={"page": page})
        if not response.embeds:
            assert response.content == f"Nobody is on page {page} yet.", response.content
            return entries
        lines = str(response.embeds[0]["description"]).splitlines()
        assert len(lines) <= 10
        for line in lines:
            match = ENTRY_RE.match(line)
            assert match, line
            entries.append((int(match[1]), int(match[2]), int(match[3]), int(match[4])))
    raise AssertionError("more than 99 pages")


def announcements_of(bot: RunningBot, member: Member) -> list[Message]:
    """Return the bot's level-up messages about ``member``, in any channel."""
    return [
        message
        for message in bot.sandbox.messages_after(0)
        if message.author.bot and message.content.startswith(f"<@{member.id}> reached level ")
    ]


# -- earning XP -------------------------------------------------------------------------------------------


async def test_chat_shows_in_rank_and_leaderboard_exactly_as_the_database_holds_it(bot: RunningBot) -> None:
    await configure(bot, minimum=30, maximum=60, cooldown=0)
    members = [join(bot, f"chatter{index}") for index in range(4)]
    sent = {member.id: index + 2 for index, member in enumerate(members)}
    for member in members:
        await chat(bot, member, sent[member.id])

    # Once the database counts every message, each award is in the bot's index too (an award updates the
    # index before it reaches the writer), so /rank, which reads the index, must show the very same XP.
    # (XP alone is no barrier: with 30 to 60 XP a message, part of the messages can already reach 30 * n.)
    rows = await stored_when(
        bot, lambda rows: all(m.id in rows and rows[m.id].messages == sent[m.id] for m in members)
    )
    shown = {member.id: await rank_shows(bot, member, lambda _: True) for member in members}
    for member in members:
        row, answer = rows[member.id], shown[member.id]
        assert answer.xp == row.xp
        assert 30 * row.messages <= row.xp <= 60 * row.messages
        assert answer.level == level_for(row.xp)
        assert answer.position == 1 + sum(other.xp > row.xp for other in rows.values())
        assert answer.of == len(rows)
    board = await leaderboard(bot)
    assert [(user_id, xp) for _, user_id, _, xp in board] == stored_order(bot)
    assert all(level == level_for(xp) for _, _, level, xp in board)
    assert [position for position, *_ in board] == [1 + sum(o > xp for *_, o in board) for *_, xp in board]
    assert {member.id for member in members} <= {user_id for _, user_id, _, _ in board}


async def levels_metrics(bot: RunningBot) -> dict[str, float]:
    """Return the levels counters of the bot's /metrics, by sample name."""
    async with aiohttp.ClientSession() as session, session.get(bot.http_url + "/metrics") as response:
        exposition = await response.text()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name.startswith("botops_levels_")
        or (sample.name == "botops_writer_flushes_total" and sample.labels == {"writer": "xp"})
    }


async def test_metrics_count_the_awards_their_xp_and_the_flushes(bot: RunningBot) -> None:
    await configure(bot, minimum=40, maximum=40, cooldown=0)
    member = join(bot, "counted")
    before = await levels_metrics(bot)

    await chat(bot, member, 3)
    await rank_shows(bot, member, lambda r: r.xp == 120)
    await stored_with(bot, member)

    after = await levels_metrics(bot)
    assert after["botops_levels_awards_total"] - before["botops_levels_awards_total"] == 3
    assert after["botops_levels_xp_total"] - before["botops_levels_xp_total"] == 120
    assert (
        after["botops_levels_level_ups_total"] - before["botops_levels_level_ups_total"] == 1
    )  # 0 -> 1 at 100
    assert after["botops_writer_flushes_total"] > before["botops_writer_flushes_total"]


async def test_three_quick_messages_earn_one_award_within_the_cooldown(bot: RunningBot) -> None:
    await configure(bot, minimum=15, maximum=25, cooldown=60)
    member, witness = join(bot, "hasty"), join(bot, "hasty-witness")

    await chat(bot, member, 3)
    await chat(bot, witness)

    await has_earned(bot, witness)
    rows = await stored_with(bot, witness)
    assert rows[member.id].messages == 1
    assert 15 <= rows[member.id].xp <= 25
    assert (await rank(bot, member)) == Rank(0, rows[member.id].xp, *_position(rows, member.id))


def _position(rows: Mapping[int, Stored], user_id: int) -> tuple[int, int]:
    return 1 + sum(other.xp > rows[user_id].xp for other in rows.values()), len(rows)


async def test_messages_of_bots_earn_nothing(bot: RunningBot) -> None:
    await configure(bot, minimum=15, maximum=25, cooldown=0)
    world, guild = bot.demo.world, bot.demo.guild
    other_bot = world.add_member(guild, world.add_user("another-bot", bot=True))
    witness = join(bot, "bots-witness")
    # The bot's own /rank answers are messages in #general that it receives back through the gateway.
    assert await rank(bot, witness) is None

    await chat(bot, other_bot, 3)
    await chat(bot, witness)

    await has_earned(bot, witness)
    rows = await stored_with(bot, witness)
    assert any(
        m.author.id == world.bot.id and m.channel_id == bot.demo.general.id
        for m in bot.sandbox.messages_after(0)
    )
    assert other_bot.id not in rows
    assert world.bot.id not in rows
    assert await rank(bot, other_bot) is None


async def test_direct_messages_earn_nothing(bot: RunningBot) -> None:
    await configure(bot, minimum=15, maximum=25, cooldown=0)
    member, witness = join(bot, "whisperer"), join(bot, "dm-witness")
    direct = bot.demo.world.dm_channel(member.user)

    for number in range(3):
        await bot.sandbox.send_message(direct, member.user, f"psst {number}")
    await chat(bot, witness)

    await has_earned(bot, witness)
    rows = await stored_with(bot, witness)
    assert member.id not in rows
    assert await rank(bot, member) is None


async def test_turning_xp_off_stops_awards_from_the_next_message_on(bot: RunningBot) -> None:
    await configure(bot, minimum=15, maximum=25, cooldown=0)
    member, witness = join(bot, "muted"), join(bot, "muted-witness")

    await configure(bot, minimum=15, maximum=25, cooldown=0, xp=False)
    await chat(bot, member, 2)
    await configure(bot, minimum=15, maximum=25, cooldown=0, xp=True)
    await chat(bot, witness)

    await has_earned(bot, witness)
    rows = await stored_with(bot, witness)
    assert member.id not in rows
    assert await rank(bot, member) is None


# -- level-ups --------------------------------------------------------------------------------------------


async def test_a_level_up_is_announced_once_mentioning_only_the_member(bot: RunningBot) -> None:
    await configure(bot, minimum=100, maximum=100, cooldown=0)
    member = join(bot, "climber")
    since = len(bot.sandbox.requests)

    await chat(bot, member)  # 100 XP: level 1
    await chat(bot, member)  # 200 XP: still level 1 (level 2 takes 255)
    await chat(bot, member)  # 300 XP: level 2
    # The announcements leave in order: once level 2's is here (and a /rank later), so is any other.
    await eventually(lambda: len(announcements_of(bot, member)) >= 2, "the level 2 announcement")
    await rank_shows(bot, member, lambda shown: shown.xp == 300)

    first, second = announcements_of(bot, member)
    assert (first.content, second.content) == (
        f"<@{member.id}> reached level 1!",
        f"<@{member.id}> reached level 2!",
    )
    assert first.channel_id == bot.demo.general.id
    assert (first.mentions, first.mention_roles, first.mention_everyone) == ([member.user], [], False)
    [request] = [
        r
        for r in bot.sandbox.requests[since:]
        if r.method == "POST" and (r.body or {}).get("content") == first.content
    ]
    allowed = request.body["allowed_mentions"]
    assert (allowed.get("parse"), [int(user) for user in allowed.get("users", [])]) == ([], [member.id])


async def test_a_role_reward_is_given_on_reaching_its_level_and_not_before(bot: RunningBot) -> None:
    await configure(bot, minimum=100, maximum=100, cooldown=0)
    world, guild = bot.demo.world, bot.demo.guild
    reward = world.add_role(guild, "Level two")
    # A role of the bot's above the reward, so the bot may give it (its managed role keeps Manage Roles).
    bot_member = guild.members[world.bot.id]
    above = world.add_role(guild, "Bot above rewards")
    world.set_member_roles(guild, bot_member, [*(guild.roles[r] for r in bot_member.roles), above])
    reply = await bot.slash("settings set reward", bot.demo.admin, options={"level": 2, "role": reward})
    assert reply.content == f"Members who reach level 2 now get <@&{reward.id}>."
    member = join(bot, "rewarded")

    await chat(bot, member, 2)  # 200 XP: level 1
    await eventually(lambda: announcements_of(bot, member) or None, "the level 1 announcement")
    await rank_shows(bot, member, lambda shown: shown.xp == 200)
    assert reward.id not in guild.members[member.id].roles
    await chat(bot, member)  # 300 XP: level 2

    given = await bot.sandbox.wait_for_request(
        "PUT", rf"^/guilds/{guild.id}/members/{member.id}/roles/{reward.id}$", timeout=CATCH_UP
    )
    assert reward.id in guild.members[member.id].roles
    # The bot announces a level-up before it gives its rewards: the role came with level 2, not level 1.
    [level_two] = [
        index
        for index, request in enumerate(bot.sandbox.requests)
        if request.method == "POST"
        and (request.body or {}).get("content") == f"<@{member.id}> reached level 2!"
    ]
    assert level_two < bot.sandbox.requests.index(given)


# -- /xp --------------------------------------------------------------------------------------------------


async def test_xp_set_above_the_bound_is_refused_in_one_sentence_and_changes_nothing(bot: RunningBot) -> None:
    member, witness = join(bot, "bounded"), join(bot, "bounded-witness")
    await bot.slash("xp add", bot.demo.admin, options={"member": member, "amount": 100})
    await eventually(lambda: stored(bot).get(member.id), "the first change in the database")

    reply = await bot.slash("xp set", bot.demo.admin, options={"member": member, "amount": 5000})
    await bot.slash("xp add", bot.demo.admin, options={"member": witness, "amount": 1})

    assert reply.ephemeral
    assert reply.content == "You can change XP by at most 1000 at once."
    shown = await rank(bot, member)
    assert shown is not None
    assert shown.xp == 100
    rows = await stored_with(bot, witness)
    assert rows[member.id] == Stored(100, 0)


async def test_xp_add_then_remove_shows_the_difference_in_rank_the_database_and_the_audit_log(
    bot: RunningBot,
) -> None:
    member = join(bot, "adjusted")

    added = await bot.slash("xp add", bot.demo.admin, options={"member": member, "amount": 50})
    removed = await bot.slash("xp remove", bot.demo.admin, options={"member": member, "amount": 20})

    assert (added.content, removed.content) == (
        f"<@{member.id}> now has 50 XP (level 0).",
        f"<@{member.id}> now has 30 XP (level 0).",
    )
    shown = await rank(bot, member)
    assert shown is not None
    assert shown.xp == 30
    assert (await stored_when(bot, lambda rows: rows.get(member.id) == Stored(30, 0)))[
        member.id
    ].messages == 0
    log = bot.logs()["botops.log"]
    admin, guild = bot.demo.admin.id, bot.demo.guild.id
    assert f"audit: user {admin} did xp add 50 for member {member.id} of guild {guild}: 0 -> 50" in log
    assert f"audit: user {admin} did xp remove 20 for member {member.id} of guild {guild}: 50 -> 30" in log


# -- shutdown ---------------------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def restarted(running: RunningBot) -> AsyncIterator[RunningBot]:
    """Start the bot again in the same folder (same database) on the same sandbox; SIGTERM it at the end."""
    sandbox, log_dir = running.sandbox, running.folder / "logs-restart"
    since = len(sandbox.requests)
    environment = bot_environment(sandbox, running.demo, running.folder, log_dir, {})
    process = await spawn_bot(running.folder, environment, name="restart")
    again = RunningBot(sandbox, running.demo, running.folder, log_dir, process)
    try:
        await sandbox.wait_for_request(
            "PUT", rf"/applications/\d+/guilds/{running.demo.guild.id}/commands", timeout=30.0, since=since
        )
        await eventually(lambda: any(READY_LINE in text for text in again.logs().values()), "ready", 30.0)
        yield again
    finally:
        code = await process.stop()
    assert code == 0, process.stderr()


async def test_sigterm_writes_every_award_rank_showed_and_a_restart_shows_the_same(tmp_path: Path) -> None:
    async with running_bot(tmp_path, extra={"XP_FLUSH_INTERVAL": "60"}) as running:
        await configure(running, minimum=15, maximum=25, cooldown=0)
        members = [*running.demo.members, running.demo.moderator]
        for count, member in enumerate(members, start=1):
            await chat(running, member, count)
        witness = running.demo.admin
        await chat(running, witness)
        await has_earned(running, witness)
        shown = {member.id: await rank(running, member) for member in [*members, witness]}
        assert not any(user_id in stored(running) for user_id in shown), "flushed before SIGTERM"

        code = await running.bot.stop(signal.SIGTERM)

        assert code == 0, running.bot.stderr()
        rows = stored(running)
        assert {user_id: rows[user_id].xp for user_id in shown} == {
            user_id: answer.xp for user_id, answer in shown.items() if answer is not None
        }
        assert [rows[member.id].messages for member in members] == list(range(1, len(members) + 1))
        async with restarted(running) as again:
            assert {user_id: await rank(again, _member(again, user_id)) for user_id in shown} == shown


def _member(bot: RunningBot, user_id: int) -> Member:
    return bot.demo.guild.members[user_id]
