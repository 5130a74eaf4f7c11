"""End-to-end flows of an unmodified discord.py bot against the sandbox, over real HTTP and WebSocket.

Each test starts a small ``commands.Bot`` (built by :func:`build_bot`) with ``run_bot`` and drives it
the way Discord would: login, command sync, READY, slash commands and their responses, prefix
commands, member chunking, intents and sharding. Faults and reconnects live in test_bot_resilience.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import discord
import pytest
from discord.ext import commands

from botops.sandbox import DemoWorld, Sandbox, Session
from botops.testing import run_bot
from tests.sandbox.bots import eventually, own_sandbox, running

T = TypeVar("T")

EPHEMERAL = 64


class FlowBot(commands.Bot):
    """A bot that syncs its slash commands at startup and remembers every message it saw."""

    def __init__(self, intents: discord.Intents, **options: Any) -> None:
        super().__init__(
            command_prefix="!", intents=intents, help_command=None, guild_ready_timeout=0.05, **options
        )
        self.seen: list[discord.Message] = []
        self.readies = 0

    async def setup_hook(self) -> None:
        await self.tree.sync()

    async def on_ready(self) -> None:
        self.readies += 1

    async def on_message(self, message: discord.Message) -> None:
        self.seen.append(message)
        await self.process_commands(message)


def build_bot(*, intents: discord.Intents | None = None, sharded: bool = False, **options: Any) -> FlowBot:
    """Return a bot with the slash and prefix commands these tests invoke."""
    if intents is None:
        intents = discord.Intents.default()
        intents.members = True
        intents.message_content = True
    bot = _ShardedFlowBot(intents, **options) if sharded else FlowBot(intents, **options)

    @bot.tree.command(description="Show a card")
    async def card(interaction: discord.Interaction) -> None:
        embed = discord.Embed(title="Sandbox card", description="Rendered by the bot", colour=0x2ECC71)
        embed.add_field(name="guild", value=interaction.guild.name if interaction.guild else "none")
        await interaction.response.send_message(embed=embed)

    @bot.tree.command(description="Whisper to the caller")
    async def secret(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("only you can see this", ephemeral=True)

    @bot.tree.command(description="Think first, answer later")
    async def slow(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        await interaction.followup.send("done thinking")

    @bot.tree.command(description="Answer, then correct the answer")
    async def revise(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("first draft")
        await interaction.edit_original_response(content="final answer")

    @bot.command()
    async def hello(ctx: commands.Context[FlowBot]) -> None:
        await ctx.reply(f"hello {ctx.author.name}")

    return bot


class _ShardedFlowBot(commands.AutoShardedBot, FlowBot):
    """The same bot, running every shard Discord recommends in one process."""

    def __init__(self, intents: discord.Intents, **options: Any) -> None:
        # AutoShardedBot comes first for the client, FlowBot for the constructor's arguments.
        FlowBot.__init__(self, intents, **options)

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        # The default waits 5 s between shards for Discord's identify limit; the sandbox has none.
        return None


# -- login and startup ------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_login_fetches_the_bot_user_with_its_token(sandbox: Sandbox, demo: DemoWorld) -> None:
    bot = build_bot()
    async with running(bot, sandbox, demo):
        assert bot.user is not None
        assert bot.user.id == demo.world.bot.id
        assert bot.application_id == demo.world.application.id
        login = await sandbox.wait_for_request("GET", r"^/users/@me$")
        assert login.status == 200


@pytest.mark.asyncio
async def test_command_sync_registers_the_slash_commands(sandbox: Sandbox, demo: DemoWorld) -> None:
    bot = build_bot()
    async with running(bot, sandbox, demo):
        sync = await sandbox.wait_for_request("PUT", r"^/applications/\d+/commands$")
        assert sync.status == 200
        assert set(sandbox.commands.global_commands) == {"card", "secret", "slow", "revise"}
        assert sorted(c["name"] for c in sync.response) == ["card", "revise", "secret", "slow"]


@pytest.mark.asyncio
async def test_ready_puts_the_guild_with_its_channels_and_roles_in_the_cache(
    sandbox: Sandbox, demo: DemoWorld
) -> None:
    bot = build_bot()
    async with running(bot, sandbox, demo):
        await eventually(lambda: bot.readies, "on_ready")
        guild = bot.get_guild(demo.guild.id)
        assert guild is not None
        assert guild.name == demo.guild.name
        assert {c.id for c in guild.channels} == set(demo.guild.channels)
        assert {r.id for r in guild.roles} == set(demo.guild.roles)
        assert guild.get_channel(demo.general.id).name == "general"  # type: ignore[union-attr]


# -- slash commands ---------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_slash_command_is_answered_with_an_embed(sandbox: Sandbox, demo: DemoWorld) -> None:
    bot = build_bot()
    async with running(bot, sandbox, demo):
        result = await sandbox.invoke_slash("card", member=demo.admin, channel=demo.general)
        response = await result.response()
        assert response.type == 4
        assert [(e["title"], e["fields"][0]["value"]) for e in response.embeds] == [
            ("Sandbox card", demo.guild.name)
        ]
        assert result.message is not None
        assert result.message.id in demo.general.messages


@pytest.mark.asyncio
async def test_ephemeral_reply_is_flagged_and_kept_out_of_the_channel(
    sandbox: Sandbox, demo: DemoWorld
) -> None:
    bot = build_bot()
    async with running(bot, sandbox, demo):
        result = await sandbox.invoke_slash("secret", member=demo.members[0], channel=demo.general)
        response = await result.response()
        assert response.ephemeral
        assert response.message is not None
        assert response.message.flags & EPHEMERAL
        assert response.content == "only you can see this"
        assert response.message.id not in demo.general.messages
        assert all(m.content != "only you can see this" for m in demo.general.history())


@pytest.mark.asyncio
async def test_deferred_reply_becomes_the_followup_answer(sandbox: Sandbox, demo: DemoWorld) -> None:
    bot = build_bot()
    async with running(bot, sandbox, demo):
        result = await sandbox.invoke_slash("slow", member=demo.admin, channel=demo.general)
        response = await result.response()
        assert response.deferred
        callback = await sandbox.wait_for_request("POST", rf"^/interactions/{result.id}/[^/]+/callback$")
        assert callback.response["interaction"]["response_message_loading"] is True
        assert response.message is not None
        thinking_id = response.message.id
        final = await result.final_message()
        assert (final.id, final.content) == (thinking_id, "done thinking")
        assert demo.general.messages[thinking_id].content == "done thinking"


@pytest.mark.asyncio
async def test_editing_the_original_response_changes_the_stored_message(
    sandbox: Sandbox, demo: DemoWorld
) -> None:
    bot = build_bot()
    async with running(bot, sandbox, demo):
        result = await sandbox.invoke_slash("revise", member=demo.admin, channel=demo.general)
        await result.response()
        edit = await sandbox.wait_for_request("PATCH", r"^/webhooks/\d+/[^/]+/messages/@original$")
        assert edit.status == 200
        assert result.message is not None
        stored = demo.general.messages[result.message.id]
        assert stored.content == "final answer"
        assert stored.edited_timestamp is not None


# -- messages and intents ---------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_prefix_command_reply_is_stored_in_the_channel(sandbox: Sandbox, demo: DemoWorld) -> None:
    bot = build_bot()
    async with running(bot, sandbox, demo):
        await sandbox.send_message(demo.general, demo.members[1], "!hello")
        await sandbox.wait_for_request("POST", rf"^/channels/{demo.general.id}/messages$")
        replies = [m for m in demo.general.history() if m.author.id == demo.world.bot.id]
        assert [m.content for m in replies] == [f"hello {demo.members[1].user.username}"]


@pytest.mark.asyncio
async def test_prefix_command_reply_references_the_command_message(sandbox: Sandbox, demo: DemoWorld) -> None:
    bot = build_bot()
    async with running(bot, sandbox, demo):
        command = await sandbox.send_message(demo.general, demo.members[1], "!hello")
        own = await eventually(lambda: [m for m in bot.seen if m.author == bot.user], "the bot's own reply")
        assert own[0].type is discord.MessageType.reply
        assert own[0].reference is not None
        assert own[0].reference.message_id == command.id
        assert isinstance(own[0].reference.resolved, discord.Message)
        assert own[0].reference.resolved.content == "!hello"


@pytest.mark.asyncio
async def test_member_chunking_caches_every_member(sandbox: Sandbox, demo: DemoWorld) -> None:
    bot = build_bot()
    async with running(bot, sandbox, demo):
        guild = bot.get_guild(demo.guild.id)
        assert guild is not None
        assert guild.chunked
        assert {m.id for m in guild.members} == set(demo.guild.members)


@pytest.mark.asyncio
async def test_without_member_intent_only_the_bot_is_cached(sandbox: Sandbox, demo: DemoWorld) -> None:
    bot = build_bot(intents=discord.Intents.default())
    async with running(bot, sandbox, demo):
        guild = bot.get_guild(demo.guild.id)
        assert guild is not None
        assert [m.id for m in guild.members] == [demo.world.bot.id]


@pytest.mark.asyncio
async def test_without_message_content_intent_only_mentions_carry_content(
    sandbox: Sandbox, demo: DemoWorld
) -> None:
    bot = build_bot(intents=discord.Intents.default())
    async with running(bot, sandbox, demo):
        await sandbox.send_message(demo.general, demo.members[0], "nobody asked the bot")
        await sandbox.send_message(demo.general, demo.members[0], f"{demo.world.bot.mention} hi")
        seen = await eventually(lambda: bot.seen if len(bot.seen) >= 2 else None, "two messages")
        assert [m.content for m in seen] == ["", f"{demo.world.bot.mention} hi"]


@pytest.mark.asyncio
async def test_refused_privileged_intents_raise_privileged_intents_required(demo: DemoWorld) -> None:
    async with own_sandbox(demo, allowed_privileged_intents=0) as server:
        with pytest.raises(discord.PrivilegedIntentsRequired):
            async with run_bot(build_bot(), server):
                pass


# -- sharding ---------------------------------------------------------------------------------------


def shard_of(guild_id: int, shard_count: int) -> int:
    """Discord's rule for which shard receives a guild."""
    return (guild_id >> 22) % shard_count


