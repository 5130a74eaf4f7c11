"""An unmodified discord.py bot surviving what Discord does to it: faults, reconnects and rate limits.

Each test starts a small ``commands.Bot`` (built by :func:`build_bot`) against the sandbox, breaks the
gateway or a REST route with ``sandbox.faults``, and checks that the bot recovers the way discord.py is
meant to: RESUME with the missed events replayed, a fresh IDENTIFY when the session is gone, a retry
after a 429 or a 5xx, and a clear error when the token is wrong.
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeVar

import discord
import pytest
from discord.ext import commands

from botops.endpoints import redirect_discord, restore_discord
from botops.sandbox import DemoWorld, Sandbox, Session
from tests.sandbox.bots import eventually, own_sandbox, running

T = TypeVar("T")

MESSAGES = r"^/channels/\d+/messages$"


class ResilientBot(commands.Bot):
    """A bot that records what reached it, and identifies again without discord.py's 5 s pause."""

    def __init__(self, **options: Any) -> None:
        intents = discord.Intents.default()
        intents.message_content = True
        super().__init__(
            command_prefix="!", intents=intents, help_command=None, guild_ready_timeout=0.05, **options
        )
        self.seen: list[discord.Message] = []
        self.resumed = 0
        self.readies = 0

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        # discord.py sleeps 5 s before every IDENTIFY after the first, for Discord's identify limit.
        return None

    async def on_ready(self) -> None:
        self.readies += 1

    async def on_resumed(self) -> None:
        self.resumed += 1

    async def on_message(self, message: discord.Message) -> None:
        self.seen.append(message)
        await self.process_commands(message)


def build_bot(**options: Any) -> ResilientBot:
    """Return a bot with the prefix command these tests use to make it send a message."""
    bot = ResilientBot(**options)

    @bot.command()
    async def echo(ctx: commands.Context[ResilientBot], *, text: str) -> None:
        await ctx.send(text)

    return bot


def seen_contents(bot: ResilientBot) -> list[str]:
    """Return the content of every message the bot saw, in order."""
    return [m.content for m in bot.seen]


async def assert_resumed_with_replay(sandbox: Sandbox, bot: ResilientBot, session: Session) -> None:
    """Check that the bot resumed ``session`` (no new IDENTIFY) and got the message sent while it was away."""
    await eventually(lambda: bot.resumed, "on_resumed")
    await eventually(lambda: "while you were away" in seen_contents(bot), "the replayed message")
    assert seen_contents(bot).count("while you were away") == 1
    assert session.resumes == 1
    assert sandbox.gateway.identifies == 1
    assert [s.id for s in sandbox.sessions] == [session.id]


# -- RESUME -----------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_close_4000_resumes_and_replays_the_missed_message(sandbox: Sandbox, demo: DemoWorld) -> None:
    bot = build_bot()
    async with running(bot, sandbox, demo):
        session = await sandbox.wait_until_ready()
        assert await sandbox.faults.close(4000) == 1
        await sandbox.send_message(demo.general, demo.members[0], "while you were away")
        await assert_resumed_with_replay(sandbox, bot, session)


@pytest.mark.asyncio
async def test_dropped_connection_resumes_and_replays_the_missed_message(
    sandbox: Sandbox, demo: DemoWorld
) -> None:
    bot = build_bot()
    async with running(bot, sandbox, demo):
        session = await sandbox.wait_until_ready()
        assert sandbox.faults.drop() == 1
        await sandbox.send_message(demo.general, demo.members[0], "while you were away")
        await assert_resumed_with_replay(sandbox, bot, session)


@pytest.mark.asyncio
async def test_a_held_hello_keeps_the_bot_waiting_then_it_resumes_on_release(
    sandbox: Sandbox, demo: DemoWorld
) -> None:
    bot = build_bot()
    async with running(bot, sandbox, demo):
        session = await sandbox.wait_until_ready()
        sandbox.faults.hold_hello()
        assert sandbox.faults.drop() == 1
        await eventually(lambda: len(sandbox.gateway.connections) == 1, "the bot's new connection")
        await sandbox.send_message(demo.general, demo.members[0], "while you were away")
        await asyncio.sleep(0.3)  # time the bot would need to resume, had it its HELLO
        assert not bot.resumed
        sandbox.faults.hold_hello(False)
        await assert_resumed_with_replay(sandbox, bot, session)


@pytest.mark.asyncio
async def test_reconnect_request_resumes_and_replays_the_missed_message(
    sandbox: Sandbox, demo: DemoWorld
) -> None:
    bot = build_bot()
    async with running(bot, sandbox, demo):
        session = await sandbox.wait_until_ready()
        assert sandbox.faults.reconnect() == 1
        await sandbox.send_message(demo.general, demo.members[0], "while you were away")
        await assert_resumed_with_replay(sandbox, bot, session)


