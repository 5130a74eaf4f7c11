"""``/settings show|set`` end to end: the real bot as its own process, against the sandbox.

One process for the module. A test that changes the language sets it back; every other test first sets
what it reads, so the order of the tests does not matter.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import pytest
import pytest_asyncio

from botops.sandbox import Member, SandboxError
from botops.sandbox.interactions import InteractionResponse
from tests.bot.process import RunningBot, running_bot

pytestmark = pytest.mark.asyncio(loop_scope="module")

ADMIN_ONLY = "Only administrators can use this command."


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def bot(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningBot]:
    """One bot; with the members intent, so it sees the roles the tests give it."""
    folder = tmp_path_factory.mktemp("settings")
    async with running_bot(folder, extra={"PRIVILEGED_INTENTS": "message_content,members"}) as running:
        yield running


async def change(
    bot: RunningBot,
    setting: str,
    options: Mapping[str, object] | None = None,
    *,
    member: Member | None = None,
) -> InteractionResponse:
    """Run ``/settings set <setting>`` as the demo's administrator (or ``member``)."""
    return await bot.slash(
        f"settings set {setting}",
        member or bot.demo.admin,
        options=options or {},
        enforce_permissions=member is None,
    )


async def shown(bot: RunningBot) -> dict[str, str]:
    """Return the fields of ``/settings show`` as the administrator sees them, by name."""
    response = await bot.slash("settings show", bot.demo.admin)
    [embed] = response.embeds
    fields = embed["fields"]
    assert isinstance(fields, list)
    return {str(field["name"]): str(field["value"]) for field in fields}


@pytest_asyncio.fixture(loop_scope="module")
async def german(bot: RunningBot) -> AsyncIterator[InteractionResponse]:
    """Set the guild's language to German; yield the reply; set it back to English afterwards."""
    reply = await change(bot, "language", {"language": "de"})
    try:
        yield reply
    finally:
        await change(bot, "language", {"language": "en"})


# -- language -----------------------------------------------------------------------------------------


async def test_setting_german_is_confirmed_in_german(german: InteractionResponse) -> None:
    assert german.ephemeral
    assert german.content == "Die Sprache dieses Servers ist jetzt Deutsch."


async def test_health_answers_in_german_right_after_german_was_set(
    bot: RunningBot, german: InteractionResponse
) -> None:
    response = await bot.slash("health", bot.demo.admin)

    assert response.embeds[0]["title"] == "Bot-Zustand"


async def test_settings_show_answers_in_german_right_after_german_was_set(
    bot: RunningBot, german: InteractionResponse
) -> None:
    fields = await shown(bot)

    assert fields["Sprache"] == "Deutsch"
    assert "XP pro Nachricht" in fields


async def test_a_refusal_to_a_member_is_in_the_guilds_language(
    bot: RunningBot, german: InteractionResponse
) -> None:
    response = await bot.slash("settings show", bot.demo.members[0], enforce_permissions=False)

    assert response.content == "Nur Administratoren können diesen Befehl benutzen."


# -- who may ------------------------------------------------------------------------------------------


async def test_discord_offers_settings_to_administrators_only(bot: RunningBot) -> None:
    with pytest.raises(SandboxError, match="may not use /settings"):
        await bot.slash("settings show", bot.demo.members[0])


async def test_a_member_who_is_not_an_administrator_is_refused_and_nothing_changes(bot: RunningBot) -> None:
    await change(bot, "xp", {"enabled": True})

    reply = await change(bot, "xp", {"enabled": False}, member=bot.demo.members[0])

    assert reply.ephemeral
    assert reply.content == ADMIN_ONLY
    assert (await shown(bot))["XP for messages"] == "on"


async def test_a_moderator_without_administrator_is_refused_settings_show(bot: RunningBot) -> None:
    response = await bot.slash("settings show", bot.demo.moderator, enforce_permissions=False)

    assert response.content == ADMIN_ONLY
    assert response.embeds == []


# -- show ---------------------------------------------------------------------------------------------


async def test_settings_show_is_an_ephemeral_embed_of_every_setting(bot: RunningBot) -> None:
    response = await bot.slash("settings show", bot.demo.admin)

    assert response.ephemeral
    [embed] = response.embeds
    assert embed["title"] == f"Settings of {bot.demo.guild.name}"
    assert {str(field["name"]) for field in embed["fields"]} == {  # type: ignore[attr-defined]
        "Language",
        "XP for messages",
        "XP per message",
        "XP at most every",
        "Level-up announcements",
        "Role rewards",
    }


# -- XP -----------------------------------------------------------------------------------------------


