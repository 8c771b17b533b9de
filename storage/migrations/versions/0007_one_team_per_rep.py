"""A rep is on at most one team: a partial unique index on team_members(user_id) for reps.

Existing data may already hold a rep on two teams (a manager could add another team's rep).
Such duplicates are resolved by keeping the OLDEST rep membership (the lowest
team_members.id, the team the rep joined first) and deleting the later ones. Their quotas
on the later teams are kept, so nothing about their history is lost; an admin can move the
rep with `/dealbot team move` if the oldest team was not the right one. Manager memberships
are untouched: a manager may run several teams.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 21:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_REPS_ONLY = sa.text("role = 'rep'")


def upgrade() -> None:
    # Keep each rep's oldest membership; the later ones would break the unique index.
    op.execute(
        "DELETE FROM team_members WHERE role = 'rep' AND id NOT IN ("
        "SELECT min(id) FROM team_members WHERE role = 'rep' GROUP BY user_id)"
    )
    op.create_index(
        "uq_team_members_one_team_per_rep",
        "team_members",
        ["user_id"],
        unique=True,
        sqlite_where=_REPS_ONLY,
        postgresql_where=_REPS_ONLY,
    )


def downgrade() -> None:
    # The deleted duplicate memberships are not restored: they broke the rule.
    op.drop_index("uq_team_members_one_team_per_rep", table_name="team_members")
