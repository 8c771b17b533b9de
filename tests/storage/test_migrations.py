"""The Alembic migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from storage.database import create_db_engine
from storage.migrate import alembic_config, is_up_to_date, upgrade
from storage.models import Base


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(database_url)
    yield engine
    engine.dispose()


def _schema_diff(engine: Engine) -> list[Any]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, Base.metadata)


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def test_upgrade_from_empty_to_head(database_url: str, engine: Engine) -> None:
    assert not is_up_to_date(engine)

    upgrade(database_url)

    assert is_up_to_date(engine)
    assert _tables(engine) == set(Base.metadata.tables)


def test_migrations_match_models(database_url: str, engine: Engine) -> None:
    upgrade(database_url)

    # An empty diff means `alembic revision --autogenerate` would produce nothing:
    # no model change is waiting for a migration.
    assert _schema_diff(engine) == []


def test_downgrade_to_base_then_upgrade_again(database_url: str, engine: Engine) -> None:
    upgrade(database_url)

    command.downgrade(alembic_config(database_url), "base")
    assert _tables(engine) == set()
    assert not is_up_to_date(engine)

    upgrade(database_url)
    assert is_up_to_date(engine)
    assert _schema_diff(engine) == []


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_prefix_lookup_indexes_use_text_pattern_ops_on_postgresql(
    database_url: str, engine: Engine
) -> None:
    upgrade(database_url)

    with engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT indexname, indexdef FROM pg_indexes "
                "WHERE tablename = 'deals' AND indexname IN "
                "('ix_deals_account_key', 'ix_deals_title_key')"
            )
        ).all()

    definitions = dict(rows)
    assert set(definitions) == {"ix_deals_account_key", "ix_deals_title_key"}
    # Without pattern ops, LIKE 'init%' cannot use the index under a non-C collation.
    assert "account_key text_pattern_ops" in definitions["ix_deals_account_key"]
    assert "title_key text_pattern_ops" in definitions["ix_deals_title_key"]


def test_adding_external_ref_keeps_existing_deals_and_their_history(
    database_url: str, engine: Engine
) -> None:
    # Rebuilding `deals` the batch way on SQLite would cascade its DROP to the history.
    upgrade(database_url, "0003")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO deals (id, account, account_key, owner_id, currency, stage, "
                "stage_entered_at, forecast_category, status, created_by, created_at, "
                "updated_at, last_touch_at) VALUES (1, 'Initech', 'initech', 'U0ANA', 'USD', "
                "'discovery', :at, 'pipeline', 'open', 'U0ANA', :at, :at, :at)"
            ),
            {"at": "2026-11-23 10:00:00+00:00"},
        )
        connection.execute(
            text(
                "INSERT INTO deal_changes (deal_id, field, new_value, changed_by, changed_at) "
                "VALUES (1, 'stage', 'discovery', 'U0ANA', :at)"
            ),
            {"at": "2026-11-23 10:00:00+00:00"},
        )

    upgrade(database_url)

    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM deal_changes")).scalar() == 1
        assert connection.execute(text("SELECT external_ref FROM deals")).all() == [(None,)]
