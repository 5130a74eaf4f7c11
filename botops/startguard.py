"""Crash-loop protection for the bot's start: back off after failed starts, keep session starts in reserve.

Discord resets a bot's token after 1000 session starts (IDENTIFYs) in 24 hours, and a supervisor that
restarts a crashing bot every few seconds spends them in about an hour. So :func:`start_guarded`, which
starts the bot as ``bot.start(token)`` does (``login``, then ``connect``), first:

* reads ``STATE_DIR/starts.json`` (mode 0600; only the process holding ``STATE_DIR/bot.lock`` writes it),
  the starts of the last 24 hours and how each ended, and logs how many IDENTIFYs they took;
* if the latest starts failed, ``n`` in a row, waits ``min(2**n, 300)`` seconds before logging in, whatever
  the supervisor's restart delay. A start fails when it ends in an error, or when its process dies, before
  it has been ready for :data:`HEALTHY_AFTER` seconds; a start that got that far (or that reached READY and
  was stopped cleanly) is good and ends the streak. Stopped before READY, or refused below the reserve,
  it counts neither way;
* after logging in, asks Discord (``GET /gateway/bot``) how many session starts it still allows, and
  refuses to IDENTIFY when starting its shards would leave fewer than ``SESSION_START_RESERVE``: it raises
  :class:`~botops.errors.SessionStartReserveReached`, which ``botops run`` turns into exit code 75, on
  which the supervisor configurations in ``deploy/`` do not restart.

The check costs one REST request per start (discord.py asks for the same route again when it picks the
shard count itself); REST requests are not session starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

from botops.errors import SessionStartReserveReached

if TYPE_CHECKING:
    from discord.ext import commands

__all__ = [
    "HEALTHY_AFTER",
    "MAX_BACKOFF",
    "STARTS_NAME",
    "WINDOW",
    "Outcome",
    "StartLog",
    "StartRecord",
    "backoff_seconds",
    "check_session_starts",
    "failed_in_a_row",
    "start_guarded",
]

log = logging.getLogger(__name__)

STARTS_NAME = "starts.json"
#: Seconds a start must have been ready, its process running, to count as good.
HEALTHY_AFTER = 60.0
#: The longest wait before a start, in seconds, however many starts failed before it.
MAX_BACKOFF = 300.0
#: Discord's window for session starts; older starts are forgotten.
WINDOW = timedelta(hours=24)
#: The most starts kept; at the longest back-off a crash loop makes about 290 a day.
MAX_RECORDS = 2000
#: Seconds between looks at whether the bot was closed (a SIGTERM) while it backs off.
_CLOSE_POLL = 0.1
#: Seconds between saves of a good run's IDENTIFY count, which grows when a session cannot be resumed.
_SAVE_INTERVAL = 60.0

#: ``starting`` until it is known; a ``starting`` start of a process that is gone has failed.
Outcome = Literal["starting", "good", "failed", "stopped", "refused"]
_OUTCOMES: frozenset[str] = frozenset(get_args(Outcome))


@dataclass
class StartRecord:
    """One start of the bot: when, how it ended, and how many IDENTIFYs (session starts) it took."""

    started_at: datetime
    outcome: Outcome = "starting"
    identifies: int = 0

    def to_json(self) -> dict[str, Any]:
        """Return the record as ``starts.json`` holds it."""
        return {
            "started_at": self.started_at.astimezone(UTC).isoformat(),
            "outcome": self.outcome,
            "identifies": self.identifies,
        }

    @classmethod
    def from_json(cls, data: Any) -> StartRecord:
        """Read a record of ``starts.json``.

        Raises:
            ValueError: ``data`` is not a record as :meth:`to_json` writes it.
        """
        if not isinstance(data, dict):
            raise ValueError(f"a start must be an object, not {type(data).__name__}")
        started_at = datetime.fromisoformat(str(data.get("started_at")))
        if started_at.tzinfo is None:
            raise ValueError("a start's time must carry its time zone")
        outcome, identifies = data.get("outcome"), data.get("identifies")
        if outcome not in _OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        if not isinstance(identifies, int) or isinstance(identifies, bool) or identifies < 0:
            raise ValueError(f"identifies must be a count, not {identifies!r}")
        return cls(started_at, outcome, identifies)


def failed_in_a_row(records: list[StartRecord]) -> int:
    """Return how many of the latest starts failed since the last good one (stopped and refused skipped)."""
    failures = 0
    for record in reversed(records):
        if record.outcome == "good":
            break
        if record.outcome in ("failed", "starting"):
            failures += 1
    return failures


def backoff_seconds(failures: int) -> float:
    """Return how long to wait before a start that follows ``failures`` failed starts: 0, 2, 4, ... 300."""
    if failures <= 0:
        return 0.0
    return min(2.0 ** min(failures, 16), MAX_BACKOFF)


class StartLog:
    """``STATE_DIR/starts.json``: the starts of the last 24 hours, oldest first.

    A damaged or unreadable file is logged and started afresh: it protects against crash loops, and
    must never be what keeps the bot from starting. A failed write is logged the same way.
    """

    def __init__(self, state_dir: Path, *, now: datetime | None = None) -> None:
        self.path = state_dir / STARTS_NAME
        self.records = [r for r in self._read() if r.started_at >= (now or _now()) - WINDOW]
        for record in self.records:
            if record.outcome == "starting":
                record.outcome = "failed"  # its process died: this one holds STATE_DIR's lock now

    def _read(self) -> list[StartRecord]:
        try:
            document: Any = json.loads(self.path.read_text(encoding="utf-8"))
            starts = document.get("starts") if isinstance(document, dict) else None
            if not isinstance(starts, list):
                raise ValueError("it holds no list of starts")
            return sorted((StartRecord.from_json(s) for s in starts), key=lambda r: r.started_at)
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as error:
            log.warning("%s cannot be read (%s): counting starts afresh", self.path, error)
            return []

    def identifies_since(self, since: datetime) -> int:
        """Return the IDENTIFYs of the starts since ``since``."""
        return sum(r.identifies for r in self.records if r.started_at >= since)

    def begin(self, now: datetime | None = None) -> StartRecord:
        """Record a start that has not ended yet, and save."""
        record = StartRecord(now or _now())
        self.records.append(record)
        self.save()
        return record

    def save(self, now: datetime | None = None) -> None:
        """Write the starts of the last 24 hours to the file (mode 0600, atomically); log a failure."""
        since = (now or _now()) - WINDOW
        self.records = [r for r in self.records if r.started_at >= since][-MAX_RECORDS:]
        document = {"starts": [r.to_json() for r in self.records]}
        temporary = self.path.with_name(f".{STARTS_NAME}.{os.getpid()}.tmp")
        try:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
                json.dump(document, handle, indent=1)
            os.replace(temporary, self.path)
        except OSError as error:
            log.warning(
                "cannot write %s (%s): the next start cannot tell how this one ended", self.path, error
            )


async def start_guarded(
    bot: commands.AutoShardedBot,
    token: str,
    *,
    state_dir: Path,
    reserve: int,
    healthy_after: float = HEALTHY_AFTER,
) -> None:
    """Log in and connect ``bot`` as ``bot.start(token)`` does, after backing off and checking the reserve.

    Returns without logging in if the bot is closed while it backs off.

    Raises:
        SessionStartReserveReached: starting the bot's shards would leave Discord fewer than ``reserve``
            session starts before its reset; nothing was sent to the gateway.
        discord.LoginFailure: and whatever else ``bot.start`` raises.
    """
    starts = StartLog(state_dir)
    failures = failed_in_a_row(starts.records)
    identifies = starts.identifies_since(_now() - WINDOW)
    log.info(
        "%d %s in the last 24 h; %d failed %s in a row before this one",
        identifies,
        "identify" if identifies == 1 else "identifies",
        failures,
        "start" if failures == 1 else "starts",
    )
    delay = backoff_seconds(failures)
    if delay:
        log.warning(
            "backing off %d s after %d failed %s", delay, failures, "start" if failures == 1 else "starts"
        )
        if not await _sleep_unless_closed(bot, delay):
            log.info("the bot was closed while backing off, before it logged in")
            return
    await _GuardedRun(bot, starts, starts.begin(), healthy_after).start(token, reserve)


class _GuardedRun:
    """One start: its record, its IDENTIFYs as the bot sees them (READYs), and when it became ready."""

    def __init__(
        self, bot: commands.AutoShardedBot, starts: StartLog, record: StartRecord, healthy_after: float
    ) -> None:
        self.bot = bot
        self.starts = starts
        self.record = record
        self.healthy_after = healthy_after
        self.readies = 0
        self.ready = False

    async def _count_ready(self, shard_id: int) -> None:
        self.readies += 1  # a READY is a session that an IDENTIFY started

    async def start(self, token: str, reserve: int) -> None:
        bot, record = self.bot, self.record
        bot.add_listener(self._count_ready, "on_shard_connect")
        try:
            await bot.login(token)
            record.identifies = await check_session_starts(bot, reserve)
            self.starts.save()
            watcher = asyncio.create_task(self._watch(), name="botops-start-watch")
            try:
                await bot.connect()
            finally:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
        except SessionStartReserveReached:
            record.outcome = "refused"
            raise
        except Exception:
            if record.outcome == "starting":
                record.outcome = "failed"
            raise
        except BaseException:  # cancelled or interrupted: stopped, not crashed
            self._ended_cleanly()
            raise
        else:
            self._ended_cleanly()
        finally:
            bot.remove_listener(self._count_ready, "on_shard_connect")
            record.identifies = max(record.identifies, self.readies)
            self.starts.save()

    def _ended_cleanly(self) -> None:
        if self.record.outcome == "starting":
            self.record.outcome = "good" if self.ready else "stopped"

    async def _watch(self) -> None:
        """Mark the start good once the bot has been ready for ``healthy_after`` s; then keep its count."""
        await self.bot.wait_until_ready()
        self.ready = True
        await asyncio.sleep(self.healthy_after)
        self.record.outcome = "good"
        self.record.identifies = max(self.record.identifies, self.readies)
        self.starts.save()
        log.info("the start counts as good: the bot has been ready for %g s", self.healthy_after)
        while True:
            await asyncio.sleep(_SAVE_INTERVAL)
            if self.readies > self.record.identifies:
                self.record.identifies = self.readies
                self.starts.save()


async def check_session_starts(bot: commands.AutoShardedBot, reserve: int) -> int:
    """Return how many shards the logged-in ``bot`` will start, if Discord allows that and ``reserve`` more.

    Raises:
        SessionStartReserveReached: Discord allows fewer session starts than the shards plus ``reserve``.
        discord.GatewayNotFound: Discord did not answer ``GET /gateway/bot``.
    """
    recommended, _, limit = await bot.http.get_bot_gateway()
    # SHARD_IDS, else all of SHARD_COUNT; without either, discord.py takes Discord's recommendation.
    shards = len(bot.shard_ids) if bot.shard_ids else (bot.shard_count or recommended)
    remaining = limit["remaining"]
    reset_at = _now() + timedelta(milliseconds=limit["reset_after"])
    log.info(
        "Discord allows %d more session starts (of %d) until %s; this start takes %d, the reserve is %d",
        remaining,
        limit["total"],
        f"{reset_at:%Y-%m-%d %H:%M:%S} UTC",
        shards,
        reserve,
    )
    if remaining - shards < reserve:
        raise SessionStartReserveReached(remaining, reset_at, reserve, shards)
    return shards


async def _sleep_unless_closed(bot: commands.AutoShardedBot, seconds: float) -> bool:
    """Sleep ``seconds``; return ``False`` as soon as the bot is closed (a SIGTERM), ``True`` otherwise."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    # discord.py offers nothing to await for a close; the signal handler only calls bot.close().
    while not bot.is_closed():
        left = deadline - loop.time()
        if left <= 0:
            return True
        await asyncio.sleep(min(left, _CLOSE_POLL))
    return False


def _now() -> datetime:
    return datetime.now(UTC)
