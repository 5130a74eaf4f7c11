"""Reading the bot's log files back: records parsed from text or JSON lines, filtered, and followed.

A channel's records live in ``LOG_DIR/<channel>.log`` and its rotated copies ``<channel>.log.N`` (``.1``
the newest); :func:`channel_files` lists them oldest first, so records come out in the order they were
written. Each line is recognised on its own, so a file written partly as text and partly as JSON (after
``LOG_FORMAT`` changed) reads fine:

* a JSON object with ``time`` and ``level`` keys is one record (``LOG_FORMAT=json``);
* a line :data:`botops.logs.TEXT_RECORD_RE` matches starts a text record;
* any other line continues the record above it (a traceback, a multi-line message). Lines before the
  first record of a file are not dropped: they form a record of unknown time, level and logger, shown
  when no filter is given and left out by any ``--level`` or ``--since``, which it cannot be shown to
  match. ``logging``'s rotation never splits a record across files, so such lines are foreign text.

:class:`LogFollower` polls the current file for appended records like ``tail -F``: when the file is
renamed away by a rotation (another inode at its path) it reads the old file to its end before opening
the new one, and a file that shrank (truncated in place) is read again from its start. A record is
handed out once the next one starts or the file stayed quiet for one poll, so its traceback lines are
never cut off. Two rotations between two polls skip the middle file, as with ``tail -F``.

Nothing here imports discord.py.
"""

from __future__ import annotations

import functools
import glob
import json
import logging
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import IO, Any

from botops.errors import InvalidLogQuery, LogsUnreadable
from botops.logs import CHANNELS, MAIN_CHANNEL, TEXT_RECORD_RE, channel_of, log_path

__all__ = [
    "LEVELS",
    "SINCE_FORMS",
    "LogEntry",
    "LogFilter",
    "LogFollower",
    "channel_files",
    "parse_duration",
    "parse_level",
    "parse_since",
    "read_entries",
    "render",
]

log = logging.getLogger(__name__)

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
"""The levels ``--level`` accepts, lowest first."""

SINCE_FORMS = (
    "a duration back from now such as 90s, 30m, 1h, 2d or 1h30m, or an ISO-8601 time such as "
    "2024-05-01, 2024-05-01T14:00, 2024-05-01T14:00:00+02:00 or 14:00 (today, local time)"
)
"""What ``--since`` accepts, as the error message tells it."""

_DURATION_RE = re.compile(
    r"(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?", re.ASCII | re.I
)
_UNIT_SECONDS = {"d": 86400, "h": 3600, "m": 60, "s": 1}
_BEGINNING = datetime.min.replace(tzinfo=UTC)  # "since" that far back keeps every record
_LEVEL_NUMBERS = logging.getLevelNamesMapping()
_channel_of = functools.lru_cache(maxsize=1024)(channel_of)  # a file names the same loggers over and over


@dataclass(frozen=True)
class LogEntry:
    """One record read from a log file, with the lines it was written as.

    ``time``, ``level`` and ``logger`` are None for lines that precede every record of a file.
    ``message`` is the first line's message; a text record's traceback is only in ``lines``, a JSON
    record's in ``exc_info`` and ``stack_info``.
    """

    time: datetime | None
    level: str | None
    logger: str | None
    channel: str
    message: str
    lines: tuple[str, ...]
    exc_info: str | None = None
    stack_info: str | None = None
    is_json: bool = False

    @property
    def level_number(self) -> int | None:
        """Return the level as ``logging`` numbers it, or None for a level ``logging`` does not know."""
        return _LEVEL_NUMBERS.get(self.level) if self.level is not None else None


@dataclass(frozen=True)
class LogFilter:
    """Which records to show: at least ``min_level`` (a ``logging`` number), written at or after ``since``."""

    min_level: int | None = None
    since: datetime | None = None

    def matches(self, entry: LogEntry) -> bool:
        """Return whether ``entry`` passes; a record of unknown level or time fails any filter on it."""
        if self.min_level is not None:
            number = entry.level_number
            if number is None or number < self.min_level:
                return False
        return self.since is None or (entry.time is not None and entry.time >= self.since)


def parse_level(text: str) -> int:
    """Return the ``logging`` number of a level name given in any case (``warning``, ``ERROR``).

    Raises:
        InvalidLogQuery: ``text`` names no level.
    """
    name = text.strip().upper()
    if name not in LEVELS:
        raise InvalidLogQuery("--level", text, "one of " + ", ".join(LEVELS))
    return _LEVEL_NUMBERS[name]


