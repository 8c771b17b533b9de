"""What the scheduled nudges say, as plain values, and the rule for snoozing a deal.

The jobs in `reminders/` fill these values; the Block Kit in `handlers/` renders them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from domain.changes import DealRef
from domain.errors import NotAllowed, Person
from storage.nudges import NudgeRepository
from storage.teams import TeamRepository

if TYPE_CHECKING:
    from domain.checks import DealFacts, FailingDeal
    from domain.clock import Clock
    from domain.deals import Actor, DealService
    from domain.forecast import (
        ClosedFigures,
        Flow,
        ForecastAccuracy,
        LearnedThresholds,
        RepCalibration,
        RollUp,
    )
    from domain.money import Money
    from storage.database import Database

SNOOZE_DAYS = (1, 7)


@dataclass(frozen=True)
class ChaseItem:
    """One deal in a rep's chase DM and the checks that fired on it."""

    deal: DealFacts
    checks: tuple[str, ...]


@dataclass(frozen=True)
class RepAccuracy:
    """One rep's line in the weekly accuracy post."""

    rep_id: str
    score: Decimal | None
    change: Decimal | None  # since last week, in score points (0.05 = 5 points)
    deals: int
    top_failures: tuple[tuple[str, int], ...]
    best_fix: tuple[str, int, Decimal] | None
    # The largest deals failing a check (largest amount first), and how many more fail one.
    failing_deals: tuple[FailingDeal, ...] = ()
    more_failing: int = 0
    # Open Commit deals' money (reporting currency) and the part backed by cited evidence
    # for every `domain.evidence.COMMIT_EVIDENCE` kind; commit deals without an amount or a
    # rate are in neither figure, only counted.
    commit_claimed: Money | None = None
    commit_evidenced: Money | None = None
    commit_unpriced: int = 0


@dataclass(frozen=True)
class DealLine:
    """One deal as a manager's digest lists it."""

    deal_id: int
    name: str
    owner_id: str
    amount: Money | None
    note: str = ""


@dataclass(frozen=True)
class Digest:
    """A team's week in numbers, for its manager.

    Every amount is in the team's reporting currency (`currency`), from the roll-up. The
    optional figures are computed by other jobs' code and shown when present.
    """

    team_name: str
    week: str
    quarter: str
    currency: str
    open_deals: int
    roll_up: RollUp
    won: tuple[DealLine, ...]
    lost: tuple[DealLine, ...]
    rep_scores: tuple[tuple[str, Decimal | None], ...]
    ignored_checks: tuple[tuple[str, int, int], ...]  # check, nudged, acted on
    flow: Flow | None = None
    accuracy: ForecastAccuracy | None = None
    closed: ClosedFigures | None = None
    calibration: tuple[RepCalibration, ...] = ()
    learned: LearnedThresholds | None = None


def snooze_deal(
    *, deals: DealService, database: Database, clock: Clock, actor: Actor, deal_id: int, days: int
) -> tuple[str, dt.date]:
    """Return (deal name, first day it is chased again) after snoozing it for `days`."""
    if days not in SNOOZE_DAYS:
        raise ValueError(f"snooze for {days} days is not offered")
    user_id = actor.user_id
    deal = deals.show_deal(actor, DealRef(name=None, deal_id=deal_id))
    until = deals.today_for(user_id) + dt.timedelta(days=days)
    with database.session() as session:
        managed = TeamRepository(session).reps_managed_by(user_id)
        if deal.owner_id != user_id and deal.owner_id not in managed and not actor.is_admin():
            raise NotAllowed(
                (f"{deal.account} belongs to ", Person(deal.owner_id), "; only they can snooze it.")
            )
        NudgeRepository(session).snooze(deal_id=deal_id, until=until, by=user_id, at=clock.now())
    return deal.name, until