async def test_a_minimum_above_the_maximum_is_refused_in_one_sentence_and_nothing_changes(
    bot: RunningBot,
) -> None:
    await change(bot, "xp-range", {"minimum": 10, "maximum": 20})

    reply = await change(bot, "xp-range", {"minimum": 30, "maximum": 20})

    assert reply.ephemeral
    assert reply.content == (
        "The minimum XP per message (30) cannot be more than the maximum (20), so nothing was changed."
    )
    assert (await shown(bot))["XP per message"] == "10 to 20"


async def test_a_new_xp_range_is_confirmed_and_shown(bot: RunningBot) -> None:
    reply = await change(bot, "xp-range", {"minimum": 5, "maximum": 50})

    assert reply.content == "A message now earns 5 to 50 XP."
    assert (await shown(bot))["XP per message"] == "5 to 50"


async def test_discord_refuses_an_xp_amount_above_1000_before_the_bot_sees_it(bot: RunningBot) -> None:
    with pytest.raises(SandboxError, match="between 0 and 1000"):
        await change(bot, "xp-range", {"minimum": 0, "maximum": 1001})


async def test_turning_xp_off_is_confirmed_and_shown(bot: RunningBot) -> None:
    reply = await change(bot, "xp", {"enabled": False})

    assert reply.content == "Members no longer earn XP for their messages."
    assert (await shown(bot))["XP for messages"] == "off"


async def test_a_new_cooldown_is_confirmed_and_shown(bot: RunningBot) -> None:
    reply = await change(bot, "cooldown", {"seconds": 90})

    assert reply.content == "A member now earns XP at most once every 90 s."
    assert (await shown(bot))["XP at most every"] == "90 s"


async def test_a_change_is_logged_with_who_guild_what_old_and_new(bot: RunningBot) -> None:
    await change(bot, "cooldown", {"seconds": 41})
    await change(bot, "cooldown", {"seconds": 42})

    log = bot.logs()["botops.log"]

    who, guild = bot.demo.admin.user.id, bot.demo.guild.id
    assert f"audit: user {who} changed xp_cooldown_seconds of guild {guild}: 41 -> 42" in log


# -- level-up channel ---------------------------------------------------------------------------------


async def test_a_levelup_channel_is_confirmed_and_shown(bot: RunningBot) -> None:
    channel = bot.demo.announcements

    reply = await change(bot, "levelup-channel", {"channel": channel})

    assert reply.content == f"Level-ups are now announced in <#{channel.id}>."
    assert (await shown(bot))["Level-up announcements"] == f"<#{channel.id}>"


async def test_without_a_channel_level_ups_go_to_the_channel_of_the_message(bot: RunningBot) -> None:
    await change(bot, "levelup-channel", {"channel": bot.demo.announcements})

    reply = await change(bot, "levelup-channel")

    assert reply.content == "Level-ups are now announced in the channel of the message."
    assert (await shown(bot))["Level-up announcements"] == "in the channel of the message"


# -- role rewards -------------------------------------------------------------------------------------


async def test_a_reward_role_the_bot_cannot_give_is_refused_and_nothing_changes(bot: RunningBot) -> None:
    world, guild = bot.demo.world, bot.demo.guild
    role = world.add_role(guild, "Above the bot")  # created above every role, the bot's too

    reply = await change(bot, "reward", {"level": 7, "role": role})

    assert reply.content.startswith(f"I cannot give <@&{role.id}>: it must be below my highest role")
    assert f"<@&{role.id}>" not in (await shown(bot))["Role rewards"]


async def test_a_reward_role_below_the_bots_role_is_confirmed_and_shown(bot: RunningBot) -> None:
    world, guild = bot.demo.world, bot.demo.guild
    reward = world.add_role(guild, "Regular")
    bot_role = world.add_role(guild, "Bot")
    world.set_member_roles(guild, guild.members[world.bot.id], [bot_role])

    reply = await change(bot, "reward", {"level": 5, "role": reward})

    assert reply.content == f"Members who reach level 5 now get <@&{reward.id}>."
    assert f"Level 5: <@&{reward.id}>" in (await shown(bot))["Role rewards"]


async def test_a_reward_without_a_role_is_removed(bot: RunningBot) -> None:
    world, guild = bot.demo.world, bot.demo.guild
    reward = world.add_role(guild, "Veteran")
    world.set_member_roles(guild, guild.members[world.bot.id], [world.add_role(guild, "Bot on top")])
    await change(bot, "reward", {"level": 9, "role": reward})

    reply = await change(bot, "reward", {"level": 9})

    assert reply.content == "Level 9 no longer gives a role."
    assert "Level 9:" not in (await shown(bot))["Role rewards"]
