"""Owner tools: what a failed reload reports, on a real bot that is not connected."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from botops.bot import Bot
from botops.cogs.admin import reload_extensions
from botops.db.engine import create_engine
from botops.redaction import REDACTED
from botops.settings import load_settings

# Not shaped like a Discord token, so only the settings' secrets can have it redacted.
SECRET = "hunter2-database-password"

_EXTENSION = '''\
"""An extension the tests rewrite."""


async def setup(bot):
    pass
'''


@pytest.fixture
def extension(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An importable extension module ``botops_test_reload`` in ``tmp_path``."""
    path = tmp_path / "botops_test_reload.py"
    path.write_text(_EXTENSION, encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)  # a rewrite within the same second must count
    yield path
    sys.modules.pop("botops_test_reload", None)


@pytest_asyncio.fixture
async def bot(tmp_path: Path) -> AsyncIterator[Bot]:
    settings = load_settings(
        None,
        database_url=f"postgresql+asyncpg://bot:{SECRET}@127.0.0.1:1/bot",
        log_dir=tmp_path / "logs",
    )
    engine = create_engine(settings)  # never connected: nothing here touches the database
    client = Bot(settings, engine, builtin_extensions=())
    try:
        yield client
    finally:
        for name in list(client.extensions):
            await client.unload_extension(name)
        await engine.dispose()


@pytest.mark.asyncio
async def test_a_failed_reload_reports_its_cause_without_the_settings_secrets(
    bot: Bot, extension: Path
) -> None:
    await bot.load_extension("botops_test_reload")
    extension.write_text(f'raise RuntimeError("cannot connect with {SECRET}")\n', encoding="utf-8")  # noqa: ASYNC240

    outcome = await reload_extensions(bot, "botops_test_reload")

    reply = outcome.describe("en", sorted(bot.extensions))
    assert reply.startswith("botops_test_reload did not reload and its previous version keeps running")
    assert f"RuntimeError: cannot connect with {REDACTED}" in reply
    assert SECRET not in reply
