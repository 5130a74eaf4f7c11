"""The bot's Prometheus metrics, named ``botops_*``, in a registry of the bot's own.

Two kinds of numbers live here. What happens on the hot path and has to be counted as it happens
(commands, REST requests, event-loop lag) goes straight into prometheus-client counters and histograms.
What the bot already knows (shard connections, gateway events by type, writers, guilds, the process)
is read only when Prometheus scrapes, by :class:`_BotCollector`, so it costs nothing between scrapes.

Labels stay low in cardinality: a shard id, a command's name, an outcome, a REST route *template*
(``/channels/{id}/messages``), never a user, guild or message id.
"""

from __future__ import annotations

import asyncio
import logging
import platform
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

import aiohttp
import discord
import psutil
from prometheus_client import CollectorRegistry, Gauge, Histogram, disable_created_metrics
from prometheus_client import Counter as PromCounter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from botops.bot.core import Bot
    from botops.db.writer import BatchedWriter

__all__ = [
    "ERROR_WINDOW",
    "STARTED",
    "SWALLOWED_ERROR_LOGGERS",
    "BotMetrics",
    "CommandKind",
    "CommandOutcome",
    "CommandUse",
    "FeatureCounters",
    "GatewayState",
    "ShardState",
    "command_use",
    "route_template",
]

log = logging.getLogger(__name__)

CommandKind = Literal["slash", "text"]
#: ``success``; ``refused`` (a check, a cooldown, bad input: the user was told why); ``error`` (a bug).
CommandOutcome = Literal["success", "refused", "error"]

#: The key of ``interaction.extras`` (and of a text command's extras) that holds its arrival time.
STARTED = "botops_started"
#: Seconds over which ``/status`` reports the error rate.
ERROR_WINDOW = 3600.0

#: The discord.py loggers through which it reports an error it caught and carried on from (an
#: autocomplete callback, a view's or a modal's callback, a ``tasks.loop``), by where it happened.
SWALLOWED_ERROR_LOGGERS: dict[str, str] = {
    "discord.app_commands.tree": "autocomplete",
    "discord.ui.view": "view",
    "discord.ui.modal": "modal",
    "discord.ext.tasks": "task",
}

# The ``*_created`` series would double the exposition and no dashboard of ours reads them.
disable_created_metrics()  # type: ignore[no-untyped-call]

_LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0)
_COMMAND_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
_REST_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_LAG_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
_FLUSH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0)


@dataclass(frozen=True, slots=True)
class CommandUse:
    """One finished command, as the metrics and the command statistics record it."""

    name: str
    kind: CommandKind
    outcome: CommandOutcome
    guild_id: int | None
    seconds: float
    at: float = field(default_factory=time.time)  # Unix time the command finished


def command_use(
    name: str, kind: CommandKind, outcome: CommandOutcome, guild_id: int | None, extras: dict[str, object]
) -> CommandUse:
    """Return the record of a finished command whose arrival the bot noted in ``extras``."""
    started = extras.get(STARTED)
    seconds = time.perf_counter() - started if isinstance(started, float) else 0.0
    return CommandUse(name, kind, outcome, guild_id, seconds)


@dataclass(slots=True)
class ShardState:
    """A shard's gateway connection as the bot saw it: connected means READY or RESUMED, not closed since."""

    connected: bool = False
    identifies: int = 0
    resumes: int = 0
    disconnects: int = 0
    changed_at: float = field(default_factory=time.monotonic)

    @property
    def reconnects(self) -> int:
        """Connections after the first: every RESUME and every IDENTIFY but the first."""
        return self.resumes + max(0, self.identifies - 1)


class GatewayState:
    """Every shard's :class:`ShardState`, kept by the bot's shard events."""

    def __init__(self) -> None:
        self.shards: dict[int, ShardState] = {}

    def _shard(self, shard_id: int) -> ShardState:
        state = self.shards.get(shard_id)
        if state is None:
            state = self.shards[shard_id] = ShardState()
        return state

    def identified(self, shard_id: int) -> None:
        """Record a READY: the shard identified and is connected."""
        state = self._shard(shard_id)
        state.identifies += 1
        state.connected, state.changed_at = True, time.monotonic()

    def resumed(self, shard_id: int) -> None:
        """Record a RESUMED: the shard is connected again without losing events."""
        state = self._shard(shard_id)
        state.resumes += 1
        state.connected, state.changed_at = True, time.monotonic()

    def disconnected(self, shard_id: int) -> None:
        """Record that the shard's connection closed."""
        state = self._shard(shard_id)
        state.disconnects += 1
        state.connected, state.changed_at = False, time.monotonic()


