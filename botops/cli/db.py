"""``botops db``: migrate the database schema and show where it stands (Alembic, configured in code)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text
from sqlalchemy.ext.asyncio import AsyncEngine

from botops.cli._common import EnvFile, load_settings_or_exit, run_logged
from botops.cli.codes import ExitCode
from botops.db import migrate
from botops.db.engine import create_engine, masked_url
from botops.settings import ENV_FILE, Settings

__all__ = ["app"]

log = logging.getLogger(__name__)

T = TypeVar("T")

app = typer.Typer(
    name="db",
    help="Migrate the database schema and show where it stands.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

console = Console()

# Lets `botops db downgrade -1` through: Click would read -1 as an unknown option.
_NEGATIVE_ARGUMENTS = {"ignore_unknown_options": True}


@app.command()
def upgrade(
    revision: Annotated[
        str,
        typer.Argument(metavar="REVISION", help="Revision to migrate to: an id, +1 for one step, or head."),
    ] = "head",
    env_file: EnvFile = ENV_FILE,
) -> None:
    """Migrate the schema up to REVISION (default: the newest the code has)."""
    result = _run(lambda engine: migrate.upgrade(engine, revision), load_settings_or_exit(env_file))
    if result.changed:
        typer.echo(f"Upgraded the database schema from {_name(result.before)} to {_name(result.after)}.")
    else:
        typer.echo(f"The database schema is already at {_name(result.after)}.")


@app.command(context_settings=_NEGATIVE_ARGUMENTS)
def downgrade(
    revision: Annotated[
        str,
        typer.Argument(
            metavar="REVISION",
            help="Revision to migrate down to: an id, -1 for one step, or base (drops every table).",
            show_default=False,
        ),
    ],
    env_file: EnvFile = ENV_FILE,
) -> None:
    """Migrate the schema down to REVISION; back up first, a downgrade drops what newer revisions added."""
    result = _run(lambda engine: migrate.downgrade(engine, revision), load_settings_or_exit(env_file))
    if result.changed:
        typer.echo(f"Downgraded the database schema from {_name(result.before)} to {_name(result.after)}.")
    else:
        typer.echo(f"The database schema is already at {_name(result.after)}.")


@app.command()
def current(env_file: EnvFile = ENV_FILE) -> None:
    """Show the database's revision, the code's newest, and whether an upgrade is due."""
    settings = load_settings_or_exit(env_file)
    state = _run(migrate.schema_state, settings)
    descriptions = {revision.id: revision.description for revision in migrate.history()}
    if state.is_current:
        status = "up to date"
    elif state.is_behind:
        status = f"behind by {len(state.pending)}: run `botops db upgrade`"
    else:
        status = "unknown revision: newer code migrated this database"
    # Plain lines, not a table: a long URL must stay on one line for people and for grep.
    rows = [
        ("database", masked_url(settings.database_url.get_secret_value())),
        ("current", _described(state.current, descriptions)),
        ("head", _described(state.head, descriptions)),
        ("status", status),
    ]
    for name, value in rows:
        typer.echo(f"{name:<9} {value}")


@app.command()
def history() -> None:
    """List the code's revisions, newest first."""
    table = Table("revision", "follows", "what it does")
    for revision in migrate.history():
        name = f"{revision.id} (head)" if revision.is_head else revision.id
        table.add_row(Text(name), Text(revision.parent or "-"), Text(revision.description))
    console.print(table)


@app.command()
def check(env_file: EnvFile = ENV_FILE) -> None:
    """Compare the database with the code; exit 1 and list the differences if there are any."""
    problems = _run(migrate.check, load_settings_or_exit(env_file))
    if not problems:
        typer.echo(f"The database matches the code (revision {migrate.head_revision()}).")
        return
    typer.echo(f"The database differs from the code in {len(problems)} way(s):", err=True)
    for problem in problems:
        typer.echo(f"  - {problem}", err=True)
    raise typer.Exit(ExitCode.FAILURE)


def _run(work: Callable[[AsyncEngine], Awaitable[T]], settings: Settings) -> T:
    """Run ``work`` with an engine for the configured database, on record in the log files."""
    return run_logged(settings, "botops db", lambda: _with_engine(settings, work))


async def _with_engine(settings: Settings, work: Callable[[AsyncEngine], Awaitable[T]]) -> T:
    engine = create_engine(settings)
    try:
        return await work(engine)
    finally:
        await engine.dispose()


def _name(revision: str | None) -> str:
    return revision if revision is not None else "base (no schema)"


def _described(revision: str | None, descriptions: dict[str, str]) -> str:
    if revision is None:
        return "none (no schema yet)"
    description = descriptions.get(revision)
    return f"{revision}  {description}" if description else revision
