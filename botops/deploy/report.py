"""The handbook's handoff message after a deploy and its deployment notes in ``features/<FEATURE>.md``.

Both say what was done, never a secret: commits, revisions, backup ids, the restart method and whether
Sentry is configured (not its DSN).
"""

from __future__ import annotations

import re
from pathlib import Path

from botops.backup.store import data_path
from botops.deploy.run import DeployOutcome
from botops.settings import Settings

__all__ = ["FEATURE_RE", "append_feature_notes", "feature_notes", "handoff"]

#: A feature key such as ``DEADLOCK-12``: it names a file, so nothing that could leave ``features/``.
FEATURE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

_TEXTS = {
    "en": {
        "done": "DEPLOYMENT FINISHED for {feature}:",
        "failed": "⚠️ DEPLOYMENT FAILED for {feature}:",
        "code": "Code deployed ({old} -> {new}, {commits} commit(s))",
        "migrations": "Database migrations run ({before} -> {after})",
        "no_migrations": "No database migrations",
        "reload": "Bot hot-reloaded ({extensions})",
        "restart": "Bot restarted",
        "none": "Bot unchanged (nothing it runs changed)",
        "health": "Health check passed (ready with {commit} after {seconds:.1f} s)",
        "monitoring": "Monitoring active ({watch})",
        "live": "The change is LIVE! 🚀",
        "status": "Status: ✅ Done",
        "rolled_back": "Rollback done:",
        "rollback_steps": "The bot is back in its previous state ({old}).",
        "not_rolled_back": "The rollback failed as well: the bot needs a hand. See logs/botops.log.",
        "next": "Next steps:\n- Fix the bug\n- Test again (botops preflight)\n- Deploy again",
        "links": "Monitoring:\n- Logs: logs/botops.log (botops logs --level ERROR)\n- Health check: /health "
        "(admin only), botops health\n- Undo: botops rollback",
    },
    "de": {
        "done": "DEPLOYMENT FERTIG für {feature}:",
        "failed": "⚠️ DEPLOYMENT FAILED für {feature}:",
        "code": "Code deployed ({old} -> {new}, {commits} Commits)",
        "migrations": "Database Migrations ausgeführt ({before} -> {after})",
        "no_migrations": "Keine Database Migrations",
        "reload": "Bot hot-reloaded ({extensions})",
        "restart": "Bot restarted",
        "none": "Bot unverändert (nichts, was er ausführt, hat sich geändert)",
        "health": "Health Check passed (bereit mit {commit} nach {seconds:.1f} s)",
        "monitoring": "Monitoring aktiv ({watch})",
        "live": "Feature ist jetzt LIVE! 🚀",
        "status": "Status: ✅ Done",
        "rolled_back": "Rollback durchgeführt:",
        "rollback_steps": "Bot ist wieder im vorherigen Zustand ({old}).",
        "not_rolled_back": "Auch der Rollback ist fehlgeschlagen: der Bot braucht Hilfe "
        "(siehe logs/botops.log).",
        "next": "Nächste Schritte:\n- Bug fixen\n- Erneut testen (botops preflight)\n- Erneutes Deployment",
        "links": "Monitoring:\n- Logs: logs/botops.log (botops logs --level ERROR)\n- Health Check: /health "
        "(Admin-only), botops health\n- Rückgängig: botops rollback",
    },
}


def handoff(outcome: DeployOutcome, settings: Settings) -> str:
    """Return the handoff message for ``outcome`` in DEPLOY_LANGUAGE."""
    words = _TEXTS[settings.deploy_language]
    feature = outcome.feature or outcome.to_commit[:12]
    old, new = outcome.from_commit[:12], outcome.to_commit[:12]
    if outcome.result != "succeeded":
        lines = [words["failed"].format(feature=feature), "", f"❌ {outcome.problem}", ""]
        if outcome.result == "rolled-back":
            lines.append(words["rolled_back"])
            lines.extend(f"- {step}" for step in _rollback_steps(outcome))
            lines += ["", words["rollback_steps"].format(old=old)]
        else:
            lines.append(words["not_rolled_back"])
        return "\n".join([*lines, "", words["next"]])
    lines = [words["done"].format(feature=feature), ""]
    lines.append("✅ " + words["code"].format(old=old, new=new, commits=len(outcome.commits)))
    if outcome.from_revision != outcome.to_revision:
        lines.append(
            "✅ " + words["migrations"].format(before=outcome.from_revision, after=outcome.to_revision)
        )
    else:
        lines.append("✅ " + words["no_migrations"])
    mode = outcome.mode
    if mode == "reload" and outcome.plan is not None:
        lines.append(
            "✅ " + words["reload"].format(extensions=", ".join(outcome.plan.extensions) or "helpers")
        )
    else:
        lines.append("✅ " + words[mode if mode in ("restart", "none") else "restart"])
    if outcome.ready is not None and outcome.ready.ready:
        lines.append("✅ " + words["health"].format(commit=new, seconds=outcome.ready.seconds))
    watch = next((step for step in outcome.steps if step.endswith("watch")), "no watch")
    lines.append("✅ " + words["monitoring"].format(watch=watch))
    return "\n".join([*lines, "", words["live"], "", words["status"], "", words["links"]])


