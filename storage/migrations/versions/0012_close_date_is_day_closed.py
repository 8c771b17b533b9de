"""A won or lost deal's close date is the day it closed; the planned date goes to history.

Before this, closing a deal kept the close date it was planned for, so "days to close" and a
won deal's card read the plan, not the day. For every closed deal whose close date differs
from the date of `closed_at`, this sets the close date to that date and keeps the planned one
as a `deal_changes` row (`close_date`, old = planned, new = closed day), stamped with the
same `changed_at` (and `changed_by`, `source`) as the deal's status change, else `closed_at`:
the history convention the code now writes when a deal closes.

The closed day is the UTC date of `closed_at`: a migration knows no team's timezone, and a
deal closed late in the evening west of UTC (or early in the morning east of it) is off by
a day here, where the code closing a deal now uses the closer's own day.

Plain SQL through the connection, no batch mode (see 0009: rebuilding `deals` on SQLite
would cascade to every deal's history). Downgrade leaves the data as it is: the planned
dates are in history, and the old behaviour is not worth restoring.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 05:00:00.000000
"""

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The latest status change of each closed deal, for the moment its close was recorded. Its
# `changed_at` is read untyped so that it is written back exactly as stored (SQLite keeps
# text) and the new row sits at the very same moment.
_CLOSED_DEALS = sa.text(
    "SELECT d.id, d.owner_id, d.status, d.close_date, d.closed_at, "
    "c.changed_at AS status_at, c.changed_by AS status_by, c.source AS status_source "
    "FROM deals d LEFT JOIN deal_changes c ON c.id = ("
    "  SELECT max(s.id) FROM deal_changes s "
    "  WHERE s.deal_id = d.id AND s.field = 'status' AND s.new_value = d.status"
    ") "
    "WHERE d.status IN ('won', 'lost') AND d.closed_at IS NOT NULL"
).columns(
    sa.column("id", sa.Integer()),
    sa.column("owner_id", sa.String()),
    sa.column("status", sa.String()),
    sa.column("close_date", sa.Date()),
    sa.column("closed_at", sa.DateTime(timezone=True)),
    sa.column("status_at"),  # untyped: as stored
    sa.column("status_by", sa.String()),
    sa.column("status_source", sa.String()),
)
_RAW_CLOSED_AT = sa.text("SELECT closed_at FROM deals WHERE id = :id")
_SET_CLOSE_DATE = sa.text("UPDATE deals SET close_date = :day WHERE id = :id").bindparams(
    sa.bindparam("day", type_=sa.Date())
)
_KEEP_PLANNED = sa.text(
    "INSERT INTO deal_changes (deal_id, field, old_value, new_value, changed_by, changed_at, "
    "source) VALUES (:id, 'close_date', :planned, :closed, :by, :at, :source)"
)


def _utc_day(moment: dt.datetime) -> dt.date:
    # SQLite hands back the stored UTC wall time, naive; PostgreSQL an aware datetime.
    if moment.tzinfo is None:
        return moment.date()
    return moment.astimezone(dt.UTC).date()


def upgrade() -> None:
    connection = op.get_bind()
    for row in connection.execute(_CLOSED_DEALS).all():
        closed_day = _utc_day(row.closed_at)
        if row.close_date == closed_day:
            continue
        at = row.status_at
        if at is None:
            at = connection.execute(_RAW_CLOSED_AT, {"id": row.id}).scalar_one()
        connection.execute(_SET_CLOSE_DATE, {"day": closed_day, "id": row.id})
        connection.execute(
            _KEEP_PLANNED,
            {
                "id": row.id,
                "planned": row.close_date.isoformat() if row.close_date else None,
                "closed": closed_day.isoformat(),
                "by": row.status_by or row.owner_id,
                "at": at,
                "source": row.status_source,
            },
        )


def downgrade() -> None:
    # Nothing to undo that is worth undoing: the planned dates stay in history.
    pass
