"""CRM sync storage on both backends: the push outbox's keys and claims, links, state."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy.exc import IntegrityError

from storage.crm import CrmRepository, PushToMake
from storage.database import Database
from storage.models import CrmPush, Deal, DealChange

NOW = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)


def _deal(database: Database, account: str = "Initech") -> int:
    with database.session() as session:
        deal = Deal(
            account=account,
            account_key=account.casefold(),
            owner_id="U0ANA",
            currency="USD",
            stage="discovery",
            created_by="U0ANA",
            external_ref=f"salesforce:006{account}",
        )
        session.add(deal)
        session.flush()
        return deal.id


def _push(deal_id: int, key: str, *, field: str = "stage", value: object = "demo") -> PushToMake:
    return PushToMake(
        deal_id=deal_id,
        kind="update",
        field=field,
        value=value,
        key=key,
        made_by="U0ANA",
        made_at=NOW,
    )


def test_enqueueing_a_known_key_is_a_no_op(database: Database) -> None:
    deal_id = _deal(database)
    with database.session() as session:
        repository = CrmRepository(session)
        assert repository.enqueue(_push(deal_id, "k1"))
        assert not repository.enqueue(_push(deal_id, "k1", value="proposal"))
    with database.session() as session:
        pushes = CrmRepository(session).all_pushes()
    assert [(p.key, p.value, p.status, p.attempts) for p in pushes] == [
        ("k1", '"demo"', "pending", 0)
    ]


def test_a_push_is_claimed_by_one_owner_until_its_lease_lapses(database: Database) -> None:
    deal_id = _deal(database)
    with database.session() as session:
        CrmRepository(session).enqueue(_push(deal_id, "k1"))
    with database.session() as session:
        repository = CrmRepository(session)
        [(push_id, _)] = repository.due_pushes(now=NOW)
        first = repository.claim(push_id, owner="a", lease_until=NOW + dt.timedelta(seconds=45))
        assert first is not None and (first.status, first.claimed_by, first.attempts) == (
            "sending",
            "a",
            1,
        )
    with database.session() as session:
        repository = CrmRepository(session)
        assert repository.claim(push_id, owner="b", lease_until=NOW) is None
        assert repository.release_lapsed_claims(now=NOW + dt.timedelta(seconds=30)) == 0
        assert repository.release_lapsed_claims(now=NOW + dt.timedelta(seconds=46)) == 1
        again = repository.claim(push_id, owner="b", lease_until=NOW + dt.timedelta(minutes=1))
        assert again is not None and again.attempts == 2


def test_a_sent_push_is_never_claimed_again(database: Database) -> None:
    deal_id = _deal(database)
    with database.session() as session:
        CrmRepository(session).enqueue(_push(deal_id, "k1"))
    with database.session() as session:
        repository = CrmRepository(session)
        [(push_id, _)] = repository.due_pushes(now=NOW)
        repository.claim(push_id, owner="a", lease_until=NOW)
        assert repository.mark([push_id], "sent", crm_result="006X", owner="a") == 1
    with database.session() as session:
        repository = CrmRepository(session)
        assert repository.release_lapsed_claims(now=NOW + dt.timedelta(hours=1)) == 0
        assert repository.due_pushes(now=NOW + dt.timedelta(hours=1)) == []
        assert repository.claim(push_id, owner="b", lease_until=NOW) is None


def test_a_backed_off_push_is_due_again_only_after_its_time(database: Database) -> None:
    deal_id = _deal(database)
    with database.session() as session:
        CrmRepository(session).enqueue(_push(deal_id, "k1"))
    with database.session() as session:
        repository = CrmRepository(session)
        [(push_id, _)] = repository.due_pushes(now=NOW)
        repository.mark([push_id], "pending", next_attempt_at=NOW + dt.timedelta(seconds=30))
    with database.session() as session:
        repository = CrmRepository(session)
        assert repository.due_pushes(now=NOW + dt.timedelta(seconds=29)) == []
        assert repository.due_pushes(now=NOW + dt.timedelta(seconds=30)) == [(push_id, deal_id)]


def test_not_in_crm_lists_unsent_fields_per_deal_in_one_query(database: Database) -> None:
    initech, hooli = _deal(database), _deal(database, "Hooli")
    with database.session() as session:
        repository = CrmRepository(session)
        repository.enqueue(_push(initech, "a", field="stage"))
        repository.enqueue(_push(initech, "b", field="close_date"))
        repository.enqueue(_push(initech, "c", field="stage"))
        repository.enqueue(
            PushToMake(
                deal_id=hooli,
                kind="create",
                field=None,
                value=None,
                key="create",
                made_by="U0ANA",
                made_at=NOW,
            )
        )
        repository.enqueue(_push(hooli, "d", field="amount"))
    with database.session() as session:
        repository = CrmRepository(session)
        ids = {p.key: p.id for p in repository.all_pushes()}
        repository.mark([ids["b"]], "refused", error="locked")
        repository.mark([ids["d"]], "sent")
        assert repository.not_in_crm([initech, hooli, 999]) == {
            initech: ("stage", "close_date"),
            hooli: ("deal",),
        }
        assert repository.count_pushes(("refused",)) == 1


def test_a_crm_record_links_to_one_deal_only(database: Database) -> None:
    initech, hooli = _deal(database), _deal(database, "Hooli")
    with database.session() as session:
        repository = CrmRepository(session)
        link = repository.add_link(
            deal_id=initech, kind="salesforce", crm_id="006A", url=None, synced={"stage": "demo"}
        )
        assert repository.synced_of(link) == {"stage": "demo"}
        assert repository.link_by_crm_id("salesforce", "006A") is link
        assert repository.link_by_crm_id("hubspot", "006A") is None
    with pytest.raises(IntegrityError), database.session() as session:
        CrmRepository(session).add_link(
            deal_id=hooli, kind="salesforce", crm_id="006A", url=None, synced={}
        )


def test_state_is_created_once_and_a_deleted_deal_takes_its_pushes_along(
    database: Database,
) -> None:
    deal_id = _deal(database)
    with database.session() as session:
        repository = CrmRepository(session)
        repository.state("salesforce").cursor = "2026-12-01T10:00:00+00:00"
        repository.enqueue(_push(deal_id, "k1"))
        deal = session.get(Deal, deal_id)
        assert deal is not None
        deal.changes.append(
            DealChange(
                field="stage",
                old_value=None,
                new_value="demo",
                changed_by="salesforce",
                changed_at=NOW,
                source="salesforce",
            )
        )
    with database.session() as session:
        repository = CrmRepository(session)
        assert repository.state("salesforce").cursor == "2026-12-01T10:00:00+00:00"
        deal = session.get(Deal, deal_id)
        assert deal is not None and [c.source for c in deal.changes] == ["salesforce"]
        session.delete(deal)
    with database.session() as session:
        assert session.query(CrmPush).count() == 0
