"""The bot's metrics and HTTP server in this process: route templates, recording, readiness before connect.

The bot here is a real :class:`Bot` on a real SQLite file that never connects to a gateway, so what is
tested is how it counts and what its server answers before Discord is reachable.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from botops.bot.core import Bot
from botops.bot.health import HealthReport, ShardHealth, collect_health
from botops.db.engine import create_engine_for_url
from botops.db.migrate import upgrade
from botops.db.writer import BatchedWriter
from botops.errors import ConfigurationError
from botops.observability.metrics import CommandUse, route_template
from botops.observability.server import ObservabilityServer
from botops.settings import Settings, load_settings
from tests.cogs.bots import bot_with_extension


@pytest.mark.parametrize(
    ("path", "route"),
    [
        ("/api/v10/channels/1234567890123456789/messages", "/channels/{id}/messages"),
        (
            "/api/v10/channels/1234567890123456789/messages/1234567890123456780",
            "/channels/{id}/messages/{id}",
        ),
        (
            "/api/v10/interactions/1234567890123456789/aW50ZXJhY3Rpb246MTIzNDU2Nzg5/callback",
            "/interactions/{id}/{token}/callback",
        ),
        (
            "/api/v10/webhooks/1234567890123456789/aW50ZXJhY3Rpb246MTIzNDU2Nzg5/messages/@original",
            "/webhooks/{id}/{token}/messages/@original",
        ),
        (
            "/api/v10/channels/1234567890123456789/messages/1234567890123456780/reactions/%F0%9F%91%8D/@me",
            "/channels/{id}/messages/{id}/reactions/{emoji}/@me",
        ),
        ("/api/v10/users/@me", "/users/@me"),
        ("/api/v10/gateway/bot", "/gateway/bot"),
    ],
)
def test_a_rest_path_becomes_its_route_template(path: str, route: str) -> None:
    assert route_template(path) == route


@given(
    st.integers(min_value=10**16, max_value=2**63 - 1),
    st.text(
        alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-", min_size=20, max_size=200
    ),
)
def test_no_id_or_interaction_token_survives_in_a_route_template(snowflake: int, token: str) -> None:
    route = route_template(f"/api/v10/webhooks/{snowflake}/{token}/messages/{snowflake}")

    assert str(snowflake) not in route
    assert token not in route


def report(**changes: object) -> HealthReport:
    fields: dict[str, object] = {
        "database_ok": True,
        "database_ms": 1.0,
        "database_error": None,
        "schema_current": True,
        "schema_revision": "0003",
        "latency_ms": 40.0,
        "extensions": ["botops.cogs.health"],
        "failed_extensions": {},
        "uptime_seconds": 5.0,
        "version": "0.1.0",
        "commit": "abc",
        "memory_bytes": 1,
        "shards": {0: ShardHealth(True, 40.0, 1, 0, 0, 0), 1: ShardHealth(True, 41.0, 1, 0, 0, 0)},
    }
    fields.update(changes)
    return HealthReport(**fields)  # type: ignore[arg-type]


def test_a_report_with_every_shard_up_and_a_current_schema_is_ready() -> None:
    assert report().problems == {}
    assert report().ready


@pytest.mark.parametrize(
    ("changes", "check", "says"),
    [
        (
            {"database_ok": False, "database_error": "OperationalError: disk I/O error"},
            "database",
            "disk I/O",
        ),
        ({"schema_current": False, "schema_revision": "0002"}, "schema", "botops db upgrade"),
        ({"shards": {}}, "gateway", "not connected to the gateway yet"),
        (
            {"shards": {0: ShardHealth(True, 40.0, 1, 0, 0, 0), 1: ShardHealth(False, None, 1, 0, 1, 0)}},
            "gateway",
            "shard 1 not connected",
        ),
        ({"failed_extensions": {"cogs.broken": "SyntaxError"}}, "extensions", "cogs.broken"),
    ],
)
def test_each_failing_check_is_named_with_what_to_do(
    changes: dict[str, object], check: str, says: str
) -> None:
    problems = report(**changes).problems

    assert list(problems) == [check]
    assert says in problems[check]


# -- a real bot that never connects ---------------------------------------------------------------------


@pytest_asyncio.fixture
async def bot(tmp_path: Path) -> AsyncIterator[Bot]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    settings = load_settings(None, database_url=url, http_port=0, log_dir=tmp_path / "logs")
    engine = create_engine_for_url(url)
    await upgrade(engine)
    client = Bot(settings, engine, builtin_extensions=())
    try:
        yield client
    finally:
        await client.close()
        await engine.dispose()


def samples(bot: Bot) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    body, _ = bot.metrics.exposition()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }


@pytest.mark.asyncio
async def test_a_finished_command_is_counted_with_its_duration_and_an_error_in_the_error_rate(
    bot: Bot,
) -> None:
    bot.record_command(CommandUse("rank", "slash", "success", 1, 0.02))
    bot.record_command(CommandUse("rank", "slash", "error", 1, 0.5))

    found = samples(bot)

    assert (
        found[("botops_commands_total", (("command", "rank"), ("kind", "slash"), ("outcome", "success")))]
        == 1
    )
    assert (
        found[("botops_commands_total", (("command", "rank"), ("kind", "slash"), ("outcome", "error")))] == 1
    )
    assert found[("botops_command_duration_seconds_count", (("command", "rank"), ("kind", "slash")))] == 2
    assert found[("botops_errors_total", (("where", "command"),))] == 1
    assert bot.metrics.errors_in_window() == 1


@pytest.mark.asyncio
async def test_a_registered_writer_shows_its_pending_rows_and_each_flush(bot: Bot) -> None:
    async def write(_connection: object, _batch: dict[int, int]) -> None:
        return None

    writer: BatchedWriter[int, int] = BatchedWriter(bot.engine, write, merge=int.__add__, name="demo")
    bot.add_writer(writer)
    writer.add(1, 1)
    writer.add(2, 1)
    assert samples(bot)[("botops_writer_pending_rows", (("writer", "demo"),))] == 2

    await bot.flush_writers()

    found = samples(bot)
    assert found[("botops_writer_pending_rows", (("writer", "demo"),))] == 0
    assert found[("botops_writer_flushes_total", (("writer", "demo"),))] == 1
    assert found[("botops_writer_flush_duration_seconds_count", (("writer", "demo"),))] == 1


@pytest.mark.asyncio
async def test_before_the_gateway_connects_readyz_is_503_and_livez_200(bot: Bot) -> None:
    server = ObservabilityServer(bot, bot.settings)
    await server.start()
    try:
        assert server.url is not None
        async with aiohttp.ClientSession() as session:
            async with session.get(server.url + "/readyz") as response:
                assert response.status == 503
                body = await response.json()
            async with session.get(server.url + "/livez") as live:
                assert live.status == 200
    finally:
        await server.stop()

    assert body["problems"] == {"gateway": "not connected to the gateway yet"}


@pytest.mark.asyncio
async def test_a_port_in_use_is_refused_naming_http_port(bot: Bot) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings: Settings = bot.settings.model_copy(update={"http_port": port})

        with pytest.raises(ConfigurationError) as caught:
            await ObservabilityServer(bot, settings).start()

    assert caught.value.variable == "HTTP_PORT"
    assert f"port {port} on 127.0.0.1 is in use" in str(caught.value)


@pytest.mark.asyncio
async def test_an_event_handlers_error_and_the_errors_discord_py_swallows_are_counted(bot: Bot) -> None:
    try:
        raise RuntimeError("a listener failed")
    except RuntimeError:
        await bot.on_error("on_message")
    logging.getLogger("discord.ext.tasks").error("Unhandled exception in internal background task")
    logging.getLogger("discord.ui.view").error("Ignoring exception in view")
    logging.getLogger("discord.gateway").error("a reconnect is not an error of the bot")

    found = samples(bot)

    assert found[("botops_errors_total", (("where", "event"),))] == 1
    assert found[("botops_errors_total", (("where", "task"),))] == 1
    assert found[("botops_errors_total", (("where", "view"),))] == 1
    assert bot.metrics.errors_in_window() == 3


@pytest.mark.asyncio
async def test_an_extension_unloaded_since_start_up_and_a_closing_bot_are_not_ready(tmp_path: Path) -> None:
    async with bot_with_extension(tmp_path, "botops.cogs.stats") as bot:
        bot.required_extensions = ("botops.cogs.stats",)  # what setup_hook records after loading
        await bot.unload_extension("botops.cogs.stats")

        unloaded = await collect_health(bot)
        await bot.close()
        closed = await collect_health(bot)

    assert unloaded.problems["extensions"] == "not loaded: botops.cogs.stats"
    assert closed.problems["shutdown"] == "the bot is shutting down"


@pytest.mark.asyncio
async def test_a_shard_process_is_ready_only_with_its_own_shards_and_exports_them_before_they_connect(
    tmp_path: Path,
) -> None:
    async with bot_with_extension(tmp_path, "botops.cogs.stats", shard_ids=[1], shard_count=2) as bot:
        report = await collect_health(bot)
        found = samples(bot)

    assert list(report.shards) == [1]
    assert report.problems["gateway"] == "shard 1 not connected"
    assert found[("botops_gateway_connected", (("shard", "1"),))] == 0
    assert ("botops_gateway_connected", (("shard", "0"),)) not in found
