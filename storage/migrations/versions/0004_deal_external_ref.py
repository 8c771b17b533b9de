"""Deals imported from Salesforce or HubSpot remember their source record.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # No batch mode on purpose: rebuilding `deals` on SQLite, with foreign keys on, would
    # cascade the DROP TABLE to every deal's history, contacts and next steps.
    op.add_column("deals", sa.Column("external_ref", sa.String(length=160), nullable=True))
    op.create_index("ix_deals_external_ref", "deals", ["external_ref"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_deals_external_ref", table_name="deals")
    op.drop_column("deals", "external_ref")
