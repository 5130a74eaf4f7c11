"""Tests for the sandbox's HTTP control plane under ``/_sandbox/`` and the ``botops sandbox`` command.

Everything goes through HTTP with aiohttp, as a shell script or a demo in another process would drive
the sandbox. Flows that need a bot answering run a small discord.py ``commands.Bot`` in-process.
"""

from __future__ import annotations

import asyncio
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import discord
import pytest
import pytest_asyncio
from discord import app_commands
from discord.ext import commands

from botops.sandbox import DemoWorld, Sandbox, control
from botops.testing import run_bot

CONTROL = "/_sandbox"
JSON = "application/json"
CHANGING_METHODS = ("POST", "PATCH", "PUT", "DELETE")


# -- helpers and fixtures ---------------------------------------------------------------------------------


async def call(
    http: aiohttp.ClientSession,
    method: str,
    path: str,
    body: Any = None,
    *,
    params: dict[str, str] | None = None,
    data: str | None = None,
) -> tuple[int, Any]:
    """Call a control endpoint (saying JSON, as the plane requires); every answer must be JSON."""
    headers = {"Content-Type": JSON} if method in CHANGING_METHODS else None
    async with http.request(
        method, CONTROL + path, json=body, params=params, data=data, headers=headers
    ) as response:
        assert response.content_type == JSON
        return response.status, await response.json()


async def discord_call(http: aiohttp.ClientSession, sandbox: Sandbox, method: str, path: str) -> int:
    """Call the sandbox's Discord REST API as the bot would; return the status."""
    headers = {"Authorization": f"Bot {sandbox.token}"}
    async with http.request(method, "/api/v10" + path, headers=headers) as response:
        return response.status


class SandboxBot(commands.Bot):
    """A bot with one command per kind of answer the control plane reports."""

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        # discord.py waits 5 s before a fresh IDENTIFY to respect Discord's limit; the sandbox has none.
        return None


