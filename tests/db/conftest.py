"""Fixtures of the database tests: each runs on SQLite and, where configured, on PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncEngine

from botops.db.engine import create_engine_for_url
from tests.db.databases import BACKENDS, temporary_database


@pytest_asyncio.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of an empty database of its own, on SQLite and on PostgreSQL."""
    async with temporary_database(request.param, tmp_path) as url:
        yield url


@pytest_asyncio.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine for :func:`database_url`, disposed after the test."""
    engine = create_engine_for_url(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()
