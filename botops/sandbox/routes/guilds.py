"""REST routes for guilds, their channels and roles, and members and their roles."""

from __future__ import annotations

from typing import Any

from botops.sandbox.errors import DiscordError
from botops.sandbox.permissions import Intents, Permission
from botops.sandbox.rest import Call
from botops.sandbox.routes.base import UNKNOWN_MEMBER, UNKNOWN_ROLE, RouteBase, limit_query, snowflake_query
from botops.sandbox.world import Guild

__all__ = ["GuildRoutes"]


class GuildRoutes(RouteBase):
    """``/guilds/{guild_id}``, its ``/channels``, ``/roles`` and ``/members``."""

    async def get_guild(self, call: Call) -> tuple[int, Any]:
        with_counts = call.query.get("with_counts", "").lower() in ("1", "true")
        return 200, self._guild(call).to_rest_payload(with_counts=with_counts)

    async def list_guild_channels(self, call: Call) -> tuple[int, Any]:
        return 200, [channel.to_payload() for channel in self._guild(call).channels.values()]

    async def list_roles(self, call: Call) -> tuple[int, Any]:
        return 200, [role.to_payload() for role in self._guild(call).roles.values()]

    async def list_members(self, call: Call) -> tuple[int, Any]:
        guild = self._guild(call)
        if not self.sandbox.allowed_privileged_intents & Intents.GUILD_MEMBERS:
            raise DiscordError.missing_access()
        limit = limit_query(call, default=1, maximum=1000)
        after = snowflake_query(call, "after") or 0
        members = sorted((m for m in guild.members.values() if m.id > after), key=lambda m: m.id)
        return 200, [m.to_payload() for m in members[:limit]]

    async def get_member(self, call: Call) -> tuple[int, Any]:
        guild = self._guild(call)
        member = guild.members.get(call.snowflake("user_id", UNKNOWN_MEMBER))
        if member is None:
            raise DiscordError.not_found(*UNKNOWN_MEMBER)
        return 200, member.to_payload()

    async def add_member_role(self, call: Call) -> tuple[int, Any]:
        guild, member, role = self._role_change(call)
        if role.id not in member.roles:
            self.world.set_member_roles(guild, member, [guild.roles[r] for r in member.roles] + [role])
        return 204, None

    async def remove_member_role(self, call: Call) -> tuple[int, Any]:
        guild, member, role = self._role_change(call)
        if role.id in member.roles:
            self.world.set_member_roles(guild, member, [guild.roles[r] for r in member.roles if r != role.id])
        return 204, None

    def _role_change(self, call: Call) -> tuple[Guild, Any, Any]:
        guild = self._guild(call)
        member = guild.members.get(call.snowflake("user_id", UNKNOWN_MEMBER))
        if member is None:
            raise DiscordError.not_found(*UNKNOWN_MEMBER)
        role = guild.roles.get(call.snowflake("role_id", UNKNOWN_ROLE))
        if role is None:
            raise DiscordError.not_found(*UNKNOWN_ROLE)
        bot = guild.members[self.world.bot.id]
        if not guild.base_permissions(bot) & Permission.MANAGE_ROLES:
            raise DiscordError.missing_permissions()
        top = max((guild.roles[r].position for r in bot.roles if r in guild.roles), default=0)
        if role.managed or role.id == guild.id or role.position >= top:
            raise DiscordError.missing_permissions()
        return guild, member, role
