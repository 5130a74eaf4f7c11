"""Every REST exchange between a real discord.py bot and the sandbox conforms to Discord's OpenAPI spec.

A ``commands.Bot`` logs in, syncs commands, answers slash commands in every way (embed, ephemeral,
defer and followups, edits, deletes) and calls every other REST route the sandbox serves; the few
routes discord.py has no public call for are requested with discord.py's own ``HTTPClient``. Then every
recorded exchange, request and response, is validated with :class:`OpenAPIValidator`, and so are the
sandbox's error answers. Where the spec is wrong about real Discord, ``KNOWN_GAPS`` in openapi.py
says so, one line each.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import discord
import pytest
from discord import app_commands
from discord.ext import commands
from discord.http import Route

from botops.sandbox import DemoWorld, Sandbox
from botops.sandbox.rest import RecordedRequest
from botops.sandbox.routes import Routes
from botops.testing import run_bot
from tests.sandbox.openapi import Exchange, OpenAPIValidator

WAIT = 5.0


@pytest.fixture(scope="module")
def validator() -> OpenAPIValidator:
    # Validators are compiled per operation and cached: one instance for the module.
    return OpenAPIValidator()


def served_routes(sandbox: Sandbox) -> set[tuple[str, str]]:
    """Return every (method, template) in the sandbox's route table."""

    class TableReader:
        def __init__(self) -> None:
            self.routes: set[tuple[str, str]] = set()

        def route(
            self, app: object, method: str, template: str, handler: object, *, auth: bool = True
        ) -> None:
            self.routes.add((method, template))

    reader = TableReader()
    Routes(sandbox).register(None, reader)  # type: ignore[arg-type]  # a reader, not a RestApi
    return reader.routes


def problems_of(validator: OpenAPIValidator, requests: list[RecordedRequest]) -> list[str]:
    """Validate every recorded exchange; return all problems, each prefixed with its request."""
    found: list[str] = []
    for r in requests:
        exchange = Exchange(r.method, r.path, r.query, r.body, r.status, r.response)
        found.extend(f"[{r.method} {r.path} -> {r.status}] {p}" for p in validator.problems(exchange))
    return found


class ConformanceBot(commands.Bot):
    """A bot whose slash commands answer in every way an interaction can be answered."""

    def __init__(self, guild_id: int) -> None:
        intents = discord.Intents.default()
        intents.members = True
        intents.message_content = True
        super().__init__(command_prefix="!", intents=intents, help_command=None, guild_ready_timeout=0.05)
        self.guild = discord.Object(guild_id)
        self.command_errors: list[BaseException] = []

    async def setup_hook(self) -> None:
        self.tree.error(self.record_error)
        await self.tree.sync()
        await self.tree.sync(guild=self.guild)

    async def record_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        self.command_errors.append(error)


