"""PostgreSQL work for backups: ``pg_dump -Fc`` in one snapshot, its checks, and a one-transaction restore.

The dump is taken in a snapshot exported by a read-only REPEATABLE READ transaction, so the archive and
the row counts taken beside it see the same commits: every one made before the dump started, none after.
``pg_dump`` writes the custom format to a pipe (``--compress=0``) and its output is compressed with
zstandard and hashed on the way into the backup file. Written to a pipe, the archive has no data offsets,
so ``pg_restore --list`` reads only its table of contents: a truncated archive is caught by reading it to
the end, which :func:`archive_problem` does.

The restore pipes ``pg_restore``'s SQL into ``psql`` inside one explicit transaction that first drops
every schema of the database, and sends ``COMMIT`` only after ``pg_restore`` has exited cleanly: a
failure anywhere (a damaged archive, a statement that fails, a cancellation) leaves the database as it
was. The connection reaches the client tools only through libpq's ``PG*`` variables, never argv.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import asyncpg
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from botops.backup.compression import HashingWriter, header_problem, new_compressor
from botops.errors import BackupError, BackupFailed
from botops.redaction import Redactor, masked_url

__all__ = [
    "ARCHIVE_MAGIC",
    "ArchiveContents",
    "Dumped",
    "archive_contents",
    "archive_problem",
    "archive_revision",
    "archive_row_counts",
    "count_rows",
    "dump_database",
    "libpq_environment",
    "restore_archive",
    "scratch_database",
]

log = logging.getLogger(__name__)

#: The first bytes of every ``pg_dump`` custom-format archive.
ARCHIVE_MAGIC = b"PGDMP"
_CHUNK_SIZE = 1 << 20
_CONNECT_TIMEOUT = 10.0
#: How long pg_dump waits for a table lock (and the restore for its DROP SCHEMA's, in _RESTORE_PREAMBLE), so
#: a migration or a forgotten session holding a table makes the run fail instead of hang.
_LOCK_WAIT_TIMEOUT = "60s"
_APPLICATION_NAME = "botops-backup"
_INSTALL_HINT = (
    "install the PostgreSQL client tools (postgresql-client) of the server's major version or newer"
)
# libpq's sslmode values, which asyncpg's ``ssl`` takes as well.
_SSL_MODES = frozenset({"disable", "allow", "prefer", "require", "verify-ca", "verify-full"})

#: The tables whose rows a dump holds: ordinary tables (partitions included, their parents not, as
#: pg_dump dumps the data of leaves) outside the system schemas, not members of an extension. ``key``
#: is the name used in row counts: ``table`` in schema public, ``schema.table`` elsewhere.
_TABLES_SQL = """
SELECT n.nspname AS schema_name, c.relname AS table_name,
       CASE WHEN n.nspname = 'public' THEN c.relname::text ELSE n.nspname || '.' || c.relname END AS key
FROM pg_catalog.pg_class AS c
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'
  AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'
  AND NOT EXISTS (
      SELECT 1 FROM pg_catalog.pg_depend AS d
      WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = c.oid AND d.deptype = 'e'
  )
ORDER BY 1, 2
"""

# Runs first in the restore's transaction. Every schema goes, so objects the archive lacks (a table of a
# newer migration) go too. pg_dump never writes CREATE SCHEMA public (only its comment, owner and grants
# when they differ from the defaults), so public is made again with the owner and grants it had here.
_RESTORE_PREAMBLE = """
BEGIN;
SET LOCAL lock_timeout = '60s';
SET LOCAL client_min_messages = warning;
DO $botops$
DECLARE
    public_owner oid;
    public_acl aclitem[];
    schema_name name;
    granted record;
