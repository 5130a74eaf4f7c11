"""Secret redaction shared by the logs, error reports and files: the token, every secret, token-shaped text.

The design promises that no secret reaches a log, a Sentry event, a report or a file. Everything that
writes text out passes it through a :class:`Redactor` built from ``settings.secret_values()``; it
replaces each known secret and anything shaped like a Discord bot token with :data:`REDACTED`.
A database URL that is shown on purpose (``config check``, ``db current``, error messages) goes through
:func:`masked_url` instead, which keeps everything but the password.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

__all__ = [
    "DISCORD_TOKEN_RE",
    "MIN_SECRET_LENGTH",
    "REDACTED",
    "Redactor",
    "masked_url",
    "redact",
]

REDACTED = "[REDACTED]"

# Shorter values would shred ordinary words and numbers out of every line; a secret that short is
# not worth protecting this way.
MIN_SECRET_LENGTH = 6

# A bot token is three base64url parts: the bot's id (17-20 digits, 23-27 characters, and the id's
# first digit makes the first character M, N or O), a timestamp (6 characters) and an HMAC (27
# characters in old tokens, 38 in current ones; taken greedily so no tail of it is left behind).
DISCORD_TOKEN_RE = re.compile(r"[MNO][A-Za-z0-9_-]{22,26}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,}")


class Redactor:
    """Replace a fixed set of secrets and every token-shaped string in text with :data:`REDACTED`.

    Build one per set of secrets and reuse it: the secrets are compiled into one pattern.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        variants: set[str] = set()
        for secret in secrets:
            # A password inside a URL is stored percent-encoded, but drivers report it decoded.
            variants.update(v for v in (secret, unquote(secret)) if len(v) >= MIN_SECRET_LENGTH)
        # Longest first, so a secret containing another is removed whole rather than leaving its tail.
        ordered = sorted(variants, key=lambda s: (-len(s), s))
        self._secrets: re.Pattern[str] | None = (
            re.compile("|".join(re.escape(s) for s in ordered)) if ordered else None
        )

    def __call__(self, text: str) -> str:
        """Return ``text`` with every secret and token-shaped string replaced."""
        if self._secrets is not None:
            text = self._secrets.sub(REDACTED, text)
        return DISCORD_TOKEN_RE.sub(REDACTED, text)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Return ``text`` with each of ``secrets`` (from 6 characters) and every token-shaped string replaced."""
    return Redactor(secrets)(text)


def masked_url(url: str | URL) -> str:
    """Return a database URL fit for a log line or a message: its password, anywhere in it, masked.

    The URL is read as SQLAlchemy reads it, so the password shown masked is the one the driver gets
    (``bot:pa/ss%40x@host`` included). A URL SQLAlchemy cannot read keeps its scheme and what follows
    the last ``@``, since the password may hold any character before that.
    """
    try:
        parsed = make_url(url) if isinstance(url, str) else url
    except (ArgumentError, ValueError):  # ValueError: a port that is not a number
        return _masked_by_hand(str(url))
    if parsed.host and "@" in parsed.host:  # a raw @ in the password: part of it was read as the host
        return _masked_by_hand(str(url) if isinstance(url, str) else url.render_as_string(False))
    secret_keys = [key for key in parsed.query if "password" in key.lower()]
    if isinstance(url, str) and parsed.password is None and not secret_keys:
        return url  # nothing to hide: shown as the user wrote it, not re-encoded
    if secret_keys:
        parsed = parsed.update_query_dict({key: "***" for key in secret_keys})
    return parsed.render_as_string(hide_password=True)


def _masked_by_hand(url: str) -> str:
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return url
