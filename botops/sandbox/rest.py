"""The sandbox's REST API under ``/api/v10``: one route table, each route a small handler.

A handler receives a :class:`Call` and returns ``(status, body)`` or raises :class:`DiscordError`.
:meth:`RestApi.route` wraps it with what Discord does around every request (faults first, then the
token check, the rate-limit bucket and its headers, then the request log), so a route only states its
own behaviour. A route not in the table answers 404 and is recorded in ``unknown_routes``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import BodyPartReader, web

from botops.sandbox.errors import DiscordError, SandboxError
from botops.sandbox.faults import RestFault
from botops.sandbox.ratelimit import VIA, too_many_requests

if TYPE_CHECKING:
    from botops.sandbox.server import Sandbox

__all__ = ["API_PREFIX", "Call", "RecordedRequest", "RestApi"]

log = logging.getLogger(__name__)

API_PREFIX = "/api/v10"


@dataclass(frozen=True)
class RecordedRequest:
    """One REST exchange as the sandbox saw it; the request log holds these in order."""

    method: str
    path: str
    route: str | None
    query: dict[str, str]
    body: Any
    status: int
    response: Any
    client: str = ""  # the User-Agent, e.g. "DiscordBot (https://github.com/Rapptz/discord.py 2.7.1)"
    at: float = field(default_factory=time.monotonic)

    @property
    def known(self) -> bool:
        return self.route is not None


@dataclass
class Call:
    """What a route handler gets: the path parameters, the query, the parsed body and uploaded files."""

    request: web.Request
    params: dict[str, str]
    query: dict[str, str]
    body: Any
    files: list[dict[str, Any]]

    def snowflake(self, name: str, unknown: tuple[int, str]) -> int:
        """Return path parameter ``name`` as an int; a malformed one is Discord's 404 for that entity."""
        raw = self.params[name]
        if not raw.isdigit():
            raise DiscordError.not_found(*unknown)
        return int(raw)


Handler = Callable[[Call], Awaitable[tuple[int, Any]]]
_JSON = "application/json"


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> web.Response:
    """Answer with ``Content-Type: application/json`` exactly, which discord.py compares with ``==``."""
    if status == 204:
        return web.Response(status=204, headers=headers)
    data = json.dumps(body, separators=(",", ":")).encode()
    response = web.Response(status=status, body=data, headers=headers)
    response.content_type = _JSON
    return response


