"""The control plane's plumbing: serving a handler as JSON, bounded waits, lookups by id or name.

:class:`ControlBase` is what every feature mixin of :class:`~botops.sandbox.control.ControlPlane` builds
on: it turns a handler's ``(status, body)`` or its :class:`ControlError` into a JSON answer, ends waits
when the sandbox stops, reads request fields, finds members, channels and roles by id or by name, and
serializes messages as the gateway sends them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web

from botops.sandbox.control.fields import ControlError, Fields, as_int, unknown
from botops.sandbox.errors import SandboxError
from botops.sandbox.gateway import Session
from botops.sandbox.world import Channel, Guild, Member, Message, Payload, Role, User

if TYPE_CHECKING:
    from botops.sandbox.server import Sandbox

__all__ = ["PREFIX", "ControlBase", "Handler"]

log = logging.getLogger(__name__)

PREFIX = "/_sandbox"

#: Methods that change the sandbox; each must say ``Content-Type: application/json``, which a web page
#: can only send to another site after a CORS preflight this server never answers. So a page open in
#: the developer's browser cannot post as a member or break the bot's connection.
_CHANGING_METHODS = frozenset({"POST", "PATCH", "PUT", "DELETE"})
_JSON = "application/json"

_T = TypeVar("_T")
Handler = Callable[[web.Request], Awaitable[tuple[int, Any]]]


class ControlBase:
    """What every control feature shares: the sandbox, request plumbing, lookups and serializers."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.world = sandbox.world
        self._closing = asyncio.Event()
        self._endpoints: list[str] = []

    @property
    def max_wait(self) -> float:
        """Return the longest any request may wait, in seconds; the joined plane decides."""
        raise NotImplementedError

    # -- plumbing -----------------------------------------------------------------------------------

    def _serve(self, handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def serve(request: web.Request) -> web.StreamResponse:
            if request.method in _CHANGING_METHODS and request.content_type != _JSON:
                return _json_response(
                    415,
                    {
                        "error": f"{request.method} {request.path} needs the header Content-Type: {_JSON} "
                        "(with or without a body), so that no web page can drive the sandbox"
                    },
                )
            try:
                status, body = await handler(request)
            except ControlError as error:
                status, body = error.status, {"error": error.message}
            except SandboxError as error:
                status, body = 400, {"error": str(error)}
            except web.HTTPException as error:
                # aiohttp's own refusals (a body over the size limit) still answer in JSON.
                status, body = error.status, {"error": f"{error.reason} ({request.method} {request.path})"}
            except Exception:
                log.exception("sandbox control plane: %s %s failed", request.method, request.path)
                status = 500
                body = {
                    "error": f"{request.method} {request.path} failed inside the sandbox; its log has why"
                }
            return _json_response(status, body)

        return serve

    async def _on_shutdown(self, app: web.Application) -> None:
        self._closing.set()

    async def _wait(self, awaitable: Awaitable[_T]) -> _T:
        """Await a driver wait; answer 503 at once if the sandbox stops meanwhile."""
        task = asyncio.ensure_future(awaitable)
        closing = asyncio.ensure_future(self._closing.wait())
        try:
            done, _ = await asyncio.wait({task, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
            if not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        if task not in done:
            raise ControlError(503, "the sandbox is shutting down")
        return task.result()

    async def _body(self, request: web.Request) -> Fields:
        raw = await request.read() if request.can_read_body else b""
        if not raw.strip():
            return Fields({}, max_wait=self.max_wait)
        try:
            data = json.loads(raw)
        except ValueError as error:
            raise ControlError(400, f"the request body is not valid JSON: {error}") from None
        if not isinstance(data, dict):
            raise ControlError(400, f"the request body must be a JSON object, not {type(data).__name__}")
        return Fields(data, max_wait=self.max_wait)

    def _query(self, request: web.Request) -> Fields:
        return Fields(request.query, "query parameter", max_wait=self.max_wait)

    # -- lookups: by id, or by name within a guild ----------------------------------------------------

    def _guild(self, ref: Any, *, field: str = "guild_id") -> Guild:
        if ref is None or ref == "":
            guild = next(iter(self.world.guilds.values()), None)
            if guild is None:
                raise ControlError(400, "the sandbox has no guild, so a name cannot be looked up in one")
            return guild
        wanted = as_int(ref)
        for guild in self.world.guilds.values():
            if guild.id == wanted or guild.name == ref:
                return guild
        raise unknown(400, field, ref, "the id or name of a guild of the sandbox")

    def _channel(
        self, ref: Any, guild_ref: Any = None, *, field: str = "channel", status: int = 400
    ) -> Channel:
        """Return a channel by id, ``#name`` or ``name`` in a guild, or ``@user`` for the DM with a user."""
        channel_id = as_int(ref)
        if channel_id is not None:
            try:
                return self.world.channel(channel_id)
            except KeyError:
                raise unknown(status, field, ref, "the id of any channel") from None
        if not isinstance(ref, str) or not ref:
            raise ControlError(400, f"field {field!r} must be a channel id or name, not {ref!r}")
        if ref.startswith("@"):
            user = self._user(ref[1:], field=field, status=status)
            if user.bot:
                raise ControlError(
                    400, f"field {field!r}: {ref!r} names the bot, which has no DM with itself"
                )
            return self.world.dm_channel(user)
        guild = self._guild(guild_ref)
        try:
            return guild.channel_named(ref.removeprefix("#"))
        except KeyError:
            raise unknown(status, field, ref, f"a channel of guild {guild.name!r}") from None

    def _user(self, ref: Any, *, field: str = "user", status: int = 400) -> User:
        user_id = as_int(ref)
        for user in self.world.users.values():
            if user.id == user_id or (isinstance(ref, str) and user.username == ref.removeprefix("@")):
                return user
        raise unknown(status, field, ref, "the id or username of any user")

    def _member(self, guild: Guild, ref: Any, *, field: str = "member", status: int = 400) -> Member:
        user_id = as_int(ref)
        for member in guild.members.values():
            if member.id == user_id or (
                isinstance(ref, str) and member.user.username == ref.removeprefix("@")
            ):
                return member
        raise unknown(status, field, ref, f"a member of guild {guild.name!r}")

    def _role(self, guild: Guild, ref: Any, *, field: str = "role", status: int = 400) -> Role:
        role_id = as_int(ref)
        for role in guild.roles.values():
            if role.id == role_id or role.name == ref:
                return role
        raise unknown(status, field, ref, f"a role of guild {guild.name!r}")

    def _roles(self, guild: Guild, refs: list[Any]) -> list[Role]:
        return [self._role(guild, ref, field=f"roles[{index}]") for index, ref in enumerate(refs)]

    def _session(self, fields: Fields) -> Session | None:
        ref = fields.raw("session")
        if ref is None:
            return None
        session = self.sandbox.gateway.sessions.get(str(ref))
        if session is None:
            raise unknown(400, "session", ref, f"a live session (GET {PREFIX}/sessions lists them)")
        return session

    # -- serializing --------------------------------------------------------------------------------

    def _message(self, message: Message) -> Payload:
        """Return a message as the gateway sends it, plus the channel's name for who-said-what-where."""
        payload = message.to_payload(self.world, gateway=True)
        try:
            payload["channel_name"] = self.world.channel(message.channel_id).name
        except KeyError:
            payload["channel_name"] = None
        return payload


def _json_response(status: int, body: Any) -> web.Response:
    # One line of JSON ending in a newline, so answers read well in a shell after ``curl -s``.
    response = web.Response(status=status, body=json.dumps(body, separators=(",", ":")).encode() + b"\n")
    response.content_type = "application/json"
    return response
