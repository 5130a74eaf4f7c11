"""Levels without I/O: the MEE6 level curve and the in-memory rank index of a guild."""

from __future__ import annotations

from botops.levels.curve import Progress, level_for, progress, total_xp_for, xp_to_next
from botops.levels.ranks import USER_ID_LIMIT, GuildRanks

__all__ = [
    "USER_ID_LIMIT",
    "GuildRanks",
    "Progress",
    "level_for",
    "progress",
    "total_xp_for",
    "xp_to_next",
]
