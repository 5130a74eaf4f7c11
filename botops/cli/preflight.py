"""``botops preflight``: the pre-deployment checklist as a table of passes, warnings and failures with fixes.

Exit 0 when nothing failed (warnings allowed), 1 otherwise, so a deploy script can stop on it. The run is
recorded in the log files like every command's; a LOG_DIR that cannot take them is reported in the table
(the "log folder" check), not as an error before it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from botops.cli._common import EnvFile, err_console, load_settings_or_exit, user_errors
from botops.cli.codes import ExitCode
from botops.deploy.preflight import PreflightReport, Status, run_preflight
from botops.errors import LogDirUnusable
from botops.logs import setup_logging
from botops.settings import ENV_FILE, Settings

__all__ = ["preflight"]

#: How each result is drawn: mark and word, and its colour.
_RESULTS: dict[Status, tuple[str, str]] = {
    "pass": ("✓ pass", "green"),
    "warn": ("! warning", "yellow"),
    "fail": ("✗ FAIL", "bold red"),
}


def preflight(
    skip_tests: Annotated[
        bool,
        typer.Option("--skip-tests", help="Do not run DEPLOY_TEST_COMMAND (shown as a warning)."),
    ] = False,
    env_file: EnvFile = ENV_FILE,
) -> None:
    """Check a deploy can go ahead: tests, settings, .env, disk, database, Discord, backup, rollback plan.

    Exit 0 when no check failed (warnings allowed), 1 when one did.
    """
    settings = load_settings_or_exit(env_file)
    with user_errors(), _log_files(settings), err_console.status("Preflight...") as status:
        report = asyncio.run(
            run_preflight(
                settings,
                env_file=env_file,
                run_tests=not skip_tests,
                progress=lambda name: status.update(f"Preflight: {name}..."),
            )
        )
    console = Console(highlight=False)
    console.print(_table(report))
    console.print(Text(f"Rollback plan: {report.plan}"))
    console.print(_summary(report))
    raise typer.Exit(ExitCode.FAILURE if report.failed else ExitCode.OK)


@contextlib.contextmanager
def _log_files(settings: Settings) -> Iterator[None]:
    """Record the run in the log files, or run without them when LOG_DIR cannot take them."""
    try:
        handle = setup_logging(settings, console=False)
    except LogDirUnusable:
        yield
        return
    with handle:
        yield


def _table(report: PreflightReport) -> Table:
    table = Table(title="Preflight", title_justify="left")
    table.add_column("check", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("detail")
    table.add_column("fix")
    for check in report.checks:
        word, style = _RESULTS[check.status]
        # Text, not markup: details quote test output and paths, where [ ] means nothing to rich.
        table.add_row(Text(check.name), Text(word, style=style), Text(check.detail), Text(check.fix or ""))
    return table


def _summary(report: PreflightReport) -> Text:
    failed, warned = len(report.failed), len(report.warnings)
    passed = len(report.checks) - failed - warned
    counts = f"{passed} passed, {warned} warning{'s' * (warned != 1)}, {failed} failed"
    if failed:
        names = ", ".join(check.name for check in report.failed)
        return Text(f"{counts}: fix {names} before deploying.", style="bold red")
    return Text(f"{counts}: ready to deploy.", style="green")
