"""Tests for botops.redaction: secrets and token-shaped strings never survive, other text is untouched."""

from __future__ import annotations

import base64
import string

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from botops.redaction import DISCORD_TOKEN_RE, MIN_SECRET_LENGTH, REDACTED, Redactor, redact

TOKEN_ALPHABET = string.ascii_letters + string.digits + "-_"


def token_for(bot_id: int, stamp: str, hmac: str) -> str:
    """Build a string shaped like a bot token; built at run time so none is ever committed."""
    first = base64.urlsafe_b64encode(str(bot_id).encode()).decode().rstrip("=")
    return f"{first}.{stamp}.{hmac}"


@st.composite
def tokens(draw: st.DrawFn) -> str:
    bot_id = draw(st.integers(min_value=10**16, max_value=10**20 - 1))  # 17 to 20 digits
    stamp = draw(st.text(TOKEN_ALPHABET, min_size=6, max_size=6))
    hmac = draw(st.text(TOKEN_ALPHABET, min_size=27, max_size=38))
    return token_for(bot_id, stamp, hmac)


# A secret that is part of the marker itself (or borrows its brackets) could reappear through the
# marker; no real secret looks like that.
secret_texts = st.text(
    st.characters(exclude_characters="[]"), min_size=MIN_SECRET_LENGTH, max_size=40
).filter(lambda s: s not in REDACTED)


@given(prefix=st.text(), token=tokens(), suffix=st.text())
def test_token_shaped_string_is_gone_from_any_text(prefix: str, token: str, suffix: str) -> None:
    redacted = redact(prefix + token + suffix)

    assert token not in redacted
    assert REDACTED in redacted


@given(text=st.text())
def test_text_without_secrets_is_unchanged(text: str) -> None:
    assume(DISCORD_TOKEN_RE.search(text) is None)

    assert redact(text) == text


@given(text=st.text(), secrets=st.lists(secret_texts, max_size=3))
def test_text_not_containing_the_given_secrets_is_unchanged(text: str, secrets: list[str]) -> None:
    assume(DISCORD_TOKEN_RE.search(text) is None)
    assume(not any(secret in text for secret in secrets))

    assert redact(text, secrets) == text


@given(prefix=st.text(), secret=secret_texts, suffix=st.text())
def test_secret_is_gone_from_any_text(prefix: str, secret: str, suffix: str) -> None:
    assert secret not in redact(prefix + secret + suffix, [secret])


@pytest.mark.parametrize("digits", [17, 18, 19, 20])
def test_tokens_of_every_id_length_are_recognised(digits: int) -> None:
    token = token_for(int("9" * digits), "A" * 6, "b" * 38)

    assert redact(f"token={token};") == f"token={REDACTED};"


def test_longer_secret_is_removed_whole_when_it_contains_a_shorter_one() -> None:
    assert redact("pw=hunter2-and-more", ["hunter2", "hunter2-and-more"]) == f"pw={REDACTED}"


def test_secrets_shorter_than_the_minimum_are_left_alone() -> None:
    assert redact("the bot is up", ["bot"]) == "the bot is up"


def test_percent_encoded_password_is_also_removed_in_its_decoded_form() -> None:
    redactor = Redactor(["p%40ss%20w0rd"])

    assert redactor("auth failed for password 'p@ss w0rd'") == f"auth failed for password '{REDACTED}'"