def build_bot(guild_id: int) -> ConformanceBot:
    bot = ConformanceBot(guild_id)

    @bot.tree.command(description="Show a card")
    async def card(interaction: discord.Interaction) -> None:
        embed = discord.Embed(title="Card", description="Rendered by the bot", colour=0x2ECC71)
        embed.add_field(name="guild", value=str(interaction.guild_id)).set_footer(text="sandbox")
        await interaction.response.send_message(embed=embed)
        await interaction.original_response()

    @bot.tree.command(description="Whisper to the caller")
    async def secret(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("only you", ephemeral=True)

    @bot.tree.command(description="Think, answer, revise, follow up, retract", guild=bot.guild)
    async def slow(interaction: discord.Interaction) -> None:
        await interaction.response.defer(thinking=True)
        await interaction.followup.send("done thinking")
        await interaction.edit_original_response(content="revised")
        await interaction.followup.send("one more thing")
        await interaction.delete_original_response()

    return bot


async def run_scenario(bot: ConformanceBot, sandbox: Sandbox, demo: DemoWorld) -> None:
    """Drive the bot through every REST route the sandbox serves."""
    for name in ("card", "secret", "slow"):
        result = await sandbox.invoke_slash(name, member=demo.admin, channel=demo.general)
        await result.response(WAIT)
    await sandbox.wait_for_request("DELETE", r"/messages/@original$", timeout=WAIT)
    await sandbox.wait_for_request("GET", r"/messages/@original$", timeout=WAIT)

    guild = bot.get_guild(demo.guild.id)
    channel = bot.get_channel(demo.general.id)
    assert guild is not None
    assert isinstance(channel, discord.TextChannel)
    asked = await sandbox.send_message(demo.general, demo.admin, "question")
    question = await channel.fetch_message(asked.id)
    embed = discord.Embed(title="Answer", description="forty-two").add_field(name="a", value="b")
    sent = await channel.send(
        f"{demo.admin.mention} here",
        embed=embed,
        allowed_mentions=discord.AllowedMentions(users=True, everyone=False, roles=False),
        reference=question,
    )
    assert [m async for m in channel.history(limit=10)]
    await sent.edit(content="edited")
    await sent.delete()
    await channel.typing()

    carol = await guild.fetch_member(demo.members[0].id)
    assert await bot.fetch_channel(demo.general.id)
    assert await guild.fetch_channels()
    assert await guild.fetch_roles()
    assert [m async for m in guild.fetch_members(limit=100)]
    assert (await bot.fetch_guild(demo.guild.id, with_counts=True)).approximate_member_count
    user = await bot.fetch_user(demo.members[1].id)
    regular = guild.get_role(demo.guild.role_named("Regular").id)
    assert regular is not None
    await carol.add_roles(regular)
    await carol.remove_roles(regular)
    dm = await user.create_dm()
    await dm.send("a direct message")

    await bot.application_info()
    await bot.http.get_bot_gateway()
    app_id = bot.application_id
    await bot.http.request(Route("GET", "/applications/@me"))
    for scope in (None, bot.guild):
        listed = await bot.tree.fetch_commands(guild=scope)
        await bot.tree.fetch_command(listed[0].id, guild=scope)
        extra = {"name": "extra", "description": "Added one at a time", "type": 1}
        if scope is None:
            made = await bot.http.upsert_global_command(app_id, extra)
        else:
            made = await bot.http.upsert_guild_command(app_id, scope.id, extra)
        command = app_commands.AppCommand(data=made, state=bot._connection)
        await command.edit(description="Edited one at a time")
        await command.delete()


@pytest.mark.asyncio
async def test_every_exchange_of_a_real_bot_conforms_to_the_spec(
    sandbox: Sandbox, demo: DemoWorld, validator: OpenAPIValidator
) -> None:
    world = sandbox.world
    # The bot may only manage roles below its own; put its role on top, then add one beneath it.
    demo.guild.role_named(world.bot.username).position = 100
    world.add_role(demo.guild, "Regular")
    bot = build_bot(demo.guild.id)

    async with run_bot(bot, sandbox):
        await run_scenario(bot, sandbox, demo)
    async with aiohttp.ClientSession() as session, session.get(sandbox.api_base + "/gateway") as response:
        assert response.status == 200

    assert bot.command_errors == []
    uncovered = served_routes(sandbox) - {(r.method, r.route) for r in sandbox.requests if r.status < 300}
    assert not uncovered, f"routes the scenario did not exercise: {sorted(uncovered)}"
    problems = problems_of(validator, sandbox.requests)
    assert not problems, "\n".join(problems)


async def error_exchange(
    sandbox: Sandbox, method: str, path: str, *, token: str | None = None, body: Any = None
) -> RecordedRequest:
    """Make one failing request as discord.py would; return the sandbox's record of it."""
    headers = {"Authorization": f"Bot {token or sandbox.token}"}
    before = len(sandbox.requests)
    async with (
        aiohttp.ClientSession(headers=headers) as session,
        session.request(method, sandbox.api_base + path, json=body) as response,
    ):
        assert response.status >= 400
        assert response.content_type == "application/json"
        assert json.loads(await response.text()) == sandbox.requests[-1].response
    (recorded,) = sandbox.requests[before:]
    return recorded


@pytest.mark.asyncio
async def test_content_over_2000_is_a_conforming_50035(
    sandbox: Sandbox, demo: DemoWorld, validator: OpenAPIValidator
) -> None:
    # The spec allows 4000 (a Nitro user's limit); Discord holds bots to 2000, and so does the sandbox.
    recorded = await error_exchange(
        sandbox, "POST", f"/channels/{demo.general.id}/messages", body={"content": "x" * 2001, "tts": False}
    )

    assert (recorded.status, recorded.response["code"]) == (400, 50035)
    assert recorded.response["errors"]["content"]["_errors"][0]["code"] == "BASE_TYPE_MAX_LENGTH"
    assert problems_of(validator, [recorded]) == []


@pytest.mark.asyncio
async def test_unknown_channel_is_a_conforming_404(
    sandbox: Sandbox, demo: DemoWorld, validator: OpenAPIValidator
) -> None:
    recorded = await error_exchange(sandbox, "GET", f"/channels/{demo.guild.id + 1}")

    assert (recorded.status, recorded.response["code"]) == (404, 10003)
    assert problems_of(validator, [recorded]) == []


@pytest.mark.asyncio
async def test_bad_token_is_a_conforming_401(sandbox: Sandbox, validator: OpenAPIValidator) -> None:
    wrong = sandbox.token[:-4] + ("abcd" if not sandbox.token.endswith("abcd") else "efgh")

    recorded = await error_exchange(sandbox, "GET", "/users/@me", token=wrong)

    assert (recorded.status, recorded.response["code"]) == (401, 0)
    assert problems_of(validator, [recorded]) == []
