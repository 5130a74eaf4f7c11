"""Control routes for the world: read it whole, and change members and roles as a running guild would."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from botops.sandbox.control.base import ControlBase
from botops.sandbox.control.fields import ControlError, Fields, as_int
from botops.sandbox.world import User

__all__ = ["WorldFeature"]


class WorldFeature(ControlBase):
    """``/world``, ``/members`` and ``/roles``; each change sends the gateway events Discord would."""

    async def get_world(self, request: web.Request) -> tuple[int, Any]:
        world = self.world
        return 200, {
            "bot": world.bot.to_payload(),
            "application_id": str(world.application.id),
            "users": [user.to_payload() for user in world.users.values()],
            "guilds": [
                {
                    "id": str(guild.id),
                    "name": guild.name,
                    "owner_id": str(guild.owner_id),
                    "locale": guild.locale,
                    "roles": [role.to_payload() for role in guild.roles.values()],
                    "channels": [channel.to_payload() for channel in guild.channels.values()],
                    "members": [member.to_payload() for member in guild.members.values()],
                }
                for guild in world.guilds.values()
            ],
            "dm_channels": [channel.to_payload() for channel in world.dm_channels.values()],
        }

    def _guild_ref(self, request: web.Request, fields: Fields) -> Any:
        return fields.raw("guild_id") or request.query.get("guild_id")

    async def add_member(self, request: web.Request) -> tuple[int, Any]:
        fields = await self._body(request)
        guild = self._guild(fields.raw("guild_id"))
        ref = fields.required("user")
        user: User | str
        if as_int(ref) is not None:
            user = self._user(ref)
        elif isinstance(ref, str):
            # A username nobody has yet makes a new user, as someone signing up and joining would.
            user = next((u for u in self.world.users.values() if u.username == ref), ref)
        else:
            raise ControlError(400, f"field 'user' must be a user id or a username, not {ref!r}")
        user_id = user.id if isinstance(user, User) else None
        if user_id in guild.members:
            raise ControlError(400, f"field 'user': {ref!r} is already a member of guild {guild.name!r}")
        roles = self._roles(guild, fields.array("roles") or [])
        member = self.world.add_member(guild, user, roles=roles, nick=fields.text("nick"))
        return 201, {**member.to_payload(), "guild_id": str(guild.id)}

    async def update_member(self, request: web.Request) -> tuple[int, Any]:
        fields = await self._body(request)
        guild = self._guild(self._guild_ref(request, fields))
        member = self._member(guild, request.match_info["member"], status=404)
        roles, nick = fields.array("roles"), fields.raw("nick")
        if roles is None and not fields.given("nick"):
            raise ControlError(400, "the request body needs field 'roles' or 'nick' (or both)")
        if nick is not None and not isinstance(nick, str):
            raise ControlError(400, f"field 'nick' must be a string or null, not {nick!r}")
        if roles is not None:
            self.world.set_member_roles(guild, member, self._roles(guild, roles))
        if fields.given("nick"):
            self.world.set_nick(guild, member, nick or None)
        return 200, {**member.to_payload(), "guild_id": str(guild.id)}

    async def remove_member(self, request: web.Request) -> tuple[int, Any]:
        guild = self._guild(request.query.get("guild_id"))
        member = self._member(guild, request.match_info["member"], status=404)
        if member.id == self.world.bot.id:
            raise ControlError(400, "the bot cannot leave a guild through the sandbox; it is not modelled")
        self.world.remove_member(guild, member)
        return 200, {**member.to_payload(), "guild_id": str(guild.id)}

    async def add_role(self, request: web.Request) -> tuple[int, Any]:
        fields = await self._body(request)
        guild = self._guild(fields.raw("guild_id"))
        name = fields.text("name") or ""
        if not name:
            raise ControlError(400, "field 'name' is missing: a role needs a name")
        role = self.world.add_role(
            guild,
            name,
            permissions=fields.integer("permissions", 0),
            color=fields.integer("color", 0, high=0xFFFFFF),
            mentionable=fields.flag("mentionable", False),
        )
        return 201, {**role.to_payload(), "guild_id": str(guild.id)}

    async def update_role(self, request: web.Request) -> tuple[int, Any]:
        fields = await self._body(request)
        guild = self._guild(self._guild_ref(request, fields))
        role = self._role(guild, request.match_info["role"], status=404)
        name = fields.text("name")
        permissions = fields.integer("permissions", -1) if fields.raw("permissions") is not None else None
        if name is None and permissions is None:
            raise ControlError(400, "the request body needs field 'name' or 'permissions' (or both)")
        self.world.update_role(guild, role, name=name or None, permissions=permissions)
        return 200, {**role.to_payload(), "guild_id": str(guild.id)}

    async def delete_role(self, request: web.Request) -> tuple[int, Any]:
        guild = self._guild(request.query.get("guild_id"))
        role = self._role(guild, request.match_info["role"], status=404)
        if role.id == guild.id or role.managed:
            raise ControlError(
                400, f"role {role.name!r} cannot be deleted: Discord keeps @everyone and bot roles"
            )
        self.world.delete_role(guild, role)
        return 200, {**role.to_payload(), "guild_id": str(guild.id)}
