"""The bot as its own process (`python -m botops run`) against a sandbox: refusals, reload, logs, stop.

Tests that only read share one process per module; those that rewrite an extension or stop the bot
start their own. Every process must exit 0 within 5 s of SIGTERM (checked when its fixture ends).
"""

from __future__ import annotations

import re
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from botops.sandbox import Message
from tests.bot.process import READY_LINE, RunningBot, running_bot, write_extensions, write_greet

pytestmark = pytest.mark.asyncio(loop_scope="module")

REFERENCE_RE = re.compile(r"reference (\w+)")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def bot(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningBot]:
    """One bot for the tests that do not change it; small log files, so they rotate."""
    folder = tmp_path_factory.mktemp("bot")
    write_extensions(folder)
    async with running_bot(folder, extra={"LOG_MAX_BYTES": "1024", "LOG_BACKUP_COUNT": "100"}) as running:
        yield running


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def boom_reference(bot: RunningBot) -> str:
    """Run the failing /boom once and return the reference its answer quotes."""
    response = await bot.slash("boom", bot.demo.members[0])
    match = REFERENCE_RE.search(response.content)
    assert match, f"no reference in {response.content!r}"
    return match.group(1)


@pytest_asyncio.fixture(loop_scope="module")
async def own_bot(tmp_path: Path) -> AsyncIterator[RunningBot]:
    """A bot of its own, for a test that rewrites its extensions or stops it."""
    write_extensions(tmp_path)
    async with running_bot(tmp_path) as running:
        yield running


async def wait_for_bot_message(running: RunningBot, after: Message) -> Message:
    """Return the first message the bot posts after ``after``."""
    sandbox = running.sandbox

    def posted() -> Message | None:
        return next((m for m in sandbox.messages_after(after.id) if m.author.bot), None)

    message: Message = await sandbox.changed.wait_for(posted, 10.0, "the bot's message")
    return message


def field_values(embed: dict[str, object]) -> dict[str, str]:
    fields = embed.get("fields")
    assert isinstance(fields, list)
    return {str(item["name"]): str(item["value"]) for item in fields}


# -- one shared process -------------------------------------------------------------------------------


async def test_the_bot_logs_that_it_is_ready_in_the_demo_guild(bot: RunningBot) -> None:
    gateway_log = "".join(text for name, text in bot.logs().items() if name.startswith("gateway.log"))

    assert f"{READY_LINE}{bot.demo.world.bot.username} in 1 guilds, 1 shard(s)" in gateway_log
    assert len(bot.sandbox.sessions) == 1


async def test_commands_of_builtin_and_user_extensions_are_synced_to_the_dev_guild_only(
    bot: RunningBot,
) -> None:
    commands = bot.sandbox.commands

    assert set(commands.scope(bot.demo.guild.id)) == {
        "health",
        "reload",
        "settings",
        "rank",
        "leaderboard",
        "xp",
        "stats",
        "greet",
        "boom",
    }
    assert commands.scope(None) == {}


async def test_health_from_an_administrator_is_an_ephemeral_embed_with_the_database_ok(
    bot: RunningBot,
) -> None:
    response = await bot.slash("health", bot.demo.admin)

    assert response.ephemeral
    [embed] = response.embeds
    fields = field_values(embed)
    assert fields["Database"].startswith("✅ OK")
    assert {"Version", "Extensions", "Uptime", "Gateway latency", "Memory"} <= set(fields)


async def test_helper_modules_of_the_extension_package_are_not_loaded_as_extensions(bot: RunningBot) -> None:
    response = await bot.slash("health", bot.demo.admin)

    # A helper loaded as an extension would fail (it has no setup) and be listed as failed here.
    count, _, names = field_values(response.embeds[0])["Extensions"].partition(": ")
    assert (count, sorted(names.split(", "))) == (
        "6",
        ["admin", "greet", "health", "levels", "settings", "stats"],
    )


async def test_health_from_a_member_is_refused_in_one_ephemeral_sentence(bot: RunningBot) -> None:
    response = await bot.slash("health", bot.demo.members[0], enforce_permissions=False)

    assert response.ephemeral
    assert response.content == "Only administrators can use this command."
    assert response.embeds == []


async def test_health_refuses_a_member_with_a_german_discord_in_german(bot: RunningBot) -> None:
    response = await bot.slash("health", bot.demo.members[1], locale="de", enforce_permissions=False)

    assert response.ephemeral
    assert response.content == "Nur Administratoren können diesen Befehl benutzen."


