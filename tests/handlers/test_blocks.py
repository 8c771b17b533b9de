"""Snapshots of each Block Kit builder, so a change to what users see is a deliberate one.

Run with DEALBOT_UPDATE_SNAPSHOTS=1 to rewrite them after an intended change.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from domain.errors import Candidate
from domain.money import Money
from domain.views import (
    ChangeView,
    ContactView,
    DealUpdate,
    DealView,
    FieldChange,
    HomeView,
    NextStepView,
    PipelineView,
    PostMortemView,
    QuotaView,
    TeamView,
)
from handlers import blocks
from handlers.commands.parsing import USAGE

SNAPSHOTS = Path(__file__).parent / "snapshots"
TODAY = dt.date(2026, 11, 23)


def _deal(**overrides: Any) -> DealView:
    values: dict[str, Any] = dict(
        id=7,
        account="Initech",
        title=None,
        owner_id="U0ANA",
        amount=Money(Decimal("48000"), "USD"),
        stage="demo",
        stage_label="Demo",
        probability=Decimal("0.4"),
        close_date=dt.date(2026, 12, 15),
        forecast_category="best_case",
        status="open",
        buying_criteria="SSO & audit log <must>",
        buying_process=None,
        paper_process=None,
        pain=None,
        metrics=None,
        competition=None,
        close_reason=None,
        contacts=(
            ContactView("Bill Lumbergh", "bill@initech.com", None, "economic_buyer"),
            ContactView(None, None, "U0PETER", "champion"),
        ),
        next_step=NextStepView(1, "Demo to procurement", "U0ANA", dt.date(2026, 11, 20), False),
        attention=("NEXT_STEP_OVERDUE",),
        history=(
            ChangeView(
                "close_date",
                "2026-12-01",
                "2026-12-15",
                "U0ANA",
                dt.datetime(2026, 11, 2, tzinfo=dt.UTC),
            ),
        ),
        close_date_pushes=1,
    )
    values.update(overrides)
    return DealView(**values)


CASES: dict[str, Any] = {
    "error": lambda: blocks.error_reply("`lots` is not an amount.", "/deal new Initech 50k"),
    "ambiguous": lambda: blocks.ambiguous_reply(
        "More than one deal matches “init”.",
        [Candidate(1, "Initech East · $10,000 (#1)"), Candidate(2, "Initech West · $20,000 (#2)")],
        command="/deal",
        text="init stage:demo",
    ),
    "deal_card": lambda: blocks.deal_card(_deal(), TODAY),
    "deal_card_closed": lambda: blocks.deal_card(
        _deal(
            status="won",
            next_step=None,
            attention=(),
            post_mortem=PostMortemView("won", "ROI case", "Globex", None),
        ),
        TODAY,
    ),
    "deal_updated": lambda: blocks.deal_updated(
        DealUpdate(_deal(), (FieldChange("stage", "discovery", "demo"),)), TODAY
    ),
    "deal_closed": lambda: blocks.deal_closed(_deal(status="lost"), TODAY),
    "next_step_added": lambda: blocks.next_step_added(_deal(), TODAY),
    "pipeline": lambda: blocks.pipeline_reply(
        PipelineView(
            scope="me",
            today=TODAY,
            deals=(_deal(), _deal(id=8, account="Hooli", attention=(), next_step=None)),
            totals={"USD": Decimal("96000")},
            weighted_totals={"USD": Decimal("38400")},
        )
    ),
    "help": lambda: blocks.help_reply(USAGE),
    "team": lambda: blocks.team_reply(
        [
            TeamView(
                1,
                "Enterprise",
                "C0SALES",
                "America/New_York",
                ("U0MARIA",),
                ("U0ANA",),
                (QuotaView("U0ANA", "2026-Q4", Money(Decimal("300000"), "USD")),),
            )
        ],
        heading="Quota for 2026-Q4 saved.",
    ),
}

VIEWS: dict[str, Any] = {
    "new_deal_modal": lambda: blocks.new_deal_modal(channel_id="C0SALES"),
    "post_mortem_modal": lambda: blocks.post_mortem_modal(_deal(status="won")),
    "home": lambda: blocks.home_view(
        HomeView(
            user_id="U0ANA",
            today=TODAY,
            open_deals=(_deal(),),
            overdue_steps=((_deal().next_step, "Initech"),),  # type: ignore[arg-type]
            accuracy_score=Decimal("0.80"),
        )
    ),
}


def _check_snapshot(name: str, rendered: Any) -> None:
    path = SNAPSHOTS / f"{name}.json"
    text = json.dumps(rendered, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    if os.environ.get("DEALBOT_UPDATE_SNAPSHOTS"):
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no snapshot {path.name}: run with DEALBOT_UPDATE_SNAPSHOTS=1"
    assert json.loads(path.read_text(encoding="utf-8")) == rendered


@pytest.mark.parametrize("name", sorted(CASES))
def test_message_builders_match_their_snapshots(name: str) -> None:
    reply = CASES[name]()
    assert reply.text, "every message needs a plain-text fallback"
    _check_snapshot(name, {"text": reply.text, "blocks": reply.block_dicts()})


@pytest.mark.parametrize("name", sorted(VIEWS))
def test_view_builders_match_their_snapshots(name: str) -> None:
    view = VIEWS[name]()
    view.validate_json()
    _check_snapshot(name, view.to_dict())


def test_user_text_is_escaped_but_mentions_stay_live() -> None:
    text = blocks.deal_card(_deal(buying_criteria="<b> & <@U0BEN>"), TODAY).block_dicts()
    rendered = json.dumps(text)
    assert "&lt;b&gt; &amp; <@U0BEN>" in rendered


def test_long_pipelines_stay_within_slacks_block_limit() -> None:
    many = tuple(_deal(id=i, account=f"Account {i}") for i in range(300))
    reply = blocks.pipeline_reply(
        PipelineView(scope="team", today=TODAY, deals=many, team_names=("Team",))
    )
    assert len(reply.blocks) <= 50
    assert all(len(json.dumps(b)) < 3500 for b in reply.block_dicts())
    assert "more" in json.dumps(reply.block_dicts())
