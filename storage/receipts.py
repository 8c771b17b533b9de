"""Receipts of Slack requests: claimed once across every instance sharing the database."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from storage.database import insert_ignoring_conflicts
from storage.models import SlackRequestReceipt

_receipts = SlackRequestReceipt.__table__


class RequestReceiptRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def claim(self, key: str, *, now: dt.datetime, expires_at: dt.datetime) -> bool:
        """Return True if this call is the first to claim `key` (or its old claim expired).

        One statement decides, so two instances handed the same request cannot both win.
        """
        inserted = self.session.execute(
            insert_ignoring_conflicts(self.session, _receipts, ["key"])
            .values(key=key, expires_at=expires_at)
            .returning(_receipts.c.key)
        ).scalar()
        if inserted is not None:
            return True
        # An expired receipt is history, not a duplicate: the first to renew it wins.
        renewed = self.session.execute(
            update(SlackRequestReceipt)
            .where(SlackRequestReceipt.key == key, SlackRequestReceipt.expires_at <= now)
            .values(expires_at=expires_at)
            .execution_options(synchronize_session=False)
        )
        return renewed.rowcount == 1

    def purge_expired(self, *, now: dt.datetime) -> int:
        """Return how many expired receipts were deleted."""
        result = self.session.execute(
            delete(SlackRequestReceipt)
            .where(SlackRequestReceipt.expires_at <= now)
            .execution_options(synchronize_session=False)
        )
        return result.rowcount
