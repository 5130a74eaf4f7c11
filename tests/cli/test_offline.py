"""The offline demo's console: names and error text from the world are shown as they are, never as markup."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from botops.cli.offline import OfflineDemo
from botops.sandbox import DemoWorld, Sandbox


async def _printed(sandbox: Sandbox, demo: DemoWorld, capsys: pytest.CaptureFixture[str]) -> str:
    """Run the demo's printer (no conversation) until a member's message is shown; return the output."""
    # The bot is not used by a demo that does not chat.
    task = asyncio.create_task(OfflineDemo(sandbox, demo, chat=False)(None))  # type: ignore[arg-type]
    out = ""
    try:
        await sandbox.send_message(demo.general, demo.members[0], "hello")
        async with asyncio.timeout(10):
            while "hello" not in out:
                await asyncio.sleep(0.02)  # captured stdout offers nothing to await
                out += capsys.readouterr().out
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return out


@pytest.mark.asyncio
async def test_a_guild_name_that_looks_like_markup_is_shown_as_it_is(
    sandbox: Sandbox, demo: DemoWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    demo.guild.name = "[bold]Demo[/bold]"

    assert "[bold]Demo[/bold]" in await _printed(sandbox, demo, capsys)


@pytest.mark.asyncio
async def test_a_guild_name_with_a_closing_tag_does_not_crash_the_banner(
    sandbox: Sandbox, demo: DemoWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    demo.guild.name = "[/] guild"

    assert "[/] guild" in await _printed(sandbox, demo, capsys)