def build_bot() -> SandboxBot:
    intents = discord.Intents.default()
    intents.message_content = True
    intents.members = True
    bot = SandboxBot(command_prefix="!", intents=intents, guild_ready_timeout=0.05)

    @bot.command()
    async def echo(ctx: commands.Context[SandboxBot], *, text: str) -> None:
        await ctx.send(text)

    @bot.tree.command(description="Answer pong")
    async def ping(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("pong")

    @bot.tree.command(description="Answer only to the caller")
    async def secret(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("psst", ephemeral=True)

    @bot.tree.command(description="Never answer")
    async def silent(interaction: discord.Interaction) -> None:
        return None

    @bot.tree.command(description="Answer with an embed")
    async def card(interaction: discord.Interaction) -> None:
        await interaction.response.send_message(embed=discord.Embed(title="Card", description="A card"))

    @bot.tree.command(description="Think, then answer")
    async def slow(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        await interaction.followup.send("done thinking")

    @bot.tree.command(description="Answer, then follow up")
    async def twice(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("one")
        await interaction.followup.send("two")

    @bot.tree.command(description="Greet a member")
    async def greet(interaction: discord.Interaction, member: discord.Member) -> None:
        await interaction.response.send_message(f"hello {member.name}")

    @bot.tree.command(description="Name a role")
    async def role_name(interaction: discord.Interaction, role: discord.Role) -> None:
        await interaction.response.send_message(role.name)

    @bot.tree.command(description="Name a channel")
    async def where(interaction: discord.Interaction, channel: discord.TextChannel) -> None:
        await interaction.response.send_message(channel.name)

    xp = app_commands.Group(name="xp", description="Experience points")

    @xp.command(name="set", description="Set a member's XP")
    async def xp_set(interaction: discord.Interaction, member: discord.Member, amount: int) -> None:
        await interaction.response.send_message(f"{member.name}: {amount} XP")

    bot.tree.add_command(xp)
    return bot


@pytest_asyncio.fixture
async def http(sandbox: Sandbox) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=sandbox.url) as session:
        yield session


@pytest_asyncio.fixture
async def bot(sandbox: Sandbox) -> AsyncIterator[SandboxBot]:
    client = build_bot()
    async with run_bot(client, sandbox):
        await client.tree.sync()
        yield client


async def invoke(http: aiohttp.ClientSession, body: dict[str, Any], **params: str) -> dict[str, Any]:
    """Invoke a slash command and wait for the bot's response; fail on anything but 201."""
    status, state = await call(http, "POST", "/interactions", body, params={"wait": "5", **params})
    assert status == 201, state
    return dict(state)


# -- overview -----------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_index_gives_the_bot_settings_and_lists_endpoints(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    status, index = await call(http, "GET", "/")
    assert status == 200
    assert index["api_base"] == sandbox.api_base
    assert index["gateway_url"] == sandbox.gateway_url
    assert "POST /_sandbox/interactions" in index["endpoints"]


@pytest.mark.asyncio
async def test_no_endpoint_reveals_the_bot_token(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    for path in ("/", "/world", "/sessions"):
        async with http.get(CONTROL + path) as response:
            assert sandbox.token not in await response.text()


@pytest.mark.asyncio
async def test_unknown_endpoint_answers_404_in_json(http: aiohttp.ClientSession) -> None:
    status, body = await call(http, "GET", "/no-such-thing")
    assert status == 404
    assert "/_sandbox/no-such-thing" in body["error"]


@pytest.mark.asyncio
async def test_a_failure_inside_the_sandbox_answers_500_without_a_traceback(
    sandbox: Sandbox, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(message_id: int = 0) -> list[Any]:
        raise RuntimeError("a bug in the sandbox")

    monkeypatch.setattr(sandbox, "messages_after", broken)
    status, body = await call(http, "GET", "/messages")
    assert status == 500
    assert "GET /_sandbox/messages" in body["error"]
    assert "Traceback" not in body["error"]


@pytest.mark.asyncio
async def test_world_lists_guilds_with_channels_roles_and_members(
    demo: DemoWorld, http: aiohttp.ClientSession
) -> None:
    status, world = await call(http, "GET", "/world")
    assert status == 200
    guild = world["guilds"][0]
    assert guild["id"] == str(demo.guild.id)
    assert {"general", "bot-commands", "announcements"} <= {c["name"] for c in guild["channels"]}
    assert {"Admin", "Moderator"} <= {r["name"] for r in guild["roles"]}
    assert "alice" in {m["user"]["username"] for m in guild["members"]}
    assert world["bot"]["id"] == str(demo.world.bot.id)


@pytest.mark.asyncio
async def test_commands_lists_what_the_bot_synced(bot: SandboxBot, http: aiohttp.ClientSession) -> None:
    status, registered = await call(http, "GET", "/commands")
    assert status == 200
    assert {"ping", "xp"} <= {c["name"] for c in registered["global"]}


# -- messages -----------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_post_message_by_names_stores_it_as_the_member(
    demo: DemoWorld, http: aiohttp.ClientSession
) -> None:
    status, message = await call(
        http, "POST", "/messages", {"channel": "general", "author": "alice", "content": "hello"}
    )
    assert status == 201
    stored = demo.general.history()[-1]
    assert (stored.id, stored.author.username, stored.content) == (int(message["id"]), "alice", "hello")


@pytest.mark.asyncio
async def test_post_message_takes_ids_as_strings_or_numbers(
    demo: DemoWorld, http: aiohttp.ClientSession
) -> None:
    body = {"channel": demo.announcements.id, "author": str(demo.moderator.id), "content": "news"}
    status, message = await call(http, "POST", "/messages", body)
    assert status == 201
    assert message["channel_name"] == "announcements"
    assert message["author"]["username"] == "bob"


@pytest.mark.asyncio
async def test_names_are_looked_up_in_the_guild_that_guild_id_names(
    demo: DemoWorld, http: aiohttp.ClientSession
) -> None:
    other = demo.world.add_guild("second guild")
    other_general = demo.world.add_text_channel(other, "general")
    demo.world.add_member(other, demo.admin.user)
    body = {"channel": "general", "author": "alice", "content": "elsewhere", "guild_id": str(other.id)}
    status, _ = await call(http, "POST", "/messages", body)
    assert status == 201
    assert [m.content for m in other_general.history()] == ["elsewhere"]
    assert demo.general.history() == []


@pytest.mark.asyncio
async def test_post_message_reaches_the_bot(bot: SandboxBot, http: aiohttp.ClientSession) -> None:
    body = {"channel": "general", "author": "alice", "content": "!echo hi there"}
    await call(http, "POST", "/messages", body)
    status, _ = await call(
        http, "POST", "/requests/wait", {"method": "POST", "path": r"/channels/\d+/messages"}
    )
    assert status == 200
    feed_status, feed = await call(http, "GET", "/messages")
    assert feed_status == 200
    assert [m["content"] for m in feed["messages"]] == ["!echo hi there", "hi there"]


@pytest.mark.asyncio
async def test_post_message_to_at_username_goes_to_their_dm(
    demo: DemoWorld, http: aiohttp.ClientSession
) -> None:
    status, _ = await call(
        http, "POST", "/messages", {"channel": "@carol", "author": "carol", "content": "hi"}
    )
    assert status == 201
    dm = demo.world.dm_channel(demo.members[0].user)
    assert [m.content for m in dm.history()] == ["hi"]


@pytest.mark.asyncio
async def test_post_message_to_unknown_channel_is_400_naming_the_field(http: aiohttp.ClientSession) -> None:
    status, body = await call(
        http, "POST", "/messages", {"channel": "nowhere", "author": "alice", "content": "x"}
    )
    assert status == 400
    assert "'channel'" in body["error"]
    assert "'nowhere'" in body["error"]


@pytest.mark.asyncio
async def test_post_message_by_a_non_member_is_400_naming_the_author(http: aiohttp.ClientSession) -> None:
    status, body = await call(
        http, "POST", "/messages", {"channel": "general", "author": "zed", "content": "x"}
    )
    assert status == 400
    assert "'author'" in body["error"]


@pytest.mark.asyncio
async def test_post_message_without_content_is_400(http: aiohttp.ClientSession) -> None:
    status, body = await call(http, "POST", "/messages", {"channel": "general", "author": "alice"})
    assert status == 400
    assert "'content'" in body["error"]


@pytest.mark.asyncio
async def test_bad_json_is_400(http: aiohttp.ClientSession) -> None:
    status, body = await call(http, "POST", "/messages", data='{"channel": ')
    assert status == 400
    assert "not valid JSON" in body["error"]


@pytest.mark.asyncio
async def test_a_form_post_as_a_browser_sends_it_cross_site_is_415_and_posts_nothing(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    form = {"channel": "general", "author": "alice", "content": "from a web page"}
    async with http.post(CONTROL + "/messages", data=form) as response:
        status, body = response.status, await response.json()
    assert status == 415
    assert "Content-Type: application/json" in body["error"]
    assert sandbox.messages_after(0) == []


@pytest.mark.asyncio
async def test_a_post_without_a_body_still_needs_the_json_content_type(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    sandbox.faults.drop_heartbeat_acks(False)
    async with http.post(CONTROL + "/faults/drop_heartbeat_acks") as response:
        status = response.status
    assert status == 415
    assert sandbox.gateway.drop_heartbeat_acks is False


@pytest.mark.asyncio
async def test_a_json_body_that_is_not_an_object_is_400(http: aiohttp.ClientSession) -> None:
    status, body = await call(http, "POST", "/messages", ["general", "alice", "hi"])
    assert status == 400
    assert "JSON object" in body["error"]


@pytest.mark.asyncio
async def test_channel_messages_are_read_oldest_first(http: aiohttp.ClientSession) -> None:
    for content in ("first", "second"):
        await call(http, "POST", "/messages", {"channel": "general", "author": "alice", "content": content})
    status, read = await call(http, "GET", "/channels/general/messages")
    assert status == 200
    assert [m["content"] for m in read["messages"]] == ["first", "second"]


@pytest.mark.asyncio
async def test_channel_messages_limit_keeps_the_newest(http: aiohttp.ClientSession) -> None:
    for content in ("first", "second", "third"):
        await call(http, "POST", "/messages", {"channel": "general", "author": "alice", "content": content})
    _, read = await call(http, "GET", "/channels/general/messages", params={"limit": "2"})
    assert [m["content"] for m in read["messages"]] == ["second", "third"]


@pytest.mark.asyncio
async def test_channel_messages_of_unknown_channel_is_404(http: aiohttp.ClientSession) -> None:
    status, body = await call(http, "GET", "/channels/nowhere/messages")
    assert status == 404
    assert "'nowhere'" in body["error"]


@pytest.mark.asyncio
async def test_message_feed_returns_newer_messages_of_every_channel_in_order(
    http: aiohttp.ClientSession,
) -> None:
    _, first = await call(
        http, "POST", "/messages", {"channel": "general", "author": "alice", "content": "a"}
    )
    await call(http, "POST", "/messages", {"channel": "bot-commands", "author": "bob", "content": "b"})
    await call(http, "POST", "/messages", {"channel": "general", "author": "carol", "content": "c"})
    status, feed = await call(http, "GET", "/messages", params={"after": first["id"]})
    assert status == 200
    seen = [(m["channel_name"], m["author"]["username"], m["content"]) for m in feed["messages"]]
    assert seen == [("bot-commands", "bob", "b"), ("general", "carol", "c")]
    assert feed["last"] == feed["messages"][-1]["id"]


@pytest.mark.asyncio
async def test_message_feed_waits_for_the_next_message(http: aiohttp.ClientSession) -> None:
    _, first = await call(
        http, "POST", "/messages", {"channel": "general", "author": "alice", "content": "a"}
    )
    waiting = asyncio.create_task(call(http, "GET", "/messages", params={"after": first["id"], "wait": "10"}))
    await call(http, "POST", "/messages", {"channel": "general", "author": "bob", "content": "b"})
    status, feed = await waiting
    assert status == 200
    assert [m["content"] for m in feed["messages"]] == ["b"]


@pytest.mark.asyncio
async def test_message_feed_wait_ends_empty_when_nothing_comes(http: aiohttp.ClientSession) -> None:
    _, first = await call(
        http, "POST", "/messages", {"channel": "general", "author": "alice", "content": "a"}
    )
    status, feed = await call(http, "GET", "/messages", params={"after": first["id"], "wait": "0.05"})
    assert status == 200
    assert feed == {"messages": [], "last": first["id"]}


@pytest.mark.asyncio
async def test_negative_wait_is_400_naming_the_parameter(http: aiohttp.ClientSession) -> None:
    status, body = await call(http, "GET", "/messages", params={"wait": "-1"})
    assert status == 400
    assert "'wait'" in body["error"]


# -- interactions ---------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_invoke_without_wait_returns_the_interaction_id(
    sandbox: Sandbox, bot: SandboxBot, http: aiohttp.ClientSession
) -> None:
    status, state = await call(
        http, "POST", "/interactions", {"command": "ping", "member": "alice", "channel": "general"}
    )
    assert status == 201
    assert int(state["id"]) in sandbox.interactions


@pytest.mark.asyncio
async def test_invoke_with_wait_returns_the_bots_response(
    bot: SandboxBot, http: aiohttp.ClientSession
) -> None:
    state = await invoke(http, {"command": "ping", "member": "alice", "channel": "general"})
    assert state["acknowledged"] is True
    assert state["response"]["content"] == "pong"
    assert state["response"]["ephemeral"] is False
    assert state["message"]["content"] == "pong"


@pytest.mark.asyncio
async def test_ephemeral_response_is_flagged(bot: SandboxBot, http: aiohttp.ClientSession) -> None:
    state = await invoke(http, {"command": "secret", "member": "alice", "channel": "general"})
    assert state["response"]["ephemeral"] is True
    assert state["response"]["flags"] & 64


@pytest.mark.asyncio
async def test_response_embeds_are_reported(bot: SandboxBot, http: aiohttp.ClientSession) -> None:
    state = await invoke(http, {"command": "card", "member": "alice", "channel": "general"})
    assert [embed["title"] for embed in state["response"]["embeds"]] == ["Card"]


@pytest.mark.asyncio
async def test_get_interaction_waits_for_the_final_message_after_a_deferral(
    bot: SandboxBot, http: aiohttp.ClientSession
) -> None:
    state = await invoke(http, {"command": "slow", "member": "bob", "channel": "bot-commands"})
    assert state["response"]["deferred"] is True
    status, final = await call(
        http, "GET", f"/interactions/{state['id']}", params={"wait": "5", "until": "final"}
    )
    assert status == 200
    assert final["final"] is True
    assert final["message"]["content"] == "done thinking"


@pytest.mark.asyncio
async def test_get_interaction_waits_for_followups(bot: SandboxBot, http: aiohttp.ClientSession) -> None:
    state = await invoke(http, {"command": "twice", "member": "alice", "channel": "general"})
    params = {"wait": "5", "until": "followups", "count": "1"}
    _, later = await call(http, "GET", f"/interactions/{state['id']}", params=params)
    assert [m["content"] for m in later["followups"]] == ["two"]


@pytest.mark.asyncio
async def test_interaction_wait_that_times_out_says_so(bot: SandboxBot, http: aiohttp.ClientSession) -> None:
    body = {"command": "silent", "member": "alice", "channel": "general"}
    status, state = await call(http, "POST", "/interactions", body, params={"wait": "0.05"})
    assert status == 201
    assert state["timed_out"] is True
    assert state["response"] is None


@pytest.mark.asyncio
async def test_member_option_by_name_reaches_the_bot_as_that_member(
    bot: SandboxBot, http: aiohttp.ClientSession
) -> None:
    body = {"command": "greet", "member": "alice", "channel": "general", "options": {"member": "carol"}}
    state = await invoke(http, body)
    assert state["response"]["content"] == "hello carol"


@pytest.mark.asyncio
async def test_role_option_by_name_reaches_the_bot_as_that_role(
    bot: SandboxBot, http: aiohttp.ClientSession
) -> None:
    body = {"command": "role_name", "member": "alice", "channel": "general", "options": {"role": "Moderator"}}
    state = await invoke(http, body)
    assert state["response"]["content"] == "Moderator"


@pytest.mark.asyncio
async def test_channel_option_by_name_reaches_the_bot_as_that_channel(
    bot: SandboxBot, http: aiohttp.ClientSession
) -> None:
    body = {
        "command": "where",
        "member": "alice",
        "channel": "general",
        "options": {"channel": "announcements"},
    }
    state = await invoke(http, body)
    assert state["response"]["content"] == "announcements"


@pytest.mark.asyncio
async def test_subcommand_with_member_id_and_number_options(
    demo: DemoWorld, bot: SandboxBot, http: aiohttp.ClientSession
) -> None:
    dave = demo.members[1]
    body = {
        "command": "xp set",
        "member": "alice",
        "channel": "general",
        "options": {"member": str(dave.id), "amount": 40},
    }
    state = await invoke(http, body)
    assert state["command"] == "xp set"
    assert state["response"]["content"] == "dave: 40 XP"


@pytest.mark.asyncio
async def test_invoking_an_unsynced_command_is_400_naming_it(
    bot: SandboxBot, http: aiohttp.ClientSession
) -> None:
    status, body = await call(
        http, "POST", "/interactions", {"command": "nope", "member": "alice", "channel": "general"}
    )
    assert status == 400
    assert "/nope" in body["error"]


@pytest.mark.asyncio
async def test_unknown_member_in_an_option_is_400_naming_the_option(
    bot: SandboxBot, http: aiohttp.ClientSession
) -> None:
    body = {"command": "greet", "member": "alice", "channel": "general", "options": {"member": "zed"}}
    status, answer = await call(http, "POST", "/interactions", body)
    assert status == 400
    assert "'options.member'" in answer["error"]


@pytest.mark.asyncio
async def test_invoke_with_no_bot_connected_is_400(http: aiohttp.ClientSession, sandbox: Sandbox) -> None:
    sandbox.commands.overwrite(None, [{"name": "ping", "description": "Answer pong"}])
    status, body = await call(
        http, "POST", "/interactions", {"command": "ping", "member": "alice", "channel": "general"}
    )
    assert status == 400
    assert "no bot is connected" in body["error"]


@pytest.mark.asyncio
async def test_list_interactions_includes_each_invocation(
    bot: SandboxBot, http: aiohttp.ClientSession
) -> None:
    state = await invoke(http, {"command": "ping", "member": "alice", "channel": "general"})
    status, listed = await call(http, "GET", "/interactions")
    assert status == 200
    assert [(i["id"], i["command"]) for i in listed["interactions"]] == [(state["id"], "ping")]


@pytest.mark.asyncio
async def test_unknown_interaction_is_404(http: aiohttp.ClientSession) -> None:
    status, body = await call(http, "GET", "/interactions/12345")
    assert status == 404
    assert "12345" in body["error"]


# -- request log --------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_requests_lists_the_log_filtered_by_method_and_path(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    await discord_call(http, sandbox, "GET", "/users/@me")
    await discord_call(http, sandbox, "GET", "/gateway/bot")
    await discord_call(http, sandbox, "GET", "/users/@me")
    status, log = await call(http, "GET", "/requests", params={"method": "GET", "path": "^/users/"})
    assert status == 200
    assert [(r["index"], r["path"], r["status"]) for r in log["requests"]] == [
        (0, "/users/@me", 200),
        (2, "/users/@me", 200),
    ]


@pytest.mark.asyncio
async def test_requests_pages_with_since_and_limit(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    for _ in range(3):
        await discord_call(http, sandbox, "GET", "/users/@me")
    _, page = await call(http, "GET", "/requests", params={"since": "1", "limit": "1"})
    assert [r["index"] for r in page["requests"]] == [1]
    assert (page["next"], page["total"]) == (2, 3)


@pytest.mark.asyncio
async def test_wait_for_request_returns_the_bots_request(
    bot: SandboxBot, http: aiohttp.ClientSession
) -> None:
    _, log = await call(http, "GET", "/requests")
    await call(http, "POST", "/messages", {"channel": "general", "author": "alice", "content": "!echo ok"})
    wait = {"method": "post", "path": r"/channels/\d+/messages$", "since": log["total"], "status": 200}
    status, found = await call(http, "POST", "/requests/wait", wait)
    assert status == 200
    assert found["body"]["content"] == "ok"
    assert found["index"] >= log["total"]


@pytest.mark.asyncio
async def test_wait_for_request_that_never_comes_is_408(http: aiohttp.ClientSession) -> None:
    status, body = await call(
        http, "POST", "/requests/wait", {"method": "GET", "path": "/never", "timeout": 0.05}
    )
    assert status == 408
    assert "GET /never" in body["error"]


@pytest.mark.asyncio
async def test_wait_timeout_is_capped(monkeypatch: pytest.MonkeyPatch, http: aiohttp.ClientSession) -> None:
    monkeypatch.setattr(control, "MAX_WAIT", 0.05)
    status, body = await call(
        http, "POST", "/requests/wait", {"method": "GET", "path": "/never", "timeout": 600}
    )
    assert status == 408
    assert "after 0.05s" in body["error"]


@pytest.mark.asyncio
async def test_wait_for_request_with_a_bad_regex_is_400_naming_the_field(http: aiohttp.ClientSession) -> None:
    status, body = await call(http, "POST", "/requests/wait", {"method": "GET", "path": "(unclosed"})
    assert status == 400
    assert "'path'" in body["error"]


@pytest.mark.asyncio
async def test_wait_for_request_without_method_is_400_naming_the_field(http: aiohttp.ClientSession) -> None:
    status, body = await call(http, "POST", "/requests/wait", {"path": "/users"})
    assert status == 400
    assert "'method' is missing" in body["error"]


@pytest.mark.asyncio
async def test_unknown_routes_lists_calls_the_sandbox_does_not_implement(demo: DemoWorld) -> None:
    # Its own sandbox: the ``sandbox`` fixture rightly fails any test that calls an unknown route.
    async with Sandbox(world=demo.world) as sandbox, aiohttp.ClientSession(base_url=sandbox.url) as http:
        assert await discord_call(http, sandbox, "GET", "/guilds/1/emojis") == 404
        await discord_call(http, sandbox, "GET", "/users/@me")
        status, body = await call(http, "GET", "/unknown_routes")
    assert status == 200
    assert [(r["method"], r["path"], r["known"]) for r in body["unknown_routes"]] == [
        ("GET", "/guilds/1/emojis", False)
    ]


# -- sessions -----------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_sessions_lists_the_bots_session(bot: SandboxBot, http: aiohttp.ClientSession) -> None:
    status, body = await call(http, "GET", "/sessions")
    assert status == 200
    [session] = body["sessions"]
    assert session["shard"] == [0, 1]
    assert session["intents"] == bot.intents.value
    assert session["connected"] is True
    assert session["seq"] >= 2  # READY and GUILD_CREATE


@pytest.mark.asyncio
async def test_wait_for_session_returns_the_ready_session(
    bot: SandboxBot, http: aiohttp.ClientSession
) -> None:
    status, session = await call(http, "POST", "/sessions/wait", {"shard_id": 0, "timeout": 5})
    assert status == 200
    assert session["ready"] is True


@pytest.mark.asyncio
async def test_wait_for_session_without_a_bot_is_408(http: aiohttp.ClientSession) -> None:
    status, body = await call(http, "POST", "/sessions/wait", {"timeout": 0.05})
    assert status == 408
    assert "shard 0" in body["error"]


# -- world changes --------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_add_member_creates_the_user_and_joins_the_guild(
    demo: DemoWorld, http: aiohttp.ClientSession
) -> None:
    status, member = await call(http, "POST", "/members", {"user": "frank", "roles": ["Moderator"]})
    assert status == 201
    joined = demo.guild.member_named("frank")
    assert member["user"]["id"] == str(joined.id)
    assert joined.roles == [demo.moderator_role.id]


@pytest.mark.asyncio
async def test_member_join_reaches_the_bot(bot: SandboxBot, http: aiohttp.ClientSession) -> None:
    joined = asyncio.ensure_future(bot.wait_for("member_join"))
    await call(http, "POST", "/members", {"user": "frank"})
    member = await asyncio.wait_for(joined, 5)
    assert member.name == "frank"


@pytest.mark.asyncio
async def test_add_member_who_is_already_one_is_400(http: aiohttp.ClientSession) -> None:
    status, body = await call(http, "POST", "/members", {"user": "alice"})
    assert status == 400
    assert "already a member" in body["error"]


@pytest.mark.asyncio
async def test_add_member_with_unknown_role_is_400_naming_it(http: aiohttp.ClientSession) -> None:
    status, body = await call(http, "POST", "/members", {"user": "frank", "roles": ["Wizard"]})
    assert status == 400
    assert "'roles[0]'" in body["error"]


@pytest.mark.asyncio
async def test_update_member_replaces_roles_and_sets_nick(
    demo: DemoWorld, http: aiohttp.ClientSession
) -> None:
    status, member = await call(http, "PATCH", "/members/carol", {"roles": ["Admin"], "nick": "Caz"})
    assert status == 200
    carol = demo.members[0]
    assert (carol.roles, carol.nick) == ([demo.admin_role.id], "Caz")
    assert member["nick"] == "Caz"


@pytest.mark.asyncio
async def test_member_role_change_reaches_the_bot(
    demo: DemoWorld, bot: SandboxBot, http: aiohttp.ClientSession
) -> None:
    updated = asyncio.ensure_future(bot.wait_for("member_update"))
    await call(http, "PATCH", f"/members/{demo.members[0].id}", {"roles": [str(demo.moderator_role.id)]})
    _, after = await asyncio.wait_for(updated, 5)
    assert [role.name for role in after.roles[1:]] == ["Moderator"]


@pytest.mark.asyncio
async def test_update_member_with_nothing_to_change_is_400(http: aiohttp.ClientSession) -> None:
    status, body = await call(http, "PATCH", "/members/carol", {})
    assert status == 400
    assert "'roles'" in body["error"]


@pytest.mark.asyncio
async def test_remove_member_leaves_the_guild(demo: DemoWorld, http: aiohttp.ClientSession) -> None:
    status, member = await call(http, "DELETE", "/members/erin")
    assert status == 200
    assert int(member["user"]["id"]) not in demo.guild.members


@pytest.mark.asyncio
async def test_remove_unknown_member_is_404(http: aiohttp.ClientSession) -> None:
    status, body = await call(http, "DELETE", "/members/zed")
    assert status == 404
    assert "'zed'" in body["error"]


@pytest.mark.asyncio
async def test_add_role_creates_it_with_permissions(demo: DemoWorld, http: aiohttp.ClientSession) -> None:
    status, role = await call(http, "POST", "/roles", {"name": "Helper", "permissions": "8192", "color": 255})
    assert status == 201
    created = demo.guild.role_named("Helper")
    assert (role["id"], created.permissions, created.color) == (str(created.id), 8192, 255)


@pytest.mark.asyncio
async def test_role_create_reaches_the_bot(bot: SandboxBot, http: aiohttp.ClientSession) -> None:
    created = asyncio.ensure_future(bot.wait_for("guild_role_create"))
    await call(http, "POST", "/roles", {"name": "Helper"})
    role = await asyncio.wait_for(created, 5)
    assert role.name == "Helper"


@pytest.mark.asyncio
async def test_update_role_renames_and_changes_permissions(
    demo: DemoWorld, http: aiohttp.ClientSession
) -> None:
    status, role = await call(http, "PATCH", "/roles/Moderator", {"name": "Mods", "permissions": 0})
    assert status == 200
    assert (demo.moderator_role.name, demo.moderator_role.permissions) == ("Mods", 0)
    assert role["name"] == "Mods"


@pytest.mark.asyncio
async def test_delete_role_removes_it_from_guild_and_members(
    demo: DemoWorld, http: aiohttp.ClientSession
) -> None:
    status, _ = await call(http, "DELETE", f"/roles/{demo.moderator_role.id}")
    assert status == 200
    assert demo.moderator_role.id not in demo.guild.roles
    assert demo.moderator.roles == []


@pytest.mark.asyncio
async def test_delete_everyone_role_is_400(http: aiohttp.ClientSession) -> None:
    status, body = await call(http, "DELETE", "/roles/@everyone")
    assert status == 400
    assert "@everyone" in body["error"]


@pytest.mark.asyncio
async def test_delete_unknown_role_is_404(http: aiohttp.ClientSession) -> None:
    status, body = await call(http, "DELETE", "/roles/Wizard")
    assert status == 404
    assert "'Wizard'" in body["error"]


@pytest.mark.asyncio
async def test_unknown_guild_id_is_400_naming_the_field(http: aiohttp.ClientSession) -> None:
    status, body = await call(http, "POST", "/roles", {"name": "Helper", "guild_id": "42"})
    assert status == 400
    assert "'guild_id'" in body["error"]


# -- faults ---------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_server_error_fault_answers_the_next_matching_request(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    fault = {"method": "GET", "path": "^/users/@me$", "status": 502, "count": 1}
    status, armed = await call(http, "POST", "/faults/server_error", fault)
    assert status == 201
    assert armed["remaining"] == 1
    statuses = [await discord_call(http, sandbox, "GET", "/users/@me") for _ in range(2)]
    assert statuses == [502, 200]


@pytest.mark.asyncio
async def test_rate_limit_fault_answers_429(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    await call(http, "POST", "/faults/rate_limit", {"method": "GET", "path": "/users/", "retry_after": 0.25})
    assert await discord_call(http, sandbox, "GET", "/users/@me") == 429
    _, log = await call(http, "GET", "/requests")
    assert log["requests"][-1]["response"]["retry_after"] == 0.25


@pytest.mark.asyncio
async def test_latency_fault_is_listed_until_cleared(http: aiohttp.ClientSession) -> None:
    status, armed = await call(
        http, "POST", "/faults/latency", {"method": "*", "path": "/typing", "seconds": 0.1}
    )
    assert status == 201
    _, faults = await call(http, "GET", "/faults")
    assert faults["rest"] == [armed]
    assert armed["seconds"] == 0.1
    assert armed["remaining"] is None


@pytest.mark.asyncio
async def test_latency_fault_without_seconds_is_400(http: aiohttp.ClientSession) -> None:
    status, body = await call(http, "POST", "/faults/latency", {"method": "GET", "path": "/users"})
    assert status == 400
    assert "'seconds'" in body["error"]


@pytest.mark.asyncio
async def test_clear_faults_disarms_everything(http: aiohttp.ClientSession) -> None:
    await call(http, "POST", "/faults/server_error", {"method": "GET", "path": "/users"})
    await call(http, "POST", "/faults/drop_heartbeat_acks", {"enabled": True})
    status, faults = await call(http, "DELETE", "/faults")
    assert status == 200
    assert faults == {
        "rest": [],
        "refuse_connections": False,
        "hold_hello": False,
        "drop_heartbeat_acks": False,
    }


@pytest.mark.asyncio
async def test_drop_heartbeat_acks_switches_on_and_off(sandbox: Sandbox, http: aiohttp.ClientSession) -> None:
    _, on = await call(http, "POST", "/faults/drop_heartbeat_acks", {})
    assert on["drop_heartbeat_acks"] is True
    assert sandbox.gateway.drop_heartbeat_acks is True
    _, off = await call(http, "POST", "/faults/drop_heartbeat_acks", {"enabled": False})
    assert off["drop_heartbeat_acks"] is False
    assert sandbox.gateway.drop_heartbeat_acks is False


@pytest.mark.asyncio
async def test_refuse_connections_cuts_rest_calls_until_switched_off(
    sandbox: Sandbox, http: aiohttp.ClientSession
) -> None:
    await call(http, "POST", "/faults/refuse_connections", {"enabled": True})
    with pytest.raises(aiohttp.ClientError):
        await discord_call(http, sandbox, "GET", "/users/@me")
    await call(http, "POST", "/faults/refuse_connections", {"enabled": False})
    assert await discord_call(http, sandbox, "GET", "/users/@me") == 200


@pytest.mark.asyncio
async def test_close_fault_makes_the_bot_resume(bot: SandboxBot, http: aiohttp.ClientSession) -> None:
    resumed = asyncio.ensure_future(bot.wait_for("resumed"))
    status, closed = await call(http, "POST", "/faults/close", {"code": 4000})
    assert (status, closed) == (200, {"connections": 1})
    await asyncio.wait_for(resumed, 10)
    _, body = await call(http, "GET", "/sessions")
    assert body["sessions"][0]["resumes"] == 1


@pytest.mark.asyncio
async def test_drop_fault_makes_the_bot_resume(bot: SandboxBot, http: aiohttp.ClientSession) -> None:
    resumed = asyncio.ensure_future(bot.wait_for("resumed"))
    status, dropped = await call(http, "POST", "/faults/drop")
    assert (status, dropped) == (200, {"connections": 1})
    await asyncio.wait_for(resumed, 10)


@pytest.mark.asyncio
async def test_reconnect_fault_makes_the_bot_resume(bot: SandboxBot, http: aiohttp.ClientSession) -> None:
    resumed = asyncio.ensure_future(bot.wait_for("resumed"))
    status, asked = await call(http, "POST", "/faults/reconnect", {})
    assert (status, asked) == (200, {"connections": 1})
    await asyncio.wait_for(resumed, 10)


@pytest.mark.asyncio
async def test_invalidate_fault_ends_the_session(bot: SandboxBot, http: aiohttp.ClientSession) -> None:
    _, before = await call(http, "GET", "/sessions")
    old = before["sessions"][0]["id"]
    status, invalidated = await call(http, "POST", "/faults/invalidate", {"session": old})
    assert (status, invalidated) == (200, {"connections": 1})
    _, after = await call(http, "GET", "/sessions")
    assert old not in [s["id"] for s in after["sessions"]]


@pytest.mark.asyncio
async def test_close_with_a_reserved_code_is_400_naming_the_field(http: aiohttp.ClientSession) -> None:
    status, body = await call(http, "POST", "/faults/close", {"code": 1006})
    assert status == 400
    assert "'code'" in body["error"]


@pytest.mark.asyncio
async def test_fault_for_an_unknown_session_is_400_naming_the_field(http: aiohttp.ClientSession) -> None:
    status, body = await call(http, "POST", "/faults/drop", {"session": "gone"})
    assert status == 400
    assert "'session'" in body["error"]


@pytest.mark.asyncio
async def test_fault_with_an_unknown_method_is_400_naming_the_field(http: aiohttp.ClientSession) -> None:
    status, body = await call(http, "POST", "/faults/server_error", {"method": "FETCH", "path": "/users"})
    assert status == 400
    assert "'method'" in body["error"]


# -- shutdown -------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_pending_wait_answers_503_when_the_sandbox_stops(demo: DemoWorld) -> None:
    sandbox = await Sandbox(world=demo.world).start()
    try:
        async with aiohttp.ClientSession(base_url=sandbox.url) as http:
            waiting = asyncio.create_task(call(http, "GET", "/messages", params={"wait": "30"}))
            # A request on a second connection completes after the first one was taken up.
            await call(http, "GET", "/")
            await sandbox.stop()
            status, body = await waiting
    finally:
        await sandbox.stop()
    assert status == 503
    assert "shutting down" in body["error"]


# -- the `botops sandbox` command -------------------------------------------------------------------------


@dataclass(frozen=True)
class CliSandbox:
    process: subprocess.Popen[bytes]
    env_file: Path
    output: Path
    settings: dict[str, str]

    @property
    def url(self) -> str:
        return self.settings["DISCORD_API_BASE"].removesuffix("/api/v10")


def start_cli(tmp_path: Path) -> CliSandbox:
    """Start ``botops sandbox`` as its own process and wait until it wrote its env file."""
    env_file, output = tmp_path / "sandbox.env", tmp_path / "sandbox.out"
    command = [sys.executable, "-m", "botops", "sandbox", "--port", "0", "--env-file", str(env_file)]
    with output.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
            command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
        )
    deadline = time.monotonic() + 20
    while not (env_file.exists() and env_file.read_text().endswith("\n")):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            pytest.fail(f"botops sandbox did not start: {output.read_text()}")
        time.sleep(0.02)
    lines = [line for line in env_file.read_text().splitlines() if not line.startswith("#")]
    settings = dict(line.split("=", 1) for line in lines)
    return CliSandbox(process, env_file, output, settings)


def stop_cli(cli: CliSandbox) -> None:
    if cli.process.poll() is None:
        cli.process.kill()
    cli.process.wait(timeout=10)


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliSandbox]:
    started = start_cli(tmp_path_factory.mktemp("cli"))
    try:
        yield started
    finally:
        stop_cli(started)


@pytest.fixture
def fresh_cli(tmp_path: Path) -> Iterator[CliSandbox]:
    started = start_cli(tmp_path)
    try:
        yield started
    finally:
        stop_cli(started)


def test_cli_env_file_is_readable_by_its_owner_only(cli: CliSandbox) -> None:
    assert stat.S_IMODE(cli.env_file.stat().st_mode) == 0o600


def test_cli_prints_the_settings_it_writes_to_the_env_file(cli: CliSandbox) -> None:
    expected = [f"{key}={value}" for key, value in cli.settings.items()]
    assert set(cli.settings) == {
        "DISCORD_API_BASE",
        "DISCORD_GATEWAY_URL",
        "DISCORD_TOKEN",
        "DISCORD_DEV_GUILD_ID",
    }
    # The banner is printed just after the env file is written: give it a moment to appear.
    deadline = time.monotonic() + 10
    while not all(line in cli.output.read_text() for line in expected) and time.monotonic() < deadline:
        time.sleep(0.02)
    printed = cli.output.read_text()
    assert all(line in printed for line in expected), printed


@pytest.mark.asyncio
async def test_cli_sandbox_is_driven_over_the_control_plane(cli: CliSandbox) -> None:
    async with aiohttp.ClientSession(base_url=cli.url) as http:
        status, _ = await call(
            http, "POST", "/messages", {"channel": "general", "author": "alice", "content": "hi"}
        )
        assert status == 201
        _, read = await call(http, "GET", "/channels/general/messages")
    assert [(m["author"]["username"], m["content"]) for m in read["messages"]] == [("alice", "hi")]


def test_cli_exits_cleanly_when_terminated(fresh_cli: CliSandbox) -> None:
    fresh_cli.process.terminate()
    assert fresh_cli.process.wait(timeout=10) == 0


def test_cli_exits_cleanly_on_ctrl_c(fresh_cli: CliSandbox) -> None:
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        pytest.skip("SIGINT is ignored in this process, and so in the child: no Ctrl-C to send")
    fresh_cli.process.send_signal(signal.SIGINT)
    assert fresh_cli.process.wait(timeout=10) == 0
