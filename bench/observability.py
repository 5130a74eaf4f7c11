"""The cost of instrumentation: /ping per second through botops with metrics and Sentry on, and off.

Run ``.venv/bin/python bench/observability.py`` (or ``make bench-observability``); ``--quick`` makes
it a short sanity run. Both variants start through the same entry, the ``botops run`` command, from
this file run with ``--bot-child on|off``, each as a child process (``bench/startup.py``'s
``running``: spawned, ready once its ``on_ready`` posted ``bench:ready``, stopped with SIGTERM) in a
working directory of its own, with a SQLite database there and a ``cogs/`` holding the ready listener
and ``/ping`` (answers ``pong``). Each bot has its own sandbox (``build_demo_world()``,
``ack_deadline=None``) in this process, so both run at once and the load can switch between them
every few seconds:

* **on** is the real bot as ``botops run`` builds it: :attr:`Bot.metrics` counts every command, gateway
  event and REST request; the HTTP server listens on a free port (``HTTP_PORT=0``) with its loop-lag
  and database-size samplers, and this process GETs its ``/metrics`` every second while the bot is
  under load (Prometheus' load, exaggerated); Sentry is initialised with ``SENTRY_DSN`` pointing at an
  endpoint in this process that accepts and discards what it gets, ``SENTRY_TRACES_SAMPLE_RATE`` at
  its default.
* **off** is the same ``botops run`` with ``HTTP_ENABLED=false`` and no ``SENTRY_DSN`` (no server, no
  samplers, no Sentry), and the bot class replaced, in this file only, by :class:`UninstrumentedBot`.

A round sends ``commands`` ``/ping`` to one bot, then as many to the other (the order alternates
between rounds), ``concurrency`` in flight (each worker invokes, awaits the answer, checks it is
``pong``, invokes again). commands/s = commands ÷ (first invocation → last answer reaching the
sandbox); bot CPU = psutil ``cpu_times()`` of that bot's process over the same span. The table shows
each variant's median over the rounds; the overhead is the median over the rounds of 1 - on ÷ off of
the commands per second (the goal from the issue: under 5%), and on ÷ off - 1 of the medians of the
bot's CPU per 1000 commands. See ``bench/README.md``. Everything runs on 127.0.0.1 and stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import gzip
import json
import logging
import os
import platform
import re
import statistics
import sys
import tempfile
import time
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parent))  # bench/startup.py, when imported from elsewhere

from measure import callback_times, percentile
from startup import READY_COG, Contender, clean_environment, running

from botops.bot import Bot
from botops.observability.metrics import CommandUse
from botops.sandbox import DemoWorld, Sandbox, build_demo_world
from botops.sandbox.interactions import Interaction
from botops.settings import Settings

#: The goal from the issue: instrumentation costs less than this share of the commands per second.
GOAL_OVERHEAD = 0.05
#: /ping in flight at once: enough to keep the bot at a full core (96-98% measured), so a cost on the
#: bot's side shows as lost throughput, not only as latency.
CONCURRENCY = 8
#: Both bots log at production's default level (development's, DEBUG, is for reading, not for load).
LOG_LEVEL = "INFO"
#: A round whose bot had less of a core than this shared the machine with other work (marked *).
BUSY_SHARE = 0.85
#: Seconds between two GETs of /metrics (Prometheus scrapes every 15 s or more).
SCRAPE_INTERVAL = 1.0
#: Upper bound on one command's answer and on one round of one bot.
COMMAND_TIMEOUT = 30.0
LOAD_TIMEOUT = 300.0
VARIANTS = ("off", "on")
DEFAULT_SAMPLE_RATE = float(Settings.model_fields["sentry_traces_sample_rate"].default)
SERVING_RE = re.compile(r"serving /livez /readyz /status /metrics on (http://\S+)")
PING_COUNTED_RE = re.compile(
    r'^botops_commands_total\{command="ping",kind="slash",outcome="success"\} (\S+)$', re.MULTILINE
)

log = logging.getLogger(__name__)

PING_COG = '''"""/ping, which answers pong: the cheapest slash command, for bench/observability.py."""

import discord
from discord import app_commands
from discord.ext import commands


class BenchPing(commands.Cog):
    @app_commands.command(name="ping", description="Answer pong")
    async def ping(self, interaction: discord.Interaction) -> None:
        await interaction.response.send_message("pong")


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(BenchPing())
'''


@dataclass(frozen=True)
class Sizes:
    """How much a run does; ``--quick`` uses the small set."""

    rounds: int
    commands: int
    warmup: int


FULL = Sizes(rounds=10, commands=2_000, warmup=500)
QUICK = Sizes(rounds=2, commands=500, warmup=200)


@dataclass(frozen=True)
class Options:
    """How the bots run and are driven; the command line can change each."""

    concurrency: int = CONCURRENCY
    log_level: str = LOG_LEVEL
    sample_rate: float | None = None  # None: botops' default SENTRY_TRACES_SAMPLE_RATE

    @property
    def effective_sample_rate(self) -> float:
        return DEFAULT_SAMPLE_RATE if self.sample_rate is None else self.sample_rate


# -- the bot without instrumentation (this file with --bot-child off) ----------------------------------


class UninstrumentedBot(Bot):
    """botops' ``Bot`` with its own measuring taken out; everything a feature relies on is left in.

    Stripped: the aiohttp REST trace (discord.py opens its session at login from ``http.http_trace``),
    the count of gateway events in ``dispatch``, the command counter and duration histogram in
    ``record_command`` (the command hooks still run: ``/stats`` counts commands with them), and the flush
    timing of the batched writers. ``FunnelTree`` still notes each command's arrival (``/stats`` keeps
    the durations) and calls ``start_command_transaction``, which returns at once with Sentry off.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.http.http_trace = None

    def dispatch(self, event_name: str, /, *args: Any, **kwargs: Any) -> None:
        super(Bot, self).dispatch(event_name, *args, **kwargs)

    def record_command(self, use: CommandUse) -> None:
        for hook in self.command_hooks:
            try:
                hook(use)
            except Exception:  # as Bot.record_command does
                log.exception("command hook %r failed on /%s", hook, use.name)

    def add_writer(self, writer: Any) -> None:
        if writer not in self.writers:
            self.writers.append(writer)


