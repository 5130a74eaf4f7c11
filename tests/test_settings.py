"""Settings: typed values from the environment and .env, clear problems, masked secrets, .env.example."""

from __future__ import annotations

import base64
import secrets
from pathlib import Path

import pytest

from botops.errors import ConfigurationError
from botops.settings import SettingsError, check_env_file_permissions, load_settings, render_env_example

REPO = Path(__file__).resolve().parents[1]


def fake_token() -> str:
    """A token in Discord's shape, made now so none sits in the repository."""
    head = base64.urlsafe_b64encode(str(secrets.randbelow(10**18) + 10**17).encode()).decode().rstrip("=")
    return f"{head}.{secrets.token_urlsafe(6)[:6]}.{secrets.token_urlsafe(30)[:27]}"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("ENVIRONMENT", "DISCORD_TOKEN", "DATABASE_URL", "LOG_LEVEL", "OWNER_IDS", "SHARD_IDS"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_development_on_sqlite_with_debug_logs_and_auto_migration() -> None:
    settings = load_settings(None)

    assert settings.environment == "development"
    assert settings.database_url.get_secret_value() == "sqlite+aiosqlite:///data/bot.db"
    assert settings.effective_log_level == "DEBUG"
    assert settings.auto_migrate is True


def test_production_defaults_to_info_logs_and_no_auto_migration() -> None:
    settings = load_settings(None, environment="production", discord_token=fake_token())

    assert settings.effective_log_level == "INFO"
    assert settings.auto_migrate is False


def test_values_come_from_the_env_file_and_the_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = tmp_path / ".env"
    env.write_text("LOG_LEVEL=warning\nOWNER_IDS=1, 2,3\nCOMMAND_PREFIX=?\n")
    monkeypatch.setenv("COMMAND_PREFIX", "$")

    settings = load_settings(env)

    assert settings.log_level == "WARNING"
    assert settings.owner_ids == [1, 2, 3]
    assert settings.command_prefix == "$"


def test_each_problem_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_MAX_BYTES", "ten")
    monkeypatch.setenv("DATABASE_URL", "mysql://localhost/bot")

    with pytest.raises(SettingsError) as caught:
        load_settings(None)

    assert sorted(p.variable for p in caught.value.problems) == ["DATABASE_URL", "LOG_MAX_BYTES"]
    assert "sqlite+aiosqlite://" in str(caught.value)


def test_production_requires_a_token() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(None, environment="production")

    (problem,) = caught.value.problems
    assert problem.variable == "DISCORD_TOKEN"
    assert ".env" in problem.message


def test_production_refuses_the_sandbox_endpoints() -> None:
    with pytest.raises(SettingsError, match="production refuses"):
        load_settings(
            None,
            environment="production",
            discord_token=fake_token(),
            discord_api_base="http://127.0.0.1:1/api/v10",
            discord_gateway_url="ws://127.0.0.1:1/gateway",
        )


#: Every interface: a host the settings must refuse to serve on without a token in production.
ANY_HOST = "0.0.0.0"  # noqa: S104


@pytest.mark.parametrize("host", [ANY_HOST, "192.168.1.20", "bot.example.org"])
def test_production_refuses_an_open_http_server_without_a_token(host: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(None, environment="production", discord_token=fake_token(), http_host=host)

    assert [p.variable for p in caught.value.problems] == ["HTTP_TOKEN"]
    assert "HTTP_HOST=127.0.0.1" in str(caught.value)


@pytest.mark.parametrize(
    ("host", "token"), [("127.0.0.1", None), ("::1", None), ("localhost", None), (ANY_HOST, "s3cret-token")]
)
def test_production_accepts_a_loopback_http_server_or_one_with_a_token(host: str, token: str | None) -> None:
    settings = load_settings(
        None, environment="production", discord_token=fake_token(), http_host=host, http_token=token
    )

    assert settings.http_host == host
    if token:
        assert token in settings.secret_values()


@pytest.mark.parametrize(
    "dsn", ["htps://key@o1.ingest.sentry.io/42", "https://o1.ingest.sentry.io/42", "https://key@host/project"]
)
def test_a_malformed_sentry_dsn_is_a_problem_of_sentry_dsn_that_does_not_quote_it(dsn: str) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(None, sentry_dsn=dsn)

    assert [p.variable for p in caught.value.problems] == ["SENTRY_DSN"]
    assert "Client Keys" in str(caught.value)
    assert dsn not in str(caught.value)


def test_a_sentry_dsn_is_a_secret() -> None:
    dsn = "https://0123456789abcdef@o1.ingest.sentry.io/42"

    settings = load_settings(None, sentry_dsn=dsn)

    assert dsn in settings.secret_values()
    assert dsn not in dict(settings.describe())["SENTRY_DSN"]


@pytest.mark.parametrize(
    ("changes", "url"),
    [
        ({}, "http://127.0.0.1:8080"),
        ({"http_host": ANY_HOST, "http_port": 9100}, "http://127.0.0.1:9100"),
        ({"http_host": "::1"}, "http://[::1]:8080"),
        ({"http_port": 0}, None),
        ({"http_enabled": False}, None),
    ],
)
def test_commands_on_this_machine_reach_the_bots_http_server_at_its_loopback_url(
    changes: dict[str, object], url: str | None
) -> None:
    assert load_settings(None, **changes).http_url == url


def test_sandbox_endpoints_go_together() -> None:
    with pytest.raises(SettingsError, match="set both or neither"):
        load_settings(None, discord_api_base="http://127.0.0.1:1/api/v10")


def test_shard_ids_must_be_below_the_shard_count(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHARD_IDS", "0,2")
    monkeypatch.setenv("SHARD_COUNT", "2")

    with pytest.raises(SettingsError, match="below SHARD_COUNT"):
        load_settings(None)


def test_errors_never_echo_the_rejected_value(monkeypatch: pytest.MonkeyPatch) -> None:
    token = fake_token()
    monkeypatch.setenv("DISCORD_TOKEN", token)
    monkeypatch.setenv("GUILD_READY_TIMEOUT", token)

    with pytest.raises(SettingsError) as caught:
        load_settings(None)

    assert token not in str(caught.value)


def test_secrets_are_masked_when_described() -> None:
    token = fake_token()
    settings = load_settings(
        None, discord_token=token, database_url="postgresql+asyncpg://bot:hunter22@db.internal/bot"
    )

    shown = dict(settings.describe())

    assert shown["DISCORD_TOKEN"] == "********"
    assert shown["DATABASE_URL"] == "postgresql+asyncpg://bot:***@db.internal/bot"
    assert token not in str(shown)
    assert "hunter22" not in str(shown)
    assert {token, "hunter22"} <= set(settings.secret_values())


def test_a_database_url_whose_port_is_not_a_number_is_a_problem_of_database_url() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(None, database_url="postgresql+asyncpg://u:secret99@db:notaport/x")

    assert [p.variable for p in caught.value.problems] == ["DATABASE_URL"]
    assert "port is a number" in str(caught.value)
    assert "secret99" not in str(caught.value)


def test_a_database_url_with_a_raw_at_in_its_password_is_a_problem_of_database_url() -> None:
    with pytest.raises(SettingsError, match="write it as %40"):
        load_settings(None, database_url="postgresql+asyncpg://bot:pa@ss@host/bot")


def test_secret_values_hold_a_database_password_with_a_raw_slash_decoded_and_as_written() -> None:
    settings = load_settings(None, database_url="postgresql+asyncpg://bot:pa/ss%40x@host/bot")

    assert {"pa/ss@x", "pa/ss%40x"} <= set(settings.secret_values())


def test_a_database_password_given_as_a_query_parameter_is_masked_when_described() -> None:
    settings = load_settings(None, database_url="postgresql+asyncpg://bot@db/bot?password=hunter22")

    shown = dict(settings.describe())["DATABASE_URL"]

    assert "hunter22" not in shown
    assert shown.startswith("postgresql+asyncpg://bot@db/bot?password=")
    assert "hunter22" in settings.secret_values()


def test_an_env_file_readable_by_others_is_refused_with_the_fix(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("DISCORD_TOKEN=x\n")
    env.chmod(0o644)

    with pytest.raises(ConfigurationError, match="chmod 600"):
        check_env_file_permissions(env)

    env.chmod(0o600)
    check_env_file_permissions(env)


def test_committed_env_example_matches_the_settings_model() -> None:
    committed = (REPO / ".env.example").read_text(encoding="utf-8")

    assert committed == render_env_example(), "run `botops config example` and commit .env.example"


def test_env_example_lists_every_setting_with_its_description() -> None:
    text = render_env_example()

    for variable in (
        "ENVIRONMENT=development",
        "DISCORD_TOKEN=",
        "DATABASE_URL=sqlite+aiosqlite:///data/bot.db",
    ):
        assert f"\n{variable}\n" in text
    assert "# The bot token from the Discord developer portal" in text
