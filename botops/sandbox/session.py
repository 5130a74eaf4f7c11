"""Gateway sessions: what IDENTIFY creates, with numbered events, a RESUME replay buffer and its shard.

A :class:`Session` outlives its connection: RESUME reattaches it to a new one and replays what the
client missed.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from botops.sandbox.entities import Payload

if TYPE_CHECKING:
    from botops.sandbox.transport import Connection

__all__ = ["Session", "shard_of"]

log = logging.getLogger(__name__)


def shard_of(guild_id: int | None, shard_count: int) -> int:
    """Return the shard that receives a guild's events; DMs go to shard 0."""
    if guild_id is None:
        return 0
    return (guild_id >> 22) % shard_count


@dataclass(eq=False)
class Session:
    """What IDENTIFY created: numbered events, a replay buffer, and the connection it is on now."""

    id: str
    intents: int
    shard: tuple[int, int]
    seq: int = 0
    connection: Connection | None = None
    resumable: bool = True
    disconnected_at: float | None = None
    identifies: int = 1
    resumes: int = 0
    buffer: deque[tuple[int, str]] = field(default_factory=lambda: deque(maxlen=10_000))
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    presence: Payload | None = None

    @property
    def shard_id(self) -> int:
        return self.shard[0]

    def accepts(self, guild_id: int | None, intent: int | None) -> bool:
        """Tell whether an event for ``guild_id`` needing ``intent`` is for this session."""
        if intent and not self.intents & intent:
            return False
        return shard_of(guild_id, self.shard[1]) == self.shard[0]

    def push(self, event: str, data_json: str) -> None:
        """Number an event, keep it for replay and send it if connected."""
        self.seq += 1
        frame = f'{{"op":0,"s":{self.seq},"t":"{event}","d":{data_json}}}'
        self.buffer.append((self.seq, frame))
        if self.connection is not None:
            self.connection.send(frame)

    def replay_after(self, seq: int) -> list[str] | None:
        """Return the frames after ``seq``, or ``None`` if some of them are no longer kept."""
        if seq > self.seq:
            return None
        if self.buffer and seq < self.buffer[0][0] - 1:
            return None
        return [frame for number, frame in self.buffer if number > seq]
