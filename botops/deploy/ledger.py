"""The deploy ledger in the bot's database: every deploy and rollback, for `botops deployments`.

A row is written when a deploy or rollback ends, whatever its result, in one short transaction.
"""

from __future__ import annotations

import datetime
import logging
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from botops.db.engine import connect
from botops.db.schema import deployments

__all__ = ["Deployment", "Result", "find_deployment", "last_deployments", "record_deployment"]

log = logging.getLogger(__name__)

Result = Literal["succeeded", "rolled-back", "failed"]


@dataclass(frozen=True)
class Deployment:
    """One deploy or rollback as the ledger keeps it."""

    kind: Literal["deploy", "rollback"]
    started_at: datetime.datetime
    finished_at: datetime.datetime
    actor: str
    from_commit: str
    to_commit: str
    mode: str
    from_revision: str | None
    to_revision: str | None
    backup_id: str | None
    result: Result
    feature: str | None = None
    detail: str | None = None
    id: int | None = None

    @property
    def seconds(self) -> float:
        return (self.finished_at - self.started_at).total_seconds()


async def record_deployment(engine: AsyncEngine, entry: Deployment) -> int:
    """Write ``entry`` to the ledger and return its id.

    Raises:
        DatabaseUnavailable: the database cannot be reached.
        sqlalchemy.exc.SQLAlchemyError: the write failed (for example, no ledger table yet).
    """
    values = {
        "kind": entry.kind,
        "started_at": entry.started_at,
        "finished_at": entry.finished_at,
        "actor": entry.actor[:100],
        "from_commit": entry.from_commit,
        "to_commit": entry.to_commit,
        "mode": entry.mode,
        "from_revision": entry.from_revision,
        "to_revision": entry.to_revision,
        "backup_id": entry.backup_id,
        "result": entry.result,
        "feature": entry.feature,
        "detail": entry.detail[:500] if entry.detail else None,
    }
    async with connect(engine) as connection:
        result = await connection.execute(insert(deployments).values(**values).returning(deployments.c.id))
        identifier = int(result.scalar_one())
        await connection.commit()
    return identifier


async def last_deployments(engine: AsyncEngine, *, limit: int = 20) -> list[Deployment]:
    """Return the newest ``limit`` entries, newest first."""
    async with connect(engine) as connection:
        rows = await connection.execute(select(deployments).order_by(deployments.c.id.desc()).limit(limit))
        return [_entry(row._mapping) for row in rows]


async def find_deployment(engine: AsyncEngine, identifier: int) -> Deployment | None:
    """Return the entry with ``identifier``, ``None`` when there is none."""
    async with connect(engine) as connection:
        row = (await connection.execute(select(deployments).where(deployments.c.id == identifier))).first()
        return _entry(row._mapping) if row is not None else None


def _entry(row: object) -> Deployment:
    mapping = dict(row)  # type: ignore[call-overload]
    for name in ("started_at", "finished_at"):
        moment = mapping[name]
        if moment.tzinfo is None:  # SQLite hands back naive times; they were written in UTC
            mapping[name] = moment.replace(tzinfo=datetime.UTC)
    return Deployment(**mapping)
