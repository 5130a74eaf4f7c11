"""The bot's own daily backup at ``BACKUP_TIME``, then pruning; and what the bot knows of the newest backup.

Every day at ``BACKUP_TIME`` (local time, 03:00 unless set, as the handbook's scheduled task) the bot
writes its batched rows, backs up the database (reason ``scheduled``), verifies the new backup and prunes
by ``BACKUP_KEEP_DAILY/WEEKLY/MONTHLY``. A bot that was not running at that time (or has never made a
backup) makes one :data:`CATCH_UP_DELAY` after it starts, as a systemd timer with ``Persistent=true``
does; one started within a quarter of an hour after ``BACKUP_TIME`` (restarted by a deploy, say) makes
that night's backup at once. A failure is logged as an error, which Sentry receives when it is
configured, and counted in ``botops_backup_runs_total{result="failed"}``; the next day's run happens all
the same.

:class:`BackupSchedule` also keeps the newest backup of ``BACKUP_DIR`` in view, whoever made it (the bot,
a systemd timer, a person), rereading the folder every :data:`REFRESH_INTERVAL`: ``/status`` shows it and
the ``botops_backup_last_*`` gauges expose it, so an alert fires when backups stop, however they are made.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from botops.aio import cancel_and_wait
from botops.backup.manifest import Reason
from botops.backup.retention import RetentionPolicy
from botops.backup.store import create_backup, list_backups, prune_backups, verify_backup
from botops.errors import BotopsError

if TYPE_CHECKING:
    from botops.backup.manifest import Manifest
    from botops.bot.core import Bot
    from botops.settings import Settings

__all__ = [
    "CATCH_UP_DELAY",
    "REFRESH_INTERVAL",
    "BackupSchedule",
    "NewestBackup",
    "next_run_after",
    "schedule_backups",
]

log = logging.getLogger(__name__)

#: Seconds after start before a missed daily backup is made up: long enough that a crash loop or a quick
#: restart never piles backups up, short enough that a bot down at 03:00 is covered the same morning.
CATCH_UP_DELAY = 600.0
#: Seconds between two readings of BACKUP_DIR for the newest backup.
REFRESH_INTERVAL = 300.0
#: A bot started this soon after BACKUP_TIME, with no backup since, makes that backup at once.
_JUST_MISSED = datetime.timedelta(minutes=15)
#: A newest backup older than this is a missed daily one.
_STALE_AFTER = datetime.timedelta(hours=25)
#: Longest single sleep while waiting for the next run, so a changed clock or a suspend is noticed.
_MAX_SLEEP = 60.0


@dataclass(frozen=True)
class NewestBackup:
    """The newest backup in BACKUP_DIR, whoever made it."""

    id: str
    created_at: datetime.datetime
    reason: str
    compressed_size: int
    duration_seconds: float | None
    verified: bool

    def age_seconds(self, now: datetime.datetime | None = None) -> float:
        """Return how long ago the backup was made."""
        now = now or datetime.datetime.now(datetime.UTC)
        return max(0.0, (now - self.created_at).total_seconds())


def next_run_after(moment: datetime.datetime, at: datetime.time) -> datetime.datetime:
    """Return the first time after ``moment`` (aware) that the local clock shows ``at``.

    Computed on the local calendar, so a daylight-saving change moves the run with the clock, as a person
    who set "03:00" expects; a time the change skips runs at the same offset, an hour late at most.
    """
    local = moment.astimezone()
    candidate = datetime.datetime.combine(local.date(), at).astimezone()
    while candidate <= moment:
        candidate = datetime.datetime.combine(candidate.date() + datetime.timedelta(days=1), at).astimezone()
    return candidate


class BackupSchedule(Collector):
    """The daily backup loop of one bot, the newest backup it knows, and their metrics."""

    def __init__(self, bot: Bot, settings: Settings) -> None:
        self.bot = bot
        self.settings = settings
        self.backup_dir = settings.backup_dir
        self.policy = RetentionPolicy(
            daily=settings.backup_keep_daily,
            weekly=settings.backup_keep_weekly,
            monthly=settings.backup_keep_monthly,
        )
        self.newest: NewestBackup | None = None
        self.next_run: datetime.datetime | None = None
        self.runs = {"ok": 0, "failed": 0}
        self._lock = asyncio.Lock()  # one backup at a time, scheduled or asked for
        self._tasks: list[asyncio.Task[None]] = []

    # -- life cycle --------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Read the newest backup; run the daily loop (with a BACKUP_TIME) and the folder refresh."""
        await self.refresh()
        self.bot.metrics.registry.register(self)
        self._tasks.append(asyncio.create_task(self._refresh_loop(), name="botops-backup-refresh"))
        if self.settings.backup_time is None:
            log.info("the bot makes no backups (BACKUP_TIME is empty); schedule `botops backup create`")
            return
        self._tasks.append(asyncio.create_task(self._daily_loop(), name="botops-backup-daily"))

    async def stop(self) -> None:
        """Stop the loops; a backup in progress is cancelled and leaves no file behind."""
        await cancel_and_wait(self._tasks)
        self._tasks.clear()
        with contextlib.suppress(KeyError):
            self.bot.metrics.registry.unregister(self)

    # -- work --------------------------------------------------------------------------------------------

    async def back_up(self, reason: Reason = "scheduled") -> Manifest:
        """Flush the writers, back up, verify the backup and prune; return the new backup's manifest.

        Raises:
            BackupError: a step failed; the backup, if made, stays (pruning never removes the newest
                verified backup).
        """
        async with self._lock:
            written = await self.bot.flush_writers()
            manifest = await create_backup(self.settings, reason=reason, backup_dir=self.backup_dir)
            await verify_backup(self.backup_dir, manifest.id)
            plan = await asyncio.to_thread(
                prune_backups, self.backup_dir, self.policy, now=datetime.datetime.now(datetime.UTC)
            )
            log.info(
                "Backup %s made (%s, %d rows flushed first); pruning kept %d and deleted %d",
                manifest.id,
                reason,
                written,
                len(plan.keep),
                len(plan.delete),
            )
        await self.refresh()
        return manifest

    async def refresh(self) -> None:
        """Read BACKUP_DIR again for the newest backup; a folder that cannot be read leaves what was known."""
        try:
            listed = await asyncio.to_thread(list_backups, self.backup_dir)
        except OSError as error:
            log.warning("cannot read the backup folder %s: %s", self.backup_dir, error)
            return
        self.newest = max(
            (
                NewestBackup(
                    id=entry.id,
                    created_at=entry.created_at,
                    reason=manifest.reason,
                    compressed_size=manifest.compressed_size,
                    duration_seconds=manifest.duration_seconds,
                    verified=entry.verified,
                )
                for entry in listed
                if (manifest := entry.manifest) is not None
            ),
            key=lambda newest: (newest.created_at, newest.id),
            default=None,
        )

    async def _daily_loop(self) -> None:
        at = self.settings.backup_time
        if at is None:  # pragma: no cover - start() only runs the loop with a time
            return
        now = datetime.datetime.now(datetime.UTC)
        due = next_run_after(now, at)
        previous = next_run_after(now - datetime.timedelta(days=1), at)  # today's (or last night's) run
        newest = self.newest.created_at if self.newest is not None else None
        if now - previous <= _JUST_MISSED and (newest is None or newest < previous):
            due = now  # started just after BACKUP_TIME (a restart, a deploy): tonight's backup still runs
            log.info(
                "BACKUP_TIME passed %.0f s before the start: backing up now", (now - previous).total_seconds()
            )
        elif newest is None or now - newest > _STALE_AFTER:
            catch_up = now + datetime.timedelta(seconds=CATCH_UP_DELAY)
            if catch_up < due:
                due = catch_up
                log.info("the last daily backup was missed: making one at %s", due.astimezone().isoformat())
        while True:
            self.next_run = due
            await _sleep_until(due)
            await self._run_logged()
            due = next_run_after(datetime.datetime.now(datetime.UTC), at)

    async def _run_logged(self) -> None:
        started = time.monotonic()
        try:
            await self.back_up("scheduled")
        except BotopsError as error:
            self.runs["failed"] += 1
            log.error("The scheduled backup failed: %s", error)
        except Exception:
            self.runs["failed"] += 1
            log.exception("The scheduled backup failed unexpectedly")
        else:
            self.runs["ok"] += 1
            log.info("The scheduled backup took %.1f s", time.monotonic() - started)

    async def _refresh_loop(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_INTERVAL)
            await self.refresh()

    # -- metrics -----------------------------------------------------------------------------------------

    def collect(self) -> Iterator[Metric]:
        runs = CounterMetricFamily(
            "botops_backup_runs", "Backups the bot made on its schedule, by result", labels=["result"]
        )
        for result, count in self.runs.items():
            runs.add_metric([result], count)
        yield runs
        newest = self.newest
        gauges = (
            ("botops_backup_last_success_timestamp_seconds", "When the newest backup in BACKUP_DIR was made",
             newest.created_at.timestamp() if newest else None),
            ("botops_backup_last_size_bytes", "Compressed size of the newest backup",
             newest.compressed_size if newest else None),
            ("botops_backup_last_duration_seconds", "How long the newest backup took to make",
             newest.duration_seconds if newest else None),
            ("botops_backup_last_verified", "1 when the newest backup passed verification",
             (1 if newest.verified else 0) if newest else None),
        )  # fmt: skip
        for name, help_text, value in gauges:
            if value is not None:
                yield GaugeMetricFamily(name, help_text, value=value)


@contextlib.asynccontextmanager
async def schedule_backups(bot: Bot, settings: Settings) -> AsyncIterator[BackupSchedule]:
    """Run the bot's backup schedule for the block and make it ``bot.backups``."""
    schedule = BackupSchedule(bot, settings)
    await schedule.start()
    bot.backups = schedule
    try:
        yield schedule
    finally:
        bot.backups = None
        await schedule.stop()


async def _sleep_until(due: datetime.datetime) -> None:
    # Slept in steps against the wall clock: a monotonic sleep of hours misses a clock change or a suspend.
    while (remaining := (due - datetime.datetime.now(datetime.UTC)).total_seconds()) > 0:  # noqa: ASYNC110
        await asyncio.sleep(min(remaining, _MAX_SLEEP))
