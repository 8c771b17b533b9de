"""The chase DM's buttons over real HTTP: log a next step, mark it done, snooze."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select

from handlers import reminder_blocks
from storage.models import DealSnooze, NextStep
from tests.e2e.harness import RunningApp, block_actions, blocks_text, view_submission


def click(app: RunningApp, action_id: str, value: str, *, user: str = "U0ANA") -> int:
    status, _ = app.interact(
        block_actions(
            action_id,
            value,
            block_id="chase_1",
            response_url=app.slack.response_url_for(action_id),
            user=user,
            channel=f"D{user}",
            ephemeral=False,
        )
    )
    return status


def last_response(app: RunningApp) -> str:
    body: dict[str, Any] = app.slack.responses[-1].body
    return blocks_text(body.get("blocks") or []) + body.get("text", "")


def steps_of(app: RunningApp, deal_id: int) -> list[tuple[str, bool, dt.date | None]]:
    with app.database.session() as session:
        rows = session.scalars(select(NextStep).where(NextStep.deal_id == deal_id))
        return [(s.what, s.done, s.due_date) for s in rows]


def test_mark_done_closes_the_deals_next_step(app: RunningApp) -> None:
    app.command("/deal", "new Initech 50k stage:demo close:dec 15")
    app.command("/nextstep", "initech Send pricing due:tomorrow")
    deal = app.deal_named("Initech")
    assert click(app, reminder_blocks.MARK_DONE_ACTION, str(deal.id)) == 200
    assert steps_of(app, deal.id) == [("Send pricing", True, dt.date(2026, 11, 24))]
    assert "Send pricing" in last_response(app)


def test_log_next_step_opens_a_modal_and_saves_the_step(app: RunningApp) -> None:
    app.command("/deal", "new Initech 50k stage:demo close:dec 15")
    deal = app.deal_named("Initech")
    assert click(app, reminder_blocks.LOG_STEP_ACTION, str(deal.id)) == 200
    view = app.slack.calls_to("views.open")[-1].args["view"]
    assert view["callback_id"] == reminder_blocks.LOG_STEP_VIEW
    status, body = app.interact(
        view_submission(
            view,
            {
                "what": {"value": {"type": "plain_text_input", "value": "Demo to CFO"}},
                "due": {"value": {"type": "datepicker", "selected_date": "2026-11-27"}},
            },
        )
    )
    assert status == 200 and not body
    assert steps_of(app, deal.id) == [("Demo to CFO", False, dt.date(2026, 11, 27))]
    confirmation = app.slack.calls_to("chat.postMessage")[-1]
    assert confirmation.args["channel"] == "U0ANA"
    assert "Demo to CFO" in blocks_text(confirmation.args["blocks"])


def test_an_empty_next_step_is_sent_back_naming_the_field(app: RunningApp) -> None:
    app.command("/deal", "new Initech 50k")
    deal = app.deal_named("Initech")
    view = {
        "callback_id": reminder_blocks.LOG_STEP_VIEW,
        "private_metadata": f'{{"deal_id": {deal.id}}}',
    }
    status, body = app.interact(
        view_submission(view, {"what": {"value": {"type": "plain_text_input"}}})
    )
    assert status == 200 and body is not None and "what" in body["errors"]
    assert steps_of(app, deal.id) == []


def test_snooze_a_week_holds_the_deal_back_until_then(app: RunningApp) -> None:
    app.command("/deal", "new Initech 50k")
    deal = app.deal_named("Initech")
    assert click(app, f"{reminder_blocks.SNOOZE_ACTION}_7", f"{deal.id}:7") == 200
    with app.database.session() as session:
        snooze = session.scalars(select(DealSnooze)).one()
        assert (snooze.deal_id, snooze.until) == (deal.id, dt.date(2026, 11, 30))
    assert "Snoozed *Initech*" in last_response(app)


def test_only_the_owner_or_their_manager_can_snooze(app: RunningApp) -> None:
    app.command("/deal", "new Initech 50k")
    deal = app.deal_named("Initech")
    assert click(app, f"{reminder_blocks.SNOOZE_ACTION}_1", f"{deal.id}:1", user="U0BEN") == 200
    assert "Initech belongs to <@U0ANA>; only they can snooze it." in last_response(app)
    with app.database.session() as session:
        assert session.scalars(select(DealSnooze)).all() == []
