"""The tables as the code expects them, for queries and for comparing with the database (`botops db check`).

Alembic revisions create and change these tables; this module never creates anything. A change here
needs a new revision in ``botops/db/migrations/versions``, and ``botops db check`` (run in the tests)
fails until it exists.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, DateTime, MetaData, String, Table, func, true

__all__ = ["NAMING_CONVENTION", "guild_settings", "metadata"]

#: Constraint names are derived, not left to each database, so a migration can drop them by name on
#: SQLite and PostgreSQL alike.
NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

#: One row per guild that changed a setting; a guild without a row uses the defaults.
guild_settings = Table(
    "guild_settings",
    metadata,
    # A Discord snowflake, never generated here.
    Column("guild_id", BigInteger, primary_key=True, autoincrement=False),
    Column("language", String(5), nullable=False, server_default="en"),
    Column("xp_enabled", Boolean, nullable=False, server_default=true()),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column(
        "updated_at",
        DateTime(timezone=True),
        nullable=False,
        server_default=func.now(),
        onupdate=func.now(),
    ),
)