def run_child(variant: str) -> None:
    """Run ``botops run`` in the working directory, the bot class stripped first for ``off``."""
    if variant == "off":
        import botops.runner

        if "Bot" not in botops.runner.run_bot_until_stopped.__code__.co_names:
            raise RuntimeError("botops.runner no longer builds the bot by the name Bot: update this bench")
        botops.runner.Bot = UninstrumentedBot  # type: ignore[attr-defined]
    from botops.cli import app

    app(args=["run", "--env-file", str(Path.cwd() / "no.env")], prog_name="botops")


# -- what the "on" bot talks to: a Sentry that discards, and a scraper ----------------------------------


def transactions_in(envelope: bytes) -> int:
    """Count the transaction items of a Sentry envelope (a header line, then item header and payload)."""
    _, _, rest = envelope.partition(b"\n")
    count = 0
    while rest.strip():
        line, _, rest = rest.partition(b"\n")
        if not line.strip():
            continue
        header = json.loads(line)
        length = header.get("length")
        if length is None:
            _, _, rest = rest.partition(b"\n")
        else:
            rest = rest[length:].removeprefix(b"\n")
        count += header.get("type") == "transaction"
    return count


class SentrySink:
    """An HTTP endpoint that takes Sentry envelopes, counts them and their transactions, keeps nothing."""

    def __init__(self) -> None:
        self.envelopes = 0
        self.transactions = 0
        self.port = 0

    @property
    def dsn(self) -> str:
        return f"http://publickey@127.0.0.1:{self.port}/1"

    async def _envelope(self, request: web.Request) -> web.Response:
        body = await request.read()
        encoding = request.headers.get("Content-Encoding", "").lower()
        if encoding == "gzip":
            body = gzip.decompress(body)
        elif encoding == "deflate":
            body = zlib.decompress(body)
        self.envelopes += 1
        self.transactions += transactions_in(body)
        return web.json_response({})

    @contextlib.asynccontextmanager
    async def serving(self) -> AsyncIterator[SentrySink]:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/api/{project}/envelope/", self._envelope)
        runner = web.AppRunner(app, access_log=None, auto_decompress=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, "127.0.0.1", 0).start()
            self.port = runner.addresses[0][1]
            yield self
        finally:
            await runner.cleanup()


