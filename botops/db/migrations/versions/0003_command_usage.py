"""Command statistics: uses, outcomes and durations of every command, summed per hour and guild.

Revision ID: 0003
Revises: 0002
Create Date: 2025-06-22 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "command_usage",
        # Hours since 1970-01-01 00:00 UTC; guild_id 0 is a direct message.
        sa.Column("hour", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("guild_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("command", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("outcome", sa.String(length=8), nullable=False),
        sa.Column("uses", sa.Integer(), nullable=False),
        sa.Column("total_seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint(
            "hour", "guild_id", "command", "kind", "outcome", name=op.f("pk_command_usage")
        ),
    )
    op.create_index("ix_command_usage_guild_id_hour", "command_usage", ["guild_id", "hour"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_command_usage_guild_id_hour", table_name="command_usage")
    op.drop_table("command_usage")
