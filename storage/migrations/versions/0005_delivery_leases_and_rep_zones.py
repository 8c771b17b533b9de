"""Outbox claims carry an owner and a short lease, failed sends a backoff; reps' Slack zones.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (no batch mode): nothing to rebuild, on SQLite or PostgreSQL.
    op.add_column("outbox_messages", sa.Column("claimed_by", sa.String(length=120), nullable=True))
    op.add_column(
        "outbox_messages", sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "outbox_messages", sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_index(
        "ix_outbox_messages_status_next_attempt",
        "outbox_messages",
        ["status", "next_attempt_at"],
        unique=False,
    )
    op.create_table(
        "rep_zones",
        sa.Column("user_id", sa.String(length=32), nullable=False),
        sa.Column("tz", sa.String(length=64), nullable=True),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_rep_zones")),
    )


def downgrade() -> None:
    op.drop_table("rep_zones")
    op.drop_index("ix_outbox_messages_status_next_attempt", table_name="outbox_messages")
    with op.batch_alter_table("outbox_messages", schema=None) as batch_op:
        batch_op.drop_column("next_attempt_at")
        batch_op.drop_column("lease_until")
        batch_op.drop_column("claimed_by")
