"""``botops deploy`` and ``botops rollback``: the handbook's deployment, done and undone by one command.

A deploy: the checkout must be clean and the new commit a fast-forward; the diff decides the mode
(:mod:`botops.deploy.plan`); a verified pre-deploy backup is taken (the running bot flushes first) and the
schema revision recorded. Then the checkout moves, dependencies are installed when they changed, the
schema is upgraded (by the new code, in a subprocess), and the bot is hot-reloaded through its control
route or restarted through its process manager. The deploy passes when ``/readyz`` reports the new
commit within DEPLOY_READY_TIMEOUT and the errors stay under DEPLOY_MAX_ERRORS for DEPLOY_WATCH_SECONDS.

Anything failing after the checkout moved rolls back: the schema goes down to the recorded revision (with
the new code, which knows its migrations; when that fails, the pre-deploy backup is restored instead),
the checkout goes back, dependencies are installed again when they had changed, the bot is reloaded or
restarted, and its readiness with the previous commit is awaited. Every deploy and rollback is written to
the ledger (:mod:`botops.deploy.ledger`).
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from botops.backup.manifest import Manifest
from botops.backup.restore import restore_backup
from botops.backup.store import create_backup, verify_backup
from botops.bot.reloading import ExtensionChanges
from botops.db.engine import create_engine
from botops.db.migrate import current_revision
from botops.deploy.git import Checkout
from botops.deploy.ledger import Deployment, Result, find_deployment, last_deployments, record_deployment
from botops.deploy.plan import DeployPlan, plan_deploy
from botops.deploy.preflight import CHECK_NAMES, run_preflight
from botops.deploy.process import (
    ReadyState,
    Restarter,
    error_count,
    reload_extensions,
    restarter,
    wait_until_ready,
)
from botops.errors import BotopsError, DeployFailed, DeployRefused
from botops.instance import ControlFailed, RunningInstance, find_running_instance, flush_running_bot
from botops.redaction import Redactor
from botops.settings import Settings

__all__ = ["DeployOutcome", "deploy", "rollback"]

log = logging.getLogger(__name__)

#: Tracked files a deploy may find changed: the deployment notes it writes itself.
NOTES_FOLDER = "features/"
_SUBPROCESS_TIMEOUT = 1800.0
#: Seconds a rolled-back version has at least to be ready again.
ROLLBACK_READY_TIMEOUT = 120.0

Say = Callable[[str], None]


@dataclass
class DeployOutcome:
    """What a deploy or rollback did, for the report, the notes and the ledger."""

    kind: str
    started_at: datetime.datetime
    actor: str
    from_commit: str
    to_commit: str
    plan: DeployPlan | None = None
    backup: Manifest | None = None
    from_revision: str | None = None
    to_revision: str | None = None
    upgraded_to: str | None = None  # the revision the deploy's migrations reached, even if undone later
    steps: list[str] = field(default_factory=list)
    result: Result = "succeeded"
    problem: str | None = None
    ready: ReadyState | None = None
    feature: str | None = None
    ledger_id: int | None = None
    commits: list[str] = field(default_factory=list)

    @property
    def mode(self) -> str:
        return self.plan.mode if self.plan is not None else "restart"


@dataclass
class _Context:
    settings: Settings
    checkout: Checkout
    env_file: Path
    say: Say
    redact: Redactor


async def deploy(
    settings: Settings,
    *,
    checkout: Path,
    env_file: Path,
    ref: str = "origin/main",
    feature: str | None = None,
    dry_run: bool = False,
    run_tests: bool = True,
    confirm: Callable[[DeployPlan], bool] | None = None,
    say: Say = print,
) -> DeployOutcome:
    """Deploy ``ref`` to the bot running from ``checkout``; return what happened.

    The preflight checks run first (all but the backup, which the deploy takes itself); a failed one
    refuses the deploy.

    Raises:
        DeployRefused: a check before any change failed (preflight, dirty checkout, not a fast-forward,
            no way to restart, the bot not running for a hot reload, the backup failed); nothing was changed.
        DeployFailed: the new version failed; it was rolled back (``rolled_back``) or the rollback failed.
    """
    context = _Context(settings, Checkout(checkout), env_file, say, Redactor(settings.secret_values()))
    git = context.checkout
    await _preflight(context, run_tests=run_tests)
    dirty = await asyncio.to_thread(git.dirty_files, ignore=(NOTES_FOLDER,))
    if dirty:
        raise DeployRefused(
            f"the checkout has changes not committed ({', '.join(dirty[:5])}): commit or discard them first"
        )
    await asyncio.to_thread(git.fetch, ref)
    old = await asyncio.to_thread(git.head)
    new = await asyncio.to_thread(git.resolve, ref)
    outcome = DeployOutcome("deploy", _now(), await asyncio.to_thread(git.actor), old, new, feature=feature)
    if new == old:
        outcome.plan = plan_deploy([], package=settings.extensions_package)
        say(f"Nothing to deploy: the checkout is at {ref} ({new[:12]}) already.")
        return outcome
    if not await asyncio.to_thread(git.is_ancestor, old, new):
        raise DeployRefused(
            f"{ref} ({new[:12]}) is not ahead of the checkout ({old[:12]}): a deploy only fast-forwards; "
            "use `botops rollback` to go back"
        )
    changes = await asyncio.to_thread(git.changes, old, new)
    plan = plan_deploy(
        [path for _, path in changes],
        package=settings.extensions_package,
        added=[path for status, path in changes if status == "A"],
        deleted=[path for status, path in changes if status == "D"],
    )
    outcome.plan = plan
    outcome.commits = await asyncio.to_thread(git.log, old, new)
    _show_plan(context, outcome)
    restart = restarter(settings)
    instance = await asyncio.to_thread(find_running_instance, settings)
    if plan.mode == "restart" and restart is None:
        raise DeployRefused(
            "this change needs a restart and DEPLOY_RESTART is not set: set it to systemd:<unit>, "
            "supervisor:<program> or command:<command line>"
        )
    if plan.mode == "reload" and (instance is None or instance.control_url is None):
        raise DeployRefused(
            "this change is a hot reload, but no bot with these settings runs (or its HTTP server is off): "
            "start it, or deploy while it is stopped with a restart"
        )
    if dry_run:
        say("Dry run: nothing was changed.")
        return outcome
    if confirm is not None and not confirm(plan):
        raise DeployRefused("deploy cancelled; nothing was changed")

    engine = create_engine(settings)
    try:
        outcome.from_revision = await current_revision(engine)
        await _backup(context, outcome)
        try:
            await _apply(context, outcome, restart, instance, old=old, new=new)
        except BotopsError as error:
            outcome.problem = context.redact(str(error))
            await _roll_back(context, outcome, restart, old=old, new=new)
        outcome.to_revision = await current_revision(engine)
        outcome.ledger_id = await _record(engine, outcome)
    finally:
        await engine.dispose()
    if outcome.result != "succeeded":
        raise DeployFailed(
            outcome.problem or "unknown", rolled_back=outcome.result == "rolled-back", outcome=outcome
        )
    return outcome


async def rollback(
    settings: Settings, *, checkout: Path, env_file: Path, to: int | None = None, say: Say = print
) -> DeployOutcome:
    """Go back to the commit and schema before the last succeeded deploy (or deploy ``to``).

    Raises:
        DeployRefused: there is nothing to roll back, or no way to restart; nothing was changed.
        DeployFailed: the rollback itself failed.
    """
    context = _Context(settings, Checkout(checkout), env_file, say, Redactor(settings.secret_values()))
    git = context.checkout
    engine = create_engine(settings)
    try:
        if to is None:
            entries = [
                entry
                for entry in await last_deployments(engine, limit=50)
                if entry.kind == "deploy" and entry.result == "succeeded"
            ]
            target = entries[0] if entries else None
        else:
            target = await find_deployment(engine, to)
        if target is None:
            raise DeployRefused("there is no succeeded deploy to roll back: `botops deployments` lists them")
        now = await asyncio.to_thread(git.head)
        outcome = DeployOutcome(
            "rollback", _now(), await asyncio.to_thread(git.actor), now, target.from_commit
        )
        outcome.from_revision = await current_revision(engine)
        changes = await asyncio.to_thread(git.changes, target.from_commit, now)
        outcome.plan = plan_deploy(
            [path for _, path in changes],
            package=settings.extensions_package,
            added=[path for status, path in changes if status == "A"],
            deleted=[path for status, path in changes if status == "D"],
        )
        restart = restarter(settings)
        if outcome.plan.mode == "restart" and restart is None:
            raise DeployRefused("rolling back needs a restart and DEPLOY_RESTART is not set")
        say(f"Rolling back from {now[:12]} to {target.from_commit[:12]} (deploy #{target.id}).")
        try:
            await _undo(
                context,
                outcome,
                restart,
                old=target.from_commit,
                new=now,
                revision=target.from_revision,
                backup_id=target.backup_id,
            )
        except BotopsError as error:
            outcome.result = "failed"
            outcome.problem = context.redact(str(error))
        outcome.to_revision = await current_revision(engine)
        outcome.ledger_id = await _record(engine, outcome)
    finally:
        await engine.dispose()
    if outcome.result != "succeeded":
        raise DeployFailed(
            outcome.problem or "unknown", rolled_back=False, rollback_problem=outcome.problem, outcome=outcome
        )
    return outcome


# -- the steps ----------------------------------------------------------------------------------------------


async def _preflight(context: _Context, *, run_tests: bool) -> None:
    """Run the preflight checks but the backup one; say what did not pass; refuse on a failure.

    Raises:
        DeployRefused: a check failed.
    """
    only = [name for name in CHECK_NAMES if name not in ("backup", "rollback plan")]
    report = await run_preflight(context.settings, env_file=context.env_file, run_tests=run_tests, only=only)
    for check in report.checks:
        if check.status != "pass":
            context.say(f"preflight {check.status}: {check.name}: {check.detail}")
    if report.failed:
        first = report.failed[0]
        fix = f" ({first.fix})" if first.fix else ""
        raise DeployRefused(
            f"preflight failed ({', '.join(check.name for check in report.failed)}): {first.detail}{fix}; "
            "`botops preflight` shows every check"
        )
    context.say(f"Preflight passed ({len(report.checks)} checks, {len(report.warnings)} warnings).")


def _show_plan(context: _Context, outcome: DeployOutcome) -> None:
    plan = outcome.plan
    assert plan is not None
    say = context.say
    count = len(outcome.commits)
    commits = f"{count} commit{'s' if count != 1 else ''}"
    say(f"Deploying {outcome.from_commit[:12]} -> {outcome.to_commit[:12]} ({commits}):")
    for line in outcome.commits[:20]:
        say(f"  {line}")
    say(f"Mode: {plan.mode} ({'; '.join(plan.reasons)})")
    if plan.mode == "reload":
        for name in plan.extensions:
            say(f"  extension {name}")


async def _backup(context: _Context, outcome: DeployOutcome) -> None:
    """Take and verify the pre-deploy backup (the running bot flushes first).

    Raises:
        DeployRefused: the backup failed; nothing was changed.
    """
    settings = context.settings
    try:
        await flush_running_bot(settings)
        manifest = await create_backup(settings, reason="pre-deploy", backup_dir=settings.backup_dir)
        await verify_backup(settings.backup_dir, manifest.id)
    except BotopsError as error:
        raise DeployRefused(f"the pre-deploy backup failed, so nothing was deployed: {error}") from error
    outcome.backup = manifest
    outcome.steps.append(f"backup {manifest.id} (verified)")
    context.say(f"Pre-deploy backup {manifest.id} taken and verified.")


async def _apply(
    context: _Context,
    outcome: DeployOutcome,
    restart: Restarter | None,
    instance: RunningInstance | None,
    *,
    old: str,
    new: str,
) -> None:
    plan = outcome.plan
    assert plan is not None
    git, say, settings = context.checkout, context.say, context.settings
    await asyncio.to_thread(git.move_to, new)
    outcome.steps.append(f"code at {new[:12]}")
    say(f"Checkout at {new[:12]}.")
    if plan.dependencies:
        await _install(context)
        outcome.steps.append("dependencies installed")
    if plan.migrations:
        await _botops(context, "db", "upgrade")
        engine = create_engine(settings)
        try:
            outcome.upgraded_to = await current_revision(engine)
        finally:
            await engine.dispose()
        outcome.steps.append(f"schema upgraded to {outcome.upgraded_to}")
        say(f"Schema upgraded to {outcome.upgraded_to}.")
    if plan.mode == "none":
        return
    old_pid = instance.pid if instance is not None else None
    if plan.mode == "reload":
        assert instance is not None
        answer = await _reload(instance, _changes(plan, settings))
        if not answer.get("ok"):
            raise DeployRefused(f"the hot reload failed at {answer.get('failed')}: {answer.get('cause')}")
        outcome.steps.append(f"hot reload of {', '.join(plan.extensions) or 'the helpers'}")
        say("Hot reload done.")
        old_pid = None  # the same process must report the new commit
    else:
        assert restart is not None
        await restart.restart()
        outcome.steps.append(f"restarted with {restart.description}")
        say(f"Restarted with {restart.description}.")
    await _gate(context, outcome, new, old_pid=old_pid)


async def _gate(context: _Context, outcome: DeployOutcome, commit: str, *, old_pid: int | None) -> None:
    """Wait for readiness with ``commit``, then watch the errors.

    Raises:
        DeployRefused: not ready in time, or too many errors in the watch window.
    """
    settings, say = context.settings, context.say
    ready = await wait_until_ready(settings, commit, timeout=settings.deploy_ready_timeout, old_pid=old_pid)
    outcome.ready = ready
    if not ready.ready:
        raise DeployRefused(
            f"the bot was not ready with {commit[:12]} within {settings.deploy_ready_timeout:.0f} s: "
            f"{ready.describe()}"
        )
    say(f"Ready with {commit[:12]} after {ready.seconds:.1f} s.")
    outcome.steps.append(f"ready after {ready.seconds:.1f} s")
    if settings.deploy_watch_seconds <= 0:
        return
    before = await error_count(settings) or 0
    await asyncio.sleep(settings.deploy_watch_seconds)
    after = await error_count(settings)
    if after is None:
        raise DeployRefused(
            f"the bot stopped answering during the {settings.deploy_watch_seconds:.0f} s watch"
        )
    errors = max(0, after - before)
    if errors > settings.deploy_max_errors:
        raise DeployRefused(
            f"{errors} errors in the {settings.deploy_watch_seconds:.0f} s after the deploy "
            f"(DEPLOY_MAX_ERRORS={settings.deploy_max_errors})"
        )
    outcome.steps.append(f"{errors} errors in a {settings.deploy_watch_seconds:.0f} s watch")


async def _roll_back(
    context: _Context, outcome: DeployOutcome, restart: Restarter | None, *, old: str, new: str
) -> None:
    context.say(f"Deploy failed: {outcome.problem}. Rolling back to {old[:12]}.")
    try:
        await _undo(
            context,
            outcome,
            restart,
            old=old,
            new=new,
            revision=outcome.from_revision,
            backup_id=outcome.backup.id if outcome.backup else None,
        )
    except BotopsError as error:
        outcome.result = "failed"
        outcome.problem = f"{outcome.problem}; the rollback failed too: {context.redact(str(error))}"
        log.error("deploy: the rollback failed: %s", error)
        return
    outcome.result = "rolled-back"


async def _undo(
    context: _Context,
    outcome: DeployOutcome,
    restart: Restarter | None,
    *,
    old: str,
    new: str,
    revision: str | None,
    backup_id: str | None,
) -> None:
    """Bring ``old`` back from ``new``: schema, code, dependencies, then reload or restart and readiness."""
    git, say, settings = context.checkout, context.say, context.settings
    plan = outcome.plan
    assert plan is not None
    at = await asyncio.to_thread(git.head)
    restored = False
    engine = create_engine(settings)
    try:
        now_revision = await current_revision(engine)
    finally:
        await engine.dispose()
    if now_revision != revision:
        try:
            # The code on disk now (the new one) knows the migrations it applied: it undoes them.
            await _botops(context, "db", "downgrade", revision or "base")
            outcome.steps.append(f"schema downgraded to {revision}")
            say(f"Schema downgraded to {revision}.")
        except BotopsError as error:
            if backup_id is None:
                raise
            say(f"The downgrade failed ({error}); restoring the pre-deploy backup {backup_id}.")
            await restore_backup(settings, backup_id, backup_dir=settings.backup_dir, stop_bot=True)
            outcome.steps.append(f"pre-deploy backup {backup_id} restored")
            restored = True
    if at != old:
        await asyncio.to_thread(git.move_to, old)
        outcome.steps.append(f"code back at {old[:12]}")
        say(f"Checkout back at {old[:12]}.")
    if plan.dependencies:
        await _install(context)
    instance = await asyncio.to_thread(find_running_instance, settings)
    if plan.mode == "reload" and not restored and instance is not None:
        answer = await _reload(instance, _changes(plan, settings, undo=True))
        if not answer.get("ok"):
            raise DeployRefused(
                f"reloading the previous code failed at {answer.get('failed')}: {answer.get('cause')}"
            )
        outcome.steps.append("previous extensions reloaded")
        old_pid = None
    elif plan.mode == "none" and not restored:
        return
    else:
        if restart is None:
            raise DeployRefused("the previous version needs a restart and DEPLOY_RESTART is not set")
        await restart.restart()
        outcome.steps.append(f"restarted with {restart.description}")
        old_pid = None
    # The previous version ran before: give it at least ROLLBACK_READY_TIMEOUT, since giving up here
    # leaves no version running.
    timeout = max(settings.deploy_ready_timeout, ROLLBACK_READY_TIMEOUT)
    ready = await wait_until_ready(settings, old, timeout=timeout, old_pid=old_pid)
    if not ready.ready:
        raise DeployRefused(
            f"the previous version was not ready again within {timeout:.0f} s: {ready.describe()}"
        )
    say(f"The previous version ({old[:12]}) is ready again.")
    outcome.steps.append("previous version ready")


def _changes(plan: DeployPlan, settings: Settings, *, undo: bool = False) -> ExtensionChanges:
    """Return the plan's extension changes; undone, what was loaded goes and what was unloaded comes back."""
    return ExtensionChanges(
        reload=plan.reload,
        load=plan.unload if undo else plan.load,
        unload=plan.load if undo else plan.unload,
        forget=plan.forget,
        reload_all=plan.reload_all,
        package=settings.extensions_package,
    )


