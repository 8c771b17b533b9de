"""Issue 9: the demo shows where a job's attached file (the digest's chart) went."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from matplotlib.image import imread

from bot.demo import DEMO_OUTBOX_DIR, run_demo
from domain.clock import FixedClock

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
