"""The control plane: the sandbox's driver API over HTTP under ``/_sandbox/``, for a bot in another process.

A shell, a demo or a monitoring check drives the sandbox here as a test drives :class:`Sandbox` in
Python: post a message as a member, invoke a slash command and read the bot's answer, read the request
log, change the world, inject faults. Each handler is a thin layer over a driver method.

JSON in, JSON out. A bad request answers 400 with ``{"error": "<one sentence>"}``, an unknown id in the
path 404; a wait is capped at :data:`MAX_WAIT` seconds. Members, channels and roles are addressed by id
or by name within the first guild (or the one ``guild_id`` names).

There is no authentication: the control plane listens where the sandbox listens (127.0.0.1 by default)
and must never be reachable from another machine.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from aiohttp import web

from botops.sandbox.commands import OptionType
from botops.sandbox.errors import SandboxError
from botops.sandbox.faults import RestFault
from botops.sandbox.gateway import Session
from botops.sandbox.interactions import Interaction, InteractionResponse, InteractionResult
from botops.sandbox.rest import RecordedRequest
from botops.sandbox.world import Channel, Guild, Member, Message, Payload, Role, User

if TYPE_CHECKING:
    from botops.sandbox.server import Sandbox

__all__ = ["MAX_WAIT", "PREFIX", "ControlError", "ControlPlane"]

log = logging.getLogger(__name__)

PREFIX = "/_sandbox"
#: The longest any request may wait, in seconds, whatever it asks for; a long poll must end.
MAX_WAIT = 30.0

_T = TypeVar("_T")
Handler = Callable[[web.Request], Awaitable[tuple[int, Any]]]
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "*")
_TRUE, _FALSE = ("true", "1", "yes", "on"), ("false", "0", "no", "off")


class ControlError(Exception):
    """A request the control plane refuses; ``status`` and the sentence become the answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Fields:
    """A JSON object or a query string, read field by field; a wrong field is a 400 that names it."""

    def __init__(self, data: Mapping[str, Any], kind: str = "field") -> None:
        self._data = data
        self._kind = kind

    def label(self, name: str) -> str:
        return f"{self._kind} {name!r}"

    def raw(self, name: str) -> Any:
        return self._data.get(name)

    def given(self, name: str) -> bool:
        """Tell whether ``name`` is present at all, even as ``null``."""
        return name in self._data

    def required(self, name: str) -> Any:
        value = self._data.get(name)
        if value is None or value == "":
            raise ControlError(400, f"{self.label(name)} is missing")
        return value

    def text(self, name: str, default: str | None = None) -> str | None:
        value = self._data.get(name)
        if value is None:
            return default
        if not isinstance(value, str):
            raise ControlError(400, f"{self.label(name)} must be a string, not {value!r}")
        return value

    def number(self, name: str, default: float, *, low: float = 0.0, high: float = math.inf) -> float:
        value = self._data.get(name)
        if value is None or value == "":
            return default
        try:
            if isinstance(value, bool):
                raise ValueError
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not low <= number <= high:
            bounds = f"from {low:g} to {high:g}" if high < math.inf else f"of at least {low:g}"
            raise ControlError(400, f"{self.label(name)} must be a number {bounds}, not {value!r}")
        return number

    def integer(self, name: str, default: int, *, low: int = 0, high: int | None = None) -> int:
        value = self._data.get(name)
        if value is None or value == "":
            return default
        number = _as_int(value)
        if number is None or number < low or (high is not None and number > high):
            bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"
            raise ControlError(400, f"{self.label(name)} must be a whole number {bounds}, not {value!r}")
        return number

    def flag(self, name: str, default: bool) -> bool:
        value = self._data.get(name)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        if str(value).lower() in _TRUE + _FALSE:
            return str(value).lower() in _TRUE
        raise ControlError(400, f"{self.label(name)} must be true or false, not {value!r}")

    def array(self, name: str) -> list[Any] | None:
        value = self._data.get(name)
        if value is not None and not isinstance(value, list):
            raise ControlError(400, f"{self.label(name)} must be a JSON array, not {value!r}")
        return value

    def method(self, name: str = "method") -> str:
        value = str(self.required(name)).upper()
        if value not in _METHODS:
            raise ControlError(400, f"{self.label(name)} must be one of {', '.join(_METHODS)}, not {value!r}")
        return value

    def pattern(self, name: str = "path") -> str:
        value = self.required(name)
        if not isinstance(value, str):
            raise ControlError(400, f"{self.label(name)} must be a regular expression string, not {value!r}")
        try:
            re.compile(value)
        except re.error as error:
            raise ControlError(
                400, f"{self.label(name)} is not a valid regular expression: {error}"
            ) from None
        return value

    def wait(self, name: str = "wait", default: float = 0.0) -> float:
        return min(self.number(name, default), MAX_WAIT)


