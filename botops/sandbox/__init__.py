"""The offline Discord: a real HTTP and WebSocket server that speaks Discord's REST and gateway protocol.

Nothing here imports discord.py; payloads are plain dicts, checked against discord.py's own parsers in
the test suite. Start one with ``async with Sandbox() as sandbox:`` or ``botops sandbox``.
"""

from botops.sandbox.demo import DemoWorld, build_demo_world
from botops.sandbox.errors import DiscordError, SandboxError
from botops.sandbox.faults import Faults
from botops.sandbox.gateway import CloseCode, Opcode, Session
from botops.sandbox.interactions import InteractionResponse, InteractionResult
from botops.sandbox.permissions import Intents, Permission
from botops.sandbox.rest import RecordedRequest
from botops.sandbox.server import Sandbox
from botops.sandbox.world import Channel, Guild, Member, Message, Role, User, World

__all__ = [
    "Channel",
    "CloseCode",
    "DemoWorld",
    "DiscordError",
    "Faults",
    "Guild",
    "Intents",
    "InteractionResponse",
    "InteractionResult",
    "Member",
    "Message",
    "Opcode",
    "Permission",
    "RecordedRequest",
    "Role",
    "Sandbox",
    "SandboxError",
    "Session",
    "User",
    "World",
    "build_demo_world",
]
