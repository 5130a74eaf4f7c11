"""The baseline of ``bench/startup.py``: a bare discord.py bot answering the same ``/health`` by hand.

This is what a developer writes without botops: a ``commands.Bot`` with the default intents plus
``message_content`` (botops' default), ``guild_ready_timeout=0.1`` (the bench's ``GUILD_READY_TIMEOUT``
for botops), and one slash command. ``setup_hook`` opens one aiosqlite connection to a file, creates
its two tables if missing (a one-row ``alembic_version`` and ``guild_settings``, the tables botops'
``/health`` reads) and syncs the command tree to the bench guild.

``/health`` (``default_permissions(administrator=True)``, guild only, refused at run time to a
non-administrator) does the reads botops' ``/health`` does, by hand on that one connection, each with
one ``execute_fetchall``: ``SELECT 1`` (timed: the database's round trip), the schema revision from
``alembic_version`` (compared with the code's), and the guild's language from ``guild_settings`` (else
the user's locale). It answers an ephemeral embed, in English or German, with six fields: database
(ok, the ``SELECT 1`` time, the revision), gateway latency, extensions (none), uptime, version and
resident memory (psutil). ``on_ready`` posts ``bench:ready`` to the bench channel once, which is how
the bench sees the bot ready (botops posts the same from a cog in its working directory).

Run by ``bench/startup.py`` with ``sys.executable``; it reads the sandbox's ``DISCORD_*`` variables and
``BENCH_GUILD_ID``, ``BENCH_CHANNEL_ID`` and ``BENCH_DATABASE`` from its environment, closes on SIGTERM,
and gives up after ``BENCH_LIFETIME`` seconds (default 300) whatever happens.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import signal
import time

import aiosqlite
import discord
import psutil
from discord import app_commands
from discord.ext import commands

from botops.endpoints import redirect_discord

READY_TEXT = "bench:ready"
SCHEMA_REVISION = "0001"
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)",
    "CREATE TABLE IF NOT EXISTS guild_settings (guild_id BIGINT NOT NULL PRIMARY KEY, "
    "language VARCHAR(5) NOT NULL DEFAULT 'en')",
    "INSERT OR IGNORE INTO alembic_version VALUES ('0001')",
)
TEXT = {
    "en": ("Bot health", "Database", "Gateway latency", "Extensions", "Uptime", "Version", "Memory"),
    "de": ("Bot-Zustand", "Datenbank", "Gateway-Latenz", "Erweiterungen", "Laufzeit", "Version", "Speicher"),
}


class BareBot(commands.Bot):
    """``/health`` and nothing else; what a bot costs before botops adds anything."""

    def __init__(self, guild_id: int, channel_id: int, database: str) -> None:
        intents = discord.Intents.default()
        intents.message_content = True
        super().__init__(command_prefix=commands.when_mentioned, intents=intents, guild_ready_timeout=0.1)
        self.guild = discord.Object(guild_id)
        self.channel_id = channel_id
        self.database_path = database
        self.database: aiosqlite.Connection | None = None
        self.started_at = time.monotonic()
        self.announced = False
        self.tree.add_command(health, guild=self.guild)

    async def setup_hook(self) -> None:
        self.database = await aiosqlite.connect(self.database_path)
        for statement in SCHEMA:
            await self.database.execute(statement)
        await self.database.commit()
        await self.tree.sync(guild=self.guild)

    async def on_ready(self) -> None:
        if not self.announced:
            self.announced = True
            await self.get_partial_messageable(self.channel_id).send(READY_TEXT)

    async def close(self) -> None:
        if self.database is not None:
            await self.database.close()
        await super().close()


@app_commands.command(name="health", description="Check the bot's health (administrators)")
@app_commands.default_permissions(administrator=True)
@app_commands.guild_only()
async def health(interaction: discord.Interaction[BareBot]) -> None:
    """Answer database, latency, extensions, uptime, version and memory as an ephemeral embed."""
    member = interaction.user
    if not isinstance(member, discord.Member) or not member.guild_permissions.administrator:
        await interaction.response.send_message("Only administrators can use this command.", ephemeral=True)
        return
    bot = interaction.client
    assert bot.database is not None
    started = time.perf_counter()
    await bot.database.execute_fetchall("SELECT 1")
    database_ms = (time.perf_counter() - started) * 1000
    revision = next(iter(await bot.database.execute_fetchall("SELECT version_num FROM alembic_version")))[0]
    chosen = await bot.database.execute_fetchall(
        "SELECT language FROM guild_settings WHERE guild_id = ?", (interaction.guild_id,)
    )
    language = next(iter(chosen))[0] if chosen else str(interaction.locale).split("-")[0]
    title, database, latency, extensions, uptime, version, memory = TEXT.get(language, TEXT["en"])
    state = "✅ OK" if revision == SCHEMA_REVISION else "⚠️ schema behind"
    embed = discord.Embed(title=title, timestamp=datetime.datetime.now(datetime.UTC))
    embed.add_field(name=database, value=f"{state} ({database_ms:.1f} ms, {revision})", inline=False)
    embed.add_field(name=latency, value=f"✅ {bot.latency * 1000:.0f} ms")
    embed.add_field(name=extensions, value="0", inline=False)
    embed.add_field(
        name=uptime, value=str(datetime.timedelta(seconds=int(time.monotonic() - bot.started_at)))
    )
    embed.add_field(name=version, value=f"discord.py {discord.__version__}")
    embed.add_field(name=memory, value=f"{psutil.Process().memory_info().rss / 2**20:.1f} MiB")
    await interaction.response.send_message(embed=embed, ephemeral=True)


async def main() -> None:
    env = os.environ
    redirect_discord(env["DISCORD_API_BASE"], env["DISCORD_GATEWAY_URL"], environment="development")
    bot = BareBot(int(env["BENCH_GUILD_ID"]), int(env["BENCH_CHANNEL_ID"]), env["BENCH_DATABASE"])
    closing: list[asyncio.Task[None]] = []  # keeps the close task referenced until it ends
    asyncio.get_running_loop().add_signal_handler(
        signal.SIGTERM, lambda: closing.append(asyncio.create_task(bot.close()))
    )
    async with asyncio.timeout(float(env.get("BENCH_LIFETIME", "300"))), bot:
        await bot.start(env["DISCORD_TOKEN"])


if __name__ == "__main__":
    discord.utils.setup_logging()
    asyncio.run(main())