BEGIN
    SELECT nspowner, nspacl INTO public_owner, public_acl
    FROM pg_catalog.pg_namespace WHERE nspname = 'public';
    PERFORM pg_catalog.lo_unlink(oid) FROM pg_catalog.pg_largeobject_metadata;
    FOR schema_name IN
        SELECT nspname FROM pg_catalog.pg_namespace
        WHERE nspname <> 'information_schema' AND nspname !~ '^pg_'
    LOOP
        EXECUTE pg_catalog.format('DROP SCHEMA %I CASCADE', schema_name);
    END LOOP;
    IF public_owner IS NULL THEN
        CREATE SCHEMA public;
    ELSE
        EXECUTE pg_catalog.format(
            'CREATE SCHEMA public AUTHORIZATION %I', pg_catalog.pg_get_userbyid(public_owner)
        );
        FOR granted IN SELECT * FROM pg_catalog.aclexplode(public_acl) LOOP
            EXECUTE pg_catalog.format(
                'GRANT %s ON SCHEMA public TO %s%s',
                granted.privilege_type,
                CASE WHEN granted.grantee = 0 THEN 'PUBLIC'
                     ELSE pg_catalog.quote_ident(pg_catalog.pg_get_userbyid(granted.grantee)) END,
                CASE WHEN granted.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END
            );
        END LOOP;
    END IF;
    COMMENT ON SCHEMA public IS 'standard public schema';
END
$botops$;
"""

# Runs last, before COMMIT, when the caller gave the row counts the archive must hold.
# Only constants go into it: the expected counts come through a setting, not the text.
_ROW_COUNT_CHECK = """
DO $botops$
DECLARE
    expected jsonb := pg_catalog.current_setting('botops.expected_tables')::jsonb;
    actual jsonb := '{}';
    item record;
    counted bigint;
    differing text;
BEGIN
    FOR item IN <tables> LOOP
        EXECUTE pg_catalog.format('SELECT count(*) FROM %I.%I', item.schema_name, item.table_name)
            INTO counted;
        actual := actual || pg_catalog.jsonb_build_object(item.key, counted);
    END LOOP;
    IF actual <> expected THEN
        SELECT pg_catalog.string_agg(name, ', ' ORDER BY name) INTO differing
        FROM (SELECT pg_catalog.jsonb_object_keys(actual) UNION SELECT pg_catalog.jsonb_object_keys(expected))
            AS keys (name)
        WHERE actual -> name IS DISTINCT FROM expected -> name;
        RAISE EXCEPTION 'the restored row counts differ from the backup''s in %', differing;
    END IF;
END
$botops$;
""".replace("<tables>", _TABLES_SQL)

#: pg_restore --single-transaction ends its script with this, then only comments and \unrestrict.
_FINAL_COMMIT = b"\nCOMMIT;\n"
#: How much of the end of pg_restore's script is held back to find that COMMIT in.
_TAIL_SIZE = 1 << 16

_IDENTIFIER = r'(?:"(?:[^"]|"")+"|[^\s."(]+)'
_COPY_RE = re.compile(rf"^COPY ({_IDENTIFIER})\.({_IDENTIFIER})[ (]")
_COMPLAINT_RE = re.compile(r"(?:ERROR|FATAL|error):\s+(.*)")
_COPY_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


@dataclass(frozen=True)
class Dumped:
    """A dump written by :func:`dump_database`, with what its snapshot held."""

    raw_size: int  # bytes of the uncompressed pg_dump -Fc archive
    compressed_size: int
    sha256: str  # of the compressed file, in hex
    # Rows per table in the dump's snapshot: "table" in schema public, "schema.table" elsewhere.
    tables: dict[str, int]
    revision: str | None  # alembic_version's row(s), sorted and comma-joined; None without any


@dataclass(frozen=True)
class ArchiveContents:
    """What an archive's data holds, read without a server: rows per table and the Alembic revision."""

    tables: dict[str, int]
    revision: str | None


def libpq_environment(url: str) -> dict[str, str]:
    """Return a copy of ``os.environ`` with the ``PG*`` variables that connect libpq to ``url``.

    ``url`` is a SQLAlchemy URL as in ``DATABASE_URL``; its ``?host=`` (a socket folder) and ``?ssl=``
    (an sslmode) are honoured, other query options only concern asyncpg.

    Raises:
        BackupFailed: ``url`` is not a PostgreSQL URL botops can hand to the client tools.
    """
    settings = _libpq_settings(url)
    environment = dict(os.environ)
    environment.update(settings)
    return environment


