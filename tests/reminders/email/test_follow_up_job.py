"""The draft-follow-ups job: each trigger drafted once, each DM sent once, across reruns."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from bot.app import build_services
from bot.fake_slack import FakeSlackWebAPI
from bot.settings import load_settings
from bot.slack import build_web_client
from domain.changes import DealChanges, DealRef
from domain.deals import Actor
from handlers.job_messages import SlackJobMessages
from reminders.delivery import DeliverySummary
from reminders.email.drafts import FollowUps
from reminders.email.templates import DEFAULT_TEMPLATES_DIR, EmailTemplates
from reminders.jobs import JobContext, load_jobs, run_job
from tests.e2e.harness import blocks_text
from tests.fakes.gmail_api import FakeGmail
from tests.reminders.email.conftest import Drafting, on_both_backends

JOB = load_jobs()["draft-follow-ups"]


def _run(
    drafting: Drafting, slack: FakeSlackWebAPI, follow_ups: FollowUps, *, admins: str = ""
) -> DeliverySummary:
    settings = load_settings(
        _env_file=None,
        slack_bot_token="xoxb-test",
        slack_api_url=slack.base_url,
        dealbot_timezone="America/New_York",
        dealbot_admins=admins,
    )
    client = build_web_client(token="xoxb-test", base_url=slack.base_url)
    services = build_services(
        settings, client=client, database=drafting.database, clock=drafting.clock
    )
    context = JobContext(
        now=drafting.clock.now(),
        database=drafting.database,
        services=dataclasses.replace(services, follow_ups=follow_ups),
        client=client,
        settings=settings,
        render=SlackJobMessages(),
    )
    return run_job(JOB, context)


def _dms(slack: FakeSlackWebAPI, user_id: str) -> list[str]:
    return [
        blocks_text(call.args.get("blocks") or []) or call.args["text"]
        for call in slack.calls_to("chat.postMessage")
        if call.args["channel"] == user_id
    ]


@on_both_backends
def test_each_trigger_is_drafted_once_and_announced_once_across_reruns(
    drafting: Drafting, slack_api: FakeSlackWebAPI
) -> None:
    outbox = drafting.outbox()
    follow_ups = drafting.follow_ups(outbox)
    drafting.deals.update_deal(
        Actor("U0ANA"), DealRef("initech", None), DealChanges(stage="proposal")
    )

    first = _run(drafting, slack_api, follow_ups)
    files = sorted(outbox.directory.glob("*.eml"))
    calls = len(slack_api.calls_to("chat.postMessage"))
    second = _run(drafting, slack_api, follow_ups)

    assert first.complete and second.complete
    assert (first.sent, second.sent) == (calls, 0)
    assert sorted(outbox.directory.glob("*.eml")) == files
    assert len(slack_api.calls_to("chat.postMessage")) == calls
    ana = "\n".join(_dms(slack_api, "U0ANA"))
    # The stage change into proposal, and Globex gone quiet for 30 days (STALE).
    assert "*proposal sent* draft for *Initech*" in ana
    assert "*Subject:* Proposal for Initech" in ana
    assert "Please find attached our proposal for Initech ($48,000)." in ana
    assert "*re-engage* draft for *Globex*" in ana
    assert ana.count("Saved as") == 2 == len(files)
    # Umbrella is quiet too but has nobody to write to: said once, with the fix.
    assert "could not draft the *re-engage* email for *Umbrella*" in ana
    assert "contact:" in ana


@on_both_backends
def test_a_done_next_step_naming_a_demo_drafts_the_demo_follow_up(
    drafting: Drafting, slack_api: FakeSlackWebAPI
) -> None:
    outbox = drafting.outbox()
    follow_ups = drafting.follow_ups(outbox)
    ana = Actor("U0ANA")
    drafting.deals.complete_next_step(ana, DealRef("initech", None))  # "Demo for procurement"
    drafting.deals.add_next_step(
        ana, DealRef("initech", None), what="Send the order form", due=None, owner_id=None
    )
    drafting.deals.complete_next_step(ana, DealRef("initech", None))  # names no meeting

    _run(drafting, slack_api, follow_ups)

    subjects = [
        line.removeprefix("Subject: ")
        for path in outbox.directory.glob("*.eml")
        for line in path.read_text().splitlines()
        if line.startswith("Subject: ")
    ]
    assert subjects.count("Following up on the Initech demo") == 1
    assert not [s for s in subjects if "Initech" in s and "demo" not in s]


def test_a_rep_without_gmail_gets_one_connect_link_a_day_and_the_draft_once_connected(
    drafting: Drafting, slack_api: FakeSlackWebAPI, gmail: FakeGmail
) -> None:
    oauth = drafting.oauth(gmail)
    follow_ups = drafting.follow_ups(drafting.gmail_backend(gmail, oauth), connect=oauth)
    drafting.deals.update_deal(
        Actor("U0ANA"), DealRef("initech", None), DealChanges(stage="proposal")
    )

    _run(drafting, slack_api, follow_ups)
    _run(drafting, slack_api, follow_ups)

    connect = [dm for dm in _dms(slack_api, "U0ANA") if "Connect Gmail" in dm]
    assert len(connect) == 1
    assert "https://dealbot.example/oauth/google/start?state=" in connect[0]
    assert "Initech" in connect[0] and "Globex" in connect[0]  # the drafts that wait
    assert gmail.drafts == []

    drafting.connect_rep(gmail, "U0ANA")
    _run(drafting, slack_api, follow_ups)

    assert {d.header("Subject") for d in gmail.drafts} == {
        "Proposal for Initech",
        "Still a priority for Globex?",
    }
    links = [dm for dm in _dms(slack_api, "U0ANA") if "Open the draft in Gmail" in dm]
    assert len(links) == 2
    assert any(f"#drafts?compose={d.message_id}" in dm for dm in links for d in gmail.drafts)


def test_a_broken_template_tells_the_admin_and_waits_for_the_fix(
    drafting: Drafting, slack_api: FakeSlackWebAPI, tmp_path: Path
) -> None:
    directory = tmp_path / "email"
    shutil.copytree(DEFAULT_TEMPLATES_DIR, directory)
    template = directory / "proposal_sent.j2"
    good = template.read_text()
    template.write_text(good.replace("{{ deal.name }}", "{{ deal.nmae }}"))
    outbox = drafting.outbox()
    follow_ups = drafting.follow_ups(outbox, templates=EmailTemplates(directory=directory))
    drafting.deals.update_deal(
        Actor("U0ANA"), DealRef("initech", None), DealChanges(stage="proposal")
    )

    _run(drafting, slack_api, follow_ups, admins="U0MARIA")
    _run(drafting, slack_api, follow_ups, admins="U0MARIA")

    [admin_dm] = _dms(slack_api, "U0MARIA")
    assert "`proposal_sent` is broken" in admin_dm and "nmae" in admin_dm
    assert not [p for p in outbox.directory.glob("*.eml") if "Initech" in p.read_text()]

    template.write_text(good)
    _run(drafting, slack_api, follow_ups, admins="U0MARIA")

    assert [p for p in outbox.directory.glob("*.eml") if "Proposal for Initech" in p.read_text()]


def test_an_on_demand_draft_is_not_announced_again_by_the_job(
    drafting: Drafting, slack_api: FakeSlackWebAPI
) -> None:
    follow_ups = drafting.follow_ups(drafting.outbox())
    asked = follow_ups.request(Actor("U0BEN"), DealRef("hooli", None), "redlines_review")
    assert follow_ups.draft(asked).status == "drafted"  # the reply already showed it

    _run(drafting, slack_api, follow_ups)

    assert not [dm for dm in _dms(slack_api, "U0BEN") if "Hooli" in dm]
