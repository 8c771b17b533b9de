"""Follow-ups that do not repeat themselves: one draft per template, deal and recipient within
the rules' window, and a refusal said once per deal a day, however many events call for them.
"""

from __future__ import annotations

import datetime as dt
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import event

from bot.fake_slack import FakeSlackWebAPI
from domain.changes import ContactRef, DealChanges, DealRef
from domain.deals import Actor
from reminders.email.backends import DraftResult, Mailbox, OutboxBackend
from reminders.email.drafts import FollowUps
from reminders.email.message import DraftMessage
from storage.follow_ups import FollowUpRepository
from storage.models import FollowUpTrigger
from tests.fakes.gmail_api import FakeGmail
from tests.reminders.email.conftest import NOW, Drafting, on_both_backends
from tests.reminders.email.test_follow_up_job import _dms, _run

ANA = Actor("U0ANA")
VANDELAY = DealRef("vandelay", None)


def _vandelay(drafting: Drafting) -> None:
    """A deal at discovery with a champion to write to and a discovery call ahead."""
    drafting.deals.create_deal(
        ANA,
        "Vandelay",
        DealChanges(
            stage="discovery",
            champion=ContactRef("Art Vandelay", "art@vandelay.example", None),
        ),
    )
    drafting.deals.add_next_step(ANA, VANDELAY, what="Discovery call", due=None, owner_id=None)


def _the_three_triggers(drafting: Drafting, follow_ups: FollowUps) -> str:
    """`/deal followup`, the stage moving to demo, the call done: all within a minute.

    Return the status of the on-demand draft.
    """
    asked = follow_ups.draft(follow_ups.request(ANA, VANDELAY, None))
    drafting.deals.update_deal(ANA, VANDELAY, DealChanges(stage="demo"))
    drafting.deals.complete_next_step(ANA, VANDELAY)
    return asked.status


def _vandelay_files(outbox: OutboxBackend) -> list[Path]:
    return [p for p in outbox.directory.glob("*.eml") if "art@vandelay.example" in p.read_text()]


def _triggers(drafting: Drafting, deal_name: str) -> list[FollowUpTrigger]:
    with drafting.database.session() as session:
        rows = [
            row
            for row in session.query(FollowUpTrigger).order_by(FollowUpTrigger.id)
            if FollowUpRepository(session).deal_titles([row.deal_id]).get(row.deal_id, ("",))[0]
            == deal_name
        ]
        session.expunge_all()
        return rows


@on_both_backends
def test_three_triggers_for_the_same_recap_make_one_draft(
    drafting: Drafting, slack_api: FakeSlackWebAPI
) -> None:
    outbox = drafting.outbox()
    follow_ups = drafting.follow_ups(outbox)
    _vandelay(drafting)

    asked = _the_three_triggers(drafting, follow_ups)
    _run(drafting, slack_api, follow_ups)
    _run(drafting, slack_api, follow_ups)

    assert asked == "drafted"
    [draft] = _vandelay_files(outbox)
    assert "Subject: Recap of our conversation" in draft.read_text()
    triggers = _triggers(drafting, "Vandelay")
    assert sorted(t.kind for t in triggers) == ["next_step", "on_demand", "stage_change"]
    assert sorted(t.status for t in triggers) == ["drafted", "skipped", "skipped"]
    # The rep already has the draft: the events that repeated it say nothing.
    assert not [dm for dm in _dms(slack_api, "U0ANA") if "Vandelay" in dm]


@on_both_backends
def test_events_alone_make_one_draft_and_it_is_announced_once(
    drafting: Drafting, slack_api: FakeSlackWebAPI
) -> None:
    outbox = drafting.outbox()
    follow_ups = drafting.follow_ups(outbox)
    _vandelay(drafting)
    drafting.deals.update_deal(ANA, VANDELAY, DealChanges(stage="demo"))
    drafting.deals.complete_next_step(ANA, VANDELAY)

    _run(drafting, slack_api, follow_ups)

    assert len(_vandelay_files(outbox)) == 1
    announced = [dm for dm in _dms(slack_api, "U0ANA") if "Vandelay" in dm]
    assert len(announced) == 1 and "*discovery recap* draft for *Vandelay*" in announced[0]


def test_after_the_window_the_same_event_drafts_again(
    drafting: Drafting, slack_api: FakeSlackWebAPI
) -> None:
    outbox = drafting.outbox()
    follow_ups = drafting.follow_ups(outbox)
    _vandelay(drafting)
    assert _the_three_triggers(drafting, follow_ups) == "drafted"
    _run(drafting, slack_api, follow_ups)

    drafting.clock.at = NOW + dt.timedelta(days=8)
    drafting.deals.add_next_step(ANA, VANDELAY, what="Second call", due=None, owner_id=None)
    drafting.deals.complete_next_step(ANA, VANDELAY)
    _run(drafting, slack_api, follow_ups)

    assert len(_vandelay_files(outbox)) == 2


