"""The control plane: the sandbox's driver API over HTTP under ``/_sandbox/``, for a bot in another process.

A shell, a demo or a monitoring check drives the sandbox here as a test drives :class:`Sandbox` in
Python: post a message as a member, invoke a slash command and read the bot's answer, read the request
log, change the world, inject faults. Each handler is a thin layer over a driver method.

JSON in, JSON out. Every POST, PATCH, PUT and DELETE must carry ``Content-Type: application/json``
(415 otherwise), which a browser's cross-site request cannot. A bad request answers 400 with
``{"error": "<one sentence>"}``, an unknown id in the path 404; a wait is capped at :data:`MAX_WAIT`
seconds. Members, channels and roles are addressed by id
or by name within the first guild (or the one ``guild_id`` names).

There is no authentication: the control plane listens where the sandbox listens (127.0.0.1 by default)
and must never be reachable from another machine.

The plane is composed from feature mixins, one per kind of data it handles (messages, interactions,
world, traffic, faults), on :class:`~botops.sandbox.control.base.ControlBase`; :meth:`ControlPlane.register`
joins their handlers into one route table.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from botops.sandbox.control.base import PREFIX, Handler
from botops.sandbox.control.faults import FaultsFeature
from botops.sandbox.control.fields import ControlError
from botops.sandbox.control.interactions import InteractionsFeature
from botops.sandbox.control.messages import MessagesFeature
from botops.sandbox.control.traffic import TrafficFeature
from botops.sandbox.control.world import WorldFeature

__all__ = ["MAX_WAIT", "PREFIX", "ControlError", "ControlPlane"]

#: The longest any request may wait, in seconds, whatever it asks for; a long poll must end.
MAX_WAIT = 30.0


class ControlPlane(MessagesFeature, InteractionsFeature, WorldFeature, TrafficFeature, FaultsFeature):
    """The HTTP routes under ``/_sandbox/`` of one sandbox."""

    @property
    def max_wait(self) -> float:
        # Looked up per request, not bound at import: the cap is whatever this module's MAX_WAIT is now.
        return MAX_WAIT

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
            ("POST", "/faults/hold_hello", self.fault_hold_hello),
            ("POST", "/faults/session_start_limit", self.fault_session_start_limit),
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

    async def index(self, request: web.Request) -> tuple[int, Any]:
        sandbox = self.sandbox
        return 200, {
            "api_base": sandbox.api_base,
            "gateway_url": sandbox.gateway_url,
            "control": sandbox.url + PREFIX,
            "bot": {"id": str(self.world.bot.id), "username": self.world.bot.username},
            "max_wait": self.max_wait,
            "endpoints": self._endpoints,
        }

    async def no_such_endpoint(self, request: web.Request) -> tuple[int, Any]:
        raise ControlError(
            404, f"there is no endpoint {request.method} {request.path}; GET {PREFIX}/ lists them"
        )
