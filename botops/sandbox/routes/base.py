"""The REST routes' shared ground: the sandbox, lookups of guilds and channels, permission checks.

:class:`RouteBase` is what every resource mixin of :class:`~botops.sandbox.routes.Routes` builds on; the
``UNKNOWN_*`` pairs are Discord's error code and resource name for a 404 of that resource.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from botops.sandbox.errors import DiscordError
from botops.sandbox.permissions import Permission
from botops.sandbox.rest import Call
from botops.sandbox.world import Channel, Guild

if TYPE_CHECKING:
    from botops.sandbox.server import Sandbox

__all__ = [
    "UNKNOWN_CHANNEL",
    "UNKNOWN_COMMAND",
    "UNKNOWN_GUILD",
    "UNKNOWN_INTERACTION",
    "UNKNOWN_MEMBER",
    "UNKNOWN_MESSAGE",
    "UNKNOWN_ROLE",
    "UNKNOWN_USER",
    "UNKNOWN_WEBHOOK",
    "RouteBase",
    "limit_query",
    "snowflake_query",
]

UNKNOWN_CHANNEL = (10003, "Channel")
UNKNOWN_GUILD = (10004, "Guild")
UNKNOWN_MESSAGE = (10008, "Message")
UNKNOWN_USER = (10013, "User")
UNKNOWN_MEMBER = (10007, "Member")
UNKNOWN_ROLE = (10011, "Role")
UNKNOWN_WEBHOOK = (10015, "Webhook")
UNKNOWN_INTERACTION = (10062, "interaction")
UNKNOWN_COMMAND = (10063, "application command")


def snowflake_query(call: Call, name: str) -> int | None:
    """Return query parameter ``name`` as a snowflake, ``None`` if absent; otherwise Discord's 50035."""
    raw = call.query.get(name)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()):
        raise _query_error(name, "NUMBER_TYPE_COERCE", f'Value "{raw}" is not snowflake.')
    return int(raw)


def limit_query(call: Call, default: int, maximum: int) -> int:
    """Return the ``limit`` query parameter (``default`` if absent); outside 1..maximum, Discord's 50035."""
    raw = call.query.get("limit", str(default))
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= maximum:
        raise _query_error("limit", "NUMBER_TYPE_MAX", f"int value should be between 1 and {maximum}.")
    return int(raw)


def _query_error(name: str, code: str, message: str) -> DiscordError:
    return DiscordError(
        400, 50035, "Invalid Form Body", {name: {"_errors": [{"code": code, "message": message}]}}
    )


class RouteBase:
    """What every group of routes shares: the sandbox and its world, lookups and permission checks."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.world = sandbox.world

    def _guild(self, call: Call) -> Guild:
        guild = self.world.guilds.get(call.snowflake("guild_id", UNKNOWN_GUILD))
        if guild is None:
            raise DiscordError.not_found(*UNKNOWN_GUILD)
        return guild

    def _channel(self, call: Call) -> Channel:
        try:
            return self.world.channel(call.snowflake("channel_id", UNKNOWN_CHANNEL))
        except KeyError:
            raise DiscordError.not_found(*UNKNOWN_CHANNEL) from None

    def _require(self, channel: Channel, permissions: int) -> None:
        """Raise Discord's 50001/50013 unless the bot has ``permissions`` in ``channel``."""
        if channel.guild_id is None:
            return
        guild = self.world.guilds[channel.guild_id]
        bot = guild.members.get(self.world.bot.id)
        if bot is None:
            raise DiscordError.missing_access()
        granted = guild.permissions_in(bot, channel)
        if not granted & Permission.VIEW_CHANNEL:
            raise DiscordError.missing_access()
        if granted & permissions != permissions:
            raise DiscordError.missing_permissions()

    def _check_application(self, call: Call) -> None:
        if call.params["application_id"] != str(self.world.application.id):
            raise DiscordError(403, 50001, "Missing Access")
