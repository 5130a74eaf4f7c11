"""The handoff message and the deployment notes: the handbook's format, in English or German, no secrets."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest

from botops.deploy.plan import plan_deploy
from botops.deploy.process import ReadyState
from botops.deploy.report import append_feature_notes, feature_notes, handoff
from botops.deploy.run import DeployOutcome
from botops.settings import Settings, load_settings

DSN = "https://0123456789abcdef0123456789abcdef@o1.ingest.sentry.io/42"


def _settings(**overrides: object) -> Settings:
    return load_settings(None, sentry_dsn=DSN, **overrides)


def _outcome(**changes: object) -> DeployOutcome:
    outcome = DeployOutcome(
        kind="deploy",
        started_at=datetime.datetime(2026, 11, 28, 19, 0, tzinfo=datetime.UTC),
        actor="Ops Person",
        from_commit="a" * 40,
        to_commit="b" * 40,
        plan=plan_deploy(["botops/db/migrations/versions/0005_x.py"], package="cogs"),
        from_revision="0004",
        to_revision="0005",
        steps=["restarted with supervisorctl restart botops", "0 errors in a 30 s watch"],
        ready=ReadyState(True, "b" * 12, {}, 2.5),
        feature="DEADLOCK-12",
        commits=["bbbbbbb a marker table"],
    )
    for name, value in changes.items():
        setattr(outcome, name, value)
    return outcome


def test_a_deploy_that_succeeded_hands_off_as_the_handbook_does() -> None:
    text = handoff(_outcome(), _settings())

    assert text.startswith("DEPLOYMENT FINISHED for DEADLOCK-12:")
    assert "✅ Database migrations run (0004 -> 0005)" in text
    assert "✅ Bot restarted" in text
    assert "✅ Health check passed (ready with bbbbbbbbbbbb after 2.5 s)" in text
    assert "Status: ✅ Done" in text


def test_the_handoff_speaks_german_when_told() -> None:
    text = handoff(_outcome(), _settings(deploy_language="de"))

    assert text.startswith("DEPLOYMENT FERTIG für DEADLOCK-12:")
    assert "✅ Database Migrations ausgeführt (0004 -> 0005)" in text
    assert "Feature ist jetzt LIVE! 🚀" in text


def test_a_rolled_back_deploy_says_what_failed_and_what_was_undone() -> None:
    outcome = _outcome(
        result="rolled-back",
        problem="the bot was not ready with bbbbbbbbbbbb within 120 s",
        steps=["schema downgraded to 0004", "code back at aaaaaaaaaaaa", "previous version ready"],
    )

    text = handoff(outcome, _settings(deploy_language="de"))

    assert text.startswith("⚠️ DEPLOYMENT FAILED für DEADLOCK-12:")
    assert "❌ the bot was not ready" in text
    assert "Rollback durchgeführt:\n- schema downgraded to 0004\n- code back at aaaaaaaaaaaa" in text
    assert "Bot ist wieder im vorherigen Zustand (aaaaaaaaaaaa)." in text


def test_the_notes_follow_the_handbooks_sections_and_never_hold_the_dsn(tmp_path: Path) -> None:
    settings = _settings(backup_dir=tmp_path / "backups")

    notes = feature_notes(_outcome(), settings)

    for heading in (
        "## Deployment",
        "### Deployment Steps",
        "### Monitoring",
        "### Known Issues",
        "### Rollback Plan",
    ):
        assert heading in notes
    assert "**Engineer:** Ops Person" in notes
    assert "2. Database Migrations: 0004 -> 0005" in notes
    assert "- Sentry: configured" in notes
    assert "- Git Commit: aaaaaaaaaaaa" in notes
    assert DSN not in notes
    assert "0123456789abcdef" not in notes


def test_notes_are_appended_under_one_title_per_feature(tmp_path: Path) -> None:
    settings = _settings()

    append_feature_notes(_outcome(), settings, tmp_path)
    path = append_feature_notes(_outcome(), settings, tmp_path)

    text = path.read_text(encoding="utf-8")
    assert path == tmp_path / "features" / "DEADLOCK-12.md"
    assert text.count("# DEADLOCK-12\n") == 1
    assert text.count("## Deployment\n") == 2


@pytest.mark.parametrize("feature", ["../../etc/passwd", "a/b", "", ".hidden"])
def test_a_feature_that_is_not_a_plain_key_is_refused(tmp_path: Path, feature: str) -> None:
    with pytest.raises(ValueError, match="not a feature key"):
        append_feature_notes(_outcome(feature=feature), _settings(), tmp_path)
    assert not (tmp_path / "features").exists() or not any((tmp_path / "features").iterdir())