@pytest.mark.asyncio
async def test_invalid_session_leads_to_a_fresh_identify(sandbox: Sandbox, demo: DemoWorld) -> None:
    bot = build_bot()
    async with running(bot, sandbox, demo):
        first = await sandbox.wait_until_ready()
        assert sandbox.faults.invalidate(resumable=False) == 1
        await eventually(lambda: bot.readies >= 2, "a second on_ready")
        second = await sandbox.wait_until_ready()
        assert second.id != first.id
        assert (sandbox.gateway.identifies, sandbox.gateway.resumes, bot.resumed) == (2, 0, 0)
        await sandbox.send_message(demo.general, demo.members[0], "on the new session")
        await eventually(lambda: "on the new session" in seen_contents(bot), "a message on the new session")


@pytest.mark.asyncio
async def test_zombied_connection_is_closed_and_resumed(demo: DemoWorld) -> None:
    async with own_sandbox(demo, heartbeat_interval_ms=300) as server:
        bot = build_bot(heartbeat_timeout=1.5)
        async with running(bot, server, demo):
            session = await server.wait_until_ready()
            server.faults.drop_heartbeat_acks(True)
            # Nothing arrives any more, so discord.py gives up on the socket after heartbeat_timeout
            # and resumes; acks come back before the resumed socket can go quiet for that long.
            await eventually(lambda: bot.resumed, "on_resumed")
            server.faults.drop_heartbeat_acks(False)
            assert (session.resumes, server.gateway.identifies) == (1, 1)
            assert session.connection is not None


# -- REST faults ------------------------------------------------------------------------------------


def statuses(sandbox: Sandbox, method: str, path: str) -> list[int]:
    """Return the statuses the sandbox answered ``method path`` with, in order."""
    return [r.status for r in sandbox.requests if r.method == method and r.path == path]


async def send_as_bot(demo: DemoWorld, bot: ResilientBot, text: str) -> None:
    """Have the bot send ``text`` to #general through discord.py's own HTTP client."""
    channel = bot.get_channel(demo.general.id)
    assert isinstance(channel, discord.TextChannel)
    await asyncio.wait_for(channel.send(text), timeout=10)


@pytest.mark.asyncio
async def test_rate_limited_send_is_waited_out_and_retried(sandbox: Sandbox, demo: DemoWorld) -> None:
    bot = build_bot()
    async with running(bot, sandbox, demo):
        sandbox.faults.rate_limit("POST", MESSAGES, retry_after=0.3)
        await send_as_bot(demo, bot, "after the limit")
        assert statuses(sandbox, "POST", f"/channels/{demo.general.id}/messages") == [429, 200]
        assert [m.content for m in demo.general.history()] == ["after the limit"]


@pytest.mark.asyncio
async def test_global_rate_limit_is_waited_out_and_retried(sandbox: Sandbox, demo: DemoWorld) -> None:
    bot = build_bot()
    async with running(bot, sandbox, demo):
        sandbox.faults.rate_limit("POST", MESSAGES, retry_after=0.3, is_global=True)
        await send_as_bot(demo, bot, "after the global limit")
        limited = await sandbox.wait_for_request("POST", MESSAGES, lambda r: r.status == 429)
        assert limited.response["global"] is True
        assert statuses(sandbox, "POST", f"/channels/{demo.general.id}/messages") == [429, 200]
        assert [m.content for m in demo.general.history()] == ["after the global limit"]


@pytest.mark.asyncio
async def test_server_error_is_retried(sandbox: Sandbox, demo: DemoWorld) -> None:
    bot = build_bot()
    async with running(bot, sandbox, demo):
        sandbox.faults.server_error("POST", MESSAGES, status=500)
        await send_as_bot(demo, bot, "after the outage")
        assert statuses(sandbox, "POST", f"/channels/{demo.general.id}/messages") == [500, 200]
        assert [m.content for m in demo.general.history()] == ["after the outage"]


@pytest.mark.asyncio
async def test_prefix_command_reply_survives_a_rate_limit(sandbox: Sandbox, demo: DemoWorld) -> None:
    bot = build_bot()
    async with running(bot, sandbox, demo):
        sandbox.faults.rate_limit("POST", MESSAGES, retry_after=0.2)
        await sandbox.send_message(demo.general, demo.admin, "!echo still here")
        await sandbox.wait_for_request("POST", MESSAGES, lambda r: r.status == 200)
        replies = [m.content for m in demo.general.history() if m.author.id == demo.world.bot.id]
        assert replies == ["still here"]


# -- login ------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_wrong_token_raises_login_failure(sandbox: Sandbox, demo: DemoWorld) -> None:
    wrong = sandbox.token[::-1]
    redirect_discord(sandbox.api_base, sandbox.gateway_url, environment="development")
    try:
        async with build_bot() as bot:
            with pytest.raises(discord.LoginFailure):
                await bot.start(wrong)
    finally:
        restore_discord()
    login = await sandbox.wait_for_request("GET", r"^/users/@me$")
    assert login.status == 401
    assert sandbox.sessions == []
