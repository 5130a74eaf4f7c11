"""The REST routes the sandbox serves, grouped as Discord's documentation groups them.

:class:`Routes` is composed from one mixin per resource (:mod:`.application`: the bot's user, its
application, the gateway and application commands; :mod:`.interactions`; :mod:`.channels`: channels and
messages; :mod:`.guilds`: guilds, roles and members) on :class:`~botops.sandbox.routes.base.RouteBase`;
:meth:`Routes.register` joins their handlers into one route table.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from botops.sandbox.rest import RestApi
from botops.sandbox.routes.application import ApplicationRoutes
from botops.sandbox.routes.channels import ChannelRoutes
from botops.sandbox.routes.guilds import GuildRoutes
from botops.sandbox.routes.interactions import InteractionRoutes

__all__ = ["Routes"]


class Routes(ApplicationRoutes, InteractionRoutes, ChannelRoutes, GuildRoutes):
    """Every REST route of one sandbox."""

    def register(self, app: web.Application, api: RestApi) -> None:
        """Add the route table to ``app``; literal segments (``@me``) before parameters."""
        table: list[tuple[str, str, Any, bool]] = [
            ("GET", "/users/@me", self.get_current_user, True),
            ("POST", "/users/@me/channels", self.create_dm, True),
            ("GET", "/users/{user_id}", self.get_user, True),
            ("GET", "/oauth2/applications/@me", self.get_application, True),
            ("GET", "/applications/@me", self.get_application, True),
            ("GET", "/gateway", self.get_gateway, False),
            ("GET", "/gateway/bot", self.get_gateway_bot, True),
            ("GET", "/applications/{application_id}/commands", self.list_commands, True),
            ("PUT", "/applications/{application_id}/commands", self.overwrite_commands, True),
            ("POST", "/applications/{application_id}/commands", self.upsert_command, True),
            ("GET", "/applications/{application_id}/commands/{command_id}", self.get_command, True),
            ("PATCH", "/applications/{application_id}/commands/{command_id}", self.edit_command, True),
            ("DELETE", "/applications/{application_id}/commands/{command_id}", self.delete_command, True),
            ("GET", "/applications/{application_id}/guilds/{guild_id}/commands", self.list_commands, True),
            (
                "PUT",
                "/applications/{application_id}/guilds/{guild_id}/commands",
                self.overwrite_commands,
                True,
            ),
            ("POST", "/applications/{application_id}/guilds/{guild_id}/commands", self.upsert_command, True),
            (
                "GET",
                "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}",
                self.get_command,
                True,
            ),
            (
                "PATCH",
                "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}",
                self.edit_command,
                True,
            ),
            (
                "DELETE",
                "/applications/{application_id}/guilds/{guild_id}/commands/{command_id}",
                self.delete_command,
                True,
            ),
            (
                "POST",
                "/interactions/{interaction_id}/{interaction_token}/callback",
                self.interaction_callback,
                False,
            ),
            ("POST", "/webhooks/{webhook_id}/{webhook_token}", self.create_followup, False),
            (
                "GET",
                "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
                self.get_webhook_message,
                False,
            ),
            (
                "PATCH",
                "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
                self.edit_webhook_message,
                False,
            ),
            (
                "DELETE",
                "/webhooks/{webhook_id}/{webhook_token}/messages/{message_id}",
                self.delete_webhook_message,
                False,
            ),
            ("GET", "/channels/{channel_id}", self.get_channel, True),
            ("GET", "/channels/{channel_id}/messages", self.list_messages, True),
            ("POST", "/channels/{channel_id}/messages", self.create_message, True),
            ("GET", "/channels/{channel_id}/messages/{message_id}", self.get_message, True),
            ("PATCH", "/channels/{channel_id}/messages/{message_id}", self.edit_message, True),
            ("DELETE", "/channels/{channel_id}/messages/{message_id}", self.delete_message, True),
            ("POST", "/channels/{channel_id}/typing", self.trigger_typing, True),
            ("GET", "/guilds/{guild_id}", self.get_guild, True),
            ("GET", "/guilds/{guild_id}/channels", self.list_guild_channels, True),
            ("GET", "/guilds/{guild_id}/roles", self.list_roles, True),
            ("GET", "/guilds/{guild_id}/members", self.list_members, True),
            ("GET", "/guilds/{guild_id}/members/{user_id}", self.get_member, True),
            ("PUT", "/guilds/{guild_id}/members/{user_id}/roles/{role_id}", self.add_member_role, True),
            ("DELETE", "/guilds/{guild_id}/members/{user_id}/roles/{role_id}", self.remove_member_role, True),
        ]
        for method, template, handler, auth in table:
            api.route(app, method, template, handler, auth=auth)
