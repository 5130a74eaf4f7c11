"""The tables as the code expects them, for queries and for comparing with the database (`botops db check`).

Alembic revisions create and change these tables; this module never creates anything. A change here
needs a new revision in ``botops/db/migrations/versions``, and ``botops db check`` (run in the tests)
fails until it exists.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    func,
    true,
)

__all__ = [
    "MAX_XP_COOLDOWN_SECONDS",
    "MAX_XP_PER_MESSAGE",
    "NAMING_CONVENTION",
    "command_usage",
    "deployments",
    "guild_settings",
    "level_rewards",
    "member_xp",
    "metadata",
]

#: Upper bound of the XP range a guild may choose per message (``xp_min <= xp_max <= 1000``).
MAX_XP_PER_MESSAGE = 1000
#: Upper bound of the cooldown between two awards of one member: a day.
MAX_XP_COOLDOWN_SECONDS = 86_400

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
    # NULL: answer each member in their own Discord language.
    Column("language", String(5), nullable=True),
    Column("xp_enabled", Boolean, nullable=False, server_default=true()),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column(
        "updated_at",
        DateTime(timezone=True),
        nullable=False,
        server_default=func.now(),
        onupdate=func.now(),
    ),
    Column("xp_min", Integer, nullable=False, server_default="15"),
    Column("xp_max", Integer, nullable=False, server_default="25"),
    Column("xp_cooldown_seconds", Integer, nullable=False, server_default="60"),
    # Where level-up announcements go; NULL: the channel of the message that levelled up.
    Column("levelup_channel_id", BigInteger, nullable=True),
    CheckConstraint(f"xp_min >= 0 AND xp_min <= xp_max AND xp_max <= {MAX_XP_PER_MESSAGE}", name="xp_range"),
    CheckConstraint(
        f"xp_cooldown_seconds >= 0 AND xp_cooldown_seconds <= {MAX_XP_COOLDOWN_SECONDS}", name="xp_cooldown"
    ),
)

#: One row per member who ever earned XP in a guild. Written by the batched writer
#: (:func:`botops.db.levels.write_xp_deltas`), read for /rank and /leaderboard.
member_xp = Table(
    "member_xp",
    metadata,
    Column("guild_id", BigInteger, primary_key=True, autoincrement=False),
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("xp", BigInteger, nullable=False, server_default="0"),
    Column("messages", Integer, nullable=False, server_default="0"),
    Column("last_awarded_at", DateTime(timezone=True), nullable=True),
)
# The primary key (guild_id, user_id) serves a member's lookup; this index serves the leaderboard
# (ORDER BY xp DESC within a guild) and counting the members above a given XP.
Index("ix_member_xp_guild_id_xp", member_xp.c.guild_id, member_xp.c.xp.desc())

#: The role a guild gives at a level; one role per level.
level_rewards = Table(
    "level_rewards",
    metadata,
    Column("guild_id", BigInteger, primary_key=True, autoincrement=False),
    Column("level", Integer, primary_key=True, autoincrement=False),
    Column("role_id", BigInteger, nullable=False),
)

#: Command statistics, summed per hour: one row per (hour, guild, command, kind, outcome) that saw a use.
#: Written by the batched writer (:func:`botops.db.stats.write_command_usage`), read for /stats and
#: ``botops stats``. No user ids and no row per use: what a command was used for stays private, and a
#: busy command costs one row an hour per guild, not one per use.
command_usage = Table(
    "command_usage",
    metadata,
    # Hours since 1970-01-01 00:00 UTC (Unix time // 3600): an integer compares, groups and bounds the
    # same on SQLite and PostgreSQL, where a DateTime is text on one and zone-converted on the other.
    Column("hour", Integer, primary_key=True, autoincrement=False),
    # 0 for a direct message: a primary key column cannot be NULL, and no Discord snowflake is 0.
    Column("guild_id", BigInteger, primary_key=True, autoincrement=False),
    Column("command", String(100), primary_key=True),
    Column("kind", String(8), primary_key=True),  # slash | text
    Column("outcome", String(8), primary_key=True),  # success | refused | error
    Column("uses", Integer, nullable=False),
    Column("total_seconds", Float, nullable=False),  # summed durations: total_seconds / uses is the mean
)
# The primary key, led by the hour, serves the bot-wide windows; this one a guild's windows.
Index("ix_command_usage_guild_id_hour", command_usage.c.guild_id, command_usage.c.hour)


#: The deploy ledger: every ``botops deploy`` and ``botops rollback``, written by the CLI when it ends
#: (:mod:`botops.deploy.ledger`), read by ``botops deployments`` and ``botops rollback``.
deployments = Table(
    "deployments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("kind", String(8), nullable=False),  # deploy | rollback
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=False),
    Column("actor", String(100), nullable=False),  # git config user.name, or the OS user
    Column("from_commit", String(40), nullable=False),
    Column("to_commit", String(40), nullable=False),
    Column("mode", String(8), nullable=False),  # reload | restart | none
    Column("from_revision", String(32)),  # the schema before; a rollback downgrades to it
    Column("to_revision", String(32)),
    Column("backup_id", String(32)),  # the pre-deploy backup
    Column("result", String(12), nullable=False),  # succeeded | rolled-back | failed
    Column("feature", String(64)),
    Column("detail", String(500)),  # why it failed, in one line
)
