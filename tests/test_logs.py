"""Tests for botops.logs: files per channel, rotation, levels, formats, permissions and redaction."""

from __future__ import annotations

import base64
import json
import logging
import random
import stat
import string
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from botops.errors import LogDirUnusable
from botops.logs import CHANNELS, FILES_ONLY, TEXT_RECORD_RE, LoggingHandle, setup_logging
from botops.settings import load_settings

Configure = Callable[..., LoggingHandle]


def make_token() -> str:
    """Build a string shaped like a bot token; built at run time so none is ever committed."""
    bot_id = str(random.randrange(10**16, 10**20))
    first = base64.urlsafe_b64encode(bot_id.encode()).decode().rstrip("=")
    alphabet = string.ascii_letters + string.digits + "-_"
    return f"{first}.{''.join(random.choices(alphabet, k=6))}.{''.join(random.choices(alphabet, k=38))}"


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path / "logs"


@pytest.fixture
def configure(log_dir: Path) -> Iterator[Configure]:
    """Set up logging into ``log_dir`` with settings overrides; undone after the test."""
    handles: list[LoggingHandle] = []

    def _configure(*, console: bool = False, discord_debug: bool = False, **overrides: Any) -> LoggingHandle:
        settings = load_settings(None, log_dir=log_dir, **overrides)
        handle = setup_logging(settings, console=console, discord_debug=discord_debug)
        handles.append(handle)
        return handle

    yield _configure
    for handle in reversed(handles):
        handle.close()


def read(path: Path) -> str:
    return path.read_text(encoding="utf-8") if path.exists() else ""


def every_file(log_dir: Path) -> str:
    return "\n".join(read(path) for path in sorted(log_dir.rglob("*")) if path.is_file())


def test_records_go_to_the_main_log(configure: Configure, log_dir: Path) -> None:
    configure()

    logging.getLogger("botops.cogs.levels").info("member %s reached level %d", 42, 3)

    assert "botops.cogs.levels: member 42 reached level 3" in read(log_dir / "botops.log")


@pytest.mark.parametrize("logger", CHANNELS["gateway"])
def test_gateway_records_go_to_gateway_log_and_main_log(
    configure: Configure, log_dir: Path, logger: str
) -> None:
    configure()

    logging.getLogger(logger).warning("resumed session")

    assert f"{logger}: resumed session" in read(log_dir / "gateway.log")
    assert f"{logger}: resumed session" in read(log_dir / "botops.log")


def test_other_records_stay_out_of_gateway_log(configure: Configure, log_dir: Path) -> None:
    configure()

    logging.getLogger("botops.gateway").info("connected")
    logging.getLogger("botops.sandbox.gateway").info("fake gateway started")
    logging.getLogger("discord.http").warning("rate limited")

    gateway_log = read(log_dir / "gateway.log")
    assert "connected" in gateway_log
    assert "fake gateway started" not in gateway_log
    assert "rate limited" not in gateway_log


def test_log_rotates_at_configured_size_and_keeps_backup_count(configure: Configure, log_dir: Path) -> None:
    configure(log_max_bytes=1024, log_backup_count=2)

    for number in range(100):
        logging.getLogger("botops.test").info("filler line %03d %s", number, "x" * 60)

    names = sorted(path.name for path in log_dir.iterdir())
    assert names == ["botops.log", "botops.log.1", "botops.log.2"]
    assert all(path.stat().st_size <= 1024 for path in log_dir.iterdir())
    assert "filler line 099" in read(log_dir / "botops.log")


def test_records_below_log_level_are_dropped(configure: Configure, log_dir: Path) -> None:
    configure(log_level="WARNING")

    logging.getLogger("botops.test").info("routine detail")
    logging.getLogger("botops.test").warning("something odd")

    main_log = read(log_dir / "botops.log")
    assert "something odd" in main_log
    assert "routine detail" not in main_log


def test_discord_debug_is_dropped_at_debug_level_without_opt_in(configure: Configure, log_dir: Path) -> None:
    configure(log_level="DEBUG")

    logging.getLogger("discord.gateway").debug("payload dump")
    logging.getLogger("botops.test").debug("own debug")

    main_log = read(log_dir / "botops.log")
    assert "own debug" in main_log
    assert "payload dump" not in main_log


def test_discord_debug_is_kept_with_opt_in(configure: Configure, log_dir: Path) -> None:
    configure(log_level="DEBUG", discord_debug=True)

    logging.getLogger("discord.gateway").debug("payload dump")

    assert "payload dump" in read(log_dir / "gateway.log")


def test_discord_http_keeps_rate_limit_warnings_but_drops_info(configure: Configure, log_dir: Path) -> None:
    configure(log_level="DEBUG")

    logging.getLogger("discord.http").info("request done")
    logging.getLogger("discord.http").warning("We are being rate limited. Retrying in %.2f seconds.", 1.5)

    main_log = read(log_dir / "botops.log")
    assert "We are being rate limited. Retrying in 1.50 seconds." in main_log
    assert "request done" not in main_log


def test_discord_info_is_dropped_when_log_level_is_higher(configure: Configure, log_dir: Path) -> None:
    configure(log_level="ERROR")

    logging.getLogger("discord.client").info("logging in")

    assert "logging in" not in every_file(log_dir)


def test_text_lines_start_with_iso_time_level_and_logger(configure: Configure, log_dir: Path) -> None:
    configure(log_level="INFO")

    logging.getLogger("botops.test").error("disk %s", "full")

    match = TEXT_RECORD_RE.match(read(log_dir / "botops.log").splitlines()[0])
    assert match is not None
    assert (match["level"], match["logger"], match["message"]) == ("ERROR", "botops.test", "disk full")


