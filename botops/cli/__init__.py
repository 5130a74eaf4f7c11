"""The ``botops`` command line: one Typer sub-app per command group, joined here."""

from __future__ import annotations

from typing import Annotated

import typer

from botops import __version__
from botops.cli.codes import ExitCode

__all__ = ["ExitCode", "app", "main"]


app = typer.Typer(
    name="botops",
    help="Run, observe, back up and deploy a discord.py bot; try it offline against the sandbox.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"botops {__version__}")
        raise typer.Exit(ExitCode.OK)


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Run, observe, back up and deploy a discord.py bot; try it offline against the sandbox."""


def _register() -> None:
    from botops.cli import backup, config, db, deploy, health, logs, preflight, run, sandbox, stats

    app.command(name="run")(run.run)
    app.add_typer(backup.app, name="backup")
    app.add_typer(config.app, name="config")
    app.add_typer(db.app, name="db")
    app.command(name="health")(health.health)
    app.command(name="deploy")(deploy.deploy)
    app.command(name="rollback")(deploy.rollback)
    app.command(name="deployments")(deploy.deployments)
    app.command(name="logs")(logs.logs)
    app.command(name="preflight")(preflight.preflight)
    app.command(name="sandbox")(sandbox.sandbox)
    app.command(name="stats")(stats.stats)


_register()


def main() -> None:
    """Run the CLI."""
    app()
