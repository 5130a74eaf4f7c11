"""Messages per second through the whole bot: botops with the levels feature next to a bare discord.py bot.

Part (c) of the levels benchmark (``bench/levels.py --parts c`` runs it; so does this file by itself,
``.venv/bin/python bench/levels_bot.py [--quick]``). One sandbox on ``build_demo_world()`` plus
``members`` extra members, ``ack_deadline=None``; each bot runs as a child process, one at a time
(``bench/startup.py``'s ``running``: spawned, ready once its ``on_ready`` posted ``bench:ready``, stopped
with SIGTERM):

* **bare discord.py**: this file run with ``--bare-child``, a ``discord.Client`` with botops' default
  intents (the defaults plus ``message_content``) whose ``on_message`` does nothing but answer the end
  marker ``bench:done``. What a bot costs per message before it does any work.
* **botops**: ``python -m botops run`` in a fresh working directory, whose ``cogs/`` holds only
  bench/startup.py's ready listener. Its SQLite database is migrated beforehand (``botops db
  upgrade``); the demo guild's ``guild_settings`` row sets ``xp_cooldown_seconds = 0``, so every
  message is an award: sandbox gateway → discord.py → the levels cog's award (settings cache,
  cooldown, XP, the rank index, the level check, ``BatchedWriter.add``) → the writer's flushes into
  the database, with the bot's default flush interval and batch size and its development logging.
  The members start somewhere in levels 5 to 30 (seeded), so level-ups, an announcement (a REST
  call) each, come at an established guild's rate; they are counted.

A run: start the bot, warm it up (``warmup`` messages and the end marker: botops loads the guild's
settings and rank index), then post ``messages`` member messages (round robin over the members) with
``sandbox.send_message`` as fast as the sandbox takes them, then the end marker; the rate is
``messages`` ÷ (first post → the bot's answer to the marker reaching the sandbox). The end marker is
the message ``bench:done`` for the bare bot and ``/rank`` for botops (see :func:`flood`). Gateway
events arrive in order and a warm award awaits nothing, so the answer means every message before it
was handled. botops' database is checked after each stop: its ``messages`` column grew by exactly the
messages of the run (warm-up included), so no award was skipped or lost. Runs alternate which bot
goes first; the table shows the median rate and the bot's CPU per message. See ``bench/README.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import discord
import psutil
from discord import app_commands

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/startup.py, when imported from elsewhere

from startup import READY_COG, READY_TEXT, Contender, clean_environment, running

from botops.endpoints import redirect_discord
from botops.levels import total_xp_for, xp_to_next
from botops.sandbox import DemoWorld, Member, Sandbox, build_demo_world

DONE_TEXT = "bench:done"
DONE_REPLY = "bench:done seen"
#: The goal: botops' rate at least this share of the bare bot's (within 20%).
GOAL_RATIO = 0.8
#: Upper bound on one flood; the bare child also gives up after CHILD_LIFETIME whatever happens.
FLOOD_TIMEOUT = 300.0
CHILD_LIFETIME = 900.0
SEED = 20250601
LEVEL_UP_PREFIX = "reached level"


@dataclass(frozen=True)
class BotSizes:
    """How much part (c) does; ``--quick`` uses the small set."""

    messages: int
    warmup: int
    members: int
    runs: int


FULL = BotSizes(messages=20_000, warmup=1_000, members=1_000, runs=3)
QUICK = BotSizes(messages=5_000, warmup=500, members=500, runs=1)


# -- the bare bot (this file with --bare-child) ------------------------------------------------------


class BareBot(discord.Client):
    """A discord.py bot that answers the marker and nothing else."""

    def __init__(self, guild_id: int, channel_id: int) -> None:
        intents = discord.Intents.default()
        intents.message_content = True  # botops' default privileged intents
        super().__init__(intents=intents, guild_ready_timeout=0.1)
        self.guild = discord.Object(guild_id)
        self.channel_id = channel_id
        self.announced = False
        # No commands, synced anyway: bench/startup.py's ``running`` waits for that PUT.
        self.tree = app_commands.CommandTree(self)

    async def setup_hook(self) -> None:
        await self.tree.sync(guild=self.guild)

    async def on_ready(self) -> None:
        if not self.announced:
            self.announced = True
            await self.get_partial_messageable(self.channel_id).send(READY_TEXT)

    async def on_message(self, message: discord.Message) -> None:
        if message.content == DONE_TEXT:
            await message.channel.send(DONE_REPLY)


async def run_bare_child() -> None:
    env = os.environ
    redirect_discord(env["DISCORD_API_BASE"], env["DISCORD_GATEWAY_URL"], environment="development")
    bot = BareBot(int(env["BENCH_GUILD_ID"]), int(env["BENCH_CHANNEL_ID"]))
    closing: list[asyncio.Task[None]] = []  # keeps the close task referenced until it ends
    asyncio.get_running_loop().add_signal_handler(
        signal.SIGTERM, lambda: closing.append(asyncio.create_task(bot.close()))
    )
    async with asyncio.timeout(CHILD_LIFETIME), bot:
        await bot.start(env["DISCORD_TOKEN"])


# -- the two contenders -------------------------------------------------------------------------------


def contenders(sandbox: Sandbox, demo: DemoWorld, members: list[Member], folder: Path) -> list[Contender]:
    """Prepare both bots' working directories (botops' database migrated and seeded); baseline first."""
    shared = {
        **clean_environment(),
        **sandbox.environment(),
        "BENCH_GUILD_ID": str(demo.guild.id),
        "BENCH_CHANNEL_ID": str(demo.bot_commands.id),
    }
    bare_dir, botops_dir = folder / "bare", folder / "botops"
    bare_dir.mkdir()
    (botops_dir / "cogs").mkdir(parents=True)
    (botops_dir / "cogs" / "__init__.py").write_text("")
    (botops_dir / "cogs" / "bench_ready.py").write_text(READY_COG)
    database = botops_dir / "data" / "bot.db"
    botops_env = {
        **shared,
        "ENVIRONMENT": "development",
        "DISCORD_DEV_GUILD_ID": str(demo.guild.id),
        "OWNER_IDS": str(demo.world.owner.id),
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "LOG_DIR": str(botops_dir / "logs"),
        "GUILD_READY_TIMEOUT": "0.1",
    }
    env_file = str(botops_dir / "no.env")  # a missing file: nothing but this environment counts
    subprocess.run(
        [sys.executable, "-m", "botops", "db", "upgrade"],
        cwd=botops_dir,
        env=botops_env,
        check=True,
        capture_output=True,
    )
    rng = random.Random(SEED)
    with contextlib.closing(sqlite3.connect(database)) as connection, connection:
        connection.execute(
            "INSERT INTO guild_settings (guild_id, xp_cooldown_seconds) VALUES (?, 0)", (demo.guild.id,)
        )
        # An established guild: every member somewhere in levels 5 to 30, so level-ups (an announcement
        # each, a REST call) come at the rate they would, not at a new guild's one every few messages.
        connection.executemany(
            "INSERT INTO member_xp (guild_id, user_id, xp, messages) VALUES (?, ?, ?, 0)",
            [(demo.guild.id, member.id, seeded_xp(rng)) for member in members],
        )
    bare = Contender(
        name="bare discord.py",
        command=(sys.executable, str(Path(__file__).resolve()), "--bare-child"),
        cwd=bare_dir,
        env=shared,
        output=folder / "bare.out",
    )
    botops = Contender(
        name="botops",
        command=(sys.executable, "-m", "botops", "run", "--env-file", env_file),
        cwd=botops_dir,
        env=botops_env,
        output=folder / "botops.out",
    )
    return [bare, botops]


def seeded_xp(rng: random.Random) -> int:
    """Return the XP of a member somewhere in levels 5 to 30."""
    level = rng.randint(5, 30)
    return total_xp_for(level) + rng.randrange(xp_to_next(level))


def stored_messages(contender: Contender) -> int:
    """Return the messages botops' database has counted in member_xp (0 for the bare bot's folder)."""
    database = contender.cwd / "data" / "bot.db"
    if not database.exists():
        return 0
    with contextlib.closing(sqlite3.connect(f"{database.as_uri()}?mode=ro", uri=True)) as connection:
        return int(connection.execute("SELECT COALESCE(SUM(messages), 0) FROM member_xp").fetchone()[0])


# -- one run ------------------------------------------------------------------------------------------


async def flood(
    sandbox: Sandbox, demo: DemoWorld, members: list[Member], count: int, contender: Contender
) -> float:
    """Post ``count`` messages, then the end marker; return the seconds until the bot's answer arrived.

    The bare bot's marker is the message ``bench:done``, which its ``on_message`` answers. botops' is
    ``/rank``, which answers from the same index the awards update, so botops runs nothing but its own
    code: a listener of the bench's would cost it a task per message that the bare bot does not pay.
    """
    started = time.monotonic()
    for number in range(count):
        await sandbox.send_message(demo.general, members[number % len(members)], f"message {number}")
        if number % 64 == 63:
            await asyncio.sleep(0)  # let the gateway writer send while we inject, as a live guild would
    since = len(sandbox.requests)
    if contender.name == "botops":
        result = await sandbox.invoke_slash("rank", member=demo.admin, channel=demo.bot_commands)
        answer = await sandbox.wait_for_request(
            "POST",
            rf"^/interactions/{result.interaction.id}/[^/]+/callback$",
            timeout=FLOOD_TIMEOUT,
            since=since,
        )
    else:
        await sandbox.send_message(demo.general, members[0], DONE_TEXT)
        answer = await sandbox.wait_for_request(
            "POST",
            rf"^/channels/{demo.general.id}/messages$",
            lambda r: (r.body or {}).get("content") == DONE_REPLY,
            timeout=FLOOD_TIMEOUT,
            since=since,
        )
    return answer.at - started


def level_ups(sandbox: Sandbox, since: int) -> int:
    """Count the level-up announcements the bot posted from ``since`` in the request log on."""
    return sum(
        1
        for request in sandbox.requests[since:]
        if request.method == "POST" and LEVEL_UP_PREFIX in str((request.body or {}).get("content", ""))
    )


@dataclass
class Run:
    """One timed flood of one bot."""

    seconds: float
    bot_cpu_seconds: float
    sandbox_cpu_seconds: float
    level_ups: int


@dataclass
class Figures:
    """Every run of one bot."""

    runs: list[Run] = field(default_factory=list)

    def rate(self, messages: int) -> float:
        return statistics.median(messages / run.seconds for run in self.runs)

    def cpu_per_message_us(self, messages: int) -> float:
        return statistics.median(run.bot_cpu_seconds / messages * 1e6 for run in self.runs)

    def sandbox_cpu_share(self) -> float:
        return statistics.median(run.sandbox_cpu_seconds / run.seconds for run in self.runs)

    def bot_cpu_share(self) -> float:
        return statistics.median(run.bot_cpu_seconds / run.seconds for run in self.runs)


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def one_run(
    sandbox: Sandbox, demo: DemoWorld, members: list[Member], contender: Contender, sizes: BotSizes
) -> Run:
    """Start ``contender``, warm it up, time one flood, stop it; check botops counted every message."""
    before = stored_messages(contender)
    async with running(sandbox, demo, contender) as (child, _):
        # botops: /rank waits for the guild's rank index, the settings cache is filled by then too; from
        # there on an award takes no await, so the answer to the marker means every award was made.
        await flood(sandbox, demo, members, sizes.warmup, contender)
        bot, me = psutil.Process(child.pid), psutil.Process()
        bot_cpu, my_cpu = _cpu(bot), _cpu(me)
        since = len(sandbox.requests)
        seconds = await flood(sandbox, demo, members, sizes.messages, contender)
        run = Run(seconds, _cpu(bot) - bot_cpu, _cpu(me) - my_cpu, 0)
    run.level_ups = level_ups(sandbox, since)  # counted after the stop: announcements run on after the marker
    if contender.name == "botops":
        counted = stored_messages(contender) - before
        expected = sizes.warmup + sizes.messages
        if counted != expected:
            raise RuntimeError(f"botops stored {counted} messages of {expected}: an award was skipped")
    return run


async def measure(sizes: BotSizes) -> dict[str, Figures]:
    """Run both bots ``sizes.runs`` times each on one sandbox; return the figures by bot name."""
    demo = build_demo_world()
    members = [demo.world.add_member(demo.guild, f"chatter{index}") for index in range(sizes.members)]
    with tempfile.TemporaryDirectory(prefix="botops-bench-levels-bot-") as folder:
        async with Sandbox(world=demo.world, ack_deadline=None) as sandbox:
            bots = contenders(sandbox, demo, members, Path(folder))
            figures = {bot.name: Figures() for bot in bots}
            for number in range(sizes.runs):
                for bot in bots if number % 2 == 0 else bots[::-1]:
                    print(f"(c) run {number + 1} of {sizes.runs}: {bot.name} ...", flush=True)
                    figures[bot.name].runs.append(await one_run(sandbox, demo, members, bot, sizes))
    return figures


def report(figures: dict[str, Figures], sizes: BotSizes) -> tuple[float, float, float]:
    """Print both bots' figures; return (bare msgs/s, botops msgs/s, ratio)."""
    bare, botops = figures["bare discord.py"], figures["botops"]
    n = sizes.messages
    print(f"\n(c) messages per second through the whole bot (n={n:,}, median of {sizes.runs}):")
    for name, bot in figures.items():
        print(
            f"  {name:<16} {bot.rate(n):>9,.0f} msgs/s, bot CPU {bot.cpu_per_message_us(n):5.1f} µs/message "
            f"({bot.bot_cpu_share() * 100:.0f}% of a core), sandbox CPU {bot.sandbox_cpu_share() * 100:.0f}%"
        )
    print(f"  botops announced {statistics.median(run.level_ups for run in botops.runs):.0f} level-ups a run")
    ratio = botops.rate(n) / bare.rate(n)
    verdict = "MET" if ratio >= GOAL_RATIO else "MISSED"
    print(f"  ratio botops ÷ bare: {ratio:.2f} (goal ≥ {GOAL_RATIO:.1f}: {verdict})")
    return bare.rate(n), botops.rate(n), ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a sanity run")
    parser.add_argument("--bare-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_child:
        discord.utils.setup_logging()  # INFO, as bench/bare_bot.py
        asyncio.run(run_bare_child())
        return
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    sizes = QUICK if args.quick else FULL
    report(asyncio.run(measure(sizes)), sizes)


if __name__ == "__main__":
    main()
