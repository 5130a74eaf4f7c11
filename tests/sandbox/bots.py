"""Helpers shared by the end-to-end tests that run a discord.py bot against the sandbox."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol, TypeVar

import discord
import pytest

from botops.sandbox import DemoWorld, Sandbox
from botops.testing import run_bot

__all__ = ["SeeingBot", "eventually", "own_sandbox", "running"]

T = TypeVar("T")


class SeeingBot(Protocol):
    """A test bot that keeps every message it saw."""

    seen: list[discord.Message]


async def eventually(check: Callable[[], T | None], what: str, timeout: float = 5.0) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` after ``timeout``."""
    try:
        async with asyncio.timeout(timeout):
            # What tests wait on lives in discord.py's cache and the bot's own records, which signal nothing.
            while not (result := check()):  # noqa: ASYNC110
                await asyncio.sleep(0.01)
    except TimeoutError:
        pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
    return result


@contextlib.asynccontextmanager
async def own_sandbox(demo: DemoWorld, **options: Any) -> AsyncIterator[Sandbox]:
    """Run a sandbox with non-default options on the demo world; fail on unknown routes, like the fixture."""
    async with Sandbox(world=demo.world, **options) as server:
        yield server
    assert [f"{r.method} {r.path}" for r in server.unknown_routes] == []


@contextlib.asynccontextmanager
async def running(bot: Any, server: Sandbox, demo: DemoWorld) -> AsyncIterator[None]:
    """Run ``bot`` (a ``SeeingBot`` client) with ``run_bot``; at the end, check it still reads the gateway.

    Events arrive in order, so once the bot has seen a final probe message it has parsed everything
    the test made the sandbox send before it.
    """
    seeing: SeeingBot = bot
    async with run_bot(bot, server):
        yield
        probe = await server.send_message(demo.general, demo.admin, f"{demo.world.bot.mention} probe")
        await eventually(lambda: any(m.id == probe.id for m in seeing.seen), "the bot to see the probe")
