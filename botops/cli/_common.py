"""What every CLI command shares: loading settings, and botops errors as one line and an exit code."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

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
from botops.settings import Settings, SettingsError, load_settings

__all__ = ["err_console", "exit_with", "load_settings_or_exit", "user_errors"]

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