def parse_duration(text: str) -> timedelta:
    """Return the span a duration such as ``90s``, ``30m``, ``1h``, ``2d`` or ``1h30m`` stands for.

    Units come largest first, each at most once; a bare number has no unit and is refused.

    Raises:
        InvalidLogQuery: ``text`` is no such duration, or one too long for a ``timedelta``.
    """
    match = _DURATION_RE.fullmatch(text.strip())
    if match is None or not any(match.groupdict().values()):
        raise InvalidLogQuery("--since", text, SINCE_FORMS)
    seconds = sum(int(count) * _UNIT_SECONDS[unit] for unit, count in match.groupdict().items() if count)
    try:
        return timedelta(seconds=seconds)
    except OverflowError as error:
        raise InvalidLogQuery("--since", text, SINCE_FORMS) from error


def parse_since(text: str, now: datetime) -> datetime:
    """Return the aware time a ``--since`` value means: ``now`` minus a duration, or an ISO-8601 time.

    A time without an offset is local time; a time of day alone (``14:00``) is today's. A point before
    the calendar starts means "everything".

    Raises:
        InvalidLogQuery: ``text`` is neither a duration nor an ISO-8601 date or time.
    """
    text = text.strip()
    if text and _DURATION_RE.fullmatch(text):
        try:
            return now - parse_duration(text)
        except (InvalidLogQuery, OverflowError):
            return _BEGINNING  # more days than the calendar holds: everything
    try:
        moment = _iso_moment(text, now)
    except ValueError as error:
        raise InvalidLogQuery("--since", text, SINCE_FORMS) from error
    try:
        return moment if moment.tzinfo is not None else moment.astimezone()
    except (ValueError, OverflowError):  # year 1 in local time is before the calendar in UTC
        return _BEGINNING


def _iso_moment(text: str, now: datetime) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        if ":" not in text:  # "14" would read as 14:00, and someone typing it may mean 14 minutes
            raise
        return datetime.combine(now.astimezone().date(), time.fromisoformat(text))


def channel_files(log_dir: Path, channel: str = MAIN_CHANNEL) -> list[Path]:
    """Return the files of ``channel`` that exist, oldest first: ``.N`` down to ``.1``, then the current.

    Raises:
        LogsUnreadable: ``log_dir`` cannot be listed.
    """
    current = log_path(log_dir, channel)
    rotated: list[tuple[int, Path]] = []
    try:
        for path in log_dir.glob(glob.escape(current.name) + ".*"):
            suffix = path.name[len(current.name) + 1 :]
            if suffix.isascii() and suffix.isdigit():
                rotated.append((int(suffix), path))
        exists = current.exists()
    except OSError as error:
        raise LogsUnreadable(log_dir, error.strerror or str(error)) from error
    return [path for _, path in sorted(rotated, reverse=True)] + ([current] if exists else [])


def read_entries(paths: Iterable[Path], channel: str = MAIN_CHANNEL) -> Iterator[LogEntry]:
    """Yield the records of ``paths`` in order; a file that vanished meanwhile (rotated away) is skipped.

    Raises:
        LogsUnreadable: a file exists but cannot be read (its permissions, most often).
    """
    for path in paths:
        parser = _Parser(channel)
        try:
            with path.open("rb") as file:
                for raw in file:
                    entry = parser.feed(_decode(raw))
                    if entry is not None:
                        yield entry
        except FileNotFoundError:
            log.debug("%s disappeared while reading the logs, a rotation moved it", path)
        except OSError as error:
            raise LogsUnreadable(path, error.strerror or str(error)) from error
        last = parser.flush()
        if last is not None:
            yield last


def render(entry: LogEntry, *, raw: bool = False) -> str:
    """Return how ``entry`` is shown: its lines as written, or a JSON record as a readable text record."""
    if not entry.is_json or raw:
        return "\n".join(entry.lines)
    when = entry.time.astimezone().isoformat(timespec="milliseconds") if entry.time is not None else "-"
    parts = [f"{when} {entry.level or '-':<8} {entry.logger or '-'}: {entry.message}"]
    parts += [text for text in (entry.exc_info, entry.stack_info) if text]
    parts += entry.lines[1:]  # foreign lines that followed the JSON line
    return "\n".join(parts)


