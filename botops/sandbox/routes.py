"""The REST routes the sandbox serves, grouped as Discord's documentation groups them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from botops.sandbox.errors import DiscordError
from botops.sandbox.interactions import CallbackType, Interaction
from botops.sandbox.messages import MessageFlags, MessageParts, apply_parts, parse_message_body
from botops.sandbox.permissions import Intents, Permission
from botops.sandbox.rest import Call, RestApi
from botops.sandbox.world import Channel, Guild, Message, Payload

if TYPE_CHECKING:
    from botops.sandbox.server import Sandbox

__all__ = ["Routes"]

_UNKNOWN_CHANNEL = (10003, "Channel")
_UNKNOWN_GUILD = (10004, "Guild")
_UNKNOWN_MESSAGE = (10008, "Message")
_UNKNOWN_USER = (10013, "User")
_UNKNOWN_MEMBER = (10007, "Member")
_UNKNOWN_ROLE = (10011, "Role")
_UNKNOWN_WEBHOOK = (10015, "Webhook")
_UNKNOWN_INTERACTION = (10062, "interaction")
_UNKNOWN_COMMAND = (10063, "application command")


def _snowflake_query(call: Call, name: str) -> int | None:
    """Return query parameter ``name`` as a snowflake, ``None`` if absent; otherwise Discord's 50035."""
    raw = call.query.get(name)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()):
        raise DiscordError(
            400,
            50035,
            "Invalid Form Body",
            {
                name: {
                    "_errors": [{"code": "NUMBER_TYPE_COERCE", "message": f'Value "{raw}" is not snowflake.'}]
                }
            },
        )
    return int(raw)


