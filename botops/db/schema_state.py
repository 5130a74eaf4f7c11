"""Read where the database schema stands against the code's newest revision, mostly without Alembic.

The bot asks at each start and each ``/health`` (:func:`schema_state`, :func:`schema_state_on`), so the
common answer, "current", comes from the revision files read as plain Python literals and one SELECT of
``alembic_version``; only another answer, or files it cannot read plainly, loads Alembic. The revisions
and Alembic's configuration (:func:`alembic_config`, which holds no URL) live here too, since reading the
state needs them; :mod:`botops.db.migrate` moves the schema and re-exports this module's public names.
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from botops.db.engine import connect
from botops.errors import DatabaseError

# Alembic is imported where it is used: importing it costs about a tenth of a second (its dialect
# implementations, Mako, Pygments), and a start or a /health with the schema current never needs it.
if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

__all__ = [
    "MIGRATIONS_DIR",
    "SchemaState",
    "SchemaStatus",
    "alembic_config",
    "current_revision",
    "head_revision",
    "read_current",
    "read_state",
    "schema_state",
    "schema_state_on",
    "script_directory",
]

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


class SchemaStatus(StrEnum):
    """Where the database's revision stands against the code's newest one."""

    CURRENT = "current"
    BEHIND = "behind"
    UNKNOWN = "unknown"  # a revision this code does not know: newer code migrated the database


@dataclass(frozen=True)
class SchemaState:
    """The database's revision (``None``: no schema yet), the code's head, and what an upgrade applies."""

    current: str | None
    head: str
    status: SchemaStatus
    pending: tuple[str, ...] = ()  # oldest first

    @property
    def is_current(self) -> bool:
        return self.status is SchemaStatus.CURRENT

    @property
    def is_behind(self) -> bool:
        return self.status is SchemaStatus.BEHIND

    @property
    def is_unknown(self) -> bool:
        return self.status is SchemaStatus.UNKNOWN


def alembic_config(script_location: Path = MIGRATIONS_DIR) -> Config:
    """Build Alembic's configuration for the revisions in ``script_location``; it holds no URL."""
    from alembic.config import Config

    config = Config()
    # Config values go through configparser interpolation, where % is special.
    config.set_main_option("script_location", str(script_location).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    return config


def head_revision(script_location: Path = MIGRATIONS_DIR) -> str:
    """Return the newest revision of the code.

    Raises:
        DatabaseError: the revisions have no head or several (two revisions follow the same one).
    """
    return _head(script_directory(script_location))


async def current_revision(engine: AsyncEngine) -> str | None:
    """Return the database's revision, or ``None`` when it has no schema yet.

    Raises:
        DatabaseUnavailable: the database cannot be reached.
    """
    async with connect(engine) as connection:
        return await connection.run_sync(read_current)


async def schema_state(engine: AsyncEngine, *, script_location: Path = MIGRATIONS_DIR) -> SchemaState:
    """Compare the database's revision with the code's head.

    Raises:
        DatabaseUnavailable: the database cannot be reached.
    """
    head = _plain_head(script_location)
    script = script_directory(script_location) if head is None else None
    async with connect(engine) as connection:
        return await _state_over(connection, head, script, script_location)


async def schema_state_on(
    connection: AsyncConnection, *, script_location: Path = MIGRATIONS_DIR
) -> SchemaState:
    """Compare the database's revision with the code's head, over a connection already open.

    The health check uses it to read the revision over the connection it has just pinged.
    """
    head = _plain_head(script_location)
    script = script_directory(script_location) if head is None else None
    return await _state_over(connection, head, script, script_location)


# -- revisions and Alembic ------------------------------------------------------------------------------


def script_directory(script_location: Path) -> ScriptDirectory:
    """Load Alembic's map of the revisions in ``script_location`` (imports Alembic)."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(script_location))


def _head(script: ScriptDirectory) -> str:
    heads = script.get_heads()
    if len(heads) != 1:
        raise DatabaseError(
            f"the migrations in {script.dir} have {len(heads)} heads ({', '.join(heads) or 'none'}), "
            "the code needs exactly one: make one revision follow the other"
        )
    return heads[0]


def read_current(connection: Connection) -> str | None:
    """Return the database's revision as Alembic reads it, ``None`` when it has no schema yet."""
    from alembic.runtime.migration import MigrationContext

    heads = MigrationContext.configure(connection).get_current_heads()
    return ",".join(heads) if heads else None


# -- the fast path: the head from the files, the revision from one SELECT --------------------------------

#: What Alembic's MigrationContext reads to learn the revision, from its default table, which botops keeps.
_SELECT_VERSIONS = text("SELECT version_num FROM alembic_version")
#: The files Alembic loads from ``versions/`` as revisions (its own pattern, without sourceless files).
_REVISION_FILE = re.compile(r"(?!\.\#|__init__)(.*\.py)$")
_REVISION_NAMES = frozenset({"revision", "down_revision", "branch_labels", "depends_on"})
#: Per versions folder: its listing (name, size, mtime of each revision file) and the head read from it.
_plain_heads: dict[Path, tuple[tuple[tuple[str, int, int], ...], str | None]] = {}


def _plain_head(script_location: Path) -> str | None:
    """Return the code's one head, read from the revision files without Alembic; ``None``: ask Alembic.

    Alembic imports itself and every revision module to find the head, which the bot needs at each
    start and each ``/health``. This reads the literal ``revision`` and ``down_revision`` of each file
    instead, again only when a file is added, removed or changed. Anything it cannot read as plainly as
    Alembic would (computed values, branch labels, dependencies, a missing parent, several heads)
    answers ``None``, and Alembic decides.
    """
    versions = script_location / "versions"
    try:
        with os.scandir(versions) as entries:
            listing = tuple(
                sorted(
                    (entry.name, (stat := entry.stat()).st_size, stat.st_mtime_ns)
                    for entry in entries
                    if entry.is_file() and _REVISION_FILE.match(entry.name)
                )
            )
    except OSError:
        return None
    cached = _plain_heads.get(versions)
    if cached is not None and cached[0] == listing:
        return cached[1]
    head = _head_of_files(versions, [name for name, _, _ in listing])
    _plain_heads[versions] = (listing, head)
    return head


def _head_of_files(versions: Path, names: list[str]) -> str | None:
    parents: dict[str, tuple[str, ...]] = {}
    for name in names:
        values = _literal_revision_values(versions / name)
        if values is None:
            return None
        revision, down = values.get("revision"), values.get("down_revision", ...)
        if not isinstance(revision, str) or revision in parents:
            return None
        if values.get("branch_labels") is not None or values.get("depends_on") is not None:
            return None
        if down is None:
            parents[revision] = ()
        elif isinstance(down, str):
            parents[revision] = (down,)
        elif isinstance(down, tuple | list) and all(isinstance(parent, str) for parent in down):
            parents[revision] = tuple(down)
        else:
            return None
    referenced = {parent for revision_parents in parents.values() for parent in revision_parents}
    heads = parents.keys() - referenced
    if not referenced <= parents.keys() or len(heads) != 1:
        return None
    return heads.pop()


def _literal_revision_values(path: Path) -> dict[str, Any] | None:
    """Return the module-level literal assignments of a revision file's identifiers, or ``None``."""
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return None
    values: dict[str, Any] = {}
    for statement in tree.body:
        if isinstance(statement, ast.Import | ast.ImportFrom):
            if any((alias.asname or alias.name) in _REVISION_NAMES for alias in statement.names):
                return None
            continue
        if isinstance(statement, ast.Expr | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if getattr(statement, "name", None) in _REVISION_NAMES:
                return None
            continue
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target, value = statement.targets[0], statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            target, value = statement.target, statement.value
        else:
            return None  # control flow or unusual binding at module level: leave it to Alembic
        if not isinstance(target, ast.Name):
            return None
        if target.id not in _REVISION_NAMES:
            continue
        if target.id in values:
            return None
        try:
            values[target.id] = ast.literal_eval(value)
        except (ValueError, TypeError, SyntaxError, RecursionError):
            return None
    return values


async def _state_over(
    connection: AsyncConnection, head: str | None, script: ScriptDirectory | None, script_location: Path
) -> SchemaState:
    # The common answer, "current", needs neither Alembic nor its revision map: the head read from the
    # files (``head``) and one SELECT settle it. Any other answer is Alembic's.
    if head is not None:
        try:
            rows = await connection.execute(_SELECT_VERSIONS)
        except DBAPIError:
            # No version table yet (or no right to read it): Alembic looks below, in a fresh transaction,
            # since PostgreSQL refuses every statement after a failed one in the same transaction.
            await connection.rollback()
        else:
            versions = rows.scalars().all()
            if versions and ",".join(versions) == head:
                return SchemaState(head, head, SchemaStatus.CURRENT)
    return await connection.run_sync(read_state, script or script_directory(script_location))


def read_state(connection: Connection, script: ScriptDirectory) -> SchemaState:
    """Compare the database's revision with ``script``'s head, with Alembic's revision map."""
    from alembic.script.revision import RevisionError

    current = read_current(connection)
    head = _head(script)
    if current == head:
        return SchemaState(current, head, SchemaStatus.CURRENT)
    try:
        newest_first = [s.revision for s in script.iterate_revisions(head, current or "base")]
    except RevisionError:  # not a revision of this code, or not one the head descends from
        return SchemaState(current, head, SchemaStatus.UNKNOWN)
    return SchemaState(current, head, SchemaStatus.BEHIND, tuple(reversed(newest_first)))
