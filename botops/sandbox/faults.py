"""Faults to inject: broken gateway connections, misbehaving REST routes, a spent session-start budget.

Gateway faults act at once on the live connections; REST faults are armed for the next N matching
requests (method and a regular expression on the path after ``/api/v10``). The session start limit is
what ``GET /gateway/bot`` reports; every IDENTIFY takes one start from it, as on Discord.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiohttp import WSCloseCode

from botops.sandbox.errors import SandboxError
from botops.sandbox.gateway import Opcode, Session

if TYPE_CHECKING:
    from botops.sandbox.server import Sandbox

__all__ = ["DAY", "Faults", "RestFault", "SessionStartLimit"]

#: Discord's session-start window, in seconds.
DAY = 86_400.0


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


@dataclass
class SessionStartLimit:
    """A session-start budget set by a test: ``remaining`` of ``total`` when set, counted down by IDENTIFYs.

    ``identifies_at`` is the gateway's IDENTIFY count and ``set_at`` the monotonic clock when it was set.
    When ``reset_after`` seconds have passed the window starts over with ``total`` starts and a day to go.
    """

    total: int
    remaining: int
    reset_after: float
    identifies_at: int
    set_at: float

    def payload(self, identifies: int, now: float) -> dict[str, int]:
        """Return the ``session_start_limit`` object of ``GET /gateway/bot`` at ``identifies`` and ``now``."""
        if now - self.set_at >= self.reset_after:
            # Rolled over lazily, on the first look after the reset: IDENTIFYs in between are forgiven.
            self.remaining, self.reset_after = self.total, DAY
            self.identifies_at, self.set_at = identifies, now
        return {
            "total": self.total,
            "remaining": max(0, self.remaining - (identifies - self.identifies_at)),
            "reset_after": round((self.reset_after - (now - self.set_at)) * 1000),
            "max_concurrency": 1,
        }


class Faults:
    """The fault injection API of one sandbox."""

    def __init__(self, sandbox: Sandbox) -> None:
        self._sandbox = sandbox
        self.rest: list[RestFault] = []
        self.refusing = False
        #: Set while new gateway connections get their HELLO; cleared by :meth:`hold_hello`.
        self.hello_released = asyncio.Event()
        self.hello_released.set()
        #: Set by :meth:`session_start_limit`; ``None``: a fresh day's 1000 starts, less every IDENTIFY.
        self.session_starts: SessionStartLimit | None = None

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

    def session_start_limit(
        self, remaining: int, *, total: int = 1000, reset_after: float = DAY
    ) -> dict[str, int]:
        """Have ``GET /gateway/bot`` report ``remaining`` of ``total`` session starts for ``reset_after`` s.

        Every IDENTIFY from now on takes one start, as on Discord (the sandbox does not reset the token
        when none are left). Return the ``session_start_limit`` object as the route now reports it.

        Raises:
            SandboxError: ``total`` is below 1, ``remaining`` is not within 0..``total``, or
                ``reset_after`` is not positive.
        """
        if total < 1 or not 0 <= remaining <= total:
            raise SandboxError(f"remaining must be from 0 to total ({total}) and total at least 1")
        if not reset_after > 0:
            raise SandboxError(f"reset_after must be a positive number of seconds, not {reset_after!r}")
        identifies = self._sandbox.gateway.identifies
        self.session_starts = SessionStartLimit(total, remaining, reset_after, identifies, time.monotonic())
        return self.session_start_payload()

    def session_start_payload(self) -> dict[str, int]:
        """Return the ``session_start_limit`` object that ``GET /gateway/bot`` answers now."""
        identifies = self._sandbox.gateway.identifies
        if self.session_starts is None:
            return {
                "total": 1000,
                "remaining": max(0, 1000 - identifies),
                "reset_after": 86_400_000,
                "max_concurrency": 1,
            }
        return self.session_starts.payload(identifies, time.monotonic())

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
        """Disarm every fault: REST faults, refused connections, held HELLOs, dropped acks, spent starts."""
        self.rest.clear()
        self.session_starts = None
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
