"""Workers racing for one trigger: the claim lets exactly one of them make the draft."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import event

from domain.changes import DealRef
from domain.deals import Actor
from reminders.email.backends import DraftResult, Mailbox, OutboxBackend
from reminders.email.message import DraftMessage
from storage.follow_ups import FollowUpRepository
from tests.reminders.email.conftest import Drafting, on_both_backends


class CountingOutbox(OutboxBackend):
    """The outbox backend, counting how often a draft is asked for."""

    def __init__(self, *, directory: Path) -> None:
        super().__init__(directory=directory)
        self.created: list[str] = []

    def create_draft(
        self, message: DraftMessage, *, mailbox: Mailbox, look_first: bool
    ) -> DraftResult:
        self.created.append(message.message_id)
        return super().create_draft(message, mailbox=mailbox, look_first=look_first)


@on_both_backends
def test_two_workers_claiming_one_pending_trigger_make_one_draft(drafting: Drafting) -> None:
    outbox = CountingOutbox(directory=drafting.tmp_path / "outbox")
    follow_ups = drafting.follow_ups(outbox)
    trigger_id = follow_ups.request(Actor("U0ANA"), DealRef("globex", None), None)
    both_saw_it_pending = threading.Barrier(2, timeout=10)

    # Each worker has read the trigger as pending in its own session; hold it at its claim
    # until the other has too, so the two UPDATEs meet instead of running one after another.
    def meet_at_the_claim(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("UPDATE follow_up_triggers") and "attempts +" in statement:
            both_saw_it_pending.wait()

    engine = drafting.database.engine
    event.listen(engine, "before_cursor_execute", meet_at_the_claim)
    try:
        with ThreadPoolExecutor(max_workers=2) as workers:
            outcomes = list(workers.map(lambda _: follow_ups.draft(trigger_id), range(2)))
    finally:
        event.remove(engine, "before_cursor_execute", meet_at_the_claim)

    assert sorted(o.status for o in outcomes) == ["busy", "drafted"]
    assert len(outbox.created) == 1
    assert len(list(outbox.directory.glob("*.eml"))) == 1
    with drafting.database.session() as session:
        trigger = FollowUpRepository(session).get(trigger_id)
        assert trigger is not None
        assert (trigger.status, trigger.attempts) == ("drafted", 1)  # the loser counted none