class Scraper:
    """GET ``/metrics`` every ``interval`` seconds while :attr:`active` is set, on a keep-alive connection."""

    def __init__(self, url: str, interval: float) -> None:
        self.url = f"{url}/metrics"
        self.interval = interval
        self.active = asyncio.Event()
        self.scrapes = 0
        self.failures = 0

    def scrape_while(self, active: bool) -> None:
        """Scrape from now on (the on bot is under load), or pause (the off bot's turn)."""
        if active:
            self.active.set()
        else:
            self.active.clear()

    async def scrape(self, session: aiohttp.ClientSession) -> str:
        async with session.get(self.url) as response:
            response.raise_for_status()
            return await response.text()

    async def _run(self, session: aiohttp.ClientSession) -> None:
        while True:
            await self.active.wait()
            try:
                await self.scrape(session)
                self.scrapes += 1
            except aiohttp.ClientError:
                self.failures += 1
            await asyncio.sleep(self.interval)

    async def pings_counted(self, session: aiohttp.ClientSession, expected: int) -> int:
        """Return the bot's count of successful /ping, waiting up to 2 s for it to reach ``expected``.

        A command is counted once its callback returned, a moment after its answer left.
        """
        counted = 0
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            match = PING_COUNTED_RE.search(await self.scrape(session))
            counted = int(float(match.group(1))) if match else 0
            if counted >= expected:
                break
            await asyncio.sleep(0.05)
        return counted

    @contextlib.asynccontextmanager
    async def scraping(self) -> AsyncIterator[aiohttp.ClientSession]:
        async with aiohttp.ClientSession() as session:
            task = asyncio.create_task(self._run(session), name="bench-scraper")
            try:
                yield session
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task


# -- the two bots ----------------------------------------------------------------------------------------


def prepare(
    variant: str, sandbox: Sandbox, demo: DemoWorld, folder: Path, sentry_dsn: str, options: Options
) -> Contender:
    """Prepare ``variant``'s working directory (ready listener, /ping, SQLite) on its own sandbox."""
    home = folder / variant
    (home / "cogs").mkdir(parents=True)
    (home / "cogs" / "__init__.py").write_text("")
    (home / "cogs" / "bench_ready.py").write_text(READY_COG)
    (home / "cogs" / "bench_ping.py").write_text(PING_COG)
    env = {
        **clean_environment(),
        **sandbox.environment(),
        "BENCH_GUILD_ID": str(demo.guild.id),
        "BENCH_CHANNEL_ID": str(demo.bot_commands.id),
        "ENVIRONMENT": "development",
        "DISCORD_DEV_GUILD_ID": str(demo.guild.id),
        "OWNER_IDS": str(demo.world.owner.id),
        "GUILD_READY_TIMEOUT": "0.1",
        "LOG_LEVEL": options.log_level,
        "DATABASE_URL": f"sqlite+aiosqlite:///{home / 'data' / 'bot.db'}",
        "LOG_DIR": str(home / "logs"),
    }
    if variant == "off":
        env["HTTP_ENABLED"] = "false"
    else:
        env.update({"HTTP_PORT": "0", "SENTRY_DSN": sentry_dsn})
        if options.sample_rate is not None:
            env["SENTRY_TRACES_SAMPLE_RATE"] = str(options.sample_rate)
    return Contender(
        name=variant,
        command=(sys.executable, str(Path(__file__).resolve()), "--bot-child", variant),
        cwd=home,
        env=env,
        output=folder / f"{variant}.out",
    )


