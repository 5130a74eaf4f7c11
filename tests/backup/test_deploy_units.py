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


def botops_arguments(command_line: str) -> list[list[str]]:
    """Return the arguments of every botops call in ``command_line`` (split at ``&&``)."""
    calls = []
    for part in command_line.split("&&"):
        words = shlex.split(part.strip().strip('"'), posix=True)
        for index, word in enumerate(words):
            if re.search(r"botops(\.exe)?$", word.replace("\\", "/")):
                calls.append(words[index + 1 :])
    return calls


def service_calls() -> list[list[str]]:
    lines = SERVICE.read_text(encoding="utf-8").splitlines()
    return [
        call
        for line in lines
        if line.startswith(("ExecStart=", "ExecStartPost="))
        for call in botops_arguments(line.split("=", 1)[1])
    ]


def windows_calls() -> list[list[str]]:
    text = WINDOWS_TASK.read_text(encoding="utf-8")
    found = re.search(r"<Arguments>(.*)</Arguments>", text)
    assert found, "the task has no Arguments"
    arguments = found.group(1).replace("&amp;", "&").replace("\\", "/").removeprefix("/c ")
    return botops_arguments(arguments)


@pytest.mark.parametrize("calls", [service_calls, windows_calls], ids=["systemd", "windows"])
def test_every_scheduled_call_is_a_botops_command_with_options_it_accepts(calls: object) -> None:
    found = calls()  # type: ignore[operator]
    assert [call[:2] for call in found] == [["backup", "create"], ["backup", "prune"]]
    for call in found:
        # --help after the options: typer parses them first, so an unknown option fails here.
        result = CliRunner().invoke(app, [*call, "--help"])
        assert result.exit_code == ExitCode.OK, f"botops {' '.join(call)}: {result.output}"


def test_the_timer_runs_daily_at_three_and_catches_up_after_downtime() -> None:
    timer = TIMER.read_text(encoding="utf-8")

    assert "OnCalendar=*-*-* 03:00:00" in timer
    assert "Persistent=true" in timer


SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze is not installed")
def test_systemd_reads_the_timers_calendar_expression() -> None:
    assert SYSTEMD_ANALYZE is not None
    completed = subprocess.run(  # noqa: S603 - fixed arguments, no shell
        [SYSTEMD_ANALYZE, "calendar", "*-*-* 03:00:00"], capture_output=True, text=True, check=False
    )

    assert completed.returncode == 0, completed.stderr
