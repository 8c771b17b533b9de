"""The stage limits a team's won deals teach, kept for the card, /pipeline and App Home.

The weekly jobs learn a team's STALLED_IN_STAGE limits (`thresholds: learned`) and replace
the team's rows here; the per-request surfaces read them with one indexed read instead of
re-learning from four quarters of closed deals. The primary key (team, stage) is the index
that read uses. A team's rows go with the team.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 05:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "team_stage_limits",
        sa.Column("team_id", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("learned_on", sa.Date(), nullable=False),
        sa.Column("won_deals", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name=op.f("fk_team_stage_limits_team_id_teams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("team_id", "stage", name=op.f("pk_team_stage_limits")),
    )


def downgrade() -> None:
    op.drop_table("team_stage_limits")
