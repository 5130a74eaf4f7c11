"""Which backups ``botops backup prune`` keeps: daily, weekly and monthly retention, worked out without I/O.

:func:`plan_retention` takes the backups there are and a :class:`RetentionPolicy` and says which to keep
and why; it reads no file and deletes nothing, so ``--dry-run`` and the real prune print the same plan.
The rules follow ``restic forget --keep-daily/--keep-weekly/--keep-monthly``:

* **Periods that have backups are counted, not calendar periods.** ``daily=7`` keeps the newest backup
  of each of the 7 newest UTC days that have a backup, however far apart those days are, so a bot that
  stopped backing up for a month does not lose its last backups to the next prune. With one backup a
  day it is exactly the handbook's "last 7 days". ``weekly`` counts ISO weeks (Monday to Sunday),
  ``monthly`` calendar months, in the same way.
* **The rules overlap**, as in restic (not in borg, which skips periods an earlier rule kept): each rule
  looks at every backup, so the newest backup is usually the pick of its day, week and month at once,
  and lists all three reasons. At most ``daily + weekly + monthly`` backups are kept by the rules.
* **Periods are UTC.** A backup's day, week and month are those of its ``created_at`` in UTC, so the
  plan does not depend on the machine's zone and does not move at a daylight-saving change. A nightly
  ``BACKUP_TIME`` of 03:00 local is one UTC day per night everywhere; only where a daylight-saving
  change carries 03:00 local across UTC midnight (zones around UTC+3) do two nights share a UTC day
  once, and that day keeps the later of the two.
* **Only verified backups are picked by the rules**, so a backup whose check failed (or never ran)
  never takes the place of a verified one of its day, week or month.
* **The newest verified backup is always kept** (reason :data:`NEWEST_VERIFIED`). Every rule that keeps
  anything picks it anyway; the reason makes the guarantee visible and independent of the policy.
* **An unverified backup is kept while it is newer than the newest verified one** (reason
  :data:`NEWER_THAN_VERIFIED`): it may still be checked, and it may hold the latest data there is.
  Once a newer backup has verified, an unverified one goes like any backup no rule picked. With no
  verified backup at all, nothing is deleted. So at most ``daily + weekly + monthly`` verified
  backups are kept (the newest verified is among the rules' picks whenever a count is above 0, which
  :class:`RetentionPolicy` demands), and the only other kept backups are those unverified ones.

``now`` is not where the periods start (they start at the newest backup); it guards against a clock
that was wrong: a backup dated more than :data:`FUTURE_TOLERANCE` after ``now`` would pose as the
newest for as long as the clock lags, so planning refuses with :class:`BackupDatedInFuture`.

The plan is stable: planning again over its ``keep`` deletes nothing, and adding a backup older than
every other never changes the fate of the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Generic, Protocol, TypeVar

from botops.errors import BackupDatedInFuture, InvalidRetentionPolicy

__all__ = [
    "FUTURE_TOLERANCE",
    "NEWER_THAN_VERIFIED",
    "NEWEST_VERIFIED",
    "BackupDatedInFuture",
    "InvalidRetentionPolicy",
    "Retainable",
    "RetentionPlan",
    "RetentionPolicy",
    "plan_retention",
]

log = logging.getLogger(__name__)

NEWEST_VERIFIED = "newest verified"
"""The reason given for the newest verified backup, which no policy deletes."""

NEWER_THAN_VERIFIED = "unverified, newer than the newest verified"
"""The reason given for an unverified backup that is kept because no newer backup has verified yet."""

FUTURE_TOLERANCE = timedelta(minutes=5)
"""How far after ``now`` a backup may be dated: an NTP step backwards, not a clock set wrong."""

_PERIODS: tuple[tuple[str, Callable[[datetime], str]], ...] = (
    ("daily", lambda moment: f"{moment:%Y-%m-%d}"),
    ("weekly", lambda moment: f"{moment.isocalendar().year:04d}-W{moment.isocalendar().week:02d}"),
    ("monthly", lambda moment: f"{moment:%Y-%m}"),
)


class Retainable(Protocol):
    """What retention needs to know of a backup."""

    @property
    def id(self) -> str:
        """The backup's unique id."""

    @property
    def created_at(self) -> datetime:
        """When the backup was made, timezone-aware."""

    @property
    def verified(self) -> bool:
        """Whether the backup passed its last verification."""


BackupT = TypeVar("BackupT", bound=Retainable)


