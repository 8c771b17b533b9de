"""The deal card with a CRM connected: a link to the record, and every field the CRM has
not taken yet marked "not in <CRM> yet" where the card shows it."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from typing import Any

from domain.views import ChangeView
from handlers import blocks
from tests.handlers.test_blocks import TODAY, _deal

URL = "https://initech.my.salesforce.com/006Dn00000A1b2cIAB"


def card(**crm: Any) -> list[dict[str, Any]]:
    base = _deal()
    view = replace(base, **crm)
    reply = blocks.deal_card(view, TODAY)
    return reply.block_dicts()


def texts(block_dicts: list[dict[str, Any]]) -> str:
    return json.dumps(block_dicts, ensure_ascii=False)


def summary(block_dicts: list[dict[str, Any]]) -> str:
    return str(block_dicts[1]["text"]["text"])


def test_without_a_crm_the_card_is_as_before() -> None:
    assert card() == blocks.deal_card(_deal(), TODAY).block_dicts()
    assert "not in" not in texts(card(not_in_crm=("stage",)))  # no CRM, nothing to mark


def test_the_card_links_to_the_record_in_the_crm() -> None:
    shown = card(crm_label="Salesforce", crm_url=URL)
    assert shown[2] == {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": f":link: <{URL}|Open in Salesforce>"}],
    }
    assert "not in Salesforce yet" not in texts(shown)


def test_each_unsynced_field_is_marked_where_it_shows() -> None:
    shown = card(crm_label="Salesforce", crm_url=URL, not_in_crm=("stage", "close_date"))
    line = summary(shown).splitlines()[1]
    assert line == (
        "$48,000 · Demo _(not in Salesforce yet)_ · "
        "closes Tue 15 Dec _(not in Salesforce yet)_ · Best case · owner <@U0ANA>"
    )
    assert texts(shown).count("not in Salesforce yet") == 2


def test_a_pending_next_step_is_marked_on_its_line() -> None:
    shown = card(crm_label="HubSpot", not_in_crm=("next_step",))
    step = next(b for b in shown if b["type"] == "section" and "Next step" in b["text"]["text"])
    assert step["text"]["text"].endswith("_(not in HubSpot yet)_")
    assert "not in HubSpot yet" not in summary(shown)


def test_a_field_the_card_does_not_show_is_listed_on_its_own_line() -> None:
    shown = card(crm_label="HubSpot", not_in_crm=("pipeline_probability",))
    contexts = [
        element["text"]
        for block in shown
        if block["type"] == "context"
        for element in block["elements"]
    ]
    assert ":hourglass: Pipeline probability: not in HubSpot yet" in contexts


def test_a_url_that_is_not_plain_http_is_not_linked() -> None:
    for bad in ("javascript:alert(1)", "https://x.io/a|b", "https://x.io/<@U0BOSS>", "ftp://x"):
        assert "Open in" not in texts(card(crm_label="Salesforce", crm_url=bad)), bad


def test_the_marks_keep_slacks_limits() -> None:
    # Every field pending at once on a full card still builds (the models check limits).
    everything = ("title", "account", "amount", "stage", "close_date", "forecast_category")
    reply = blocks.deal_card(
        replace(
            _deal(),
            crm_label="Salesforce",
            crm_url=URL,
            not_in_crm=(*everything, "owner", "next_step", "currency"),
        ),
        TODAY,
    )
    assert len(reply.blocks) <= 50
    # Name and account share one mark, as do amount and currency; currency is shown inline.
    assert texts(reply.block_dicts()).count("not in Salesforce yet") == 7


def test_crm_notices_are_one_section_with_a_matching_fallback() -> None:
    reply = blocks.crm_refused_notice(
        deal_name="*Initech*", fields=("amount", "stage"), message="Locked.", crm="Salesforce"
    )
    (block,) = reply.block_dicts()
    assert block["text"]["text"] == reply.text
    assert reply.text == (
        "Salesforce did not take your change to ∗Initech∗'s amount and stage: Locked. "
        'It stays in dealbot, marked "not in Salesforce yet".'
    )


def test_conflict_values_are_shown_as_the_card_shows_them() -> None:
    reply = blocks.crm_conflict_notice(
        deal_name="Initech",
        field="stage",
        yours="demo",
        theirs=None,
        crm="HubSpot",
        crm_won=True,
        today=dt.date(2026, 11, 23),
    )
    assert reply.text.startswith("Initech: your stage (demo) and a change in HubSpot (none)")


def test_a_change_made_in_the_crm_says_where_it_was_made_in_the_history() -> None:
    at = dt.datetime(2026, 11, 30, 15, 0, tzinfo=dt.UTC)
    history = (
        ChangeView("stage", "demo", "proposal", "U0ANA", at, source="salesforce"),
        ChangeView("amount", "48000.00 USD", "<!here>", "salesforce", at, source="salesforce"),
        ChangeView("close_date", "2026-12-15", "2026-12-31", "U0ANA", at),
    )
    shown = texts(card(crm_label="Salesforce", crm_url=URL, history=history))

    assert "Stage: demo → proposal (<@U0ANA> in Salesforce, Mon 30 Nov)" in shown
    assert "Amount: 48000.00 USD → &lt;!here&gt; (in Salesforce, Mon 30 Nov)" in shown
    assert "Close date: 2026-12-15 → 2026-12-31 (<@U0ANA>, Mon 30 Nov)" in shown