async def dump_database(url: str, target: Path) -> Dumped:
    """Dump the database at ``url`` with ``pg_dump -Fc`` into the new file ``target``, zstandard-compressed.

    ``target`` is created with mode 0600 and flushed to disk; it is removed again on any failure.

    Raises:
        BackupFailed: pg_dump is not installed, the database cannot be reached, or pg_dump failed.
    """
    pg_dump = _tool("pg_dump", BackupFailed)
    settings = _libpq_settings(url)
    environment = {**os.environ, **settings}
    scrub = Redactor([settings["PGPASSWORD"]] if "PGPASSWORD" in settings else [])
    where = masked_url(url)
    try:
        connection = await asyncpg.connect(
            **_asyncpg_arguments(settings),
            timeout=_CONNECT_TIMEOUT,
            server_settings={
                "application_name": _APPLICATION_NAME,
                "idle_in_transaction_session_timeout": "0",  # pg_dump needs the snapshot kept open
                "statement_timeout": "0",
            },
        )
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        raise BackupFailed(
            f"cannot connect to {where}: {scrub(str(error))}; check DATABASE_URL and that the server is up"
        ) from None
    try:
        dumped = await _dump_in_snapshot(connection, pg_dump, environment, target, scrub)
    except (asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        connection.terminate()
        raise BackupFailed(f"reading {where} failed: {scrub(str(error))}") from None
    except BaseException:
        connection.terminate()
        raise
    try:
        await connection.close(timeout=_CONNECT_TIMEOUT)  # ends the snapshot's transaction
    except Exception as error:  # the dump is complete; only its snapshot's connection ended badly
        log.debug("Closing the snapshot's connection failed: %s", scrub(str(error)))
        connection.terminate()
    except BaseException:  # cancelled at the last moment: the caller must find no file
        connection.terminate()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target)
        raise
    return dumped


def archive_problem(archive: Path) -> str | None:
    """Check the uncompressed archive at ``archive`` with ``pg_restore``; return its complaint or ``None``.

    The table of contents is listed, then the whole archive is read, so a truncated one is caught too.

    Raises:
        BackupError: pg_restore is not installed.
        OSError: pg_restore cannot be started.
    """
    pg_restore = _tool("pg_restore", BackupError)
    problem = header_problem(archive, ARCHIVE_MAGIC, "a pg_dump archive")
    if problem is not None:
        return problem
    for argv, problem in (
        ([pg_restore, "--list", str(archive)], "is not a readable pg_dump archive"),
        ([pg_restore, f"--file={os.devnull}", str(archive)], "cannot be read to its end"),
    ):
        finished = subprocess.run(  # noqa: S603 - the tool's absolute path and a file name, no shell
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
        )
        if finished.returncode != 0:
            return f"{problem} ({_complaint(finished.stderr, finished.returncode)})"
    return None


