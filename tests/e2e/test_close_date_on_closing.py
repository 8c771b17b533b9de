"""A won or lost deal's close date becomes the day it closed, over real HTTP.

Regression: a won deal kept its planned close date ("WON … closes Tue 22 Dec" after winning
on 1 Dec), which fed days to close.
"""

from __future__ import annotations

from sqlalchemy import select

from storage.models import DealChange
from tests.e2e.harness import CONFIGURED_ADMIN, RunningApp


def _closing_rows(app: RunningApp, deal_id: int) -> list[tuple[str, str | None, str | None]]:
    """Return the history rows written at the moment the deal's status changed."""
    with app.database.session() as session:
        rows = session.scalars(
            select(DealChange).where(DealChange.deal_id == deal_id).order_by(DealChange.id)
        ).all()
        closed_at = next(r.changed_at for r in rows if r.field == "status" and r.old_value)
        return [(r.field, r.old_value, r.new_value) for r in rows if r.changed_at == closed_at]


def test_a_won_deal_closes_on_the_closers_day_and_keeps_the_planned_date_in_history(
    app: RunningApp,
) -> None:
    # 15:00 UTC on Mon 23 Nov is already Tue 24 Nov in Auckland: the team's day counts.
    app.command(
        "/dealbot", "team create Kiwi <#C0KIWI|kiwi> tz:Pacific/Auckland", user=CONFIGURED_ADMIN
    )
    app.command("/dealbot", "team add Kiwi rep <@U0ANA|ana>", user=CONFIGURED_ADMIN)
    app.command("/deal", "new Initech 50k stage:negotiation close:2026-12-22")

    won = app.command("/deal", "won initech signed")

    assert won.is_private
    deal = app.deal_named("Initech")
    assert (deal.status, str(deal.close_date)) == ("won", "2026-11-24")
    assert ("close_date", "2026-12-22", "2026-11-24") in _closing_rows(app, deal.id)
    assert ("status", "open", "won") in _closing_rows(app, deal.id)
    shown = app.command("/deal", "show initech")
    assert "*WON* on Tue 24 Nov" in shown.all_text
    assert "closes" not in shown.all_text
    # Closing late is not a push by the rep: the card counts none.
    assert "pushed" not in shown.all_text


def test_a_lost_deal_off_any_team_closes_on_the_workspace_day(app: RunningApp) -> None:
    app.command("/deal", "new Hooli 20k close:2026-11-20")

    app.command("/deal", "lost hooli went with Globex")

    deal = app.deal_named("Hooli")
    assert (deal.status, str(deal.close_date)) == ("lost", "2026-11-23")
    rows = _closing_rows(app, deal.id)
    assert ("close_date", "2026-11-20", "2026-11-23") in rows
    shown = app.command("/deal", "show hooli")
    assert "*LOST* on Mon 23 Nov" in shown.all_text
    assert "pushed" not in shown.all_text
