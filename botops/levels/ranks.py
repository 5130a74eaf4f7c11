"""An in-memory rank index of one guild: a member's rank and a leaderboard page in O(log n), not a COUNT(*).

``SELECT 1 + COUNT(*) FROM member_xp WHERE guild_id = ? AND xp > ?`` walks every index entry above the
member: about 20 ms for a typical member of a guild of 1,000,000, more near the bottom.
:class:`GuildRanks` keeps the guild's members in the leaderboard's order (XP descending, then user id
ascending) in a :class:`sortedcontainers.SortedList`, whose positional index answers "how many members
come before this one" by a bisection.

The index is the source of truth for an active guild's current XP: it is loaded from the database on
first use and updated on every award at once, while the batched writer persists the same deltas, so
once the writer has flushed, the index and the database agree exactly (a property test holds them to
it). An award runs once per message, a rank or a page once per command: so an award only updates the
member's XP (a dict entry, O(1)) and notes the member as moved, and the next rank or page first puts
the moved members in their new places, each O(log n), a member who moved many times once.

It is not thread-safe: once in use, touch it from the event loop only. Building one for a large guild
takes about a second of pure Python per 1,000,000 members, so build it off the loop
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
    same XP share a rank; the database's ``1 + COUNT(*) WHERE xp > mine`` is the reference. A change
    (``apply``, ``set``, ``remove``) is O(1) amortized; members it moves are put in place in batches of
    at most ``_SETTLE_AFTER``, by the change that fills the batch or by the next ``rank_of`` or ``page``.
    """

    __slots__ = ("_keys", "_moved", "_sorted")

    _keys: dict[int, int]  # user id -> the member's current key; _sorted holds the same object once settled
    _sorted: _SortedInts
    #: Members changed since _sorted was last settled: user id -> the key _sorted holds for them (None:
    #: none). Settling removes that key and adds the current one.
    _moved: dict[int, int | None]

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
        self._moved = {}

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
        keys = self._keys
        old = keys.get(user_id)
        xp = delta if old is None else -(old >> _USER_ID_BITS) + delta
        key = _key(user_id, xp)
        # Inlined _note_moved: this runs once per message.
        moved = self._moved
        if user_id not in moved:
            moved[user_id] = old
            if len(moved) >= _SETTLE_AFTER:
                # Bounded: a /rank after a long quiet spell of reads never settles more than this many.
                keys[user_id] = key
                self._settle()
                return xp
        keys[user_id] = key
        return xp

    def set(self, user_id: int, xp: int) -> None:
        """Set a member's XP, adding the member when it is not indexed yet.

        Raises:
            ValueError: ``user_id`` is negative or does not fit in 64 bits.
        """
        key = _key(user_id, xp)
        self._note_moved(user_id)
        self._keys[user_id] = key

    def remove(self, user_id: int) -> bool:
        """Drop a member from the index; return whether it was there."""
        if user_id not in self._keys:
            return False
        self._note_moved(user_id)
        del self._keys[user_id]
        return True

    def rank_of(self, user_id: int) -> int | None:
        """Return 1 + the number of members with strictly more XP, or ``None`` for a member not indexed."""
        key = self._keys.get(user_id)
        if key is None:
            return None
        self._settle()
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
        self._settle()
        return [(key & _USER_ID_MASK, _xp_of(key)) for key in self._sorted.islice(offset, offset + limit)]

    def _note_moved(self, user_id: int) -> None:
        """Remember where ``_sorted`` has a member, before the member's key changes (the first time only)."""
        if user_id not in self._moved:
            self._moved[user_id] = self._keys.get(user_id)

    def _settle(self) -> None:
        """Put every member that moved since the last settle in its place in ``_sorted``."""
        moved = self._moved
        if not moved:
            return
        keys = self._keys
        if len(moved) > len(keys) // _REBUILD_SHARE:
            # Most of a small guild moved (a busy channel): one sort beats as many removes and adds.
            self._sorted = SortedList(keys.values())
        else:
            ordered = self._sorted
            for user_id, held in moved.items():
                current = keys.get(user_id)
                if current == held:
                    if held is not None:
                        keys[user_id] = held  # the same object in both again: one int a member
                    continue
                if held is not None:
                    ordered.remove(held)
                if current is not None:
                    ordered.add(current)
        moved.clear()


#: Members that may wait unsettled: settling them costs about 9 µs each in a guild of a million, so a
#: read never pays more than about 0.6 ms for what awards deferred, and repeated awards to one member
#: between two settles cost one move.
_SETTLE_AFTER = 64
#: Settling rebuilds the sorted list instead of moving members one by one once more than one member in
#: this many moved.
_REBUILD_SHARE = 8


def _key(user_id: int, xp: int) -> int:
    """Encode a member as one int that sorts by XP descending, then user id ascending."""
    if not 0 <= user_id < USER_ID_LIMIT:
        raise ValueError(f"user id {user_id} is not an unsigned 64-bit snowflake")
    # (-xp << 64) | user_id == -xp * 2**64 + user_id for any integer xp, also a negative one.
    return (-xp << _USER_ID_BITS) | user_id


def _xp_of(key: int) -> int:
    # The shift floors, so it recovers -xp exactly whatever the user id in the low bits.
    return -(key >> _USER_ID_BITS)