def archive_contents(archive: Path) -> ArchiveContents:
    """Read the rows per table and the Alembic revision from the uncompressed archive, without a server.

    Every ``COPY`` block of ``pg_restore --data-only`` is counted; COPY's text format escapes line breaks,
    so one line is one row. pg_dump writes a block for every table it dumps, an empty one included.

    Raises:
        BackupError: pg_restore is not installed.
        ValueError: pg_restore cannot read the archive (its complaint is the message).
        OSError: pg_restore cannot be started.
    """
    pg_restore = _tool("pg_restore", BackupError)
    tables: dict[str, int] = {}
    versions: list[str] = []
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(  # noqa: S603 - the tool's absolute path and a file name, no shell
            [pg_restore, "--data-only", "--file=-", str(archive)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errors,
        )
        stdout = cast(IO[bytes], process.stdout)
        try:
            for line in stdout:
                match = _COPY_RE.match(line.decode("utf-8", "surrogateescape"))
                if match is None:
                    continue
                key = _table_key(_unquote(match[1]), _unquote(match[2]))
                rows = 0
                for row in stdout:
                    if row == b"\\.\n":
                        break
                    rows += 1
                    if key == "alembic_version" and (version := _copy_value(row)) is not None:
                        versions.append(version)
                tables[key] = rows
        except BaseException:
            process.kill()
            raise
        finally:
            stdout.close()
            returncode = process.wait()
        if returncode != 0:
            raise ValueError(f"pg_restore cannot read it ({_complaint(_read(errors), returncode)})")
    revision = ",".join(sorted(versions)) or None
    return ArchiveContents(tables=tables, revision=revision)


def archive_row_counts(archive: Path) -> dict[str, int]:
    """Return the rows per table in the uncompressed archive, read without a server.

    Raises:
        BackupError: pg_restore is not installed.
        ValueError: pg_restore cannot read the archive.
        OSError: pg_restore cannot be started.
    """
    return archive_contents(archive).tables


def archive_revision(archive: Path) -> str | None:
    """Return the Alembic revision in the uncompressed archive's data, ``None`` without one.

    Raises:
        BackupError: pg_restore is not installed.
        ValueError: pg_restore cannot read the archive.
        OSError: pg_restore cannot be started.
    """
    return archive_contents(archive).revision


async def count_rows(url: str) -> dict[str, int]:
    """Return the rows of every table of the database at ``url``, keyed as :class:`Dumped` keys them.

    Raises:
        BackupError: the database cannot be reached or read.
    """
    settings = _postgres_settings(url)
    try:
        connection = await asyncpg.connect(**_asyncpg_arguments(settings), timeout=_CONNECT_TIMEOUT)
        try:
            return await _count_rows(connection)
        finally:
            await connection.close(timeout=_CONNECT_TIMEOUT)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        raise BackupError(f"cannot count the rows of {masked_url(url)}: {_scrub(settings, error)}") from None


@contextlib.asynccontextmanager
async def scratch_database(url: str) -> AsyncIterator[str]:
    """Create an empty database next to the one at ``url`` for the block; yield its URL, drop it after.

    The connecting role needs the CREATEDB privilege.

    Raises:
        BackupError: the database cannot be created (the message says how to allow it).
    """
    settings = _postgres_settings(url)
    name = f"botops_drill_{secrets.token_hex(6)}"
    arguments = _asyncpg_arguments(settings)
    try:
        connection = await asyncpg.connect(**arguments, timeout=_CONNECT_TIMEOUT)
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')  # a name made here, not taken from input
        finally:
            await connection.close(timeout=_CONNECT_TIMEOUT)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        raise BackupError(
            f"cannot create a scratch database on {masked_url(url)} ({_scrub(settings, error)}): the drill "
            "needs a role with CREATEDB (ALTER ROLE ... CREATEDB)"
        ) from None
    try:
        yield make_url(url).set(database=name).render_as_string(hide_password=False)
    finally:
        try:
            connection = await asyncpg.connect(**arguments, timeout=_CONNECT_TIMEOUT)
            try:
                await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await connection.close(timeout=_CONNECT_TIMEOUT)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
            log.warning("Could not drop the scratch database %s: %s", name, _scrub(settings, error))


def _postgres_settings(url: str) -> dict[str, str]:
    try:
        return _libpq_settings(url)
    except BackupFailed as error:  # that error is about making backups
        raise BackupError(error.reason) from None


def _scrub(settings: Mapping[str, str], error: BaseException) -> str:
    return Redactor([settings["PGPASSWORD"]] if "PGPASSWORD" in settings else [])(str(error))


async def restore_archive(
    url: str, archive: Path, *, expected_tables: Mapping[str, int] | None = None
) -> None:
    """Replace everything in the database at ``url`` with the uncompressed archive, in one transaction.

    Every schema is dropped first (public is made again with its owner and grants), so what the archive
    lacks is gone afterwards. The restored objects belong to the connecting role (``--no-owner``), which
    must own the schemas, and the archive's grants are not applied (``--no-privileges``). With
    ``expected_tables`` the restored row counts are compared with it before committing.

    Raises:
        BackupError: ``url`` is not a PostgreSQL URL, pg_restore or psql is missing, or the restore
            failed; the database was not changed.
    """
    pg_restore = _tool("pg_restore", BackupError)
    psql = _tool("psql", BackupError)
    try:
        settings = _libpq_settings(url)
    except BackupFailed as error:  # that error is about making backups
        raise BackupError(f"cannot restore a PostgreSQL archive: {error.reason}") from None
    environment = {**os.environ, **settings}
    scrub = Redactor([settings["PGPASSWORD"]] if "PGPASSWORD" in settings else [])
    postscript = ""
    if expected_tables is not None:
        document = json.dumps(dict(expected_tables), sort_keys=True).replace("'", "''")
        postscript = f"SELECT pg_catalog.set_config('botops.expected_tables', '{document}', true);\n"
        postscript += _ROW_COUNT_CHECK
    pipeline = _Pipeline(environment)
    work = asyncio.ensure_future(
        asyncio.to_thread(_restore_through_psql, pipeline, pg_restore, psql, archive, postscript)
    )
    try:
        await asyncio.shield(work)
    except _ToolFailed as error:
        raise BackupError(
            f"restoring {archive.name} into {masked_url(url)} failed and changed nothing: "
            f"{error.tool} says {scrub(error.complaint)}"
        ) from None
    except OSError as error:
        raise BackupError(
            f"restoring {archive.name} into {masked_url(url)} failed and changed nothing: {error}"
        ) from error
    except BaseException:  # cancelled: psql is killed before COMMIT, so the server rolls back
        await _abandon(pipeline, work, None)
        raise
    log.warning("Restored %s into %s", archive.name, masked_url(url))


# -- internals -------------------------------------------------------------------------------------------


class _ToolFailed(Exception):
    """A client tool exited with an error; ``complaint`` is the line of its stderr that says why."""

    def __init__(self, tool: str, complaint: str) -> None:
        self.tool = tool
        self.complaint = complaint
        super().__init__(f"{tool}: {complaint}")


class _PipelineStopped(Exception):
    """The pipeline was stopped before a process could be started."""


class _Pipeline:
    """The client-tool processes of one dump or restore, which the event loop may kill from outside."""

    def __init__(self, environment: dict[str, str]) -> None:
        self._environment = environment
        self._lock = threading.Lock()
        self._processes: list[subprocess.Popen[bytes]] = []
        self._stopped = False

    def start(self, argv: Sequence[str], **options: Any) -> subprocess.Popen[bytes]:
        with self._lock:
            if self._stopped:
                raise _PipelineStopped
            # argv holds the tool's absolute path and options only; the connection is in the environment.
            process = subprocess.Popen(argv, env=self._environment, **options)  # noqa: S603
            self._processes.append(process)
            return process

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            for process in self._processes:
                if process.poll() is None:
                    process.kill()


async def _abandon(pipeline: _Pipeline, work: asyncio.Future[Any], written: Path | None) -> None:
    """Kill the pipeline's processes and wait for its thread; remove ``written`` if the thread made it."""
    pipeline.stop()
    await asyncio.wait([work])
    if not work.cancelled() and work.exception() is None and written is not None:
        await asyncio.to_thread(_remove, written)


def _remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


def _libpq_settings(url: str) -> dict[str, str]:
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as error:  # ValueError: a port that is not a number
        raise BackupFailed(f"DATABASE_URL cannot be parsed ({error}): fix its syntax") from None
    if parsed.get_backend_name() != "postgresql":
        raise BackupFailed(f"DATABASE_URL is {parsed.get_backend_name()}, not PostgreSQL: {masked_url(url)}")
    if not parsed.database:
        raise BackupFailed("DATABASE_URL names no database: add /<database> to its end")
    settings = {"PGDATABASE": parsed.database, "PGAPPNAME": _APPLICATION_NAME}
    host = _single_option(parsed, "host") or parsed.host
    for name, value in (("PGHOST", host), ("PGPORT", parsed.port), ("PGUSER", parsed.username)):
        if value is not None:
            settings[name] = str(value)
    if parsed.password is not None:
        settings["PGPASSWORD"] = str(parsed.password)
    ssl = _single_option(parsed, "ssl")
    if ssl is not None:
        if ssl not in _SSL_MODES:
            raise BackupFailed(
                f"DATABASE_URL has ssl={ssl}, which pg_dump does not take: "
                f"use one of {', '.join(sorted(_SSL_MODES))}"
            )
        settings["PGSSLMODE"] = ssl
    return settings


def _single_option(url: URL, name: str) -> str | None:
    value = url.query.get(name)
    if value is None or isinstance(value, str):
        return value
    raise BackupFailed(f"DATABASE_URL gives {name} more than once, which botops cannot back up: give one")


def _asyncpg_arguments(settings: Mapping[str, str]) -> dict[str, Any]:
    # The same values as the PG* variables pg_dump gets: both must reach the same server for the snapshot.
    names = {"PGHOST": "host", "PGUSER": "user", "PGPASSWORD": "password", "PGDATABASE": "database"}
    arguments: dict[str, Any] = {
        argument: settings[name] for name, argument in names.items() if name in settings
    }
    if "PGPORT" in settings:
        arguments["port"] = int(settings["PGPORT"])
    if "PGSSLMODE" in settings:
        arguments["ssl"] = settings["PGSSLMODE"]
    return arguments


def _tool(name: str, error: type[BackupError]) -> str:
    path = shutil.which(name)
    if path is None:
        raise error(f"{name} is not installed: {_INSTALL_HINT}")
    return path


async def _dump_in_snapshot(
    connection: Any, pg_dump: str, environment: dict[str, str], target: Path, scrub: Redactor
) -> Dumped:
    await connection.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    snapshot = str(await connection.fetchval("SELECT pg_catalog.pg_export_snapshot()"))
    argv = [
        pg_dump,
        "--format=custom",
        "--compress=0",
        f"--snapshot={snapshot}",
        f"--lock-wait-timeout={_LOCK_WAIT_TIMEOUT}",
        "--no-password",
    ]
    pipeline = _Pipeline(environment)
    # pg_dump reads in the worker thread while the rows are counted here, in the same snapshot.
    work = asyncio.ensure_future(asyncio.to_thread(_dump_through_zstd, pipeline, argv, target))
    try:
        tables = await _count_rows(connection)
        revision = await _read_revision(connection, tables)
    except BaseException:
        await _abandon(pipeline, work, target)
        raise
    try:
        raw_size, compressed_size, sha256 = await asyncio.shield(work)
    except _ToolFailed as error:
        raise BackupFailed(f"{error.tool} failed: {scrub(error.complaint)}") from None
    except OSError as error:
        raise BackupFailed(f"writing the dump to {target} failed: {error.strerror or error}") from error
    except BaseException:  # cancelled: the thread goes on until pg_dump is killed
        await _abandon(pipeline, work, target)
        raise
    log.info(
        "Dumped %d tables into %s (%d bytes, %d compressed)", len(tables), target, raw_size, compressed_size
    )
    return Dumped(raw_size, compressed_size, sha256, tables, revision)


async def _count_rows(connection: Any) -> dict[str, int]:
    tables: dict[str, int] = {}
    for row in await connection.fetch(_TABLES_SQL):
        # A table name cannot be a bound parameter; it comes from the catalog and is quoted.
        query = f"SELECT count(*) FROM {_quote(row['schema_name'])}.{_quote(row['table_name'])}"  # noqa: S608
        tables[str(row["key"])] = int(await connection.fetchval(query))
    return tables


async def _read_revision(connection: Any, tables: Mapping[str, int]) -> str | None:
    if "alembic_version" not in tables:
        return None
    rows = await connection.fetch("SELECT version_num FROM public.alembic_version")
    return ",".join(sorted(str(row[0]) for row in rows)) or None


def _dump_through_zstd(pipeline: _Pipeline, argv: list[str], target: Path) -> tuple[int, int, str]:
    """Run pg_dump and compress its output into ``target``; remove ``target`` unless it all succeeds."""
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle, tempfile.TemporaryFile() as errors:
            process = pipeline.start(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors)
            writer = HashingWriter(handle)
            compressor = new_compressor()
            try:
                # The writer has what copy_stream calls (write) and hashes what reaches the file.
                raw_size, _ = compressor.copy_stream(
                    cast(IO[bytes], process.stdout),
                    cast(IO[bytes], writer),
                    read_size=_CHUNK_SIZE,
                    write_size=_CHUNK_SIZE,
                )
            finally:
                cast(IO[bytes], process.stdout).close()
                returncode = process.wait()
            if returncode != 0:
                raise _ToolFailed("pg_dump", _complaint(_read(errors), returncode))
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            target.unlink()
        raise
    return int(raw_size), writer.size, writer.digest.hexdigest()


def _restore_through_psql(
    pipeline: _Pipeline, pg_restore: str, psql: str, archive: Path, postscript: str
) -> None:
    """Pipe pg_restore's SQL into psql after the preamble; send COMMIT only when pg_restore succeeded.

    Without ``--single-transaction`` pg_restore wraps large objects in BEGIN/COMMIT of their own, which
    would commit the restore halfway. With it, its script is one BEGIN ... COMMIT: its BEGIN only draws a
    warning inside the preamble's transaction, and its closing COMMIT is held back and replaced by ours.
    """
    with tempfile.TemporaryFile() as restore_errors, tempfile.TemporaryFile() as psql_errors:
        source = pipeline.start(
            [pg_restore, "--single-transaction", "--no-owner", "--no-privileges", "--file=-", str(archive)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=restore_errors,
        )
        try:
            sink = pipeline.start(
                [psql, "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", "--file=-"],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=psql_errors,
            )
        except BaseException:
            source.kill()
            source.wait()
            raise
        sink_input, source_output = cast(IO[bytes], sink.stdin), cast(IO[bytes], source.stdout)
        delivered, tail = True, b""
        try:
            sink_input.write(_RESTORE_PREAMBLE.encode())
            while chunk := source_output.read(_CHUNK_SIZE):
                pending = tail + chunk
                if len(pending) > _TAIL_SIZE:
                    sink_input.write(pending[:-_TAIL_SIZE])
                tail = pending[-_TAIL_SIZE:]
        except BrokenPipeError:  # psql stopped at an error: pg_restore need not go on
            delivered = False
            source.kill()
        finally:
            source_output.close()
        restore_code = source.wait()
        ending = _without_final_commit(tail) if delivered and restore_code == 0 else None
        if ending is not None:
            try:
                sink_input.write(ending + f"{postscript}COMMIT;\n".encode())
                sink_input.close()
            except BrokenPipeError:
                delivered = False
        else:
            # psql must not reach the end of its input, which would end an open COPY: killed, the session
            # ends with the transaction open, and the server rolls it back.
            sink.kill()
        with contextlib.suppress(BrokenPipeError):
            sink_input.close()
        sink_code = sink.wait()
        if delivered and restore_code == 0 and ending is None:
            raise _ToolFailed("pg_restore", "its script does not end in the COMMIT of --single-transaction")
        if sink_code != 0 and (restore_code == 0 or not delivered):
            raise _ToolFailed("psql", _complaint(_read(psql_errors), sink_code))
        if restore_code != 0:
            raise _ToolFailed("pg_restore", _complaint(_read(restore_errors), restore_code))
        if not delivered:
            raise _ToolFailed("psql", "it stopped reading before the end of the archive")


def _without_final_commit(tail: bytes) -> bytes | None:
    """Return the end of pg_restore's script without its closing COMMIT, ``None`` if it has none."""
    index = tail.rfind(_FINAL_COMMIT)
    if index < 0:
        return None
    return tail[: index + 1] + tail[index + len(_FINAL_COMMIT) :]


def _read(handle: IO[bytes]) -> bytes:
    handle.seek(0)
    return handle.read()


def _complaint(stderr: bytes, returncode: int) -> str:
    """Return the line of a client tool's stderr that says what went wrong."""
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    for line in reversed(lines):
        match = _COMPLAINT_RE.search(line)
        if match:
            return " ".join(match[1].split())
    if lines:
        return lines[-1]
    return (
        f"it exited with status {returncode}" if returncode > 0 else f"it was killed (signal {-returncode})"
    )


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _unquote(identifier: str) -> str:
    if identifier.startswith('"'):
        return identifier[1:-1].replace('""', '"')
    return identifier


def _table_key(schema: str, table: str) -> str:
    return table if schema == "public" else f"{schema}.{table}"


def _copy_value(row: bytes) -> str | None:
    """Return the first column of a line of COPY text, its escapes undone; ``None`` for NULL."""
    field = row.decode("utf-8", "surrogateescape").rstrip("\n").split("\t", 1)[0]
    if field == "\\N":
        return None
    return re.sub(r"\\(.)", lambda escape: _COPY_ESCAPES.get(escape[1], escape[1]), field)
