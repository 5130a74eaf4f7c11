"""The gateway's transport: one WebSocket connection and its frame encoders (text, zlib-stream, zstd-stream).

Frames leave each connection through one writer task, which keeps the order a zlib or zstd stream needs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import zlib
from typing import TYPE_CHECKING, Protocol

import zstandard
from aiohttp import web

from botops.sandbox.entities import Payload
from botops.sandbox.protocol import CloseCode

if TYPE_CHECKING:
    from botops.sandbox.session import Session

__all__ = ["Connection"]

log = logging.getLogger(__name__)


class _Encoder(Protocol):
    binary: bool

    def encode(self, text: str) -> bytes | str: ...


class _TextEncoder:
    binary = False

    def encode(self, text: str) -> str:
        return text


class _ZlibEncoder:
    """One zlib stream per connection; each message ends with a sync flush (``00 00 ff ff``)."""

    binary = True

    def __init__(self) -> None:
        self._stream = zlib.compressobj()

    def encode(self, text: str) -> bytes:
        return self._stream.compress(text.encode()) + self._stream.flush(zlib.Z_SYNC_FLUSH)


class _ZstdEncoder:
    """One zstd stream per connection; each message ends with a block flush."""

    binary = True

    def __init__(self) -> None:
        self._stream = zstandard.ZstdCompressor().compressobj()

    def encode(self, text: str) -> bytes:
        return bytes(
            self._stream.compress(text.encode()) + self._stream.flush(zstandard.COMPRESSOBJ_FLUSH_BLOCK)
        )


_ENCODERS: dict[str, type[_TextEncoder] | type[_ZlibEncoder] | type[_ZstdEncoder]] = {
    "zlib-stream": _ZlibEncoder,
    "zstd-stream": _ZstdEncoder,
}


class Connection:
    """One gateway WebSocket and the ordered queue of frames going out on it."""

    def __init__(self, ws: web.WebSocketResponse, request: web.Request, compression: str) -> None:
        self.ws = ws
        self.request = request
        self.compression = compression
        self.encoder: _Encoder = _ENCODERS[compression]() if compression in _ENCODERS else _TextEncoder()
        self.session: Session | None = None
        self.server_close_code: int | None = None
        self._queue: asyncio.Queue[str | None] = asyncio.Queue()
        self._writer = asyncio.create_task(self._write_frames(), name="sandbox-gateway-writer")
        self.sent = 0

    def send(self, frame: str) -> None:
        """Queue one JSON text frame; frames leave in the order they were queued."""
        self._queue.put_nowait(frame)

    def send_payload(self, payload: Payload) -> None:
        """Queue a gateway payload."""
        self.send(json.dumps(payload, separators=(",", ":")))

    async def close(self, code: int, reason: str = "") -> None:
        """Send what is queued, then close with ``code``."""
        self.server_close_code = code
        self._queue.put_nowait(None)
        await asyncio.gather(self._writer, return_exceptions=True)
        await self.ws.close(code=code, message=(reason or CloseCode.REASONS.get(code, "")).encode())

    def abort(self) -> None:
        """Cut the TCP connection without a close frame, as a network failure would (1006)."""
        self._writer.cancel()
        transport = self.request.transport
        if transport is not None:
            transport.abort()

    async def stop(self) -> None:
        """Stop the writer without sending anything more."""
        self._writer.cancel()
        await asyncio.gather(self._writer, return_exceptions=True)

    async def _write_frames(self) -> None:
        while True:
            frame = await self._queue.get()
            if frame is None or self.ws.closed:
                return
            data = self.encoder.encode(frame)
            try:
                if isinstance(data, bytes):
                    await self.ws.send_bytes(data)
                else:
                    await self.ws.send_str(data)
            except (ConnectionError, RuntimeError):
                return
            self.sent += 1
