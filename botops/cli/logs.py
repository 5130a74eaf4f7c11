"""``botops logs``: the bot's log records, rotated files included, filtered by level, time and channel."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections import deque
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Annotated

import typer

from botops.cli._common import EnvFile, load_settings_or_exit, user_errors
from botops.cli.codes import ExitCode
from botops.errors import InvalidLogQuery, LogsUnreadable
from botops.logquery import (
    LEVELS,
    LogEntry,
    LogFilter,
    LogFollower,
    channel_files,
    parse_level,
    parse_since,
    render,
)
from botops.logs import CHANNELS, MAIN_CHANNEL, log_path
from botops.settings import ENV_FILE

__all__ = ["POLL_INTERVAL", "logs"]

POLL_INTERVAL = 0.2
"""Seconds between two looks at a followed file: new records show within about this long."""

_CHANNEL_CHOICES = (MAIN_CHANNEL, *CHANNELS)
_BATCH = 500  # records per write: one flush per record would make a large backlog slow


def logs(
    level: Annotated[
        str | None,
        typer.Option("--level", "-l", help=f"Only this level and above: {', '.join(LEVELS)}."),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            "-s",
            help="Only records from this time on: a duration back from now (90s, 30m, 1h, 2d, 1h30m) or "
            "an ISO-8601 time (2024-05-01, 2024-05-01T14:00+02:00, 14:00).",
        ),
    ] = None,
    channel: Annotated[
        str,
        typer.Option(
            "--channel",
            "-c",
            help=f"Which log: {MAIN_CHANNEL} (every record) or {', '.join(CHANNELS)} (its own file).",
        ),
    ] = MAIN_CHANNEL,
    follow: Annotated[
        bool,
        typer.Option("--follow", "-f", help="Keep printing new records as they are written, until Ctrl-C."),
    ] = False,
    limit: Annotated[
        int | None,
        typer.Option("--limit", "-n", min=0, help="Only the last N matching records already written."),
    ] = None,
    raw_json: Annotated[
        bool,
        typer.Option("--json", help="Print JSON records as the lines written (for jq), not as text."),
    ] = False,
    env_file: EnvFile = ENV_FILE,
) -> None:
    """Print the bot's log records, the rotated files included, oldest first; tracebacks come along."""
    settings = load_settings_or_exit(env_file)
    with user_errors(), contextlib.suppress(KeyboardInterrupt):
        query = LogFilter(
            min_level=parse_level(level) if level is not None else None,
            since=parse_since(since, datetime.now(UTC)) if since is not None else None,
        )
        if channel not in _CHANNEL_CHOICES:
            raise InvalidLogQuery(
                "--channel", channel, f"{MAIN_CHANNEL} (every record) or {', '.join(CHANNELS)}"
            )
        log_dir = settings.log_dir.absolute()
        if not channel_files(log_dir, channel):
            name = log_path(log_dir, channel).name
            raise LogsUnreadable(
                log_dir,
                f"no {name} there, nor a rotated {name}.N; the bot has not logged yet, or LOG_DIR points "
                "elsewhere (set it in .env or the environment)",
            )
        with _stdout_closed_quietly(), LogFollower(log_dir, channel) as follower:
            _print(_last(_matching(follower.backlog(), query), limit), raw=raw_json)
            while follow:
                _print(_matching(follower.poll(), query), raw=raw_json)
                time.sleep(POLL_INTERVAL)


def _matching(entries: Iterable[LogEntry], query: LogFilter) -> Iterator[LogEntry]:
    return (entry for entry in entries if query.matches(entry))


def _last(entries: Iterator[LogEntry], limit: int | None) -> Iterable[LogEntry]:
    return entries if limit is None else deque(entries, maxlen=limit)


def _print(entries: Iterable[LogEntry], *, raw: bool) -> None:
    batch: list[str] = []
    for entry in entries:
        batch.append(render(entry, raw=raw))
        if len(batch) >= _BATCH:
            typer.echo("\n".join(batch))
            batch.clear()
    if batch:
        typer.echo("\n".join(batch))


@contextlib.contextmanager
def _stdout_closed_quietly() -> Iterator[None]:
    """End the command without a traceback when the reader of stdout goes away (``botops logs | head``)."""
    try:
        yield
    except BrokenPipeError:
        # Python flushes stdout once more at exit; point it at nothing so that flush cannot fail too.
        with contextlib.suppress(OSError, ValueError, AttributeError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        raise typer.Exit(ExitCode.OK) from None
