"""Benchmark the sandbox against a bare discord.py bot: start to READY, /ping latency, throughput.

Run ``.venv/bin/python bench/sandbox.py`` (or ``make bench``); ``--quick`` shrinks every size for a
sanity run. The bot is a plain ``discord.Client`` with a ``CommandTree`` holding ``/ping`` (answers
``pong``) and an ``on_message`` counter. Start-up is measured with the bot in this process; throughput
with the bot in a child process (this file run with ``--bot-child``), so that the CPU the sandbox
spends (this process) and the CPU the bot spends (the child) are measured apart. The table compares
each figure with the reference measured for discord-protocol.md on the same kind of machine; see
``bench/README.md`` for what each figure means. Everything runs on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import time
from collections.abc import Awaitable
from dataclasses import dataclass

import discord
import psutil
from discord import app_commands
from measure import CpuMeter, callback_times, percentile  # bench/measure.py, beside this file

from botops.endpoints import redirect_discord, restore_discord
from botops.sandbox import DemoWorld, Sandbox, build_demo_world
from botops.sandbox.interactions import Interaction
from botops.sandbox.rest import RecordedRequest

# The child learns where its channel and guild are from these, next to DISCORD_* from the sandbox.
GUILD_VARIABLE = "BENCH_GUILD_ID"
CHANNEL_VARIABLE = "BENCH_CHANNEL_ID"
READY_TEXT = "bench:ready"
DONE_TEXT = "bench:done"
QUIT_TEXT = "bench:quit"
SEEN_PREFIX = "bench:seen "
#: The child gives up after this long whatever happens, so a broken run never leaves a process behind.
CHILD_LIFETIME = 300.0
#: Upper bound on any one wait of the benchmark.
PHASE_TIMEOUT = 120.0


@dataclass(frozen=True)
class Sizes:
    """How much each phase does; ``--quick`` uses the small set."""

    start_runs: int
    idle_pings: int
    paced_pings: int
    burst: int
    messages: int


FULL = Sizes(start_runs=5, idle_pings=300, paced_pings=2000, burst=2000, messages=20_000)
QUICK = Sizes(start_runs=2, idle_pings=50, paced_pings=200, burst=300, messages=2_000)


# -- the bare bot -----------------------------------------------------------------------------------


class BareBot(discord.Client):
    """A discord.py bot with nothing but ``/ping`` and a message counter; what the figures are about."""

    def __init__(self, guild_id: int, *, guild_ready_timeout: float, report_channel: int | None) -> None:
        intents = discord.Intents.default()
        intents.members = True
        intents.message_content = True
        super().__init__(intents=intents, guild_ready_timeout=guild_ready_timeout)
        self.guild = discord.Object(guild_id)
        self.report_channel = report_channel
        self.tree = app_commands.CommandTree(self)
        self.seen = 0
        self.connected_at: float | None = None
        self.ready_at: float | None = None
        self.ready = asyncio.Event()

        @self.tree.command(name="ping", description="Check that the bot answers", guild=self.guild)
        async def ping(interaction: discord.Interaction) -> None:
            await interaction.response.send_message("pong")

    async def setup_hook(self) -> None:
        await self.tree.sync(guild=self.guild)

    async def on_connect(self) -> None:
        if self.connected_at is None:
            self.connected_at = time.perf_counter()

    async def on_ready(self) -> None:
        if self.ready_at is None:
            self.ready_at = time.perf_counter()
        self.ready.set()
        if self.report_channel is not None:
            await self.get_partial_messageable(self.report_channel).send(READY_TEXT)

    async def on_message(self, message: discord.Message) -> None:
        if self.user is not None and message.author.id == self.user.id:
            return
        if message.content == DONE_TEXT:
            seen, self.seen = self.seen, 0
            await message.channel.send(f"{SEEN_PREFIX}{seen}")
        elif message.content == QUIT_TEXT:
            await self.close()
        else:
            self.seen += 1


async def run_child() -> None:
    """Run the bare bot against the sandbox named in the environment until told to quit."""
    env = os.environ
    redirect_discord(env["DISCORD_API_BASE"], env["DISCORD_GATEWAY_URL"], environment="development")
    bot = BareBot(
        int(env[GUILD_VARIABLE]), guild_ready_timeout=0.1, report_channel=int(env[CHANNEL_VARIABLE])
    )
    async with asyncio.timeout(CHILD_LIFETIME), bot:
        await bot.start(env["DISCORD_TOKEN"])


# -- measuring helpers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Flow:
    """What a batch of interactions showed: throughput and latency from injection to callback."""

    count: int
    per_second: float
    p50_ms: float
    p99_ms: float


async def wait_acknowledged(interactions: list[Interaction], timeout: float) -> None:
    """Wait until the bot answered every interaction; poll, so that waiting costs the sandbox nothing."""
    async with asyncio.timeout(timeout):
        index = 0
        while index < len(interactions):
            if interactions[index].acknowledged:
                index += 1
            else:
                await asyncio.sleep(0.005)


def flow_of(sandbox: Sandbox, interactions: list[Interaction], since: int, started: float) -> Flow:
    """Summarise answered ``interactions`` injected from ``started`` (``time.monotonic``)."""
    wrong = [i.id for i in interactions if (i.callback or {}).get("data", {}).get("content") != "pong"]
    if wrong:
        raise RuntimeError(f"{len(wrong)} of {len(interactions)} /ping answers were not 'pong'")
    answered = callback_times(sandbox, since)
    latencies = [(answered[i.id] - i.created_at) * 1000 for i in interactions]
    finished = max(answered[i.id] for i in interactions)
    return Flow(
        count=len(interactions),
        per_second=len(interactions) / (finished - started),
        p50_ms=percentile(latencies, 0.50),
        p99_ms=percentile(latencies, 0.99),
    )


async def ping_burst(sandbox: Sandbox, demo: DemoWorld, count: int, *, pace: float | None) -> Flow:
    """Invoke ``/ping`` ``count`` times without waiting (``pace`` seconds apart), then wait for all."""
    since = len(sandbox.requests)
    interactions: list[Interaction] = []
    started = time.monotonic()
    for _ in range(count):
        result = await sandbox.invoke_slash("ping", member=demo.admin, channel=demo.general)
        interactions.append(result.interaction)
        if pace is not None:
            await asyncio.sleep(pace)
    await wait_acknowledged(interactions, PHASE_TIMEOUT)
    return flow_of(sandbox, interactions, since, started)


async def ping_idle(sandbox: Sandbox, demo: DemoWorld, count: int) -> Flow:
    """Invoke ``/ping`` ``count`` times one after the other, each after the previous answer and 1 ms."""
    since = len(sandbox.requests)
    interactions: list[Interaction] = []
    started = time.monotonic()
    for _ in range(count):
        result = await sandbox.invoke_slash("ping", member=demo.admin, channel=demo.general)
        await result.response(timeout=10.0)
        interactions.append(result.interaction)
        await asyncio.sleep(0.001)
    return flow_of(sandbox, interactions, since, started)


async def message_flood(sandbox: Sandbox, demo: DemoWorld, count: int) -> tuple[float, int]:
    """Post ``count`` member messages; return events per second until the bot saw them all, and its count."""
    author = demo.members[0]
    started = time.monotonic()
    for number in range(count):
        await sandbox.send_message(demo.general, author, f"message {number}")
        if number % 64 == 63:
            # Let the gateway writer send while we inject, as a live guild would.
            await asyncio.sleep(0)
    since = len(sandbox.requests)
    await sandbox.send_message(demo.general, author, DONE_TEXT)
    report = await sandbox.wait_for_request(
        "POST",
        rf"^/channels/{demo.general.id}/messages$",
        lambda r: str((r.body or {}).get("content", "")).startswith(SEEN_PREFIX),
        timeout=PHASE_TIMEOUT,
        since=since,
    )
    seen = int(report.body["content"].removeprefix(SEEN_PREFIX))
    return count / (report.at - started), seen


# -- phases -----------------------------------------------------------------------------------------


@dataclass
class Results:
    """Every figure of one run of the benchmark."""

    cold_connect_ms: float = 0.0
    cold_ready_ms: float = 0.0
    connect_ms: float = 0.0
    ready_ms: float = 0.0
    inprocess_burst: Flow | None = None
    spawn_ready_ms: float = 0.0
    idle: Flow | None = None
    paced: Flow | None = None
    burst: Flow | None = None
    messages_per_second: float = 0.0
    messages_seen: int = 0
    messages_sent: int = 0
    cpu: dict[str, tuple[float, float]] | None = None


async def start_once() -> tuple[float, float]:
    """Start a fresh bot in this process against a fresh sandbox; return ms to on_connect and on_ready."""
    demo = build_demo_world()
    async with Sandbox(world=demo.world) as sandbox:
        redirect_discord(sandbox.api_base, sandbox.gateway_url, environment="development")
        bot = BareBot(demo.guild.id, guild_ready_timeout=0.05, report_channel=None)
        try:
            began = time.perf_counter()
            task = asyncio.create_task(bot.start(sandbox.token), name="bench-bot")
            await asyncio.wait_for(bot.ready.wait(), 30.0)
            assert bot.connected_at is not None
            assert bot.ready_at is not None
            return (bot.connected_at - began) * 1000, (bot.ready_at - began) * 1000
        finally:
            await bot.close()
            await asyncio.gather(task, return_exceptions=True)
            restore_discord()


async def measure_start(results: Results, sizes: Sizes) -> None:
    """Measure start → READY and → on_ready in this process: one cold run, then the median of several."""
    results.cold_connect_ms, results.cold_ready_ms = await start_once()
    runs = [await start_once() for _ in range(sizes.start_runs)]
    results.connect_ms = statistics.median(c for c, _ in runs)
    results.ready_ms = statistics.median(r for _, r in runs)


async def measure_inprocess_burst(results: Results, sizes: Sizes) -> None:
    """Run the burst with bot and sandbox sharing this process's event loop, as the reference did."""
    demo = build_demo_world()
    async with Sandbox(world=demo.world, ack_deadline=None) as sandbox:
        redirect_discord(sandbox.api_base, sandbox.gateway_url, environment="development")
        bot = BareBot(demo.guild.id, guild_ready_timeout=0.05, report_channel=None)
        task = asyncio.create_task(bot.start(sandbox.token), name="bench-bot")
        try:
            await asyncio.wait_for(bot.ready.wait(), 30.0)
            results.inprocess_burst = await ping_burst(sandbox, demo, sizes.burst, pace=None)
        finally:
            await bot.close()
            await asyncio.gather(task, return_exceptions=True)
            restore_discord()


