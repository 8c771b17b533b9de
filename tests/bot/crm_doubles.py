"""A stand-in for `crm.sync.CrmSync` that the CRM wiring tests drive.

The wiring (CLI, jobs, webhook) is tested here; the engine has its own tests. The double
takes CrmSync's keywords, records what it is asked, and can raise or tell its notices
something the way the engine would.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from crm.sync import CrmNotices, CrmStatus, SyncReport

Effect = Callable[["EngineDouble"], None]


@dataclass
class EngineScript:
    """What every engine built from one factory answers; shared across builds."""

    report: SyncReport = field(default_factory=lambda: SyncReport(3, 2, 1, 0))
    status: CrmStatus | None = None
    error: Exception | None = None
    effect: Effect | None = None  # e.g. tell the notices about a conflict
    calls: list[tuple[str, Any]] = field(default_factory=list)
    built_with: list[dict[str, Any]] = field(default_factory=list)

    def factory(self, **keywords: Any) -> EngineDouble:
        self.built_with.append(keywords)
        return EngineDouble(script=self, notices=keywords["notices"], keywords=keywords)


@dataclass
class EngineDouble:
    script: EngineScript
    notices: CrmNotices
    keywords: dict[str, Any]

    def _answer(self, call: str, argument: Any) -> SyncReport:
        self.script.calls.append((call, argument))
        if self.script.effect is not None:
            self.script.effect(self)
        if self.script.error is not None:
            raise self.script.error
        return self.script.report

    def run(self, *, full: bool = False, dry_run: bool = False) -> SyncReport:
        return self._answer("run", {"full": full, "dry_run": dry_run})

    def push_pending(self) -> SyncReport:
        return self._answer("push_pending", None)

    def pull_deals(self, ids: Sequence[str]) -> SyncReport:
        return self._answer("pull_deals", tuple(ids))

    def status(self) -> CrmStatus:
        self.script.calls.append(("status", None))
        if self.script.error is not None:
            raise self.script.error
        assert self.script.status is not None
        return self.script.status


def status(**overrides: Any) -> CrmStatus:
    values: dict[str, Any] = {
        "kind": "salesforce",
        "connected": True,
        "message": None,
        "last_pull_at": dt.datetime(2026, 12, 1, 10, 5, tzinfo=dt.UTC),
        "cursor": "2026-12-01T10:04:59Z",
        "pending_pushes": 2,
        "refused_pushes": 1,
        "owners_without_slack_user": ("ana@initech.com", "ben@initech.com"),
    }
    values.update(overrides)
    return CrmStatus(**values)
