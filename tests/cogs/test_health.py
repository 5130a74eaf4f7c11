"""The /health embed: what it shows for each state, in the asker's language."""

from __future__ import annotations

import pytest

from botops.bot.health import HealthReport
from botops.cogs.health import render_health


def report(*, latency_ms: float | None) -> HealthReport:
    return HealthReport(
        database_ok=True,
        database_ms=1.0,
        database_error=None,
        schema_current=True,
        schema_revision="0002",
        latency_ms=latency_ms,
        extensions=["botops.cogs.health"],
        failed_extensions={},
        uptime_seconds=5,
        version="1.0",
        commit="abc",
        memory_bytes=2**20,
    )


@pytest.mark.parametrize(
    ("language", "field", "shown"),
    [("en", "Gateway latency", "⚠️ HIGH: not connected"), ("de", "Gateway-Latenz", "⚠️ HOCH: nicht verbunden")],
)
def test_a_bot_without_a_gateway_connection_says_so_in_the_askers_language(
    language: str, field: str, shown: str
) -> None:
    embed = render_health(report(latency_ms=None), language)

    assert {f.name: f.value for f in embed.fields}[field] == shown
