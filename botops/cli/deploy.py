"""``botops deploy``, ``botops rollback`` and ``botops deployments``: one command for each, with a ledger."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from botops.cli._common import (
    EnvFile,
    age_text,
    err_console,
    exit_with,
    load_settings_or_exit,
    run_logged,
    user_errors,
)
from botops.cli.codes import ExitCode
from botops.errors import DeployFailed
from botops.settings import ENV_FILE, Settings

if TYPE_CHECKING:
    from botops.deploy.run import DeployOutcome

__all__ = ["deploy", "deployments", "rollback"]

console = Console(highlight=False)

#: ``--checkout``: the bot's git checkout, the working directory unless given.
CheckoutOption = Annotated[
    Path, typer.Option("--checkout", help="The bot's git checkout.", show_default="the working directory")
]


def deploy(
    ref: Annotated[str, typer.Option("--ref", help="The commit, branch or tag to deploy.")] = "origin/main",
    feature: Annotated[
        str | None, typer.Option("--feature", help="Append deployment notes to features/<FEATURE>.md.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would happen; change nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before deploying.")] = False,
    skip_tests: Annotated[
        bool, typer.Option("--skip-tests", help="Leave DEPLOY_TEST_COMMAND out of the preflight.")
    ] = False,
    checkout: CheckoutOption = Path(),
    env_file: EnvFile = ENV_FILE,
) -> None:
    """Deploy REF: backup, fast-forward, migrate, hot reload or restart, readiness; roll back on failure."""
    from botops.deploy import report
    from botops.deploy import run as running

    settings = load_settings_or_exit(env_file)
    if feature is not None and not report.FEATURE_RE.match(feature):
        exit_with(f"error: --feature must be a key such as DEADLOCK-12 (got {feature!r})", ExitCode.USAGE)

    def confirm(_plan: object) -> bool:
        return yes or typer.confirm("Deploy now?", default=False)

    async def work() -> running.DeployOutcome | DeployFailed:
        try:
            return await running.deploy(
                settings,
                checkout=checkout,
                env_file=env_file,
                ref=ref,
                feature=feature,
                dry_run=dry_run,
                run_tests=not skip_tests,
                confirm=confirm,
                say=typer.echo,
            )
        except DeployFailed as failure:  # reported below, with the handoff message, then exit 1
            return failure

    result = run_logged(settings, "botops deploy", work)
    if isinstance(result, DeployFailed):
        if isinstance(result.outcome, running.DeployOutcome):
            _finish(result.outcome, settings, checkout)
        exit_with(f"error: {result}", ExitCode.FAILURE)
    if dry_run or result.plan is None or result.to_commit == result.from_commit:
        return
    _finish(result, settings, checkout)


def rollback(
    to: Annotated[int | None, typer.Option("--to", help="Roll back the deploy with this ledger id.")] = None,
    checkout: CheckoutOption = Path(),
    env_file: EnvFile = ENV_FILE,
) -> None:
    """Go back to the commit and schema before the last deploy (or --to ID), then check readiness."""
    from botops.deploy import run as running

    settings = load_settings_or_exit(env_file)
    outcome = run_logged(
        settings,
        "botops rollback",
        lambda: running.rollback(settings, checkout=checkout, env_file=env_file, to=to, say=typer.echo),
    )
    typer.echo(f"Rolled back to {outcome.to_commit[:12]} (ledger #{outcome.ledger_id}).")


def deployments(
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="How many, newest first.")] = 20,
    env_file: EnvFile = ENV_FILE,
) -> None:
    """List the deploys and rollbacks in the ledger, newest first."""
    import asyncio

    from botops.db.engine import create_engine
    from botops.deploy.ledger import Deployment, last_deployments

    settings = load_settings_or_exit(env_file)

    async def read() -> list[Deployment]:
        engine = create_engine(settings)
        try:
            return await last_deployments(engine, limit=limit)
        finally:
            await engine.dispose()

    with user_errors():
        entries = asyncio.run(read())
    if not entries:
        typer.echo("No deploys yet.")
        return
    table = Table(title="deployments", title_justify="left")
    for column in ("id", "when", "who", "kind", "from", "to", "mode", "schema", "backup", "result", "took"):
        table.add_column(column, no_wrap=column in ("id", "from", "to", "backup"))
    now = datetime.datetime.now(datetime.UTC)
    for entry in entries:
        style = {"succeeded": "green", "rolled-back": "yellow"}.get(entry.result, "red")
        schema = (
            f"{entry.from_revision} -> {entry.to_revision}"
            if entry.from_revision != entry.to_revision
            else str(entry.to_revision)
        )
        table.add_row(
            str(entry.id),
            f"{age_text(now - entry.started_at)} ago",
            Text(entry.actor),
            entry.kind,
            entry.from_commit[:12],
            entry.to_commit[:12],
            entry.mode,
            Text(schema),
            entry.backup_id or "-",
            Text(entry.result, style=style),
            f"{entry.seconds:.1f} s",
        )
    console.print(table)


def _finish(outcome: DeployOutcome, settings: Settings, checkout: Path) -> None:
    from botops.deploy import report

    typer.echo("")
    typer.echo(report.handoff(outcome, settings))
    if outcome.feature is not None:
        try:
            path = report.append_feature_notes(outcome, settings, checkout)
        except (OSError, ValueError) as error:
            err_console.print(f"warning: the deployment notes were not written: {error}", markup=False)
        else:
            typer.echo(f"Deployment notes appended to {path}.")
