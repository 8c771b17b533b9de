"""CRM sync: where a change came from, deal links, the CRM push outbox, state, owners, stages.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 00:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN, no batch mode: rebuilding deal_changes on SQLite is needless.
    op.add_column("deal_changes", sa.Column("source", sa.String(length=16), nullable=True))
    op.create_table(
        "crm_links",
        sa.Column("deal_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("crm_id", sa.String(length=64), nullable=False),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("crm_stage", sa.String(length=120), nullable=True),
        sa.Column("synced", sa.Text(), nullable=False),
        sa.Column("remote_modified_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["deal_id"],
            ["deals.id"],
            name=op.f("fk_crm_links_deal_id_deals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("deal_id", name=op.f("pk_crm_links")),
        sa.UniqueConstraint("kind", "crm_id", name="uq_crm_links_kind_crm_id"),
    )
    op.create_table(
        "crm_pushes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("deal_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("field", sa.String(length=32), nullable=True),
        sa.Column("value", sa.Text(), nullable=True),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("made_by", sa.String(length=32), nullable=False),
        sa.Column("made_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("claimed_by", sa.String(length=120), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("crm_result", sa.String(length=120), nullable=True),
        sa.CheckConstraint(
            "kind IN ('update', 'create', 'task', 'task_done')", name=op.f("ck_crm_pushes_kind")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'refused', 'superseded')",
            name=op.f("ck_crm_pushes_status"),
        ),
        sa.ForeignKeyConstraint(
            ["deal_id"],
            ["deals.id"],
            name=op.f("fk_crm_pushes_deal_id_deals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_crm_pushes")),
        sa.UniqueConstraint("key", name=op.f("uq_crm_pushes_key")),
    )
    op.create_index(
        "ix_crm_pushes_status_next_attempt", "crm_pushes", ["status", "next_attempt_at"]
    )
    op.create_index("ix_crm_pushes_deal_status", "crm_pushes", ["deal_id", "status"])
    op.create_table(
        "crm_state",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("last_pull_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_push_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("login_refused_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("usage_used", sa.Integer(), nullable=True),
        sa.Column("usage_limit", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("kind", name=op.f("pk_crm_state")),
    )
    op.create_table(
        "crm_owners",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("crm_owner_id", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("name", sa.String(length=200), nullable=True),
        sa.Column("slack_user_id", sa.String(length=32), nullable=True),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("kind", "crm_owner_id", name=op.f("pk_crm_owners")),
    )
    op.create_table(
        "crm_stages",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("stage_id", sa.String(length=120), nullable=False),
        sa.Column("label", sa.String(length=200), nullable=False),
        sa.Column("probability", sa.Numeric(precision=5, scale=4), nullable=False),
        sa.Column("sort_order", sa.Integer(), nullable=False),
        sa.Column("is_closed", sa.Boolean(), nullable=False),
        sa.Column("is_won", sa.Boolean(), nullable=False),
        sa.Column("forecast_category", sa.String(length=16), nullable=True),
        sa.Column("pipeline", sa.String(length=64), nullable=True),
        sa.Column("dealbot_stage", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("kind", "stage_id", name=op.f("pk_crm_stages")),
    )


def downgrade() -> None:
    op.drop_table("crm_stages")
    op.drop_table("crm_owners")
    op.drop_table("crm_state")
    op.drop_index("ix_crm_pushes_deal_status", table_name="crm_pushes")
    op.drop_index("ix_crm_pushes_status_next_attempt", table_name="crm_pushes")
    op.drop_table("crm_pushes")
    op.drop_table("crm_links")
    op.drop_column("deal_changes", "source")