async def measure_child(results: Results, sizes: Sizes) -> None:
    """Run the bot in a child process and measure latency and throughput, with each side's CPU."""
    demo = build_demo_world()
    # No ack deadline: in a burst of 2000 the last answers come seconds late, which is the point.
    async with Sandbox(world=demo.world, ack_deadline=None) as sandbox:
        env = {
            **os.environ,
            **sandbox.environment(),
            GUILD_VARIABLE: str(demo.guild.id),
            CHANNEL_VARIABLE: str(demo.bot_commands.id),
        }
        spawned = time.monotonic()
        child = await asyncio.create_subprocess_exec(sys.executable, __file__, "--bot-child", env=env)
        try:
            ready = await unless_child_exits(
                child,
                sandbox.wait_for_request(
                    "POST",
                    rf"^/channels/{demo.bot_commands.id}/messages$",
                    lambda r: (r.body or {}).get("content") == READY_TEXT,
                    timeout=60.0,
                ),
            )
            results.spawn_ready_ms = (ready.at - spawned) * 1000
            meter = CpuMeter(psutil.Process(child.pid))
            cpu: dict[str, tuple[float, float]] = {}
            with meter.measure():
                results.idle = await ping_idle(sandbox, demo, sizes.idle_pings)
            cpu["idle /ping"] = meter.shares
            with meter.measure():
                results.paced = await ping_burst(sandbox, demo, sizes.paced_pings, pace=0.001)
            cpu["paced /ping"] = meter.shares
            with meter.measure():
                results.burst = await ping_burst(sandbox, demo, sizes.burst, pace=None)
            cpu["burst /ping"] = meter.shares
            with meter.measure():
                results.messages_per_second, results.messages_seen = await message_flood(
                    sandbox, demo, sizes.messages
                )
            cpu["messages"] = meter.shares
            results.messages_sent = sizes.messages
            results.cpu = cpu
            await sandbox.send_message(demo.general, demo.members[0], QUIT_TEXT)
            await asyncio.wait_for(child.wait(), 15.0)
        finally:
            if child.returncode is None:
                child.terminate()
                try:
                    await asyncio.wait_for(child.wait(), 15.0)
                except TimeoutError:
                    child.kill()
                    await child.wait()


