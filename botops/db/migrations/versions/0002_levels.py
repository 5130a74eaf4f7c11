"""Levels: member XP with its leaderboard index, level rewards, and the XP settings of a guild.

Revision ID: 0002
Revises: 0001
Create Date: 2025-06-15 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Spelled out rather than imported from botops.db.schema: a revision keeps describing the schema of
# its day when the code's bounds change later.
_XP_RANGE = "xp_min >= 0 AND xp_min <= xp_max AND xp_max <= 1000"
_XP_COOLDOWN = "xp_cooldown_seconds >= 0 AND xp_cooldown_seconds <= 86400"


def upgrade() -> None:
    op.create_table(
        "member_xp",
        sa.Column("guild_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("xp", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("messages", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_awarded_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("guild_id", "user_id", name=op.f("pk_member_xp")),
    )
    op.create_index("ix_member_xp_guild_id_xp", "member_xp", ["guild_id", sa.text("xp DESC")], unique=False)
    op.create_table(
        "level_rewards",
        sa.Column("guild_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("level", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("role_id", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("guild_id", "level", name=op.f("pk_level_rewards")),
    )
    # On SQLite a CHECK constraint cannot be added to a table in place; batch mode copies the table.
    with op.batch_alter_table("guild_settings") as batch:
        batch.add_column(sa.Column("xp_min", sa.Integer(), server_default="15", nullable=False))
        batch.add_column(sa.Column("xp_max", sa.Integer(), server_default="25", nullable=False))
        batch.add_column(sa.Column("xp_cooldown_seconds", sa.Integer(), server_default="60", nullable=False))
        batch.add_column(sa.Column("levelup_channel_id", sa.BigInteger(), nullable=True))
        batch.create_check_constraint(op.f("ck_guild_settings_xp_range"), _XP_RANGE)
        batch.create_check_constraint(op.f("ck_guild_settings_xp_cooldown"), _XP_COOLDOWN)
        # A row now exists as soon as any setting changes; NULL keeps answering each member in their
        # own Discord language until an administrator chooses one.
        batch.alter_column("language", existing_type=sa.String(length=5), nullable=True, server_default=None)


def downgrade() -> None:
    op.execute("UPDATE guild_settings SET language = 'en' WHERE language IS NULL")
    with op.batch_alter_table("guild_settings") as batch:
        batch.alter_column("language", existing_type=sa.String(length=5), nullable=False, server_default="en")
        batch.drop_constraint(op.f("ck_guild_settings_xp_cooldown"), type_="check")
        batch.drop_constraint(op.f("ck_guild_settings_xp_range"), type_="check")
        batch.drop_column("levelup_channel_id")
        batch.drop_column("xp_cooldown_seconds")
        batch.drop_column("xp_max")
        batch.drop_column("xp_min")
    op.drop_table("level_rewards")
    op.drop_index("ix_member_xp_guild_id_xp", table_name="member_xp")
    op.drop_table("member_xp")
