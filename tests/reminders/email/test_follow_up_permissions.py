"""Who may draft a deal's follow-up, and whose mailbox a draft threads in."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from domain.changes import DealRef
from domain.deals import Actor
from domain.errors import NotAllowed, Person
from storage.models import FollowUpTrigger
from tests.fakes.gmail_api import FakeGmail
from tests.reminders.email.conftest import Drafting, on_both_backends

INITECH = DealRef("initech", None)  # ana's deal in the seeded pipeline; maria manages ana


def _triggers(drafting: Drafting) -> int:
    with drafting.database.session() as session:
        return session.scalar(select(func.count()).select_from(FollowUpTrigger)) or 0


def test_another_rep_cannot_draft_to_the_owners_buyer(drafting: Drafting) -> None:
    # Bug: any user could have dealbot draft to another rep's buyer, in their own name.
    follow_ups = drafting.follow_ups(drafting.outbox())

    with pytest.raises(NotAllowed) as refused:
        follow_ups.request(Actor("U0BEN"), INITECH, None)

    # The domain names the owner as a person; the Slack surface writes the mention.
    assert Person("U0ANA") in refused.value.problem_words
    assert "belongs to U0ANA" in refused.value.problem
    assert "draft its follow-ups" in refused.value.problem
    assert _triggers(drafting) == 0


def test_the_owner_their_manager_and_an_admin_may_draft(drafting: Drafting) -> None:
    follow_ups = drafting.follow_ups(drafting.outbox())
    admin = Actor("U0ROOT", is_admin=lambda: True)

    for actor in (Actor("U0ANA"), Actor("U0MARIA"), admin):
        follow_ups.request(actor, INITECH, None)

    assert _triggers(drafting) == 3


@on_both_backends
def test_the_owners_draft_never_threads_onto_a_draft_in_another_mailbox(
    drafting: Drafting, gmail: FakeGmail
) -> None:
    # Bug: the manager's draft (in the manager's Gmail) became the thread the owner's next
    # draft replied to: a threadId and a Message-ID from someone else's mailbox.
    oauth = drafting.oauth(gmail)
    drafting.connect_rep(gmail, "U0ANA")
    drafting.connect_rep(gmail, "U0MARIA")
    follow_ups = drafting.follow_ups(drafting.gmail_backend(gmail, oauth), connect=oauth)

    managers = follow_ups.draft(follow_ups.request(Actor("U0MARIA"), INITECH, None))
    owners = follow_ups.draft(follow_ups.request(Actor("U0ANA"), INITECH, "mutual_success_plan"))
    owners_next = follow_ups.draft(follow_ups.request(Actor("U0ANA"), INITECH, "re_engage"))

    assert (managers.status, owners.status, owners_next.status) == ("drafted",) * 3
    in_marias, in_anas, in_anas_next = gmail.drafts
    assert (in_marias.mailbox, in_anas.mailbox) == ("maria@sales.example", "ana@sales.example")
    assert in_anas.header("In-Reply-To") is None
    assert in_anas.thread_id != in_marias.thread_id
    assert "threadId" not in gmail.created_messages()[1]
    # Within one mailbox threading still works.
    assert in_anas_next.header("In-Reply-To") == in_anas.header("Message-ID")
    assert in_anas_next.thread_id == in_anas.thread_id
