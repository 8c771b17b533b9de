"""Reps change their own deals, managers their team's, admins all; teams and quotas."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.fake_slack import FakeSlackWebAPI
from storage.models import FollowUpTrigger, NextStep, Quota, TeamMember
from tests.e2e.harness import RunningApp, block_actions, blocks_text, running_app


def _team_with_ana_and_ben(app: RunningApp) -> None:
    admin = "U0ADMIN"  # a workspace admin according to users.info
    assert (
        "created"
        in app.command(
            "/dealbot", "team create Enterprise <#C0SALES|sales> tz:Europe/Paris", user=admin
        ).all_text
    )
    app.command("/dealbot", "team add Enterprise rep <@U0ANA|ana> <@U0BEN|ben>", user=admin)
    app.command("/dealbot", "team add Enterprise manager <@U0MARIA|maria>", user=admin)


def test_a_rep_cannot_change_another_reps_deal(app: RunningApp) -> None:
    app.command("/deal", "new Initech 50k stage:demo", user="U0ANA")
    before = app.row_counts()
    reply = app.command("/deal", "initech stage:proposal", user="U0BEN")
    assert "belongs to <@U0ANA>" in reply.all_text
    assert app.deal_named("Initech").stage == "demo"
    assert app.row_counts() == before
    reply = app.command("/nextstep", "initech Call Bill due:fri", user="U0BEN")
    assert "belongs to" in reply.all_text
    reply = app.command("/deal", "won initech", user="U0BEN")
    assert "belongs to" in reply.all_text
    assert app.deal_named("Initech").status == "open"


def test_anyone_can_read_a_deal(app: RunningApp) -> None:
    app.command("/deal", "new Initech 50k stage:demo", user="U0ANA")
    assert "Initech" in app.command("/deal", "show initech", user="U0BEN").all_text


def test_a_manager_changes_their_teams_deals(app: RunningApp) -> None:
    _team_with_ana_and_ben(app)
    app.command("/deal", "new Initech 50k stage:demo", user="U0ANA")
    # Commit needs its evidence cited first (tests/e2e/test_evidence.py).
    for kind in ("eb", "process", "paper"):
        app.command("/deal", f"initech evidence {kind}: 18c2f9a0b1d2e3f4", user="U0ANA")
    reply = app.command("/deal", "initech forecast:commit", user="U0MARIA")
    assert "forecast pipeline → commit" in reply.all_text
    deal = app.deal_named("Initech")
    assert deal.forecast_category == "commit"
    assert ("forecast_category", "pipeline", "commit", "U0MARIA") in app.changes_of(deal.id)


def test_a_workspace_admin_changes_any_deal(app: RunningApp) -> None:
    app.command("/deal", "new Initech 50k stage:demo", user="U0ANA")
    reply = app.command("/deal", "initech amount:75k", user="U0ADMIN")
    assert "amount" in reply.all_text
    assert app.deal_named("Initech").amount == 75000
    assert app.slack.calls_to("users.info")[-1].args["user"] == "U0ADMIN"


def test_configured_admins_need_no_slack_lookup(app: RunningApp) -> None:
    app.command("/deal", "new Initech 50k stage:demo", user="U0ANA")
    app.command("/deal", "initech amount:80k", user="U0ROOT")
    assert app.deal_named("Initech").amount == 80000
    assert not [c for c in app.slack.calls_to("users.info") if c.args["user"] == "U0ROOT"]


def test_owners_never_wait_on_slack_for_permission(app: RunningApp) -> None:
    app.command("/deal", "new Initech 50k stage:demo", user="U0ANA")
    app.command("/deal", "initech amount:60k", user="U0ANA")
    assert app.slack.calls_to("users.info") == []


def test_only_admins_create_teams(app: RunningApp) -> None:
    reply = app.command("/dealbot", "team create Enterprise <#C0SALES|sales>", user="U0ANA")
    assert "admin" in reply.all_text
    assert app.row_counts()["teams"] == 0


def test_team_setup_members_quota_and_team_pipeline(app: RunningApp) -> None:
    _team_with_ana_and_ben(app)
    reply = app.command("/dealbot", "team quota Enterprise <@U0ANA|ana> 300k", user="U0MARIA")
    assert "2026-Q4" in reply.all_text
    app.command("/dealbot", "team quota Enterprise <@U0ANA|ana> 350k", user="U0MARIA")
    with app.database.session() as session:
        quotas = session.scalars(select(Quota)).all()
        assert [(q.user_id, q.period, q.amount) for q in quotas] == [("U0ANA", "2026-Q4", 350000)]
        roles = sorted((m.user_id, m.role) for m in session.scalars(select(TeamMember)))
    assert roles == [("U0ANA", "rep"), ("U0BEN", "rep"), ("U0MARIA", "manager")]

    again = app.command("/dealbot", "team add Enterprise rep <@U0ANA|ana>", user="U0MARIA")
    assert "already" in again.all_text

    refused = app.command("/dealbot", "team quota Enterprise <@U0BEN|ben> 1M", user="U0ANA")
    assert "managers" in refused.all_text

    shown = app.command("/dealbot", "team show Enterprise", user="U0ANA")
    assert "Europe/Paris" in shown.all_text and "<@U0MARIA>" in shown.all_text

    app.command("/deal", "new Initech 50k stage:demo", user="U0ANA")
    app.command("/deal", "new Hooli 100k stage:proposal", user="U0BEN")
    team = app.command("/pipeline", "team", user="U0MARIA")
    assert "2 open" in team.all_text and "total $150,000" in team.all_text
    mine = app.command("/pipeline", "", user="U0ANA")
    assert "Hooli" not in mine.all_text and "Initech" in mine.all_text
    bens = app.command("/pipeline", "<@U0BEN|ben>", user="U0ANA")
    assert "Hooli" in bens.all_text and "Initech" not in bens.all_text


def test_help_lists_every_command(app: RunningApp) -> None:
    text = app.command("/dealbot", "help").all_text
    for command in ("/deal", "/nextstep", "/pipeline", "/dealbot team create"):
        assert command in text


def test_joining_a_team_moves_the_reps_today_at_once_not_after_the_zone_cache_expires(
    app: RunningApp,
) -> None:
    # Bug: DealService kept its own zone cache, not the one TeamService clears, so for a
    # minute after joining a team a rep's "today" stayed in the workspace timezone.
    app.command("/deal", "new Initech 50k", user="U0ANA")  # ana's zone (New York) is cached
    admin = "U0ADMIN"
    app.command("/dealbot", "team create Apac <#C0APAC|apac> tz:Pacific/Kiritimati", user=admin)
    app.command("/dealbot", "team add Apac rep <@U0ANA|ana>", user=admin)
    # 15:00 UTC on Mon 23 Nov is already 05:00 on Tue 24 Nov in Kiritimati (UTC+14).
    app.command("/nextstep", "initech Call Bill due:tomorrow", user="U0ANA")
    with app.database.session() as session:
        step = session.scalars(select(NextStep)).one()
        assert step.due_date == dt.date(2026, 11, 25)


# --- Who may add, move and remove people (privilege escalation regressions) -----------------


def _two_teams(app: RunningApp) -> None:
    """Enterprise (maria manages ana and ben) and West (wes manages carol)."""
    _team_with_ana_and_ben(app)
    app.slack.set_user("U0WES", name="wes")
    app.slack.set_user("U0CAROL", name="carol")
    admin = "U0ADMIN"
    app.command("/dealbot", "team create West <#C0WEST|west>", user=admin)
    app.command("/dealbot", "team add West manager <@U0WES|wes>", user=admin)
    app.command("/dealbot", "team add West rep <@U0CAROL|carol>", user=admin)


def _memberships(app: RunningApp) -> list[tuple[str, str, str]]:
    with app.database.session() as session:
        rows = session.scalars(select(TeamMember)).all()
        return sorted((m.team.name, m.user_id, m.role) for m in rows)


def test_a_manager_cannot_take_another_teams_rep_and_then_close_her_deal(
    app: RunningApp,
) -> None:
    # Bug: West's manager added Enterprise's ana to West, then closed ana's deal.
    _two_teams(app)
    app.command("/deal", "new Initech 50k stage:demo", user="U0ANA")
    before = _memberships(app)

    reply = app.command("/dealbot", "team add West rep <@U0ANA|ana>", user="U0WES")

    assert reply.is_private and "already a rep in Enterprise" in reply.all_text
    assert "/dealbot team move <@U0ANA> West" in reply.all_text
    assert _memberships(app) == before
    closed = app.command("/deal", "won initech", user="U0WES")
    assert "belongs to <@U0ANA>" in closed.all_text
    assert app.deal_named("Initech").status == "open"


def test_a_manager_cannot_make_a_teamless_user_a_manager(app: RunningApp) -> None:
    # Bug: a manager named a teamless colleague manager, who could then change its deals.
    _two_teams(app)
    app.slack.set_user("U0EVE", name="eve")

    reply = app.command("/dealbot", "team add Enterprise manager <@U0EVE|eve>", user="U0MARIA")

    assert reply.is_private and "Only a workspace admin can name managers" in reply.all_text
    assert ("Enterprise", "U0EVE", "manager") not in _memberships(app)


def test_a_manager_adds_a_teamless_user_to_their_own_team_as_a_rep_only(
    app: RunningApp,
) -> None:
    _two_teams(app)
    app.slack.set_user("U0EVE", name="eve")

    elsewhere = app.command("/dealbot", "team add West rep <@U0EVE|eve>", user="U0MARIA")
    assert "Only West's managers or a workspace admin" in elsewhere.all_text

    added = app.command("/dealbot", "team add Enterprise rep <@U0EVE|eve>", user="U0MARIA")
    assert "Added 1 rep(s) to Enterprise" in added.all_text
    assert ("Enterprise", "U0EVE", "rep") in _memberships(app)


def test_adding_a_rep_of_another_team_points_even_an_admin_to_team_move(
    app: RunningApp,
) -> None:
    # Bug: a rep could be on two teams, counted in two pipelines and two accuracy posts.
    _two_teams(app)
    before = _memberships(app)

    reply = app.command("/dealbot", "team add West rep <@U0BEN|ben> <@U0ANA|ana>", user="U0ADMIN")

    assert reply.is_private and "already a rep in Enterprise" in reply.all_text
    assert "/dealbot team move <@U0BEN> West" in reply.all_text
    assert _memberships(app) == before  # nothing half-written


def test_only_an_admin_moves_and_removes_people(app: RunningApp) -> None:
    _two_teams(app)
    before = _memberships(app)

    moved = app.command("/dealbot", "team move <@U0ANA|ana> West", user="U0WES")
    removed = app.command("/dealbot", "team remove Enterprise <@U0BEN|ben>", user="U0MARIA")

    assert "Only a workspace admin can move" in moved.all_text
    assert "Only a workspace admin can remove" in removed.all_text
    assert _memberships(app) == before


def test_an_admin_moves_a_rep_to_another_team_and_removes_one(app: RunningApp) -> None:
    _two_teams(app)

    moved = app.command("/dealbot", "team move <@U0ANA|ana> West", user="U0ADMIN")
    assert "Moved <@U0ANA> to West" in moved.all_text
    removed = app.command("/dealbot", "team remove Enterprise <@U0BEN|ben>", user="U0ADMIN")
    assert "Removed <@U0BEN> from Enterprise" in removed.all_text

    assert _memberships(app) == [
        ("Enterprise", "U0MARIA", "manager"),
        ("West", "U0ANA", "rep"),
        ("West", "U0CAROL", "rep"),
        ("West", "U0WES", "manager"),
    ]
    # West's manager now changes ana's deals; Enterprise's no longer does.
    app.command("/deal", "new Initech 50k stage:demo", user="U0ANA")
    assert "belongs to" in app.command("/deal", "initech amount:1", user="U0MARIA").all_text
    assert "amount" in app.command("/deal", "initech amount:60k", user="U0WES").all_text
    missing = app.command("/dealbot", "team remove West <@U0BEN|ben>", user="U0ADMIN")
    assert "<@U0BEN> is not on West" in missing.all_text


def test_team_list_shows_every_team_and_help_lists_the_new_subcommands(
    app: RunningApp,
) -> None:
    _two_teams(app)

    listed = app.command("/dealbot", "team list", user="U0ANA").all_text
    assert "Enterprise" in listed and "West" in listed and "<@U0CAROL>" in listed

    text = app.command("/dealbot", "help").all_text
    for form in ("/dealbot team remove", "/dealbot team move", "/dealbot team list"):
        assert form in text


# --- Who may draft a deal's follow-up email -------------------------------------------------

BUYER = 'buyer:"Bill Lumbergh &lt;<mailto:bill@initech.com|bill@initech.com>&gt;"'


@pytest.fixture
def outbox_app(slack_api: FakeSlackWebAPI, tmp_path: Path) -> Iterator[tuple[RunningApp, Path]]:
    """Yield the app drafting into an outbox, with ana's Initech deal and its buyer."""
    slack_api.set_user("U0ANA", name="ana", real_name="Ana Ruiz", email="ana@sales.example")
    slack_api.set_user("U0BEN", name="ben", real_name="Ben Okafor", email="ben@sales.example")
    slack_api.set_user("U0ADMIN", name="alice", is_admin=True)
    outbox = tmp_path / "outbox"
    with running_app(
        slack_api, f"sqlite:///{tmp_path / 'e2e.db'}", dealbot_outbox_dir=str(outbox)
    ) as app:
        app.command("/deal", f"new Initech 50k stage:demo {BUYER}", user="U0ANA")
        yield app, outbox


