"""``botops stats``: the command statistics /stats shows, read straight from the database, without Discord.

An operator sees the top commands of the last 24 hours, 7 days and all time and the errors per hour,
for one guild or the whole bot, even while the bot is down. It only reads: a database whose schema is
not the code's is refused with the error ``botops db`` gives, naming the command that fixes it.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from botops.cli._common import EnvFile, load_settings_or_exit, user_errors
from botops.db import migrate
from botops.db.engine import create_engine
from botops.db.stats import DIRECT_MESSAGES, UsageSummary, UsageWindow, sparkline, usage_summary
from botops.errors import SchemaAhead, SchemaBehind
from botops.settings import ENV_FILE, Settings

__all__ = ["stats"]

log = logging.getLogger(__name__)

console = Console(highlight=False, soft_wrap=True)

_WINDOW_TITLES = {"day": "Last 24 hours", "week": "Last 7 days", "all": "All time"}


def stats(
    guild: Annotated[
        int | None,
        typer.Option(
            "--guild",
            "-g",
            min=0,
            help=f"Only this guild's commands ({DIRECT_MESSAGES}: direct messages); default: the whole bot.",
        ),
    ] = None,
    env_file: EnvFile = ENV_FILE,
) -> None:
    """Print the most used commands of the last 24 hours, 7 days and all time, and the errors per hour."""
    settings = load_settings_or_exit(env_file)
    with user_errors():
        summary = asyncio.run(_read(settings, guild, datetime.now(UTC)))
    _print(summary)


async def _read(settings: Settings, guild_id: int | None, now: datetime) -> UsageSummary:
    """Read the summary, after making sure the schema is the one the queries are written for.

    Raises:
        SchemaBehind, SchemaAhead: the database's schema is not the code's.
        DatabaseUnavailable: the database cannot be reached.
    """
    engine = create_engine(settings)
    try:
        state = await migrate.schema_state(engine)
        if state.is_unknown:
            assert state.current is not None
            raise SchemaAhead(state.current, state.head)
        if state.is_behind:
            raise SchemaBehind(state.current, state.head)
        return await usage_summary(engine, now=now, guild_id=guild_id)
    finally:
        await engine.dispose()


def _print(summary: UsageSummary) -> None:
    scope = "the whole bot" if summary.guild_id is None else f"guild {summary.guild_id}"
    if summary.guild_id == DIRECT_MESSAGES:
        scope = "direct messages"
    # Headings and the errors line never wrap: one line each, for people and for grep.
    console.print(f"Command statistics of {scope}; every use counts, whatever its outcome; times in UTC.")
    for window in summary.windows:
        console.print()
        console.print(Text(_heading(window)))
        console.print(_table(window))
    errors = summary.errors_per_hour
    since = summary.errors_since.strftime("%Y-%m-%d %H:%M")
    console.print()
    console.print(Text(f"Errors per hour since {since} UTC: {sparkline(errors)}  {sum(errors)} in total"))


def _heading(window: UsageWindow) -> str:
    totals = window.totals
    heading = _WINDOW_TITLES.get(window.name, window.name)
    if window.since is not None:
        heading += f" (since {window.since.strftime('%Y-%m-%d %H:%M')} UTC)"
    heading += f": {totals.uses} uses, {totals.refused} refused, {totals.errors} errors"
    if totals.average_seconds is not None:
        heading += f", {totals.average_seconds * 1000:.0f} ms on average"
    return heading


def _table(window: UsageWindow) -> Table:
    table = Table("#", "command", "uses")
    table.columns[1].overflow = "fold"
    table.columns[2].justify = "right"
    for position, (command, uses) in enumerate(window.top, 1):
        table.add_row(str(position), Text(command), str(uses))  # names are data, never markup
    if not window.top:
        table.add_row("-", Text("no commands yet"), "0")
    return table
