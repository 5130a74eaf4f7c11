"""Command statistics end to end: the real bot process counts commands in its database and /stats shows them.

One bot serves the module. Each command's answer arrives before the next command is sent, and /stats
flushes the statistics' writer before it reads, so it shows every command that finished before it.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from botops.sandbox.world import Payload
from tests.bot.process import RunningBot, running_bot, write_extensions

pytestmark = pytest.mark.asyncio(loop_scope="module")

DAY_FIELD_RE = re.compile(r"^Last 24 hours: (\d+) uses$")
ERRORS_FIELD = "Errors per hour, last 24 hours"


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def bot(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningBot]:
    """One bot with the user extension's /greet and /boom."""
    folder = tmp_path_factory.mktemp("stats")
    write_extensions(folder)
    async with running_bot(folder) as running:
        yield running


def field_values(embed: Payload) -> dict[str, str]:
    return {field["name"]: field["value"] for field in embed.get("fields", [])}


async def test_stats_shows_the_most_used_command_first_and_the_days_one_error(bot: RunningBot) -> None:
    member = bot.demo.members[0]
    for _ in range(3):
        assert (await bot.slash("greet", member)).content == "hello v1"
    assert "reference" in (await bot.slash("boom", member)).content
    refused = await bot.slash("health", member, enforce_permissions=False)
    assert refused.content == "Only administrators can use this command."

    answer = await bot.slash_final("stats", bot.demo.admin)

    assert answer.ephemeral
    [embed] = answer.embeds
    fields = field_values(embed)
    [day] = [fields[name] for name in fields if DAY_FIELD_RE.match(name)]
    assert day.splitlines()[0] == "**1.** `greet`: 3"
    assert {"**2.** `boom`: 1", "**3.** `health`: 1"} <= set(day.splitlines())
    assert " 1 in total, hourly from " in fields[ERRORS_FIELD]
    assert {"Uptime", "Database size", "Memory", "Gateway latency"} <= set(fields)


async def test_the_whole_bots_statistics_are_refused_to_an_administrator_who_is_not_the_owner(
    bot: RunningBot,
) -> None:
    response = await bot.slash("stats", bot.demo.admin, options={"scope": "bot"})

    assert response.ephemeral
    assert response.content == "Only the bot's owner can use this command."


async def test_the_owner_sees_the_whole_bots_statistics(bot: RunningBot) -> None:
    answer = await bot.slash_final("stats", bot.owner, options={"scope": "bot"})

    [embed] = answer.embeds
    assert embed["description"].startswith("Commands used on every server and in direct messages")
