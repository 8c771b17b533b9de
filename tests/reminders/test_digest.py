"""The manager digest's forecast roll-up, snapshot-tested against figures computed by hand.

The East team (New York): Ana (quota $200,000) and Ben (no quota), reporting in USD. EUR is
worth 1.10 USD from 1 Oct and 1.20 USD from 15 Nov; GBP has no rate. The digest runs on
Monday 23 Nov 2026, 9:30 in New York.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from domain.changes import ContactRef, DealChanges, DealRef
from domain.deals import Actor
from domain.money import Money
from storage.fx import FxRepository
from tests.reminders.test_jobs import MONDAY, text_of
from tests.reminders.world import ANA, BEN, MARIA, World

D = dt.date
UTC = dt.UTC


def deal(
    world: World,
    owner: str,
    account: str,
    amount: str,
    currency: str,
    *,
    forecast: str,
    close: dt.date,
    stage: str = "discovery",
    at: dt.datetime = MONDAY - dt.timedelta(days=3),
) -> None:
    """Create a deal with a dated, owned next step due two days after the digest's Monday:
    no next-step check fires."""
    world.clock.at = at
    actor = Actor(user_id=owner)
    created = world.deals.create_deal(
        actor,
        account,
        DealChanges(
            amount=Money(Decimal(amount), currency),
            stage=stage,
            close_date=close,
            forecast=forecast,
            economic_buyer=ContactRef(name="Dana Scully", email=None, user_id=None),
        ),
        # Seeded as a CRM would: the digest's figures, not the Commit gate, are under test.
        evidence_gate=False,
    )
    world.deals.add_next_step(
        actor,
        DealRef(name=None, deal_id=created.id),
        what="Call",
        due=MONDAY.date() + dt.timedelta(days=2),
        owner_id=owner,
    )
    world.deal_ids[account] = created.id


def won(world: World, owner: str, account: str, on: dt.datetime) -> None:
    world.clock.at = on
    world.deals.close_deal(
        Actor(user_id=owner), DealRef(name=account, deal_id=None), won=True, reason="ROI case"
    )


def seed(world: World) -> None:
    with world.database.session() as session:
        fx = FxRepository(session)
        for day, rate in ((D(2026, 10, 1), "1.10"), (D(2026, 11, 15), "1.20")):
            fx.set_rate(
                currency="EUR", rate=Decimal(rate), effective_on=day, by="U0ROOT", at=MONDAY
            )
    # Ana: commit at demo with one contact (single-threaded): at risk.
    deal(world, ANA, "Initech", "80000", "USD", forecast="commit", close=D(2026, 12, 10),
         stage="demo")  # fmt: skip
    deal(world, ANA, "Globex", "20000", "EUR", forecast="best_case", close=D(2026, 11, 30))
    deal(world, ANA, "Umbrella", "10000", "EUR", forecast="pipeline", close=D(2026, 11, 10))
    # Pushed to January: in no figure of Q4.
    deal(world, ANA, "Cyberdyne", "40000", "USD", forecast="commit", close=D(2027, 1, 15))
    # Ben: won Stark on Sat 21 Nov; won Wayne (in EUR) on Tue 10 Nov; Tyrell is in GBP.
    deal(world, BEN, "Stark", "50000", "USD", forecast="commit", close=D(2026, 12, 15),
         at=dt.datetime(2026, 11, 2, 15, tzinfo=UTC))  # fmt: skip
    won(world, BEN, "Stark", dt.datetime(2026, 11, 21, 15, tzinfo=UTC))
    deal(world, BEN, "Wayne", "25000", "EUR", forecast="commit", close=D(2026, 12, 20),
         at=dt.datetime(2026, 11, 2, 15, tzinfo=UTC))  # fmt: skip
    won(world, BEN, "Wayne", dt.datetime(2026, 11, 10, 15, tzinfo=UTC))
    deal(world, BEN, "Tyrell", "15000", "GBP", forecast="best_case", close=D(2026, 12, 5))


def roll_up_text(world: World) -> str:
    (maria,) = world.dms_to(MARIA)
    text = text_of(maria)
    return text[: text.index("*Week over week*")]


def flow_text(world: World) -> str:
    (maria,) = world.dms_to(MARIA)
    text = text_of(maria)
    return text[text.index("*Week over week*") : text.index("*This week*")]


def test_digest_rolls_up_every_currency_per_rep_and_team(any_world: World) -> None:
    # On both backends: the facts stream and the closed days come from SQL.
    world = any_world
    seed(world)
    assert world.run("manager-digest", MONDAY).line() == "sent 2, pending 0, failed 0"
    # Ana: commit Initech 80,000; best case Globex €20,000 × 1.20 (30 Nov) = 24,000;
    #   pipeline Umbrella €10,000 × 1.10 (10 Nov) = 11,000; Cyberdyne closes in January.
    #   Quota 200,000: attainment 0 ÷ 200,000 = 0%; coverage 115,000 ÷ 200,000 = 0.575 → 0.6×.
    #   At risk: Initech 80,000: at demo with one contact (single-threaded) and no buying
    #   criteria (demo's exit criteria), in commit, so commit without evidence fires too.
    # Ben: won Stark 50,000 + Wayne €25,000 × 1.10 (won 10 Nov) = 27,500 → 77,500;
    #   Tyrell (GBP) excluded; no quota.
    # Team: won 77,500; commit 80,000; best case 24,000; pipeline 11,000; quota 200,000;
    #   attainment 77,500 ÷ 200,000 = 0.3875 → 39%; coverage 115,000 ÷ 122,500 = 0.94 → 0.9×.
    assert roll_up_text(world) == (
        "East · week 2026-W48\n"
        "*2026-Q4 forecast · USD*\n"
        f"<@{ANA}>: won *$0* · commit *$80,000* · best case *$24,000* · pipeline *$11,000*\n"
        "      quota $200,000 · attainment *0%* · coverage *0.6×* · :warning: at risk "
        "*$80,000* (1 deal)\n"
        f"<@{BEN}>: won *$77,500* · commit *$0* · best case *$0* · pipeline *$0*\n"
        "      no quota set\n"
        "*Team*: won *$77,500* · commit *$80,000* · best case *$24,000* · pipeline *$11,000*\n"
        "      quota $200,000 · attainment *39%* · coverage *0.9×* · :warning: at risk "
        "*$80,000* (1 deal)\n"
        ":warning: *At risk: $80,000* — commit and best case on deals failing a check\n"
        f"• *Initech* $80,000 (<@{ANA}>): single-threaded · stage exit criteria unmet · "
        "commit without evidence\n"
        "*Not in these totals (1)*\n"
        "• *Tyrell* £15,000: no GBP rate — dealbot fx set GBP &lt;rate&gt;\n"
        "Totals in USD, each deal converted at the rate of its close date (`dealbot fx`): "
        "1 EUR = 1.1 USD (rate of Thu 1 Oct 2026), 1 EUR = 1.2 USD (rate of Sun 15 Nov 2026).\n"
    )
    # No snapshot a week ago: the week is read from the last 7 days of history. Created:
    #   Initech 80,000 + Globex €20,000 × 1.20 + Umbrella €10,000 × 1.10 + Cyberdyne 40,000
    #   = 155,000, and Tyrell (no GBP rate: named, no money) — 5 deals. Won: Stark 50,000
    #   on 21 Nov (Wayne was won on 10 Nov, before the week).
    assert flow_text(world) == (
        "*Week over week* (no earlier snapshot yet)\n"
        "• Created: 5 · $155,000 — Initech, Globex, Umbrella and 2 more\n"
        "• Won: 1 · $50,000 — Stark\n"
    )


def test_digest_in_the_teams_own_currency(world: World) -> None:
    seed(world)
    from storage.models import Team
    from storage.teams import TeamRepository

    with world.database.session() as session:
        team: Team | None = TeamRepository(session).by_name("East")
        assert team is not None
        team.currency = "EUR"
    world.run("manager-digest", MONDAY)
    text = roll_up_text(world)
    # Ben's won in EUR: Stark $50,000 ÷ 1.20 (21 Nov) = €41,666.67 + Wayne €25,000 = €66,666.67.
    assert f"<@{BEN}>: won *€66,666.67*" in text
    # Ana's quota $200,000 at today's rate ÷ 1.20 = €166,666.67.
    assert "quota €166,666.67 · attainment *0%*" in text
    assert "Totals in EUR" in text and "1 USD = " in text
