"""The gateway protocol's vocabulary: Discord's opcodes and close codes, shared by every gateway module."""

from __future__ import annotations

import logging

__all__ = ["CloseCode", "Opcode"]

log = logging.getLogger(__name__)


class Opcode:
    """Gateway opcodes."""

    DISPATCH = 0
    HEARTBEAT = 1
    IDENTIFY = 2
    PRESENCE_UPDATE = 3
    VOICE_STATE_UPDATE = 4
    RESUME = 6
    RECONNECT = 7
    REQUEST_GUILD_MEMBERS = 8
    INVALID_SESSION = 9
    HELLO = 10
    HEARTBEAT_ACK = 11


class CloseCode:
    """Gateway close codes and the reasons Discord gives with them."""

    UNKNOWN_ERROR = 4000
    UNKNOWN_OPCODE = 4001
    DECODE_ERROR = 4002
    NOT_AUTHENTICATED = 4003
    AUTHENTICATION_FAILED = 4004
    ALREADY_AUTHENTICATED = 4005
    INVALID_SEQ = 4007
    RATE_LIMITED = 4008
    SESSION_TIMED_OUT = 4009
    INVALID_SHARD = 4010
    SHARDING_REQUIRED = 4011
    INVALID_API_VERSION = 4012
    INVALID_INTENTS = 4013
    DISALLOWED_INTENTS = 4014

    REASONS = {
        4000: "Unknown error.",
        4001: "Unknown opcode.",
        4002: "Decode error.",
        4003: "Not authenticated.",
        4004: "Authentication failed.",
        4005: "Already authenticated.",
        4007: "Invalid seq.",
        4008: "Rate limited.",
        4009: "Session timed out.",
        4010: "Invalid shard.",
        4011: "Sharding required.",
        4012: "Invalid API version.",
        4013: "Invalid intent(s).",
        4014: "Disallowed intent(s).",
    }

    #: Codes after which Discord will not let the session resume.
    END_SESSION = frozenset({4007, 4009})
