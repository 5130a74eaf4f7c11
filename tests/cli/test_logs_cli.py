"""``botops logs`` through the command line, on log files written by botops' own logging."""

from __future__ import annotations

import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import pytest
from typer.testing import CliRunner

from botops.cli import ExitCode, app
from botops.logs import TEXT_RECORD_RE, setup_logging
from botops.settings import load_settings

runner = CliRunner()

Write = Callable[..., None]
OLD = datetime.now(UTC) - timedelta(days=3)


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path / "logs"


@pytest.fixture(autouse=True)
def _environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, log_dir: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("ENVIRONMENT", "DISCORD_TOKEN", "DATABASE_URL", "LOG_LEVEL", "LOG_FORMAT", "LOG_MAX_BYTES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOG_DIR", str(log_dir))


@pytest.fixture
def write_logs(log_dir: Path) -> Write:
    """Log through botops' logging into 1 KiB files (so they rotate), then close the handlers."""

    def _write(log_format: str = "text") -> None:
        settings = load_settings(
            None, log_dir=log_dir, log_max_bytes=1024, log_backup_count=50, log_format=log_format
        )
        with setup_logging(settings, console=False):
            for number in range(4):
                logging.getLogger("botops.cogs.levels").info("routine %d %s", number, "." * 60)
                logging.getLogger("botops.gateway").warning("resumed %d", number)
                try:
                    raise ZeroDivisionError(f"boom {number}")
                except ZeroDivisionError:
                    logging.getLogger("botops.bot").exception("command failed %d", number)

    return _write


def oldest_file(log_dir: Path) -> Path:
    rotated = [path for path in log_dir.glob("botops.log.*") if path.suffix[1:].isdigit()]
    return max(rotated, key=lambda path: int(path.suffix[1:]))


def prepend(path: Path, *lines: str) -> None:
    path.write_text(
        "".join(line + "\n" for line in lines) + path.read_text(encoding="utf-8"), encoding="utf-8"
    )


def headers(output: str) -> list[tuple[str, str]]:
    """Return (level, message) of every line that starts a record."""
    return [
        (match["level"], match["message"])
        for line in output.splitlines()
        if (match := TEXT_RECORD_RE.match(line))
    ]


def test_errors_of_the_last_hour_show_with_their_tracebacks_and_old_errors_do_not(
    write_logs: Write, log_dir: Path
) -> None:
    write_logs()
    prepend(
        oldest_file(log_dir),
        f"{OLD.isoformat(timespec='milliseconds')} ERROR    botops.bot: ancient failure",
        "ValueError: long ago",
    )

    result = runner.invoke(app, ["logs", "--level", "ERROR", "--since", "1h"])

    assert result.exit_code == ExitCode.OK
    assert (log_dir / "botops.log.1").exists()  # the first errors came from a rotated file
    assert headers(result.stdout) == [("ERROR", f"command failed {number}") for number in range(4)]
    assert result.stdout.count("Traceback (most recent call last):") == 4
    assert all(f"ZeroDivisionError: boom {number}" in result.stdout for number in range(4))
    assert "long ago" not in result.stdout


def test_json_errors_of_the_last_hour_show_readably_with_their_tracebacks(
    write_logs: Write, log_dir: Path
) -> None:
    write_logs("json")
    old = {"time": OLD.isoformat(), "level": "ERROR", "logger": "botops.bot", "message": "ancient failure"}
    prepend(oldest_file(log_dir), json.dumps(old))

    result = runner.invoke(app, ["logs", "--level", "ERROR", "--since", "1h"])

    assert result.exit_code == ExitCode.OK
    assert headers(result.stdout) == [("ERROR", f"command failed {number}") for number in range(4)]
    assert result.stdout.count("Traceback (most recent call last):") == 4
    assert all(f"ZeroDivisionError: boom {number}" in result.stdout for number in range(4))


def test_json_flag_prints_json_records_as_written(write_logs: Write) -> None:
    write_logs("json")

    result = runner.invoke(app, ["logs", "--level", "ERROR", "--json"])

    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [record["message"] for record in records] == [f"command failed {number}" for number in range(4)]
    assert "ZeroDivisionError: boom 0" in records[0]["exc_info"]


def test_gateway_channel_shows_only_the_gateway_records(write_logs: Write) -> None:
    write_logs()

    result = runner.invoke(app, ["logs", "--channel", "gateway"])

    assert result.exit_code == ExitCode.OK
    assert headers(result.stdout) == [("WARNING", f"resumed {number}") for number in range(4)]


