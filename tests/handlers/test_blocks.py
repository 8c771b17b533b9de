"""Snapshots of each Block Kit builder, so a change to what users see is a deliberate one.

Run with DEALBOT_UPDATE_SNAPSHOTS=1 to rewrite them after an intended change.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from domain.changes import DealChanges, DealRef
from domain.deals import EvidenceCited
from domain.errors import Candidate, InvalidChange, Person
from domain.money import Money
from domain.stages import DEFAULT_STAGES
from domain.teams import ConvertedAmount, ExcludedDeal, RepAttainment, TeamStanding
from domain.views import (
    ChangeView,
    ContactView,
    DealUpdate,
    DealView,
    EvidenceView,
    FieldChange,
    HomeView,
    NextStepView,
    PipelineView,
    PostMortemView,
    QuotaView,
    TeamView,
)
from handlers import blocks, reminder_blocks
from handlers.commands.dispatch import COMMANDS, USAGE
from handlers.commands.grammars.deal import ShowDeal, UpdateDeal
from handlers.commands.intents import to_button_value

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


_EVIDENCE = (
    EvidenceView(
        kind="eb",
        source="slack",
        reference="https://acme.slack.com/archives/C0TEAM/p1700000000123456",
        cited_by="U0ANA",
        cited_at=dt.datetime(2026, 11, 12, 15, 0, tzinfo=dt.UTC),
        cited_on=dt.date(2026, 11, 12),
    ),
    EvidenceView(
        kind="paper",
        source="gmail",
        reference="18c2f9a0b1d2e3f4",
        cited_by="U0ANA",
        cited_at=dt.datetime(2026, 11, 13, 15, 0, tzinfo=dt.UTC),
        cited_on=dt.date(2026, 11, 13),
    ),
)


CASES: dict[str, Any] = {
    "error": lambda: blocks.error_reply("`lots` is not an amount.", "/deal new Initech 50k"),
    "ambiguous": lambda: blocks.ambiguous_reply(
        "More than one deal matches “init”.",
        [Candidate(1, "Initech East · $10,000 (#1)"), Candidate(2, "Initech West · $20,000 (#2)")],
        value_of=lambda deal_id: to_button_value(
            "/deal", UpdateDeal(DealRef(None, deal_id), DealChanges(stage="demo"))
        ),
    ),
    "deal_card": lambda: blocks.deal_card(_deal(), TODAY),
    # Commit with the buyer and paper process cited, the decision process not yet.
    "deal_card_with_evidence": lambda: blocks.deal_card(
        _deal(forecast_category="commit", paper_process="MSA via legal", evidence=_EVIDENCE),
        TODAY,
    ),
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
    # Issue 12: every field an update changed, old → new, each written as the rep would.
    "deal_updated_fields": lambda: blocks.deal_updated(
        DealUpdate(
            _deal(),
            (
                FieldChange("amount", "40000.00 USD", "48000.00 USD"),
                FieldChange("close_date", "2026-12-01", "2027-03-31"),
                FieldChange("economic_buyer", "Bill Lumbergh", "@U0PETER"),
                FieldChange("champion", None, "peter@initech.com"),
                FieldChange("buying_criteria", "SSO", "SSO & audit log <must> " + "x" * 80),
            ),
        ),
        TODAY,
    ),
    "pipeline_team": lambda: blocks.pipeline_reply(
        PipelineView(
            scope="team",
            today=TODAY,
            deals=(_deal(), _deal(id=8, account="Hooli", owner_id="U0BEN", next_step=None)),
            totals={"USD": Decimal("96000")},
            weighted_totals={"USD": Decimal("38400")},
            team_names=("Enterprise",),
            roll_ups=(_roll_up(),),
        )
    ),
    # The roll-up by hand (EUR at 1.10, GBP has no rate):
    #   Ana: won Initech 60,000; commit Globex 100,000 (single-threaded: at risk); best case
    #     Umbrella €50,000 × 1.10 = 55,000; quota 300,000: 60,000 ÷ 300,000 = 20%;
    #     coverage 155,000 ÷ 240,000 = 0.6458 → 0.65 → 0.7×.
    #   Ben: pipeline Hooli 40,000 (failing a check, but pipeline is not at risk); Tyrell
    #     (GBP) left out; no quota.
    #   Team: 60,000 / 100,000 / 55,000 / 40,000; quota 300,000: 20%; coverage 195,000 ÷
    #     240,000 = 0.8125 → 0.81 → 0.8×; at risk 100,000.
    "digest": lambda: reminder_blocks.manager_digest(_digest()),
    # With what other jobs compute: the week's flow, commit closed so far (mid-quarter),
    # closed figures (which replace the count-based ones), calibration, learned thresholds.
    "digest_full": lambda: reminder_blocks.manager_digest(_full_digest()),
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
    "team_standing": lambda: blocks.team_standing_reply([_standing("Enterprise", "Globex")]),
    "team_stages": lambda: blocks.team_stages_reply(_team_view("Enterprise"), DEFAULT_STAGES),
}


def _roll_up() -> Any:
    """Enterprise's 2026-Q4 in USD, from rows (figures by hand in the digest case's comment)."""
    from domain.fx import Rate, RateBook
    from domain.roll_up import RollUpDeal, roll_up

    def row(deal_id: int, name: str, owner: str, amount: str, currency: str, category: str,
            status: str = "open", checks: tuple[str, ...] = ()) -> RollUpDeal:  # fmt: skip
        return RollUpDeal(
            deal_id=deal_id,
            name=name,
            owner_id=owner,
            amount=Decimal(amount),
            currency=currency,
            forecast_category=category,
            status=status,
            close_date=dt.date(2026, 11, 10) if status == "won" else dt.date(2026, 12, 15),
            closed_on=dt.date(2026, 11, 10) if status == "won" else None,
            checks=checks,
        )

    return roll_up(
        team_name="Enterprise",
        period="2026-Q4",
        reps=("U0ANA", "U0BEN"),
        deals=[
            row(1, "Initech", "U0ANA", "60000", "USD", "commit", status="won"),
            row(2, "Globex", "U0ANA", "100000", "USD", "commit", checks=("SINGLE_THREADED",)),
            row(3, "Umbrella", "U0ANA", "50000", "EUR", "best_case"),
            row(4, "Hooli", "U0BEN", "40000", "USD", "pipeline", checks=("NO_NEXT_STEP",)),
            row(5, "Tyrell", "U0BEN", "10000", "GBP", "commit"),
        ],
        quotas={"U0ANA": Money(Decimal("300000"), "USD")},
        rates=RateBook("USD", [Rate("EUR", dt.date(2026, 10, 1), Decimal("1.10"))]),
        currency="USD",
        quarter=(dt.date(2026, 10, 1), dt.date(2026, 12, 31)),
        today=TODAY,
    )


def _digest(**figures: Any) -> Any:
    from domain.nudges import DealLine, Digest

    return Digest(
        team_name="Enterprise",
        week="2026-W48",
        quarter="2026-Q4",
        currency="USD",
        open_deals=3,
        roll_up=_roll_up(),
        won=(DealLine(1, "Initech", "U0ANA", Money(Decimal("60000"), "USD"), "ROI case"),),
        lost=(),
        rep_scores=(("U0ANA", Decimal("0.8")), ("U0BEN", None)),
        ignored_checks=(("NO_NEXT_STEP", 4, 1),),
        **figures,
    )


def _full_digest() -> Any:
    from domain.forecast import (
        ClosedFigures,
        Flow,
        FlowLine,
        ForecastAccuracy,
        ForecastDeal,
        LearnedThresholds,
        RepCalibration,
    )

    usd = lambda amount: Money(Decimal(amount), "USD")  # noqa: E731
    pushed = ForecastDeal(
        deal_id=2, name="Globex", owner_id="U0ANA", amount=usd("100000"),
        converted=usd("100000"), note="pushed out 14 days",
    )  # fmt: skip
    return _digest(
        flow=Flow(
            since_week="2026-W47",
            week="2026-W48",
            lines=(
                FlowLine(kind="pushed_out", count=1, money=usd("100000"), deals=(pushed,)),
                FlowLine(kind="created", count=0, money=usd("0"), deals=()),
            ),
        ),
        accuracy=ForecastAccuracy(
            quarter="2026-Q4",
            final=False,
            commit_called=usd("200000"),
            won_of_commit=usd("60000"),
            ratio=Decimal("0.3"),
        ),
        closed=ClosedFigures(win_rate=Decimal("0.6"), average_days_to_close=35, slip_rate=None),
        calibration=(
            RepCalibration(
                rep_id="U0ANA",
                closed_deals=9,
                close_date_hit_rate=Decimal("0.56"),
                mean_slip_days=Decimal("12.5"),
                commit_to_won=Decimal("0.75"),
                on_time=5,
                called=9,
                previous=RepCalibration(
                    rep_id="U0ANA",
                    closed_deals=7,
                    close_date_hit_rate=Decimal("0.43"),
                    mean_slip_days=Decimal("20"),
                    commit_to_won=None,
                ),
            ),
        ),
        learned=LearnedThresholds(
            deals_counted=40,
            win_rate=Decimal("0.25"),
            required_coverage=Decimal("4"),
            stalled_days=(("demo", 24),),
            by_segment=(("Enterprise", Decimal("0.2"), 80),),
        ),
    )


def _team_view(name: str) -> TeamView:
    return TeamView(1, name, "C0SALES", "Europe/Paris", ("U0MARIA",), ("U0ANA", "U0RAJ"), ())


def _standing(team: str, excluded: str) -> TeamStanding:
    """Return a team whose first rep is at 60% with a deal converted from pounds and one left
    out for want of a euro rate; the second has none."""
    quota = Money(Decimal("100000"), "USD")
    return TeamStanding(
        team=_team_view(team),
        period="2026-Q4",
        first_day=dt.date(2026, 10, 1),
        last_day=dt.date(2026, 12, 31),
        reps=(
            RepAttainment(
                user_id="U0ANA",
                quota=quota,
                won=(Money(Decimal("60000"), "USD"),),
                ratio=Decimal("0.6"),
                deal_count=2,
                excluded=(
                    ExcludedDeal(
                        deal_id=4,
                        name=excluded,
                        amount=Money(Decimal("20000"), "EUR"),
                        reason="no_rate",
                        missing_rate="EUR",
                    ),
                ),
                converted=(
                    ConvertedAmount(
                        original=Money(Decimal("10000"), "GBP"),
                        converted=Money(Decimal("12800"), "USD"),
                        rate=Decimal("1.28"),
                        rate_date=dt.date(2026, 12, 1),
                    ),
                ),
            ),
            RepAttainment(
                user_id="U0RAJ", quota=None, won=(), ratio=None, deal_count=0, excluded=()
            ),
        ),
    )


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


def test_a_big_teams_digest_keeps_within_slacks_limits() -> None:
    """Sixty reps, each with two deals at risk and one left out: 50 blocks, 3000 characters."""
    from domain.fx import RateBook
    from domain.roll_up import RollUpDeal, roll_up

    reps = tuple(f"U0REP{n:03d}" for n in range(60))
    deals = [
        RollUpDeal(
            deal_id=n * 10 + k,
            name=f"Account {n}-{k} " + "x" * 60,
            owner_id=rep,
            amount=Decimal(1000 * (n + 1) + k),
            currency="GBP" if k == 2 else "USD",
            forecast_category="commit",
            status="open",
            close_date=dt.date(2026, 12, 1),
            checks=("SINGLE_THREADED", "NO_NEXT_STEP"),
        )
        for n, rep in enumerate(reps)
        for k in range(3)
    ]
    rolled = roll_up(
        team_name="Enterprise",
        period="2026-Q4",
        reps=reps,
        deals=deals,
        quotas={rep: Money(Decimal("100000"), "USD") for rep in reps},
        rates=RateBook("USD", []),
        currency="USD",
        quarter=(dt.date(2026, 10, 1), dt.date(2026, 12, 31)),
        today=TODAY,
    )
    reply = reminder_blocks.manager_digest(replace(_full_digest(), roll_up=rolled))
    rendered = reply.block_dicts()
    assert len(rendered) <= 50
    texts = [b["text"]["text"] for b in rendered if "text" in b and b["type"] == "section"]
    assert all(len(text) <= 3000 for text in texts)
    body = "\n".join(texts)
    # 120 deals at risk: the five largest named (rep 59's two, then rep 58's), then the rest.
    assert "• …and 115 more" in body and "*Account 59-1 " in body
    assert "*Not in these totals (60)*" in body and "• …and 55 more" in body
    assert "<@U0REP059>" in body


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


# --- Text that travels: every builder escapes the names and text it is given --------------

# A name as hostile as a rep can type: a broadcast, a mention, markup and bold.
HOSTILE = "<!channel> <@U0BEN> & *Acme*"
# Free text may hold mentions the parser kept on purpose, so only the broadcast and the &.
FREE = "<!channel> & *call*"
HOSTILE_MONEY = Money(Decimal("1000"), "USD")


def _hostile_roll_up() -> Any:
    from domain.forecast import ExcludedDeal, ForecastDeal, RepForecast, RollUp

    risky = ForecastDeal(
        deal_id=1,
        name=HOSTILE,
        owner_id="U0ANA",
        amount=HOSTILE_MONEY,
        converted=HOSTILE_MONEY,
        checks=("SINGLE_THREADED",),
    )
    line = RepForecast(
        rep_id="U0ANA",
        won=HOSTILE_MONEY,
        commit=HOSTILE_MONEY,
        best_case=HOSTILE_MONEY,
        pipeline=HOSTILE_MONEY,
        quota=None,
        attainment=None,
        coverage=None,
        at_risk=HOSTILE_MONEY,
        at_risk_deals=(risky,),
    )
    return RollUp(
        team_name=HOSTILE,
        period="2026-Q4",
        currency="USD",
        reps=(line,),
        team=line,
        excluded=(ExcludedDeal(deal_id=2, name=HOSTILE, amount=None, reason=FREE),),
        rates_used=(),
    )


def _hostile_digest() -> Any:
    from domain.nudges import DealLine, Digest

    line = DealLine(1, HOSTILE, "U0ANA", HOSTILE_MONEY, note=FREE)
    return Digest(
        team_name=HOSTILE,
        week="2026-W48",
        quarter="2026-Q4",
        currency="USD",
        open_deals=1,
        roll_up=_hostile_roll_up(),
        won=(),
        lost=(line,),
        rep_scores=(("U0ANA", Decimal("0.5")),),
        ignored_checks=(),
    )


def _hostile_outcome(**overrides: Any) -> Any:
    from domain.follow_ups import DraftOutcome

    values: dict[str, Any] = dict(
        trigger_id=1,
        rep_id="U0ANA",
        deal_name=HOSTILE,
        template="proposal_sent",
        status="drafted",
        subject=f"Proposal for {HOSTILE}",
        preview=FREE,
        link="outbox/1.eml",
        problem=FREE,
    )
    values.update(overrides)
    return DraftOutcome(**values)


def _hostile_facts() -> Any:
    from domain.checks import DealFacts

    return DealFacts(1, "U0ANA", HOSTILE, "demo", "won", "commit", True, TODAY)


def _hostile_builders() -> dict[str, Any]:
    from domain.nudges import ChaseItem
    from handlers import follow_up_blocks, reminder_blocks

    hostile = _deal(
        account=HOSTILE,
        buying_criteria=FREE,
        contacts=(ContactView(HOSTILE, "bill@initech.com", None, "economic_buyer"),),
        next_step=NextStepView(1, FREE, "U0ANA", dt.date(2026, 11, 20), False),
        close_reason=FREE,
    )
    team = TeamView(1, HOSTILE, "C0SALES", "America/New_York", ("U0MARIA",), ("U0ANA",), ())
    return {
        "deal_card": lambda: blocks.deal_card(hostile, TODAY),
        "evidence_cited": lambda: blocks.evidence_cited(
            EvidenceCited(
                deal=replace(hostile, forecast_category="commit", evidence=_EVIDENCE),
                citation=_EVIDENCE[0],
            ),
            TODAY,
        ),
        "deal_created": lambda: blocks.deal_created(hostile, TODAY),
        "deal_updated": lambda: blocks.deal_updated(DealUpdate(hostile, ()), TODAY),
        "deal_closed": lambda: blocks.deal_closed(hostile, TODAY),
        "next_step_added": lambda: blocks.next_step_added(hostile, TODAY),
        "next_step_done": lambda: blocks.next_step_done(hostile, hostile.next_step, TODAY),
        "pipeline": lambda: blocks.pipeline_reply(
            PipelineView(
                scope="team",
                today=TODAY,
                deals=(hostile,),
                team_names=(HOSTILE,),
                roll_ups=(_hostile_roll_up(), _hostile_roll_up()),
            )
        ),
        "team": lambda: blocks.team_reply([team], heading=f"Team {FREE} created."),
        "team_standing": lambda: blocks.team_standing_reply([_standing(HOSTILE, HOSTILE)]),
        "team_stages": lambda: blocks.team_stages_reply(team, DEFAULT_STAGES),
        "error": lambda: blocks.error_reply(f"No deal matches “{FREE}”.", FREE),
        "ambiguous": lambda: blocks.ambiguous_reply(
            f"More than one deal matches “{FREE}”.",
            [Candidate(1, HOSTILE), Candidate(2, HOSTILE + " 2")],
            value_of=lambda deal_id: to_button_value("/deal", ShowDeal(DealRef(None, deal_id))),
        ),
        "chase": lambda: reminder_blocks.chase_message(
            [ChaseItem(_hostile_facts(), ("NO_NEXT_STEP",))], TODAY
        ),
        "post_mortem_prompt": lambda: reminder_blocks.post_mortem_prompt(_hostile_facts()),
        "accuracy_post": lambda: reminder_blocks.accuracy_post(
            team_name=HOSTILE, week="2026-W48", team_score=None, reps=(), top_checks=()
        ),
        "digest": lambda: reminder_blocks.manager_digest(_hostile_digest()),
        "draft_ready": lambda: follow_up_blocks.draft_ready(_hostile_outcome()),
        "draft_skipped": lambda: follow_up_blocks.draft_skipped(
            _hostile_outcome(status="skipped"), deal_ref="#1"
        ),
        "connect_gmail": lambda: follow_up_blocks.connect_gmail(
            "https://dealbot.example/c", deals=[HOSTILE], reconnect=False
        ),
        "drafting_started": lambda: follow_up_blocks.drafting_started(HOSTILE, "proposal_sent"),
        "follow_up_problem": lambda: follow_up_blocks.follow_up_problem(
            _hostile_outcome(status="retry"), deal_ref="#1"
        ),
        "template_broken": lambda: follow_up_blocks.template_broken("proposal_sent", FREE),
    }


def _hostile_views() -> dict[str, Any]:
    from handlers import reminder_blocks

    hostile = _deal(account=HOSTILE, status="won")
    return {
        "post_mortem_modal": lambda: blocks.post_mortem_modal(hostile),
        "cite_evidence_modal": lambda: blocks.cite_evidence_modal(
            (hostile,), permalink=_EVIDENCE[0].reference, excerpt=FREE, channel_id="C0TEAM"
        ),
        "log_step_modal": lambda: reminder_blocks.log_step_modal(
            deal_id=1, account=HOSTILE, today=TODAY
        ),
        "home": lambda: blocks.home_view(
            HomeView(
                user_id="U0ANA",
                today=TODAY,
                open_deals=(_deal(account=HOSTILE, attention=("NO_AMOUNT",)),),
                overdue_steps=((NextStepView(1, FREE, None, TODAY, False), HOSTILE),),
                accuracy_score=None,
            )
        ),
    }


def _formatted_texts(node: Any) -> list[str]:
    """Return the text of every text object under `node` (mrkdwn and plain alike)."""
    if isinstance(node, list):
        return [text for item in node for text in _formatted_texts(item)]
    if not isinstance(node, dict):
        return []
    own = [node["text"]] if node.get("type") in ("mrkdwn", "plain_text") else []
    return own + [text for value in node.values() for text in _formatted_texts(value)]


def _assert_nothing_live(texts: list[str], *, mrkdwn: list[str]) -> None:
    joined = "\n".join(texts)
    assert "<!channel>" not in joined and "<@U0BEN>" not in joined, joined
    assert "&lt;!channel&gt;" in joined, joined
    assert " & " not in joined, joined  # a bare & is Slack's control character too
    assert not any("*Acme*" in text for text in mrkdwn), mrkdwn


@pytest.mark.parametrize("name", sorted(_hostile_builders()))
def test_a_name_typed_as_channel_never_becomes_a_live_mention_in_a_post(name: str) -> None:
    reply = _hostile_builders()[name]()
    dicts = reply.block_dicts()
    texts = [reply.text, *_formatted_texts(dicts)]
    _assert_nothing_live(texts, mrkdwn=[reply.text, *_mrkdwn_only(dicts)])


@pytest.mark.parametrize("name", sorted(_hostile_views()))
def test_a_name_typed_as_channel_never_becomes_a_live_mention_in_a_view(name: str) -> None:
    view = _hostile_views()[name]().to_dict()
    _assert_nothing_live(_formatted_texts(view), mrkdwn=_mrkdwn_only(view))


def _mrkdwn_only(node: Any) -> list[str]:
    """Return the text of every mrkdwn object under `node`: what Slack formats."""
    if isinstance(node, list):
        return [text for item in node for text in _mrkdwn_only(item)]
    if not isinstance(node, dict):
        return []
    own = [node["text"]] if node.get("type") == "mrkdwn" else []
    return own + [text for value in node.values() for text in _mrkdwn_only(value)]


def test_a_name_keeps_its_characters_with_formatting_marks_as_look_alikes() -> None:
    assert blocks.escape_name("*A_c~m`e* & <co>") == "∗Aˍc∼mˋe∗ &amp; &lt;co&gt;"
    # Free text keeps the mentions the parser put there, and its own formatting.
    assert blocks.escape("*call* <@U0BEN> <!here>") == "*call* <@U0BEN> &lt;!here&gt;"


def test_a_long_escaped_name_still_fits_slacks_header_and_button_limits() -> None:
    long_name = "R&D <Labs> " * 30
    card = blocks.deal_card(_deal(account=long_name), TODAY)
    header = card.block_dicts()[0]["text"]["text"]
    assert len(header) <= 150 and header.startswith("R&amp;D &lt;Labs&gt;")
    assert not header.endswith(("&", "&a", "&am", "&amp", "&l", "&lt", "&g", "&gt"))
    choice = blocks.ambiguous_reply(
        "More than one deal matches “r”.",
        [Candidate(1, long_name), Candidate(2, long_name + "2")],
        value_of=lambda deal_id: to_button_value("/deal", ShowDeal(DealRef(None, deal_id))),
    )
    for button in choice.block_dicts()[1]["elements"]:
        assert len(button["text"]["text"]) <= 75
    assert blocks.plain_text_within("<" * 100, 10) == "&lt;&lt;"


def test_helps_notification_names_the_commands_of_the_command_table() -> None:
    names = ", ".join(command.name for command in COMMANDS)
    assert blocks.help_reply(USAGE).text == f"dealbot help: {names}"
    # `/deal help` shows /deal's forms; its notification still names every command.
    part = blocks.help_reply({"/deal": USAGE["/deal"]}, commands=tuple(USAGE))
    assert part.text == f"dealbot help: {names}"
    assert "*/nextstep*" not in json.dumps(part.block_dicts())


def test_a_domain_refusal_names_its_people_as_mentions() -> None:
    refusal = InvalidChange(
        (Person("U0ANA"), " is not a rep in West."),
        ("/dealbot team add West rep ", Person("U0ANA")),
    )

    reply = blocks.refusal_reply(refusal)

    assert reply.is_error
    assert reply.text == "<@U0ANA> is not a rep in West. Try: /dealbot team add West rep <@U0ANA>"