async def _reload(instance: RunningInstance, changes: ExtensionChanges) -> dict[str, object]:
    try:
        return await reload_extensions(instance, changes)
    except ControlFailed as error:
        raise DeployRefused(f"the bot did not take the reload: {error}") from error


async def _botops(context: _Context, *arguments: str) -> None:
    """Run ``botops <arguments>`` from the checkout, so the code on disk (not this process's) does it.

    Raises:
        DeployRefused: it failed; its last line of output is in the message.
    """
    argv = [sys.executable, "-m", "botops", *arguments, "--env-file", str(context.env_file.absolute())]
    await _subprocess(context, argv, f"botops {' '.join(arguments)}")


async def _install(context: _Context) -> None:
    checkout = context.checkout.path
    if (checkout / "requirements.txt").is_file():
        argv = [sys.executable, "-m", "pip", "install", "--quiet", "-r", "requirements.txt"]
    else:
        argv = [sys.executable, "-m", "pip", "install", "--quiet", "-e", "."]
    await _subprocess(context, argv, "installing the dependencies")
    context.say("Dependencies installed.")


async def _subprocess(context: _Context, argv: list[str], what: str) -> None:
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=context.checkout.path,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), _SUBPROCESS_TIMEOUT)
    except (OSError, TimeoutError) as error:
        raise DeployRefused(f"{what} failed: {error}") from error
    if process.returncode != 0:
        last = (output.decode(errors="replace").strip().splitlines() or ["no output"])[-1]
        raise DeployRefused(f"{what} failed (exit {process.returncode}): {context.redact(last)}")


async def _record(engine: AsyncEngine, outcome: DeployOutcome) -> int | None:
    entry = Deployment(
        kind="deploy" if outcome.kind == "deploy" else "rollback",
        started_at=outcome.started_at,
        finished_at=_now(),
        actor=outcome.actor,
        from_commit=outcome.from_commit,
        to_commit=outcome.to_commit,
        mode=outcome.mode,
        from_revision=outcome.from_revision,
        to_revision=outcome.to_revision,
        backup_id=outcome.backup.id if outcome.backup else None,
        result=outcome.result,
        feature=outcome.feature,
        detail=outcome.problem,
    )
    try:
        return await record_deployment(engine, entry)
    except Exception as error:  # the deploy happened; only its record is missing, and the log says so
        log.error("deploy: could not write the ledger entry: %s", error)
        return None


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)
