"""Deals deleted by mistake are kept, marked deleted: who deleted them, and when.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 01:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN, no batch mode: rebuilding `deals` on SQLite, with foreign keys on,
    # would cascade the DROP TABLE to every deal's history, contacts and next steps.
    op.add_column("deals", sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("deals", sa.Column("deleted_by", sa.String(length=32), nullable=True))


def downgrade() -> None:
    op.drop_column("deals", "deleted_by")
    op.drop_column("deals", "deleted_at")
