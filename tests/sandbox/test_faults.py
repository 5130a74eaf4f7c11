"""REST faults from a plain HTTP client: latency, refused connections, counted errors, 429 shapes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio

from botops.sandbox import DemoWorld, Sandbox


@pytest_asyncio.fixture
async def http(sandbox: Sandbox) -> AsyncIterator[aiohttp.ClientSession]:
    headers = {"Authorization": f"Bot {sandbox.token}"}
    async with aiohttp.ClientSession(base_url=sandbox.url, headers=headers) as session:
        yield session


async def _status(http: aiohttp.ClientSession, method: str, path: str) -> int:
    async with http.request(method, "/api/v10" + path) as response:
        await response.read()
        return response.status


@pytest.mark.asyncio
async def test_latency_delays_only_the_matching_route(
    http: aiohttp.ClientSession, sandbox: Sandbox, demo: DemoWorld
) -> None:
    sandbox.faults.latency("GET", r"^/channels/\d+$", 0.5)
    finished: list[str] = []

    async def fetch(name: str, path: str) -> None:
        await _status(http, "GET", path)
        finished.append(name)

    slow = asyncio.create_task(fetch("channel", f"/channels/{demo.general.id}"))
    await asyncio.sleep(0)
    await fetch("user", "/users/@me")
    await slow

    assert finished == ["user", "channel"]


@pytest.mark.asyncio
async def test_server_errors_are_answered_the_armed_number_of_times(
    http: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    sandbox.faults.server_error("GET", r"^/users/@me$", status=502, count=2)

    statuses = [await _status(http, "GET", "/users/@me") for _ in range(3)]

    assert statuses == [502, 502, 200]
    assert sandbox.faults.rest == []


@pytest.mark.asyncio
async def test_an_answering_fault_waits_while_an_earlier_one_answers_the_same_request(
    http: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    sandbox.faults.server_error("GET", r"^/users/@me$", count=1)
    sandbox.faults.rate_limit("GET", r"^/users/@me$", count=1)

    statuses = [await _status(http, "GET", "/users/@me") for _ in range(3)]

    assert statuses == [500, 429, 200]


@pytest.mark.asyncio
async def test_a_rate_limit_can_leave_out_via_as_cloudflare_does(
    http: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    sandbox.faults.rate_limit("GET", r"^/users/@me$", retry_after=2.5, via=False)

    async with http.get("/api/v10/users/@me") as response:
        body = await response.json()

    assert response.status == 429
    assert "Via" not in response.headers
    assert response.headers["Retry-After"] == "3"
    assert body["retry_after"] == 2.5


@pytest.mark.asyncio
async def test_a_global_rate_limit_says_so_in_headers_and_body(
    http: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    sandbox.faults.rate_limit("*", r".", retry_after=0.3, is_global=True)

    async with http.get("/api/v10/users/@me") as response:
        body = await response.json()

    assert response.headers["X-RateLimit-Global"] == "true"
    assert response.headers["X-RateLimit-Scope"] == "global"
    assert body["global"] is True


@pytest.mark.asyncio
async def test_refused_connections_fail_rest_and_gateway_until_switched_off(
    http: aiohttp.ClientSession, sandbox: Sandbox
) -> None:
    sandbox.faults.refuse_connections()

    with pytest.raises(aiohttp.ClientError):
        await _status(http, "GET", "/users/@me")
    async with aiohttp.ClientSession() as fresh:
        with pytest.raises(aiohttp.ClientError):
            await fresh.ws_connect(sandbox.gateway_url)

    sandbox.faults.refuse_connections(False)
    assert await _status(http, "GET", "/users/@me") == 200


@pytest.mark.asyncio
async def test_clear_disarms_every_fault(http: aiohttp.ClientSession, sandbox: Sandbox) -> None:
    sandbox.faults.server_error("*", r".", count=10)
    sandbox.faults.drop_heartbeat_acks()
    sandbox.faults.clear()

    assert await _status(http, "GET", "/users/@me") == 200
    assert sandbox.gateway.drop_heartbeat_acks is False