def served_url(contender: Contender) -> str:
    """Return the URL of the HTTP server the bot logged when it started."""
    found = SERVING_RE.findall(contender.output.read_text(errors="replace"))
    if not found:
        raise RuntimeError(f"the {contender.name} bot is ready but never said where its HTTP server is")
    return str(found[-1])


@dataclass
class Round:
    """One timed load of one bot."""

    variant: str
    commands: int
    seconds: float
    bot_cpu_seconds: float
    bench_cpu_seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.commands / self.seconds

    @property
    def cpu_per_1000(self) -> float:
        return self.bot_cpu_seconds / self.commands * 1000


@dataclass
class Lane:
    """One variant: its sandbox, its running bot, and its rounds."""

    variant: str
    demo: DemoWorld
    sandbox: Sandbox
    bot: psutil.Process
    rounds: list[Round] = field(default_factory=list)

    def median(self, figure: Callable[[Round], float]) -> float:
        return statistics.median(figure(r) for r in self.rounds)

    def spread(self, figure: Callable[[Round], float], template: str) -> str:
        values = [figure(r) for r in self.rounds]
        if len(values) == 1:
            return ""
        return f" ({template.format(min(values))} to {template.format(max(values))})"


async def ping_load(lane: Lane, count: int, concurrency: int) -> tuple[float, list[Interaction]]:
    """Send ``count`` /ping, ``concurrency`` at a time; return (first invocation → last answer, them all).

    Raises:
        RuntimeError: an answer was not ``pong``.
    """
    sandbox, demo = lane.sandbox, lane.demo
    members = list(demo.members) or [demo.admin]
    sent: list[Interaction] = []
    issued = 0

    async def worker(number: int) -> None:
        nonlocal issued
        member = members[number % len(members)]
        while issued < count:
            issued += 1  # taken before the await, so the workers never send more than ``count``
            result = await sandbox.invoke_slash("ping", member=member, channel=demo.general)
            sent.append(result.interaction)
            answer = await result.response(timeout=COMMAND_TIMEOUT)
            if answer.content != "pong":
                raise RuntimeError(f"/ping answered {answer.content!r}, not 'pong'")

    since = len(sandbox.requests)
    started = time.monotonic()
    async with asyncio.timeout(LOAD_TIMEOUT), asyncio.TaskGroup() as group:
        for number in range(concurrency):
            group.create_task(worker(number))
    answered = callback_times(sandbox, since)
    return max(answered[i.id] for i in sent) - started, sent


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return float(times.user + times.system)


async def timed_round(lane: Lane, commands: int, concurrency: int) -> Round:
    """Time ``commands`` /ping through ``lane``'s bot, with its CPU and this process's."""
    me = psutil.Process()
    since = len(lane.sandbox.requests)
    bot_cpu, my_cpu = _cpu(lane.bot), _cpu(me)
    seconds, sent = await ping_load(lane, commands, concurrency)
    bot_cpu, my_cpu = _cpu(lane.bot) - bot_cpu, _cpu(me) - my_cpu
    answered = callback_times(lane.sandbox, since)
    latencies = [(answered[i.id] - i.created_at) * 1000 for i in sent]
    p50, p99 = percentile(latencies, 0.5), percentile(latencies, 0.99)
    return Round(lane.variant, commands, seconds, bot_cpu, my_cpu, p50, p99)


def settle_garbage_collector() -> None:
    """Collect, then keep what the sandboxes hold so far out of later full collections."""
    gc.collect()
    gc.freeze()


@dataclass
class Results:
    """Both variants' rounds, and what the on bot's instrumentation was seen doing."""

    lanes: dict[str, Lane]
    expected_count: int = 0
    counted: int = 0
    scrapes: int = 0
    envelopes: int = 0
    transactions: int = 0