#: A path segment after one of these (at the given distance) is a token, a code or an emoji.
_PLACEHOLDER_AFTER: dict[str, tuple[int, str]] = {
    "webhooks": (2, "{token}"),  # /webhooks/{id}/{token}
    "interactions": (2, "{token}"),  # /interactions/{id}/{token}/callback
    "invites": (1, "{code}"),  # /invites/{code}
    "templates": (1, "{code}"),  # /guilds/templates/{code}
    "reactions": (1, "{emoji}"),  # /channels/{id}/messages/{id}/reactions/{emoji}
}


def route_template(path: str) -> str:
    """Return the route of a Discord REST path with ids, tokens, codes and emoji as placeholders.

    ``/api/v10/channels/123.../messages/456...`` becomes ``/channels/{id}/messages/{id}``;
    ``/api/v10/interactions/123.../<token>/callback`` becomes ``/interactions/{id}/{token}/callback``.
    So a label has as many values as Discord has routes, and no token ever reaches a metric. It runs
    for every REST request, hence string methods rather than regular expressions.
    """
    parts = path.split("/")
    first = 1
    if len(parts) > 2 and parts[1] == "api":
        first = 3 if parts[2][:1] == "v" and parts[2][1:].isdigit() else 2
    shown = parts[first:]
    placeholder_at = -1
    placeholder = ""
    for index, part in enumerate(shown):
        if index == placeholder_at and part:
            shown[index] = placeholder
        elif part.isdigit():
            shown[index] = "{id}"
        elif part in _PLACEHOLDER_AFTER and placeholder_at < index:
            distance, placeholder = _PLACEHOLDER_AFTER[part]
            placeholder_at = index + distance
    return "/" + "/".join(shown)


_M = TypeVar("_M", PromCounter, Histogram)


