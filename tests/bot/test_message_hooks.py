"""``Bot.on_message``: the features' message hooks run for every message, then the text commands.

The bot runs in this process against the sandbox with no extension loaded; each test registers its
own hooks and a ``!echo`` text command, so the behaviour of ``Bot`` itself is what is tested.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import discord
import pytest
import pytest_asyncio
from discord.ext import commands

from botops.bot.core import Bot
from botops.db.engine import create_engine_for_url
from botops.sandbox import DemoWorld, Message, Sandbox
from botops.settings import load_settings
from botops.testing import run_bot

pytestmark = pytest.mark.asyncio


@pytest_asyncio.fixture
async def bot(sandbox: Sandbox, demo: DemoWorld, tmp_path: Path) -> AsyncIterator[Bot]:
    """A running botops Bot without extensions, with a ``!echo`` text command."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    settings = load_settings(
        None,
        database_url=url,
        discord_dev_guild_id=demo.guild.id,
        guild_ready_timeout=0.05,
        extensions_package="no_such_package_here",
    )
    engine = create_engine_for_url(url)
    client = Bot(settings, engine, builtin_extensions=())

    @commands.command(name="echo")
    async def echo(context: commands.Context[Bot], *, words: str) -> None:
        await context.send(f"echo: {words}")

    client.add_command(echo)
    try:
        async with run_bot(client, sandbox):
            yield client
    finally:
        await engine.dispose()


async def answer_to(sandbox: Sandbox, message: Message) -> Message:
    """Return the bot's first message after ``message``."""

    def posted() -> Message | None:
        return next((m for m in sandbox.messages_after(message.id) if m.author.bot), None)

    answer: Message = await sandbox.changed.wait_for(posted, 5.0, "the bot's answer")
    return answer


async def test_every_hook_sees_every_message_even_after_one_hook_raised(
    bot: Bot, sandbox: Sandbox, demo: DemoWorld, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[int] = []

    def broken(message: discord.Message) -> None:
        raise RuntimeError("a broken feature")

    bot.message_hooks.extend([broken, lambda message: seen.append(message.id)])
    first = await sandbox.send_message(demo.general, demo.members[0], "hello")
    second = await sandbox.send_message(demo.general, demo.members[1], "!echo still here")

    assert (await answer_to(sandbox, second)).content == "echo: still here"
    assert seen == [first.id, second.id]
    assert f"<locals>.broken failed on message {first.id}" in caplog.text


@pytest.mark.parametrize("prefix", ["!", "<@{bot}> "])
async def test_a_text_command_still_answers_with_the_prefix_or_a_mention(
    bot: Bot, sandbox: Sandbox, demo: DemoWorld, prefix: str
) -> None:
    content = prefix.format(bot=demo.world.bot.id) + "echo hi"

    message = await sandbox.send_message(demo.general, demo.members[0], content)

    assert (await answer_to(sandbox, message)).content == "echo: hi"