def guilds_on_both_shards(demo: DemoWorld) -> None:
    """Add guilds to the demo world until each of two shards has one (guild ids are time-based)."""
    while len({shard_of(g, 2) for g in demo.world.guilds}) < 2:
        demo.world.add_guild(f"guild {len(demo.world.guilds) + 1}")


def guild_creates_sent(session: Session) -> set[int]:
    """Return the ids of the guilds the sandbox sent ``session`` a GUILD_CREATE for."""
    events = [json.loads(frame) for _, frame in session.buffer]
    return {int(e["d"]["id"]) for e in events if e["t"] == "GUILD_CREATE"}


@pytest.mark.asyncio
async def test_auto_sharded_bot_takes_the_recommended_shard_count(demo: DemoWorld) -> None:
    async with own_sandbox(demo, recommended_shards=2) as server:
        bot = build_bot(sharded=True)
        async with running(bot, server, demo):
            gateway = await server.wait_for_request("GET", r"^/gateway/bot$")
            assert gateway.response["shards"] == 2
            assert bot.shard_count == 2
            assert sorted(s.shard_id for s in server.sessions) == [0, 1]


@pytest.mark.asyncio
async def test_each_shard_gets_the_guilds_whose_id_maps_to_it(demo: DemoWorld) -> None:
    guilds_on_both_shards(demo)
    async with own_sandbox(demo, recommended_shards=2) as server:
        bot = build_bot(sharded=True, shard_count=2)
        async with running(bot, server, demo):
            assert {g.id for g in bot.guilds} == set(demo.world.guilds)
            assert sorted(s.shard_id for s in server.sessions) == [0, 1]
            for session in server.sessions:
                expected = {g for g in demo.world.guilds if shard_of(g, 2) == session.shard_id}
                assert guild_creates_sent(session) == expected


