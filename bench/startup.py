"""Benchmark ``botops run`` against a bare discord.py bot: process start to ready, and /health round trips.

Run ``.venv/bin/python bench/startup.py`` (or ``make bench-startup``); ``--quick`` shrinks every size
for a sanity run. This process runs one sandbox (the demo world); each bot runs as a child process on
it, one at a time: the baseline ``bench/bare_bot.py`` and ``python -m botops run``. Start-up is timed
from spawning the process until the message its ``on_ready`` posts reaches the sandbox, alternating
the two bots, median of several runs. Then each bot answers ``/health`` for the administrator
``demo.admin`` several hundred times in a row; p50 and p99 run from INTERACTION_CREATE to the callback
reaching the sandbox. The table prints both, the ratio and whether the goals (start within 1.5x,
round trip within 1.1x) are met; see ``bench/README.md`` for what each figure means. Everything runs
on 127.0.0.1 and stops by itself; the children are stopped on every way out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import logging
import os
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from measure import CpuMeter, callback_times, percentile  # bench/measure.py, beside this file

from botops.sandbox import DemoWorld, Sandbox, build_demo_world
from botops.sandbox.interactions import Interaction
from botops.sandbox.rest import RecordedRequest
from botops.settings import Settings

BENCH_DIR = Path(__file__).resolve().parent
READY_TEXT = "bench:ready"
#: Start-up is within this factor of the bare bot's, and each round-trip percentile within the other.
START_GOAL = 1.5
ROUND_TRIP_GOAL = 1.1
#: Upper bound on one bot's start and on the round-trip phase.
START_TIMEOUT = 60.0
PHASE_TIMEOUT = 300.0
#: A child gives up after this long whatever happens (the bare bot by itself, botops via the parent).
CHILD_LIFETIME = 600.0
_COMMANDS_PUT = r"^/applications/\d+/guilds/\d+/commands$"

# botops loads every module of ``cogs/`` in its working directory; this one does what the bare bot's
# on_ready does, so that both are ready by the same definition.
READY_COG = f'''"""Post {READY_TEXT} once, on the first on_ready, so bench/startup.py sees the bot ready."""

import os

from discord.ext import commands


class BenchReady(commands.Cog):
    def __init__(self, bot: commands.Bot) -> None:
        self.bot = bot
        self.announced = False

    @commands.Cog.listener()
    async def on_ready(self) -> None:
        if not self.announced:
            self.announced = True
            channel = self.bot.get_partial_messageable(int(os.environ["BENCH_CHANNEL_ID"]))
            await channel.send("{READY_TEXT}")


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(BenchReady(bot))
'''


@dataclass(frozen=True)
class Sizes:
    """How much each phase does; ``--quick`` uses the small set."""

    start_runs: int
    round_trips: int


FULL = Sizes(start_runs=5, round_trips=500)
QUICK = Sizes(start_runs=1, round_trips=50)


# -- the two bots -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Contender:
    """One bot: how to start it, where, and where its output goes."""

    name: str
    command: tuple[str, ...]
    cwd: Path
    env: dict[str, str]
    output: Path


def clean_environment() -> dict[str, str]:
    """Return this process's environment without any variable botops' settings read."""
    ours = {name.upper() for name in Settings.model_fields}
    return {key: value for key, value in os.environ.items() if key.upper() not in ours}


def contenders(sandbox: Sandbox, demo: DemoWorld, folder: Path) -> list[Contender]:
    """Prepare a fresh working directory for each bot and return both, the baseline first."""
    shared = {
        **clean_environment(),
        **sandbox.environment(),
        "BENCH_GUILD_ID": str(demo.guild.id),
        "BENCH_CHANNEL_ID": str(demo.bot_commands.id),
    }
    bare_dir, botops_dir = folder / "bare", folder / "botops"
    (botops_dir / "cogs").mkdir(parents=True)
    bare_dir.mkdir()
    (botops_dir / "cogs" / "__init__.py").write_text("")
    (botops_dir / "cogs" / "bench_ready.py").write_text(READY_COG)
    bare = Contender(
        name="bare discord.py",
        command=(sys.executable, str(BENCH_DIR / "bare_bot.py")),
        cwd=bare_dir,
        env={**shared, "BENCH_DATABASE": str(bare_dir / "bot.db"), "BENCH_LIFETIME": str(CHILD_LIFETIME)},
        output=folder / "bare.out",
    )
    botops = Contender(
        name="botops",
        command=(sys.executable, "-m", "botops", "run", "--env-file", str(botops_dir / "no.env")),
        cwd=botops_dir,
        env={
            **shared,
            "ENVIRONMENT": "development",
            "DISCORD_DEV_GUILD_ID": str(demo.guild.id),
            "OWNER_IDS": str(demo.world.owner.id),
            "DATABASE_URL": f"sqlite+aiosqlite:///{botops_dir / 'data' / 'bot.db'}",
            "LOG_DIR": str(botops_dir / "logs"),
            "GUILD_READY_TIMEOUT": "0.1",
        },
        output=folder / "botops.out",
    )
    return [bare, botops]


# Looked up here, not in the forked child, where loading a library could wait on a lock of another thread.
_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


def _die_with_parent() -> None:
    # Runs in the child before exec: if this process is killed outright, the bot gets SIGTERM instead of
    # reconnecting to a sandbox that is gone for the rest of its life.
    if _PRCTL is not None:
        _PRCTL(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


@dataclass(frozen=True)
class StartTimes:
    """Milliseconds from spawning a bot to three things the sandbox saw it do."""

    first_request_ms: float  # its first REST call: Python, imports, configuration, database are done
    synced_ms: float  # its PUT of the guild's commands, the end of setup_hook
    ready_ms: float  # the message its on_ready posts


@contextlib.asynccontextmanager
async def running(
    sandbox: Sandbox, demo: DemoWorld, contender: Contender
) -> AsyncIterator[tuple[asyncio.subprocess.Process, StartTimes]]:
    """Spawn ``contender``, wait until it is ready, yield it with its start times; always stop it."""
    since = len(sandbox.requests)
    with contender.output.open("ab") as output:
        spawned = time.monotonic()
        child = await asyncio.create_subprocess_exec(
            *contender.command,
            cwd=contender.cwd,
            env=contender.env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            preexec_fn=_die_with_parent,
        )
    try:
        ready = await unless_child_exits(
            child,
            contender,
            sandbox.wait_for_request(
                "POST",
                rf"^/channels/{demo.bot_commands.id}/messages$",
                lambda r: (r.body or {}).get("content") == READY_TEXT,
                timeout=START_TIMEOUT,
                since=since,
            ),
        )
        synced = await sandbox.wait_for_request("PUT", _COMMANDS_PUT, timeout=1.0, since=since)
        times = StartTimes(
            first_request_ms=(sandbox.requests[since].at - spawned) * 1000,
            synced_ms=(synced.at - spawned) * 1000,
            ready_ms=(ready.at - spawned) * 1000,
        )
        yield child, times
    finally:
        await stop(child)


async def stop(child: asyncio.subprocess.Process) -> None:
    """Ask the bot to close (SIGTERM), then kill it if it has not exited within 15 s."""
    if child.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        child.terminate()
    try:
        await asyncio.wait_for(child.wait(), 15.0)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            child.kill()
        await child.wait()


async def unless_child_exits(
    child: asyncio.subprocess.Process, contender: Contender, waiting: Awaitable[RecordedRequest]
) -> RecordedRequest:
    """Await ``waiting``; raise ``RuntimeError`` with the end of the bot's output if it exits first."""
    wait = asyncio.ensure_future(waiting)
    exited = asyncio.ensure_future(child.wait())
    try:
        await asyncio.wait({wait, exited}, return_when=asyncio.FIRST_COMPLETED)
        if not wait.done():
            tail = contender.output.read_text(errors="replace").splitlines()[-15:]
            raise RuntimeError(
                f"{contender.name} exited with code {child.returncode} before it was ready:\n"
                + "\n".join(tail)
            )
        return wait.result()
    finally:
        for future in (wait, exited):
            future.cancel()