class ControlPlane:
    """The HTTP routes under ``/_sandbox/`` of one sandbox."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.world = sandbox.world
        self._closing = asyncio.Event()
        self._endpoints: list[str] = []

    def register(self, app: web.Application) -> None:
        """Add the control routes to ``app``, and end every pending wait when the app shuts down."""
        table: list[tuple[str, str, Handler]] = [
            ("GET", "/", self.index),
            ("GET", "/world", self.get_world),
            ("GET", "/commands", self.get_commands),
            ("POST", "/messages", self.send_message),
            ("GET", "/messages", self.message_feed),
            ("GET", "/channels/{channel}/messages", self.channel_messages),
            ("POST", "/interactions", self.invoke_slash),
            ("GET", "/interactions", self.list_interactions),
            ("GET", "/interactions/{interaction_id}", self.get_interaction),
            ("GET", "/requests", self.get_requests),
            ("POST", "/requests/wait", self.wait_for_request),
            ("GET", "/unknown_routes", self.get_unknown_routes),
            ("GET", "/sessions", self.get_sessions),
            ("POST", "/sessions/wait", self.wait_until_ready),
            ("POST", "/members", self.add_member),
            ("PATCH", "/members/{member}", self.update_member),
            ("DELETE", "/members/{member}", self.remove_member),
            ("POST", "/roles", self.add_role),
            ("PATCH", "/roles/{role}", self.update_role),
            ("DELETE", "/roles/{role}", self.delete_role),
            ("GET", "/faults", self.get_faults),
            ("DELETE", "/faults", self.clear_faults),
            ("POST", "/faults/close", self.fault_close),
            ("POST", "/faults/drop", self.fault_drop),
            ("POST", "/faults/reconnect", self.fault_reconnect),
            ("POST", "/faults/invalidate", self.fault_invalidate),
            ("POST", "/faults/drop_heartbeat_acks", self.fault_drop_heartbeat_acks),
            ("POST", "/faults/refuse_connections", self.fault_refuse_connections),
            ("POST", "/faults/rate_limit", self.fault_rate_limit),
            ("POST", "/faults/server_error", self.fault_server_error),
            ("POST", "/faults/latency", self.fault_latency),
        ]
        for method, path, handler in table:
            app.router.add_route(method, PREFIX + path, self._serve(handler))
            self._endpoints.append(f"{method} {PREFIX}{path}")
        app.router.add_route("GET", PREFIX, self._serve(self.index))
        app.router.add_route("*", PREFIX + "/{tail:.*}", self._serve(self.no_such_endpoint))
        app.on_shutdown.append(self._on_shutdown)

    # -- plumbing -----------------------------------------------------------------------------------

    def _serve(self, handler: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def serve(request: web.Request) -> web.StreamResponse:
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

    @staticmethod
    async def _body(request: web.Request) -> _Fields:
        raw = await request.read() if request.can_read_body else b""
        if not raw.strip():
            return _Fields({})
        try:
            data = json.loads(raw)
        except ValueError as error:
            raise ControlError(400, f"the request body is not valid JSON: {error}") from None
        if not isinstance(data, dict):
            raise ControlError(400, f"the request body must be a JSON object, not {type(data).__name__}")
        return _Fields(data)

    @staticmethod
    def _query(request: web.Request) -> _Fields:
        return _Fields(request.query, "query parameter")

    # -- lookups: by id, or by name within a guild ----------------------------------------------------

    def _guild(self, ref: Any, *, field: str = "guild_id") -> Guild:
        if ref is None or ref == "":
            guild = next(iter(self.world.guilds.values()), None)
            if guild is None:
                raise ControlError(400, "the sandbox has no guild, so a name cannot be looked up in one")
            return guild
        wanted = _as_int(ref)
        for guild in self.world.guilds.values():
            if guild.id == wanted or guild.name == ref:
                return guild
        raise _unknown(400, field, ref, "the id or name of a guild of the sandbox")

    def _channel(
        self, ref: Any, guild_ref: Any = None, *, field: str = "channel", status: int = 400
    ) -> Channel:
        """Return a channel by id, ``#name`` or ``name`` in a guild, or ``@user`` for the DM with a user."""
        channel_id = _as_int(ref)
        if channel_id is not None:
            try:
                return self.world.channel(channel_id)
            except KeyError:
                raise _unknown(status, field, ref, "the id of any channel") from None
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
            raise _unknown(status, field, ref, f"a channel of guild {guild.name!r}") from None

    def _user(self, ref: Any, *, field: str = "user", status: int = 400) -> User:
        user_id = _as_int(ref)
        for user in self.world.users.values():
            if user.id == user_id or (isinstance(ref, str) and user.username == ref.removeprefix("@")):
                return user
        raise _unknown(status, field, ref, "the id or username of any user")

    def _member(self, guild: Guild, ref: Any, *, field: str = "member", status: int = 400) -> Member:
        user_id = _as_int(ref)
        for member in guild.members.values():
            if member.id == user_id or (
                isinstance(ref, str) and member.user.username == ref.removeprefix("@")
            ):
                return member
        raise _unknown(status, field, ref, f"a member of guild {guild.name!r}")

    def _role(self, guild: Guild, ref: Any, *, field: str = "role", status: int = 400) -> Role:
        role_id = _as_int(ref)
        for role in guild.roles.values():
            if role.id == role_id or role.name == ref:
                return role
        raise _unknown(status, field, ref, f"a role of guild {guild.name!r}")

    def _roles(self, guild: Guild, refs: list[Any]) -> list[Role]:
        return [self._role(guild, ref, field=f"roles[{index}]") for index, ref in enumerate(refs)]

    def _session(self, fields: _Fields) -> Session | None:
        ref = fields.raw("session")
        if ref is None:
            return None
        session = self.sandbox.gateway.sessions.get(str(ref))
        if session is None:
            raise _unknown(400, "session", ref, f"a live session (GET {PREFIX}/sessions lists them)")
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

    def _interaction(self, interaction: Interaction, *, timed_out: bool = False) -> Payload:
        callback = interaction.callback
        response: Payload | None = None
        if callback is not None:
            answer = InteractionResponse(callback["type"], callback.get("data") or {}, interaction.original)
            response = {
                "type": answer.type,
                "deferred": answer.deferred,
                "ephemeral": answer.ephemeral,
                "content": answer.content,
                "embeds": answer.embeds,
                "flags": answer.message.flags if answer.message else int(answer.data.get("flags") or 0),
                "data": answer.data,
            }
        original = interaction.original
        return {
            "id": str(interaction.id),
            "command": _command_path(interaction.data),
            "user": {"id": str(interaction.user.id), "username": interaction.user.username},
            "channel_id": str(interaction.channel.id),
            "guild_id": str(interaction.guild.id) if interaction.guild else None,
            "acknowledged": interaction.acknowledged,
            "response": response,
            "message": self._message(original) if original else None,
            "final": original is not None and not original.flags & _LOADING,
            "followups": [self._message(m) for m in interaction.followups],
            "timed_out": timed_out,
        }

    # -- overview -----------------------------------------------------------------------------------

    async def index(self, request: web.Request) -> tuple[int, Any]:
        sandbox = self.sandbox
        return 200, {
            "api_base": sandbox.api_base,
            "gateway_url": sandbox.gateway_url,
            "control": sandbox.url + PREFIX,
            "bot": {"id": str(self.world.bot.id), "username": self.world.bot.username},
            "max_wait": MAX_WAIT,
            "endpoints": self._endpoints,
        }

    async def no_such_endpoint(self, request: web.Request) -> tuple[int, Any]:
        raise ControlError(
            404, f"there is no endpoint {request.method} {request.path}; GET {PREFIX}/ lists them"
        )

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

    async def get_commands(self, request: web.Request) -> tuple[int, Any]:
        registry = self.sandbox.commands
        return 200, {
            "global": list(registry.global_commands.values()),
            "guilds": {
                str(gid): list(commands.values()) for gid, commands in registry.guild_commands.items()
            },
        }

    # -- messages -----------------------------------------------------------------------------------

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

    # -- interactions -------------------------------------------------------------------------------

    async def invoke_slash(self, request: web.Request) -> tuple[int, Any]:
        fields = await self._body(request)
        command = fields.text("command") or ""
        if not command.strip():
            raise ControlError(400, "field 'command' is missing: give the command as typed, e.g. \"xp set\"")
        channel = self._channel(fields.required("channel"), fields.raw("guild_id"))
        who_field = "member" if fields.raw("member") is not None else "user"
        who = fields.required(who_field)
        guild = self.world.guilds.get(channel.guild_id) if channel.guild_id else None
        member = self._member(guild, who, field=who_field) if guild else None
        user = None if guild else self._user(who, field=who_field)
        options = fields.raw("options") or {}
        if not isinstance(options, dict):
            raise ControlError(400, "field 'options' must be a JSON object of option names to values")
        result = await self.sandbox.invoke_slash(
            command,
            member=member,
            user=user,
            channel=channel,
            options=self._slash_options(command, guild, options),
            locale=fields.text("locale", "en-US") or "en-US",
            enforce_permissions=fields.flag("enforce_permissions", True),
        )
        timed_out = await self._await_interaction(result, self._query(request))
        return 201, self._interaction(result.interaction, timed_out=timed_out)

    def _slash_options(self, name: str, guild: Guild | None, given: Mapping[str, Any]) -> dict[str, Any]:
        """Turn ids and names in user, role, channel and mentionable options into the sandbox's objects."""
        root, *path = name.split()
        command = self.sandbox.commands.find(guild.id if guild else None, root)
        declared: list[Payload] = (command.get("options") or []) if command else []
        for sub_name in path:
            sub = next((o for o in declared if o.get("name") == sub_name), None)
            declared = (sub.get("options") or []) if sub else []
        kinds = {option.get("name"): option.get("type") for option in declared}
        options: dict[str, Any] = {}
        for key, value in given.items():
            kind, field = kinds.get(key), f"options.{key}"
            if kind == OptionType.USER:
                options[key] = self._person(guild, value, field)
            elif kind == OptionType.CHANNEL:
                options[key] = self._channel(value, guild.id if guild else None, field=field)
            elif kind == OptionType.ROLE:
                options[key] = self._role(self._guild_of(guild, field), value, field=field)
            elif kind == OptionType.MENTIONABLE:
                try:
                    options[key] = self._person(guild, value, field)
                except ControlError:
                    options[key] = self._role(self._guild_of(guild, field), value, field=field)
            else:
                # Anything else (and an option the command lacks) goes as given: the driver checks it.
                options[key] = value
        return options

    def _person(self, guild: Guild | None, ref: Any, field: str) -> Member | User:
        if guild is not None:
            try:
                return self._member(guild, ref, field=field)
            except ControlError:
                pass
        return self._user(ref, field=field)

    @staticmethod
    def _guild_of(guild: Guild | None, field: str) -> Guild:
        if guild is None:
            raise ControlError(
                400, f"field {field!r} names a role, which only a command in a guild channel can take"
            )
        return guild

    async def _await_interaction(self, result: InteractionResult, query: _Fields) -> bool:
        """Wait as ``?wait=<s>&until=response|final|followups&count=<n>`` asks; return True on a timeout."""
        wait = query.wait()
        until = query.text("until", "response")
        count = query.integer("count", 1, low=1, high=100)
        waits: dict[str, Callable[[], Awaitable[object]]] = {
            "response": lambda: result.response(wait),
            "final": lambda: result.final_message(wait),
            "followups": lambda: result.followups(count, wait),
        }
        if until not in waits:
            raise ControlError(
                400, f"query parameter 'until' must be response, final or followups, not {until!r}"
            )
        if wait <= 0:
            return False
        try:
            await self._wait(waits[until]())
        except TimeoutError:
            return True
        return False

    def _find_interaction(self, request: web.Request) -> Interaction:
        ref = request.match_info["interaction_id"]
        interaction = self.sandbox.interactions.get(_as_int(ref) or 0)
        if interaction is None:
            raise ControlError(
                404, f"there is no interaction {ref!r}; POST {PREFIX}/interactions returns the ids"
            )
        return interaction

    async def list_interactions(self, request: web.Request) -> tuple[int, Any]:
        return 200, {"interactions": [self._interaction(i) for i in self.sandbox.interactions.values()]}

    async def get_interaction(self, request: web.Request) -> tuple[int, Any]:
        interaction = self._find_interaction(request)
        timed_out = await self._await_interaction(InteractionResult(interaction), self._query(request))
        return 200, self._interaction(interaction, timed_out=timed_out)

    # -- request log and sessions -------------------------------------------------------------------

    async def get_requests(self, request: web.Request) -> tuple[int, Any]:
        query = self._query(request)
        since = query.integer("since", 0)
        limit = query.integer("limit", 1000, low=1, high=10_000)
        method = query.method() if query.raw("method") else None
        pattern = re.compile(query.pattern()) if query.raw("path") else None
        log_ = self.sandbox.requests
        found: list[Payload] = []
        next_index = len(log_)
        for index in range(since, len(log_)):
            exchange = log_[index]
            if method not in (None, "*", exchange.method):
                continue
            if pattern is not None and not pattern.search(exchange.path):
                continue
            found.append(_exchange(index, exchange))
            if len(found) == limit:
                next_index = index + 1
                break
        return 200, {"requests": found, "next": next_index, "total": len(log_)}

    async def wait_for_request(self, request: web.Request) -> tuple[int, Any]:
        fields = await self._body(request)
        method, path = fields.method(), fields.pattern()
        timeout = fields.wait("timeout", 5.0)
        since = fields.integer("since", 0)
        status = fields.integer("status", 0, low=0, high=599)
        predicate = (lambda exchange: exchange.status == status) if status else None
        try:
            found = await self._wait(
                self.sandbox.wait_for_request(method, path, predicate, timeout=timeout, since=since)
            )
        except TimeoutError as error:
            raise ControlError(408, str(error)) from None
        index = next(i for i in range(since, len(self.sandbox.requests)) if self.sandbox.requests[i] is found)
        return 200, _exchange(index, found)

    async def get_unknown_routes(self, request: web.Request) -> tuple[int, Any]:
        log_ = self.sandbox.requests
        return 200, {"unknown_routes": [_exchange(i, r) for i, r in enumerate(log_) if not r.known]}

    async def get_sessions(self, request: web.Request) -> tuple[int, Any]:
        return 200, {"sessions": [_session(s) for s in self.sandbox.sessions]}

    async def wait_until_ready(self, request: web.Request) -> tuple[int, Any]:
        fields = await self._body(request)
        shard_id = fields.integer("shard_id", 0, high=65_535)
        timeout = fields.wait("timeout", 10.0)
        try:
            session = await self._wait(self.sandbox.wait_until_ready(shard_id=shard_id, timeout=timeout))
        except TimeoutError:
            raise ControlError(408, f"no bot was ready on shard {shard_id} within {timeout:g}s") from None
        return 200, _session(session)

    # -- world changes ------------------------------------------------------------------------------

    def _guild_ref(self, request: web.Request, fields: _Fields) -> Any:
        return fields.raw("guild_id") or request.query.get("guild_id")

    async def add_member(self, request: web.Request) -> tuple[int, Any]:
        fields = await self._body(request)
        guild = self._guild(fields.raw("guild_id"))
        ref = fields.required("user")
        user: User | str
        if _as_int(ref) is not None:
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

    # -- faults -------------------------------------------------------------------------------------

    def _faults(self) -> Payload:
        faults = self.sandbox.faults
        return {
            "rest": [_fault(f) for f in faults.rest],
            "refuse_connections": faults.refusing,
            "drop_heartbeat_acks": self.sandbox.gateway.drop_heartbeat_acks,
        }

    async def get_faults(self, request: web.Request) -> tuple[int, Any]:
        return 200, self._faults()

    async def clear_faults(self, request: web.Request) -> tuple[int, Any]:
        self.sandbox.faults.clear()
        return 200, self._faults()

    async def fault_close(self, request: web.Request) -> tuple[int, Any]:
        fields = await self._body(request)
        code = fields.integer("code", 4000, low=1000, high=4999)
        if not (code <= 1003 or 1007 <= code <= 1014 or code >= 3000):
            raise ControlError(
                400, f"field 'code' {code} is reserved by WebSocket and cannot be sent; use 1000 or 4000-4014"
            )
        return 200, {"connections": await self.sandbox.faults.close(code, session=self._session(fields))}

    async def fault_drop(self, request: web.Request) -> tuple[int, Any]:
        fields = await self._body(request)
        return 200, {"connections": self.sandbox.faults.drop(session=self._session(fields))}

    async def fault_reconnect(self, request: web.Request) -> tuple[int, Any]:
        fields = await self._body(request)
        return 200, {"connections": self.sandbox.faults.reconnect(session=self._session(fields))}

    async def fault_invalidate(self, request: web.Request) -> tuple[int, Any]:
        fields = await self._body(request)
        resumable = fields.flag("resumable", False)
        count = self.sandbox.faults.invalidate(resumable=resumable, session=self._session(fields))
        return 200, {"connections": count}

    async def fault_drop_heartbeat_acks(self, request: web.Request) -> tuple[int, Any]:
        fields = await self._body(request)
        self.sandbox.faults.drop_heartbeat_acks(fields.flag("enabled", True))
        return 200, self._faults()

    async def fault_refuse_connections(self, request: web.Request) -> tuple[int, Any]:
        fields = await self._body(request)
        self.sandbox.faults.refuse_connections(fields.flag("enabled", True))
        return 200, self._faults()

    async def fault_rate_limit(self, request: web.Request) -> tuple[int, Any]:
        fields = await self._body(request)
        fault = self.sandbox.faults.rate_limit(
            fields.method(),
            fields.pattern(),
            count=fields.integer("count", 1, low=1),
            retry_after=fields.number("retry_after", 0.5, high=3600.0),
            is_global=fields.flag("global", False),
            via=fields.flag("via", True),
        )
        return 201, _fault(fault)

    async def fault_server_error(self, request: web.Request) -> tuple[int, Any]:
        fields = await self._body(request)
        fault = self.sandbox.faults.server_error(
            fields.method(),
            fields.pattern(),
            status=fields.integer("status", 500, low=500, high=599),
            count=fields.integer("count", 1, low=1),
        )
        return 201, _fault(fault)

    async def fault_latency(self, request: web.Request) -> tuple[int, Any]:
        fields = await self._body(request)
        count = fields.integer("count", 0, low=1) if fields.raw("count") is not None else None
        fields.required("seconds")
        seconds = fields.number("seconds", 0.0, high=MAX_WAIT)
        fault = self.sandbox.faults.latency(fields.method(), fields.pattern(), seconds, count=count)
        return 201, _fault(fault)


