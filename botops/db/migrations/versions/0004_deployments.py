"""The deploy ledger: every deploy and rollback, who ran it, from and to which commit, how it ended.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("from_commit", sa.String(length=40), nullable=False),
        sa.Column("to_commit", sa.String(length=40), nullable=False),
        sa.Column("mode", sa.String(length=8), nullable=False),
        sa.Column("from_revision", sa.String(length=32), nullable=True),
        sa.Column("to_revision", sa.String(length=32), nullable=True),
        sa.Column("backup_id", sa.String(length=32), nullable=True),
        sa.Column("result", sa.String(length=12), nullable=False),
        sa.Column("feature", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.String(length=500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployments")),
    )


def downgrade() -> None:
    op.drop_table("deployments")