# -- measuring helpers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RoundTrips:
    """Latency of sequential /health calls, INTERACTION_CREATE to callback, and each side's CPU."""

    count: int
    p50_ms: float
    p99_ms: float
    sandbox_cpu: float
    bot_cpu: float


async def health_round_trips(
    sandbox: Sandbox, demo: DemoWorld, child: asyncio.subprocess.Process, count: int
) -> RoundTrips:
    """Invoke ``/health`` ``count`` times as the administrator, each after the previous answer and 1 ms."""
    since = len(sandbox.requests)
    interactions: list[Interaction] = []
    meter = CpuMeter(psutil.Process(child.pid))
    async with asyncio.timeout(PHASE_TIMEOUT):
        with meter.measure():
            for _ in range(count):
                result = await sandbox.invoke_slash("health", member=demo.admin, channel=demo.general)
                answer = await result.response(timeout=10.0)
                fields = answer.embeds[0].get("fields", []) if answer.embeds else []
                if not answer.ephemeral or not fields or not str(fields[0].get("value")).startswith("✅"):
                    raise RuntimeError(f"/health did not answer a healthy ephemeral embed: {answer.data}")
                interactions.append(result.interaction)
                await asyncio.sleep(0.001)
    answered = callback_times(sandbox, since)
    latencies = [(answered[i.id] - i.created_at) * 1000 for i in interactions]
    return RoundTrips(
        count=count,
        p50_ms=percentile(latencies, 0.50),
        p99_ms=percentile(latencies, 0.99),
        sandbox_cpu=meter.shares[0],
        bot_cpu=meter.shares[1],
    )