class Routes:
    """Every REST route of one sandbox."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.world = sandbox.world

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

    # -- lookups and checks -------------------------------------------------------------------------

    def _guild(self, call: Call) -> Guild:
        guild = self.world.guilds.get(call.snowflake("guild_id", _UNKNOWN_GUILD))
        if guild is None:
            raise DiscordError.not_found(*_UNKNOWN_GUILD)
        return guild

    def _channel(self, call: Call) -> Channel:
        try:
            return self.world.channel(call.snowflake("channel_id", _UNKNOWN_CHANNEL))
        except KeyError:
            raise DiscordError.not_found(*_UNKNOWN_CHANNEL) from None

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

    # -- users, application, gateway ----------------------------------------------------------------

    async def get_current_user(self, call: Call) -> tuple[int, Any]:
        user = self.world.bot.to_payload()
        user.update({"verified": True, "mfa_enabled": False, "email": None, "locale": "en-US"})
        return 200, user

    async def get_user(self, call: Call) -> tuple[int, Any]:
        user = self.world.users.get(call.snowflake("user_id", _UNKNOWN_USER))
        if user is None:
            raise DiscordError.not_found(*_UNKNOWN_USER)
        return 200, user.to_payload()

    async def create_dm(self, call: Call) -> tuple[int, Any]:
        body = call.body if isinstance(call.body, dict) else {}
        recipient = str(body.get("recipient_id", ""))
        user = self.world.users.get(int(recipient)) if recipient.isdigit() else None
        if user is None:
            raise DiscordError.not_found(*_UNKNOWN_USER)
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
            "session_start_limit": {
                "total": 1000,
                "remaining": 1000 - self.sandbox.gateway.identifies,
                "reset_after": 86_400_000,
                "max_concurrency": 1,
            },
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
        return 200, self.sandbox.commands.by_id(scope, call.snowflake("command_id", _UNKNOWN_COMMAND))

    async def edit_command(self, call: Call) -> tuple[int, Any]:
        scope = self._command_scope(call)
        current = self.sandbox.commands.by_id(scope, call.snowflake("command_id", _UNKNOWN_COMMAND))
        body = call.body if isinstance(call.body, dict) else {}
        changed = {**current, **body}
        for key in ("id", "application_id", "version", "guild_id"):
            changed.pop(key, None)
        if changed["name"] != current["name"]:
            self.sandbox.commands.delete(scope, int(current["id"]))
        return 200, self.sandbox.commands.upsert(scope, changed)

    async def delete_command(self, call: Call) -> tuple[int, Any]:
        scope = self._command_scope(call)
        self.sandbox.commands.delete(scope, call.snowflake("command_id", _UNKNOWN_COMMAND))
        return 204, None

    # -- interactions -------------------------------------------------------------------------------

    async def interaction_callback(self, call: Call) -> tuple[int, Any]:
        interaction = self.sandbox.interactions.get(call.snowflake("interaction_id", _UNKNOWN_INTERACTION))
        if interaction is None or interaction.token != call.params["interaction_token"]:
            raise DiscordError.not_found(*_UNKNOWN_INTERACTION)
        deadline = self.sandbox.ack_deadline
        if deadline is not None and interaction.age > deadline:
            raise DiscordError.not_found(*_UNKNOWN_INTERACTION)
        if interaction.acknowledged:
            raise DiscordError(400, 40060, "Interaction has already been acknowledged.")
        body = call.body if isinstance(call.body, dict) else {}
        kind = body.get("type")
        raw_data = body.get("data")
        data: Payload = raw_data if isinstance(raw_data, dict) else {}
        message: Message | None = None
        if kind == CallbackType.CHANNEL_MESSAGE_WITH_SOURCE:
            parts = parse_message_body(data, interaction=True, files=call.files or None)
            message = self._interaction_message(interaction, parts, loading=False)
        elif kind == CallbackType.DEFERRED_CHANNEL_MESSAGE_WITH_SOURCE:
            ephemeral = int(data.get("flags") or 0) & MessageFlags.EPHEMERAL
            message = self._interaction_message(interaction, MessageParts(flags=ephemeral), loading=True)
        elif kind == CallbackType.MODAL:
            if not data.get("custom_id") or not data.get("title") or not data.get("components"):
                raise DiscordError(400, 50035, "Invalid Form Body")
        else:
            raise DiscordError(
                400, 40043, f"Interaction callback type {kind} is not valid for a slash command"
            )
        interaction.callback = {"type": kind, "data": data}
        interaction.original = message
        self.sandbox.interaction_changed(interaction)
        if call.query.get("with_response", "").lower() not in ("1", "true"):
            return 204, None
        response: Payload = {
            "interaction": {
                "id": str(interaction.id),
                "type": interaction.type,
                "activity_instance_id": None,
                "response_message_id": str(message.id) if message else None,
                "response_message_loading": bool(message and message.flags & MessageFlags.LOADING),
                "response_message_ephemeral": bool(message and message.ephemeral),
            }
        }
        # Discord describes a resource only for a callback that made a message (type 4); a deferral's
        # loading message is known by response_message_id alone.
        if message is not None and kind == CallbackType.CHANNEL_MESSAGE_WITH_SOURCE:
            response["resource"] = {"type": kind, "message": message.to_payload(self.world)}
        return 200, response

    def _interaction_message(
        self, interaction: Interaction, parts: MessageParts, *, loading: bool
    ) -> Message:
        world = self.world
        message = Message(
            id=world.snowflakes.next(),
            channel_id=interaction.channel.id,
            guild_id=interaction.guild.id if interaction.guild else None,
            author=world.bot,
            type=20,
            webhook_id=world.application.id,
            application_id=world.application.id,
            interaction_metadata={
                "id": str(interaction.id),
                "type": interaction.type,
                "name": interaction.data.get("name"),
                "command_type": 1,
                "user": interaction.user.to_payload(),
                "authorizing_integration_owners": interaction.payload["authorizing_integration_owners"],
            },
            flags=(parts.flags or 0) & MessageFlags.EPHEMERAL | (MessageFlags.LOADING if loading else 0),
        )
        apply_parts(world, interaction.guild, message, parts)
        return self.sandbox.store_message(message)

    def _interaction_by_token(self, call: Call) -> Interaction:
        interaction = self.sandbox.interactions_by_token.get(call.params["webhook_token"])
        if interaction is None or call.params["webhook_id"] != str(self.world.application.id):
            raise DiscordError.not_found(*_UNKNOWN_WEBHOOK)
        return interaction

    def _webhook_message(self, call: Call) -> tuple[Interaction, Message]:
        interaction = self._interaction_by_token(call)
        wanted = call.params["message_id"]
        if wanted == "@original":
            if interaction.original is None:
                raise DiscordError.not_found(*_UNKNOWN_MESSAGE)
            return interaction, interaction.original
        for message in [interaction.original, *interaction.followups]:
            if message is not None and str(message.id) == wanted:
                return interaction, message
        raise DiscordError.not_found(*_UNKNOWN_MESSAGE)

    async def create_followup(self, call: Call) -> tuple[int, Any]:
        interaction = self._interaction_by_token(call)
        if not interaction.acknowledged:
            # Discord creates an interaction's webhook only when the interaction is acknowledged.
            raise DiscordError.not_found(*_UNKNOWN_WEBHOOK)
        parts = parse_message_body(call.body, interaction=True, files=call.files or None)
        original = interaction.original
        if original is not None and original.flags & MessageFlags.LOADING:
            # Discord turns the first followup after a deferral into the original response.
            original.flags &= ~MessageFlags.LOADING
            apply_parts(self.world, interaction.guild, original, parts)
            self.sandbox.update_message(original)
            message = original
        else:
            message = self._interaction_message(interaction, parts, loading=False)
            interaction.followups.append(message)
        self.sandbox.interaction_changed(interaction)
        if call.query.get("wait", "").lower() not in ("1", "true"):
            return 204, None
        return 200, message.to_payload(self.world)

    async def get_webhook_message(self, call: Call) -> tuple[int, Any]:
        _, message = self._webhook_message(call)
        return 200, message.to_payload(self.world)

    async def edit_webhook_message(self, call: Call) -> tuple[int, Any]:
        interaction, message = self._webhook_message(call)
        parts = parse_message_body(call.body, interaction=True, edit=True, files=call.files or None)
        message.flags &= ~MessageFlags.LOADING
        apply_parts(self.world, interaction.guild, message, parts)
        self.sandbox.update_message(message)
        self.sandbox.interaction_changed(interaction)
        return 200, message.to_payload(self.world)

    async def delete_webhook_message(self, call: Call) -> tuple[int, Any]:
        interaction, message = self._webhook_message(call)
        self.sandbox.remove_message(message)
        if message is interaction.original:
            interaction.original = None
        elif message in interaction.followups:
            interaction.followups.remove(message)
        self.sandbox.interaction_changed(interaction)
        return 204, None

    # -- channels and messages ----------------------------------------------------------------------

    async def get_channel(self, call: Call) -> tuple[int, Any]:
        channel = self._channel(call)
        self._require(channel, 0)
        return 200, channel.to_payload()

    async def list_messages(self, call: Call) -> tuple[int, Any]:
        channel = self._channel(call)
        self._require(channel, Permission.READ_MESSAGE_HISTORY)
        limit = call.query.get("limit", "50")
        if not limit.isdigit() or not 1 <= int(limit) <= 100:
            raise DiscordError(
                400,
                50035,
                "Invalid Form Body",
                {
                    "limit": {
                        "_errors": [
                            {"code": "NUMBER_TYPE_MAX", "message": "int value should be between 1 and 100."}
                        ]
                    }
                },
            )
        before, after, around = (_snowflake_query(call, name) for name in ("before", "after", "around"))
        newest_first = sorted(channel.messages.values(), key=lambda m: m.id, reverse=True)
        if before is not None:
            newest_first = [m for m in newest_first if m.id < before]
        if after is not None:
            newest_first = [m for m in newest_first if m.id > after][-int(limit) :]
        if around is not None:
            half = int(limit) // 2
            older = [m for m in newest_first if m.id <= around][: int(limit) - half]
            newer = [m for m in newest_first if m.id > around][-half:] if half else []
            newest_first = newer + older
        return 200, [m.to_payload(self.world) for m in newest_first[: int(limit)]]

    def _message_in(self, call: Call, channel: Channel) -> Message:
        message = channel.messages.get(call.snowflake("message_id", _UNKNOWN_MESSAGE))
        if message is None:
            raise DiscordError.not_found(*_UNKNOWN_MESSAGE)
        return message

    async def create_message(self, call: Call) -> tuple[int, Any]:
        channel = self._channel(call)
        self._require(channel, Permission.SEND_MESSAGES)
        parts = parse_message_body(call.body, files=call.files or None)
        guild = self.world.guilds.get(channel.guild_id) if channel.guild_id else None
        message = Message(
            id=self.world.snowflakes.next(),
            channel_id=channel.id,
            guild_id=channel.guild_id,
            author=self.world.bot,
        )
        reference = parts.message_reference
        if reference is not None:
            referenced = channel.messages.get(int(reference.get("message_id", 0) or 0))
            if referenced is None and reference.get("fail_if_not_exists", True):
                raise DiscordError(
                    400,
                    50035,
                    "Invalid Form Body",
                    {
                        "message_reference": {
                            "_errors": [
                                {"code": "MESSAGE_REFERENCE_UNKNOWN_MESSAGE", "message": "Unknown message"}
                            ]
                        }
                    },
                )
            if referenced is not None:
                message.type = 19
                message.reference = {"type": 0, "message_id": str(referenced.id)}
                message.reference["channel_id"] = str(channel.id)
                if channel.guild_id:
                    message.reference["guild_id"] = str(channel.guild_id)
        apply_parts(self.world, guild, message, parts)
        replied = self.world.find_message(int(message.reference["message_id"])) if message.reference else None
        allowed = parts.allowed_mentions
        # A reply pings its author unless allowed_mentions is given without replied_user, as on Discord.
        pings_author = allowed is None or bool(allowed.get("replied_user", False))
        if replied is not None and pings_author and replied.author not in message.mentions:
            message.mentions.append(replied.author)
        for attachment in message.attachments:
            attachment.setdefault("id", str(self.world.snowflakes.next()))
            url = f"{self.sandbox.url}/attachments/{channel.id}/{attachment['id']}/{attachment['filename']}"
            attachment.setdefault("url", url)
            attachment.setdefault("proxy_url", url)
        return 200, self.sandbox.store_message(message).to_payload(self.world)

    async def get_message(self, call: Call) -> tuple[int, Any]:
        channel = self._channel(call)
        self._require(channel, Permission.READ_MESSAGE_HISTORY)
        return 200, self._message_in(call, channel).to_payload(self.world)

    async def edit_message(self, call: Call) -> tuple[int, Any]:
        channel = self._channel(call)
        message = self._message_in(call, channel)
        if message.author.id != self.world.bot.id:
            raise DiscordError(403, 50005, "Cannot edit a message authored by another user")
        parts = parse_message_body(call.body, edit=True, files=call.files or None)
        guild = self.world.guilds.get(channel.guild_id) if channel.guild_id else None
        apply_parts(self.world, guild, message, parts)
        return 200, self.sandbox.update_message(message).to_payload(self.world)

    async def delete_message(self, call: Call) -> tuple[int, Any]:
        channel = self._channel(call)
        message = self._message_in(call, channel)
        if message.author.id != self.world.bot.id:
            self._require(channel, Permission.MANAGE_MESSAGES)
        self.sandbox.remove_message(message)
        return 204, None

    async def trigger_typing(self, call: Call) -> tuple[int, Any]:
        self._require(self._channel(call), Permission.SEND_MESSAGES)
        return 204, None

    # -- guilds, roles, members ---------------------------------------------------------------------

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
        limit = int(call.query.get("limit", "1")) if call.query.get("limit", "1").isdigit() else 0
        if not 1 <= limit <= 1000:
            raise DiscordError(
                400,
                50035,
                "Invalid Form Body",
                {
                    "limit": {
                        "_errors": [
                            {"code": "NUMBER_TYPE_MAX", "message": "int value should be between 1 and 1000."}
                        ]
                    }
                },
            )
        after = _snowflake_query(call, "after") or 0
        members = sorted((m for m in guild.members.values() if m.id > after), key=lambda m: m.id)
        return 200, [m.to_payload() for m in members[:limit]]

    async def get_member(self, call: Call) -> tuple[int, Any]:
        guild = self._guild(call)
        member = guild.members.get(call.snowflake("user_id", _UNKNOWN_MEMBER))
        if member is None:
            raise DiscordError.not_found(*_UNKNOWN_MEMBER)
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
        member = guild.members.get(call.snowflake("user_id", _UNKNOWN_MEMBER))
        if member is None:
            raise DiscordError.not_found(*_UNKNOWN_MEMBER)
        role = guild.roles.get(call.snowflake("role_id", _UNKNOWN_ROLE))
        if role is None:
            raise DiscordError.not_found(*_UNKNOWN_ROLE)
        bot = guild.members[self.world.bot.id]
        if not guild.base_permissions(bot) & Permission.MANAGE_ROLES:
            raise DiscordError.missing_permissions()
        top = max((guild.roles[r].position for r in bot.roles if r in guild.roles), default=0)
        if role.managed or role.id == guild.id or role.position >= top:
            raise DiscordError.missing_permissions()
        return guild, member, role
