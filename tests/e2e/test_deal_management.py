"""Correcting mistakes in deals over signed requests: rename, reassign, delete (asked first),
restore, merge, and no silent duplicates. Each refusal writes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient
from sqlalchemy import select

from bot.fake_slack import FakeSlackWebAPI
from bot.jobs_cli import context_factory
from bot.settings import load_settings
from handlers import blocks, messages
from reminders.accuracy import plan_accuracy
from reminders.chase import plan_chase
from reminders.digest import plan_digest
from storage.models import Contact, Deal, DealChange, NextStep
from tests.databases import BACKENDS, database_url_for
from tests.e2e.harness import RunningApp, block_actions, blocks_text, running_app

ADMIN = "U0ADMIN"  # a workspace admin according to users.info


@pytest.fixture(params=BACKENDS)
def stored(
    request: pytest.FixtureRequest, slack_api: FakeSlackWebAPI, tmp_path: Path
) -> Iterator[tuple[RunningApp, str]]:
    """Yield the app on SQLite and on PostgreSQL, with its database URL (for the jobs)."""
    slack_api.set_user(ADMIN, name="alice", is_admin=True)
    for user_id, name in (("U0ANA", "ana"), ("U0BEN", "ben"), ("U0MARIA", "maria")):
        slack_api.set_user(user_id, name=name)
    with database_url_for(request.param, tmp_path) as url, running_app(slack_api, url) as app:
        yield app, url


def _answer(app: RunningApp, button: dict[str, Any], *, user: str = "U0ANA") -> str:
    """Return the text that replaced the question once `user` clicked `button`."""
    name = f"answer{len(app.slack.responses)}"
    payload = block_actions(
        button["action_id"],
        button["value"],
        block_id="confirm",
        response_url=app.slack.response_url_for(name),
        user=user,
    )
    status, _ = app.interact(payload)
    assert status == 200
    [response] = [r for r in app.slack.responses if r.name == name]
    assert response.body["replace_original"] is True
    return blocks_text(response.body["blocks"])


def _deal(app: RunningApp, deal_id: int) -> Deal:
    with app.database.session() as session:
        deal = session.get(Deal, deal_id)
        assert deal is not None
        session.expunge(deal)
        return deal


def _team(app: RunningApp) -> None:
    app.command("/dealbot", "team create East <#C0SALES|sales>", user=ADMIN)
    app.command("/dealbot", "team add East rep <@U0ANA|ana> <@U0BEN|ben>", user=ADMIN)
    app.command("/dealbot", "team add East manager <@U0MARIA|maria>", user=ADMIN)


def _plans(app: RunningApp, url: str, slack: FakeSlackWebAPI) -> str:
    """Return every text the chase, the digest and the accuracy post would send now."""
    settings = load_settings(
        _env_file=None,
        slack_bot_token="xoxb-e2e-token",
        slack_api_url=slack.base_url,
        database_url=url,
        dealbot_timezone="America/New_York",
    )
    client = WebClient(token="xoxb-e2e-token", base_url=slack.base_url)
    context = context_factory(settings, database=app.database, client=client)(app.clock.now(), None)
    planned = [*plan_chase(context), *plan_digest(context), *plan_accuracy(context)]
    return "\n".join(m.text + blocks_text(list(m.blocks)) for m in planned)


# --- rename and reassign ------------------------------------------------------------------


def test_a_rep_renames_the_account_and_the_deal_and_history_keeps_both(app: RunningApp) -> None:
    app.command("/deal", "new Intech 50k")

    reply = app.command("/deal", 'intech account:"Initech" name:"Initech renewal"')

    assert "account “Intech” → “Initech”" in reply.all_text
    assert "deal name — → “Initech renewal”" in reply.all_text
    deal = app.deal_named("Initech")
    assert (deal.account_key, deal.title) == ("initech", "Initech renewal")
    changes = app.changes_of(deal.id)
    assert ("account", "Intech", "Initech", "U0ANA") in changes
    assert ("title", None, "Initech renewal", "U0ANA") in changes
    assert "Initech" in app.command("/deal", "show initech renewal").all_text


def test_a_reassigned_deal_takes_its_owners_open_next_steps_along(app: RunningApp) -> None:
    app.command("/deal", "new Initech 50k")
    app.command("/nextstep", "initech Send the proposal due:fri")
    app.command("/nextstep", "initech Run the demo due:fri owner:<@U0MARIA|maria>")

    reply = app.command("/deal", "initech owner:<@U0BEN|ben>")

    assert "owner <@U0ANA> → <@U0BEN>" in reply.all_text
    deal = app.deal_named("Initech")
    assert deal.owner_id == "U0BEN"
    assert ("owner", "U0ANA", "U0BEN", "U0ANA") in app.changes_of(deal.id)
    with app.database.session() as session:
        owners = dict(session.execute(select(NextStep.what, NextStep.owner_id)).all())
    # Ana's step is Ben's to do now; Maria's stays hers.
    assert owners == {"Send the proposal": "U0BEN", "Run the demo": "U0MARIA"}
    # Ben changes it now; Ana no longer can.
    assert "belongs to <@U0BEN>" in app.command("/deal", "initech stage:demo").all_text


def test_a_rep_cannot_reassign_or_rename_another_reps_deal(app: RunningApp) -> None:
    app.command("/deal", "new Initech 50k", user="U0ANA")
    before = app.row_counts()

    for text in ("initech owner:<@U0BEN|ben>", 'initech account:"Globex"'):
        reply = app.command("/deal", text, user="U0BEN")
        assert "belongs to <@U0ANA>" in reply.all_text

    assert app.row_counts() == before
    deal = app.deal_named("Initech")
    assert (deal.owner_id, deal.account) == ("U0ANA", "Initech")


def test_a_manager_and_an_admin_reassign_deals(app: RunningApp) -> None:
    _team(app)
    app.command("/deal", "new Initech 50k", user="U0ANA")
    app.command("/deal", "initech owner:<@U0BEN|ben>", user="U0MARIA")
    assert app.deal_named("Initech").owner_id == "U0BEN"
    app.command("/deal", "initech owner:<@U0MARIA|maria>", user=ADMIN)
    deal = app.deal_named("Initech")
    assert deal.owner_id == "U0MARIA"
    assert ("owner", "U0BEN", "U0MARIA", ADMIN) in app.changes_of(deal.id)


def test_a_won_deals_account_can_still_be_corrected(app: RunningApp) -> None:
    app.command("/deal", "new Intech 50k")
    app.command("/deal", "won intech")

    app.command("/deal", 'intech account:"Initech"')

    assert app.deal_named("Initech").status == "won"
    # Anything else on a closed deal is still refused.
    assert "already won" in app.command("/deal", "initech amount:60k").all_text


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("initech owner:ben", "is not a Slack user"),
        ("initech owner:", "`owner:` needs a value"),
        ('initech account:"<@U0BEN|ben>"', "is a person"),
        ('initech account:"Init\u200bech"', "invisible character"),
        ('initech name:"Renewal" title:"Other"', "both name the deal"),
        ("new Globex 5k owner:<@U0BEN|ben>", "`owner:` changes an existing deal"),
        ('new Globex 5k account:"Acme"', "`account:` changes an existing deal"),
    ],
)
def test_bad_renames_and_reassignments_get_the_right_form(
    app: RunningApp, text: str, problem: str
) -> None:
    app.command("/deal", "new Initech 50k")
    before = app.row_counts()

    reply = app.command("/deal", text)

    assert reply.is_private
    assert problem in reply.all_text
    assert "Try:" in reply.all_text
    assert app.row_counts() == before


# --- delete and restore ---------------------------------------------------------------------


def test_delete_asks_first_and_cancel_changes_nothing(app: RunningApp) -> None:
    app.command("/deal", "new Initech 50k")
    before = app.row_counts()

    question = app.command("/deal", "delete initech")

    assert question.is_private
    assert "Delete Initech (#1, $50,000)?" in question.all_text
    assert app.row_counts() == before
    assert app.deal_named("Initech").deleted_at is None
    assert messages.CANCELLED in _answer(app, question.button(blocks.CANCEL_ACTION))
    assert app.row_counts() == before
    assert app.deal_named("Initech").deleted_at is None


def test_a_deleted_deal_is_kept_but_found_nowhere(app: RunningApp) -> None:
    app.command("/deal", "new Initech 50k")
    app.command("/deal", "new Globex 20k")
    question = app.command("/deal", "delete initech")

    answer = _answer(app, question.button(blocks.CONFIRM_ACTION))

    assert "Deleted Initech (#1, $50,000)" in answer
    deal = app.deal_named("Initech")
    assert deal.deleted_at is not None and deal.deleted_by == "U0ANA"
    assert ("deleted", None, "deleted", "U0ANA") in app.changes_of(deal.id)
    pipeline = app.command("/pipeline").all_text
    assert "Globex" in pipeline and "Initech" not in pipeline
    assert "No deal matches" in app.command("/deal", "show initech").all_text
    assert "#1 was deleted" in app.command("/deal", "show #1").all_text
    assert "#1 was deleted" in app.command("/nextstep", "#1 Call Bill").all_text
    # The name is free again: a new Initech is not asked about.
    assert "New deal: Initech" in app.command("/deal", "new Initech 10k").all_text


def test_only_the_owner_their_manager_or_an_admin_deletes(app: RunningApp) -> None:
    _team(app)
    app.command("/deal", "new Initech 50k", user="U0ANA")
    app.command("/deal", "new Globex 20k", user="U0ANA")
    before = app.row_counts()

    refused = app.command("/deal", "delete initech", user="U0BEN")
    assert "belongs to <@U0ANA>" in refused.all_text
    assert "only they, their manager or an admin can delete it" in refused.all_text
    # A Delete button handed to someone else is checked again on the click.
    question = app.command("/deal", "delete initech", user="U0ANA")
    assert "belongs to" in _answer(app, question.button(blocks.CONFIRM_ACTION), user="U0BEN")
    assert app.row_counts() == before
    assert app.deal_named("Initech").deleted_at is None

    by_manager = app.command("/deal", "delete initech", user="U0MARIA")
    _answer(app, by_manager.button(blocks.CONFIRM_ACTION), user="U0MARIA")
    by_admin = app.command("/deal", "delete globex", user=ADMIN)
    _answer(app, by_admin.button(blocks.CONFIRM_ACTION), user=ADMIN)
    assert app.deal_named("Initech").deleted_by == "U0MARIA"
    assert app.deal_named("Globex").deleted_by == ADMIN


def test_an_admin_restores_a_deleted_deal(app: RunningApp) -> None:
    app.command("/deal", "new Initech 50k")
    _answer(app, app.command("/deal", "delete initech").button(blocks.CONFIRM_ACTION))
    before = app.row_counts()

    refused = app.command("/deal", "restore #1")
    assert "Only an admin can restore" in refused.all_text
    assert app.row_counts() == before

    restored = app.command("/deal", "restore #1", user=ADMIN)

    assert "Restored Initech (#1)" in restored.all_text
    assert app.deal_named("Initech").deleted_at is None
    assert "Initech" in app.command("/pipeline").all_text
    assert ("deleted", "deleted", "restored", ADMIN) in app.changes_of(1)
    assert "is not deleted" in app.command("/deal", "restore #1", user=ADMIN).all_text


def test_an_ambiguous_delete_asks_which_deal_then_whether(app: RunningApp) -> None:
    app.command("/deal", "new Initech East 10k")
    app.command("/deal", "new Initech West 20k")

    reply = app.command("/deal", "delete initech")

    assert "More than one deal matches" in reply.all_text
    [west] = [
        element
        for block in reply.blocks
        if block["type"] == "actions"
        for element in block["elements"]
        if "West" in element["text"]["text"]
    ]
    payload = block_actions(
        west["action_id"],
        west["value"],
        block_id="pick_deal",
        response_url=app.slack.response_url_for("pick"),
    )
    app.interact(payload)
    [picked] = [r for r in app.slack.responses if r.name == "pick"]
    assert "Delete Initech West (#2, $20,000)?" in blocks_text(picked.body["blocks"])
    assert app.deal_named("Initech West").deleted_at is None
    [confirm] = [
        element
        for block in picked.body["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
        if element["action_id"] == blocks.CONFIRM_ACTION
    ]
    _answer(app, confirm)
    assert app.deal_named("Initech West").deleted_at is not None
    assert app.deal_named("Initech East").deleted_at is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("delete", "Say which deal to delete."),
        ("restore initech", "is not a deal id"),
        ("restore", "Give the id of the deleted deal"),
        ("restore #1 #2", "Give the id of the deleted deal"),
        ("restore #99", "There is no deal #99"),
        ("delete #99", "There is no deal #99"),
    ],
)
def test_bad_deletes_and_restores_get_the_right_form(
    app: RunningApp, text: str, problem: str
) -> None:
    app.command("/deal", "new Initech 50k")
    before = app.row_counts()

    reply = app.command("/deal", text, user=ADMIN)

    assert reply.is_private and problem in reply.all_text
    assert app.row_counts() == before


def test_a_forged_confirm_button_is_refused_as_expired(app: RunningApp) -> None:
    app.command("/deal", "new Initech 50k")
    forged = {"action_id": blocks.CONFIRM_ACTION, "value": '{"command":"/deal","text":"x"}'}

    assert messages.CHOICE_EXPIRED in _answer(app, forged)

    assert app.deal_named("Initech").deleted_at is None


def test_deleted_deals_leave_the_pipeline_and_the_jobs_plans(
    stored: tuple[RunningApp, str], slack_api: FakeSlackWebAPI
) -> None:
    app, url = stored
    _team(app)
    # Neither has a next step, so the chase names both, and the digest lists them.
    app.command("/deal", "new Initech 50k stage:demo", user="U0ANA")
    app.command("/deal", "new Globex 20k stage:demo", user="U0ANA")
    assert "Initech" in _plans(app, url, slack_api)

    question = app.command("/deal", "delete initech", user="U0ANA")
    _answer(app, question.button(blocks.CONFIRM_ACTION))

    plans = _plans(app, url, slack_api)
    assert "Globex" in plans and "Initech" not in plans
    team = app.command("/pipeline", "team", user="U0MARIA").all_text
    assert "$20,000" in team and "Initech" not in team and "$70,000" not in team
    assert "Initech" not in app.command("/pipeline", user="U0ANA").all_text

    app.command("/deal", "restore #1", user=ADMIN)
    assert "Initech" in _plans(app, url, slack_api)


# --- merge ----------------------------------------------------------------------------------


def test_merge_moves_steps_contacts_history_and_empty_evidence(
    stored: tuple[RunningApp, str],
) -> None:
    app, _ = stored
    app.command("/deal", 'new Initech 50k criteria:"SSO"')
    app.command("/deal", 'new "Initech Corp" 40k pain:"audit" criteria:"ignored"')
    app.command("/deal", '"initech corp" contact:"Peter Gibbons <peter@initech.com>" close:dec 15')
    app.command("/nextstep", '"initech corp" Send the proposal due:fri')

    reply = app.command("/deal", 'merge "initech corp" into #1')

    assert "Merged Initech Corp (#2) into Initech (#1)" in reply.all_text
    assert "1 next step" in reply.all_text and "filled pain" in reply.all_text
    source, target = _deal(app, 2), _deal(app, 1)
    assert source.deleted_at is not None and target.deleted_at is None
    assert (target.buying_criteria, target.pain) == ("SSO", "audit")
    with app.database.session() as session:
        steps = session.execute(select(NextStep.deal_id, NextStep.what)).all()
        contacts = session.execute(select(Contact.deal_id, Contact.email)).all()
        merged = session.scalars(
            select(DealChange.new_value).where(
                DealChange.deal_id == 2, DealChange.field == "deleted"
            )
        ).all()
    assert [tuple(s) for s in steps] == [(1, "Send the proposal")]
    assert [tuple(c) for c in contacts] == [(1, "peter@initech.com")]
    assert merged == ["merged into #1"]
    assert ("close_date", None, "2026-12-15", "U0ANA") in app.changes_of(1)
    assert "Initech Corp" not in app.command("/pipeline").all_text


def test_merge_needs_the_right_to_change_both_deals(app: RunningApp) -> None:
    app.command("/deal", "new Initech 50k", user="U0ANA")
    app.command("/deal", "new Globex 20k", user="U0BEN")
    before = app.row_counts()

    for text in ("merge initech into globex", "merge globex into initech"):
        assert "belongs to" in app.command("/deal", text, user="U0ANA").all_text

    assert app.row_counts() == before
    assert app.deal_named("Initech").deleted_at is None
    assert app.deal_named("Globex").deleted_at is None


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("merge initech", "with `into` between them"),
        ("merge into initech", "Say which deal to merge."),
        ("merge initech into", "Say which deal to merge it into."),
        ("merge initech into initech", "cannot be merged into itself"),
        ("merge a into b into c", "`into` appears twice"),
        ("merge initech into #99", "There is no deal #99"),
    ],
)
def test_bad_merges_get_the_right_form(app: RunningApp, text: str, problem: str) -> None:
    app.command("/deal", "new Initech 50k")
    before = app.row_counts()

    reply = app.command("/deal", text)

    assert reply.is_private and problem in reply.all_text
    assert app.row_counts() == before


def test_an_ambiguous_deal_to_merge_into_offers_a_choice_of_that_deal(app: RunningApp) -> None:
    app.command("/deal", "new Globex 5k")
    app.command("/deal", "new Initech East 10k")
    app.command("/deal", "new Initech West 20k")

    reply = app.command("/deal", "merge globex into initech")

    assert "More than one deal matches" in reply.all_text
    [west] = [
        element
        for block in reply.blocks
        if block["type"] == "actions"
        for element in block["elements"]
        if "West" in element["text"]["text"]
    ]
    payload = block_actions(
        west["action_id"],
        west["value"],
        block_id="pick_deal",
        response_url=app.slack.response_url_for("pick"),
    )
    app.interact(payload)
    assert app.deal_named("Globex").deleted_at is not None
    assert ("merged", None, "#1 Globex", "U0ANA") in app.changes_of(
        app.deal_named("Initech West").id
    )


# --- no silent duplicates -------------------------------------------------------------------


def test_a_second_open_deal_for_an_account_is_asked_about(app: RunningApp) -> None:
    app.command("/deal", "new Initech 50k stage:proposal")
    before = app.row_counts()

    question = app.command("/deal", "new initech 30k close:dec 15")

    assert (
        "Initech already has an open deal (#1, $50,000, Proposal): create another?"
        in question.all_text
    )
    assert app.row_counts() == before
    assert messages.CANCELLED in _answer(app, question.button(blocks.CANCEL_ACTION))
    assert app.row_counts() == before

    created = _answer(app, question.button(blocks.CONFIRM_ACTION))

    assert "New deal: initech" in created
    with app.database.session() as session:
        second = session.get(Deal, 2)
        assert second is not None
        # The deal the rep typed, parsed when typed: amount and close date included.
        assert (second.amount, str(second.close_date)) == (30000, "2026-12-15")


def test_a_title_that_tells_the_deals_apart_needs_no_question(app: RunningApp) -> None:
    app.command("/deal", "new Initech 50k")
    reply = app.command("/deal", 'new Initech 30k title:"Europe"')
    assert "New deal" in reply.all_text
    # A closed deal of the account is no duplicate either.
    app.command("/deal", "new Globex 5k")
    app.command("/deal", "lost globex went elsewhere")
    assert "New deal" in app.command("/deal", "new Globex 8k").all_text


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("new Pied Piper fifty grand", "`fifty grand`"),
        ("new Pied Piper twenty thousand dollars", "`twenty thousand dollars`"),
        ("new Hooli stage demo", "`stage demo`"),
        ("new Hooli close=dec 15", "`close=dec 15`"),
        ("new Hooli close dec 15", "`close dec 15`"),
        ("new Acme amount 50k", "`amount 50k`"),
        ("new Hooli forecast commit 5k", "`forecast commit`"),
    ],
)
def test_words_after_the_account_that_look_like_an_amount_or_option_are_asked_about(
    app: RunningApp, text: str, named: str
) -> None:
    reply = app.command("/deal", text)

    assert reply.is_private
    assert named in reply.all_text and "quote the account name" in reply.all_text
    assert app.row_counts()["deals"] == 0


@pytest.mark.parametrize(
    ("text", "account"),
    [
        ("new Capital One 5k", "Capital One"),
        ("new Million Dollar Baby 5k", "Million Dollar Baby"),
        ('new "Pied Piper fifty grand" 5k', "Pied Piper fifty grand"),
        ("new Big Stage Productions 5k", "Big Stage Productions"),
    ],
)
def test_names_with_number_or_option_words_are_still_names(
    app: RunningApp, text: str, account: str
) -> None:
    assert "New deal" in app.command("/deal", text).all_text
    assert app.deal_named(account).amount == 5000


def test_help_lists_the_new_forms(app: RunningApp) -> None:
    shown = app.command("/dealbot", "help").all_text
    for line in ("/deal delete Initech", "/deal restore #42", "/deal merge #41 into #42"):
        assert line in shown
    assert "owner:@jane" in shown
