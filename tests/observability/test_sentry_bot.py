"""Sentry end to end: the real bot process reports a failing command to a local Sentry over HTTP.

The canary: the failing command holds the bot token in its exception, the user's option text in its
message and (also upper-cased) in local variables, and the bot runs with a secret HTTP_TOKEN. The event
must arrive with its tags and the reference the user was told, and none of them may appear in any byte
the bot sent. A listener that fails on a message holds its content in local variables: that event
arrives too, without the content.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

import pytest

from tests.bot.process import running_bot, write_extensions
from tests.observability.capture import CaptureServer

# /fail keeps what the user typed in a local variable and in its exception, as careless code does;
# it also puts the token from the environment into the exception.
_FAILING = '''\
"""A user extension whose command fails with the user's text and the token in its exception."""

import os

import discord
from discord import app_commands
from discord.ext import commands


class Failing(commands.Cog):
    @app_commands.command(name="fail", description="Fail on purpose with what you typed")
    async def fail(self, interaction: discord.Interaction, text: str) -> None:
        typed = text
        shouted = text.upper()
        secret = os.environ["DISCORD_TOKEN"]
        raise ValueError(f"could not handle {typed!r} with {secret}")

    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        if "explode" in message.content:
            content = message.content
            words = content.split()
            raise RuntimeError("the listener gave up")


async def setup(bot: commands.Bot) -> None:
    await bot.add_cog(Failing())
'''

REFERENCE_RE = re.compile(r"\b([0-9a-f]{8})\b")


@pytest.mark.asyncio
async def test_a_failing_command_reaches_sentry_with_tags_and_without_token_secret_or_content(
    tmp_path: Path,
) -> None:
    write_extensions(tmp_path)
    (tmp_path / "cogs" / "failing.py").write_text(_FAILING, encoding="utf-8")
    canary = f"canary-{secrets.token_hex(8)}"
    http_token = f"http-{secrets.token_hex(12)}"
    async with CaptureServer() as sentry:
        extra = {"SENTRY_DSN": sentry.dsn, "HTTP_TOKEN": http_token, "SENTRY_TRACES_SAMPLE_RATE": "1.0"}
        async with running_bot(tmp_path, extra=extra) as bot:
            reply = await bot.slash("fail", bot.demo.members[0], options={"text": f"my words {canary}"})
            assert reply.content is not None
            reference = REFERENCE_RE.search(reply.content)
            assert reference, reply.content

            event = await sentry.wait_for_event(lambda e: e.get("tags", {}).get("command") == "fail", 20.0)
            chat = f"explode {secrets.token_hex(8)}"
            await bot.sandbox.send_message(bot.demo.general, bot.demo.members[1], chat)
            listener = await sentry.wait_for_event(lambda e: "on_message" in str(e.get("logentry")), 20.0)
            token = bot.sandbox.token
            guild_id = str(bot.demo.guild.id)
        # The bot stopped: whatever it queued (the command's transaction too) has been sent.
        received = sentry.received

    assert event["tags"] == {
        "command": "fail",
        "kind": "slash",
        "guild": guild_id,
        "shard": "0",
        "reference": reference.group(1),
    }
    assert event["release"].startswith("botops@")
    assert event["environment"] == "development"
    assert event["exception"]["values"][-1]["type"] == "ValueError"
    assert "user" not in event
    assert listener["exception"]["values"][-1]["type"] == "RuntimeError"
    for secret, what in (
        (token, "the token"),
        (http_token, "HTTP_TOKEN"),
        (canary, "the user's text"),
        (canary.upper(), "the user's text, upper-cased"),
        (chat.split()[1], "the message's content"),
    ):
        assert secret.encode() not in received, f"{what} reached Sentry"
