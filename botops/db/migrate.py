"""Move the database schema between Alembic revisions, report where it stands, and apply the start-up rule.

Alembic is configured in code (:func:`alembic_config`): the revisions ship inside the package and the
database URL, which may hold a password, is never written to a file or a log. Every migration runs in
one transaction over a connection of botops' own engine, so a failure leaves the schema as it was.

A developer writes a new revision with::

    python -c "from alembic import command; from botops.db.migrate import alembic_config; \\
        command.revision(alembic_config(), 'what it does', autogenerate=True, rev_id='0002')"

which compares :data:`botops.db.schema.metadata` with the database named by ``DATABASE_URL``.
"""

from __future__ import annotations

import ast
import logging
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from botops.db.engine import connect
from botops.db.schema import metadata
from botops.errors import (
    BotopsError,
    DatabaseError,
    InvalidRevision,
    MigrationFailed,
    SchemaAhead,
    SchemaBehind,
)

# Alembic is imported where it is used: importing it costs about a tenth of a second (its dialect
# implementations, Mako, Pygments), and a start or a /health with the schema current never needs it.
if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from botops.settings import Settings

__all__ = [
    "MIGRATIONS_DIR",
    "MigrationResult",
    "Revision",
    "SchemaState",
    "SchemaStatus",
    "alembic_config",
    "check",
    "current_revision",
    "downgrade",
    "ensure_schema",
    "head_revision",
    "history",
    "schema_state",
    "schema_state_on",
    "upgrade",
]

log = logging.getLogger(__name__)

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


@dataclass(frozen=True)
class Revision:
    """One revision of the migrations: its id, the one it follows, and what it does."""

    id: str
    parent: str | None
    description: str
    is_head: bool


@dataclass(frozen=True)
class MigrationResult:
    """The database's revision before and after a migration (``None``: no schema)."""

    before: str | None
    after: str | None

    @property
    def changed(self) -> bool:
        return self.before != self.after


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
    return _head(_script(script_location))


def history(script_location: Path = MIGRATIONS_DIR) -> list[Revision]:
    """Return every revision of the code, newest first."""
    return [
        Revision(
            id=script.revision,
            parent=_joined(script.down_revision),
            description=script.doc.strip(),
            is_head=script.is_head,
        )
        for script in _script(script_location).walk_revisions()
    ]


async def current_revision(engine: AsyncEngine) -> str | None:
    """Return the database's revision, or ``None`` when it has no schema yet.

    Raises:
        DatabaseUnavailable: the database cannot be reached.
    """
    async with connect(engine) as connection:
        return await connection.run_sync(_read_current)


async def schema_state(engine: AsyncEngine, *, script_location: Path = MIGRATIONS_DIR) -> SchemaState:
    """Compare the database's revision with the code's head.

    Raises:
        DatabaseUnavailable: the database cannot be reached.
    """
    head = _plain_head(script_location)
    script = _script(script_location) if head is None else None
    async with connect(engine) as connection:
        return await _state_over(connection, head, script, script_location)


async def schema_state_on(
    connection: AsyncConnection, *, script_location: Path = MIGRATIONS_DIR
) -> SchemaState:
    """Compare the database's revision with the code's head, over a connection already open.

    The health check uses it to read the revision over the connection it has just pinged.
    """
    head = _plain_head(script_location)
    script = _script(script_location) if head is None else None
    return await _state_over(connection, head, script, script_location)


async def upgrade(
    engine: AsyncEngine, revision: str = "head", *, script_location: Path = MIGRATIONS_DIR
) -> MigrationResult:
    """Migrate the schema up to ``revision`` in one transaction.

    Raises:
        DatabaseUnavailable: the database cannot be reached.
        SchemaAhead: the database is at a revision the code does not know.
        InvalidRevision: ``revision`` does not exist or is not above the database's revision.
        MigrationFailed: a revision raised; everything was rolled back.
    """
    from alembic import command

    return await _migrate(engine, command.upgrade, revision, script_location)


async def downgrade(
    engine: AsyncEngine, revision: str, *, script_location: Path = MIGRATIONS_DIR
) -> MigrationResult:
    """Migrate the schema down to ``revision`` (an id, ``-1`` for one step, ``base`` for none).

    Raises:
        DatabaseUnavailable: the database cannot be reached.
        SchemaAhead: the database is at a revision the code does not know.
        InvalidRevision: ``revision`` does not exist or is not below the database's revision.
        MigrationFailed: a revision raised; everything was rolled back.
    """
    from alembic import command

    return await _migrate(engine, command.downgrade, revision, script_location)


async def check(engine: AsyncEngine, *, script_location: Path = MIGRATIONS_DIR) -> list[str]:
    """List every way the database differs from the code: its revision, then tables, columns, indexes.

    An empty list means the database is at the code's head and matches :mod:`botops.db.schema`.

    Raises:
        DatabaseUnavailable: the database cannot be reached.
    """
    script = _script(script_location)
    async with connect(engine) as connection:
        state = await connection.run_sync(_read_state, script)
        differences = await connection.run_sync(_compare_with_metadata)
    problems: list[str] = []
    if state.is_unknown:
        assert state.current is not None
        problems.append(str(SchemaAhead(state.current, state.head)))
    elif state.is_behind:
        problems.append(
            f"the database is at {_name(state.current)}, the code's head is {state.head}: "
            "run `botops db upgrade`"
        )
    for difference in differences:
        problems.extend(_describe(difference))
    return problems


