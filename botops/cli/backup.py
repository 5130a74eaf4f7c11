"""``botops backup``: make, verify, list, prune and restore backups of the SQLite database in BACKUP_DIR."""

from __future__ import annotations

import asyncio
import datetime
import logging
from typing import Annotated, TypeVar, cast, get_args

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from botops.backup import restore as restoring
from botops.backup import store
from botops.backup.manifest import Reason
from botops.backup.retention import RetentionPolicy, plan_retention
from botops.cli._common import EnvFile, err_console, exit_with, load_settings_or_exit, run_logged, user_errors
from botops.cli.codes import ExitCode
from botops.errors import BackupCorrupt, BackupNotFound
from botops.logs import setup_logging
from botops.settings import ENV_FILE

__all__ = ["app"]

log = logging.getLogger(__name__)

T = TypeVar("T")

app = typer.Typer(
    name="backup",
    help="Back up the database, verify, list and prune backups, and restore one.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

console = Console(highlight=False)

#: What a person may ask for; "pre-restore" is the restore's own safety backup.
_CHOSEN_REASONS = tuple(reason for reason in get_args(Reason) if reason != "pre-restore")


@app.command()
def create(
    reason: Annotated[
        str, typer.Option("--reason", help=f"Why it is taken: {', '.join(_CHOSEN_REASONS)}.")
    ] = "manual",
    env_file: EnvFile = ENV_FILE,
) -> None:
    """Back up the database: online copy, integrity check, compression, checksum, manifest."""
    if reason not in _CHOSEN_REASONS:
        exit_with(
            f"error: --reason must be one of {', '.join(_CHOSEN_REASONS)} (got {reason!r})", ExitCode.USAGE
        )
    chosen = cast(Reason, reason)
    settings = load_settings_or_exit(env_file)
    with err_console.status("Backing up the database..."):
        manifest = run_logged(
            settings,
            "botops backup",
            lambda: store.create_backup(settings, reason=chosen, backup_dir=settings.backup_dir),
        )
    typer.echo(
        f"Backed up to {settings.backup_dir / (manifest.id + store.DATA_SUFFIX)} "
        f"({_size(manifest.raw_size)} -> {_size(manifest.compressed_size)}, "
        f"{sum(manifest.tables.values())} rows in {len(manifest.tables)} tables)."
    )


@app.command()
def verify(
    backup_id: Annotated[str | None, typer.Argument(metavar="[ID]", help="The backup to verify.")] = None,
    every: Annotated[bool, typer.Option("--all", help="Verify every backup in BACKUP_DIR.")] = False,
    env_file: EnvFile = ENV_FILE,
) -> None:
    """Verify a backup (or --all): checksum, decompression, integrity, row counts; exit 1 if one fails."""
    if (backup_id is None) == (not every):
        exit_with("error: give a backup ID or --all (not both)", ExitCode.USAGE)
    settings = load_settings_or_exit(env_file)
    ids = [backup_id] if backup_id is not None else [b.id for b in store.list_backups(settings.backup_dir)]
    if not ids:
        typer.echo(f"There are no backups in {settings.backup_dir}.")
        return
    failed = 0
    with user_errors(), setup_logging(settings, console=False):
        for one in ids:
            try:
                with err_console.status(f"Verifying {one}..."):
                    asyncio.run(store.verify_backup(settings.backup_dir, one))
            except BackupNotFound:
                raise
            except BackupCorrupt as error:
                log.error("Backup verification failed: %s", error)
                err_console.print(f"FAILED {one}: {error.reason}", markup=False)
                failed += 1
            else:
                typer.echo(f"ok     {one}")
    if failed:
        exit_with(f"error: {failed} of {len(ids)} backup(s) failed verification", ExitCode.FAILURE)


@app.command(name="list")
def list_(env_file: EnvFile = ENV_FILE) -> None:
    """List the backups in BACKUP_DIR, oldest first: age, size, reason, revision, when last verified."""
    settings = load_settings_or_exit(env_file)
    listed = store.list_backups(settings.backup_dir)
    if not listed:
        typer.echo(f"There are no backups in {settings.backup_dir}.")
        return
    now = datetime.datetime.now(datetime.UTC)
    table = Table(title=str(settings.backup_dir), title_justify="left")
    table.add_column("id", no_wrap=True)  # copied into `verify` and `restore`: keep it whole
    for column in ("age", "size", "reason", "revision"):
        table.add_column(column, no_wrap=True)
    table.add_column("checked", no_wrap=True)  # how long ago it last passed `verify`
    for entry in listed:
        age = _age(now - entry.created_at)
        manifest = entry.manifest
        if manifest is None:
            unreadable = Text(f"unreadable: {entry.problem}", style="red")
            table.add_row(Text(entry.id), age, "-", "-", "-", unreadable)
            continue
        verified = Text(_age(now - entry.verified_at), style="green") if entry.verified_at else "no"
        table.add_row(
            Text(manifest.id),
            age,
            _size(manifest.compressed_size),
            manifest.reason,
            Text(manifest.schema_revision or "none"),
            verified,
        )
    console.print(table)


@app.command()
def restore(
    backup_id: Annotated[
        str, typer.Argument(metavar="ID", help="The backup to restore.", show_default=False)
    ],
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask before replacing the database.")
    ] = False,
    env_file: EnvFile = ENV_FILE,
) -> None:
    """Replace the database with backup ID: verifies it, saves the current database, then swaps the file."""
    settings = load_settings_or_exit(env_file)
    if not yes:
        typer.confirm(
            f"Replace the database with backup {backup_id}? (the current one is backed up first)", abort=True
        )
    with err_console.status(f"Restoring {backup_id}..."):
        result = run_logged(
            settings,
            "botops backup",
            lambda: restoring.restore_backup(settings, backup_id, backup_dir=settings.backup_dir),
        )
    saved = f"; the database before it is backup {result.safety_backup.id}" if result.safety_backup else ""
    typer.echo(f"Restored backup {result.restored.id}{saved}.")
    typer.echo(result.advice())


@app.command()
def prune(
    daily: Annotated[
        int, typer.Option("--daily", min=0, help="Newest backup of each of the N newest days.")
    ] = 7,
    weekly: Annotated[
        int, typer.Option("--weekly", min=0, help="... of each of the N newest ISO weeks.")
    ] = 4,
    monthly: Annotated[int, typer.Option("--monthly", min=0, help="... of each of the N newest months.")] = 6,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be deleted.")] = False,
    env_file: EnvFile = ENV_FILE,
) -> None:
    """Delete the backups the retention policy does not keep; the newest verified one always stays."""
    settings = load_settings_or_exit(env_file)
    with user_errors():
        policy = RetentionPolicy(daily=daily, weekly=weekly, monthly=monthly)
        listed = store.list_backups(settings.backup_dir)
        plan = plan_retention(listed, policy, now=datetime.datetime.now(datetime.UTC))
    for kept in plan.keep:
        typer.echo(f"keep   {kept.id}  ({', '.join(plan.reasons[kept.id])})")
    for gone in plan.delete:
        typer.echo(f"{'would delete' if dry_run else 'delete'} {gone.id}")
        if not dry_run:
            store.delete_backup(settings.backup_dir, gone.id)
    verb = "would delete" if dry_run else "deleted"
    typer.echo(f"{len(plan.keep)} kept ({policy}), {len(plan.delete)} {verb}.")


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def _age(age: datetime.timedelta) -> str:
    seconds = max(0, int(age.total_seconds()))
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"