@dataclass(frozen=True)
class RetentionPolicy:
    """How many daily, weekly and monthly backups to keep; the defaults are the issue's 7, 4 and 6.

    Raises:
        InvalidRetentionPolicy: a count is not a whole number of 0 or more, or all three are 0 (which
            would delete every backup but the newest verified one).
    """

    daily: int = 7
    weekly: int = 4
    monthly: int = 6

    def __post_init__(self) -> None:
        for name, count in self.counts():
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise InvalidRetentionPolicy(
                    self.daily, self.weekly, self.monthly, f"{name} must be a whole number of 0 or more"
                )
        if not any(count for _, count in self.counts()):
            raise InvalidRetentionPolicy(
                self.daily,
                self.weekly,
                self.monthly,
                "that would delete every backup but the newest verified one; keep at least 1 daily, "
                "weekly or monthly backup",
            )

    def counts(self) -> tuple[tuple[str, int], ...]:
        """Return each rule's name with its count: daily, weekly, monthly."""
        return (("daily", self.daily), ("weekly", self.weekly), ("monthly", self.monthly))

    def __str__(self) -> str:
        return f"{self.daily} daily, {self.weekly} weekly, {self.monthly} monthly"


@dataclass(frozen=True)
class RetentionPlan(Generic[BackupT]):
    """The outcome of :func:`plan_retention`: every backup is in ``keep`` or ``delete``, newest first.

    ``reasons`` maps the id of each kept backup to why it is kept (``"daily 2026-11-28"``,
    ``"weekly 2026-W48"``, ``"monthly 2026-11"``, :data:`NEWEST_VERIFIED`,
    :data:`NEWER_THAN_VERIFIED`); a deleted backup has no entry.
    """

    keep: tuple[BackupT, ...]
    delete: tuple[BackupT, ...]
    reasons: Mapping[str, tuple[str, ...]]


def plan_retention(
    backups: Iterable[BackupT], policy: RetentionPolicy, *, now: datetime
) -> RetentionPlan[BackupT]:
    """Decide which of ``backups`` ``policy`` keeps and which may be deleted, as the module explains.

    Raises:
        BackupDatedInFuture: a backup is dated more than :data:`FUTURE_TOLERANCE` after ``now``.
        ValueError: ``now`` or a backup's ``created_at`` has no timezone, or two backups share an id
            (a caller's bug, not a user's mistake).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    given = list(backups)
    _check(given)
    ordered = sorted(given, key=lambda backup: (backup.created_at, backup.id), reverse=True)
    if ordered and ordered[0].created_at > now + FUTURE_TOLERANCE:
        raise BackupDatedInFuture(ordered[0].id, ordered[0].created_at, now)

    reasons: dict[str, list[str]] = {}
    verified = [backup for backup in ordered if backup.verified]
    for (name, period_of), (_, count) in zip(_PERIODS, policy.counts(), strict=True):
        periods_kept: set[str] = set()
        for backup in verified:
            if len(periods_kept) == count:
                break
            period = period_of(backup.created_at.astimezone(UTC))
            if period not in periods_kept:
                periods_kept.add(period)
                reasons.setdefault(backup.id, []).append(f"{name} {period}")

    newest_verified = verified[0] if verified else None
    if newest_verified is not None:
        reasons.setdefault(newest_verified.id, []).append(NEWEST_VERIFIED)
    for backup in ordered:
        if backup.verified:
            continue
        if newest_verified is None or (backup.created_at, backup.id) > (
            newest_verified.created_at,
            newest_verified.id,
        ):
            reasons.setdefault(backup.id, []).append(NEWER_THAN_VERIFIED)

    plan = RetentionPlan(
        keep=tuple(backup for backup in ordered if backup.id in reasons),
        delete=tuple(backup for backup in ordered if backup.id not in reasons),
        reasons={backup_id: tuple(why) for backup_id, why in reasons.items()},
    )
    log.debug(
        "retention %s keeps %d of %d backups, deletes %d",
        policy,
        len(plan.keep),
        len(ordered),
        len(plan.delete),
    )
    return plan


def _check(backups: list[BackupT]) -> None:
    """Refuse a caller's bug: a backup time without a timezone, or two backups with one id."""
    ids: set[str] = set()
    for backup in backups:
        if backup.created_at.tzinfo is None:
            raise ValueError(f"backup {backup.id} has a created_at without a timezone")
        if backup.id in ids:
            raise ValueError(f"two backups have the id {backup.id}")
        ids.add(backup.id)
