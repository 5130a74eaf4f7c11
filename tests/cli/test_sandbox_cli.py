"""``botops sandbox``: its env file (never someone else's, always private) and the --host warning."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from botops.cli import ExitCode
from botops.cli.sandbox import ENV_FILE_MARKER

NO_AUTHENTICATION = "has no authentication"


@contextmanager
def running_sandbox(tmp_path: Path, env_file: Path, *arguments: str) -> Iterator[Path]:
    """Run ``botops sandbox`` until it wrote its settings to ``env_file``; yield its output file."""
    output = tmp_path / "sandbox.out"
    command = [sys.executable, "-m", "botops", "sandbox", "--port", "0", "--env-file", str(env_file)]
    with output.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and module, no shell
            [*command, *arguments], stdout=out, stderr=subprocess.STDOUT, env={**os.environ}
        )
    try:
        deadline = time.monotonic() + 20
        while not (env_file.exists() and "DISCORD_DEV_GUILD_ID=" in env_file.read_text()):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"botops sandbox did not write {env_file}: {output.read_text()}")
            time.sleep(0.02)
        yield output
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_an_env_file_botops_did_not_write_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("DISCORD_TOKEN=the-real-one\n", encoding="utf-8")
    env_file.chmod(0o644)

    # A process with a timeout: were the file accepted, the sandbox would run until stopped.
    result = subprocess.run(  # noqa: S603 - our own interpreter and module, no shell
        [sys.executable, "-m", "botops", "sandbox", "--port", "0", "--env-file", str(env_file)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert result.returncode == ExitCode.USAGE
    assert f"--env-file {env_file} exists and was not written by botops sandbox" in result.stderr
    assert "give another path" in result.stderr
    assert env_file.read_text(encoding="utf-8") == "DISCORD_TOKEN=the-real-one\n"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o644


def test_an_env_file_of_an_earlier_run_is_overwritten_and_made_private(tmp_path: Path) -> None:
    env_file = tmp_path / "sandbox.env"
    env_file.write_text(f"{ENV_FILE_MARKER}\nDISCORD_TOKEN=stale\n", encoding="utf-8")
    env_file.chmod(0o644)

    with running_sandbox(tmp_path, env_file):
        written = env_file.read_text(encoding="utf-8")
        mode = stat.S_IMODE(env_file.stat().st_mode)

    assert written.startswith(ENV_FILE_MARKER + "\n")
    assert "DISCORD_TOKEN=stale" not in written
    assert mode == 0o600


def test_a_host_beyond_loopback_warns_that_the_control_plane_has_no_authentication(tmp_path: Path) -> None:
    with running_sandbox(tmp_path, tmp_path / "sandbox.env", "--host", "0.0.0.0") as output:  # noqa: S104
        printed = output.read_text()

    assert "warning: --host 0.0.0.0 makes the sandbox reachable from other machines" in printed
    assert NO_AUTHENTICATION in printed


def test_a_loopback_host_gives_no_warning(tmp_path: Path) -> None:
    with running_sandbox(tmp_path, tmp_path / "sandbox.env", "--host", "127.0.0.1") as output:
        printed = output.read_text()

    assert NO_AUTHENTICATION not in printed
