"""Control routes for messages: post one as a member, follow new ones, read a channel's history."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from botops.sandbox.control.base import ControlBase
from botops.sandbox.control.fields import ControlError
from botops.sandbox.world import Member, Message, User

__all__ = ["MessagesFeature"]


class MessagesFeature(ControlBase):
    """``/messages`` and ``/channels/{channel}/messages``."""

    async def send_message(self, request: web.Request) -> tuple[int, Any]:
        fields = await self._body(request)
        channel = self._channel(fields.required("channel"), fields.raw("guild_id"))
        author_ref = fields.required("author")
        author: Member | User
        if channel.guild_id is not None:
            author = self._member(self.world.guild(channel.guild_id), author_ref, field="author")
        else:
            author = self._user(author_ref, field="author")
        content = fields.text("content", "") or ""
        embeds = fields.array("embeds")
        if embeds is not None and not all(isinstance(embed, dict) for embed in embeds):
            raise ControlError(400, "field 'embeds' must be an array of embed objects")
        if not content and not embeds:
            raise ControlError(400, "field 'content' is missing: a message needs content or embeds")
        message = await self.sandbox.send_message(channel, author, content, embeds=embeds)
        return 201, self._message(message)

    async def message_feed(self, request: web.Request) -> tuple[int, Any]:
        query = self._query(request)
        after = query.integer("after", 0)
        limit = query.integer("limit", 100, low=1, high=1000)
        wait = query.wait()

        def newer() -> list[Message]:
            return self.sandbox.messages_after(after)

        messages = newer()
        if not messages and wait > 0:
            try:
                messages = await self._wait(self.sandbox.changed.wait_for(newer, wait, "a new message"))
            except TimeoutError:
                messages = []
        messages = messages[:limit]
        last = messages[-1].id if messages else after
        return 200, {"messages": [self._message(m) for m in messages], "last": str(last)}

    async def channel_messages(self, request: web.Request) -> tuple[int, Any]:
        query = self._query(request)
        channel = self._channel(request.match_info["channel"], query.raw("guild_id"), status=404)
        limit = query.integer("limit", 50, low=1, high=1000)
        history = channel.history()[-limit:]
        return 200, {"channel": channel.to_payload(), "messages": [self._message(m) for m in history]}
