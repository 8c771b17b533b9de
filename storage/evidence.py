"""Cited evidence: which Slack or Gmail message backs a deal's qualification answers."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from domain.evidence import EVIDENCE_KINDS
from storage.models import DealEvidence


@dataclass(frozen=True)
class Citation:
    """One citation as stored: a plain value, so no ORM object leaves the repository."""

    id: int
    deal_id: int
    kind: str
    source: str
    reference: str
    excerpt: str | None
    cited_by: str
    cited_at: dt.datetime


class EvidenceRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def cite(
        self,
        *,
        deal_id: int,
        kind: str,
        source: str,
        reference: str,
        excerpt: str | None,
        by: str,
        at: dt.datetime,
    ) -> Citation:
        """Return the citation written: a field cited again keeps its earlier citations."""
        row = DealEvidence(
            deal_id=deal_id,
            field=kind,
            source=source,
            reference=reference,
            excerpt=excerpt,
            cited_by=by,
            cited_at=at,
        )
        self.session.add(row)
        self.session.flush()
        return _citation(row)

    def for_deal(self, deal_id: int) -> list[Citation]:
        """Return every citation of the deal, oldest first."""
        rows = self.session.scalars(
            select(DealEvidence)
            .where(DealEvidence.deal_id == deal_id)
            .order_by(DealEvidence.cited_at, DealEvidence.id)
        )
        return [_citation(row) for row in rows]

    def latest_per_kind(self, deal_id: int) -> dict[str, Citation]:
        """Return the latest citation of each kind the deal has, in EVIDENCE_KINDS order."""
        latest: dict[str, Citation] = {}
        for citation in self.for_deal(deal_id):
            latest[citation.kind] = citation  # oldest first: the last one seen wins
        return {kind: latest[kind] for kind in EVIDENCE_KINDS if kind in latest}

    def cited_kinds(self, deal_id: int) -> frozenset[str]:
        """Return the kinds the deal has any citation for."""
        rows = self.session.scalars(
            select(DealEvidence.field).where(DealEvidence.deal_id == deal_id).distinct()
        )
        return frozenset(rows)

    def move_uncited(self, *, from_deal: int, to_deal: int) -> frozenset[str]:
        """Return the kinds whose citations moved from `from_deal` to `to_deal`: those
        `to_deal` has none of (what it already cites is kept, as a merge keeps its fields)."""
        kinds = self.cited_kinds(from_deal) - self.cited_kinds(to_deal)
        if kinds:
            self.session.execute(
                update(DealEvidence)
                .where(DealEvidence.deal_id == from_deal, DealEvidence.field.in_(kinds))
                .values(deal_id=to_deal)
            )
        return kinds


def _citation(row: DealEvidence) -> Citation:
    return Citation(
        id=row.id,
        deal_id=row.deal_id,
        kind=row.field,
        source=row.source,
        reference=row.reference,
        excerpt=row.excerpt,
        cited_by=row.cited_by,
        cited_at=row.cited_at,
    )
