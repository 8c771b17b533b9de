"""Email templates render completely for every seeded deal, and strictly when they cannot."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.fake_slack import FakeSlackWebAPI
from domain.changes import DealChanges, DealRef
from domain.deals import Actor
from domain.follow_up_triggers import load_trigger_rules
from reminders.email.drafts import RepProfile, _recipient, email_context
from reminders.email.templates import DEFAULT_TEMPLATES_DIR, EmailTemplates, TemplateProblem
from storage.models import FollowUpTrigger
from tests.reminders.email.conftest import NOW, Drafting
from tests.reminders.email.test_follow_up_job import _dms, _run

EXPECTED_TEMPLATES = {
    "discovery_recap",
    "demo_follow_up",
    "proposal_sent",
    "redlines_review",
    "mutual_success_plan",
    "re_engage",
}


def _seeded_deals_with_a_contact(drafting: Drafting) -> list:
    with drafting.database.session() as session:
        from sqlalchemy import select

        from storage.models import Deal

        ids = list(session.scalars(select(Deal.id).where(Deal.status == "open")))
    views = [drafting.deals.show_deal(Actor("U0ANA"), DealRef(None, deal_id)) for deal_id in ids]
    return [view for view in views if _recipient(view) is not None]


def test_the_issue_s_six_templates_exist_and_the_rules_name_only_existing_ones() -> None:
    templates = EmailTemplates()
    assert set(templates.names()) == EXPECTED_TEMPLATES
    assert load_trigger_rules().templates() <= EXPECTED_TEMPLATES


def test_every_template_renders_for_every_seeded_deal_with_nothing_left_blank(
    drafting: Drafting,
) -> None:
    templates = EmailTemplates()
    deals = _seeded_deals_with_a_contact(drafting)
    assert {deal.account for deal in deals} >= {"Initech", "Globex", "Hooli"}
    rendered = 0
    for deal in deals:
        contact = _recipient(deal)
        assert contact is not None
        context = email_context(
            deal,
            contact,
            RepProfile("Ana Ruiz", "ana@sales.example"),
            today=NOW.date(),
            trigger_detail=None,
        )
        for name in templates.names():
            email = templates.render(name, context)
            text = email.subject + "\n" + email.body
            assert "{{" not in text and "{%" not in text and "}}" not in text, (name, text)
            assert "None" not in text, (name, deal.account, text)
            # A blank variable leaves doubled spaces, a space before punctuation or "()".
            assert not re.search(r"\w  \w| [,.;:)]|\(\)", text), (name, deal.account, text)
            assert deal.account in email.subject
            assert email.body.startswith(f"Hi {(contact.name or '').split()[0]},")
            assert email.body.rstrip().endswith("Ana Ruiz")
            rendered += 1
    assert rendered == len(deals) * len(EXPECTED_TEMPLATES)


def test_the_redlines_review_suggests_a_15_minute_sync_on_the_next_working_day(
    drafting: Drafting,
) -> None:
    deal = drafting.deals.show_deal(Actor("U0BEN"), DealRef("hooli", None))
    contact = _recipient(deal)
    assert contact is not None
    email = EmailTemplates().render(
        "redlines_review",
        email_context(
            deal, contact, RepProfile("Ben Okafor", None), today=NOW.date(), trigger_detail=None
        ),
    )
    # NOW is a Monday: the next working day is Tuesday 24 November.
    assert "15-minute sync on Tuesday 24 November" in email.body
    assert "MSA redlines with legal" in email.body  # the deal's paper process


@pytest.fixture
def own_templates(tmp_path: Path) -> Path:
    directory = tmp_path / "email"
    shutil.copytree(DEFAULT_TEMPLATES_DIR, directory)
    return directory


def _context_for_hooli(drafting: Drafting) -> dict:
    deal = drafting.deals.show_deal(Actor("U0BEN"), DealRef("hooli", None))
    contact = _recipient(deal)
    assert contact is not None
    return email_context(
        deal, contact, RepProfile("Ben Okafor", None), today=NOW.date(), trigger_detail=None
    )


def test_an_unknown_name_is_an_error_naming_it(drafting: Drafting, own_templates: Path) -> None:
    (own_templates / "typo.j2").write_text("Subject: Hi {{ account }}\n\n{{ deal.pian }}\n")

    with pytest.raises(TemplateProblem) as raised:
        EmailTemplates(directory=own_templates).render("typo", _context_for_hooli(drafting))

    assert raised.value.template == "typo"
    assert "pian" in raised.value.problem


def test_a_value_the_deal_lacks_is_an_error_unless_the_template_guards_it(
    drafting: Drafting, own_templates: Path
) -> None:
    (own_templates / "bare.j2").write_text("Subject: {{ account }}\n\nPain: {{ deal.pain }}\n")
    (own_templates / "guarded.j2").write_text(
        "Subject: {{ account }}\n\n"
        "{% if deal.pain %}Pain: {{ deal.pain }}{% else %}Hello{% endif %}\n"
    )
    templates = EmailTemplates(directory=own_templates)
    context = _context_for_hooli(drafting)  # Hooli has no pain written down

    with pytest.raises(TemplateProblem) as raised:
        templates.render("bare", context)
    assert "deal.pain has no value" in raised.value.problem
    assert templates.render("guarded", context).body == "Hello\n"


def test_the_sandbox_refuses_to_reach_into_python(drafting: Drafting, own_templates: Path) -> None:
    (own_templates / "escape.j2").write_text(
        "Subject: x\n\n{{ deal.__class__.__mro__[1].__subclasses__() }}\n"
    )

    with pytest.raises(TemplateProblem):
        EmailTemplates(directory=own_templates).render("escape", _context_for_hooli(drafting))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("Hello {{ account }}\n\nBody\n", "first line must be `Subject: …`"),
        ("Subject: {{ account }}\n\n", "body is empty"),
        ("Subject: {{ account }\n\nBody\n", "line 1"),
    ],
)
def test_a_malformed_template_is_refused_with_the_reason(
    drafting: Drafting, own_templates: Path, text: str, problem: str
) -> None:
    (own_templates / "bad.j2").write_text(text)

    with pytest.raises(TemplateProblem) as raised:
        EmailTemplates(directory=own_templates).render("bad", _context_for_hooli(drafting))

    assert problem in raised.value.problem


def test_template_syntax_typed_into_a_deal_is_data_and_no_admin_hears_of_a_broken_template(
    drafting: Drafting, slack_api: FakeSlackWebAPI
) -> None:
    # The issue's `/nextstep Plain "{{ config }}"`, and its cousins in the deal's own text:
    # the real job drafts them as written and tells no admin that proposal_sent is broken.
    typed = "{{ config }} {% if true %}x{% endif %} {# note #}"
    ana = Actor("U0ANA")
    initech = DealRef("initech", None)
    drafting.deals.update_deal(ana, initech, DealChanges(buying_criteria=typed))
    drafting.deals.add_next_step(ana, initech, what=typed, due=None, owner_id=None)
    drafting.deals.update_deal(ana, initech, DealChanges(stage="proposal"))
    outbox = drafting.outbox()

    _run(drafting, slack_api, drafting.follow_ups(outbox), admins="U0MARIA")

    assert _dms(slack_api, "U0MARIA") == []
    [draft] = [
        p.read_text()
        for p in outbox.directory.glob("*.eml")
        if "Proposal for Initech" in p.read_text()
    ]
    assert typed in draft.replace("=\n", "")
    with drafting.database.session() as session:
        statuses = set(session.scalars(select(FollowUpTrigger.status)))
    assert "pending" not in statuses
