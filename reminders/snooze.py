"""Snoozing a deal from a reminder: no chase about it until the chosen day."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from domain.changes import DealRef
from domain.errors import NotAllowed
from storage.reminder_repositories import NudgeRepository
from storage.repositories import TeamRepository

if TYPE_CHECKING:
    from bot.app import Services

SNOOZE_DAYS = (1, 7)


def snooze_deal(services: Services, user_id: str, deal_id: int, days: int) -> tuple[str, dt.date]:
    """Return (deal name, first day it is chased again) after snoozing it for `days`."""
    if days not in SNOOZE_DAYS:
        raise ValueError(f"snooze for {days} days is not offered")
    actor = services.actor(user_id)
    deal = services.deals.show_deal(actor, DealRef(name=None, deal_id=deal_id))
    today = services.deals.today_for(user_id)
    until = today + dt.timedelta(days=days)
    with services.database.session() as session:
        managed = TeamRepository(session).reps_managed_by(user_id)
        if deal.owner_id != user_id and deal.owner_id not in managed and not actor.is_admin():
            raise NotAllowed(
                f"{deal.account} belongs to <@{deal.owner_id}>; only they can snooze it."
            )
        NudgeRepository(session).snooze(
            deal_id=deal_id, until=until, by=user_id, at=services.clock.now()
        )
    return deal.name, until
