"""A deal on a team with its own stages keeps the team's stage next to the default one.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 01:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN, no batch mode: rebuilding `deals` on SQLite, with foreign keys on,
    # would cascade the DROP TABLE to every deal's history, contacts and next steps.
    op.add_column("deals", sa.Column("team_stage", sa.String(length=120), nullable=True))


def downgrade() -> None:
    op.drop_column("deals", "team_stage")
