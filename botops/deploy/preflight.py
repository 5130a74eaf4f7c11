"""The handbook's pre-deployment checklist as checks: each passes, warns or fails, says why and the fix.

:func:`run_preflight` runs them in the checklist's order (:data:`CHECK_NAMES`) and returns a
:class:`PreflightReport` with the :class:`RollbackPlan`: the commit, schema revision and backup a
rollback returns to. Every check stands alone: one that fails, or raises, never stops the others; an
unexpected exception becomes a failed check with its reason. Every detail and fix passes through the
settings' :class:`~botops.redaction.Redactor`, since test output and driver errors may quote a secret.
The checks themselves are in :mod:`botops.deploy.checks`.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from pathlib import Path

from botops.deploy.checks import CHECKS, Check, CheckContext, Outcome, RollbackPlan, Status
from botops.errors import BotopsError
from botops.redaction import Redactor
from botops.settings import Settings

__all__ = [
    "CHECK_NAMES",
    "DEFAULT_MAX_BACKUP_AGE",
    "DEFAULT_TEST_TIMEOUT",
    "Check",
    "PreflightReport",
    "RollbackPlan",
    "Status",
    "run_preflight",
]

log = logging.getLogger(__name__)

#: Every check, in the handbook's order; the names :attr:`Check.name` takes and ``only`` accepts.
CHECK_NAMES: tuple[str, ...] = tuple(name for name, _ in CHECKS)

DEFAULT_MAX_BACKUP_AGE = datetime.timedelta(hours=24)
#: Seconds DEPLOY_TEST_COMMAND may run before it is stopped and the check fails.
DEFAULT_TEST_TIMEOUT = 30 * 60.0


@dataclass(frozen=True)
class PreflightReport:
    """Every check that ran, in the handbook's order, and the rollback plan."""

    checks: tuple[Check, ...]
    plan: RollbackPlan

    @property
    def failed(self) -> tuple[Check, ...]:
        """The failed checks; empty (false) when the deploy may go ahead."""
        return tuple(check for check in self.checks if check.status == "fail")

    @property
    def warnings(self) -> tuple[Check, ...]:
        return tuple(check for check in self.checks if check.status == "warn")

    def check(self, name: str) -> Check:
        """Return the check called ``name``.

        Raises:
            KeyError: no check of that name ran.
        """
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)


async def run_preflight(
    settings: Settings,
    *,
    env_file: Path,
    run_tests: bool = True,
    max_backup_age: datetime.timedelta = DEFAULT_MAX_BACKUP_AGE,
    test_timeout: float = DEFAULT_TEST_TIMEOUT,
    only: Collection[str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> PreflightReport:
    """Run the pre-deployment checks (``only`` these names, when given) and return their report.

    ``env_file`` is the file the settings were read from. The tests run DEPLOY_TEST_COMMAND in the
    working directory unless ``run_tests`` is false (a warning); ``progress`` is called with each
    check's name before it runs. The rollback plan is worked out whatever ``only`` says.

    Raises:
        ValueError: ``only`` names a check that does not exist.
    """
    unknown = set(only or ()) - set(CHECK_NAMES)
    if unknown:
        raise ValueError(f"no such preflight checks: {', '.join(sorted(unknown))} (see CHECK_NAMES)")
    context = CheckContext(settings, env_file, run_tests, max_backup_age, test_timeout)
    redactor = Redactor(settings.secret_values())
    checks: list[Check] = []
    try:
        for name, function in CHECKS:
            if only is not None and name not in only:
                continue
            if progress is not None:
                progress(name)
            checks.append(await _guarded(name, function, context, redactor))
        plan = await context.rollback_plan()
    finally:
        await context.close()
    report = PreflightReport(tuple(checks), plan)
    log.info(
        "Preflight: %d passed, %d warnings, %d failed%s; rollback plan: %s",
        len(checks) - len(report.failed) - len(report.warnings),
        len(report.warnings),
        len(report.failed),
        f" ({', '.join(c.name for c in report.failed)})" if report.failed else "",
        plan,
    )
    return report


async def _guarded(
    name: str,
    function: Callable[[CheckContext], Awaitable[Outcome]],
    context: CheckContext,
    redactor: Redactor,
) -> Check:
    """Run one check; whatever it raises becomes its failure, so the next check still runs."""
    try:
        status, detail, fix = await function(context)
    except BotopsError as error:  # their messages name the problem and the fix already
        status, detail, fix = "fail", str(error), None
    except Exception as error:
        log.warning("Preflight check %r raised", name, exc_info=True)
        status = "fail"
        detail = f"the check itself failed: {type(error).__name__}: {error}"
        fix = "see the log (botops.log in LOG_DIR) for the traceback"
    if status != "pass":
        log.info("Preflight check %r: %s: %s", name, status, redactor(detail))
    return Check(name, status, redactor(detail), redactor(fix) if fix is not None else None)
