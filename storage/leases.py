"""Keeping a claim alive: renew its lease from a thread while the slow work runs.

Both outboxes (Slack messages, CRM pushes) claim a row with an owner and a short lease. A
call may outlast the lease (a Retry-After, a client's own retries), so a live sender renews
it every third of the lease; when the process dies the thread dies with it and the lease
lapses, which is how a dead claim is told from a slow one.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

logger = logging.getLogger(__name__)


@contextmanager
def renewing(*, every: float, renew: Callable[[], None], name: str) -> Iterator[None]:
    """Call `renew` every `every` seconds from a daemon thread until the block exits.

    A failed renewal is logged and tried again at the next beat, well inside the lease.
    """
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every):
            try:
                renew()
            except Exception:
                logger.warning("renewing leases (%s) failed", name, exc_info=True)

    thread = threading.Thread(target=beat, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
