"""Tests for botops.logquery: parsing both formats, rotation order, filters, --since values and following."""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from botops.errors import InvalidLogQuery, LogsUnreadable
from botops.logquery import (
    LogEntry,
    LogFilter,
    LogFollower,
    channel_files,
    parse_duration,
    parse_level,
    parse_since,
    read_entries,
    render,
)
from botops.logs import LoggingHandle, setup_logging
from botops.settings import load_settings

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def text_line(moment: datetime, level: str, logger: str, message: str) -> str:
    """Write a record's first line the way LOG_FORMAT=text does."""
    return f"{moment.isoformat(timespec='milliseconds')} {level:<8} {logger}: {message}"


def json_line(moment: datetime, level: str, logger: str, message: str, **more: str) -> str:
    """Write a record the way LOG_FORMAT=json does."""
    fields = {"time": moment.isoformat(timespec="milliseconds"), "level": level, "logger": logger}
    return json.dumps({**fields, "channel": "botops", "message": message, **more})


def write(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def append(path: Path, *lines: str) -> None:
    with path.open("a", encoding="utf-8") as file:
        file.write("".join(line + "\n" for line in lines))


def messages(entries: Iterator[LogEntry] | list[LogEntry]) -> list[str]:
    return [entry.message for entry in entries]


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    path = tmp_path / "logs"
    path.mkdir()
    return path


@pytest.fixture
def rotating_logging(log_dir: Path) -> Iterator[LoggingHandle]:
    """Real botops logging into ``log_dir`` with 1 KiB files, so a few records rotate them."""
    settings = load_settings(None, log_dir=log_dir, log_max_bytes=1024, log_backup_count=20, log_level="INFO")
    with setup_logging(settings, console=False) as handle:
        yield handle


# -- parsing ------------------------------------------------------------------------------------------


def test_text_record_keeps_its_traceback_lines(log_dir: Path) -> None:
    path = write(
        log_dir / "botops.log",
        text_line(NOW, "ERROR", "botops.cogs.levels", "flush failed"),
        "Traceback (most recent call last):",
        "ValueError: bad row",
        text_line(NOW, "INFO", "botops.bot", "next"),
    )

    first, second = read_entries([path])

    assert (first.level, first.logger, first.message, first.time) == (
        "ERROR",
        "botops.cogs.levels",
        "flush failed",
        NOW,
    )
    assert first.lines[1:] == ("Traceback (most recent call last):", "ValueError: bad row")
    assert second.lines == (text_line(NOW, "INFO", "botops.bot", "next"),)


def test_text_record_time_keeps_its_offset(log_dir: Path) -> None:
    local = NOW.astimezone(timezone(timedelta(hours=2)))
    path = write(log_dir / "botops.log", text_line(local, "INFO", "botops.bot", "up"))

    (entry,) = read_entries([path])

    assert entry.time == NOW
    assert entry.time is not None
    assert entry.time.utcoffset() == timedelta(hours=2)


def test_json_record_carries_its_fields(log_dir: Path) -> None:
    line = json_line(NOW, "ERROR", "botops.bot", "failed", exc_info="Traceback ...\nKeyError: 'x'")
    path = write(log_dir / "botops.log", line)

    (entry,) = read_entries([path])

    assert (entry.time, entry.level, entry.logger, entry.message) == (NOW, "ERROR", "botops.bot", "failed")
    assert entry.exc_info == "Traceback ...\nKeyError: 'x'"
    assert entry.lines == (line,)
    assert entry.is_json


def test_text_and_json_lines_in_one_file_read_in_order(log_dir: Path) -> None:
    path = write(
        log_dir / "botops.log",
        text_line(NOW, "INFO", "botops.bot", "written as text"),
        json_line(NOW, "INFO", "botops.bot", "written as json"),
        text_line(NOW, "INFO", "botops.bot", "text again"),
    )

    assert messages(read_entries([path])) == ["written as text", "written as json", "text again"]


def test_lines_before_the_first_record_form_a_record_of_unknown_time_and_level(log_dir: Path) -> None:
    path = write(
        log_dir / "botops.log",
        "Segmentation fault (core dumped)",
        "more noise",
        text_line(NOW, "INFO", "botops.bot", "restarted"),
    )

    orphan, record = read_entries([path])

    assert (orphan.time, orphan.level, orphan.logger) == (None, None, None)
    assert orphan.lines == ("Segmentation fault (core dumped)", "more noise")
    assert record.message == "restarted"


def test_json_object_without_time_and_level_continues_the_record_above(log_dir: Path) -> None:
    path = write(log_dir / "botops.log", text_line(NOW, "INFO", "botops.bot", "payload:"), '{"op": 10}')

    (entry,) = read_entries([path])

    assert entry.lines[1:] == ('{"op": 10}',)


def test_text_line_with_an_impossible_date_is_a_record_of_unknown_time(log_dir: Path) -> None:
    path = write(log_dir / "botops.log", "2024-13-01T00:00:00.000+00:00 ERROR    botops.bot: odd")

    (entry,) = read_entries([path])

    assert (entry.time, entry.level, entry.message) == (None, "ERROR", "odd")


def test_bytes_that_are_not_utf8_do_not_stop_the_reading(log_dir: Path) -> None:
    path = log_dir / "botops.log"
    path.write_bytes(text_line(NOW, "INFO", "botops.bot", "name: ").encode() + b"\xff\xfe\n")

    (entry,) = read_entries([path])

    assert entry.message.startswith("name: ")


# -- files and rotation -------------------------------------------------------------------------------


def test_channel_files_lists_rotated_copies_oldest_first_then_the_current(log_dir: Path) -> None:
    for name in (
        "botops.log",
        "botops.log.1",
        "botops.log.2",
        "botops.log.10",
        "botops.log.1.gz",
        "gateway.log",
    ):
        write(log_dir / name)

    names = [path.name for path in channel_files(log_dir)]

    assert names == ["botops.log.10", "botops.log.2", "botops.log.1", "botops.log"]


def test_channel_files_of_a_missing_folder_is_empty(tmp_path: Path) -> None:
    assert channel_files(tmp_path / "nowhere") == []


def test_records_come_back_in_writing_order_across_rotated_files(
    rotating_logging: LoggingHandle, log_dir: Path
) -> None:
    for number in range(30):
        logging.getLogger("botops.test").info("record %02d %s", number, "x" * 80)

    entries = list(read_entries(channel_files(log_dir)))

    assert (log_dir / "botops.log.2").exists()
    assert messages(entries) == [f"record {number:02d} {'x' * 80}" for number in range(30)]


def test_gateway_channel_reads_only_the_gateway_files(rotating_logging: LoggingHandle, log_dir: Path) -> None:
    logging.getLogger("botops.gateway").warning("resumed")
    logging.getLogger("botops.bot").warning("elsewhere")

    assert messages(read_entries(channel_files(log_dir, "gateway"), "gateway")) == ["resumed"]


def test_unreadable_file_raises_logs_unreadable(log_dir: Path) -> None:
    folder_in_the_way = log_dir / "botops.log"
    folder_in_the_way.mkdir()

    with pytest.raises(LogsUnreadable, match=r"botops\.log"):
        list(read_entries([folder_in_the_way]))


# -- filters ------------------------------------------------------------------------------------------


def entry(level: str | None = "INFO", moment: datetime | None = NOW) -> LogEntry:
    return LogEntry(moment, level, "botops.test", "botops", "m", ("m",))


@pytest.mark.parametrize(
    ("level", "shown"),
    [("DEBUG", False), ("INFO", False), ("WARNING", True), ("ERROR", True), ("CRITICAL", True)],
)
def test_level_filter_keeps_its_level_and_above(level: str, shown: bool) -> None:
    assert LogFilter(min_level=parse_level("warning")).matches(entry(level)) is shown


def test_since_filter_keeps_records_from_that_time_on() -> None:
    query = LogFilter(since=NOW - timedelta(hours=1))

    assert query.matches(entry(moment=NOW - timedelta(minutes=59)))
    assert query.matches(entry(moment=NOW - timedelta(hours=1)))
    assert not query.matches(entry(moment=NOW - timedelta(minutes=61)))


def test_record_of_unknown_time_and_level_shows_only_without_filters() -> None:
    unknown = entry(level=None, moment=None)

    assert LogFilter().matches(unknown)
    assert not LogFilter(min_level=logging.DEBUG).matches(unknown)
    assert not LogFilter(since=datetime.min.replace(tzinfo=UTC)).matches(unknown)


def test_unknown_level_name_is_refused_with_the_accepted_names() -> None:
    with pytest.raises(InvalidLogQuery, match="DEBUG, INFO, WARNING, ERROR, CRITICAL"):
        parse_level("LOUD")


# -- --since values -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ago"),
    [
        ("90s", timedelta(seconds=90)),
        ("30m", timedelta(minutes=30)),
        ("1h", timedelta(hours=1)),
        ("2d", timedelta(days=2)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        (" 1H ", timedelta(hours=1)),
    ],
)
def test_since_duration_counts_back_from_now(text: str, ago: timedelta) -> None:
    assert parse_since(text, NOW) == NOW - ago


def test_since_iso_time_with_offset_is_taken_as_it_is() -> None:
    assert parse_since("2024-04-30T14:00:00+02:00", NOW) == datetime(2024, 4, 30, 12, 0, tzinfo=UTC)


def test_since_iso_date_is_local_midnight() -> None:
    assert parse_since("2024-04-30", NOW) == datetime(2024, 4, 30).astimezone()


def test_since_time_of_day_is_today_in_local_time() -> None:
    today = NOW.astimezone().date()

    assert parse_since("14:00", NOW) == datetime(today.year, today.month, today.day, 14, 0).astimezone()


def test_since_further_back_than_the_calendar_keeps_everything() -> None:
    assert parse_since(f"{10**12}d", NOW) == datetime.min.replace(tzinfo=UTC)


@pytest.mark.parametrize("text", ["", "1x", "90", "h", "30m1h", "1.5h", "yesterday", "14", "2024-02-30"])
def test_since_refuses_what_it_cannot_read_and_shows_the_accepted_forms(text: str) -> None:
    with pytest.raises(InvalidLogQuery, match=r"90s, 30m, 1h, 2d or 1h30m.*ISO-8601"):
        parse_since(text, NOW)


_COUNTS = st.one_of(st.none(), st.integers(min_value=0, max_value=10**6))


@given(days=_COUNTS, hours=_COUNTS, minutes=_COUNTS, seconds=_COUNTS, upper=st.booleans())
def test_duration_parser_reads_every_combination_of_units(
    days: int | None, hours: int | None, minutes: int | None, seconds: int | None, upper: bool
) -> None:
    parts = {"d": days, "h": hours, "m": minutes, "s": seconds}
    text = "".join(f"{count}{unit}" for unit, count in parts.items() if count is not None)
    if not text:
        text = "0s"
    expected = timedelta(days=days or 0, hours=hours or 0, minutes=minutes or 0, seconds=seconds or 0)

    assert parse_duration(text.upper() if upper else text) == expected


@given(st.text(max_size=40))
def test_since_parser_returns_an_aware_time_or_raises_invalid_log_query(text: str) -> None:
    with contextlib.suppress(InvalidLogQuery):  # the only error it may raise
        assert parse_since(text, NOW).tzinfo is not None


# -- rendering ----------------------------------------------------------------------------------------


def test_json_record_renders_as_a_text_record_with_its_traceback(log_dir: Path) -> None:
    path = write(
        log_dir / "botops.log", json_line(NOW, "ERROR", "botops.bot", "failed", exc_info="Trace\nBoom")
    )
    (record,) = read_entries([path])

    first, *rest = render(record).splitlines()

    assert first.endswith(" ERROR    botops.bot: failed")
    assert datetime.fromisoformat(first.split(" ")[0]) == NOW
    assert rest == ["Trace", "Boom"]


def test_json_record_renders_raw_as_the_line_written(log_dir: Path) -> None:
    line = json_line(NOW, "ERROR", "botops.bot", "failed", exc_info="Trace")
    (record,) = read_entries([write(log_dir / "botops.log", line)])

    assert render(record, raw=True) == line


# -- following ----------------------------------------------------------------------------------------


def settle(follower: LogFollower) -> list[str]:
    """Poll until two polls in a row hand out nothing: the file was quiet, so nothing is held back."""
    found: list[LogEntry] = []
    empty = 0
    while empty < 2:
        batch = follower.poll()
        found += batch
        empty = 0 if batch else empty + 1
    return messages(found)


def test_follower_backlog_reads_rotated_files_then_the_current(
    rotating_logging: LoggingHandle, log_dir: Path
) -> None:
    for number in range(20):
        logging.getLogger("botops.test").info("old %02d %s", number, "x" * 80)

    with LogFollower(log_dir) as follower:
        backlog = messages(follower.backlog())

    assert backlog == [f"old {number:02d} {'x' * 80}" for number in range(20)]


def test_follower_hands_out_records_appended_later(log_dir: Path) -> None:
    path = write(log_dir / "botops.log", text_line(NOW, "INFO", "botops.bot", "first"))
    with LogFollower(log_dir) as follower:
        list(follower.backlog())

        append(
            path,
            text_line(NOW, "INFO", "botops.bot", "second"),
            text_line(NOW, "INFO", "botops.bot", "third"),
        )

        assert settle(follower) == ["second", "third"]


def test_follower_keeps_a_record_until_its_traceback_is_complete(log_dir: Path) -> None:
    path = write(log_dir / "botops.log")
    with LogFollower(log_dir) as follower:
        list(follower.backlog())

        append(path, text_line(NOW, "ERROR", "botops.bot", "failed"))
        early = follower.poll()
        append(path, "Traceback (most recent call last):", "KeyError: 'x'")
        later = [*follower.poll(), *follower.poll()]

    assert early == []
    assert [record.lines[1:] for record in later] == [("Traceback (most recent call last):", "KeyError: 'x'")]


def test_follower_reads_the_rest_of_a_rotated_file_then_its_successor(log_dir: Path) -> None:
    path = write(log_dir / "botops.log", text_line(NOW, "INFO", "botops.bot", "before"))
    with LogFollower(log_dir) as follower:
        list(follower.backlog())

        append(path, text_line(NOW, "INFO", "botops.bot", "last in the old file"))
        path.rename(log_dir / "botops.log.1")
        write(path, text_line(NOW, "INFO", "botops.bot", "first in the new file"))

        assert settle(follower) == ["last in the old file", "first in the new file"]


def test_follower_survives_rotation_by_real_logging(rotating_logging: LoggingHandle, log_dir: Path) -> None:
    logger = logging.getLogger("botops.test")
    logger.info("start")
    seen: list[str] = []
    with LogFollower(log_dir) as follower:
        list(follower.backlog())
        for number in range(12):
            logger.info("new %02d %s", number, "y" * 300)
            seen += settle(follower)

    assert (log_dir / "botops.log.2").exists()
    assert seen == [f"new {number:02d} {'y' * 300}" for number in range(12)]


def test_follower_reads_a_truncated_file_from_its_start(log_dir: Path) -> None:
    path = write(
        log_dir / "botops.log", *(text_line(NOW, "INFO", "botops.bot", f"old {n}") for n in range(5))
    )
    with LogFollower(log_dir) as follower:
        list(follower.backlog())

        write(path, text_line(NOW, "INFO", "botops.bot", "after truncation"))

        assert settle(follower) == ["after truncation"]


def test_follower_waits_for_a_current_file_that_is_missing(log_dir: Path) -> None:
    with LogFollower(log_dir) as follower:
        assert list(follower.backlog()) == []
        assert follower.poll() == []

        write(log_dir / "botops.log", text_line(NOW, "INFO", "botops.bot", "appeared"))

        assert settle(follower) == ["appeared"]
