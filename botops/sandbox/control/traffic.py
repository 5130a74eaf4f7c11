"""Control routes for what the bot did: the REST request log, unknown routes, gateway sessions, waits."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from botops.sandbox.control.base import ControlBase
from botops.sandbox.control.fields import ControlError
from botops.sandbox.gateway import Session
from botops.sandbox.rest import RecordedRequest
from botops.sandbox.world import Payload

__all__ = ["TrafficFeature"]


class TrafficFeature(ControlBase):
    """``/requests``, ``/unknown_routes`` and ``/sessions``."""

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
        return 200, {"sessions": [_session_state(s) for s in self.sandbox.sessions]}

    async def wait_until_ready(self, request: web.Request) -> tuple[int, Any]:
        fields = await self._body(request)
        shard_id = fields.integer("shard_id", 0, high=65_535)
        timeout = fields.wait("timeout", 10.0)
        try:
            session = await self._wait(self.sandbox.wait_until_ready(shard_id=shard_id, timeout=timeout))
        except TimeoutError:
            raise ControlError(408, f"no bot was ready on shard {shard_id} within {timeout:g}s") from None
        return 200, _session_state(session)


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


def _session_state(session: Session) -> Payload:
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
