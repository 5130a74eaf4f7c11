"""What every CLI command shares: the --env-file option, loading settings, running async work with its
log on record, and botops errors as one line and an exit code."""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console

from botops.cli.codes import ExitCode
from botops.errors import (
    BotopsError,
    ConfigurationError,
    InvalidLogQuery,
    InvalidRetentionPolicy,
    InvalidRevision,
)
from botops.logs import setup_logging
from botops.settings import Settings, SettingsError, load_settings

__all__ = [
    "EnvFile",
    "age_text",
    "err_console",
    "exit_with",
    "load_settings_or_exit",
    "run_logged",
    "user_errors",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The ``--env-file`` option of every command that reads the settings (default: ``ENV_FILE``).
EnvFile = Annotated[Path, typer.Option("--env-file", help="The .env file to read besides the environment.")]

err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def exit_with(message: str, code: ExitCode) -> NoReturn:
    """Print ``message`` to stderr and exit with ``code``."""
    err_console.print(message, markup=False)
    raise typer.Exit(code)


def load_settings_or_exit(env_file: Path | None) -> Settings:
    """Load the settings, or print each problem on its own line and exit with ``ExitCode.USAGE``."""
    try:
        return load_settings(env_file)
    except SettingsError as error:
        for problem in error.problems:
            err_console.print(f"error: {problem}", markup=False)
        raise typer.Exit(ExitCode.USAGE) from None


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn a ``BotopsError`` raised inside the block into one line on stderr and an exit code."""
    try:
        yield
    except SettingsError as error:
        for problem in error.problems:
            err_console.print(f"error: {problem}", markup=False)
        raise typer.Exit(ExitCode.USAGE) from None
    except (ConfigurationError, InvalidRevision, InvalidLogQuery, InvalidRetentionPolicy) as error:
        exit_with(f"error: {error}", ExitCode.USAGE)
    except BotopsError as error:
        exit_with(f"error: {error}", ExitCode.FAILURE)


def run_logged(settings: Settings, command: str, work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``work`` to its end with the log files (not the console) recording it; return its result.

    A botops error is logged as ``<command> failed: ...``, so what was run by hand is on record next to
    the bot's own log, then becomes one line on stderr and an exit code (:func:`user_errors`).
    """
    with user_errors(), setup_logging(settings, console=False):
        try:
            return asyncio.run(work())
        except BotopsError as error:
            log.error("%s failed: %s", command, error)
            raise
    raise AssertionError("unreachable: user_errors exits on every error")  # pragma: no cover


def age_text(age: datetime.timedelta) -> str:
    """Return ``age`` as people read it in a table: ``12 min``, ``5 h``, ``3 d``."""
    seconds = max(0, int(age.total_seconds()))
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"
