"""A deal's life over real HTTP: create, update, next steps, pipeline, won, post-mortem."""

from __future__ import annotations

import json

from sqlalchemy import select

from storage.models import PostMortem
from tests.e2e.harness import RunningApp, block_actions, blocks_text, view_submission


def test_deal_round_trip_keeps_every_change_as_evidence(app: RunningApp) -> None:
    created = app.command("/deal", "new Initech 50k stage:discovery close:dec 15")
    assert created.status == 200 and created.is_private
    assert "Initech" in created.all_text and "$50,000" in created.all_text
    deal = app.deal_named("Initech")
    assert (deal.stage, deal.amount, str(deal.close_date)) == ("discovery", 50000, "2026-12-15")
    assert deal.owner_id == "U0ANA"

    updated = app.command(
        "/deal",
        "initech stage:demo amount:$60k close:2027-01-15 forecast:best case "
        'buyer:"Bill Lumbergh &lt;<mailto:bill@initech.com|bill@initech.com>&gt;" '
        'criteria:"SSO and audit log"',
    )
    assert updated.is_private, updated.text
    assert "stage discovery → demo" in updated.all_text
    deal = app.deal_named("Initech")
    assert (deal.stage, deal.amount, deal.forecast_category) == ("demo", 60000, "best_case")
    assert deal.buying_criteria == "SSO and audit log"

    step = app.command("/nextstep", "initech Demo to procurement due:fri owner:<@U0BEN|ben>")
    assert "Demo to procurement" in step.all_text and "Fri 27 Nov" in step.all_text

    pipeline = app.command("/pipeline")
    assert "1 open" in pipeline.all_text
    assert "total $60,000" in pipeline.all_text
    assert "weighted $24,000" in pipeline.all_text  # demo stage weighs 40%
    assert "Demo to procurement" in pipeline.all_text

    done = app.command("/nextstep", "done initech")
    assert "Done" in done.all_text

    won = app.command("/deal", "won initech signed a 3-year deal")
    assert "closed *won*" in won.all_text
    opened = app.slack.calls_to("views.open")
    assert opened and opened[-1].args["view"]["callback_id"] == "post_mortem"

    view = opened[-1].args["view"]
    status, body = app.interact(
        view_submission(
            view,
            {
                "reason": {"value": {"type": "plain_text_input", "value": "ROI case"}},
                "competitor": {"value": {"type": "plain_text_input", "value": "Globex"}},
                "lessons": {"value": {"type": "plain_text_input", "value": None}},
            },
        )
    )
    assert status == 200 and not body
    with app.database.session() as session:
        post_mortem = session.scalars(select(PostMortem)).one()
        assert (post_mortem.outcome, post_mortem.primary_reason, post_mortem.competitor) == (
            "won",
            "ROI case",
            "Globex",
        )

    history = app.changes_of(deal.id)
    assert ("stage", "discovery", "demo", "U0ANA") in history
    assert ("amount", "50000.00 USD", "60000.00 USD", "U0ANA") in history
    assert ("close_date", "2026-12-15", "2027-01-15", "U0ANA") in history
    assert ("forecast_category", "pipeline", "best_case", "U0ANA") in history
    assert ("status", "open", "won", "U0ANA") in history

    shown = app.command("/deal", "show initech")
    assert "ROI case" in shown.all_text and "WON" in shown.all_text


def test_close_date_pushes_show_on_the_deal(app: RunningApp) -> None:
    app.command("/deal", "new Hooli 250k stage:negotiation close:dec 1")
    app.command("/deal", "hooli close:dec 15")
    app.command("/deal", "hooli close:jan 10")
    shown = app.command("/deal", "show hooli")
    assert "Close date pushed 2×" in shown.all_text


def test_unchanged_values_record_no_history(app: RunningApp) -> None:
    app.command("/deal", "new Hooli 250k stage:negotiation")
    deal = app.deal_named("Hooli")
    before = app.changes_of(deal.id)
    app.command("/deal", "hooli stage:negotiation amount:250k")
    assert app.changes_of(deal.id) == before


def test_deal_without_text_opens_the_modal_and_its_submission_creates_the_deal(
    app: RunningApp,
) -> None:
    reply = app.command("/deal")
    assert reply.status == 200 and reply.body is None
    view = app.slack.calls_to("views.open")[-1].args["view"]
    assert view["callback_id"] == "new_deal"

    status, body = app.interact(_new_deal_submission(view, account="Umbrella", amount="€40,000"))
    assert status == 200 and not body
    deal = app.deal_named("Umbrella")
    assert (deal.amount, deal.currency, deal.stage) == (40000, "EUR", "prospecting")
    confirmation = app.slack.calls_to("chat.postEphemeral")[-1]
    assert "Umbrella" in blocks_text(confirmation.args["blocks"])