class RestApi:
    """Route table plumbing shared by every REST route of one sandbox."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    def route(
        self, app: web.Application, method: str, template: str, handler: Handler, *, auth: bool = True
    ) -> None:
        """Serve ``handler`` at ``method template``; ``auth=False`` for token-in-URL routes (interactions)."""

        async def serve(request: web.Request) -> web.StreamResponse:
            return await self._serve(request, method, template, handler, auth)

        app.router.add_route(method, API_PREFIX + template, serve)

    async def unknown(self, request: web.Request) -> web.StreamResponse:
        """Answer a route the sandbox does not know with 404 and record it."""
        body = await _read_json(request)
        path = request.path.removeprefix(API_PREFIX)
        payload = {"message": "404: Not Found", "code": 0}
        self.sandbox.record(
            RecordedRequest(
                request.method,
                path,
                None,
                dict(request.query),
                body,
                404,
                payload,
                request.headers.get("User-Agent", ""),
            )
        )
        log.warning("sandbox: unknown route %s %s", request.method, path)
        return json_response(404, payload, {"Via": VIA})

    async def _serve(
        self, request: web.Request, method: str, template: str, handler: Handler, auth: bool
    ) -> web.StreamResponse:
        sandbox = self.sandbox
        if sandbox.faults.refusing:
            _abort(request)
        path = request.path.removeprefix(API_PREFIX)
        files: list[dict[str, Any]] = []
        try:
            body = await _read_body(request, files)
        except DiscordError as error:
            return self._finish(request, path, template, None, error.status, error.to_payload(), {"Via": VIA})
        for fault in sandbox.faults.take(method, path):
            response = await self._apply_fault(fault)
            if response is not None:
                status, payload, headers = response
                return self._finish(request, path, template, body, status, payload, headers)
        if auth and not sandbox.token_matches(_bot_token(request)):
            payload = {"message": "401: Unauthorized", "code": 0}
            return self._finish(request, path, template, body, 401, payload, {"Via": VIA})
        major = _major_parameter(request.match_info)
        decision = sandbox.ratelimiter.check(method, template, major, exempt_global=not auth)
        headers = dict(decision.headers)
        if decision.retry_after is not None:
            extra, payload = too_many_requests(decision.retry_after, is_global=decision.is_global)
            headers.update(extra)
            return self._finish(request, path, template, body, 429, payload, headers)
        call = Call(request, dict(request.match_info), dict(request.query), body, files)
        try:
            status, payload = await handler(call)
        except DiscordError as error:
            status, payload = error.status, error.to_payload()
        except SandboxError as error:
            status, payload = 400, {"message": str(error), "code": 50035}
        except Exception:
            # A bug in the sandbox: the client still gets Discord's JSON 500, the traceback goes to the log.
            log.exception("sandbox: %s %s failed", method, path)
            status, payload = 500, {"message": "500: Internal Server Error", "code": 0}
        return self._finish(request, path, template, body, status, payload, headers)

    async def _apply_fault(self, fault: RestFault) -> tuple[int, Any, dict[str, str]] | None:
        if fault.kind == "latency":
            await asyncio.sleep(fault.seconds)
            return None
        if fault.kind == "rate_limit":
            headers, payload = too_many_requests(fault.retry_after, is_global=fault.is_global)
            if not fault.via:
                headers.pop("Via")
            return 429, payload, headers
        return fault.status, {"message": f"{fault.status}: Server Error", "code": 0}, {"Via": VIA}

    def _finish(
        self,
        request: web.Request,
        path: str,
        template: str,
        body: Any,
        status: int,
        payload: Any,
        headers: dict[str, str],
    ) -> web.Response:
        self.sandbox.record(
            RecordedRequest(
                request.method,
                path,
                template,
                dict(request.query),
                body,
                status,
                None if status == 204 else payload,
                request.headers.get("User-Agent", ""),
            )
        )
        return json_response(status, payload, headers)


def _bot_token(request: web.Request) -> str | None:
    header = request.headers.get("Authorization", "")
    return header[4:] if header.startswith("Bot ") else None


def _major_parameter(params: Any) -> str:
    for name in ("channel_id", "guild_id", "webhook_id", "interaction_id"):
        if name in params:
            return f"{name}={params[name]}"
    return ""


async def _read_json(request: web.Request) -> Any:
    if not request.can_read_body:
        return None
    raw = await request.read()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


async def _read_body(request: web.Request, files: list[dict[str, Any]]) -> Any:
    """Parse a JSON or ``multipart/form-data`` body (``payload_json`` plus ``files[n]``) as Discord does."""
    if not request.can_read_body:
        return None
    if request.content_type.startswith("multipart/"):
        try:
            return await _read_multipart(request, files)
        except ValueError as error:  # payload_json that is not JSON, or a malformed multipart body
            raise DiscordError(400, 50035, "Invalid Form Body") from error
    raw = await request.read()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError as error:
        raise DiscordError(400, 50109, "The request body contains invalid JSON.") from error


async def _read_multipart(request: web.Request, files: list[dict[str, Any]]) -> Any:
    body: Any = {}
    reader = await request.multipart()
    async for part in reader:
        if not isinstance(part, BodyPartReader):
            continue
        if part.name == "payload_json":
            body = json.loads(await part.text())
        elif part.name and part.name.startswith("files["):
            data = await part.read()
            kind = part.headers.get("Content-Type", "application/octet-stream")
            files.append({"filename": part.filename or "file", "size": len(data), "content_type": kind})
    return body


def _abort(request: web.Request) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()
    raise web.HTTPServiceUnavailable()
