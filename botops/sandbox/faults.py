"""Faults to inject: broken gateway connections and misbehaving REST routes.

Gateway faults act at once on the live connections; REST faults are armed for the next N matching
requests (method and a regular expression on the path after ``/api/v10``).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import WSCloseCode

from botops.sandbox.gateway import Opcode, Session

if TYPE_CHECKING:
    from botops.sandbox.server import Sandbox

__all__ = ["Faults", "RestFault"]


@dataclass
class RestFault:
    """One armed REST fault; ``remaining`` counts down to zero, ``None`` means until cleared."""

    kind: str  # "rate_limit", "server_error" or "latency"
    method: str
    path: re.Pattern[str]
    remaining: int | None
    retry_after: float = 0.0
    is_global: bool = False
    via: bool = True
    status: int = 500
    seconds: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        return (self.method in ("*", method)) and self.path.search(path) is not None


class Faults:
    """The fault injection API of one sandbox."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox
        self.rest: list[RestFault] = []
        self.refusing = False
        #: Set while new gateway connections get their HELLO; cleared by :meth:`hold_hello`.
        self.hello_released = asyncio.Event()
        self.hello_released.set()

    # -- gateway ------------------------------------------------------------------------------------

    async def close(self, code: int = 4000, *, session: Session | None = None) -> int:
        """Close gateway connections with ``code``; 4007 and 4009 also end their sessions. Return how many."""
        targets = self._sandbox.gateway.targets(session)
        for connection in targets:
            await connection.close(code)
        return len(targets)

    def drop(self, *, session: Session | None = None) -> int:
        """Cut gateway connections without a close frame, as a network failure does (close code 1006)."""
        targets = self._sandbox.gateway.targets(session)
        for connection in targets:
            connection.abort()
        return len(targets)

    def reconnect(self, *, session: Session | None = None) -> int:
        """Ask clients to reconnect and resume (opcode 7)."""
        targets = self._sandbox.gateway.targets(session)
        for connection in targets:
            connection.send_payload({"op": Opcode.RECONNECT, "d": None})
        return len(targets)

    def invalidate(self, *, resumable: bool = False, session: Session | None = None) -> int:
        """Send INVALID_SESSION (opcode 9); unless ``resumable``, the session is gone for good."""
        targets = self._sandbox.gateway.targets(session)
        for connection in targets:
            if connection.session is not None and not resumable:
                connection.session.resumable = False
                self._sandbox.gateway.sessions.pop(connection.session.id, None)
            connection.send_payload({"op": Opcode.INVALID_SESSION, "d": resumable})
        return len(targets)

    def drop_heartbeat_acks(self, enabled: bool = True) -> None:
        """Stop (or resume) answering heartbeats, so clients see a zombied connection."""
        self._sandbox.gateway.drop_heartbeat_acks = enabled

    def hold_hello(self, enabled: bool = True) -> None:
        """Accept new gateway connections but keep back their HELLO until released (``enabled=False``).

        A client that reconnects waits on the open socket, as it does behind a slow network: its
        RESUME or IDENTIFY follows as soon as the HELLO is released.
        """
        if enabled:
            self.hello_released.clear()
        else:
            self.hello_released.set()

    @property
    def holding_hello(self) -> bool:
        return not self.hello_released.is_set()

    def refuse_connections(self, enabled: bool = True) -> None:
        """Cut every new HTTP and WebSocket connection before it is answered, or stop doing so."""
        self.refusing = enabled

    async def disconnect_all(self) -> None:
        """Close every gateway connection as a server going away does."""
        for connection in self._sandbox.gateway.targets():
            await connection.close(WSCloseCode.GOING_AWAY)

    # -- REST ---------------------------------------------------------------------------------------

    def rate_limit(
        self,
        method: str,
        path: str,
        *,
        count: int = 1,
        retry_after: float = 0.5,
        is_global: bool = False,
        via: bool = True,
    ) -> RestFault:
        """Answer the next ``count`` matching requests with 429 and ``retry_after`` seconds to wait."""
        return self._arm(
            RestFault(
                "rate_limit",
                method,
                re.compile(path),
                count,
                retry_after=retry_after,
                is_global=is_global,
                via=via,
            )
        )

    def server_error(self, method: str, path: str, *, status: int = 500, count: int = 1) -> RestFault:
        """Answer the next ``count`` matching requests with a 5xx ``status``."""
        return self._arm(RestFault("server_error", method, re.compile(path), count, status=status))

    def latency(self, method: str, path: str, seconds: float, *, count: int | None = None) -> RestFault:
        """Delay matching requests by ``seconds`` (all of them until cleared, or the next ``count``)."""
        return self._arm(RestFault("latency", method, re.compile(path), count, seconds=seconds))

    def clear(self) -> None:
        """Disarm every REST fault and stop refusing connections, holding HELLOs and dropping acks."""
        self.rest.clear()
        self.refusing = False
        self.hello_released.set()
        self._sandbox.gateway.drop_heartbeat_acks = False

    def take(self, method: str, path: str) -> list[RestFault]:
        """Return the faults that apply to this request, counting each one down.

        Every matching latency fault applies, and they come first, so all their delays happen before the
        answer. Of the faults that answer the request (rate_limit, server_error) only the first armed
        one applies: a request gets one answer, so the others stay armed for the next request.
        """
        delays: list[RestFault] = []
        answer: RestFault | None = None
        for fault in self.rest:
            if not fault.matches(method, path):
                continue
            if fault.kind == "latency":
                delays.append(fault)
            elif answer is None:
                answer = fault
        taken = [*delays, answer] if answer is not None else delays
        for fault in taken:
            if fault.remaining is not None:
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self.rest.remove(fault)
        return taken

    def _arm(self, fault: RestFault) -> RestFault:
        self.rest.append(fault)
        return fault
