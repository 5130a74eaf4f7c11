"""The async database engine: SQLite tuned for a bot (WAL, foreign keys, transactional DDL) or PostgreSQL.

SQLite connections get their pragmas on every new DBAPI connection, since ``synchronous``,
``busy_timeout`` and ``foreign_keys`` are per connection. Python's sqlite3 (and aiosqlite over it) only
opens a transaction before INSERT/UPDATE/DELETE, so a CREATE TABLE would commit on its own and a failed
migration would leave half its work behind; following SQLAlchemy's documented recipe, the driver's
transaction handling is switched off and SQLAlchemy emits BEGIN itself.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from botops.errors import DatabaseUnavailable
from botops.redaction import masked_url

if TYPE_CHECKING:
    from botops.settings import Settings

__all__ = [
    "SQLITE_PRAGMAS",
    "connect",
    "create_engine",
    "create_engine_for_url",
    "database_reachable",
    "database_size",
    "masked_url",
    "ping",
    "pinged",
]

log = logging.getLogger(__name__)

#: Set on every new SQLite connection, in this order: busy_timeout first, because switching the
#: journal to WAL takes a lock that another connection may briefly hold.
SQLITE_PRAGMAS: tuple[tuple[str, str], ...] = (
    ("busy_timeout", "5000"),
    ("foreign_keys", "ON"),
    ("journal_mode", "WAL"),
    ("synchronous", "NORMAL"),
    # The running bot checkpoints from a thread of its own (botops.db.checkpoint), not in a commit.
    ("wal_autocheckpoint", "0"),
    ("journal_size_limit", str(64 * 1024 * 1024)),
)

#: Execution option that makes SQLite start the transaction with BEGIN IMMEDIATE (take the write lock
#: at once), so two processes migrating at the same moment queue instead of failing on upgrade.
BEGIN_IMMEDIATE = "botops_begin_immediate"

_POSTGRES_POOL: dict[str, Any] = {
    "pool_size": 5,
    "max_overflow": 10,
    "pool_timeout": 30,
    "pool_recycle": 1800,  # below common idle-connection limits of proxies and managed servers
    "pool_pre_ping": True,  # a restarted server costs one failed ping, not one failed query
}
_POSTGRES_CONNECT_TIMEOUT = 10.0


def create_engine(settings: Settings) -> AsyncEngine:
    """Create the engine for ``settings.database_url``.

    Raises:
        DatabaseUnavailable: the folder of a SQLite file cannot be created.
    """
    return create_engine_for_url(settings.database_url.get_secret_value())


def create_engine_for_url(url: str) -> AsyncEngine:
    """Create an engine for a ``sqlite+aiosqlite://`` or ``postgresql+asyncpg://`` URL.

    Raises:
        DatabaseUnavailable: the URL cannot be parsed, or the folder of a SQLite file cannot be created.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as error:  # ValueError: a port that is not a number
        raise DatabaseUnavailable(masked_url(url), f"the URL cannot be parsed ({error})") from None
    if parsed.get_backend_name() == "sqlite":
        _create_sqlite_folder(parsed)
        engine = create_async_engine(parsed)
        _install_sqlite_hooks(engine)
    else:
        connect_args: dict[str, Any] = {
            "timeout": _POSTGRES_CONNECT_TIMEOUT,
            "server_settings": {"application_name": "botops"},
        }
        engine = create_async_engine(parsed, connect_args=connect_args, **_POSTGRES_POOL)
    log.debug("Database engine for %s", masked_url(parsed))
    return engine


