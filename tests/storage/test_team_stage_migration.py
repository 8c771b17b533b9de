"""0010 adds `deals.team_stage`: existing deals keep their stage, history and no team stage."""

from __future__ import annotations

from sqlalchemy import text

from storage.database import create_db_engine
from storage.migrate import upgrade


def test_existing_deals_keep_their_stage_and_history_and_have_no_team_stage(
    database_url: str,
) -> None:
    upgrade(database_url, "0009")
    engine = create_db_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO deals (id, account, account_key, owner_id, currency, stage, "
                    "stage_entered_at, forecast_category, status, created_by, created_at, "
                    "updated_at, last_touch_at) VALUES (1, 'Initech', 'initech', 'U0ANA', "
                    "'USD', 'demo', :at, 'pipeline', 'open', 'U0ANA', :at, :at, :at)"
                ),
                {"at": "2026-11-23 10:00:00+00:00"},
            )
            connection.execute(
                text(
                    "INSERT INTO deal_changes (deal_id, field, new_value, changed_by, "
                    "changed_at) VALUES (1, 'stage', 'demo', 'U0ANA', :at)"
                ),
                {"at": "2026-11-23 10:00:00+00:00"},
            )

        upgrade(database_url)

        with engine.connect() as connection:
            rows = connection.execute(text("SELECT stage, team_stage FROM deals")).all()
            assert [tuple(row) for row in rows] == [("demo", None)]
            assert connection.execute(text("SELECT count(*) FROM deal_changes")).scalar() == 1
    finally:
        engine.dispose()
