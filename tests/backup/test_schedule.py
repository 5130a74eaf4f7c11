"""When the bot's daily backup runs: ``next_run_after`` on the local calendar, daylight saving included."""

from __future__ import annotations

import datetime
import time
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from botops.backup.schedule import next_run_after

UTC = datetime.UTC


@pytest.fixture
def berlin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The local time zone is Europe/Berlin (CET/CEST) for the test."""
    monkeypatch.setenv("TZ", "Europe/Berlin")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def local(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).astimezone()


def test_a_time_later_today_runs_today(berlin: None) -> None:
    assert next_run_after(local("2026-11-28T01:00"), datetime.time(3)) == local("2026-11-28T03:00")


def test_a_time_already_past_runs_tomorrow(berlin: None) -> None:
    assert next_run_after(local("2026-11-28T04:00"), datetime.time(3)) == local("2026-11-29T03:00")


def test_the_exact_time_runs_the_next_day_so_a_run_never_repeats(berlin: None) -> None:
    assert next_run_after(local("2026-11-28T03:00"), datetime.time(3)) == local("2026-11-29T03:00")


def test_the_time_is_the_local_clocks_not_utc(berlin: None) -> None:
    # 03:00 in Berlin in winter is 02:00 UTC.
    due = next_run_after(datetime.datetime(2026, 11, 28, 1, 0, tzinfo=UTC), datetime.time(3))
    assert due.astimezone(UTC) == datetime.datetime(2026, 11, 28, 2, 0, tzinfo=UTC)


def test_the_run_follows_the_clock_across_the_spring_change(berlin: None) -> None:
    # Clocks go from 02:00 CET to 03:00 CEST on 2026-03-29: 03:00 local is 01:00 UTC that day.
    due = next_run_after(local("2026-03-28T12:00"), datetime.time(3))
    assert due.astimezone(UTC) == datetime.datetime(2026, 3, 29, 1, 0, tzinfo=UTC)
    following = next_run_after(due, datetime.time(3))
    assert following.astimezone(UTC) == datetime.datetime(2026, 3, 30, 1, 0, tzinfo=UTC)


def test_a_skipped_local_time_still_runs_that_day(berlin: None) -> None:
    # 02:30 does not exist on 2026-03-29 in Berlin; the run happens that morning, not a day later.
    due = next_run_after(local("2026-03-29T00:30"), datetime.time(2, 30))
    assert due.date() == datetime.date(2026, 3, 29)
    assert datetime.timedelta(0) < due - local("2026-03-29T00:30") <= datetime.timedelta(hours=3)


@given(
    moment=st.datetimes(
        min_value=datetime.datetime(2000, 1, 1),
        max_value=datetime.datetime(2090, 1, 1),
        timezones=st.just(UTC),
    ),
    at=st.times(),
)
def test_the_next_run_is_after_now_and_at_most_a_day_and_an_hour_later(
    moment: datetime.datetime, at: datetime.time
) -> None:
    due = next_run_after(moment, at)
    assert moment < due <= moment + datetime.timedelta(hours=25)
