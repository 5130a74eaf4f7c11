"""The sandbox server: one aiohttp app on 127.0.0.1 serving Discord's REST API and gateway.

:class:`Sandbox` owns the world, the gateway, the REST routes, the request log and the fault
switches, and is the driver API that tests and scripts use: send a message as a member, invoke a
slash command and await the bot's answer, wait for a request. It imports nothing of discord.py.
"""

from __future__ import annotations

import base64
import hmac
import logging
import re
import secrets
from collections.abc import Callable, Collection, Mapping
from types import TracebackType
from typing import Any, Self

from aiohttp import web

from botops.sandbox.commands import CommandRegistry
from botops.sandbox.errors import SandboxError
from botops.sandbox.faults import Faults
from botops.sandbox.gateway import Gateway, Session
from botops.sandbox.interactions import Interaction, InteractionResult, Signal, build_invocation
from botops.sandbox.messages import MessageParts, apply_parts
from botops.sandbox.permissions import PRIVILEGED_INTENTS
from botops.sandbox.ratelimit import RateLimiter
from botops.sandbox.rest import API_PREFIX, RecordedRequest, RestApi
from botops.sandbox.routes import Routes
from botops.sandbox.world import Channel, Member, Message, Payload, User, World

__all__ = ["COMPRESSIONS", "Sandbox"]

log = logging.getLogger(__name__)

COMPRESSIONS = ("zstd-stream", "zlib-stream")


def make_token(user_id: int) -> str:
    """Return a fresh token in Discord's shape (id, timestamp, HMAC parts), made at run time."""
    head = base64.urlsafe_b64encode(str(user_id).encode()).decode().rstrip("=")
    middle = secrets.token_urlsafe(6)[:6]
    tail = secrets.token_urlsafe(30)[:27]
    return f"{head}.{middle}.{tail}"


