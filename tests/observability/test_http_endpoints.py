"""The bot's HTTP server end to end: the real bot process, its sandbox, and HTTP from outside.

One bot serves the module, with HTTP_TOKEN set. Members run commands through the sandbox; what the
bot counted is read from ``/metrics`` the way Prometheus reads it, and readiness from ``/readyz`` and
``botops health`` while the sandbox cuts the gateway and lets it resume.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families

from botops.cli.codes import ExitCode
from tests.bot.process import RunningBot, clean_environment, running_bot, write_extensions

pytestmark = pytest.mark.asyncio(loop_scope="module")

TOKEN = "http-token-for-the-tests-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
#: How long a test waits for the bot to notice a change (a dropped gateway, a resume).
CATCH_UP = 20.0


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def bot(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningBot]:
    folder = tmp_path_factory.mktemp("observed")
    write_extensions(folder)
    async with running_bot(folder, extra={"HTTP_TOKEN": TOKEN}) as running:
        yield running


async def get(bot: RunningBot, path: str, *, auth: bool = True) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(bot.http_url + path, headers=AUTH if auth else {}) as response,
    ):
        return response.status, await response.text()


async def get_json(bot: RunningBot, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as session, session.get(bot.http_url + path, headers=AUTH) as response:
        return response.status, await response.json()


def sample(exposition: str, name: str, **labels: str) -> float:
    """Return the value of the sample ``name`` with exactly these labels (0 when Prometheus shows none)."""
    for family in text_string_to_metric_families(exposition):
        for found in family.samples:
            if found.name == name and all(found.labels.get(k) == v for k, v in labels.items()):
                return found.value
    return 0.0


async def eventually(check: Callable[[], Any], what: str) -> Any:
    async with asyncio.timeout(CATCH_UP):
        while True:
            result = await check()
            if result:
                return result
            await asyncio.sleep(0.1)
    raise AssertionError(what)  # pragma: no cover - the timeout raises first


async def health_cli(bot: RunningBot, *options: str) -> subprocess.CompletedProcess[str]:
    environment = clean_environment() | {"HTTP_TOKEN": TOKEN}
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "botops", "health", "--url", bot.http_url, *options],
        env=environment,
        cwd=bot.folder,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_metrics_count_each_command_by_outcome_and_the_error(bot: RunningBot) -> None:
    member, admin = bot.demo.members[0], bot.owner
    for _ in range(3):
        await bot.slash("greet", member)
    await bot.slash("boom", member)
    refused = await bot.slash("health", member, enforce_permissions=False)
    assert "administrator" in (refused.content or "").lower()
    await bot.slash("health", admin)

    _, exposition = await get(bot, "/metrics")

    assert sample(exposition, "botops_commands_total", command="greet", outcome="success") == 3
    assert sample(exposition, "botops_commands_total", command="boom", outcome="error") == 1
    assert sample(exposition, "botops_commands_total", command="health", outcome="refused") == 1
    assert sample(exposition, "botops_commands_total", command="health", outcome="success") == 1
    assert sample(exposition, "botops_errors_total", where="command") == 1
    assert sample(exposition, "botops_command_duration_seconds_count", command="greet", kind="slash") == 3
    assert sample(exposition, "botops_gateway_events_total", type="INTERACTION_CREATE") >= 6
    callbacks = sample(
        exposition,
        "botops_rest_requests_total",
        method="POST",
        route="/interactions/{id}/{token}/callback",
        status="200",
    )
    assert callbacks >= 6
    assert sample(exposition, "botops_gateway_connected", shard="0") == 1
    assert sample(exposition, "botops_guilds") == 1


async def test_metrics_count_text_commands_by_outcome(bot: RunningBot) -> None:
    general = bot.demo.general
    await bot.sandbox.send_message(general, bot.owner, "!reload cogs.greet")
    await bot.sandbox.send_message(general, bot.demo.members[0], "!reload cogs.greet")

    async def counted() -> str | None:
        _, exposition = await get(bot, "/metrics")
        text_uses = [
            sample(exposition, "botops_commands_total", command="reload", kind="text", outcome=outcome)
            for outcome in ("success", "refused")
        ]
        return exposition if all(text_uses) else None

    exposition = await eventually(counted, "the text commands were never counted")
    assert sample(exposition, "botops_commands_total", command="reload", kind="text", outcome="success") == 1
    assert sample(exposition, "botops_commands_total", command="reload", kind="text", outcome="refused") == 1


async def test_metrics_name_routes_by_template_so_no_interaction_token_shows(bot: RunningBot) -> None:
    result = await bot.sandbox.invoke_slash("greet", member=bot.demo.members[1], channel=bot.demo.general)
    await result.response(10.0)

    _, exposition = await get(bot, "/metrics")

    assert result.interaction.token not in exposition
    assert bot.sandbox.token not in exposition


async def test_every_path_but_livez_wants_the_token(bot: RunningBot) -> None:
    for path in ("/readyz", "/status", "/metrics"):
        status, body = await get(bot, path, auth=False)
        assert status == 401, path
        assert "Authorization: Bearer" in body

    status, _ = await get(bot, "/livez", auth=False)

    assert status == 200


async def test_status_shows_what_health_shows_the_shards_and_the_errors(bot: RunningBot) -> None:
    await bot.slash("boom", bot.demo.members[2])

    status, document = await get_json(bot, "/status")

    assert status == 200
    assert document["ready"] is True
    assert document["database"]["ok"] is True
    assert document["database"]["schema_current"] is True
    assert document["database"]["size_bytes"] > 0
    assert document["gateway"]["shards"]["0"]["connected"] is True
    assert "botops.cogs.health" in document["extensions"]["loaded"]
    assert "cogs.greet" in document["extensions"]["loaded"]
    assert document["errors_last_hour"] >= 1


async def test_readyz_turns_503_while_the_gateway_is_down_and_200_after_resume(bot: RunningBot) -> None:
    faults = bot.sandbox.faults
    assert (await get(bot, "/readyz"))[0] == 200
    faults.hold_hello()  # the bot reconnects at once, then waits for its HELLO until released
    try:
        assert faults.drop() == 1

        async def not_ready() -> Any:
            status, document = await get_json(bot, "/readyz")
            return document if status == 503 else None

        document = await eventually(not_ready, "/readyz never turned 503")
        assert document["problems"]["gateway"] == "shard 0 not connected"
        assert (await get(bot, "/livez", auth=False))[0] == 200
        down, alive = await asyncio.gather(health_cli(bot), health_cli(bot, "--live"))
        assert down.returncode == ExitCode.FAILURE, down.stderr
        assert "shard 0 not connected" in down.stdout
        assert alive.returncode == ExitCode.OK, alive.stderr
    finally:
        faults.hold_hello(False)

    async def ready() -> bool:
        return (await get(bot, "/readyz"))[0] == 200

    await eventually(ready, "/readyz never turned 200 again")
    _, exposition = await get(bot, "/metrics")
    assert sample(exposition, "botops_gateway_resumes_total", shard="0") == 1
    assert sample(exposition, "botops_gateway_disconnects_total", shard="0") >= 1
    assert sample(exposition, "botops_gateway_identifies_total", shard="0") == 1
    up = await health_cli(bot)
    assert up.returncode == ExitCode.OK, up.stderr
    assert "1/1 shards connected" in up.stdout


async def test_livez_answers_throughout(bot: RunningBot) -> None:
    status, body = await get(bot, "/livez", auth=False)

    assert status == 200
    assert '"alive": true' in body


async def test_health_without_a_bot_says_nothing_answers_and_exits_1(tmp_path: Path) -> None:
    completed = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "botops", "health", "--url", "http://127.0.0.1:9"],
        env=clean_environment(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert completed.returncode == ExitCode.FAILURE
    assert "nothing answers at http://127.0.0.1:9" in completed.stderr
    assert "Traceback" not in completed.stderr