def _follow_up_triggers(app: RunningApp) -> int:
    with app.database.session() as session:
        return session.scalar(select(func.count()).select_from(FollowUpTrigger)) or 0


def test_another_rep_cannot_draft_a_follow_up_to_the_owners_buyer(
    outbox_app: tuple[RunningApp, Path],
) -> None:
    # Bug: ben had dealbot draft, from his mailbox, to the buyer of ana's deal.
    app, outbox = outbox_app

    reply = app.command("/deal", "followup initech proposal_sent", user="U0BEN")

    assert reply.is_private
    assert "belongs to <@U0ANA>" in reply.all_text and "draft its follow-ups" in reply.all_text
    assert _follow_up_triggers(app) == 0
    assert not outbox.exists() or list(outbox.glob("*.eml")) == []


def test_another_rep_cannot_draft_a_follow_up_from_the_deal_cards_button(
    outbox_app: tuple[RunningApp, Path],
) -> None:
    app, outbox = outbox_app
    card = app.command("/deal", "show initech", user="U0BEN")  # anyone may read the deal
    button = card.button("draft_follow_up")

    status, _ = app.interact(
        block_actions(
            "draft_follow_up",
            button["value"],
            block_id="deal_actions",
            user="U0BEN",
            response_url=app.slack.response_url_for("draft"),
        )
    )

    assert status == 200
    [response] = [r for r in app.slack.responses if r.name == "draft"]
    assert "belongs to <@U0ANA>" in blocks_text(response.body["blocks"])
    assert _follow_up_triggers(app) == 0
    assert not outbox.exists() or list(outbox.glob("*.eml")) == []


def test_the_owners_manager_may_draft_a_follow_up(
    outbox_app: tuple[RunningApp, Path],
) -> None:
    app, outbox = outbox_app
    _team_with_ana_and_ben(app)
    app.slack.set_user("U0MARIA", name="maria", real_name="Maria Keller", email="m@sales.example")

    reply = app.command("/deal", "followup initech proposal_sent", user="U0MARIA")

    assert "draft for *Initech*" in reply.all_text
    [draft] = outbox.glob("*.eml")
    assert "From: Maria Keller <m@sales.example>" in draft.read_text()
