"""Pytest fixtures for testing a discord.py bot against the sandbox; enable with ``pytest_plugins``.

In a ``conftest.py``::

    pytest_plugins = ["botops.testing"]

then, in a test (pytest-asyncio)::

    async def test_ping(sandbox, demo):
        async with run_bot(make_my_bot(), sandbox):
            result = await sandbox.invoke_slash("ping", member=demo.admin, channel=demo.general)
            assert (await result.response()).content == "pong"

``sandbox`` fails the test at teardown if the bot called a route the sandbox does not know, so a test
never passes while the bot silently got a 404.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import discord
import pytest
import pytest_asyncio

from botops.endpoints import redirect_discord, restore_discord
from botops.sandbox import DemoWorld, Sandbox, build_demo_world

__all__ = ["demo", "run_bot", "sandbox"]


@pytest.fixture
def demo() -> DemoWorld:
    """A fresh demo world: one guild with channels, an administrator, a moderator and members."""
    return build_demo_world()


@pytest_asyncio.fixture
async def sandbox(demo: DemoWorld) -> AsyncIterator[Sandbox]:
    """A running sandbox serving ``demo``; the test fails if an unknown route was called."""
    async with Sandbox(world=demo.world) as server:
        yield server
    unknown = [f"{r.method} {r.path}" for r in server.unknown_routes]
    if unknown:
        pytest.fail(f"the bot called routes the sandbox does not know: {unknown}")


@contextlib.asynccontextmanager
async def run_bot(client: discord.Client, server: Sandbox, *, timeout: float = 10.0) -> AsyncIterator[None]:
    """Run ``client`` against ``server`` until the block ends; wait for ``on_ready`` first."""
    redirect_discord(server.api_base, server.gateway_url, environment="development")
    task = asyncio.create_task(client.start(server.token), name="sandbox-bot")
    try:
        ready = asyncio.create_task(client.wait_until_ready())
        done, _ = await asyncio.wait({ready, task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            ready.cancel()
            task.result()  # re-raises why the bot stopped before it was ready
        if ready not in done:
            ready.cancel()
            raise TimeoutError(f"the bot was not ready after {timeout:g}s")
        yield
        if task.done() and not task.cancelled() and task.exception() is not None:
            # discord.py's connection died while the block ran, e.g. on a payload it could not parse.
            raise RuntimeError("the bot stopped while the test ran") from task.exception()
    finally:
        await client.close()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(task, return_exceptions=True)
        restore_discord()
