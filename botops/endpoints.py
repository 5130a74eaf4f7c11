"""Point an unmodified discord.py at another Discord, such as the botops sandbox.

discord.py builds every REST URL from the class attribute ``discord.http.Route.BASE`` and opens its
gateway at ``discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY`` (sharded bots and every fresh IDENTIFY
fall back to it). Setting those two attributes is the whole redirect; :func:`redirect_discord` does it
for development and tests only and refuses in production.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit

import discord
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

from botops.errors import ConfigurationError, EndpointRedirectRefused, IncompatibleDiscordPy

__all__ = ["DISCORD_API_BASE", "DISCORD_GATEWAY", "redirect_discord", "restore_discord"]

log = logging.getLogger(__name__)

#: The attributes botops sets, checked once at import so an upgrade of discord.py fails loudly here.
_PATCHED = (
    (Route, "BASE", "discord.http.Route.BASE"),
    (DiscordWebSocket, "DEFAULT_GATEWAY", "discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY"),
)
for _owner, _attribute, _dotted in _PATCHED:
    if not hasattr(_owner, _attribute):
        raise IncompatibleDiscordPy(_dotted, discord.__version__)

#: discord.py's own endpoints, as imported, so :func:`restore_discord` can put them back.
DISCORD_API_BASE: str = Route.BASE
DISCORD_GATEWAY: yarl.URL = DiscordWebSocket.DEFAULT_GATEWAY


def redirect_discord(api_base: str | None, gateway_url: str | None, *, environment: str) -> bool:
    """Send discord.py's REST calls to ``api_base`` and its gateway to ``gateway_url``.

    Return ``False`` and change nothing when neither is given; return ``True`` after redirecting.

    Raises:
        EndpointRedirectRefused: either is given while ``environment`` is ``production``.
        ConfigurationError: only one of the two is given, or one is not an absolute URL of the right scheme.
    """
    if not api_base and not gateway_url:
        return False
    if environment == "production":
        raise EndpointRedirectRefused("DISCORD_API_BASE" if api_base else "DISCORD_GATEWAY_URL")
    if not api_base or not gateway_url:
        missing = "DISCORD_GATEWAY_URL" if api_base else "DISCORD_API_BASE"
        raise ConfigurationError(
            missing,
            f"{missing} is not set: DISCORD_API_BASE and DISCORD_GATEWAY_URL go together "
            "(`botops sandbox` prints both)",
        )
    _check_url("DISCORD_API_BASE", api_base, ("http", "https"))
    _check_url("DISCORD_GATEWAY_URL", gateway_url, ("ws", "wss"))
    Route.BASE = api_base.rstrip("/")
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway_url)
    log.warning(
        "discord.py is redirected away from Discord: REST to %s, gateway to %s (development and tests only)",
        Route.BASE,
        gateway_url,
    )
    return True


def restore_discord() -> None:
    """Point discord.py back at Discord itself."""
    Route.BASE = DISCORD_API_BASE
    DiscordWebSocket.DEFAULT_GATEWAY = DISCORD_GATEWAY


def _check_url(variable: str, value: str, schemes: tuple[str, ...]) -> None:
    parts = urlsplit(value)
    if parts.scheme not in schemes or not parts.netloc:
        raise ConfigurationError(
            variable,
            f"{variable} must be an absolute {' or '.join(s + '://' for s in schemes)} URL, "
            f"for example the one `botops sandbox` prints",
        )