def _rollback_steps(outcome: DeployOutcome) -> list[str]:
    after = False
    steps = []
    for step in outcome.steps:
        if step.startswith(("schema downgraded", "pre-deploy backup", "code back", "previous")):
            after = True
        if after:
            steps.append(step)
    return steps


def feature_notes(outcome: DeployOutcome, settings: Settings) -> str:
    """Return the deployment notes of ``outcome`` in the handbook's format (a Markdown section)."""
    succeeded = outcome.result == "succeeded"
    status = (
        "✅ Deployed" if succeeded else ("❌ Rolled back" if outcome.result == "rolled-back" else "❌ Failed")
    )
    if outcome.from_revision != outcome.to_revision:
        migrations = f"{outcome.from_revision or 'none'} -> {outcome.to_revision}"
    elif outcome.upgraded_to is not None and outcome.upgraded_to != outcome.from_revision:
        migrations = (
            f"{outcome.from_revision} -> {outcome.upgraded_to}, downgraded again to {outcome.to_revision}"
        )
    else:
        migrations = "none"
    if outcome.mode == "reload" and outcome.plan is not None:
        method = f"hot reload ({', '.join(outcome.plan.extensions) or 'helpers'})"
    else:
        restarts = [
            step.removeprefix("restarted with ") for step in outcome.steps if step.startswith("restarted")
        ]
        method = restarts[0] if restarts else outcome.mode
    health = (
        f"✅ Passed (ready after {outcome.ready.seconds:.1f} s)"
        if outcome.ready is not None and outcome.ready.ready and succeeded
        else "❌ Failed"
    )
    backup = (
        str(data_path(settings.backup_dir, outcome.backup))
        if outcome.backup is not None
        else "none was taken"
    )
    return "\n".join(
        [
            "",
            "---",
            "",
            "## Deployment",
            "",
            f"**Date:** {outcome.started_at:%Y-%m-%d %H:%M} UTC  ",
            f"**Engineer:** {outcome.actor}  ",
            f"**Status:** {status}",
            "",
            "### Deployment Steps",
            f"1. Code pulled from Git: {outcome.from_commit[:12]} -> {outcome.to_commit[:12]}",
            f"2. Database Migrations: {migrations}",
            f"3. Bot restarted via: {method}",
            f"4. Health Check: {health}",
            "",
            "### Production URLs",
            "- Bot: online on Discord" if succeeded else "- Bot: back on the previous version",
            f"- Logs: {settings.log_dir}/botops.log",
            "",
            "### Monitoring",
            f"- Sentry: {'configured' if settings.sentry_dsn is not None else 'not configured (SENTRY_DSN)'}",
            "- Health Check: `/health` (Admin-only), `botops health`",
            "",
            "### Known Issues",
            f"- {outcome.problem}" if outcome.problem else "- none known",
            "",
            "### Rollback Plan",
            f"- Database Backup: {backup}",
            f"- Git Commit: {outcome.from_commit[:12]}",
            "",
        ]
    )


def append_feature_notes(outcome: DeployOutcome, settings: Settings, checkout: Path) -> Path:
    """Append the notes to ``features/<FEATURE>.md`` in ``checkout`` (created if missing); return its path.

    Raises:
        ValueError: the outcome has no feature, or one that is not a plain key.
        OSError: the file cannot be written.
    """
    feature = outcome.feature
    if feature is None or not FEATURE_RE.match(feature):
        raise ValueError(f"{feature!r} is not a feature key such as DEADLOCK-12")
    path = checkout / "features" / f"{feature}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        if handle.tell() == 0:
            handle.write(f"# {feature}\n")
        handle.write(feature_notes(outcome, settings))
    return path
