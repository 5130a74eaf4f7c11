"""The HTTP server inside the bot process: ``/livez``, ``/readyz``, ``/status`` and ``/metrics``.

* ``/livez`` answers 200 while the process and its event loop run, whether or not Discord is reachable:
  a supervisor restarts the bot only when this stops answering.
* ``/readyz`` answers 200 when every shard is connected, the database answers, the schema is current
  and every extension loaded; otherwise 503 with the failing checks. Deploys wait on it.
* ``/status`` is everything ``/health`` shows, as JSON, plus shards, reconnects and the error rate;
  ``botops health`` prints it.
* ``/metrics`` is the Prometheus exposition of :attr:`Bot.metrics`.

The control routes (``POST /control/flush`` writes the batched rows now, ``POST /control/reload``
applies a deploy's extension changes, ``POST /control/stop`` closes the bot) answer only requests from
loopback that carry the control token the bot made at start and published in ``STATE_DIR/bot.json``
(see :mod:`botops.instance`); ``HTTP_TOKEN`` does not open them.

It listens on ``HTTP_HOST:HTTP_PORT`` (127.0.0.1:8080 by default). With ``HTTP_TOKEN`` set, every other
path but ``/livez`` wants ``Authorization: Bearer <token>``. The server also runs the samplers the metrics
need: event-loop lag twice a second, the database size once a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from aiohttp import web

from botops.aio import cancel_and_wait
from botops.bot.health import DATABASE_TIMEOUT, HealthReport, collect_health
from botops.bot.reloading import ExtensionChanges, apply_extension_changes
from botops.db.engine import connect, database_size
from botops.errors import ConfigurationError
from botops.instance import CONTROL_PREFIX

if TYPE_CHECKING:
    from botops.bot.core import Bot
    from botops.settings import Settings

__all__ = ["DATABASE_SAMPLE_INTERVAL", "ObservabilityServer", "serve_observability", "status_document"]

log = logging.getLogger(__name__)

#: Seconds between two measurements of the database size for ``botops_database_size_bytes``.
DATABASE_SAMPLE_INTERVAL = 60.0

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def status_document(report: HealthReport) -> dict[str, Any]:
    """Return ``/status``'s JSON for ``report``: readiness first, then every check's detail."""
    return {
        "ready": report.ready,
        "healthy": report.healthy,
        "problems": report.problems,
        "version": report.version,
        "commit": report.commit,
        "uptime_seconds": round(report.uptime_seconds, 1),
        "database": {
            "ok": report.database_ok,
            "ms": report.database_ms,
            "error": report.database_error,
            "schema_revision": report.schema_revision,
            "schema_current": report.schema_current,
            "size_bytes": report.database_size_bytes,
        },
        "gateway": {
            "latency_ms": report.latency_ms,
            "shards": {str(shard_id): asdict(shard) for shard_id, shard in sorted(report.shards.items())},
            "reconnects": sum(shard.reconnects for shard in report.shards.values()),
        },
        "guilds": report.guilds,
        "extensions": {"loaded": report.extensions, "failed": report.failed_extensions},
        "errors_last_hour": report.errors_last_hour,
        "memory_bytes": report.memory_bytes,
        "backup": _backup_document(report),
    }


def _backup_document(report: HealthReport) -> dict[str, Any]:
    newest = report.newest_backup
    return {
        "newest": None
        if newest is None
        else {
            "id": newest.id,
            "created_at": newest.created_at.isoformat(),
            "age_seconds": round(newest.age_seconds()),
            "reason": newest.reason,
            "size_bytes": newest.compressed_size,
            "duration_seconds": newest.duration_seconds,
            "verified": newest.verified,
        },
        "next_scheduled": report.next_backup_at.isoformat() if report.next_backup_at else None,
    }


class ObservabilityServer:
    """The bot's HTTP server and the metric samplers; :meth:`start` it, then :meth:`stop` it."""

    def __init__(self, bot: Bot, settings: Settings, *, control_token: str | None = None) -> None:
        self.bot = bot
        self.host = settings.http_host
        self.port = settings.http_port
        self._token = settings.http_token.get_secret_value() if settings.http_token else None
        self._control_token = control_token
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closing: asyncio.Task[None] | None = None  # a /control/stop's close, awaited, never cancelled
        self.url: str | None = None

    def application(self) -> web.Application:
        """Return the aiohttp application with the four routes, and the control routes with a token."""
        app = web.Application(middlewares=[self._authorize])
        app.router.add_get("/livez", self._livez)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/status", self._status)
        app.router.add_get("/metrics", self._metrics)
        if self._control_token is not None:
            app.router.add_post(f"{CONTROL_PREFIX}flush", self._flush)
            app.router.add_post(f"{CONTROL_PREFIX}reload", self._reload)
            app.router.add_post(f"{CONTROL_PREFIX}stop", self._stop)
        return app

    async def start(self) -> None:
        """Listen on the configured address and start the samplers.

        Raises:
            ConfigurationError: the address is in use or cannot be bound; names HTTP_PORT or HTTP_HOST.
        """
        runner = web.AppRunner(self.application(), access_log=None, handle_signals=False)
        await runner.setup()
        try:
            await web.TCPSite(runner, self.host, self.port).start()
        except OSError as error:
            await runner.cleanup()
            raise _bind_error(self.host, self.port, error) from error
        self._runner = runner
        host, port = runner.addresses[0][:2]
        self.url = f"http://{_url_host(host)}:{port}"
        self._tasks = [
            asyncio.create_task(self._supervised("loop lag", self.bot.metrics.sample_loop_lag)),
            asyncio.create_task(self._supervised("database size", self._sample_database_size)),
        ]
        log.info("serving /livez /readyz /status /metrics on %s", self.url)

    async def stop(self) -> None:
        """Stop the samplers and the server."""
        await cancel_and_wait(self._tasks)
        self._tasks.clear()
        if self._closing is not None:
            await asyncio.shield(self._closing)  # the close it started flushes the writers: let it end
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- routes ----------------------------------------------------------------------------------------

    async def _livez(self, _request: web.Request) -> web.Response:
        return web.json_response({"alive": True, "uptime_seconds": round(self.bot.uptime_seconds, 1)})

    async def _readyz(self, _request: web.Request) -> web.Response:
        report = await collect_health(self.bot)
        body = {"ready": report.ready, "commit": report.commit, "problems": report.problems}
        return web.json_response(body, status=200 if report.ready else 503)

    async def _status(self, _request: web.Request) -> web.Response:
        return web.json_response(status_document(await collect_health(self.bot)))

    async def _metrics(self, request: web.Request) -> web.Response:
        body, content_type = self.bot.metrics.exposition(request.headers.get("Accept"))
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

    async def _flush(self, _request: web.Request) -> web.Response:
        rows = await self.bot.flush_writers()
        log.info("flushed %d pending rows on request (control)", rows)
        return web.json_response({"rows": rows})

    async def _reload(self, request: web.Request) -> web.Response:
        try:
            document = await request.json()
            changes = ExtensionChanges(
                reload=_names(document, "reload"),
                load=_names(document, "load"),
                unload=_names(document, "unload"),
                forget=_names(document, "forget"),
                reload_all=document.get("reload_all") is True,
                package=self.bot.settings.extensions_package,
            )
        except (ValueError, AttributeError, TypeError) as error:
            return web.json_response(
                {"error": f"a reload wants a JSON object of module lists: {error}"}, status=400
            )
        outcome = await apply_extension_changes(self.bot, changes)
        body = {"ok": outcome.ok, "done": outcome.done, "failed": outcome.failed, "cause": outcome.cause}
        return web.json_response(body, status=200 if outcome.ok else 409)

    async def _stop(self, _request: web.Request) -> web.Response:
        log.warning("closing the bot on request (control)")
        if self._closing is None and not self.bot.is_closed():
            self._closing = asyncio.create_task(self.bot.close(), name="botops-control-stop")
        return web.json_response({"stopping": True})

    @web.middleware
    async def _authorize(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith(CONTROL_PREFIX):
            if request.remote not in _LOOPBACK:
                return web.json_response({"error": "control routes answer only to this machine"}, status=403)
            if not _bearer_matches(request, self._control_token):
                return _unauthorized(
                    "this path needs Authorization: Bearer <the token in STATE_DIR/bot.json>"
                )
        elif request.path != "/livez" and not _bearer_matches(request, self._token):
            return _unauthorized("this path needs Authorization: Bearer <HTTP_TOKEN>")
        try:
            return await handler(request)
        except web.HTTPException:
            raise
        except Exception:
            self.bot.metrics.record_error("http")
            log.exception("%s %s failed", request.method, request.path)
            return web.json_response({"error": "internal error; the bot's log has the details"}, status=500)

    # -- samplers --------------------------------------------------------------------------------------

    async def _sample_database_size(self) -> None:
        gauge = self.bot.metrics.database_size
        while True:
            try:
                async with asyncio.timeout(DATABASE_TIMEOUT), connect(self.bot.engine) as connection:
                    gauge.set(await database_size(connection))
            except Exception as failure:  # /readyz and /health report the database; here it is unknown
                gauge.set(float("nan"))
                log.debug("could not measure the database size: %s", type(failure).__name__)
            await asyncio.sleep(DATABASE_SAMPLE_INTERVAL)

    async def _supervised(self, name: str, sample: Callable[[], Awaitable[None]]) -> None:
        """Run a sampler; if it fails, log it and start it again after a pause that grows to a minute."""
        delay = 1.0
        while True:
            started = time.monotonic()
            try:
                await sample()
            except Exception:
                self.bot.metrics.record_error("sampler")
                log.exception("the %s sampler failed; restarting it in %.0f s", name, delay)
            if time.monotonic() - started > 60:
                delay = 1.0  # it ran a good while: a new failure starts the backoff over
            await asyncio.sleep(delay)
            delay = min(delay * 2, 60.0)


@contextlib.asynccontextmanager
async def serve_observability(
    bot: Bot, settings: Settings, *, control_token: str | None = None
) -> AsyncIterator[ObservabilityServer | None]:
    """Run the HTTP server for the block (nothing when ``HTTP_ENABLED`` is off); with the control routes
    when ``control_token`` is given.

    Raises:
        ConfigurationError: the address is in use or cannot be bound.
    """
    if not settings.http_enabled:
        log.info("the HTTP server is off (HTTP_ENABLED=false): no /livez, /readyz, /status or /metrics")
        yield None
        return
    server = ObservabilityServer(bot, settings, control_token=control_token)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def _names(document: Any, key: str) -> tuple[str, ...]:
    """Return the module names under ``key`` of a reload request; anything but a list of names is refused."""
    names = document.get(key, [])
    if not isinstance(names, list) or not all(
        isinstance(name, str) and all(part.isidentifier() for part in name.split(".")) for name in names
    ):
        raise ValueError(f"{key!r} must be a list of module names")
    return tuple(names)


_LOOPBACK = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})


def _bearer_matches(request: web.Request, expected: str | None) -> bool:
    """Return whether ``request`` carries ``expected`` as its bearer token (anything, when it is None)."""
    if expected is None:
        return True
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(token.encode(), expected.encode())


def _unauthorized(message: str) -> web.Response:
    return web.json_response(
        {"error": message}, status=401, headers={"WWW-Authenticate": 'Bearer realm="botops"'}
    )


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _bind_error(host: str, port: int, error: OSError) -> ConfigurationError:
    if error.errno == errno.EADDRINUSE:
        return ConfigurationError(
            "HTTP_PORT",
            f"port {port} on {host} is in use (another bot?): set HTTP_PORT to a free port, "
            "or HTTP_ENABLED=false",
        )
    return ConfigurationError(
        "HTTP_HOST", f"cannot listen on {host}:{port} ({error.strerror or error}): check HTTP_HOST"
    )
