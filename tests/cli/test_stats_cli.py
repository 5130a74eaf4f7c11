"""``botops stats``: top commands and hourly errors read from a SQLite file, and a stale schema refused."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from botops.cli import ExitCode, app
from botops.db import migrate
from botops.db.engine import create_engine_for_url
from botops.db.stats import UsageDelta, UsageKey, hour_of, write_command_usage
from tests.db.databases import sqlite_url

runner = CliRunner()

GUILD = 100
OTHER_GUILD = 200


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """An empty SQLite file of its own, set as DATABASE_URL, in a folder without the developer's settings."""
    monkeypatch.chdir(tmp_path)
    for variable in ("ENVIRONMENT", "DATABASE_AUTO_MIGRATE"):
        monkeypatch.delenv(variable, raising=False)
    url = sqlite_url(tmp_path)
    monkeypatch.setenv("DATABASE_URL", url)
    return url


async def _fill(url: str, uses: dict[UsageKey, int], *, revision: str = "head") -> None:
    engine = create_engine_for_url(url)
    try:
        await migrate.upgrade(engine, revision)
        if uses:
            async with engine.begin() as connection:
                await write_command_usage(
                    connection, {key: UsageDelta(n, 0.01 * n) for key, n in uses.items()}
                )
    finally:
        await engine.dispose()


def fill(url: str, uses: dict[tuple[int, int, str, str], int]) -> None:
    """Write ``(hours ago, guild, command, outcome) -> uses`` of slash commands, hours counted from now."""
    now = hour_of(datetime.now(UTC))
    keys = {
        (now - ago, guild, command, "slash", outcome): n for (ago, guild, command, outcome), n in uses.items()
    }
    asyncio.run(_fill(url, keys))


def _stats(*arguments: str) -> Result:
    return runner.invoke(app, ["stats", *arguments])


def _section(output: str, title: str) -> str:
    """Return ``output`` from ``title`` to the heading or line that follows its table."""
    start = output.index(title)
    end = min(
        i for t in ("Last 7 days", "All time", "Errors per hour") if (i := output.find(t, start + 1)) > 0
    )
    return output[start:end]


def test_stats_lists_the_last_days_commands_most_used_first(database_url: str) -> None:
    fill(database_url, {(0, GUILD, "greet", "success"): 3, (1, GUILD, "rank", "success"): 2})

    result = _stats()

    assert result.exit_code == ExitCode.OK, result.output
    day = _section(result.output, "Last 24 hours")
    assert "5 uses, 0 refused, 0 errors" in day
    assert day.index("greet") < day.index("rank")


def test_stats_of_all_time_includes_what_is_older_than_a_week(database_url: str) -> None:
    fill(database_url, {(0, GUILD, "greet", "success"): 1, (24 * 30, GUILD, "rank", "success"): 4})

    result = _stats()

    assert "rank" not in _section(result.output, "Last 7 days")
    assert "rank" in result.output.split("All time", 1)[1]


def test_stats_of_one_guild_leaves_out_the_others(database_url: str) -> None:
    fill(database_url, {(0, GUILD, "greet", "success"): 1, (0, OTHER_GUILD, "rank", "success"): 1})

    result = _stats("--guild", str(GUILD))

    assert result.exit_code == ExitCode.OK, result.output
    assert f"guild {GUILD}" in result.output
    assert "greet" in result.output
    assert "rank" not in result.output


def test_stats_shows_the_errors_per_hour_as_a_sparkline_with_their_total(database_url: str) -> None:
    fill(database_url, {(0, GUILD, "boom", "error"): 2, (5, GUILD, "boom", "error"): 1})

    result = _stats()

    [line] = [line for line in result.output.splitlines() if line.startswith("Errors per hour")]
    assert line.endswith("▁" * 18 + "▅▁▁▁▁█  3 in total")


def test_stats_of_an_empty_table_says_there_are_no_commands_yet(database_url: str) -> None:
    fill(database_url, {})

    result = _stats()

    assert result.exit_code == ExitCode.OK, result.output
    assert result.output.count("no commands yet") == 3


def test_stats_refuses_a_database_without_a_schema_in_one_line(database_url: str) -> None:
    result = _stats()

    assert result.exit_code == ExitCode.FAILURE
    assert result.output.strip().splitlines() == [
        f"error: the database has no schema yet, the code needs {migrate.head_revision()}: "
        "run `botops db upgrade`"
    ]


def test_stats_refuses_a_schema_from_before_the_statistics_and_names_the_upgrade(database_url: str) -> None:
    asyncio.run(_fill(database_url, {}, revision="0002"))

    result = _stats()

    assert result.exit_code == ExitCode.FAILURE
    assert "the database schema is at 0002" in result.output
    assert "run `botops db upgrade`" in result.output
    assert "Traceback" not in result.output