def _create_sqlite_folder(url: URL) -> None:
    database = url.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    folder = Path(database).parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise DatabaseUnavailable(
            masked_url(url), f"cannot create the folder {folder}: {error.strerror or error}"
        ) from error


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN away from the driver; _on_begin emits it, for DDL too.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            for name, value in SQLITE_PRAGMAS:
                cursor.execute(f"PRAGMA {name} = {value}")
        finally:
            cursor.close()

    @event.listens_for(sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        # Leaving an AUTOCOMMIT block resets the driver to its own (legacy) transaction handling;
        # take it back so the next transaction still covers DDL.
        if dbapi_connection.isolation_level is not None:
            dbapi_connection.isolation_level = None

    @event.listens_for(sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        options = connection.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":
            return
        connection.exec_driver_sql("BEGIN IMMEDIATE" if options.get(BEGIN_IMMEDIATE) else "BEGIN")


@contextlib.asynccontextmanager
async def connect(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """Open a connection, turning a failure to connect into one readable error.

    Errors after the connection is open (a failing query) pass through unchanged.

    Raises:
        DatabaseUnavailable: the connection could not be opened; names the masked URL and the cause.
    """
    connection = engine.connect()
    try:
        await connection.start()
    except _connect_errors() as error:
        raise DatabaseUnavailable(masked_url(engine.url), _reason(error, engine.url)) from error
    try:
        yield connection
    finally:
        await connection.close()


async def ping(engine: AsyncEngine) -> float:
    """Run ``SELECT 1`` and return how long the round trip took, in milliseconds.

    Raises:
        DatabaseUnavailable: no connection could be opened, or the query failed.
    """
    started = time.perf_counter()
    async with pinged(engine):
        pass
    return (time.perf_counter() - started) * 1000


@contextlib.asynccontextmanager
async def pinged(engine: AsyncEngine) -> AsyncIterator[tuple[AsyncConnection, float]]:
    """Open a connection and run ``SELECT 1``; yield the connection and the milliseconds that took.

    The time counts opening the connection and the query. The connection stays open for whatever else
    the caller checks (the health check reads the schema revision over it), so that one visit to the
    database costs one connection, not one per check.

    Raises:
        DatabaseUnavailable: no connection could be opened, or the query failed.
    """
    started = time.perf_counter()
    async with connect(engine) as connection:
        try:
            await connection.execute(text("SELECT 1"))
        except DBAPIError as error:
            raise DatabaseUnavailable(masked_url(engine.url), _reason(error, engine.url)) from error
        yield connection, (time.perf_counter() - started) * 1000


async def database_size(connection: AsyncConnection) -> int:
    """Return the size of the database in bytes: SQLite's main file, or PostgreSQL's database on disk.

    SQLite's count is every page of the file, free ones included, and leaves out the write-ahead log,
    which checkpoints fold back into the file.
    """
    if connection.dialect.name == "sqlite":
        pages = (await connection.execute(text("PRAGMA page_count"))).scalar_one()
        page_size = (await connection.execute(text("PRAGMA page_size"))).scalar_one()
        return int(pages) * int(page_size)
    size = (await connection.execute(text("SELECT pg_database_size(current_database())"))).scalar_one()
    return int(size)


async def database_reachable(engine: AsyncEngine) -> bool:
    """Return whether ``SELECT 1`` succeeds; the reason of a failure is logged, not raised."""
    try:
        await ping(engine)
    except DatabaseUnavailable as error:
        log.warning("Database unreachable: %s", error.reason)
        return False
    return True


def _connect_errors() -> tuple[type[BaseException], ...]:
    # asyncpg's own errors can only come from asyncpg, which SQLAlchemy imports for a PostgreSQL URL;
    # a SQLite bot never pays for importing it.
    asyncpg = sys.modules.get("asyncpg")
    if asyncpg is None:
        return (DBAPIError, OSError)
    return (DBAPIError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError)


def _reason(error: BaseException, url: URL) -> str:
    """Describe why a connection failed in one line, without the password."""
    cause: BaseException = error
    if isinstance(error, DBAPIError) and error.orig is not None:
        cause = error.orig
    # SQLAlchemy's asyncpg adapter raises its own DBAPI error class; the driver's own says more.
    for _ in range(3):
        if cause.__cause__ is None:
            break
        cause = cause.__cause__
    message = " ".join(str(cause).split()) or "no details"
    reason = f"{type(cause).__name__}: {message}"
    if url.password:
        reason = reason.replace(str(url.password), "***")
    return reason