def test_a_window_of_zero_drafts_every_event(
    drafting: Drafting, slack_api: FakeSlackWebAPI
) -> None:
    outbox = drafting.outbox()
    follow_ups = drafting.follow_ups(outbox)
    follow_ups.rules = follow_ups.rules.model_copy(update={"repeat_window_days": 0})
    _vandelay(drafting)

    _the_three_triggers(drafting, follow_ups)
    _run(drafting, slack_api, follow_ups)

    assert len(_vandelay_files(outbox)) == 3
    assert follow_ups.fresh_draft(ANA, VANDELAY, None) is None


class SecondWorkerMidDraft(OutboxBackend):
    """The outbox, where a second worker tries another trigger while the first one drafts."""

    def __init__(self, *, directory: Path) -> None:
        super().__init__(directory=directory)
        self.follow_ups: FollowUps | None = None
        self.other_trigger: int | None = None
        self.meanwhile: list[str] = []

    def create_draft(
        self, message: DraftMessage, *, mailbox: Mailbox, look_first: bool
    ) -> DraftResult:
        if self.follow_ups is not None and self.other_trigger is not None:
            other, self.other_trigger = self.other_trigger, None
            self.meanwhile.append(self.follow_ups.draft(other).status)
        return super().create_draft(message, mailbox=mailbox, look_first=look_first)


@on_both_backends
def test_a_second_worker_waits_for_a_draft_like_its_own_being_made(drafting: Drafting) -> None:
    backend = SecondWorkerMidDraft(directory=drafting.tmp_path / "outbox")
    follow_ups = drafting.follow_ups(backend)
    _vandelay(drafting)
    drafting.deals.update_deal(ANA, VANDELAY, DealChanges(stage="demo"))
    drafting.deals.complete_next_step(ANA, VANDELAY)
    follow_ups.find_triggers(NOW)
    stage, step = [t.id for t in _triggers(drafting, "Vandelay")]
    backend.follow_ups, backend.other_trigger = follow_ups, step

    first = follow_ups.draft(stage)
    later = follow_ups.draft_pending(NOW)

    assert first.status == "drafted"
    assert backend.meanwhile == ["busy"]  # left pending, its attempt not counted
    [settled] = [o for o in later if o.trigger_id == step]
    assert (settled.status, settled.link) == ("duplicate", first.link)
    assert len(_vandelay_files(backend)) == 1


def test_the_same_template_to_another_recipient_is_another_draft(
    drafting: Drafting, slack_api: FakeSlackWebAPI
) -> None:
    outbox = drafting.outbox()
    follow_ups = drafting.follow_ups(outbox)
    _vandelay(drafting)
    assert follow_ups.draft(follow_ups.request(ANA, VANDELAY, None)).status == "drafted"
    drafting.deals.update_deal(
        ANA, VANDELAY, DealChanges(champion=ContactRef("Kel Varnsen", "kel@vandelay.example", None))
    )
    drafting.deals.update_deal(ANA, VANDELAY, DealChanges(stage="demo"))

    _run(drafting, slack_api, follow_ups)

    recipients = sorted(
        line
        for path in outbox.directory.glob("*.eml")
        for line in path.read_text().splitlines()
        if line.startswith("To: ") and "vandelay" in line
    )
    assert recipients == [
        "To: Art Vandelay <art@vandelay.example>",
        "To: Kel Varnsen <kel@vandelay.example>",
    ]


def test_fresh_draft_names_the_latest_draft_like_the_one_asked_for(drafting: Drafting) -> None:
    follow_ups = drafting.follow_ups(drafting.outbox())
    _vandelay(drafting)
    assert follow_ups.fresh_draft(ANA, VANDELAY, None) is None
    first = follow_ups.draft(follow_ups.request(ANA, VANDELAY, None))

    fresh = follow_ups.fresh_draft(ANA, VANDELAY, None)
    another = follow_ups.draft(follow_ups.request(ANA, VANDELAY, None, after=first.trigger_id))
    clicked_twice = follow_ups.request(ANA, VANDELAY, None, after=first.trigger_id)

    assert fresh is not None
    assert (fresh.trigger_id, fresh.template, fresh.recipient) == (
        first.trigger_id,
        "discovery_recap",
        "art@vandelay.example",
    )
    assert follow_ups.fresh_draft(ANA, VANDELAY, "proposal_sent") is None
    assert another.status == "drafted" and another.link != first.link
    assert clicked_twice == another.trigger_id
    latest = follow_ups.fresh_draft(ANA, VANDELAY, None)
    assert latest is not None and latest.trigger_id == another.trigger_id


# --- refusals -------------------------------------------------------------------------------

UMBRELLA = DealRef("umbrella", None)  # seeded with nobody to write to


def _refusals(slack: FakeSlackWebAPI) -> list[str]:
    return [dm for dm in _dms(slack, "U0ANA") if "could not draft" in dm and "Umbrella" in dm]


