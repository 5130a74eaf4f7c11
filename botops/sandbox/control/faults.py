"""Control routes for faults: break gateway connections, arm misbehaving REST routes, spend session starts."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from botops.sandbox.control.base import ControlBase
from botops.sandbox.control.fields import ControlError
from botops.sandbox.faults import DAY, RestFault
from botops.sandbox.world import Payload

__all__ = ["FaultsFeature"]


class FaultsFeature(ControlBase):
    """``/faults``: what is armed, and one route per fault of :class:`~botops.sandbox.faults.Faults`."""

    def _faults(self) -> Payload:
        faults = self.sandbox.faults
        return {
            "rest": [_fault(f) for f in faults.rest],
            "refuse_connections": faults.refusing,
            "hold_hello": faults.holding_hello,
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

    async def fault_hold_hello(self, request: web.Request) -> tuple[int, Any]:
        fields = await self._body(request)
        self.sandbox.faults.hold_hello(fields.flag("enabled", True))
        return 200, self._faults()

    async def fault_refuse_connections(self, request: web.Request) -> tuple[int, Any]:
        fields = await self._body(request)
        self.sandbox.faults.refuse_connections(fields.flag("enabled", True))
        return 200, self._faults()

    async def fault_session_start_limit(self, request: web.Request) -> tuple[int, Any]:
        fields = await self._body(request)
        total = fields.integer("total", 1000, low=1)
        remaining = fields.integer("remaining", total, high=total)
        reset_after = fields.number("reset_after", DAY)
        return 200, self.sandbox.faults.session_start_limit(remaining, total=total, reset_after=reset_after)

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
        seconds = fields.number("seconds", 0.0, high=self.max_wait)
        fault = self.sandbox.faults.latency(fields.method(), fields.pattern(), seconds, count=count)
        return 201, _fault(fault)


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
