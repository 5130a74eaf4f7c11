"""``botops config check`` and ``botops config example`` through the command line."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from botops.cli import ExitCode, app
from botops.settings import render_env_example
from tests.test_settings import fake_token

runner = CliRunner()


@pytest.fixture(autouse=True)
def _in_empty_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("ENVIRONMENT", "DISCORD_TOKEN", "DATABASE_URL", "LOG_LEVEL"):
        monkeypatch.delenv(name, raising=False)


def test_check_prints_the_configuration_with_the_token_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    token = fake_token()
    monkeypatch.setenv("DISCORD_TOKEN", token)

    result = runner.invoke(app, ["config", "check"])

    assert result.exit_code == ExitCode.OK
    assert "DISCORD_TOKEN" in result.output
    assert "********" in result.output
    assert token not in result.output
    assert "configuration OK" in result.output


def test_check_reports_each_problem_in_one_line_and_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_FORMAT", "xml")
    monkeypatch.setenv("HEARTBEAT_TIMEOUT", "-1")

    result = runner.invoke(app, ["config", "check"])

    assert result.exit_code == ExitCode.USAGE
    lines = [line for line in result.output.splitlines() if line.startswith("error: ")]
    assert [line.split(":")[1].strip() for line in lines] == ["HEARTBEAT_TIMEOUT", "LOG_FORMAT"]
    assert "Traceback" not in result.output


def test_check_in_production_refuses_an_env_file_others_can_read(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(f"ENVIRONMENT=production\nDISCORD_TOKEN={fake_token()}\n")
    env.chmod(0o640)

    result = runner.invoke(app, ["config", "check"])

    assert result.exit_code == ExitCode.USAGE
    assert "chmod 600 .env" in result.output


def test_example_writes_every_setting(tmp_path: Path) -> None:
    result = runner.invoke(app, ["config", "example"])

    assert result.exit_code == ExitCode.OK
    assert (tmp_path / ".env.example").read_text(encoding="utf-8") == render_env_example()


def test_example_check_fails_when_the_file_is_stale(tmp_path: Path) -> None:
    (tmp_path / ".env.example").write_text("DISCORD_TOKEN=\n")

    result = runner.invoke(app, ["config", "example", "--check"])

    assert result.exit_code == ExitCode.FAILURE
    assert "botops config example" in result.output


def test_committed_readme_table_matches_the_settings_model() -> None:
    repo = Path(__file__).resolve().parents[2]

    result = runner.invoke(
        app,
        [
            "config",
            "example",
            "--check",
            "--readme",
            str(repo / "README.md"),
            "--output",
            str(repo / ".env.example"),
        ],
    )

    assert result.exit_code == ExitCode.OK, "run `botops config example --readme README.md` and commit"


def test_readme_table_is_refreshed_between_its_markers(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text("intro\n<!-- settings-table:start -->\nstale\n<!-- settings-table:end -->\noutro\n")

    result = runner.invoke(app, ["config", "example", "--readme", str(readme)])

    text = readme.read_text()
    assert result.exit_code == ExitCode.OK
    assert "stale" not in text
    assert "| `DATABASE_URL` | `sqlite+aiosqlite:///data/bot.db` |" in text
    assert text.startswith("intro\n")
    assert text.endswith("<!-- settings-table:end -->\noutro\n")


@pytest.mark.parametrize(
    ("variable", "value"),
    [("COMMAND_PREFIX", "[/]"), ("LOG_DIR", "/x/[red]a[/red]b")],
    ids=["closing-tag", "colour-tags"],
)
def test_check_shows_values_that_look_like_markup_as_they_are(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)

    result = runner.invoke(app, ["config", "check"])

    assert result.exit_code == ExitCode.OK, result.output
    assert value in result.output
