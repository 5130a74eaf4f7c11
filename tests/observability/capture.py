"""A local Sentry: an HTTP server on 127.0.0.1 that keeps every envelope the real sentry-sdk sends it.

Point the SDK at :attr:`CaptureServer.dsn` (``http://publickey@127.0.0.1:<port>/1``). The server keeps
each request body decoded (gzip, deflate, brotli when installed, or plain) in :attr:`CaptureServer.bodies`
-- what a canary test searches -- and the parsed envelopes, events and transactions. The SDK sends from
a background thread, so the server must run on a loop that keeps running: await
:meth:`CaptureServer.wait_for_event`, and call the blocking ``sentry_sdk.flush`` or ``close`` through
``asyncio.to_thread``.

Use it as ``async with CaptureServer() as server`` or through the ``capture_server`` fixture (import it
into a ``conftest.py``).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import zlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

import pytest_asyncio
from aiohttp import web

__all__ = ["CaptureServer", "Envelope", "EnvelopeItem", "capture_server", "parse_envelope"]

Event = dict[str, Any]


@dataclass(frozen=True)
class EnvelopeItem:
    """One item of an envelope: its header (``type``, ``length``...) and its payload bytes."""

    headers: dict[str, Any]
    payload: bytes

    @property
    def type(self) -> str:
        return str(self.headers.get("type", ""))

    def json(self) -> Any:
        return json.loads(self.payload)


@dataclass(frozen=True)
class Envelope:
    """A parsed envelope: its header and its items."""

    headers: dict[str, Any]
    items: list[EnvelopeItem] = field(default_factory=list)


def parse_envelope(body: bytes) -> Envelope:
    """Parse Sentry's envelope format: a JSON header line, then items (header line, payload).

    Raises:
        ValueError: ``body`` is not an envelope.
    """
    header_line, _, rest = body.partition(b"\n")
    envelope = Envelope(json.loads(header_line))
    while rest.strip():
        item_line, _, rest = rest.partition(b"\n")
        if not item_line.strip():
            continue
        item_headers = json.loads(item_line)
        length = item_headers.get("length")
        if length is None:
            payload, _, rest = rest.partition(b"\n")
        else:
            if len(rest) < length:
                raise ValueError(f"item of {length} bytes cut short at {len(rest)}")
            payload, rest = rest[:length], rest[length:].removeprefix(b"\n")
        envelope.items.append(EnvelopeItem(item_headers, payload))
    return envelope


def _decode(body: bytes, encoding: str) -> bytes:
    if encoding in ("", "identity"):
        return body
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding == "br":
        import brotli  # type: ignore[import-not-found]  # only installed where the SDK uses it

        return bytes(brotli.decompress(body))
    raise ValueError(f"unknown Content-Encoding {encoding!r}")


class CaptureServer:
    """Receive what sentry-sdk sends over HTTP and keep it, decoded and parsed."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.envelopes: list[Envelope] = []
        self.events: list[Event] = []
        self.transactions: list[Event] = []
        self.paths: list[str] = []
        self._arrived = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def dsn(self) -> str:
        """The DSN that sends to this server (project 1)."""
        return f"http://publickey@127.0.0.1:{self.port}/1"

    @property
    def received(self) -> bytes:
        """Every decoded body received so far, joined: the haystack of canary tests."""
        return b"\n".join(self.bodies)

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/api/{project}/envelope/", self._envelope)
        app.router.add_post("/api/{project}/store/", self._store)
        # The body is decoded here, not by aiohttp, so an encoding the SDK starts using fails loudly.
        self._runner = web.AppRunner(app, access_log=None, auto_decompress=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> CaptureServer:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def wait_for_event(self, predicate: Callable[[Event], bool], timeout: float = 10.0) -> Event:
        """Return the first event (received before or after the call) for which ``predicate`` holds.

        Raises:
            TimeoutError: no such event arrived within ``timeout`` seconds.
        """
        return await self._wait(self.events, predicate, timeout)

    async def wait_for_transaction(self, predicate: Callable[[Event], bool], timeout: float = 10.0) -> Event:
        """Return the first transaction for which ``predicate`` holds.

        Raises:
            TimeoutError: no such transaction arrived within ``timeout`` seconds.
        """
        return await self._wait(self.transactions, predicate, timeout)

    async def _wait(self, found: list[Event], predicate: Callable[[Event], bool], timeout: float) -> Event:
        async with asyncio.timeout(timeout), self._arrived:
            while True:
                for event in found:
                    if predicate(event):
                        return event
                await self._arrived.wait()

    async def _envelope(self, request: web.Request) -> web.Response:
        body = await self._body(request)
        envelope = parse_envelope(body)
        self.envelopes.append(envelope)
        for item in envelope.items:
            if item.type == "event":
                self.events.append(item.json())
            elif item.type == "transaction":
                self.transactions.append(item.json())
        await self._notify()
        return web.json_response({"id": envelope.headers.get("event_id")})

    async def _store(self, request: web.Request) -> web.Response:
        event = json.loads(await self._body(request))
        self.events.append(event)
        await self._notify()
        return web.json_response({"id": event.get("event_id")})

    async def _body(self, request: web.Request) -> bytes:
        body = _decode(await request.read(), request.headers.get("Content-Encoding", "").lower())
        self.bodies.append(body)
        self.paths.append(request.path)
        return body

    async def _notify(self) -> None:
        async with self._arrived:
            self._arrived.notify_all()


@pytest_asyncio.fixture
async def capture_server() -> AsyncIterator[CaptureServer]:
    """A running :class:`CaptureServer`; point ``SENTRY_DSN`` at its ``dsn``."""
    async with CaptureServer() as server:
        yield server