async def bench(sizes: Sizes, options: Options) -> Results:
    """Start both bots, warm them up, run the rounds (the first bot alternating), stop them."""
    lanes: dict[str, Lane] = {}
    with tempfile.TemporaryDirectory(prefix="botops-bench-observability-") as folder:
        async with contextlib.AsyncExitStack() as stack:
            sink = await stack.enter_async_context(SentrySink().serving())  # outlives the bots' last sends
            urls: dict[str, str] = {}
            for variant in VARIANTS:
                demo = build_demo_world()
                sandbox = await stack.enter_async_context(Sandbox(world=demo.world, ack_deadline=None))
                contender = prepare(variant, sandbox, demo, Path(folder), sink.dsn, options)
                child, _ = await stack.enter_async_context(running(sandbox, demo, contender))
                lanes[variant] = Lane(variant, demo, sandbox, psutil.Process(child.pid))
                urls[variant] = served_url(contender) if variant == "on" else ""
            scraper = Scraper(urls["on"], SCRAPE_INTERVAL)
            session = await stack.enter_async_context(scraper.scraping())
            results = Results(lanes, expected_count=sizes.warmup + sizes.rounds * sizes.commands)
            for variant in VARIANTS:  # the first commands load guild settings, caches, code paths
                scraper.scrape_while(variant == "on")
                await ping_load(lanes[variant], sizes.warmup, options.concurrency)
            for number in range(sizes.rounds):
                for variant in VARIANTS if number % 2 == 0 else VARIANTS[::-1]:
                    settle_garbage_collector()
                    scraper.scrape_while(variant == "on")
                    result = await timed_round(lanes[variant], sizes.commands, options.concurrency)
                    lanes[variant].rounds.append(result)
                    print(f"  round {number + 1:>2} {variant:>3}: {describe(result)}", flush=True)
            scraper.scrape_while(False)
            results.counted = await scraper.pings_counted(session, results.expected_count)
            results.scrapes = scraper.scrapes
            if scraper.failures:
                raise RuntimeError(f"{scraper.failures} scrapes of {scraper.url} failed")
        # Both bots have stopped: the on bot sent what Sentry had queued before it exited.
        results.envelopes, results.transactions = sink.envelopes, sink.transactions
    return results


# -- the report -------------------------------------------------------------------------------------------


def describe(result: Round) -> str:
    share = result.bot_cpu_seconds / result.seconds
    return (
        f"{result.commands:,} /ping in {result.seconds:.2f} s = {result.rate:,.0f}/s, bot CPU "
        f"{result.cpu_per_1000:.3f} s per 1000 ({share:.0%} of a core{' *' if share < BUSY_SHARE else ''}), "
        f"latency p50 {result.p50_ms:.1f} ms, p99 {result.p99_ms:.1f} ms"
    )