async def unless_child_exits(
    child: asyncio.subprocess.Process, waiting: Awaitable[RecordedRequest]
) -> RecordedRequest:
    """Await ``waiting``; raise ``RuntimeError`` if the bot child exits first."""
    wait = asyncio.ensure_future(waiting)
    exited = asyncio.ensure_future(child.wait())
    try:
        await asyncio.wait({wait, exited}, return_when=asyncio.FIRST_COMPLETED)
        if not wait.done():
            raise RuntimeError(f"the bot child exited with code {child.returncode} before it was ready")
        return wait.result()
    finally:
        for future in (wait, exited):
            future.cancel()


# -- the report -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One line of the table; ``reference`` is the (low, high) range from discord-protocol.md."""

    metric: str
    value: float
    unit: str
    reference: tuple[float, float] | None


def rows_of(results: Results) -> list[Row]:
    """Lay the figures out against the reference; a missing phase is simply left out."""
    rows = [
        Row(
            "start → READY (on_connect), in-process, cold first run", results.cold_connect_ms, "ms", (33, 33)
        ),
        Row("start → READY (on_connect), in-process, median", results.connect_ms, "ms", (6, 10)),
        Row(
            "start → on_ready (guild_ready_timeout 0.05), in-process, median",
            results.ready_ms,
            "ms",
            (57, 60),
        ),
        Row(
            "spawn → on_ready, separate process (guild_ready_timeout 0.1)",
            results.spawn_ready_ms,
            "ms",
            (591, 591),
        ),
    ]
    if results.idle is not None:
        rows += [
            Row(f"/ping RTT idle, p50 (n={results.idle.count})", results.idle.p50_ms, "ms", (2.5, 3.1)),
            Row(f"/ping RTT idle, p99 (n={results.idle.count})", results.idle.p99_ms, "ms", None),
        ]
    if results.paced is not None:
        n = results.paced.count
        rows += [
            Row(f"/ping RTT paced 1 ms, p50 (n={n})", results.paced.p50_ms, "ms", (3.6, 3.6)),
            Row(f"/ping RTT paced 1 ms, p99 (n={n})", results.paced.p99_ms, "ms", (17, 17)),
            Row(f"/ping paced 1 ms, interactions/s (n={n})", results.paced.per_second, "/s", (478, 478)),
        ]
    if results.burst is not None:
        n = results.burst.count
        rows += [
            Row(
                f"/ping burst, interactions/s, separate process (n={n})",
                results.burst.per_second,
                "/s",
                (482, 504),
            ),
            Row(
                f"/ping burst, latency p50 (queueing), separate process (n={n})",
                results.burst.p50_ms,
                "ms",
                (3200, 3200),
            ),
        ]
    if results.inprocess_burst is not None:
        n = results.inprocess_burst.count
        rows.append(
            Row(
                f"/ping burst, interactions/s, in-process (n={n})",
                results.inprocess_burst.per_second,
                "/s",
                (430, 510),
            )
        )
    if results.messages_sent:
        rows.append(
            Row(
                f"MESSAGE_CREATE events/s, gateway only (n={results.messages_sent})",
                results.messages_per_second,
                "/s",
                (4160, 4160),
            )
        )
    return rows