# -- runtime changes to the guild -------------------------------------------------------------------


@pytest.mark.asyncio
async def test_member_join_reaches_the_cache(sandbox: Sandbox, demo: DemoWorld) -> None:
    bot = build_bot()
    joined: list[discord.Member] = []
    bot.add_listener(_recorder(joined), "on_member_join")
    async with running(bot, sandbox, demo):
        newcomer = demo.world.add_member(demo.guild, "frank", roles=[demo.moderator_role])
        member = (await eventually(lambda: joined, "on_member_join"))[0]
        assert member.id == newcomer.id
        cached = bot.get_guild(demo.guild.id).get_member(newcomer.id)  # type: ignore[union-attr]
        assert cached is not None
        assert [r.id for r in cached.roles[1:]] == [demo.moderator_role.id]


@pytest.mark.asyncio
async def test_member_leave_removes_the_member_from_the_cache(sandbox: Sandbox, demo: DemoWorld) -> None:
    bot = build_bot()
    left: list[discord.Member] = []
    bot.add_listener(_recorder(left), "on_member_remove")
    async with running(bot, sandbox, demo):
        leaver = demo.members[2]
        demo.world.remove_member(demo.guild, leaver)
        await eventually(lambda: left, "on_member_remove")
        assert [m.id for m in left] == [leaver.id]
        assert bot.get_guild(demo.guild.id).get_member(leaver.id) is None  # type: ignore[union-attr]