class BotMetrics:
    """The metrics of one bot: a registry of its own, so several bots in one process never mix."""

    def __init__(self, bot: Bot, *, version: str, commit: str) -> None:
        self._bot = bot
        self.registry = registry = CollectorRegistry()
        self.commands = PromCounter(
            "botops_commands", "Commands run, by name, kind and outcome",
            ["command", "kind", "outcome"], registry=registry,
        )  # fmt: skip
        self.command_seconds = Histogram(
            "botops_command_duration_seconds", "Time from a command's arrival to its end, answer included",
            ["command", "kind"], buckets=_COMMAND_BUCKETS, registry=registry,
        )  # fmt: skip
        self.errors = PromCounter(
            "botops_errors", "Unexpected errors, by where they happened", ["where"], registry=registry
        )
        self.rest_requests = PromCounter(
            "botops_rest_requests", "REST requests to Discord, by method, route template and status",
            ["method", "route", "status"], registry=registry,
        )  # fmt: skip
        self.rest_seconds = Histogram(
            "botops_rest_request_duration_seconds", "REST request time, by method",
            ["method"], buckets=_REST_BUCKETS, registry=registry,
        )  # fmt: skip
        self.rate_limited = PromCounter(
            "botops_rest_rate_limited", "REST answers 429 Too Many Requests, by route template and scope",
            ["route", "scope"], registry=registry,
        )  # fmt: skip
        self.gateway_latency = Histogram(
            "botops_gateway_latency_seconds", "Heartbeat round trips, one per heartbeat acknowledged",
            ["shard"], buckets=_LATENCY_BUCKETS, registry=registry,
        )  # fmt: skip
        self.loop_lag = Histogram(
            "botops_event_loop_lag_seconds", "How late the event loop ran a timer (sampled twice a second)",
            buckets=_LAG_BUCKETS, registry=registry,
        )  # fmt: skip
        self.writer_flush_seconds = Histogram(
            "botops_writer_flush_duration_seconds", "Time of a batched writer's flush, one transaction",
            ["writer"], buckets=_FLUSH_BUCKETS, registry=registry,
        )  # fmt: skip
        self.database_size = Gauge(
            "botops_database_size_bytes", "Size of the database (SQLite file or PostgreSQL database)",
            registry=registry,
        )  # fmt: skip
        self.database_size.set(float("nan"))  # unknown until the first measurement
        build = Gauge(
            "botops_build_info", "The running build; always 1",
            ["version", "commit", "python", "discordpy"], registry=registry,
        )  # fmt: skip
        build.labels(version, commit, platform.python_version(), discord.__version__).set(1)
        #: Gateway events by type (MESSAGE_CREATE ...), counted by the bot's dispatch.
        self.events: Counter[str] = Counter()
        self.gateway = GatewayState()
        self._recent_errors: deque[float] = deque(maxlen=100_000)
        #: Children of the labelled metrics by metric and label values: ``labels()`` takes a lock and
        #: checks every value on each call, which on the hot path costs more than the count itself.
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}
        registry.register(_BotCollector(bot, self))
        # discord.py swallows these errors after logging them: its log is the only place to count them.
        self._swallowed = _SwallowedErrors(self)
        for name in SWALLOWED_ERROR_LOGGERS:
            logging.getLogger(name).addHandler(self._swallowed)

    def close(self) -> None:
        """Stop counting discord.py's logged errors (the bot is closing)."""
        for name in SWALLOWED_ERROR_LOGGERS:
            logging.getLogger(name).removeHandler(self._swallowed)

    # -- recording --------------------------------------------------------------------------------------

    def _child(self, metric: _M, values: tuple[str, ...]) -> _M:
        """Return ``metric.labels(*values)``, looked up once per metric and label values."""
        key = (id(metric), values)  # the metrics live as long as this object, so their ids stay theirs
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return cast("_M", child)

    def record_command(self, use: CommandUse) -> None:
        """Count a finished command and its duration."""
        self._child(self.commands, (use.name, use.kind, use.outcome)).inc()
        self._child(self.command_seconds, (use.name, use.kind)).observe(use.seconds)
        if use.outcome == "error":
            self.record_error("command")

    def record_error(self, where: str) -> None:
        """Count an unexpected error (``command``, ``event``, ``http``...)."""
        self.errors.labels(where).inc()
        self._recent_errors.append(time.monotonic())

    def errors_in_window(self, window: float = ERROR_WINDOW) -> int:
        """Return how many unexpected errors happened in the last ``window`` seconds."""
        since = time.monotonic() - window
        recent = self._recent_errors
        while recent and recent[0] < since:
            recent.popleft()
        return len(recent)

    def watch_writer(self, writer: BatchedWriter[object, object]) -> None:
        """Observe each flush of ``writer`` in the flush-duration histogram."""
        observe = self.writer_flush_seconds.labels(writer.name).observe
        writer.observe_flush = observe

    def rest_trace(self) -> aiohttp.TraceConfig:
        """Return the aiohttp trace that counts discord.py's REST requests (pass as ``http_trace``)."""
        trace = aiohttp.TraceConfig()
        requests, seconds, limited = self.rest_requests, self.rest_seconds, self.rate_limited
        child = self._child

        async def started(
            _session: aiohttp.ClientSession, context: SimpleNamespace, _: aiohttp.TraceRequestStartParams
        ) -> None:
            context.started = time.perf_counter()

        async def ended(
            _session: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceRequestEndParams
        ) -> None:
            status = params.response.status
            if status == 101:  # the gateway's WebSocket upgrade is not a REST request
                return
            route = route_template(params.url.raw_path)
            child(requests, (params.method, route, str(status))).inc()
            child(seconds, (params.method,)).observe(time.perf_counter() - context.started)
            if status == 429:
                limited.labels(route, params.response.headers.get("X-RateLimit-Scope", "user")).inc()

        async def failed(
            _session: aiohttp.ClientSession,
            _context: SimpleNamespace,
            params: aiohttp.TraceRequestExceptionParams,
        ) -> None:
            if params.headers.get("Upgrade", "").lower() == "websocket":
                return  # a gateway connection that failed: the shard metrics show it
            requests.labels(params.method, route_template(params.url.raw_path), "failed").inc()

        trace.on_request_start.append(started)
        trace.on_request_end.append(ended)
        trace.on_request_exception.append(failed)
        return trace

    async def sample_loop_lag(self, interval: float = 0.5) -> None:
        """Measure how late the loop wakes a sleeping task, forever; also record new heartbeat latencies."""
        loop = asyncio.get_running_loop()
        observe = self.loop_lag.observe
        last_latency: dict[int, float] = {}
        while True:
            before = loop.time()
            await asyncio.sleep(interval)
            observe(max(0.0, loop.time() - before - interval))
            self._observe_latencies(last_latency)

    def _observe_latencies(self, last: dict[int, float]) -> None:
        # discord.py updates a shard's latency once per heartbeat ACK; a changed value is a new sample.
        for shard_id, seconds in self._bot.latencies:
            if seconds == seconds and seconds != float("inf") and last.get(shard_id) != seconds:
                last[shard_id] = seconds
                self.gateway_latency.labels(str(shard_id)).observe(seconds)

    def exposition(self, accept: str | None = None) -> tuple[bytes, str]:
        """Return the metrics in the format ``accept`` asks for (Prometheus text by default)."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type


class _SwallowedErrors(logging.Handler):
    """Count the errors discord.py logs and carries on from, by :data:`SWALLOWED_ERROR_LOGGERS`."""

    def __init__(self, metrics: BotMetrics) -> None:
        super().__init__(logging.ERROR)
        self.metrics = metrics

    def emit(self, record: logging.LogRecord) -> None:
        where = SWALLOWED_ERROR_LOGGERS.get(record.name)
        if where is not None:
            self.metrics.record_error(where)


class FeatureCounters(Collector):
    """Counters a feature keeps as plain numbers (no cost per event), read when Prometheus scrapes.

    ``counters`` maps a metric name (``botops_levels_awards``; the exposition adds ``_total``) to its
    help text and a function returning the count. A feature registers one in ``cog_load`` with
    ``bot.metrics.registry.register`` and unregisters it in ``cog_unload``; keeping the numbers in state
    that survives a reload keeps the counters from going back to zero.
    """

    def __init__(self, counters: dict[str, tuple[str, Callable[[], float]]]) -> None:
        self.counters = counters

    def collect(self) -> Iterator[Metric]:
        for name, (help_text, read) in self.counters.items():
            yield CounterMetricFamily(name, help_text, value=read())


class _BotCollector(Collector):
    """What the bot already holds, read at scrape time: shards, events, guilds, writers, the process."""

    def __init__(self, bot: Bot, metrics: BotMetrics) -> None:
        self.bot = bot
        self.metrics = metrics
        self.process = psutil.Process()
        self.started = time.time()

    def collect(self) -> Iterator[Metric]:
        yield from self._gateway()
        yield from self._writers()
        yield from self._process()
        guilds = GaugeMetricFamily("botops_guilds", "Guilds the bot is in")
        guilds.add_metric([], len(self.bot.guilds))
        yield guilds

    def _gateway(self) -> Iterator[Metric]:
        shards = self.metrics.gateway.shards
        connected = GaugeMetricFamily("botops_gateway_connected", "1 while the shard is READY or RESUMED",
                                      labels=["shard"])  # fmt: skip
        latency = GaugeMetricFamily(
            "botops_gateway_latency_last_seconds", "The shard's last heartbeat round trip", labels=["shard"]
        )
        counters = {
            name: CounterMetricFamily(f"botops_gateway_{name}", help_text, labels=["shard"])
            for name, help_text in (
                ("identifies", "Sessions started with IDENTIFY (each answered by READY)"),
                ("resumes", "Sessions resumed after a dropped connection"),
                ("disconnects", "Gateway connections that closed"),
            )
        }
        latencies = dict(self.bot.latencies)
        # A shard this process should run but that never connected shows as 0, so an alert can see it.
        expected = self.bot.shard_ids or range(self.bot.shard_count or 0)
        for shard_id in sorted({*expected, *shards}):
            state = shards.get(shard_id) or ShardState()
            label = [str(shard_id)]
            connected.add_metric(label, 1 if state.connected else 0)
            counters["identifies"].add_metric(label, state.identifies)
            counters["resumes"].add_metric(label, state.resumes)
            counters["disconnects"].add_metric(label, state.disconnects)
            seconds = latencies.get(shard_id, float("nan"))
            latency.add_metric(label, seconds if seconds != float("inf") else float("nan"))
        yield connected
        yield latency
        yield from counters.values()
        events = CounterMetricFamily(
            "botops_gateway_events", "Gateway events received, by type", labels=["type"]
        )
        for event_type, count in sorted(self.metrics.events.items()):
            events.add_metric([event_type], count)
        yield events

    def _writers(self) -> Iterator[Metric]:
        pending = GaugeMetricFamily(
            "botops_writer_pending_rows", "Rows a batched writer holds for its next flush", labels=["writer"]
        )
        in_flight = GaugeMetricFamily(
            "botops_writer_in_flight_rows", "Rows of the flush in progress", labels=["writer"]
        )
        flushes = CounterMetricFamily("botops_writer_flushes", "Flushes that committed", labels=["writer"])
        failures = CounterMetricFamily(
            "botops_writer_failures", "Flushes that failed (their rows were kept)", labels=["writer"]
        )
        for writer in self.bot.writers:
            label = [writer.name]
            pending.add_metric(label, writer.pending)
            in_flight.add_metric(label, writer.in_flight)
            flushes.add_metric(label, writer.flushes)
            failures.add_metric(label, writer.failures)
        yield from (pending, in_flight, flushes, failures)

    def _process(self) -> Iterator[Metric]:
        # psutil rather than prometheus-client's ProcessCollector: that one reads /proc, and many of
        # the bots this serves run on Windows.
        with self.process.oneshot():
            memory = self.process.memory_info().rss
            cpu = self.process.cpu_times()
            threads = self.process.num_threads()
        resident = GaugeMetricFamily("botops_process_resident_memory_bytes", "Resident memory of the process")
        resident.add_metric([], memory)
        seconds = CounterMetricFamily(
            "botops_process_cpu_seconds", "CPU time of the process, user and system"
        )
        seconds.add_metric([], cpu.user + cpu.system)
        thread_count = GaugeMetricFamily("botops_process_threads", "Threads of the process")
        thread_count.add_metric([], threads)
        started = GaugeMetricFamily("botops_process_start_time_seconds", "When the bot started, Unix time")
        started.add_metric([], self.started)
        yield from (resident, seconds, thread_count, started)