def test_json_lines_parse_and_carry_the_stable_keys(configure: Configure, log_dir: Path) -> None:
    configure(log_format="json", log_level="INFO")

    logging.getLogger("botops.gateway").info("reconnecting in %d s", 5)
    try:
        raise ValueError("bad payload")
    except ValueError:
        logging.getLogger("botops.test").exception("handler failed")

    first, second = (json.loads(line) for line in read(log_dir / "botops.log").splitlines())
    assert set(first) == {"time", "level", "logger", "channel", "message"}
    assert (first["level"], first["logger"], first["channel"], first["message"]) == (
        "INFO",
        "botops.gateway",
        "gateway",
        "reconnecting in 5 s",
    )
    assert first["time"].endswith("+00:00")
    assert second["channel"] == "botops"
    assert "ValueError: bad payload" in second["exc_info"]


def test_files_are_private_to_the_owner(configure: Configure, log_dir: Path) -> None:
    configure(log_max_bytes=1024, log_backup_count=1)

    for number in range(40):
        logging.getLogger("botops.gateway").info("line %d %s", number, "y" * 60)

    assert stat.S_IMODE(log_dir.stat().st_mode) == 0o700
    modes = {path.name: stat.S_IMODE(path.stat().st_mode) for path in log_dir.iterdir()}
    assert set(modes) == {"botops.log", "botops.log.1", "gateway.log", "gateway.log.1"}
    assert set(modes.values()) == {0o600}


def test_setting_up_twice_does_not_duplicate_lines(configure: Configure, log_dir: Path) -> None:
    configure()
    configure()

    logging.getLogger("botops.test").info("only once")

    assert read(log_dir / "botops.log").count("only once") == 1


def test_close_removes_handlers_and_restores_levels(configure: Configure) -> None:
    root = logging.getLogger()
    level_before = root.level

    handle = configure(log_level="ERROR")
    handle.close()

    assert not set(handle.handlers) & set(root.handlers)
    assert root.level == level_before


def test_log_dir_that_is_a_file_is_refused(configure: Configure, log_dir: Path) -> None:
    log_dir.write_text("not a folder")

    with pytest.raises(LogDirUnusable, match="LOG_DIR"):
        configure()


# -- redaction: read every file, since a secret in any of them is a leak ---------------------------------


def test_settings_token_never_reaches_a_file(configure: Configure, log_dir: Path) -> None:
    token = make_token()
    configure(discord_token=token)

    logging.getLogger("botops.bot").info("logging in with %s", token)
    logging.getLogger("discord.client").info(f"token {token} accepted")  # noqa: G004 - a careless caller

    text = every_file(log_dir)
    assert token not in text
    assert "[REDACTED]" in text


def test_database_password_never_reaches_a_file(configure: Configure, log_dir: Path) -> None:
    password = "correct-horse-" + "".join(random.choices(string.ascii_letters, k=12))
    url = f"postgresql+asyncpg://botops:{password}@db.internal:5432/botops"
    configure(database_url=url)

    logging.getLogger("botops.db").info("connecting to %s", url)
    logging.getLogger("sqlalchemy.pool").warning("authentication failed for password %r", password)

    assert password not in every_file(log_dir)


def test_unknown_token_shaped_string_in_message_or_args_never_reaches_a_file(
    configure: Configure, log_dir: Path
) -> None:
    in_message, in_args = make_token(), make_token()
    configure()

    template = "pasted: " + in_message + " and %s"  # as if a token had landed in a message template
    logging.getLogger("botops.cogs.admin").info(template, {"auth": in_args})

    text = every_file(log_dir)
    assert in_message not in text
    assert in_args not in text


def _login(credentials: dict[str, str]) -> None:
    raise ConnectionError(f"login refused for {credentials!r}")


def test_token_in_exception_text_never_reaches_a_file(configure: Configure, log_dir: Path) -> None:
    token, other = make_token(), make_token()
    configure(discord_token=token)

    try:
        try:
            _login({"token": token})  # the local's repr ends up in the exception message
        except ConnectionError as error:
            raise RuntimeError(f"start-up failed, last token tried: {other}") from error
    except RuntimeError:
        logging.getLogger("botops.bot").exception("could not start")

    text = every_file(log_dir)
    assert "ConnectionError: login refused" in text
    assert token not in text
    assert other not in text


def test_token_in_stack_info_never_reaches_a_file(configure: Configure, log_dir: Path) -> None:
    token = make_token()
    configure()

    logger = logging.getLogger("botops.test")
    logger.handle(
        logger.makeRecord(logger.name, logging.WARNING, __file__, 1, "slow", (), None, sinfo=f"at {token}")
    )

    text = every_file(log_dir)
    assert "slow" in text
    assert token not in text


def test_token_in_json_output_is_redacted(configure: Configure, log_dir: Path) -> None:
    token = make_token()
    configure(log_format="json")

    try:
        raise ValueError(token)
    except ValueError:
        logging.getLogger("botops.test").exception("failed with %s", token)

    assert token not in every_file(log_dir)


def test_console_output_is_redacted(
    configure: Configure, capsys: pytest.CaptureFixture[str], log_dir: Path
) -> None:
    token = make_token()
    configure(console=True)

    logging.getLogger("botops.test").warning("token is %s", token)

    err = capsys.readouterr().err
    assert "botops.test: token is [REDACTED]" in err
    assert token not in err


def test_files_only_records_reach_the_files_but_not_the_console(
    configure: Configure, capsys: pytest.CaptureFixture[str], log_dir: Path
) -> None:
    configure(console=True)

    logging.getLogger("botops.test").error("summed up elsewhere", extra=FILES_ONLY)

    assert "summed up elsewhere" in read(log_dir / "botops.log")
    assert "summed up elsewhere" not in capsys.readouterr().err
