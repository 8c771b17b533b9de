"""Issue 9: the demo tells the forecast story: the digest's figures, its flow and its chart."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from matplotlib.image import imread

from bot.demo import DEMO_OUTBOX_DIR, DEMO_USERS, run_demo
from domain.clock import FixedClock
from domain.dates import quarter_bounds
from reminders.trend import weekly_trend
from storage.database import Database
from storage.fx import FxRepository

# Monday 23 Nov 2026, early in New York: the demo seeds its pipeline around this.
MONDAY_EARLY = dt.datetime(2026, 11, 23, 7, 0, tzinfo=ZoneInfo("America/New_York"))


def test_the_digest_chart_is_saved_next_to_the_outbox_and_its_title_and_path_printed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the demo writes its outbox in the working directory
    (tmp_path / DEMO_OUTBOX_DIR).mkdir()
    stale = tmp_path / DEMO_OUTBOX_DIR / "pipeline-2026-W01.png"
    stale.write_bytes(b"an earlier run's chart")
    out = io.StringIO()
    script = io.StringIO(":as maria\n:run manager-digest\n")
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    assert run_demo(database_url=url, clock=FixedClock(at=MONDAY_EARLY), stdin=script, out=out) == 0
    shown = out.getvalue()
    saved = "dealbot-demo-outbox/forecast-2026-W48.png"
    line = f"(file attached: Enterprise forecast, 2026-W48; saved to {saved})"
    assert line in shown
    # Said after the DM it came with.
    assert shown.index("(DM to @maria)") < shown.index(line)
    chart = (tmp_path / saved).read_bytes()
    assert imread(io.BytesIO(chart), format="png").shape[1] > 0
    assert not stale.exists()  # emptied like the drafts on every run
    assert not (tmp_path / "dealbot-demo-chart.png").exists()


def _run(tmp_path: Path, at: dt.datetime, script: str) -> str:
    out = io.StringIO()
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    script_in = io.StringIO(script)
    assert run_demo(database_url=url, clock=FixedClock(at=at), stdin=script_in, out=out) == 0
    return out.getvalue()


def _digest(shown: str) -> str:
    """Return the manager digest's DM as the console drew it."""
    start = shown.index("(DM to @maria)")
    return shown[start : shown.index("(file attached:", start)]


def test_the_demo_digest_tells_the_forecast_story_and_its_chart_has_the_weekly_trend(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    shown = _run(
        tmp_path,
        MONDAY_EARLY,
        ":run pipeline-accuracy 2026-11-23T10:00-05:00\n:as maria\n:run manager-digest\n",
    )
    digest = _digest(shown)
    # The roll-up in the team's reporting currency, the euro deal converted at its rate.
    assert "2026-Q4 forecast · USD" in digest
    assert "@chloe: won $0 · commit $60,000 · best case $97,200 · pipeline $0" in digest
    assert "Team: won $125,000 · commit $430,000 · best case $145,200 · pipeline $25,000" in digest
    assert "• Soylent €90,000 ≈ $97,200 (@chloe)" in digest
    assert "1 EUR = 1.08 USD" in digest
    # One honest exclusion, with its fix.
    assert "Not in these totals (1)" in digest
    assert "• Brightwell Ltd £40,000: no GBP rate — dealbot fx set GBP <rate>" in digest
    # The week's flow against last week's snapshot, one line per move.
    assert "Week over week (since 2026-W47)" in digest
    assert "• Pushed out: 1 · $250,000 — Hooli (pushed out 14 days)" in digest
    assert "• Pulled in: 1 · $48,000 — Initech (pulled in 10 days)" in digest
    assert "• Amount up: 1 · $8,000 — Initech (+$8,000)" in digest
    assert "• Moved category: 1 · $60,000 — Acme Corp (best case → commit)" in digest
    # The quarter's called commit (Dunder Mifflin, Hooli, Globex) against what closed of it.
    assert "$35,000 won of $405,000 committed at the quarter's start" in digest
    for rep in ("@ana", "@ben", "@chloe"):
        assert f"\n  {rep} 2 of 3 closed by the date called (67%)" in digest
    # The weekly post: Globex is claimed Commit without evidence; Acme's is cited.
    assert "Commit claimed $120,000 · evidenced $0 (0%)" in shown
    assert "Commit claimed $60,000 · evidenced $60,000 (100%)" in shown
    chart = tmp_path / DEMO_OUTBOX_DIR / "forecast-2026-W48.png"
    assert imread(io.BytesIO(chart.read_bytes()), format="png").shape[1] > 0
    # The chart's trend: the snapshots seeded week by week, then the digest's own.
    database = Database.from_url(f"sqlite:///{tmp_path / 'demo.db'}")
    zone = ZoneInfo("America/New_York")
    with database.session() as session:
        reps = [u.user_id for u in DEMO_USERS if not u.is_admin]
        trend = weekly_trend(
            session,
            reps=reps,
            zone=zone,
            quarter=quarter_bounds(MONDAY_EARLY.date()),
            currency="USD",
            rates=FxRepository(session).rate_book("USD"),
            now=dt.datetime(2026, 11, 23, 10, 0, tzinfo=zone),
        )
    database.dispose()
    k = Decimal(1000)
    assert [(w.week, w.commit / k, w.won / k) for w in trend] == [
        ("2026-W42", 405, 0),
        ("2026-W43", 405, 0),
        ("2026-W44", 405, 0),
        ("2026-W45", 405, 35),  # Dunder Mifflin won
        ("2026-W46", 370, 35),
        ("2026-W47", 370, 125),  # Wayne won
        ("2026-W48", 430, 125),  # Acme moved to commit
    ]


# A Thursday afternoon, years on, in a quarter's second week: the seed follows the clock.
LATER_THURSDAY = dt.datetime(2031, 4, 10, 15, 30, tzinfo=dt.UTC)


def test_the_demo_story_is_seeded_relative_to_its_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    digest = _digest(_run(tmp_path, LATER_THURSDAY, ":as maria\n:run manager-digest\n"))
    assert "2031-Q2 forecast · USD" in digest
    assert "Week over week (since 2031-W14)" in digest
    assert "Hooli (pushed out 14 days)" in digest and "Initech (pulled in 10 days)" in digest
    assert "Initech (+$8,000)" in digest and "Acme Corp (best case → commit)" in digest
    assert "• Brightwell Ltd £40,000: no GBP rate — dealbot fx set GBP <rate>" in digest
    assert "1 EUR = 1.08 USD" in digest
    for rep in ("@ana", "@ben", "@chloe"):
        assert f"\n  {rep} 2 of 3 closed by the date called (67%)" in digest
    assert (tmp_path / DEMO_OUTBOX_DIR / "forecast-2031-W15.png").read_bytes()[:4] == b"\x89PNG"
