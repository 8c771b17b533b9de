"""HubSpot sync against the fake portal: a first sync of 100,000 deals, then 1,000 changes.

    python -m bench.crm_sync_hubspot [--deals 100000] [--changes 1000]
        [--requests-per-second 4] [--ten-second-limit 190] [--daily-limit 500000]

The real hubspot-api-client talks to `tests/fakes/hubspot_api.FakeHubSpot` on 127.0.0.1 with
its limits on: a rolling ten-second window (429 past it, no Retry-After, as HubSpot answers)
and a daily allowance, with HubSpot's rate headers on every answer. The first sync is
`HubSpotConnector.pull(None)`: the deals listed 100 a page, their contacts and tasks through
v4 association batch reads (1,000 deals each) and 100-id batch reads. The incremental sync is
`pull(cursor)` after `--changes` deals changed: search pages of 200 by `hs_lastmodifieddate`.

It prints the time of each, the requests spent, their share of the daily allowance and of
the allowed request rate, and for the incremental sync the share a `crm-sync` run every 5
minutes (288 a day) would spend if each saw this many changes. Targets: the first sync spends
under 2% of the daily allowance, the 5-minute schedule under 20%, and no request is refused
with a 429. Exit 0 on PASS, 1 on a MISS, 2 when the run itself failed (a deal missing).
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import time

from crm.hubspot import HubSpotConnector
from domain.clock import FixedClock
from tests.fakes.hubspot_api import DEFAULT_STAGES, FakeHubSpot

START = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)
RUNS_PER_DAY = 24 * 60 // 5  # the crm-sync job runs every 5 minutes
FIRST_SYNC_SHARE_TARGET = 0.02
SCHEDULE_SHARE_TARGET = 0.20


class SteppingClock:
    """The portal's clock: a millisecond on per reading, so modifications are ordered."""

    def __init__(self, at: dt.datetime) -> None:
        self.at = at

    def now(self) -> dt.datetime:
        self.at += dt.timedelta(milliseconds=1)
        return self.at


def seed(fake: FakeHubSpot, *, deals: int) -> list[str]:
    """Seed a plausible portal: owners, deals across the stages, contacts and tasks."""
    rng = random.Random(11)
    owners = [
        fake.add_owner(email=f"rep{n}@example.com", first_name=f"Rep {n}") for n in range(200)
    ]
    stages = [stage_id for stage_id, *_ in DEFAULT_STAGES]
    ids: list[str] = []
    for n in range(deals):
        close = START.date() + dt.timedelta(days=rng.randrange(-90, 270))
        deal_id = fake.add_deal(
            dealname=f"Deal {n}",
            amount=str(rng.randrange(1_000, 500_000)),
            dealstage=rng.choice(stages),
            closedate=f"{close.isoformat()}T00:00:00Z",
            hubspot_owner_id=rng.choice(owners),
            hs_next_step="Follow up" if n % 2 else "",
        )
        if n % 2 == 0:
            contact = fake.add_contact(
                firstname="Buyer", lastname=str(n), email=f"b{n}@example.com"
            )
            fake.associate("deals", deal_id, "contacts", contact, label="Decision maker")
        if n % 3 == 0:
            fake.add_task(deal_id=deal_id, hs_task_subject="Call", hubspot_owner_id=owners[0])
        ids.append(deal_id)
    return ids


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--changes", type=int, default=1_000)
    parser.add_argument("--requests-per-second", type=float, default=4.0)
    parser.add_argument("--ten-second-limit", type=int, default=190)
    parser.add_argument("--daily-limit", type=int, default=500_000)
    args = parser.parse_args(argv)

    clock = SteppingClock(START)
    fake = FakeHubSpot(
        clock=clock,
        requests_per_ten_seconds=args.ten_second_limit,
        daily_limit=args.daily_limit,
    )
    began = time.perf_counter()
    ids = seed(fake, deals=args.deals)
    print(f"seeded {len(ids):,} deals in {time.perf_counter() - began:.1f}s")
    allowed_per_second = args.ten_second_limit / 10
    with fake:
        connector = HubSpotConnector(
            access_token=fake.token,
            api_url=fake.url,
            clock=FixedClock(at=clock.at + dt.timedelta(hours=1)),
            requests_per_second=args.requests_per_second,
        )
        calls = len(fake.calls)
        began = time.perf_counter()
        seen: set[str] = set()
        contacts = tasks = 0
        cursor = None
        for batch in connector.pull(None):
            for deal in batch.deals:
                seen.add(deal.id)
                contacts += len(deal.contacts)
                tasks += len(deal.tasks)
            cursor = batch.cursor
        first_seconds = time.perf_counter() - began
        first_requests = len(fake.calls) - calls
        if seen != set(ids) or not cursor:
            print(f"FAILED: the first sync saw {len(seen):,} of {len(ids):,} deals")
            return 2

        clock.at += dt.timedelta(minutes=5)
        changed = random.Random(5).sample(ids, min(args.changes, len(ids)))
        for deal_id in changed:
            fake.set_deal(deal_id, hs_next_step="Send the order form")
        calls = len(fake.calls)
        began = time.perf_counter()
        pulled: set[str] = set()
        for batch in connector.pull(cursor):
            pulled.update(deal.id for deal in batch.deals)
        incremental_seconds = time.perf_counter() - began
        incremental_requests = len(fake.calls) - calls
        if not set(changed) <= pulled:
            print(f"FAILED: the incremental sync missed {len(set(changed) - pulled)} changes")
            return 2
        refused = sum(1 for call in fake.calls if call.status == 429)

    first_share = first_requests / args.daily_limit
    schedule_share = incremental_requests * RUNS_PER_DAY / args.daily_limit
    first_rate = first_requests / first_seconds / allowed_per_second
    incremental_rate = incremental_requests / incremental_seconds / allowed_per_second
    print(
        f"first sync: {len(seen):,} deals, {contacts:,} contacts, {tasks:,} tasks in "
        f"{first_seconds:.1f}s ({len(seen) / first_seconds:,.0f} deals/s), {first_requests} "
        f"requests = {first_share:.2%} of a daily allowance of {args.daily_limit:,}, "
        f"{first_rate:.0%} of the allowed {allowed_per_second:g} requests/s"
    )
    print(
        f"incremental sync: {len(changed):,} changes ({len(pulled):,} deals read) in "
        f"{incremental_seconds:.2f}s, {incremental_requests} requests "
        f"({incremental_rate:.0%} of the allowed rate); every 5 minutes that is "
        f"{schedule_share:.2%} of the daily allowance; 429 answers: {refused}"
    )
    passed = (
        first_share <= FIRST_SYNC_SHARE_TARGET
        and schedule_share <= SCHEDULE_SHARE_TARGET
        and refused == 0
    )
    print(
        f"ratio first-sync share / target {first_share / FIRST_SYNC_SHARE_TARGET:.2f}, "
        f"schedule share / target {schedule_share / SCHEDULE_SHARE_TARGET:.2f}: "
        f"{'PASS' if passed else 'MISS'}"
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
