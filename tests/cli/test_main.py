"""The ``botops`` entry points: the console script's app and ``python -m botops``."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from botops import __version__
from botops.cli import ExitCode, app

runner = CliRunner()


def test_version_prints_the_installed_version() -> None:
    result = runner.invoke(app, ["--version"])

    assert result.exit_code == ExitCode.OK
    assert result.output.strip() == f"botops {__version__}"


def test_help_lists_the_sandbox_command() -> None:
    result = runner.invoke(app, ["--help"])

    assert result.exit_code == ExitCode.OK
    assert "sandbox" in result.output


def test_sandbox_refuses_an_unknown_rate_limit_mode_in_one_line_without_a_traceback() -> None:
    result = runner.invoke(app, ["sandbox", "--ratelimits", "lenient"])

    assert result.exit_code == ExitCode.USAGE
    assert "must be 'generous' or 'realistic'" in result.output
    assert "Traceback" not in result.output


def test_python_dash_m_botops_runs_the_same_cli() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "botops", "--version"], capture_output=True, text=True, timeout=60, check=False
    )

    assert completed.returncode == 0
    assert completed.stdout.strip() == f"botops {__version__}"