# -- phases -----------------------------------------------------------------------------------------


@dataclass
class Figures:
    """What one bot showed in one run of the benchmark."""

    first_start: StartTimes | None = None
    starts: list[StartTimes] = field(default_factory=list)
    round_trips: RoundTrips | None = None

    def median(self, attribute: str) -> float:
        return statistics.median(getattr(s, attribute) for s in self.starts)


async def bench(sizes: Sizes) -> dict[str, Figures]:
    """Run both phases for both bots against one sandbox; return the figures by bot name."""
    demo = build_demo_world()
    with tempfile.TemporaryDirectory(prefix="botops-bench-") as folder:
        # No ack deadline: the first /health of a bot may pay for one-off work, and latency is measured.
        async with Sandbox(world=demo.world, ack_deadline=None) as sandbox:
            bots = contenders(sandbox, demo, Path(folder))
            figures = {bot.name: Figures() for bot in bots}
            print("first start of each bot (botops migrates its empty database) ...", flush=True)
            for bot in bots:
                async with running(sandbox, demo, bot) as (_, times):
                    figures[bot.name].first_start = times
            for run in range(sizes.start_runs):
                print(f"start-up run {run + 1} of {sizes.start_runs} ...", flush=True)
                for bot in bots if run % 2 == 0 else bots[::-1]:
                    async with running(sandbox, demo, bot) as (_, times):
                        figures[bot.name].starts.append(times)
            for bot in bots:
                print(f"{sizes.round_trips} /health round trips, {bot.name} ...", flush=True)
                async with running(sandbox, demo, bot) as (child, _):
                    figures[bot.name].round_trips = await health_round_trips(
                        sandbox, demo, child, sizes.round_trips
                    )
    return figures


# -- the report -------------------------------------------------------------------------------------


def _ms(value: float) -> str:
    return f"{value:,.1f} ms" if value < 100 else f"{value:,.0f} ms"


def print_report(figures: dict[str, Figures], sizes: Sizes) -> None:
    """Print the comparison table, the goals and the CPU shares."""
    bare, botops = figures["bare discord.py"], figures["botops"]
    assert bare.round_trips is not None
    assert botops.round_trips is not None
    n, count = sizes.start_runs, sizes.round_trips
    rows: list[tuple[str, float, float, float | None]] = [
        (f"spawn → on_ready (median of {n})", bare.median("ready_ms"), botops.median("ready_ms"), START_GOAL),
        (
            "  spawn → first REST request",
            bare.median("first_request_ms"),
            botops.median("first_request_ms"),
            None,
        ),
        ("  spawn → commands synced (PUT)", bare.median("synced_ms"), botops.median("synced_ms"), None),
        (
            f"/health round trip p50 (n={count})",
            bare.round_trips.p50_ms,
            botops.round_trips.p50_ms,
            ROUND_TRIP_GOAL,
        ),
        (
            f"/health round trip p99 (n={count})",
            bare.round_trips.p99_ms,
            botops.round_trips.p99_ms,
            ROUND_TRIP_GOAL,
        ),
    ]
    width = max(len(row[0]) for row in rows)
    print()
    print(f"{'metric':<{width}} | {'bare discord.py':>15} | {'botops':>10} | ratio | goal")
    print(f"{'-' * width}-|-{'-' * 15}-|-{'-' * 10}-|-------|------------")
    for metric, base, ours, goal in rows:
        ratio = ours / base
        verdict = "" if goal is None else f"≤ {goal:.1f}x {'met' if ratio <= goal else 'MISSED'}"
        print(f"{metric:<{width}} | {_ms(base):>15} | {_ms(ours):>10} | {ratio:5.2f} | {verdict}")
    print("ratio = botops ÷ bare discord.py; below 1 is faster.")
    assert bare.first_start is not None
    assert botops.first_start is not None
    print(
        f"\nfirst start, not in the median: bare {_ms(bare.first_start.ready_ms)}, "
        f"botops {_ms(botops.first_start.ready_ms)} (creates its database schema)"
    )
    print(f"\nCPU during the {count} round trips (one core = 100%):")
    for name, bot in figures.items():
        assert bot.round_trips is not None
        print(
            f"  {name:<16} bot CPU: {bot.round_trips.bot_cpu * 100:5.1f}%, "
            f"sandbox and driver CPU: {bot.round_trips.sandbox_cpu * 100:5.1f}%"
        )
    print(f"\nsizes: {sizes}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a sanity run")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    sizes = QUICK if args.quick else FULL
    print_report(asyncio.run(bench(sizes)), sizes)


if __name__ == "__main__":
    main()