async def ensure_schema(
    engine: AsyncEngine, settings: Settings, *, script_location: Path = MIGRATIONS_DIR
) -> SchemaState:
    """Bring the schema to the code's head at start-up, where the settings allow it; return the state.

    Behind and ``settings.auto_migrate`` (development by default): upgrade. Behind otherwise
    (production by default): refuse, naming the command that migrates.

    Raises:
        SchemaBehind: the schema is older than the code and auto-migration is off.
        SchemaAhead: the database is at a revision this code does not know.
        DatabaseUnavailable, MigrationFailed: as :func:`upgrade`.
    """
    state = await schema_state(engine, script_location=script_location)
    if state.is_current:
        log.debug("Database schema is current at %s", state.head)
        return state
    if state.is_unknown:
        assert state.current is not None
        raise SchemaAhead(state.current, state.head)
    if not settings.auto_migrate:
        raise SchemaBehind(state.current, state.head)
    log.info(
        "Database schema is at %s, the code needs %s: applying %s",
        _name(state.current),
        state.head,
        ", ".join(state.pending),
    )
    await upgrade(engine, state.head, script_location=script_location)
    return await schema_state(engine, script_location=script_location)


# -- internals -------------------------------------------------------------------------------------------

_AlembicCommand = Callable[..., Any]

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


async def _migrate(
    engine: AsyncEngine, action: _AlembicCommand, revision: str, script_location: Path
) -> MigrationResult:
    from alembic.script.revision import RevisionError
    from alembic.util.exc import CommandError

    script = _script(script_location)
    async with connect(engine) as connection:
        state = await connection.run_sync(_read_state, script)
        # End the read's transaction, so Alembic begins (and owns) the migration's own.
        await connection.rollback()
        if state.is_unknown:
            assert state.current is not None
            raise SchemaAhead(state.current, state.head)
        config = alembic_config(script_location)
        try:
            await connection.run_sync(_run_alembic, action, config, revision)
        except (CommandError, RevisionError) as error:
            raise InvalidRevision(revision, _one_line(str(error))) from error
        except BotopsError:
            raise
        except Exception as error:
            target = state.head if revision in ("head", "heads") else revision
            raise MigrationFailed(state.current, target, _describe_error(error)) from error
        after = await connection.run_sync(_read_current)
        await connection.rollback()
    if after != state.current:
        log.info("Migrated the database schema from %s to %s", _name(state.current), _name(after))
    return MigrationResult(before=state.current, after=after)


def _run_alembic(connection: Connection, action: _AlembicCommand, config: Config, revision: str) -> None:
    config.attributes["connection"] = connection
    action(config, revision)


def _script(script_location: Path) -> ScriptDirectory:
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


def _read_current(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    heads = MigrationContext.configure(connection).get_current_heads()
    return ",".join(heads) if heads else None


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
    return await connection.run_sync(_read_state, script or _script(script_location))


def _read_state(connection: Connection, script: ScriptDirectory) -> SchemaState:
    from alembic.script.revision import RevisionError

    current = _read_current(connection)
    head = _head(script)
    if current == head:
        return SchemaState(current, head, SchemaStatus.CURRENT)
    try:
        newest_first = [s.revision for s in script.iterate_revisions(head, current or "base")]
    except RevisionError:  # not a revision of this code, or not one the head descends from
        return SchemaState(current, head, SchemaStatus.UNKNOWN)
    return SchemaState(current, head, SchemaStatus.BEHIND, tuple(reversed(newest_first)))


def _compare_with_metadata(connection: Connection) -> list[Any]:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(connection, opts={"compare_type": True, "target_metadata": metadata})
    return list(compare_metadata(context, metadata))


def _describe(difference: Any) -> list[str]:
    """Describe one difference found by Alembic's autogenerate in words; unknown kinds as they are."""
    if isinstance(difference, list):  # changes of one column come grouped
        return [line for item in difference for line in _describe(item)]
    kind = difference[0]
    missing, extra = "is missing from the database", "is in the database but not in the code"
    if kind in ("add_table", "remove_table"):
        return [f"table {difference[1].name} {missing if kind == 'add_table' else extra}"]
    if kind in ("add_column", "remove_column"):
        _, _schema, table, column = difference
        return [f"column {table}.{column.name} {missing if kind == 'add_column' else extra}"]
    if kind in ("add_index", "remove_index", "add_constraint", "remove_constraint", "add_fk", "remove_fk"):
        item = difference[1]
        what = {"index": "index", "constraint": "constraint", "fk": "foreign key"}[kind.split("_", 1)[1]]
        table = item.table.name if item.table is not None else "?"
        where = missing if kind.startswith("add") else extra
        return [f"{what} {item.name or '(unnamed)'} on {table} {where}"]
    if kind in ("modify_type", "modify_nullable", "modify_default", "modify_comment"):
        _, _schema, table, column, _existing, in_database, in_code = difference
        attribute = kind.removeprefix("modify_")
        if kind == "modify_nullable":
            in_database = "NULL" if in_database else "NOT NULL"
            in_code = "NULL" if in_code else "NOT NULL"
        return [
            f"column {table}.{column} has {attribute} {in_database} in the database, {in_code} in the code"
        ]
    return [repr(difference)]


def _describe_error(error: BaseException) -> str:
    if isinstance(error, DBAPIError):
        cause = error.orig if error.orig is not None else error
        statement = _one_line(error.statement or "")
        if len(statement) > 200:
            statement = statement[:197] + "..."
        where = f" [SQL: {statement}]" if statement else ""
        return f"{type(cause).__name__}: {_one_line(str(cause))}{where}"
    return f"{type(error).__name__}: {_one_line(str(error))}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _joined(revisions: str | Sequence[str] | None) -> str | None:
    if revisions is None or isinstance(revisions, str):
        return revisions
    return ",".join(revisions)


def _name(revision: str | None) -> str:
    return revision if revision is not None else "base (no schema)"