@on_both_backends
def test_a_refusal_is_said_once_per_deal_a_day(
    drafting: Drafting, slack_api: FakeSlackWebAPI
) -> None:
    follow_ups = drafting.follow_ups(drafting.outbox())
    drafting.deals.add_next_step(ANA, UMBRELLA, what="Discovery call", due=None, owner_id=None)
    drafting.deals.update_deal(ANA, UMBRELLA, DealChanges(stage="demo"))
    _run(drafting, slack_api, follow_ups)
    drafting.clock.at = NOW + dt.timedelta(hours=1)
    drafting.deals.complete_next_step(ANA, UMBRELLA)
    drafting.deals.update_deal(ANA, UMBRELLA, DealChanges(stage="proposal"))
    _run(drafting, slack_api, follow_ups)

    same_day = _refusals(slack_api)
    skipped = [t for t in _triggers(drafting, "Umbrella") if t.status == "skipped"]

    assert len(skipped) >= 3  # demo, the call, proposal: each found nobody to write to
    assert len(same_day) == 1
    assert 'contact:"' in same_day[0]

    drafting.clock.at = NOW + dt.timedelta(days=1)
    drafting.deals.add_next_step(ANA, UMBRELLA, what="Follow-up call", due=None, owner_id=None)
    drafting.deals.complete_next_step(ANA, UMBRELLA)
    _run(drafting, slack_api, follow_ups)
    _run(drafting, slack_api, follow_ups)

    assert len(_refusals(slack_api)) == 2


def test_refusals_about_two_deals_are_two_dms(
    drafting: Drafting, slack_api: FakeSlackWebAPI
) -> None:
    follow_ups = drafting.follow_ups(drafting.outbox())
    drafting.deals.create_deal(ANA, "Dunder Mifflin", DealChanges(stage="discovery"))
    drafting.deals.update_deal(ANA, UMBRELLA, DealChanges(stage="demo"))
    drafting.deals.update_deal(ANA, DealRef("dunder", None), DealChanges(stage="demo"))

    _run(drafting, slack_api, follow_ups)

    refused = [dm for dm in _dms(slack_api, "U0ANA") if "could not draft" in dm]
    assert len(refused) == 2
    assert len([dm for dm in refused if "Umbrella" in dm]) == 1


# --- Gmail ----------------------------------------------------------------------------------


@on_both_backends
def test_three_triggers_make_one_gmail_draft(
    drafting: Drafting, slack_api: FakeSlackWebAPI, gmail: FakeGmail
) -> None:
    oauth = drafting.oauth(gmail)
    drafting.connect_rep(gmail, "U0ANA")
    follow_ups = drafting.follow_ups(drafting.gmail_backend(gmail, oauth), connect=oauth)
    _vandelay(drafting)

    asked = _the_three_triggers(drafting, follow_ups)
    _run(drafting, slack_api, follow_ups)

    assert asked == "drafted"
    [draft] = [d for d in gmail.drafts if d.header("To") == "Art Vandelay <art@vandelay.example>"]
    assert draft.header("Subject") == "Recap of our conversation — Vandelay"
    fresh = follow_ups.fresh_draft(ANA, VANDELAY, None)
    assert fresh is not None
    assert fresh.link == f"https://mail.google.com/mail/u/0/#drafts?compose={draft.message_id}"
    # "Make another" is a second draft, in the same thread.
    again = follow_ups.draft(follow_ups.request(ANA, VANDELAY, None, after=fresh.trigger_id))
    assert again.status == "drafted"
    first, second = [d for d in gmail.drafts if d.header("To") == draft.header("To")]
    assert second.header("In-Reply-To") == first.header("Message-ID")


@on_both_backends
def test_two_workers_drafting_the_same_recap_at_once_make_one_draft(drafting: Drafting) -> None:
    outbox = drafting.outbox()
    follow_ups = drafting.follow_ups(outbox)
    _vandelay(drafting)
    drafting.deals.update_deal(ANA, VANDELAY, DealChanges(stage="demo"))
    drafting.deals.complete_next_step(ANA, VANDELAY)
    follow_ups.find_triggers(NOW)
    both = [t.id for t in _triggers(drafting, "Vandelay")]
    both_reserving = threading.Barrier(2, timeout=10)

    # Each worker holds its claim and knows the recipient; hold both at naming it, so the
    # two reservations meet instead of running one after the other.
    def meet_at_the_reservation(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("UPDATE follow_up_triggers SET recipient"):
            both_reserving.wait()

    engine = drafting.database.engine
    event.listen(engine, "before_cursor_execute", meet_at_the_reservation)
    try:
        with ThreadPoolExecutor(max_workers=2) as workers:
            outcomes = list(workers.map(follow_ups.draft, both))
    finally:
        event.remove(engine, "before_cursor_execute", meet_at_the_reservation)

    assert sorted(o.status for o in outcomes) == ["busy", "drafted"]
    assert len(_vandelay_files(outbox)) == 1
    assert [o.status for o in follow_ups.draft_pending(NOW) if o.trigger_id in both] == [
        "duplicate"
    ]
