"""The MEE6 level curve: how much XP a level costs, which level an XP total reaches, and the way to the next.

Going from level ``n`` to ``n + 1`` costs ``5n² + 50n + 100`` XP, the curve MEE6 made familiar:
level 1 at 100 XP, 2 at 255, 3 at 475, 4 at 770, 5 at 1150. Everything here is pure arithmetic on
Python integers, exact for any XP total a ``BIGINT`` column can hold (and beyond).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

__all__ = ["Progress", "level_for", "progress", "total_xp_for", "xp_to_next"]

# Up to this size a float's cube root lands within a few levels of the answer (a BIGINT has 63 bits);
# past it the float's rounding error alone would span many levels, and level_for bisects instead.
_FLOAT_SAFE_BITS = 128


@dataclass(frozen=True, slots=True)
class Progress:
    """Where an XP total stands: its level, the XP earned inside that level, and what the level costs."""

    level: int
    xp_into_level: int
    xp_for_next: int

    @property
    def xp_remaining(self) -> int:
        """The XP still missing to reach the next level."""
        return self.xp_for_next - self.xp_into_level


def xp_to_next(level: int) -> int:
    """Return the XP that takes a member from ``level`` to ``level + 1``.

    Raises:
        ValueError: ``level`` is negative.
    """
    _check_not_negative("level", level)
    return 5 * level * level + 50 * level + 100


def total_xp_for(level: int) -> int:
    """Return the total XP at which a member reaches ``level`` (0 for level 0).

    Raises:
        ValueError: ``level`` is negative.
    """
    _check_not_negative("level", level)
    # The sum of xp_to_next(k) for k < level in closed form; (n-1)n(2n-1) is always divisible by 6.
    n = level
    return 5 * (n - 1) * n * (2 * n - 1) // 6 + 25 * n * (n - 1) + 100 * n


def level_for(xp: int) -> int:
    """Return the level an XP total has reached: the highest ``n`` with ``total_xp_for(n) <= xp``.

    Raises:
        ValueError: ``xp`` is negative.
    """
    if 0 <= xp < _TABLE_TOP:
        # The common case, once per award: a bisection in the table of thresholds.
        return bisect_right(_THRESHOLDS, xp) - 1
    _check_not_negative("xp", xp)
    if xp.bit_length() > _FLOAT_SAFE_BITS:
        return _level_by_bisection(xp)
    # total_xp_for(n) is about 5/3·n³ + 22.5n², so the cube root of 3/5·xp overshoots n by about 4.5;
    # the estimate is then corrected by a step or two either way.
    level = max(0, int((0.6 * xp) ** (1 / 3)) - 4)
    while total_xp_for(level) > xp:
        level -= 1
    while total_xp_for(level + 1) <= xp:
        level += 1
    return level


def progress(xp: int) -> Progress:
    """Return the level of an XP total, the XP earned inside that level, and the XP the level costs.

    Raises:
        ValueError: ``xp`` is negative.
    """
    level = level_for(xp)
    return Progress(level=level, xp_into_level=xp - total_xp_for(level), xp_for_next=xp_to_next(level))


def _level_by_bisection(xp: int) -> int:
    low, high = 0, 1
    while total_xp_for(high) <= xp:
        low, high = high, high * 2
    # Invariant: total_xp_for(low) <= xp < total_xp_for(high).
    while high - low > 1:
        middle = (low + high) // 2
        if total_xp_for(middle) <= xp:
            low = middle
        else:
            high = middle
    return low


def _check_not_negative(name: str, value: int) -> None:
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")


#: total_xp_for(n) for the levels up to _TABLE_LEVELS (level 1000 takes about 1.7 billion XP, beyond any
#: member's), so level_for can bisect instead of computing.
_TABLE_LEVELS = 1000
_THRESHOLDS: tuple[int, ...] = tuple(total_xp_for(level) for level in range(_TABLE_LEVELS + 1))
_TABLE_TOP = _THRESHOLDS[-1]
