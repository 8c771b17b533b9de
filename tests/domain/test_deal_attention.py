"""A deal is flagged the same way on its card as in the pipeline, whatever the checks file says."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import domain.deals
from domain.changes import DealChanges, DealRef
from domain.checks import DEFAULT_CHECKS_FILE, parse_checks
from domain.clock import FixedClock
from domain.deals import Actor, DealService
from storage.database import Database
from storage.migrate import upgrade

NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)


def test_regression_deal_card_missed_checks_that_need_history_such_as_close_date_slipped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The card once computed its flags from the loaded Deal alone, which knows no close-date
    # pushes: a team listing CLOSE_DATE_SLIPPED under `attention` saw it in /pipeline only.
    checks = DEFAULT_CHECKS_FILE.read_text(encoding="utf-8").replace(
        "attention: [NO_NEXT_STEP,", "attention: [CLOSE_DATE_SLIPPED, NO_NEXT_STEP,"
    )
    config = parse_checks(checks)
    assert "CLOSE_DATE_SLIPPED" in config.attention
    monkeypatch.setattr(domain.deals, "default_checks", lambda: config)

    url = f"sqlite:///{tmp_path / 'attention.db'}"
    upgrade(url)
    database = Database.from_url(url)
    clock = FixedClock(at=NOW)
    deals = DealService(database=database, clock=clock, default_timezone=ZoneInfo("UTC"))
    rep = Actor("U0ANA")
    deals.create_deal(rep, "Hooli", DealChanges(close_date=dt.date(2026, 12, 1)))
    hooli = DealRef(name="hooli", deal_id=None)
    deals.update_deal(rep, hooli, DealChanges(close_date=dt.date(2026, 12, 10)))
    deals.update_deal(rep, hooli, DealChanges(close_date=dt.date(2026, 12, 20)))

    listed = deals.pipeline(rep, scope="me").deals[0].attention
    shown = deals.show_deal(rep, hooli).attention
    database.dispose()

    assert "CLOSE_DATE_SLIPPED" in listed
    assert shown == listed
