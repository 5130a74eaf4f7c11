"""``GET /gateway/bot``'s session start limit: set from Python or the control plane, spent by IDENTIFYs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import discord
import pytest
import pytest_asyncio

from botops.sandbox import Sandbox
from botops.sandbox.errors import SandboxError
from botops.testing import run_bot

pytestmark = pytest.mark.asyncio

CONTROL = "/_sandbox"


@pytest_asyncio.fixture
async def http(sandbox: Sandbox) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=sandbox.url) as session:
        yield session


async def session_start_limit(http: aiohttp.ClientSession, sandbox: Sandbox) -> dict[str, Any]:
    """Return the ``session_start_limit`` of ``GET /gateway/bot``, asked as a bot asks."""
    headers = {"Authorization": f"Bot {sandbox.token}"}
    async with http.get("/api/v10/gateway/bot", headers=headers) as response:
        assert response.status == 200
        limit: dict[str, Any] = (await response.json())["session_start_limit"]
        return limit


async def control(http: aiohttp.ClientSession, path: str, body: dict[str, Any] | None = None) -> Any:
    """POST to the control plane; return the status and the JSON answer."""
    headers = {"Content-Type": "application/json"}
    async with http.post(CONTROL + path, json=body, headers=headers) as response:
        return response.status, await response.json()


async def test_gateway_bot_reports_the_limit_set_from_python(
    http: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    sandbox.faults.session_start_limit(7, total=100, reset_after=3600)

    limit = await session_start_limit(http, sandbox)

    assert (limit["remaining"], limit["total"], limit["max_concurrency"]) == (7, 100, 1)
    assert 0 < limit["reset_after"] <= 3_600_000


async def test_each_identify_takes_one_session_start(http: aiohttp.ClientSession, sandbox: Sandbox) -> None:
    sandbox.faults.session_start_limit(7)

    async with run_bot(discord.Client(intents=discord.Intents.none()), sandbox):
        assert (await session_start_limit(http, sandbox))["remaining"] == 6


async def test_clearing_the_faults_gives_back_a_fresh_day(
    http: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    sandbox.faults.session_start_limit(0)

    sandbox.faults.clear()

    limit = await session_start_limit(http, sandbox)
    assert (limit["remaining"], limit["total"], limit["reset_after"]) == (1000, 1000, 86_400_000)


async def test_after_its_reset_the_window_starts_over_with_the_total(
    http: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    sandbox.faults.session_start_limit(0, total=50, reset_after=0.05)

    await asyncio.sleep(0.1)

    assert (await session_start_limit(http, sandbox))["remaining"] == 50


@pytest.mark.parametrize(
    ("remaining", "total", "reset_after"), [(-1, 1000, 60.0), (11, 10, 60.0), (0, 0, 60.0), (1, 10, 0.0)]
)
async def test_an_impossible_limit_is_refused(
    sandbox: Sandbox, remaining: int, total: int, reset_after: float
) -> None:
    with pytest.raises(SandboxError):
        sandbox.faults.session_start_limit(remaining, total=total, reset_after=reset_after)


async def test_the_control_plane_sets_the_limit_and_answers_it(
    http: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    status, answer = await control(http, "/faults/session_start_limit", {"remaining": 3, "reset_after": 60})

    assert status == 200
    assert (answer["remaining"], answer["total"]) == (3, 1000)
    reported = await session_start_limit(http, sandbox)
    assert (reported["remaining"], reported["total"]) == (3, 1000)
    assert 0 < reported["reset_after"] <= answer["reset_after"] <= 60_000


async def test_the_control_plane_refuses_more_remaining_than_total_naming_the_field(
    http: aiohttp.ClientSession,
) -> None:
    status, answer = await control(http, "/faults/session_start_limit", {"remaining": 20, "total": 10})

    assert status == 400
    assert "'remaining'" in answer["error"]