def _figure(value: float, unit: str) -> str:
    if unit == "/s":
        return f"{value:,.0f}/s"
    return f"{value:,.1f} ms" if value < 100 else f"{value:,.0f} ms"


def _reference(reference: tuple[float, float] | None, unit: str) -> str:
    if reference is None:
        return "—"
    low, high = reference
    if low == high:
        return _figure(low, unit)
    return f"{_figure(low, unit).split()[0].removesuffix('/s')}-{_figure(high, unit)}"


def print_report(results: Results, sizes: Sizes) -> None:
    """Print the comparison table and the CPU shares."""
    rows = rows_of(results)
    width = max(len(r.metric) for r in rows)
    print()
    print(f"{'metric':<{width}} | {'botops sandbox':>14} | {'reference':>14} | ratio")
    print(f"{'-' * width}-|-{'-' * 14}-|-{'-' * 14}-|------")
    for row in rows:
        ratio = "—"
        if row.reference is not None:
            ratio = f"{row.value / ((row.reference[0] + row.reference[1]) / 2):.2f}"
        print(
            f"{row.metric:<{width}} | {_figure(row.value, row.unit):>14} | "
            f"{_reference(row.reference, row.unit):>14} | {ratio}"
        )
    print(
        "ratio = botops sandbox ÷ reference (midpoint of a range): for ms below 1 is faster, for /s above 1."
    )
    if results.messages_sent and results.messages_seen != results.messages_sent:
        print(f"WARNING: the bot saw {results.messages_seen} of {results.messages_sent} messages")
    if results.cpu:
        print()
        for phase, (sandbox_share, bot_share) in results.cpu.items():
            print(
                f"{phase:<12} sandbox CPU: {sandbox_share * 100:5.1f}% of one core, "
                f"bot CPU: {bot_share * 100:5.1f}%"
            )
    print(f"\nsizes: {sizes}")


async def bench(sizes: Sizes) -> Results:
    """Run every phase and return the figures."""
    results = Results()
    print("start → READY, bot in this process ...", flush=True)
    await measure_start(results, sizes)
    print(f"/ping burst of {sizes.burst}, bot in this process ...", flush=True)
    await measure_inprocess_burst(results, sizes)
    print("bot in a separate process: idle, paced and burst /ping, then message events ...", flush=True)
    await measure_child(results, sizes)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a sanity run")
    parser.add_argument("--bot-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    # Only errors: the redirect warns on every start, by design, which would bury the table.
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    if args.bot_child:
        asyncio.run(run_child())
        return
    sizes = QUICK if args.quick else FULL
    print_report(asyncio.run(bench(sizes)), sizes)


if __name__ == "__main__":
    main()
