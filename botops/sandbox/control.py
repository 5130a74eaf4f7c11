"""The control plane: the driver API over HTTP under ``/_sandbox/`` (being written)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from botops.sandbox.server import Sandbox


class ControlPlane:
    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox

    def register(self, app: web.Application) -> None:
        return None
