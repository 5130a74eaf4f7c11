"""``botops backup``: make, verify, list, prune, drill and restore backups of the database in BACKUP_DIR."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import threading
from collections.abc import Iterator
from typing import Annotated, TypeVar, cast, get_args

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.progress import Progress as RichProgress
from rich.table import Table
from rich.text import Text

from botops.backup import drill as drilling
from botops.backup import restore as restoring
from botops.backup import store
from botops.backup.manifest import Manifest, Reason
from botops.backup.retention import RetentionPolicy
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
from botops.errors import BackupCorrupt, BackupNotFound
from botops.instance import flush_running_bot
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
    verify_after: Annotated[
        bool,
        typer.Option(
            "--verify", help="Verify the new backup from its file too (marks it verified for pruning)."
        ),
    ] = False,
    env_file: EnvFile = ENV_FILE,
) -> None:
    """Back up the database: flush a running bot, online copy, integrity check, compression, checksum."""
    if reason not in _CHOSEN_REASONS:
        exit_with(
            f"error: --reason must be one of {', '.join(_CHOSEN_REASONS)} (got {reason!r})", ExitCode.USAGE
        )
    chosen = cast(Reason, reason)
    settings = load_settings_or_exit(env_file)

    async def work() -> Manifest:
        await flush_running_bot(settings)  # rows a running bot still batches belong in the backup
        with _progress_bar() as progress:
            manifest = await store.create_backup(
                settings, reason=chosen, backup_dir=settings.backup_dir, progress=progress
            )
        if verify_after:
            with err_console.status(f"Verifying {manifest.id}..."):
                await store.verify_backup(settings.backup_dir, manifest.id)
        return manifest

    manifest = run_logged(settings, "botops backup", work)
    typer.echo(
        f"Backed up to {store.data_path(settings.backup_dir, manifest)} "
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
        age = age_text(now - entry.created_at)
        manifest = entry.manifest
        if manifest is None:
            unreadable = Text(f"unreadable: {entry.problem}", style="red")
            table.add_row(Text(entry.id), age, "-", "-", "-", unreadable)
            continue
        verified = Text(age_text(now - entry.verified_at), style="green") if entry.verified_at else "no"
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
    stop_bot: Annotated[
        bool,
        typer.Option(
            "--stop-bot",
            help="Stop the running bot once the backup verified; start it again yourself afterwards.",
        ),
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
            lambda: restoring.restore_backup(
                settings, backup_id, backup_dir=settings.backup_dir, stop_bot=stop_bot
            ),
        )
    saved = f"; the database before it is backup {result.safety_backup.id}" if result.safety_backup else ""
    typer.echo(f"Restored backup {result.restored.id}{saved}.")
    typer.echo(result.advice())


@app.command()
def drill(
    backup_id: Annotated[
        str | None, typer.Argument(metavar="[ID]", help="The backup to drill; the newest when left out.")
    ] = None,
    env_file: EnvFile = ENV_FILE,
) -> None:
    """Restore a backup (the newest) into a scratch place, verify it, upgrade it, report; run it weekly."""
    settings = load_settings_or_exit(env_file)
    with err_console.status("Drilling a restore..."):
        report = run_logged(
            settings,
            "botops backup drill",
            lambda: drilling.run_drill(settings, backup_dir=settings.backup_dir, backup_id=backup_id),
        )
    manifest = report.backup
    steps = ", ".join(f"{step} {took:.1f} s" for step, took in report.seconds.items())
    schema = (
        f"upgraded {report.revision_before or 'base'} -> {report.revision_after}"
        if report.upgraded
        else f"at {report.revision_after}, the code's head"
    )
    typer.echo(
        f"Drill passed: backup {manifest.id} ({age_text(report.age())} old, {manifest.reason}) restores, "
        f"verifies and holds {sum(report.tables.values())} rows in {len(report.tables)} tables; "
        f"schema {schema}. ({steps})"
    )


@app.command()
def prune(
    daily: Annotated[
        int | None,
        typer.Option(
            "--daily",
            min=0,
            help="Newest backup of each of the N newest days [BACKUP_KEEP_DAILY].",
            show_default=False,
        ),
    ] = None,
    weekly: Annotated[
        int | None,
        typer.Option(
            "--weekly",
            min=0,
            help="... of each of the N newest ISO weeks [BACKUP_KEEP_WEEKLY].",
            show_default=False,
        ),
    ] = None,
    monthly: Annotated[
        int | None,
        typer.Option(
            "--monthly",
            min=0,
            help="... of each of the N newest months [BACKUP_KEEP_MONTHLY].",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be deleted.")] = False,
    env_file: EnvFile = ENV_FILE,
) -> None:
    """Delete the backups the retention policy does not keep; the newest verified one always stays."""
    settings = load_settings_or_exit(env_file)
    with user_errors():
        policy = RetentionPolicy(
            daily=settings.backup_keep_daily if daily is None else daily,
            weekly=settings.backup_keep_weekly if weekly is None else weekly,
            monthly=settings.backup_keep_monthly if monthly is None else monthly,
        )
        plan = store.prune_backups(
            settings.backup_dir, policy, now=datetime.datetime.now(datetime.UTC), dry_run=dry_run
        )
    for kept in plan.keep:
        typer.echo(f"keep   {kept.id}  ({', '.join(plan.reasons[kept.id])})")
    for gone in plan.delete:
        typer.echo(f"{'would delete' if dry_run else 'deleted'} {gone.id}")
    verb = "would delete" if dry_run else "deleted"
    typer.echo(f"{len(plan.keep)} kept ({policy}), {len(plan.delete)} {verb}.")


class _Bar:
    """A rich progress bar that appears only once a step has taken more than a second."""

    DELAY = 1.0

    def __init__(self) -> None:
        self._bar = RichProgress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            console=err_console,
            transient=True,
        )
        self._task: TaskID | None = None
        self._timer = threading.Timer(self.DELAY, self._show)
        self._timer.daemon = True
        self._shown = False
        self._lock = threading.Lock()

    def phase(self, description: str, total: int | None = None) -> None:
        if self._task is not None:
            self._bar.update(self._task, visible=False)
        self._task = self._bar.add_task(description, total=total)

    def advance(self, amount: int) -> None:
        if self._task is not None:
            self._bar.advance(self._task, amount)

    def start(self) -> None:
        self._timer.start()

    def _show(self) -> None:
        with self._lock:
            if not self._shown:
                self._shown = True
                self._bar.start()

    def close(self) -> None:
        self._timer.cancel()
        with self._lock:
            if self._shown:
                self._bar.stop()
            self._shown = True  # a late timer must not start it now


@contextlib.contextmanager
def _progress_bar() -> Iterator[_Bar]:
    bar = _Bar()
    bar.start()
    try:
        yield bar
    finally:
        bar.close()


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover
