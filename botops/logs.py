"""Logging set up once at the entry point: console, rotating files per channel, JSON option, secret redaction.

:func:`setup_logging` attaches botops' handlers to the root logger, so records from every library
land in them:

* ``LOG_DIR/botops.log`` receives everything; each channel in :data:`CHANNELS` also gets its own
  file (``gateway.log`` for connection events: connects, resumes, reconnects). All files rotate at
  ``LOG_MAX_BYTES`` and keep ``LOG_BACKUP_COUNT`` old copies; the folder is 0700 and the files 0600,
  since logs name users.
* every handler carries a :class:`RedactingFilter`, so no token or other secret reaches any output,
  whichever logger emitted the record and whether it sits in the message, its arguments or a traceback.
* a record logged with ``extra=FILES_ONLY`` goes to the files but not to the console: for a traceback
  the console already summed up in one line.
* ``LOG_FORMAT=text`` writes ``<ISO-8601 time with offset> <LEVEL> <logger>: <message>`` lines
  (:data:`TEXT_RECORD_RE` parses them; traceback lines follow without a timestamp);
  ``LOG_FORMAT=json`` writes one object per line with the keys ``time`` (UTC), ``level``, ``logger``,
  ``channel``, ``message`` and, when present, ``exc_info`` and ``stack_info``.

Entry points (the bot runner, the CLI) call it once; calling it again replaces the previous handlers.
The bot runner must start discord.py with ``log_handler=None``, or discord.py adds its own,
unredacted handler to the root logger.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from io import TextIOWrapper
from logging.handlers import RotatingFileHandler
from pathlib import Path
from types import TracebackType

from botops.errors import LogDirUnusable
from botops.redaction import Redactor
from botops.settings import Settings

__all__ = [
    "CHANNELS",
    "FILES_ONLY",
    "MAIN_CHANNEL",
    "TEXT_RECORD_RE",
    "JsonFormatter",
    "LoggingHandle",
    "RedactingFilter",
    "TextFormatter",
    "channel_of",
    "log_path",
    "setup_logging",
]

log = logging.getLogger(__name__)

MAIN_CHANNEL = "botops"
"""The channel of every record no entry of :data:`CHANNELS` claims; its file is ``botops.log``."""

CHANNELS: dict[str, tuple[str, ...]] = {
    "gateway": ("discord.gateway", "discord.client", "discord.shard", "botops.gateway"),
}
"""Channel name -> the loggers (and their children) whose records also go to ``<channel>.log``."""

TEXT_RECORD_RE = re.compile(
    r"^(?P<time>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}[+-]\d{2}:\d{2}) "
    r"(?P<level>[A-Z]+) +(?P<logger>\S+): (?P<message>.*)$"
)
"""Matches the first line of a record in a text log file; other lines continue the record above."""

FILES_ONLY: dict[str, object] = {"botops_console": False}
"""Pass as ``extra=`` to keep a record off the console; the log files still get it."""

_TEXT_FORMAT = "%(asctime)s %(levelname)-8s %(name)s: %(message)s"
_DIR_MODE = 0o700
_FILE_MODE = 0o600
_PLAIN = logging.Formatter()  # renders tracebacks exactly as logging does by default


def channel_of(logger_name: str) -> str:
    """Return the channel a logger's records belong to: a key of :data:`CHANNELS` or :data:`MAIN_CHANNEL`."""
    for channel, loggers in CHANNELS.items():
        if any(logger_name == name or logger_name.startswith(name + ".") for name in loggers):
            return channel
    return MAIN_CHANNEL


def log_path(log_dir: Path, channel: str = MAIN_CHANNEL) -> Path:
    """Return the current file of ``channel`` in ``log_dir``; its rotated copies end in ``.1``, ``.2``, ..."""
    return log_dir / f"{channel}.log"


class _NoiseFilter(logging.Filter):
    """Drop warnings that say nothing about this bot: botops does no voice, so no voice libraries."""

    _NOISE = (
        "PyNaCl is not installed, voice will NOT be supported",
        "davey is not installed, voice will NOT be supported",
    )

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name == "discord.client" and record.msg in self._NOISE)


_NOISE = _NoiseFilter()


class RedactingFilter(logging.Filter):
    """Replace secrets and token-shaped strings in a record's message, arguments, traceback and stack.

    Attach it to handlers, not loggers: a logger's filter misses records from its children and from
    third-party loggers. The record is rewritten in place (Python 3.11 has no per-handler copy), so the
    message is formatted here and the traceback turned into redacted ``exc_text``, which every
    ``logging.Formatter`` prints instead of rendering ``exc_info`` again. ``exc_info`` itself stays: the
    Sentry integration, which sees the record after the handlers, sends the exception with its frames
    (and scrubs it itself, see :mod:`botops.observability.sentry`).
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._redact = Redactor(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "_botops_redacted_by", None) is self:  # seen by an earlier handler
            return True
        record.msg = self._redact(_message_of(record))
        record.args = ()
        if record.exc_info and not record.exc_text:
            record.exc_text = _PLAIN.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self._redact(record.stack_info)
        record.__dict__["_botops_redacted_by"] = self
        return True


def _message_of(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:
        # logging would report the failure with the raw arguments on stderr, past every filter;
        # keep template and arguments instead, so they are redacted like any message.
        return f"{record.msg!s} (arguments that did not fit: {record.args!r})"


class TextFormatter(logging.Formatter):
    """Format ``<ISO-8601 local time with offset> <LEVEL> <logger>: <message>``, then any traceback."""

    def __init__(self) -> None:
        super().__init__(_TEXT_FORMAT)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).astimezone().isoformat(timespec="milliseconds")


class JsonFormatter(logging.Formatter):
    """Format one JSON object per line, for log shippers; the keys are a stable interface."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "channel": channel_of(record.name),
            "message": record.getMessage(),
        }
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False)


