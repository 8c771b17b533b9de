"""The forecast roll-up: exchange rates, a team's reporting currency, cited evidence.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 04:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fx_rates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("effective_on", sa.Date(), nullable=False),
        sa.Column("rate", sa.Numeric(precision=20, scale=10), nullable=False),
        sa.Column("set_by", sa.String(length=64), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fx_rates")),
        sa.UniqueConstraint("currency", "effective_on", name="uq_fx_rates_currency_day"),
    )
    # Plain ADD COLUMN, no batch mode (see 0009): NULL reports in DEALBOT_CURRENCY.
    op.add_column("teams", sa.Column("currency", sa.String(length=3), nullable=True))
    op.create_table(
        "deal_evidence",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deal_id", sa.Integer(), nullable=False),
        sa.Column("field", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("reference", sa.Text(), nullable=False),
        sa.Column("excerpt", sa.Text(), nullable=True),
        sa.Column("cited_by", sa.String(length=32), nullable=False),
        sa.Column("cited_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "field IN ('eb', 'criteria', 'process', 'paper', 'champion', 'metrics')",
            name=op.f("ck_deal_evidence_field"),
        ),
        sa.CheckConstraint("source IN ('slack', 'gmail')", name=op.f("ck_deal_evidence_source")),
        sa.ForeignKeyConstraint(
            ["deal_id"],
            ["deals.id"],
            name=op.f("fk_deal_evidence_deal_id_deals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deal_evidence")),
    )
    op.create_index("ix_deal_evidence_deal_field", "deal_evidence", ["deal_id", "field"])


def downgrade() -> None:
    op.drop_index("ix_deal_evidence_deal_field", table_name="deal_evidence")
    op.drop_table("deal_evidence")
    op.drop_column("teams", "currency")
    op.drop_table("fx_rates")