_LOADING = 1 << 7  # MessageFlags.LOADING: the bot deferred and is "thinking"


def _json_response(status: int, body: Any) -> web.Response:
    # One line of JSON ending in a newline, so answers read well in a shell after ``curl -s``.
    response = web.Response(status=status, body=json.dumps(body, separators=(",", ":")).encode() + b"\n")
    response.content_type = "application/json"
    return response


def _unknown(status: int, field: str, ref: Any, what: str) -> ControlError:
    """Return the error for a reference to nothing: 400 naming the body field, or 404 for the path."""
    where = f"field {field!r}: " if status == 400 else ""
    return ControlError(status, f"{where}{ref!r} is not {what}")


def _as_int(value: Any) -> int | None:
    """Return ``value`` as a non-negative int if it is one or a string of digits, else ``None``."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.isdigit() and len(value) <= 20:
        return int(value)
    return None


def _command_path(data: Payload) -> str:
    """Return the invoked command as typed: ``"xp set"`` for a subcommand."""
    names = [str(data.get("name"))]
    options = data.get("options") or []
    while options and options[0].get("type") in (OptionType.SUB_COMMAND, OptionType.SUB_COMMAND_GROUP):
        names.append(str(options[0]["name"]))
        options = options[0].get("options") or []
    return " ".join(names)


def _exchange(index: int, exchange: RecordedRequest) -> Payload:
    return {
        "index": index,
        "method": exchange.method,
        "path": exchange.path,
        "route": exchange.route,
        "known": exchange.known,
        "query": exchange.query,
        "body": exchange.body,
        "status": exchange.status,
        "response": exchange.response,
    }


def _session(session: Session) -> Payload:
    return {
        "id": session.id,
        "shard": list(session.shard),
        "intents": session.intents,
        "seq": session.seq,
        "connected": session.connection is not None,
        "ready": session.ready.is_set(),
        "resumable": session.resumable,
        "identifies": session.identifies,
        "resumes": session.resumes,
    }


def _fault(fault: RestFault) -> Payload:
    payload: Payload = {
        "kind": fault.kind,
        "method": fault.method,
        "path": fault.path.pattern,
        "remaining": fault.remaining,
    }
    if fault.kind == "rate_limit":
        payload.update({"retry_after": fault.retry_after, "global": fault.is_global, "via": fault.via})
    elif fault.kind == "server_error":
        payload["status"] = fault.status
    else:
        payload["seconds"] = fault.seconds
    return payload
