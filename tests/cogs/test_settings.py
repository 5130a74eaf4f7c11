"""The /settings cog's sentences and embed: refusals in the guild's language, every setting shown."""

from __future__ import annotations

from types import MappingProxyType

from botops.cogs.settings import describe_refusal, render_settings
from botops.db.guild_settings import GuildConfig
from botops.errors import GuildSettingOutOfRange, InvalidGuildSetting, XpRangeInverted


def test_an_xp_amount_out_of_range_is_refused_with_its_bounds_in_german() -> None:
    sentence = describe_refusal(GuildSettingOutOfRange("xp_max", 1001, 0, 1000), "de")

    assert sentence == "XP pro Nachricht muss zwischen 0 und 1000 liegen, also wurde nichts geändert."


def test_a_cooldown_out_of_range_is_refused_with_its_bounds() -> None:
    sentence = describe_refusal(GuildSettingOutOfRange("xp_cooldown_seconds", -1, 0, 86_400), "en")

    assert sentence == "The cooldown must be from 0 to 86400 seconds, so nothing was changed."


def test_a_reward_level_out_of_range_is_refused_with_its_bounds() -> None:
    sentence = describe_refusal(GuildSettingOutOfRange("reward level", 0, 1, 1000), "en")

    assert sentence == "The level must be from 1 to 1000, so nothing was changed."


def test_an_inverted_xp_range_is_refused_with_both_numbers() -> None:
    sentence = describe_refusal(XpRangeInverted(30, 20), "en")

    assert sentence == (
        "The minimum XP per message (30) cannot be more than the maximum (20), so nothing was changed."
    )


def test_any_other_refused_value_is_named_in_one_sentence() -> None:
    sentence = describe_refusal(InvalidGuildSetting("language", "german", "a language code"), "en")

    assert sentence == "language cannot be german, so nothing was changed."


def fields(config: GuildConfig, language: str = "en") -> dict[str, str]:
    embed = render_settings(config, "Demo", language)
    return {str(field.name): str(field.value) for field in embed.fields}


def test_a_guild_that_never_chose_a_language_is_shown_to_answer_in_each_members_language() -> None:
    assert fields(GuildConfig())["Language"] == "each member's Discord language"


def test_a_chosen_language_is_shown_by_its_own_name() -> None:
    assert fields(GuildConfig(language="de"), "de")["Sprache"] == "Deutsch"


def test_the_defaults_are_shown_in_words() -> None:
    shown = fields(GuildConfig())

    assert shown["XP for messages"] == "on"
    assert shown["XP per message"] == "15 to 25"
    assert shown["XP at most every"] == "60 s"
    assert shown["Level-up announcements"] == "in the channel of the message"
    assert shown["Role rewards"] == "none"


def test_rewards_are_listed_by_level() -> None:
    config = GuildConfig(rewards=MappingProxyType({10: 2, 5: 1}))

    assert fields(config)["Role rewards"] == "Level 5: <@&1>\nLevel 10: <@&2>"


def test_rewards_beyond_what_an_embed_field_holds_are_counted_not_listed() -> None:
    rewards = {level: 10**17 + level for level in range(1, 101)}

    listed = fields(GuildConfig(rewards=MappingProxyType(rewards)))["Role rewards"]

    assert len(listed) <= 1024
    shown = listed.count("Level ")
    assert listed.endswith(f"… and {100 - shown} more")
