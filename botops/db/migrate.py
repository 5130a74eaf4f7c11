"""Move the database schema between Alembic revisions, report where it stands, and apply the start-up rule.

Alembic is configured in code (:func:`alembic_config`): the revisions ship inside the package and the
database URL, which may hold a password, is never written to a file or a log. Every migration runs in
one transaction over a connection of botops' own engine, so a failure leaves the schema as it was.

A developer writes a new revision with::

    python -c "from alembic import command; from botops.db.migrate import alembic_config; \\
        command.revision(alembic_config(), 'what it does', autogenerate=True, rev_id='0002')"

which compares :data:`botops.db.schema.metadata` with the database named by ``DATABASE_URL``.

Where the schema stands, the code's head and Alembic's configuration are read in
:mod:`botops.db.schema_state`; this module re-exports them (its ``__all__``), so callers need only it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from botops.db.engine import connect
from botops.db.schema import metadata
from botops.db.schema_state import (
    MIGRATIONS_DIR,
    SchemaState,
    SchemaStatus,
    alembic_config,
    current_revision,
    head_revision,
    read_current,
    read_state,
    schema_state,
    schema_state_on,
    script_directory,
)
from botops.errors import (
    BotopsError,
    InvalidRevision,
    MigrationFailed,
    SchemaAhead,
    SchemaBehind,
)

# Alembic is imported where it is used: importing it costs about a tenth of a second (its dialect
# implementations, Mako, Pygments), and a start or a /health with the schema current never needs it.
if TYPE_CHECKING:
    from alembic.config import Config

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


def history(script_location: Path = MIGRATIONS_DIR) -> list[Revision]:
    """Return every revision of the code, newest first."""
    return [
        Revision(
            id=script.revision,
            parent=_joined(script.down_revision),
            description=script.doc.strip(),
            is_head=script.is_head,
        )
        for script in script_directory(script_location).walk_revisions()
    ]


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
    script = script_directory(script_location)
    async with connect(engine) as connection:
        state = await connection.run_sync(read_state, script)
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


async def _migrate(
    engine: AsyncEngine, action: _AlembicCommand, revision: str, script_location: Path
) -> MigrationResult:
    from alembic.script.revision import RevisionError
    from alembic.util.exc import CommandError

    script = script_directory(script_location)
    async with connect(engine) as connection:
        state = await connection.run_sync(read_state, script)
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
        after = await connection.run_sync(read_current)
        await connection.rollback()
    if after != state.current:
        log.info("Migrated the database schema from %s to %s", _name(state.current), _name(after))
    return MigrationResult(before=state.current, after=after)


def _run_alembic(connection: Connection, action: _AlembicCommand, config: Config, revision: str) -> None:
    config.attributes["connection"] = connection
    action(config, revision)


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
