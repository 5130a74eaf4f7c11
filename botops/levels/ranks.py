"""An in-memory rank index of one guild: a member's rank and a leaderboard page in O(log n), not a COUNT(*).

``SELECT 1 + COUNT(*) FROM member_xp WHERE guild_id = ? AND xp > ?`` walks every index entry above the
member: about 20 ms for a typical member of a guild of 1,000,000, more near the bottom.
:class:`GuildRanks` keeps the guild's members in the leaderboard's order (XP descending, then user id
ascending) in a :class:`sortedcontainers.SortedList`, whose positional index answers "how many members
come before this one" by a bisection.

The index is the source of truth for an active guild's current XP: it is loaded from the database on
first use and updated on every award at once, while the batched writer persists the same deltas, so
once the writer has flushed, the index and the database agree exactly (a property test holds them to
it). It is not thread-safe: once in use, touch it from the event loop only. Building one for a large
guild takes about a second of pure Python per 1,000,000 members, so build it off the loop
(``await asyncio.to_thread(GuildRanks, rows)``) before putting it in use.

Memory: each member costs one Python ``int`` key in the sorted list, ``(-xp << 64) | user_id``, which
sorts by XP descending and then by user id ascending, and one entry in a dict from user id to that same
key object, from which the XP is decoded. No tuple, no second XP object: about 160 bytes a member, so
a guild of 1,000,000 members holds about 160 MB (see ``bench/README.md``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from sortedcontainers import SortedList

__all__ = ["USER_ID_LIMIT", "GuildRanks"]

_USER_ID_BITS = 64
_USER_ID_MASK = (1 << _USER_ID_BITS) - 1
#: User ids are Discord snowflakes, unsigned 64-bit; one at or above this would corrupt the key order.
USER_ID_LIMIT = 1 << _USER_ID_BITS


class _SortedInts(Protocol):
    """The part of ``SortedList`` this module uses (sortedcontainers ships no type hints)."""

    def __len__(self) -> int: ...
    def add(self, value: int, /) -> None: ...
    def remove(self, value: int, /) -> None: ...
    def bisect_left(self, value: int, /) -> int: ...
    def islice(self, start: int | None = None, stop: int | None = None, /) -> Iterator[int]: ...


class GuildRanks:
    """The members of one guild ordered by XP descending, then user id ascending, with ranks by position.

    A member's rank is one more than the number of members with strictly more XP, so members with the
    same XP share a rank; the database's ``1 + COUNT(*) WHERE xp > mine`` is the reference. Every
    operation is O(log n).
    """

    __slots__ = ("_keys", "_sorted")

    _keys: dict[int, int]  # user id -> the very key object held in _sorted
    _sorted: _SortedInts

    def __init__(self, rows: Iterable[tuple[int, int]] = ()) -> None:
        """Index ``rows`` of ``(user_id, xp)`` (none by default); see :meth:`load`.

        Raises:
            ValueError: a user id is negative or does not fit in 64 bits.
        """
        self.load(rows)

    def __len__(self) -> int:
        return len(self._keys)

    def load(self, rows: Iterable[tuple[int, int]]) -> None:
        """Replace the whole index with ``rows`` of ``(user_id, xp)``; a repeated user id keeps its last XP.

        Raises:
            ValueError: a user id is negative or does not fit in 64 bits; the index is left as it was.
        """
        keys = {user_id: _key(user_id, xp) for user_id, xp in rows}
        # SortedList sorts the whole batch once: far faster than a million single inserts.
        self._sorted = SortedList(keys.values())
        self._keys = keys

    def xp_of(self, user_id: int) -> int | None:
        """Return a member's XP, or ``None`` when the guild has no XP row for them."""
        key = self._keys.get(user_id)
        return None if key is None else _xp_of(key)

    def apply(self, user_id: int, delta: int) -> int:
        """Add ``delta`` to a member's XP (a member not indexed yet starts at 0) and return the new XP.

        This mirrors the writer's upsert, ``xp = member_xp.xp + excluded.xp``, including a delta of 0,
        which adds a member with 0 XP as the database's insert does.

        Raises:
            ValueError: ``user_id`` is negative or does not fit in 64 bits.
        """
        old = self._keys.get(user_id)
        xp = delta if old is None else _xp_of(old) + delta
        self._put(user_id, old, xp)
        return xp

    def set(self, user_id: int, xp: int) -> None:
        """Set a member's XP, adding the member when it is not indexed yet.

        Raises:
            ValueError: ``user_id`` is negative or does not fit in 64 bits.
        """
        self._put(user_id, self._keys.get(user_id), xp)

    def remove(self, user_id: int) -> bool:
        """Drop a member from the index; return whether it was there."""
        key = self._keys.pop(user_id, None)
        if key is None:
            return False
        self._sorted.remove(key)
        return True

    def rank_of(self, user_id: int) -> int | None:
        """Return 1 + the number of members with strictly more XP, or ``None`` for a member not indexed."""
        key = self._keys.get(user_id)
        if key is None:
            return None
        # The smallest key any member with this XP can have is the one with user id 0; every key
        # before it belongs to a member with more XP.
        return 1 + self._sorted.bisect_left(key & ~_USER_ID_MASK)

    def page(self, offset: int, limit: int) -> list[tuple[int, int]]:
        """Return up to ``limit`` ``(user_id, xp)`` pairs from position ``offset`` (0 = the top member).

        The order is ``ORDER BY xp DESC, user_id ASC``.

        Raises:
            ValueError: ``offset`` or ``limit`` is negative.
        """
        if offset < 0 or limit < 0:
            raise ValueError(f"offset and limit must not be negative, got offset={offset}, limit={limit}")
        return [(key & _USER_ID_MASK, _xp_of(key)) for key in self._sorted.islice(offset, offset + limit)]

    def _put(self, user_id: int, old: int | None, xp: int) -> None:
        key = _key(user_id, xp)
        if key == old:
            return
        if old is not None:
            self._sorted.remove(old)
        self._sorted.add(key)
        self._keys[user_id] = key


def _key(user_id: int, xp: int) -> int:
    """Encode a member as one int that sorts by XP descending, then user id ascending."""
    if not 0 <= user_id < USER_ID_LIMIT:
        raise ValueError(f"user id {user_id} is not an unsigned 64-bit snowflake")
    # (-xp << 64) | user_id == -xp * 2**64 + user_id for any integer xp, also a negative one.
    return (-xp << _USER_ID_BITS) | user_id


def _xp_of(key: int) -> int:
    # The shift floors, so it recovers -xp exactly whatever the user id in the low bits.
    return -(key >> _USER_ID_BITS)
