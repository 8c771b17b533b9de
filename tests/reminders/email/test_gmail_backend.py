"""Drafts through the real google-api-python-client, against a fake Gmail on 127.0.0.1."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import select

from domain.changes import DealChanges, DealRef
from domain.deals import Actor
from reminders.email.backends import GmailBackend, TransientEmailError
from reminders.email.drafts import MAX_ATTEMPTS
from reminders.email.google_auth import REVOKED_REASON, DelegatedMailboxes
from reminders.email.message import message_id_for
from storage.follow_ups import FollowUpRepository
from storage.models import Contact, FollowUpTrigger
from tests.fakes.gmail_api import FakeGmail
from tests.reminders.email.conftest import NOW, Drafting, on_both_backends


def _move_to_proposal(drafting: Drafting, account: str, user: str) -> None:
    drafting.deals.update_deal(Actor(user), DealRef(account, None), DealChanges(stage="proposal"))


def _trigger(drafting: Drafting, trigger_id: int) -> FollowUpTrigger:
    with drafting.database.session() as session:
        row = FollowUpRepository(session).get(trigger_id)
        assert row is not None
        session.expunge(row)
        return row


def test_a_stage_change_becomes_one_gmail_draft_to_the_contact_from_the_rep(
    drafting: Drafting, gmail: FakeGmail
) -> None:
    oauth = drafting.oauth(gmail)
    drafting.connect_rep(gmail, "U0ANA")
    follow_ups = drafting.follow_ups(drafting.gmail_backend(gmail, oauth), connect=oauth)
    drafting.deals.update_deal(
        Actor("U0ANA"), DealRef("initech", None), DealChanges(stage="proposal")
    )

    follow_ups.find_triggers(NOW)
    outcomes = [o for o in follow_ups.draft_pending(NOW) if o.deal_name == "Initech"]

    assert [o.status for o in outcomes] == ["drafted"]
    [draft] = [d for d in gmail.drafts if "Initech" in (d.header("Subject") or "")]
    assert draft.mailbox == "ana@sales.example"
    assert draft.header("To") == "Peter Gibbons <peter@initech.com>"  # the champion
    assert draft.header("From") == "Ana Ruiz <ana@sales.example>"
    assert draft.header("Subject") == "Proposal for Initech"
    assert draft.header("In-Reply-To") is None  # the first email of the thread
    assert draft.mime.get_content_type() == "text/plain"
    assert draft.body.startswith("Hi Peter,\n")
    assert "Please find attached our proposal for Initech ($48,000)." in draft.body
    assert "SSO, audit log, EU hosting" in draft.body
    assert (
        outcomes[0].link == f"https://mail.google.com/mail/u/0/#drafts?compose={draft.message_id}"
    )
    # The Message-ID is the trigger's, so a retry can find this very draft.
    trigger = _trigger(drafting, outcomes[0].trigger_id)
    assert draft.header("Message-ID") == message_id_for(
        trigger.source_key, mailbox="ana@sales.example"
    )
    assert (trigger.status, trigger.draft_id, trigger.thread_id) == (
        "drafted",
        draft.draft_id,
        draft.thread_id,
    )


@on_both_backends
def test_the_next_draft_on_a_deal_replies_in_the_same_thread(
    drafting: Drafting, gmail: FakeGmail
) -> None:
    oauth = drafting.oauth(gmail)
    drafting.connect_rep(gmail, "U0ANA")
    follow_ups = drafting.follow_ups(drafting.gmail_backend(gmail, oauth), connect=oauth)
    first = follow_ups.draft(follow_ups.request(Actor("U0ANA"), DealRef("initech", None), None))
    second = follow_ups.draft(
        follow_ups.request(Actor("U0ANA"), DealRef("initech", None), "mutual_success_plan")
    )

    assert (first.status, second.status) == ("drafted", "drafted")
    one, two = gmail.drafts
    assert two.header("In-Reply-To") == one.header("Message-ID")
    assert two.header("References") == one.header("Message-ID")
    assert two.thread_id == one.thread_id
    created = gmail.created_messages()
    assert "threadId" not in created[0]
    assert created[1]["threadId"] == one.thread_id


def test_429_and_5xx_are_retried_with_backoff(drafting: Drafting, gmail: FakeGmail) -> None:
    oauth = drafting.oauth(gmail)
    drafting.connect_rep(gmail, "U0ANA")
    follow_ups = drafting.follow_ups(drafting.gmail_backend(gmail, oauth), connect=oauth)
    gmail.fail_next(2, status=429, path="/gmail/v1/users/me/drafts")
    gmail.fail_next(1, status=503, path="/gmail/v1/users/me/drafts")

    outcome = follow_ups.draft(follow_ups.request(Actor("U0ANA"), DealRef("globex", None), None))

    assert outcome.status == "drafted"
    assert len(gmail.drafts) == 1
    assert len(gmail.requests_to("POST", "/gmail/v1/users/me/drafts")) == 4
    # execute(num_retries=…) backed off before each retry: random() * 2**n seconds.
    assert len(drafting.sleeps) == 3
    assert all(0 <= pause <= 2 ** (n + 1) for n, pause in enumerate(drafting.sleeps))
    # A first attempt has nothing to look for: no drafts.list before creating.
    assert gmail.requests_to("GET", "/gmail/v1/users/me/drafts") == []


@on_both_backends
def test_an_outage_outlasting_the_retries_is_drafted_exactly_once_on_the_next_run(
    drafting: Drafting, gmail: FakeGmail
) -> None:
    oauth = drafting.oauth(gmail)
    drafting.connect_rep(gmail, "U0ANA")
    backend = drafting.gmail_backend(gmail, oauth)
    follow_ups = drafting.follow_ups(backend, connect=oauth)
    trigger_id = follow_ups.request(Actor("U0ANA"), DealRef("globex", None), None)
    gmail.fail_next(backend.num_retries + 1, status=500, path="/gmail/v1/users/me/drafts")

    first = follow_ups.draft_pending(NOW)
    assert [(o.trigger_id, o.status) for o in first] == [(trigger_id, "retry")]
    assert _trigger(drafting, trigger_id).status == "pending"
    assert gmail.drafts == []

    second = follow_ups.draft_pending(NOW)
    third = follow_ups.draft_pending(NOW)

    assert [o.status for o in second] == ["drafted"]
    assert third == []
    assert len(gmail.drafts) == 1


def test_a_rate_limit_403_outlasting_the_retries_is_tried_again_on_the_next_run(
    drafting: Drafting, gmail: FakeGmail
) -> None:
    # Gmail says "over quota" with 403 userRateLimitExceeded as often as with 429; once
    # execute() has used up its retries on it, the trigger must wait, not fail for good.
    oauth = drafting.oauth(gmail)
    drafting.connect_rep(gmail, "U0ANA")
    backend = drafting.gmail_backend(gmail, oauth)
    follow_ups = drafting.follow_ups(backend, connect=oauth)
    trigger_id = follow_ups.request(Actor("U0ANA"), DealRef("globex", None), None)
    gmail.fail_next(
        backend.num_retries + 1,
        status=403,
        path="/gmail/v1/users/me/drafts",
        reason="userRateLimitExceeded",
    )

    first = follow_ups.draft_pending(NOW)

    assert [(o.trigger_id, o.status) for o in first] == [(trigger_id, "retry")]
    assert _trigger(drafting, trigger_id).status == "pending"
    assert [o.status for o in follow_ups.draft_pending(NOW)] == ["drafted"]
    assert len(gmail.drafts) == 1


def test_a_403_that_is_not_a_rate_limit_fails_for_good(
    drafting: Drafting, gmail: FakeGmail
) -> None:
    oauth = drafting.oauth(gmail)
    drafting.connect_rep(gmail, "U0ANA")
    follow_ups = drafting.follow_ups(drafting.gmail_backend(gmail, oauth), connect=oauth)
    trigger_id = follow_ups.request(Actor("U0ANA"), DealRef("globex", None), None)
    gmail.fail_next(1, status=403, path="/gmail/v1/users/me/drafts", reason="forbidden")

    outcome = follow_ups.draft(trigger_id)

    assert outcome.status == "failed"
    assert outcome.problem == "Gmail answered 403: injected fault"
    assert len(gmail.requests_to("POST", "/gmail/v1/users/me/drafts")) == 1  # not retried


@on_both_backends
def test_asking_again_after_a_trigger_gave_up_looks_for_the_draft_an_attempt_left(
    drafting: Drafting, gmail: FakeGmail
) -> None:
    # Every attempt timed out after Google had taken the draft; the trigger gave up. The
    # rep asks again the same day: the new attempt must find that draft, not add a second.
    oauth = drafting.oauth(gmail)
    drafting.connect_rep(gmail, "U0ANA")

    class TimeoutAfterCreate(GmailBackend):
        def create_draft(self, message, *, mailbox, look_first):  # type: ignore[no-untyped-def]
            super().create_draft(message, mailbox=mailbox, look_first=look_first)
            raise TransientEmailError("TimeoutError: timed out")

    timing_out = drafting.follow_ups(
        TimeoutAfterCreate(credentials=oauth, api_url=gmail.base_url, sleep=lambda _: None),
        connect=oauth,
    )
    asked = timing_out.request(Actor("U0ANA"), DealRef("globex", None), None)
    statuses = [timing_out.draft(asked).status for _ in range(MAX_ATTEMPTS)]
    assert statuses[-1] == "failed"
    assert len(gmail.drafts) == 1

    follow_ups = drafting.follow_ups(drafting.gmail_backend(gmail, oauth), connect=oauth)
    again = follow_ups.request(Actor("U0ANA"), DealRef("globex", None), None)
    outcome = follow_ups.draft(again)

    assert again == asked
    assert outcome.status == "drafted"
    assert len(gmail.drafts) == 1
    assert outcome.link and outcome.link.endswith(gmail.drafts[0].message_id)


def test_a_contact_email_smuggling_a_second_recipient_is_refused(drafting: Drafting) -> None:
    # Commands check addresses, but the domain stores what it is given: the message itself
    # must not turn `a@b>, c@d` into a second recipient of a draft the rep might just send.
    follow_ups = drafting.follow_ups(drafting.outbox())
    with drafting.database.session() as session:
        [contact] = session.scalars(select(Contact).where(Contact.email == "jared@hooli.com")).all()
        contact.email = "jared@hooli.com>, mallory@evil.example"

    outcome = follow_ups.draft(follow_ups.request(Actor("U0BEN"), DealRef("hooli", None), None))

    assert outcome.status == "failed"
    assert "addr_spec" in (outcome.problem or "")
    assert list(drafting.outbox().directory.glob("*.eml")) == []


@on_both_backends
def test_a_crash_after_google_accepted_the_draft_does_not_make_a_second_one(
    drafting: Drafting, gmail: FakeGmail
) -> None:
    oauth = drafting.oauth(gmail)
    drafting.connect_rep(gmail, "U0ANA")

    class CrashAfterCreate(GmailBackend):
        def create_draft(self, message, *, mailbox, look_first):  # type: ignore[no-untyped-def]
            super().create_draft(message, mailbox=mailbox, look_first=look_first)
            raise RuntimeError("process killed before the answer was saved")

    crashing = CrashAfterCreate(credentials=oauth, api_url=gmail.base_url, sleep=lambda _: None)
    trigger_id = drafting.follow_ups(crashing, connect=oauth).request(
        Actor("U0ANA"), DealRef("globex", None), None
    )
    assert drafting.follow_ups(crashing, connect=oauth).draft(trigger_id).status == "retry"
    assert len(gmail.drafts) == 1

    retry = drafting.follow_ups(drafting.gmail_backend(gmail, oauth), connect=oauth)
    outcome = retry.draft(trigger_id)

    assert outcome.status == "drafted"
    assert len(gmail.drafts) == 1  # found by its Message-ID, not made again
    [query] = gmail.requests_to("GET", "/gmail/v1/users/me/drafts")
    assert query["q"] == [
        f"rfc822msgid:{gmail.drafts[0].header('Message-ID')}".replace("<", "").replace(">", "")
    ]
    assert outcome.link and outcome.link.endswith(gmail.drafts[0].message_id)


@on_both_backends
def test_a_revoked_grant_asks_that_rep_to_reconnect_and_the_others_go_on(
    drafting: Drafting, gmail: FakeGmail
) -> None:
    oauth = drafting.oauth(gmail)
    drafting.connect_rep(gmail, "U0ANA")
    drafting.connect_rep(gmail, "U0BEN")
    gmail.revoke_all("ana@sales.example")
    follow_ups = drafting.follow_ups(drafting.gmail_backend(gmail, oauth), connect=oauth)
    ana = follow_ups.request(Actor("U0ANA"), DealRef("globex", None), None)
    ben = follow_ups.request(Actor("U0BEN"), DealRef("hooli", None), None)

    outcomes = {o.trigger_id: o for o in follow_ups.draft_pending(NOW)}

    assert outcomes[ana].status == "connect"
    assert outcomes[ana].problem == REVOKED_REASON
    assert outcomes[ana].connect_link and outcomes[ana].connect_link.startswith(
        "https://dealbot.example/oauth/google/start?state="
    )
    assert outcomes[ben].status == "drafted"
    assert [d.mailbox for d in gmail.drafts] == ["ben@sales.example"]
    with drafting.database.session() as session:
        repository = FollowUpRepository(session)
        assert repository.grant_for("U0ANA") is None  # forgotten: it can never work again
        assert repository.grant_for("U0BEN") is not None
    # Ana's draft waits, without using up its attempts, until she reconnects.
    waiting = _trigger(drafting, ana)
    assert (waiting.status, waiting.attempts) == ("pending", 0)
    drafting.connect_rep(gmail, "U0ANA")
    assert follow_ups.draft(ana).status == "drafted"


def test_a_deleted_thread_starts_a_new_one_instead_of_failing(
    drafting: Drafting, gmail: FakeGmail
) -> None:
    oauth = drafting.oauth(gmail)
    drafting.connect_rep(gmail, "U0ANA")
    follow_ups = drafting.follow_ups(drafting.gmail_backend(gmail, oauth), connect=oauth)
    follow_ups.draft(follow_ups.request(Actor("U0ANA"), DealRef("globex", None), None))
    gmail.delete_threads()  # the rep deleted the conversation in Gmail

    outcome = follow_ups.draft(
        follow_ups.request(Actor("U0ANA"), DealRef("globex", None), "mutual_success_plan")
    )

    assert outcome.status == "drafted"
    assert len(gmail.drafts) == 2
    assert gmail.drafts[1].header("In-Reply-To") == gmail.drafts[0].header("Message-ID")


@pytest.fixture
def service_account_file(tmp_path: Path, gmail: FakeGmail) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    path = tmp_path / "service-account.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": "dealbot-test",
                "private_key_id": "key1",
                "private_key": pem,
                "client_email": "dealbot@dealbot-test.iam.gserviceaccount.com",
                "client_id": "1234567890",
                "token_uri": gmail.token_uri,
            }
        )
    )
    return path


def test_domain_wide_delegation_drafts_in_the_rep_s_mailbox_from_slack(
    drafting: Drafting, gmail: FakeGmail, service_account_file: Path
) -> None:
    gmail.allow_delegation("ben@sales.example")
    delegated = DelegatedMailboxes(service_account_file=service_account_file)
    follow_ups = drafting.follow_ups(drafting.gmail_backend(gmail, delegated))
    ben = follow_ups.request(Actor("U0BEN"), DealRef("hooli", None), None)
    ana = follow_ups.request(Actor("U0ANA"), DealRef("globex", None), None)  # not delegated

    outcomes = {o.trigger_id: o for o in follow_ups.draft_pending(NOW)}

    assert outcomes[ben].status == "drafted"
    [draft] = gmail.drafts
    assert draft.mailbox == "ben@sales.example"
    assert draft.header("From") == "Ben Okafor <ben@sales.example>"
    assert draft.header("To") == "Jared Dunn <jared@hooli.com>"
    assert draft.header("Subject") == "Hooli — contract redlines"  # negotiation's template
    assert "urn:ietf:params:oauth:grant-type:jwt-bearer" in gmail.token_grants
    # Not delegated: an admin matter, retried later; no connect link for the rep.
    assert outcomes[ana].status == "retry"
    assert outcomes[ana].connect_link is None
    assert "domain-wide delegation" in (outcomes[ana].problem or "")