class LogFollower:
    """Read a channel's records written so far, then those appended to its current file, across rotations."""

    def __init__(self, log_dir: Path, channel: str = MAIN_CHANNEL) -> None:
        self._log_dir = log_dir
        self._channel = channel
        self._path = log_path(log_dir, channel)
        self._file: IO[bytes] | None = None
        self._identity: tuple[int, int] | None = None
        self._position = 0
        self._partial = b""
        self._parser = _Parser(channel)

    def backlog(self) -> Iterator[LogEntry]:
        """Yield the records already written: the rotated files oldest first, then the current file.

        Raises:
            LogsUnreadable: a file exists but cannot be read.
        """
        rotated = [path for path in channel_files(self._log_dir, self._channel) if path != self._path]
        yield from read_entries(rotated, self._channel)
        if self._open():
            entries, _ = self._read_available()
            yield from entries
            yield from self._flush(partial=False)  # a line still being written waits for the next poll

    def poll(self) -> list[LogEntry]:
        """Return the records appended since the last call, reading a rotated-away file to its end first.

        Raises:
            LogsUnreadable: the current file exists but cannot be read.
        """
        entries: list[LogEntry] = []
        if self._file is not None:
            try:
                stat = os.stat(self._path)
            except FileNotFoundError:
                stat = None
            if stat is None or (stat.st_dev, stat.st_ino) != self._identity:
                entries += self._read_available()[0]
                entries += self._flush(partial=True)
                log.debug("%s was rotated away, reading its successor", self._path)
                self.close()
            elif stat.st_size < self._position:
                entries += self._flush(partial=True)
                log.debug("%s shrank, reading it again from its start", self._path)
                self._file.seek(0)
                self._position = 0
        if self._file is None and not self._open():
            return entries
        new, grew = self._read_available()
        entries += new
        if not grew:  # quiet for a poll: the record held back is complete
            entries += self._flush(partial=True)
        return entries

    def close(self) -> None:
        """Close the file being followed; a later :meth:`poll` opens the current file again."""
        if self._file is not None:
            self._file.close()
        self._file = None
        self._identity = None
        self._position = 0
        self._partial = b""

    def _open(self) -> bool:
        try:
            self._file = self._path.open("rb")
        except FileNotFoundError:
            return False
        except OSError as error:
            raise LogsUnreadable(self._path, error.strerror or str(error)) from error
        stat = os.fstat(self._file.fileno())
        self._identity = (stat.st_dev, stat.st_ino)
        self._position = 0
        self._partial = b""
        self._parser = _Parser(self._channel)
        return True

    def _read_available(self) -> tuple[list[LogEntry], bool]:
        assert self._file is not None
        data = self._file.read()
        self._position += len(data)
        *lines, self._partial = (self._partial + data).split(b"\n")
        entries = [entry for line in lines if (entry := self._parser.feed(_decode(line))) is not None]
        return entries, bool(data)

    def _flush(self, *, partial: bool) -> list[LogEntry]:
        entries: list[LogEntry] = []
        if partial and self._partial:
            entry = self._parser.feed(_decode(self._partial))
            self._partial = b""
            if entry is not None:
                entries.append(entry)
        last = self._parser.flush()
        return [*entries, last] if last is not None else entries

    def __enter__(self) -> LogFollower:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class _Parser:
    """Group lines into records: a record ends where the next one starts, or at :meth:`flush`."""

    def __init__(self, channel: str) -> None:
        self._channel = channel
        self._start: LogEntry | None = None
        self._more: list[str] = []  # the lines after the start, collected without copying the entry

    def feed(self, line: str) -> LogEntry | None:
        """Take one line without its newline; return the record it completed, if it started a new one."""
        start = _record_start(line)
        if start is None:
            if self._start is None:
                self._start = LogEntry(None, None, None, self._channel, line, (line,))
            else:
                self._more.append(line)
            return None
        done = self.flush()
        self._start = start
        return done

    def flush(self) -> LogEntry | None:
        """Return the record still open, if any, and forget it."""
        done, self._start = self._start, None
        if done is not None and self._more:
            done = replace(done, lines=(*done.lines, *self._more))
        self._more = []
        return done


def _decode(raw: bytes) -> str:
    # A file cut in the middle of a character (a crash, a disk full) must still read.
    return raw.decode("utf-8", errors="replace").rstrip("\r\n")


def _record_start(line: str) -> LogEntry | None:
    if line.startswith("{"):
        try:
            fields = json.loads(line)
        except ValueError:
            fields = None
        if isinstance(fields, dict) and isinstance(fields.get("level"), str) and "time" in fields:
            return _json_entry(fields, line)
    match = TEXT_RECORD_RE.match(line)
    if match is None:
        return None
    return LogEntry(
        time=_iso_or_none(match["time"]),
        level=match["level"],
        logger=match["logger"],
        channel=_channel_of(match["logger"]),
        message=match["message"],
        lines=(line,),
    )


def _json_entry(fields: dict[str, Any], line: str) -> LogEntry:
    logger = _text_or_none(fields.get("logger"))
    channel = _text_or_none(fields.get("channel"))
    return LogEntry(
        time=_iso_or_none(fields.get("time")),
        level=fields["level"],
        logger=logger,
        channel=channel if channel in (MAIN_CHANNEL, *CHANNELS) else _channel_of(logger or ""),
        message=_text_or_none(fields.get("message")) or "",
        lines=(line,),
        exc_info=_text_or_none(fields.get("exc_info")),
        stack_info=_text_or_none(fields.get("stack_info")),
        is_json=True,
    )


def _iso_or_none(value: object) -> datetime | None:
    # A line that only looks like a record (month 13) still belongs somewhere: a record of unknown time.
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)  # the formatter writes UTC


def _text_or_none(value: object) -> str | None:
    return None if value is None else str(value)