@pytest.mark.asyncio
async def test_member_role_change_reaches_the_cache(sandbox: Sandbox, demo: DemoWorld) -> None:
    bot = build_bot()
    updates: list[tuple[discord.Member, discord.Member]] = []

    async def on_member_update(before: discord.Member, after: discord.Member) -> None:
        updates.append((before, after))

    bot.add_listener(on_member_update)
    async with running(bot, sandbox, demo):
        promoted = demo.members[0]
        demo.world.set_member_roles(demo.guild, promoted, [demo.moderator_role])
        before, after = (await eventually(lambda: updates, "on_member_update"))[0]
        assert (before.id, [r.id for r in before.roles[1:]]) == (promoted.id, [])
        assert [r.id for r in after.roles[1:]] == [demo.moderator_role.id]
        cached = bot.get_guild(demo.guild.id).get_member(promoted.id)  # type: ignore[union-attr]
        assert cached is not None
        assert cached.get_role(demo.moderator_role.id) is not None


@pytest.mark.asyncio
async def test_new_role_reaches_the_cache(sandbox: Sandbox, demo: DemoWorld) -> None:
    bot = build_bot()
    created: list[discord.Role] = []
    bot.add_listener(_recorder(created), "on_guild_role_create")
    async with running(bot, sandbox, demo):
        role = demo.world.add_role(demo.guild, "Helper", permissions=0, color=0x00FF00)
        await eventually(lambda: created, "on_guild_role_create")
        cached = bot.get_guild(demo.guild.id).get_role(role.id)  # type: ignore[union-attr]
        assert cached is not None
        assert (cached.name, cached.colour.value) == ("Helper", 0x00FF00)


def _recorder(into: list[Any]) -> Callable[[Any], Any]:
    async def record(item: Any) -> None:
        into.append(item)

    return record


# -- gateway compression ----------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_gateway_uses_zstd_stream_when_zstandard_is_installed(
    sandbox: Sandbox, demo: DemoWorld
) -> None:
    bot = build_bot()
    async with running(bot, sandbox, demo):
        session = await sandbox.wait_until_ready()
        assert session.connection is not None
        assert session.connection.compression == "zstd-stream"
        result = await sandbox.invoke_slash("card", member=demo.admin, channel=demo.general)
        assert (await result.response()).embeds


@pytest.mark.asyncio
async def test_gateway_falls_back_to_text_frames(demo: DemoWorld) -> None:
    bot = build_bot()
    async with own_sandbox(demo, compression=()) as server, running(bot, server, demo):
        session = await server.wait_until_ready()
        assert session.connection is not None
        assert session.connection.compression == "text"
        result = await server.invoke_slash("card", member=demo.admin, channel=demo.general)
        assert (await result.response()).embeds


# discord.py asks for zlib-stream only when zstandard cannot be imported, which a process decides once.
_ZLIB_BOT = """
import asyncio, os, sys
sys.modules["zstandard"] = None
import discord
from botops.endpoints import redirect_discord

redirect_discord(os.environ["DISCORD_API_BASE"], os.environ["DISCORD_GATEWAY_URL"], environment="development")
client = discord.Client(intents=discord.Intents.default(), guild_ready_timeout=0.05)

@client.event
async def on_ready():
    print("ready", [g.name for g in client.guilds], flush=True)
    await asyncio.to_thread(sys.stdin.read)  # stay connected until the test closes stdin
    await client.close()

asyncio.run(client.start(os.environ["DISCORD_TOKEN"]))
"""


@pytest.mark.asyncio
async def test_gateway_speaks_zlib_stream_to_a_bot_without_zstandard(
    sandbox: Sandbox, demo: DemoWorld
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _ZLIB_BOT,
        env={**os.environ, **sandbox.environment()},
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    compression = None
    try:
        async with asyncio.timeout(20):
            line = await process.stdout.readline()
            if line:
                session = await sandbox.wait_until_ready()
                compression = session.connection.compression if session.connection else None
    finally:
        process.stdin.close()  # the bot leaves when its stdin closes
        try:
            async with asyncio.timeout(10):
                _, errors = await process.communicate()
        except TimeoutError:
            process.kill()
            _, errors = await process.communicate()
    assert line.decode().strip() == f"ready {[demo.guild.name]}", errors.decode()
    assert compression == "zlib-stream"
    assert process.returncode == 0, errors.decode()