def _not_files_only(record: logging.LogRecord) -> bool:
    return getattr(record, "botops_console", True) is not False


class _ChannelFilter(logging.Filter):
    def __init__(self, channel: str) -> None:
        super().__init__()
        self.channel = channel

    def filter(self, record: logging.LogRecord) -> bool:
        return channel_of(record.name) == self.channel


class _PrivateRotatingFileHandler(RotatingFileHandler):
    """A rotating file handler whose files, the rotated ones included, are readable by their owner only."""

    def _open(self) -> TextIOWrapper:
        # Created 0600 from the start, so no reader can open the file in a window before a chmod.
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, _FILE_MODE)
        os.chmod(self.baseFilename, _FILE_MODE)  # a file left by an older version may be looser
        return open(fd, "a", encoding=self.encoding, errors=self.errors)


@dataclass(eq=False)
class LoggingHandle:
    """The handlers :func:`setup_logging` installed; :meth:`close` removes them and restores the levels."""

    files: dict[str, Path]
    handlers: tuple[logging.Handler, ...]
    _previous_levels: dict[str, int] = field(repr=False)
    _closed: bool = field(default=False, repr=False)

    def close(self) -> None:
        """Remove and close the handlers and restore the logger levels; closing twice does nothing."""
        global _active
        if self._closed:
            return
        self._closed = True
        root = logging.getLogger()
        for handler in self.handlers:
            root.removeHandler(handler)
            handler.close()
        for name, level in self._previous_levels.items():
            logging.getLogger(name).setLevel(level)
        if _active is self:
            _active = None

    def __enter__(self) -> LoggingHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


_active: LoggingHandle | None = None


def setup_logging(settings: Settings, *, console: bool = True, discord_debug: bool = False) -> LoggingHandle:
    """Configure the root logger for botops, replacing what an earlier call installed.

    ``console`` adds a handler on stderr. discord.py's loggers stay at INFO (``discord.http`` at
    WARNING, which still shows rate limits) unless ``discord_debug`` is set and LOG_LEVEL is DEBUG.

    Raises:
        LogDirUnusable: ``settings.log_dir`` cannot be created or is not a writable folder.
    """
    if _active is not None:
        _active.close()
    _prepare_dir(settings.log_dir)
    level = logging.getLevelNamesMapping()[settings.effective_log_level]
    redacting = RedactingFilter(settings.secret_values())
    formatter: logging.Formatter = JsonFormatter() if settings.log_format == "json" else TextFormatter()

    files = {channel: log_path(settings.log_dir, channel) for channel in (MAIN_CHANNEL, *CHANNELS)}
    handlers: list[logging.Handler] = []
    for channel, path in files.items():
        file_handler = _PrivateRotatingFileHandler(
            path,
            maxBytes=settings.log_max_bytes,
            backupCount=settings.log_backup_count,
            encoding="utf-8",
            delay=True,  # a file appears with its first record, not for every CLI command
        )
        if channel != MAIN_CHANNEL:
            file_handler.addFilter(_ChannelFilter(channel))
        handlers.append(file_handler)
    if console:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(
            formatter if settings.log_format == "json" else logging.Formatter(_TEXT_FORMAT, "%H:%M:%S")
        )
        stream.addFilter(_not_files_only)
        handlers.append(stream)
    for handler in handlers:
        handler.addFilter(_NOISE)
        handler.addFilter(redacting)
        if handler.formatter is None:
            handler.setFormatter(formatter)

    levels = _logger_levels(level, discord_debug=discord_debug)
    previous = {name: logging.getLogger(name).level for name in levels}
    for name, logger_level in levels.items():
        logging.getLogger(name).setLevel(logger_level)
    root = logging.getLogger()
    for handler in handlers:
        root.addHandler(handler)

    handle = LoggingHandle(files=files, handlers=tuple(handlers), _previous_levels=previous)
    _set_active(handle)
    log.debug("Logging %s and above to %s", settings.effective_log_level, settings.log_dir)
    return handle


def _set_active(handle: LoggingHandle) -> None:
    global _active
    _active = handle


def _logger_levels(level: int, *, discord_debug: bool) -> dict[str, int]:
    # discord.py's DEBUG is every gateway payload and HTTP request; aiosqlite's is every statement.
    quiet_discord = not (discord_debug and level <= logging.DEBUG)
    return {
        "": level,
        "discord": max(level, logging.INFO) if quiet_discord else level,
        "discord.http": max(level, logging.WARNING) if quiet_discord else level,
        "aiosqlite": max(level, logging.INFO),
        # Alembic narrates every connection it inspects; botops.db.migrate logs what actually changed.
        "alembic": max(level, logging.WARNING),
    }


def _prepare_dir(path: Path) -> None:
    if not path.exists():
        try:
            path.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
            path.chmod(_DIR_MODE)  # mkdir's mode is narrowed by the umask, never widened
        except OSError as error:
            raise LogDirUnusable(str(path), error.strerror or str(error)) from error
    if not path.is_dir():
        raise LogDirUnusable(str(path), "it is not a folder")
    if not os.access(path, os.W_OK | os.X_OK):
        raise LogDirUnusable(str(path), "it is not writable")