def test_modal_with_a_bad_amount_is_sent_back_with_the_field_named(app: RunningApp) -> None:
    app.command("/deal")
    view = app.slack.calls_to("views.open")[-1].args["view"]
    status, body = app.interact(_new_deal_submission(view, account="Umbrella", amount="lots"))
    assert status == 200
    assert body is not None and body["response_action"] == "errors"
    assert "amount" in body["errors"]
    assert app.row_counts()["deals"] == 0


def test_app_home_shows_open_deals_and_overdue_steps(app: RunningApp) -> None:
    app.command("/deal", "new Initech 50k stage:demo close:dec 15")
    app.command("/nextstep", "initech Send pricing due:tomorrow")
    app.clock.at = app.clock.at.replace(day=27)
    assert app.event({"type": "app_home_opened", "user": "U0ANA", "tab": "home"}) == 200
    published = app.slack.calls_to("views.publish")[-1]
    assert published.args["user_id"] == "U0ANA"
    text = blocks_text(published.args["view"]["blocks"])
    assert "Initech" in text and "Overdue next steps" in text and "Send pricing" in text
    assert "Accuracy score" in text


def test_ambiguous_reference_offers_a_choice_and_the_click_runs_the_command(
    app: RunningApp,
) -> None:
    app.command("/deal", "new Initech East 10k")
    app.command("/deal", "new Initech West 20k")
    reply = app.command("/deal", "initech stage:demo")
    assert "More than one deal matches" in reply.all_text
    buttons = [
        element
        for block in reply.blocks
        if block["type"] == "actions"
        for element in block["elements"]
    ]
    assert len(buttons) == 2
    assert app.deal_named("Initech East").stage == "prospecting"
    assert app.deal_named("Initech West").stage == "prospecting"

    west = next(b for b in buttons if "West" in b["text"]["text"])
    status, _ = app.interact(
        block_actions(
            west["action_id"],
            west["value"],
            block_id="pick_deal",
            response_url=app.slack.response_url_for("pick"),
        )
    )
    assert status == 200
    assert app.deal_named("Initech West").stage == "demo"
    assert app.deal_named("Initech East").stage == "prospecting"
    response = app.slack.responses[-1]
    assert response.body["replace_original"] is True
    assert "stage prospecting → demo" in blocks_text(response.body["blocks"])


def test_deal_ids_resolve_directly(app: RunningApp) -> None:
    app.command("/deal", "new Initech East 10k")
    app.command("/deal", "new Initech West 20k")
    west = app.deal_named("Initech West")
    reply = app.command("/deal", f"#{west.id} amount:25k")
    assert "amount" in reply.all_text
    assert app.deal_named("Initech West").amount == 25000


def _new_deal_submission(view: dict, *, account: str, amount: str) -> dict:
    return view_submission(
        view,
        {
            "account": {"value": {"type": "plain_text_input", "value": account}},
            "amount": {"value": {"type": "plain_text_input", "value": amount}},
            "stage": {"value": {"type": "static_select", "selected_option": None}},
            "close_date": {"value": {"type": "datepicker", "selected_date": None}},
            "forecast": {"value": {"type": "static_select", "selected_option": None}},
        },
    )


def test_view_private_metadata_round_trips_channel(app: RunningApp) -> None:
    app.command("/deal")
    view = app.slack.calls_to("views.open")[-1].args["view"]
    assert json.loads(view["private_metadata"])["channel_id"] == "C0TEAM"


def test_an_expired_trigger_on_the_post_mortem_button_is_said_privately(app: RunningApp) -> None:
    app.command("/deal", "new Initech 50k stage:demo")
    app.slack.set_response("views.open", {"ok": False, "error": "expired_trigger_id"})
    won = app.command("/deal", "won initech signed")
    assert "closed *won*" in won.all_text  # the deal closed although the form could not open
    assert app.deal_named("Initech").status == "won"
    button = next(
        element
        for block in won.blocks
        if block["type"] == "actions"
        for element in block["elements"]
    )
    status, _ = app.interact(
        block_actions(
            button["action_id"],
            button["value"],
            block_id="post_mortem",
            response_url=app.slack.response_url_for("pm"),
        )
    )
    assert status == 200
    said = blocks_text(app.slack.responses[-1].body["blocks"])
    assert "expired" in said
