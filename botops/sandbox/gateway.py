"""The sandbox's gateway: Discord's WebSocket protocol, sessions, RESUME replay, intents and shards.

One :class:`Connection` is one WebSocket; one :class:`Session` is what IDENTIFY creates and RESUME
reattaches to a new connection. Events are numbered per session and kept in a replay buffer, so a
client that reconnects gets what it missed. Frames leave each connection through one writer task,
which keeps the order a zlib or zstd stream needs. :class:`Gateway` runs the protocol; the connection
and its encoders live in :mod:`botops.sandbox.transport`, sessions in :mod:`botops.sandbox.session`,
opcodes and close codes in :mod:`botops.sandbox.protocol`, all re-exported here.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from typing import TYPE_CHECKING, Any

from aiohttp import WSCloseCode, WSMsgType, web

from botops.sandbox.entities import Payload
from botops.sandbox.permissions import PRIVILEGED_INTENTS, Intents
from botops.sandbox.protocol import CloseCode, Opcode
from botops.sandbox.session import Session, shard_of
from botops.sandbox.transport import Connection

if TYPE_CHECKING:
    from botops.sandbox.server import Sandbox

__all__ = ["CloseCode", "Connection", "Gateway", "Opcode", "Session", "shard_of"]

log = logging.getLogger(__name__)

_MESSAGE_CONTENT = int(Intents.MESSAGE_CONTENT)


class Gateway:
    """Accept gateway connections, run their sessions and route dispatches to them."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.sessions: dict[str, Session] = {}
        self.connections: set[Connection] = set()
        self.drop_heartbeat_acks = False
        self.identifies = 0
        self.resumes = 0
        self._session_changed = asyncio.Event()

    # -- dispatch -----------------------------------------------------------------------------------

    def dispatch(self, event: str, payload: Payload, guild_id: int | None, intent: Intents | None) -> None:
        """Send an event to every live session that it is for, blanking content where intents say so."""
        full: str | None = None
        blank: str | None = None
        needed = int(intent) if intent is not None else 0  # plain ints: IntFlag arithmetic is slow here
        for session in list(self.sessions.values()):
            if not self._alive(session) or not session.accepts(guild_id, needed):
                continue
            if event in ("MESSAGE_CREATE", "MESSAGE_UPDATE") and not self._may_read_content(session, payload):
                if blank is None:
                    blank = _dumps(_without_content(payload))
                session.push(event, blank)
            else:
                if full is None:
                    full = _dumps(payload)
                session.push(event, full)

    def _may_read_content(self, session: Session, message: Payload) -> bool:
        if session.intents & _MESSAGE_CONTENT or "guild_id" not in message:
            return True
        bot_id = str(self.sandbox.world.bot.id)
        if message.get("author", {}).get("id") == bot_id:
            return True
        return any(user.get("id") == bot_id for user in message.get("mentions", ()))

    def _alive(self, session: Session) -> bool:
        if session.connection is not None:
            return True
        expired = (
            not session.resumable
            or session.disconnected_at is None
            or time.monotonic() - session.disconnected_at > self.sandbox.resume_window
        )
        if expired:
            self.sessions.pop(session.id, None)
        return not expired

    # -- waiting ------------------------------------------------------------------------------------

    async def wait_for_session(self, *, shard_id: int = 0, timeout: float = 10.0) -> Session:
        """Wait until a session for ``shard_id`` has received READY and its guilds."""
        async with asyncio.timeout(timeout):
            while True:
                for session in self.sessions.values():
                    if session.shard_id == shard_id and session.ready.is_set() and session.connection:
                        return session
                await self._session_changed.wait()

    def _notify_sessions(self) -> None:
        self._session_changed.set()
        self._session_changed = asyncio.Event()

    # -- connections --------------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        """Serve one gateway WebSocket from HELLO to close."""
        if self.sandbox.faults.refusing:
            _refuse(request)
        ws = web.WebSocketResponse(compress=False, max_msg_size=4 * 1024 * 1024)
        await ws.prepare(request)
        compression = request.query.get("compress", "")
        if compression not in self.sandbox.compression:
            compression = "text"
        connection = Connection(ws, request, compression)
        self.connections.add(connection)
        try:
            await self.sandbox.faults.hello_released.wait()
            if request.query.get("v", "10") not in ("9", "10"):
                await connection.close(CloseCode.INVALID_API_VERSION)
                return ws
            if request.query.get("encoding", "json") != "json":
                await connection.close(CloseCode.DECODE_ERROR, "The sandbox speaks encoding=json only.")
                return ws
            connection.send_payload(
                {
                    "op": Opcode.HELLO,
                    "d": {
                        "heartbeat_interval": self.sandbox.heartbeat_interval_ms,
                        "_trace": ['["botops-sandbox",{"micros":0}]'],
                    },
                    "s": None,
                    "t": None,
                }
            )
            await self._receive(connection)
        finally:
            self.connections.discard(connection)
            await self._detach(connection)
        return ws

    async def _receive(self, connection: Connection) -> None:
        async for message in connection.ws:
            if message.type != WSMsgType.TEXT:
                if message.type == WSMsgType.BINARY:
                    await connection.close(CloseCode.DECODE_ERROR)
                    return
                continue
            try:
                payload = json.loads(message.data)
                op = payload["op"]
                data = payload.get("d")
            except (ValueError, KeyError, TypeError):
                await connection.close(CloseCode.DECODE_ERROR)
                return
            if op == Opcode.HEARTBEAT:
                if not self.drop_heartbeat_acks:
                    connection.send_payload({"op": Opcode.HEARTBEAT_ACK, "d": None})
            elif op == Opcode.IDENTIFY:
                await self._identify(connection, data)
            elif op == Opcode.RESUME:
                await self._resume(connection, data)
            elif connection.session is None:
                await connection.close(CloseCode.NOT_AUTHENTICATED)
            elif op == Opcode.REQUEST_GUILD_MEMBERS:
                self._request_members(connection, connection.session, data)
            elif op == Opcode.PRESENCE_UPDATE:
                connection.session.presence = data
            elif op == Opcode.VOICE_STATE_UPDATE:
                pass
            else:
                await connection.close(CloseCode.UNKNOWN_OPCODE)
                return

    async def _detach(self, connection: Connection) -> None:
        await connection.stop()
        session = connection.session
        if session is None or session.connection is not connection:
            return
        session.connection = None
        session.disconnected_at = time.monotonic()
        # A client that closes with 1000 or 1001 ends its session, as do the server's 4007 and 4009;
        # any other close keeps it resumable.
        if connection.server_close_code is None:
            if connection.ws.close_code in (WSCloseCode.OK, WSCloseCode.GOING_AWAY):
                session.resumable = False
        elif connection.server_close_code in CloseCode.END_SESSION:
            session.resumable = False
        self._notify_sessions()

    # -- IDENTIFY and RESUME ------------------------------------------------------------------------

    async def _authenticated(self, connection: Connection, data: Any) -> bool:
        """Close the connection as Discord does unless ``data`` carries the token on a fresh connection."""
        if connection.session is not None:
            await connection.close(CloseCode.ALREADY_AUTHENTICATED)
            return False
        if not isinstance(data, dict) or not self.sandbox.token_matches(data.get("token")):
            await connection.close(CloseCode.AUTHENTICATION_FAILED)
            return False
        return True

    async def _identify(self, connection: Connection, data: Any) -> None:
        if not await self._authenticated(connection, data):
            return
        intents = data.get("intents")
        if not isinstance(intents, int) or intents < 0 or intents >= 1 << 26:
            await connection.close(CloseCode.INVALID_INTENTS)
            return
        if intents & PRIVILEGED_INTENTS & ~self.sandbox.allowed_privileged_intents:
            await connection.close(CloseCode.DISALLOWED_INTENTS)
            return
        shard = data.get("shard") or [0, 1]
        if (
            not isinstance(shard, list)
            or len(shard) != 2
            or not all(isinstance(n, int) for n in shard)
            or not 0 <= shard[0] < shard[1]
        ):
            await connection.close(CloseCode.INVALID_SHARD)
            return
        session = Session(id=secrets.token_hex(16), intents=intents, shard=(shard[0], shard[1]))
        session.presence = data.get("presence")
        self.sessions[session.id] = session
        session.connection = connection
        connection.session = session
        self.identifies += 1
        guilds = [g for g in self.sandbox.world.guilds.values() if shard_of(g.id, shard[1]) == shard[0]]
        session.push("READY", _dumps(self._ready_payload(session, [g.id for g in guilds])))
        if intents & Intents.GUILDS:
            threshold = data.get("large_threshold", 50)
            for guild in guilds:
                session.push("GUILD_CREATE", _dumps(self._guild_create(session, guild.id, threshold)))
        session.ready.set()
        self._notify_sessions()

    def _ready_payload(self, session: Session, guild_ids: list[int]) -> Payload:
        world = self.sandbox.world
        user = world.bot.to_payload()
        user.update({"verified": True, "mfa_enabled": False, "email": None, "bot": True})
        return {
            "v": 10,
            "user": user,
            "guilds": [{"id": str(gid), "unavailable": True} for gid in guild_ids],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.sandbox.gateway_url,
            "shard": list(session.shard),
            "application": {"id": str(world.application.id), "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["sandbox"],
            "user_settings": {},
            "auth": {},
            "_trace": ['["botops-sandbox",{"micros":0}]'],
        }

    def _guild_create(self, session: Session, guild_id: int, large_threshold: int) -> Payload:
        guild = self.sandbox.world.guilds[guild_id]
        bot_member = guild.members.get(self.sandbox.world.bot.id)
        if session.intents & Intents.GUILD_PRESENCES and len(guild.members) <= large_threshold:
            members = list(guild.members.values())
        else:
            members = [bot_member] if bot_member is not None else []
        payload = guild.to_payload(members=members)
        payload["large"] = len(guild.members) > large_threshold
        return payload

    async def _resume(self, connection: Connection, data: Any) -> None:
        if not await self._authenticated(connection, data):
            return
        session = self.sessions.get(str(data.get("session_id")))
        seq = data.get("seq")
        frames = None
        if session is not None and self._alive(session) and isinstance(seq, int):
            frames = session.replay_after(seq)
        if frames is not None and session is not None and session.connection is not None:
            # The client resumed before the old socket's close reached us: the new connection takes over,
            # as on Discord, and the old one is cut.
            old = session.connection
            old.session = None
            session.connection = None
            old.abort()
        if session is None or frames is None:
            connection.send_payload({"op": Opcode.INVALID_SESSION, "d": False})
            return
        session.connection = connection
        session.disconnected_at = None
        session.resumes += 1
        connection.session = session
        self.resumes += 1
        for frame in frames:
            connection.send(frame)
        session.push("RESUMED", '{"_trace":["[\\"botops-sandbox\\",{\\"micros\\":0}]"]}')
        self._notify_sessions()

    # -- member chunking ----------------------------------------------------------------------------

    def _request_members(self, connection: Connection, session: Session, data: Any) -> None:
        if not isinstance(data, dict):
            return
        guild_ids = data.get("guild_id")
        for raw_id in guild_ids if isinstance(guild_ids, list) else [guild_ids]:
            guild = self.sandbox.world.guilds.get(int(str(raw_id))) if _is_number(raw_id) else None
            if guild is None or shard_of(guild.id, session.shard[1]) != session.shard_id:
                continue
            members = list(guild.members.values())
            not_found: list[str] = []
            wanted = _user_ids(data.get("user_ids"))
            if wanted:
                members = [m for m in members if m.id in wanted]
                not_found = [str(u) for u in wanted if u not in guild.members]
            elif not session.intents & Intents.GUILD_MEMBERS:
                # Discord sends nothing for a full member list without the GUILD_MEMBERS intent.
                members = []
            else:
                query = str(data.get("query", "")).lower()
                members = [m for m in members if m.user.username.lower().startswith(query)]
                raw_limit = data.get("limit")
                limit = int(str(raw_limit)) if _is_number(raw_limit) else 0
                if query and limit:
                    members = members[:limit]
            chunks = [members[i : i + 1000] for i in range(0, len(members), 1000)] or [[]]
            for index, chunk in enumerate(chunks):
                payload: Payload = {
                    "guild_id": str(guild.id),
                    "members": [m.to_payload() for m in chunk],
                    "chunk_index": index,
                    "chunk_count": len(chunks),
                    "not_found": not_found if index == 0 else [],
                }
                if data.get("presences"):
                    payload["presences"] = []
                if data.get("nonce") is not None:
                    payload["nonce"] = data["nonce"]
                session.push("GUILD_MEMBERS_CHUNK", _dumps(payload))

    # -- faults -------------------------------------------------------------------------------------

    def targets(self, session: Session | None = None) -> list[Connection]:
        """Return the connections a fault applies to: ``session``'s, or every identified one."""
        if session is not None:
            return [session.connection] if session.connection is not None else []
        return [c for c in self.connections if c.session is not None]

    async def close_all(self) -> None:
        """Close every connection as a server going away does."""
        for connection in list(self.connections):
            await connection.close(WSCloseCode.GOING_AWAY, "Sandbox stopped.")


def _user_ids(raw: Any) -> list[int]:
    """Return REQUEST_GUILD_MEMBERS' ``user_ids``, one snowflake or a list; malformed ones are ignored."""
    items = raw if isinstance(raw, list) else [raw]
    return [int(str(item)) for item in items if _is_number(item)]


def _is_number(value: Any) -> bool:
    text = str(value)
    return text.isascii() and text.isdigit()


def _dumps(payload: Payload) -> str:
    return json.dumps(payload, separators=(",", ":"))


def _without_content(message: Payload) -> Payload:
    blank = dict(message)
    blank.update({"content": "", "embeds": [], "attachments": [], "components": []})
    blank.pop("poll", None)
    return blank


def _refuse(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()
    raise web.HTTPServiceUnavailable()
