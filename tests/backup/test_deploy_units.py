"""The scheduled-backup definitions in deploy/ call botops commands and options that exist."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from botops.cli import ExitCode, app

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SERVICE = DEPLOY / "systemd" / "botops-backup.service"
TIMER = DEPLOY / "systemd" / "botops-backup.timer"
WINDOWS_TASK = DEPLOY / "windows" / "botops-backup.xml"
DRILL_SERVICE = DEPLOY / "systemd" / "botops-backup-drill.service"
DRILL_TIMER = DEPLOY / "systemd" / "botops-backup-drill.timer"
DRILL_WINDOWS_TASK = DEPLOY / "windows" / "botops-backup-drill.xml"


def botops_arguments(command_line: str) -> list[list[str]]:
    """Return the arguments of every botops call in ``command_line`` (split at ``&&``)."""
    calls = []
    for part in command_line.split("&&"):
        words = shlex.split(part.strip().strip('"'), posix=True)
        for index, word in enumerate(words):
            if re.search(r"botops(\.exe)?$", word.replace("\\", "/")):
                calls.append(words[index + 1 :])
    return calls


def service_calls(service: Path = SERVICE) -> list[list[str]]:
    lines = service.read_text(encoding="utf-8").splitlines()
    return [
        call
        for line in lines
        if line.startswith(("ExecStart=", "ExecStartPost="))
        for call in botops_arguments(line.split("=", 1)[1])
    ]


def windows_calls(task: Path = WINDOWS_TASK) -> list[list[str]]:
    text = task.read_text(encoding="utf-8")
    found = re.search(r"<Arguments>(.*)</Arguments>", text)
    assert found, "the task has no Arguments"
    arguments = found.group(1).replace("&amp;", "&").replace("\\", "/").removeprefix("/c ")
    return botops_arguments(arguments)


@pytest.mark.parametrize(
    ("found", "commands"),
    [
        (service_calls(), [["backup", "create"], ["backup", "prune"]]),
        (windows_calls(), [["backup", "create"], ["backup", "prune"]]),
        (service_calls(DRILL_SERVICE), [["backup", "drill"]]),
        (windows_calls(DRILL_WINDOWS_TASK), [["backup", "drill"]]),
    ],
    ids=["systemd", "windows", "systemd-drill", "windows-drill"],
)
def test_every_scheduled_call_is_a_botops_command_with_options_it_accepts(
    found: list[list[str]], commands: list[list[str]]
) -> None:
    assert [call[:2] for call in found] == commands
    for call in found:
        # --help after the options: typer parses them first, so an unknown option fails here.
        result = CliRunner().invoke(app, [*call, "--help"])
        assert result.exit_code == ExitCode.OK, f"botops {' '.join(call)}: {result.output}"


def test_the_timer_runs_daily_at_three_and_catches_up_after_downtime() -> None:
    timer = TIMER.read_text(encoding="utf-8")

    assert "OnCalendar=*-*-* 03:00:00" in timer
    assert "Persistent=true" in timer


def test_scheduled_backups_verify_themselves_so_pruning_can_delete_old_ones() -> None:
    # Pruning never deletes while no backup has verified: an unverified series would grow forever.
    for found in (service_calls(), windows_calls()):
        assert "--verify" in found[0]


def test_the_drill_runs_weekly_after_the_nightly_backup_and_catches_up() -> None:
    timer = DRILL_TIMER.read_text(encoding="utf-8")

    assert "OnCalendar=Sun *-*-* 04:00:00" in timer
    assert "Persistent=true" in timer
    assert "<DaysOfWeek>" in DRILL_WINDOWS_TASK.read_text(encoding="utf-8")


SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
@pytest.mark.parametrize("expression", ["*-*-* 03:00:00", "Sun *-*-* 04:00:00"])
def test_systemd_reads_the_timers_calendar_expression(expression: str) -> None:
    assert SYSTEMD_ANALYZE is not None
    completed = subprocess.run(  # noqa: S603 - fixed arguments, no shell
        [SYSTEMD_ANALYZE, "calendar", expression], capture_output=True, text=True, check=False
    )

    assert completed.returncode == 0, completed.stderr
