"""Cited evidence is stored with who and when, read back per deal and latest per kind, and
feeds the facts the checks read (DealFacts.cited), on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.exc import IntegrityError

from domain.dates import quarter_bounds
from storage.database import Database
from storage.evidence import EvidenceRepository
from storage.facts import ReminderRepository
from storage.models import Deal

T0 = dt.datetime(2026, 11, 12, 14, 30, tzinfo=dt.UTC)
LINK = "https://acme.slack.com/archives/C0123ABC/p1700000000123456"


def _deal(database: Database, account: str) -> int:
    with database.session() as session:
        deal = Deal(
            account=account,
            account_key=account.lower(),
            owner_id="U0ANA",
            currency="USD",
            stage="proposal",
            stage_entered_at=T0,
            forecast_category="best_case",
            status="open",
            created_by="U0ANA",
            created_at=T0,
            updated_at=T0,
            last_touch_at=T0,
        )
        session.add(deal)
        session.flush()
        return deal.id


def test_citations_are_kept_with_who_and_when_and_the_latest_per_kind_wins(
    database: Database,
) -> None:
    initech, globex = _deal(database, "Initech"), _deal(database, "Globex")
    with database.session() as session:
        evidence = EvidenceRepository(session)
        evidence.cite(
            deal_id=initech,
            kind="eb",
            source="slack",
            reference=LINK,
            excerpt="Bill signs",
            by="U0ANA",
            at=T0,
        )
        evidence.cite(
            deal_id=initech,
            kind="eb",
            source="gmail",
            reference="msg-f:1780000000000000001",
            excerpt=None,
            by="U0MARIA",
            at=T0 + dt.timedelta(days=1),
        )
        evidence.cite(
            deal_id=initech,
            kind="paper",
            source="gmail",
            reference="18c2f9a0b1d2e3f4",
            excerpt=None,
            by="U0ANA",
            at=T0 + dt.timedelta(hours=1),
        )
        evidence.cite(
            deal_id=globex,
            kind="process",
            source="slack",
            reference=LINK,
            excerpt=None,
            by="U0BEN",
            at=T0,
        )
    with database.session() as session:
        evidence = EvidenceRepository(session)
        every = evidence.for_deal(initech)
        assert [(c.kind, c.source, c.cited_by) for c in every] == [
            ("eb", "slack", "U0ANA"),
            ("paper", "gmail", "U0ANA"),
            ("eb", "gmail", "U0MARIA"),
        ]
        assert every[0].cited_at == T0 and every[0].excerpt == "Bill signs"
        latest = evidence.latest_per_kind(initech)
        assert list(latest) == ["eb", "paper"]  # EVIDENCE_KINDS order
        assert latest["eb"].cited_by == "U0MARIA"
        assert evidence.cited_kinds(initech) == {"eb", "paper"}
        assert evidence.cited_kinds(globex) == {"process"}
        facts = {
            f.deal_id: f.cited
            for f in ReminderRepository(session).deal_facts(
                quarter=quarter_bounds(T0.date()), deal_ids=[initech, globex]
            )
        }
    assert facts == {initech: {"eb", "paper"}, globex: {"process"}}


def test_a_kind_the_schema_does_not_know_is_refused_by_the_database(database: Database) -> None:
    deal_id = _deal(database, "Initech")
    with pytest.raises(IntegrityError), database.session() as session:
        EvidenceRepository(session).cite(
            deal_id=deal_id,
            kind="pain",
            source="slack",
            reference=LINK,
            excerpt=None,
            by="U0ANA",
            at=T0,
        )
    with database.session() as session:
        assert EvidenceRepository(session).for_deal(deal_id) == []


def test_a_merge_moves_only_the_kinds_the_target_has_not_cited(database: Database) -> None:
    source, target = _deal(database, "Initech (old)"), _deal(database, "Initech")
    with database.session() as session:
        evidence = EvidenceRepository(session)
        for deal_id, kind, by in (
            (source, "eb", "U0OLD"),
            (source, "paper", "U0OLD"),
            (target, "eb", "U0NEW"),
        ):
            evidence.cite(
                deal_id=deal_id,
                kind=kind,
                source="slack",
                reference=LINK,
                excerpt=None,
                by=by,
                at=T0,
            )
        assert evidence.move_uncited(from_deal=source, to_deal=target) == {"paper"}
    with database.session() as session:
        evidence = EvidenceRepository(session)
        assert {(c.kind, c.cited_by) for c in evidence.for_deal(target)} == {
            ("eb", "U0NEW"),
            ("paper", "U0OLD"),
        }
        assert [c.kind for c in evidence.for_deal(source)] == ["eb"]