async def test_reload_is_refused_to_an_administrator_who_is_not_the_owner(bot: RunningBot) -> None:
    response = await bot.slash("reload", bot.demo.admin, options={"extension": "cogs.greet"})

    assert response.ephemeral
    assert response.content == "Only the bot's owner can use this command."


async def test_an_unexpected_error_is_answered_with_a_reference_that_the_log_holds_with_its_traceback(
    bot: RunningBot, boom_reference: str
) -> None:
    logged = [text for text in bot.logs().values() if boom_reference in text]

    assert logged, f"reference {boom_reference} is in no log file"
    record = logged[0][logged[0].index(boom_reference) :]
    assert "Traceback (most recent call last)" in record
    assert "RuntimeError: boom while holding" in record


async def test_the_user_sees_no_detail_of_an_unexpected_error(bot: RunningBot) -> None:
    response = await bot.slash("boom", bot.demo.members[2])

    assert response.ephemeral
    assert re.fullmatch(
        r"Something went wrong on our side\. It is logged with reference \w+\. "
        r"Try again; if it keeps failing, give the bot's operator this reference\.",
        response.content,
    )


async def test_no_log_file_holds_the_token_after_a_forced_exception(
    bot: RunningBot, boom_reference: str
) -> None:
    logs = bot.logs()
    token = bot.sandbox.token

    assert any(re.search(r"\.log\.\d+$", name) for name in logs), f"no rotated log file among {sorted(logs)}"
    assert any(boom_reference in text for text in logs.values())
    assert [name for name, text in logs.items() if token in text] == []
    assert token not in bot.bot.stderr()


# -- a process of its own -----------------------------------------------------------------------------


async def test_reload_of_a_changed_extension_takes_effect(own_bot: RunningBot) -> None:
    assert (await own_bot.slash("greet", own_bot.demo.members[0])).content == "hello v1"
    write_greet(own_bot.folder, "v2")

    reply = await own_bot.slash_final_text("reload", own_bot.owner, options={"extension": "cogs.greet"})

    assert reply == "Reloaded cogs.greet."
    assert (await own_bot.slash("greet", own_bot.demo.members[0])).content == "hello v2"


async def test_reload_of_a_broken_extension_keeps_the_previous_version(own_bot: RunningBot) -> None:
    write_greet(own_bot.folder, "v2")
    await own_bot.slash_final_text("reload", own_bot.owner, options={"extension": "cogs.greet"})
    write_greet(own_bot.folder, "v3", broken=True)

    reply = await own_bot.slash_final_text("reload", own_bot.owner, options={"extension": "cogs.greet"})

    assert reply.startswith("cogs.greet did not reload and its previous version keeps running: SyntaxError")
    assert (await own_bot.slash("greet", own_bot.demo.members[0])).content == "hello v2"


async def test_text_reload_from_the_owner_replies_in_the_channel(own_bot: RunningBot) -> None:
    write_greet(own_bot.folder, "v2")

    sent = await own_bot.sandbox.send_message(own_bot.demo.general, own_bot.owner, "!reload cogs.greet")
    reply = await wait_for_bot_message(own_bot, sent)

    assert reply.channel_id == own_bot.demo.general.id
    assert reply.content == "Reloaded cogs.greet."
    assert (await own_bot.slash("greet", own_bot.demo.members[0])).content == "hello v2"


async def test_sigterm_stops_the_bot_with_exit_code_0_within_5_seconds(own_bot: RunningBot) -> None:
    code = await own_bot.bot.stop(signal.SIGTERM, timeout=5)

    assert code == 0
    assert "the bot stopped" in own_bot.logs()["botops.log"]


async def test_a_second_start_on_the_same_database_does_not_migrate_again(tmp_path: Path) -> None:
    write_extensions(tmp_path)
    async with running_bot(tmp_path, log_dir=tmp_path / "first", name="first"):
        pass
    assert "Migrated the database schema" in (tmp_path / "first" / "botops.log").read_text()

    async with running_bot(tmp_path, log_dir=tmp_path / "second", name="second"):
        pass

    second = (tmp_path / "second" / "botops.log").read_text()
    assert "Database schema is current" in second
    assert "Migrated the database schema" not in second
