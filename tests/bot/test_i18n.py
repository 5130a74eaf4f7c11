"""The language catalogs agree with each other, and Discord locales map to the languages botops speaks."""

from __future__ import annotations

import string

import pytest

from botops.bot.i18n import DEFAULT_LANGUAGE, LANGUAGES, language_for_locale, text


def placeholders(sentence: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(sentence) if name is not None}


@pytest.mark.parametrize("language", sorted(set(LANGUAGES) - {DEFAULT_LANGUAGE}))
def test_every_catalog_has_exactly_the_keys_of_the_default_one(language: str) -> None:
    assert set(LANGUAGES[language]) == set(LANGUAGES[DEFAULT_LANGUAGE])


@pytest.mark.parametrize("language", sorted(set(LANGUAGES) - {DEFAULT_LANGUAGE}))
def test_every_sentence_has_the_placeholders_of_the_default_one(language: str) -> None:
    default = LANGUAGES[DEFAULT_LANGUAGE]
    differing = {
        key: (placeholders(default[key]), placeholders(sentence))
        for key, sentence in LANGUAGES[language].items()
        if key in default and placeholders(sentence) != placeholders(default[key])
    }

    assert differing == {}


@pytest.mark.parametrize(
    ("locale", "language"),
    [("de", "de"), ("de-DE", "de"), ("en-GB", "en"), ("en-US", "en"), ("fr", "en"), (None, "en"), ("", "en")],
)
def test_a_discord_locale_maps_to_a_spoken_language_or_english(locale: str | None, language: str) -> None:
    assert language_for_locale(locale) == language


def test_text_formats_the_sentence_in_the_language_asked_for() -> None:
    assert text("error.cooldown", "de", seconds=3) == "Langsam: versuche es in 3 s erneut."


def test_text_in_an_unknown_language_is_english() -> None:
    assert text("error.admin_only", "xx") == "Only administrators can use this command."


@pytest.mark.parametrize(
    ("language", "advice"),
    [
        ("en", "Try again; if it keeps failing, give the bot's operator this reference."),
        (
            "de",
            "Versuche es noch einmal; wenn es weiterhin fehlschlägt, "
            "gib dem Betreiber des Bots diese Referenz.",
        ),
    ],
)
def test_an_unexpected_error_says_what_to_do_with_its_reference(language: str, advice: str) -> None:
    sentence = text("error.unexpected", language, reference="r3f")

    assert "r3f" in sentence
    assert advice in sentence