def print_report(results: Results, sizes: Sizes, options: Options) -> None:
    """Print the table, what the on bot's instrumentation did, the overhead against the goal, the machine."""
    header = ("variant", "commands/s", "bot CPU s per 1000", "bot CPU", "bench CPU", "p50", "p99")
    lines = [header]
    for variant in VARIANTS:
        lane = results.lanes[variant]
        lines.append(
            (
                variant,
                f"{lane.median(lambda r: r.rate):,.0f}/s" + lane.spread(lambda r: r.rate, "{:,.0f}"),
                f"{lane.median(lambda r: r.cpu_per_1000):.3f}"
                + lane.spread(lambda r: r.cpu_per_1000, "{:.3f}"),
                f"{lane.median(lambda r: r.bot_cpu_seconds / r.seconds):.0%}",
                f"{lane.median(lambda r: r.bench_cpu_seconds / r.seconds):.0%}",
                f"{lane.median(lambda r: r.p50_ms):.1f} ms",
                f"{lane.median(lambda r: r.p99_ms):.1f} ms",
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    print()
    for index, line in enumerate(lines):
        print(" | ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip())
        if index == 0:
            print("-|-".join("-" * width for width in widths))
    print(
        f"\nmedians of {sizes.rounds} round(s) of {sizes.commands:,} /ping per variant, "
        f"{options.concurrency} in flight, LOG_LEVEL={options.log_level}; bot CPU and bench CPU as shares "
        "of one core"
    )
    handled = results.expected_count
    print(
        f"on: /metrics counted {results.counted:,} /ping of {handled:,}, {results.scrapes} scrapes; "
        f"Sentry got {results.envelopes} envelopes with {results.transactions} transactions "
        f"({results.transactions / handled:.1%} of the commands, SENTRY_TRACES_SAMPLE_RATE="
        f"{options.effective_sample_rate})"
    )
    if results.counted != handled:
        print(f"WARNING: the on bot's metrics counted {results.counted:,} /ping, not {handled:,}")
    busy = sum(
        r.bot_cpu_seconds / r.seconds < BUSY_SHARE for lane in results.lanes.values() for r in lane.rounds
    )
    if busy:
        print(
            f"{busy} round(s) marked *: the bot had less than {BUSY_SHARE:.0%} of a core, the machine was "
            "busy with other work; the round-by-round figure below holds up better than the medians then"
        )
    off, on = results.lanes["off"], results.lanes["on"]
    # Each round's two loads ran seconds apart, so their ratio shares the machine's load of the moment.
    pairs = [1 - b.rate / a.rate for a, b in zip(off.rounds, on.rounds, strict=True)]
    rate_cost = statistics.median(pairs)
    of_medians = 1 - on.median(lambda r: r.rate) / off.median(lambda r: r.rate)
    cpu_off, cpu_on = off.median(lambda r: r.cpu_per_1000), on.median(lambda r: r.cpu_per_1000)
    met = rate_cost < GOAL_OVERHEAD
    print(
        f"\n{'MET   ' if met else 'MISSED'} instrumentation costs {rate_cost:.1%} of the commands/s "
        f"(goal <{GOAL_OVERHEAD:.0%}): the median of the rounds' 1 - on ÷ off ({min(pairs):.1%} to "
        f"{max(pairs):.1%}); from the medians above, {of_medians:.1%}"
    )
    print(f"       and {cpu_on / cpu_off - 1:+.1%} bot CPU per command ({(cpu_on - cpu_off) * 1000:+.0f} µs)")
    print(f"\nsizes: {sizes}")
    print(
        f"machine: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}, load average {os.getloadavg()[0]:.2f} at the end"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds of 500 /ping per bot, a sanity run")
    parser.add_argument(
        "--rounds",
        type=int,
        help=f"rounds of both variants (default: {FULL.rounds}, --quick: {QUICK.rounds})",
    )
    parser.add_argument(
        "--concurrency", type=int, default=CONCURRENCY, help=f"/ping in flight (default: {CONCURRENCY})"
    )
    parser.add_argument(
        "--log-level",
        default=LOG_LEVEL,
        help=f"LOG_LEVEL of both bots (default: {LOG_LEVEL}, production's default; development's is DEBUG)",
    )
    parser.add_argument(
        "--traces-sample-rate",
        type=float,
        help=f"SENTRY_TRACES_SAMPLE_RATE of the on bot (default: botops' default, {DEFAULT_SAMPLE_RATE})",
    )
    parser.add_argument("--bot-child", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bot_child:
        run_child(args.bot_child)
        return
    sizes = QUICK if args.quick else FULL
    if args.rounds is not None:
        sizes = Sizes(rounds=max(1, args.rounds), commands=sizes.commands, warmup=sizes.warmup)
    options = Options(max(1, args.concurrency), args.log_level.upper(), args.traces_sample_rate)
    print(
        f"both bots running at once, each on its own sandbox; {sizes.warmup:,} /ping each to warm up, then "
        f"{sizes.rounds} round(s) of {sizes.commands:,} /ping per bot, {options.concurrency} in flight ...",
        flush=True,
    )
    print_report(asyncio.run(bench(sizes, options)), sizes, options)


if __name__ == "__main__":
    main()