class Sandbox:
    """An offline Discord that an unmodified discord.py connects to over real sockets.

    Use it as ``async with Sandbox() as sandbox:``; point the bot at ``sandbox.api_base`` and
    ``sandbox.gateway_url`` with ``sandbox.token``.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        world: World | None = None,
        token: str | None = None,
        compression: Collection[str] = COMPRESSIONS,
        ratelimits: str = "generous",
        ack_deadline: float | None = 3.0,
        allowed_privileged_intents: int = int(PRIVILEGED_INTENTS),
        heartbeat_interval_ms: int = 41_250,
        resume_window: float = 120.0,
        recommended_shards: int = 1,
        control: bool = True,
    ) -> None:
        unknown = set(compression) - set(COMPRESSIONS)
        if unknown:
            raise ValueError(f"compression must be drawn from {COMPRESSIONS}, not {sorted(unknown)}")
        self.host = host
        self.port = port
        self.world = world or World()
        self.token = token or make_token(self.world.bot.id)
        self.compression = frozenset(compression)
        self.ack_deadline = ack_deadline
        self.allowed_privileged_intents = allowed_privileged_intents
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.resume_window = resume_window
        self.recommended_shards = recommended_shards
        self.ratelimiter = RateLimiter(ratelimits)
        self.commands = CommandRegistry(self.world.application.id, self.world.snowflakes)
        self.gateway = Gateway(self)
        self.faults = Faults(self)
        self.requests: list[RecordedRequest] = []
        self.interactions: dict[int, Interaction] = {}
        self.interactions_by_token: dict[str, Interaction] = {}
        self.changed = Signal()
        self._control = control
        self._runner: web.AppRunner | None = None
        self._site: web.TCPSite | None = None

    # -- lifecycle ----------------------------------------------------------------------------------

    async def start(self) -> Self:
        """Bind the port and start serving; the world starts dispatching to connected bots."""
        app = web.Application(client_max_size=25 * 1024 * 1024)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_get("/gateway/", self.gateway.handle)
        Routes(self).register(app, api := RestApi(self))
        if self._control:
            from botops.sandbox.control import ControlPlane

            ControlPlane(self).register(app)
        app.router.add_route("*", API_PREFIX + "/{tail:.*}", api.unknown)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        self._site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await self._site.start()
        server = self._site._server
        assert server is not None
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1]
        self.world.attach(self.gateway.dispatch)
        log.info("sandbox: Discord REST at %s, gateway at %s", self.api_base, self.gateway_url)
        return self

    async def stop(self) -> None:
        """Close every gateway connection and stop serving."""
        self.world.attach(None)
        await self.gateway.close_all()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def api_base(self) -> str:
        """What ``DISCORD_API_BASE`` must be for a bot to use this sandbox."""
        return self.url + API_PREFIX

    @property
    def gateway_url(self) -> str:
        """What ``DISCORD_GATEWAY_URL`` must be for a bot to use this sandbox."""
        return f"ws://{self.host}:{self.port}/gateway"

    def environment(self) -> dict[str, str]:
        """Return the environment variables that point a bot here."""
        return {
            "DISCORD_API_BASE": self.api_base,
            "DISCORD_GATEWAY_URL": self.gateway_url,
            "DISCORD_TOKEN": self.token,
        }

    def token_matches(self, token: object) -> bool:
        """Tell whether ``token`` is this sandbox's bot token, in constant time."""
        return isinstance(token, str) and hmac.compare_digest(token.encode(), self.token.encode())

    # -- request log --------------------------------------------------------------------------------

    def record(self, exchange: RecordedRequest) -> None:
        """Append an exchange to the request log and wake whoever waits on one."""
        self.requests.append(exchange)
        self.changed.notify()

    @property
    def unknown_routes(self) -> list[RecordedRequest]:
        """Requests to routes the sandbox does not implement; a faithful test expects none."""
        return [r for r in self.requests if not r.known]

    async def wait_for_request(
        self,
        method: str,
        path: str,
        predicate: Callable[[RecordedRequest], bool] | None = None,
        *,
        timeout: float = 5.0,
        since: int = 0,
    ) -> RecordedRequest:
        """Wait for a request whose method and path (a regex, searched) match; return the first one.

        ``since`` skips the first ``since`` entries of the log, e.g. ``len(sandbox.requests)`` taken earlier.
        """
        pattern = re.compile(path)

        def found() -> RecordedRequest | None:
            for exchange in self.requests[since:]:
                matches = exchange.method == method and pattern.search(exchange.path)
                if matches and (predicate is None or predicate(exchange)):
                    return exchange
            return None

        result: RecordedRequest = await self.changed.wait_for(found, timeout, f"{method} {path}")
        return result

    # -- sessions -----------------------------------------------------------------------------------

    @property
    def sessions(self) -> list[Session]:
        return list(self.gateway.sessions.values())

    async def wait_until_ready(self, *, shard_id: int = 0, timeout: float = 10.0) -> Session:
        """Wait until a bot has identified (or resumed) on ``shard_id`` and is connected."""
        return await self.gateway.wait_for_session(shard_id=shard_id, timeout=timeout)

    # -- messages -----------------------------------------------------------------------------------

    def store_message(self, message: Message) -> Message:
        """Keep a new message (ephemeral ones only with their interaction) and dispatch MESSAGE_CREATE."""
        if message.ephemeral:
            return message
        self.world.post_message(message)
        self.changed.notify()
        return message

    def update_message(self, message: Message) -> Message:
        """Dispatch MESSAGE_UPDATE for a message just changed."""
        self.world.edit_message(message)
        self.changed.notify()
        return message

    def remove_message(self, message: Message) -> None:
        """Delete a message and dispatch MESSAGE_DELETE."""
        if not message.ephemeral:
            self.world.delete_message(message)
        self.changed.notify()

    def channel(self, channel_id: int) -> Channel:
        """Return a channel by id."""
        return self.world.channel(channel_id)

    def messages_after(self, message_id: int = 0) -> list[Message]:
        """Return the stored messages newer than ``message_id`` in every channel, oldest first."""
        newer = [m for c in self.world.channels() for m in c.messages.values() if m.id > message_id]
        return sorted(newer, key=lambda m: m.id)

    async def send_message(
        self,
        channel: Channel,
        author: Member | User,
        content: str = "",
        *,
        embeds: list[Payload] | None = None,
    ) -> Message:
        """Post a message as ``author`` (a member of the channel's guild, or a user in a DM)."""
        user = author.user if isinstance(author, Member) else author
        guild = self.world.guilds.get(channel.guild_id) if channel.guild_id else None
        if guild is not None and user.id not in guild.members:
            raise SandboxError(f"{user.username} is not a member of {guild.name}")
        message = Message(
            id=self.world.snowflakes.next(), channel_id=channel.id, guild_id=channel.guild_id, author=user
        )
        apply_parts(self.world, guild, message, MessageParts(content=content, embeds=embeds))
        return self.store_message(message)

    # -- interactions -------------------------------------------------------------------------------

    async def invoke_slash(
        self,
        name: str,
        *,
        member: Member | None = None,
        user: User | None = None,
        channel: Channel,
        options: Mapping[str, Any] | None = None,
        locale: str = "en-US",
        enforce_permissions: bool = True,
    ) -> InteractionResult:
        """Invoke ``/name`` (``"xp set"`` for a subcommand) as a member in ``channel``.

        Raises:
            SandboxError: the command is not registered where the user is, the member may not use it
                (``default_member_permissions``; pass ``enforce_permissions=False`` to model a guild
                override), an option is wrong, or no bot is connected to receive it.
        """
        root, *path = name.split()
        guild = self.world.guilds.get(channel.guild_id) if channel.guild_id else None
        if guild is not None:
            if member is None:
                raise SandboxError("a slash command in a guild channel needs member=")
            user = member.user
        elif user is None:
            raise SandboxError("a slash command in a DM needs user=")
        command = self.commands.find(guild.id if guild else None, root)
        if command is None:
            raise SandboxError(f"/{root} is not registered with the sandbox: the bot has not synced it here")
        if guild is not None and member is not None and enforce_permissions:
            required = command.get("default_member_permissions")
            granted = guild.permissions_in(member, channel)
            if required is not None and int(required) & granted != int(required):
                raise SandboxError(f"{user.username} may not use /{root}: it needs permissions {required}")
        interaction, payload = build_invocation(
            self.world,
            command,
            path,
            user=user,
            member=member,
            channel=channel,
            guild=guild,
            options=options or {},
            locale=locale,
        )
        shard_sessions = [s for s in self.sessions if s.accepts(guild.id if guild else None, None)]
        if not shard_sessions:
            raise SandboxError(f"no bot is connected for shard of guild {guild.id if guild else 'DM'}")
        self.interactions[interaction.id] = interaction
        self.interactions_by_token[interaction.token] = interaction
        self.gateway.dispatch("INTERACTION_CREATE", payload, guild.id if guild else None, None)
        return InteractionResult(interaction)

    def interaction_changed(self, interaction: Interaction) -> None:
        """Wake whoever waits on this interaction or on the sandbox."""
        interaction.signal.notify()
        self.changed.notify()
