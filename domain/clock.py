"""The clock is passed in, so tests, the demo and `jobs run --now` can say what time it is."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """Return the current time, timezone-aware."""
        ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


class FixedClock:
    def __init__(self, *, at: dt.datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware datetime")
        self.at = at

    def now(self) -> dt.datetime:
        return self.at


class ZoneCache:
    """Remembers each user's timezone for a minute; team changes in this process clear it.

    Every command needs "today" for the user. A team's zone rarely changes, so one query
    less per command is worth a minute's delay when another instance changes a team.
    """

    TTL_SECONDS = 60.0

    def __init__(self) -> None:
        self._zones: dict[str, tuple[float, ZoneInfo]] = {}

    def get(self, user_id: str, load: Callable[[], ZoneInfo]) -> ZoneInfo:
        now = time.monotonic()
        cached = self._zones.get(user_id)
        if cached is not None and now - cached[0] < self.TTL_SECONDS:
            return cached[1]
        zone = load()
        self._zones[user_id] = (now, zone)
        return zone

    def cached(self, user_id: str) -> ZoneInfo | None:
        """Return the user's zone if remembered and fresh, else None (nothing is loaded)."""
        cached = self._zones.get(user_id)
        if cached is not None and time.monotonic() - cached[0] < self.TTL_SECONDS:
            return cached[1]
        return None

    def clear(self) -> None:
        self._zones.clear()
