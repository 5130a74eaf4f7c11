"""Every exchange of every sandbox test is checked against Discord's OpenAPI description.

Responses are always the sandbox's own, so each one must match the spec; request bodies and queries
are checked when discord.py sent them (tests that send malformed requests on purpose use plain HTTP
clients).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from botops.sandbox import Sandbox
from tests.sandbox.openapi import Exchange, OpenAPIValidator

_validator: OpenAPIValidator | None = None


def _openapi() -> OpenAPIValidator:
    global _validator
    if _validator is None:
        _validator = OpenAPIValidator()
    return _validator


@pytest_asyncio.fixture
async def sandbox(sandbox: Sandbox) -> AsyncIterator[Sandbox]:
    """The plugin's sandbox, and after the test a check of all its traffic against the spec."""
    yield sandbox
    problems = []
    for exchange in sandbox.requests:
        if not exchange.known or exchange.status >= 500:
            continue  # unknown routes fail in the plugin's fixture; 5xx are injected faults the spec omits
        sent_by_discord_py = exchange.client.startswith("DiscordBot")
        found = _openapi().problems(
            Exchange(
                exchange.method,
                exchange.path,
                exchange.query,
                exchange.body if sent_by_discord_py else None,
                exchange.status,
                exchange.response,
            )
        )
        if not sent_by_discord_py:
            found = [p for p in found if "request body" not in p and "query parameter" not in p]
        problems += found
    assert not problems, "traffic that does not match Discord's OpenAPI spec:\n" + "\n".join(problems)