def test_without_filters_every_record_shows_oldest_first(write_logs: Write) -> None:
    write_logs()

    result = runner.invoke(app, ["logs"])

    messages = [message for _, message in headers(result.stdout)]
    assert messages.index("routine 0 " + "." * 60) < messages.index("command failed 3")
    assert len([m for m in messages if m.startswith(("routine", "resumed", "command failed"))]) == 12


def test_limit_shows_the_last_matching_records(write_logs: Write) -> None:
    write_logs()

    result = runner.invoke(app, ["logs", "--level", "WARNING", "-n", "2"])

    assert headers(result.stdout) == [("WARNING", "resumed 3"), ("ERROR", "command failed 3")]


def test_empty_log_folder_exits_1_saying_where_it_looked(log_dir: Path) -> None:
    log_dir.mkdir()

    result = runner.invoke(app, ["logs"])

    assert result.exit_code == ExitCode.FAILURE
    assert result.stderr.count("\n") == 1
    assert str(log_dir) in result.stderr
    assert "LOG_DIR" in result.stderr


@pytest.mark.parametrize(
    ("option", "value", "hint"),
    [("--since", "yesterday", "1h30m"), ("--level", "LOUD", "CRITICAL"), ("--channel", "voice", "gateway")],
)
def test_unreadable_option_exits_2_in_one_line(write_logs: Write, option: str, value: str, hint: str) -> None:
    write_logs()

    result = runner.invoke(app, ["logs", option, value])

    assert result.exit_code == ExitCode.USAGE
    assert result.stderr.startswith(f"error: {option} cannot be {value!r}")
    assert hint in result.stderr
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.output


# -- --follow, in a real process: Ctrl-C must end it with status 0 ----------------------------------------


class Lines:
    """The lines a process prints, read by a thread so a test can wait for one without blocking forever."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._pump = threading.Thread(target=self._read, daemon=True)
        self._pump.start()

    def _read(self) -> None:
        for line in self._stream:
            self._lines.put(line)

    def wait_for(self, text: str) -> None:
        while not any(text in line for line in self.seen):
            try:
                self.seen.append(self._lines.get(timeout=30))
            except queue.Empty:
                pytest.fail(f"{text!r} never showed; the process printed {self.seen!r}")

    def close(self) -> None:
        """Wait for the end of the stream (the process has exited), then close it."""
        self._pump.join(timeout=30)
        self._stream.close()


Follow = Callable[[], tuple["subprocess.Popen[str]", Lines]]


@pytest.fixture
def start_following(log_dir: Path, tmp_path: Path) -> Iterator[Follow]:
    """Start ``python -m botops logs --follow`` on ``log_dir``; killed after the test if still running."""
    started: list[tuple[subprocess.Popen[str], Lines]] = []
    env = {name: value for name, value in os.environ.items() if not name.startswith(("LOG_", "DISCORD_"))}
    env.update(LOG_DIR=str(log_dir), ENVIRONMENT="development")

    def _start() -> tuple[subprocess.Popen[str], Lines]:
        process = subprocess.Popen(
            [sys.executable, "-m", "botops", "logs", "--follow"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            # Ctrl-C must reach it even where the tests run with SIGINT ignored (a background CI job).
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        assert process.stdout is not None
        started.append((process, Lines(process.stdout)))
        return started[-1]

    yield _start
    for process, lines in started:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
        lines.close()
        if process.stderr is not None:
            process.stderr.close()


def test_follow_prints_new_records_across_a_rotation_until_ctrl_c(
    log_dir: Path, start_following: Follow
) -> None:
    settings = load_settings(None, log_dir=log_dir, log_max_bytes=1024, log_backup_count=20)
    logger = logging.getLogger("botops.test")
    with setup_logging(settings, console=False):
        logger.info("written before following")
        process, lines = start_following()
        lines.wait_for("written before following")  # the backlog is out: it follows now
        for number in range(5):  # about three of them fill a file
            logger.info("new record %d %s", number, "z" * 300)
            lines.wait_for(f"new record {number} ")
        try:
            raise KeyError("lost")
        except KeyError:
            logger.exception("failed after the rotations")
        lines.wait_for("KeyError: 'lost'")

        process.send_signal(signal.SIGINT)

        assert process.wait(timeout=30) == ExitCode.OK
    assert (log_dir / "botops.log.1").exists()
    assert process.stderr is not None
    assert "Traceback" not in process.stderr.read()
