"""Pointing discord.py at another Discord: what it changes, and when it refuses."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

from botops.endpoints import DISCORD_API_BASE, DISCORD_GATEWAY, redirect_discord, restore_discord
from botops.errors import ConfigurationError, EndpointRedirectRefused

API = "http://127.0.0.1:9/api/v10"
GATEWAY = "ws://127.0.0.1:9/gateway"


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    yield
    restore_discord()


def test_redirect_sets_rest_base_and_default_gateway() -> None:
    assert redirect_discord(API, GATEWAY, environment="development") is True

    assert Route.BASE == API
    assert Route("GET", "/users/@me").url == API + "/users/@me"
    assert yarl.URL(GATEWAY) == DiscordWebSocket.DEFAULT_GATEWAY


def test_redirect_without_urls_changes_nothing() -> None:
    assert redirect_discord(None, None, environment="production") is False

    assert Route.BASE == DISCORD_API_BASE == "https://discord.com/api/v10"
    assert DiscordWebSocket.DEFAULT_GATEWAY == DISCORD_GATEWAY


def test_redirect_is_refused_in_production_naming_the_variable() -> None:
    with pytest.raises(EndpointRedirectRefused, match="DISCORD_API_BASE is set but ENVIRONMENT=production"):
        redirect_discord(API, GATEWAY, environment="production")

    assert Route.BASE == DISCORD_API_BASE


def test_redirect_needs_both_urls() -> None:
    with pytest.raises(ConfigurationError, match="DISCORD_GATEWAY_URL is not set") as caught:
        redirect_discord(API, None, environment="development")

    assert caught.value.variable == "DISCORD_GATEWAY_URL"


@pytest.mark.parametrize(
    ("api", "gateway", "variable"),
    [
        ("127.0.0.1:9/api/v10", GATEWAY, "DISCORD_API_BASE"),
        (API, "http://127.0.0.1:9/gateway", "DISCORD_GATEWAY_URL"),
    ],
)
def test_redirect_refuses_a_url_of_the_wrong_scheme(api: str, gateway: str, variable: str) -> None:
    with pytest.raises(ConfigurationError, match=f"{variable} must be an absolute") as caught:
        redirect_discord(api, gateway, environment="development")

    assert caught.value.variable == variable
    assert Route.BASE == DISCORD_API_BASE


def test_redirect_logs_a_warning_while_active(caplog: pytest.LogCaptureFixture) -> None:
    redirect_discord(API, GATEWAY, environment="development")

    assert any(r.levelname == "WARNING" and API in r.getMessage() for r in caplog.records)


def test_restore_points_discord_py_back_at_discord() -> None:
    redirect_discord(API, GATEWAY, environment="test")
    restore_discord()

    assert Route.BASE == DISCORD_API_BASE
    assert DiscordWebSocket.DEFAULT_GATEWAY == DISCORD_GATEWAY
