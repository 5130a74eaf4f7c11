"""REST routes for the bot's user, DMs, its application, the gateway, and application commands."""

from __future__ import annotations

from typing import Any

from botops.sandbox.errors import DiscordError
from botops.sandbox.rest import Call
from botops.sandbox.routes.base import UNKNOWN_COMMAND, UNKNOWN_USER, RouteBase

__all__ = ["ApplicationRoutes"]


class ApplicationRoutes(RouteBase):
    """``/users``, ``/applications/@me``, ``/gateway`` and ``/applications/{id}/.../commands``."""

    async def get_current_user(self, call: Call) -> tuple[int, Any]:
        user = self.world.bot.to_payload()
        user.update({"verified": True, "mfa_enabled": False, "email": None, "locale": "en-US"})
        return 200, user

    async def get_user(self, call: Call) -> tuple[int, Any]:
        user = self.world.users.get(call.snowflake("user_id", UNKNOWN_USER))
        if user is None:
            raise DiscordError.not_found(*UNKNOWN_USER)
        return 200, user.to_payload()

    async def create_dm(self, call: Call) -> tuple[int, Any]:
        body = call.body if isinstance(call.body, dict) else {}
        recipient = str(body.get("recipient_id", ""))
        user = self.world.users.get(int(recipient)) if recipient.isdigit() else None
        if user is None:
            raise DiscordError.not_found(*UNKNOWN_USER)
        if user.bot:
            raise DiscordError(400, 50007, "Cannot send messages to this user")
        return 200, self.world.dm_channel(user).to_payload()

    async def get_application(self, call: Call) -> tuple[int, Any]:
        return 200, self.world.application.to_payload()

    async def get_gateway(self, call: Call) -> tuple[int, Any]:
        return 200, {"url": self.sandbox.gateway_url}

    async def get_gateway_bot(self, call: Call) -> tuple[int, Any]:
        return 200, {
            "url": self.sandbox.gateway_url,
            "shards": self.sandbox.recommended_shards,
            "session_start_limit": self.sandbox.faults.session_start_payload(),
        }

    # -- application commands -----------------------------------------------------------------------

    def _command_scope(self, call: Call) -> int | None:
        self._check_application(call)
        if "guild_id" not in call.params:
            return None
        return self._guild(call).id

    async def list_commands(self, call: Call) -> tuple[int, Any]:
        return 200, list(self.sandbox.commands.scope(self._command_scope(call)).values())

    async def overwrite_commands(self, call: Call) -> tuple[int, Any]:
        return 200, self.sandbox.commands.overwrite(self._command_scope(call), call.body)

    async def upsert_command(self, call: Call) -> tuple[int, Any]:
        scope = self._command_scope(call)
        name = call.body.get("name") if isinstance(call.body, dict) else None
        existed = name in self.sandbox.commands.scope(scope)
        stored = self.sandbox.commands.upsert(scope, call.body)
        return (200 if existed else 201), stored

    async def get_command(self, call: Call) -> tuple[int, Any]:
        scope = self._command_scope(call)
        return 200, self.sandbox.commands.by_id(scope, call.snowflake("command_id", UNKNOWN_COMMAND))

    async def edit_command(self, call: Call) -> tuple[int, Any]:
        scope = self._command_scope(call)
        current = self.sandbox.commands.by_id(scope, call.snowflake("command_id", UNKNOWN_COMMAND))
        body = call.body if isinstance(call.body, dict) else {}
        changed = {**current, **body}
        for key in ("id", "application_id", "version", "guild_id"):
            changed.pop(key, None)
        if changed["name"] != current["name"]:
            self.sandbox.commands.delete(scope, int(current["id"]))
        return 200, self.sandbox.commands.upsert(scope, changed)

    async def delete_command(self, call: Call) -> tuple[int, Any]:
        scope = self._command_scope(call)
        self.sandbox.commands.delete(scope, call.snowflake("command_id", UNKNOWN_COMMAND))
        return 204, None
