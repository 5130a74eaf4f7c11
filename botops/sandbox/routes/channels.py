"""REST routes for channels and their messages: read, list, send, edit, delete, typing."""

from __future__ import annotations

from typing import Any

from botops.sandbox.errors import DiscordError
from botops.sandbox.messages import apply_parts, parse_message_body
from botops.sandbox.permissions import Permission
from botops.sandbox.rest import Call
from botops.sandbox.routes.base import UNKNOWN_MESSAGE, RouteBase, limit_query, snowflake_query
from botops.sandbox.world import Channel, Message

__all__ = ["ChannelRoutes"]


class ChannelRoutes(RouteBase):
    """``/channels/{channel_id}`` and its ``/messages`` and ``/typing``."""

    async def get_channel(self, call: Call) -> tuple[int, Any]:
        channel = self._channel(call)
        self._require(channel, 0)
        return 200, channel.to_payload()

    async def list_messages(self, call: Call) -> tuple[int, Any]:
        channel = self._channel(call)
        self._require(channel, Permission.READ_MESSAGE_HISTORY)
        limit = limit_query(call, default=50, maximum=100)
        before, after, around = (snowflake_query(call, name) for name in ("before", "after", "around"))
        newest_first = sorted(channel.messages.values(), key=lambda m: m.id, reverse=True)
        if before is not None:
            newest_first = [m for m in newest_first if m.id < before]
        if after is not None:
            newest_first = [m for m in newest_first if m.id > after][-limit:]
        if around is not None:
            half = limit // 2
            older = [m for m in newest_first if m.id <= around][: limit - half]
            newer = [m for m in newest_first if m.id > around][-half:] if half else []
            newest_first = newer + older
        return 200, [m.to_payload(self.world) for m in newest_first[:limit]]

    def _message_in(self, call: Call, channel: Channel) -> Message:
        message = channel.messages.get(call.snowflake("message_id", UNKNOWN_MESSAGE))
        if message is None:
            raise DiscordError.not_found(*UNKNOWN_MESSAGE)
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
