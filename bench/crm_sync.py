"""Salesforce sync against the fake org: a first sync of 100,000 opportunities, then 1,000 changes.

    python -m bench.crm_sync [--opportunities 100000] [--changes 1000] [--api-limit 100000]

The real simple-salesforce talks TLS to `tests/fakes/salesforce_api.FakeSalesforce` on
127.0.0.1 with its daily request quota on (`Sforce-Limit-Info` on every answer, 403
REQUEST_LIMIT_EXCEEDED past it). The first sync is `SalesforceConnector.pull(None)`: a COUNT(),
a Bulk API 2.0 query job for the opportunities, then contact roles and tasks by
`OpportunityId IN (...)` in chunks. The incremental sync is `pull(cursor)` after 1,000
opportunities changed: one SOQL query with child subqueries, paged by nextRecordsUrl.

It prints the time of each, the requests spent and their share of the org's daily allowance,
and for the incremental sync the share a `crm-sync` run every 5 minutes (288 a day) would
spend if each saw this many changes. Targets: the first sync spends under 2% of the daily
allowance and the 5-minute schedule under 20% (Salesforce's own advice leaves the rest of the
quota to the org's other integrations; dealbot slows down past 80%). Exit 0 on PASS, 1 on a
MISS, 2 when the run itself failed (a deal missing, a wrong count).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from crm.salesforce import SalesforceConnector
from tests.fakes.salesforce_api import STANDARD_STAGES, FakeSalesforce, MovableClock

START = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)
RUNS_PER_DAY = 24 * 60 // 5  # the crm-sync job runs every 5 minutes
FIRST_SYNC_SHARE_TARGET = 0.02
SCHEDULE_SHARE_TARGET = 0.20


def seed(fake: FakeSalesforce, clock: MovableClock, *, opportunities: int) -> list[str]:
    """Seed a plausible org: accounts, owners, stages, contact roles and tasks."""
    rng = random.Random(11)
    owners = [fake.add_user(name=f"Rep {n}", email=f"rep{n}@example.com") for n in range(200)]
    stages = [label for label, *_ in STANDARD_STAGES]
    ids: list[str] = []
    for n in range(opportunities):
        if n % 7 == 0:
            clock.advance(1)  # several opportunities share each SystemModstamp second
        deal_id = fake.add_opportunity(
            Name=f"Opportunity {n}",
            account=f"Account {n % 5000}",
            Amount=rng.randrange(1_000, 500_000),
            StageName=rng.choice(stages),
            CloseDate=START.date() + dt.timedelta(days=rng.randrange(-90, 270)),
            OwnerId=rng.choice(owners),
            NextStep="Follow up" if n % 2 else None,
        )
        if n % 2 == 0:
            fake.add_contact_role(
                deal_id, name=f"Buyer {n}", email=f"buyer{n}@example.com", role="Economic Buyer"
            )
        if n % 3 == 0:
            fake.add_task(deal_id, Subject="Call", OwnerId=rng.choice(owners))
        ids.append(deal_id)
    return ids


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--opportunities", type=int, default=100_000)
    parser.add_argument("--changes", type=int, default=1_000)
    parser.add_argument("--api-limit", type=int, default=100_000)
    args = parser.parse_args(argv)

    clock = MovableClock(at=START)
    with tempfile.TemporaryDirectory() as ca_dir:
        fake = FakeSalesforce(clock=clock, api_limit=args.api_limit)
        fake.page_size = 2000
        began = time.perf_counter()
        ids = seed(fake, clock, opportunities=args.opportunities)
        print(f"seeded {len(ids):,} opportunities in {time.perf_counter() - began:.1f}s")
        with fake.start(Path(ca_dir)):
            os.environ["REQUESTS_CA_BUNDLE"] = str(fake.ca_bundle_path)
            connector = SalesforceConnector.login(
                login_url=fake.login_url,
                client_id=fake.CLIENT_ID,
                username=fake.USERNAME,
                private_key=fake.private_key_pem,
                api_version=fake.api_version,
                clock=clock,
                # The fake finishes a job at once; Salesforce's own wait is not measured here.
                bulk_poll_seconds=0,
            )

            used = fake.api_usage
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
            first_requests = fake.api_usage - used
            if seen != set(ids) or cursor is None:
                print(f"FAILED: the first sync saw {len(seen):,} of {len(ids):,} opportunities")
                return 2
            expected_contacts = (len(ids) + 1) // 2
            if contacts != expected_contacts:
                print(f"FAILED: {contacts:,} contact roles, expected {expected_contacts:,}")
                return 2

            clock.advance(300)
            changed = random.Random(5).sample(ids, min(args.changes, len(ids)))
            for deal_id in changed:
                fake.touch(deal_id, NextStep="Send the order form")
            used = fake.api_usage
            began = time.perf_counter()
            pulled: set[str] = set()
            for batch in connector.pull(cursor):
                pulled.update(deal.id for deal in batch.deals)
            incremental_seconds = time.perf_counter() - began
            incremental_requests = fake.api_usage - used
            if not set(changed) <= pulled:
                print(f"FAILED: the incremental sync missed {len(set(changed) - pulled)} changes")
                return 2

    first_share = first_requests / args.api_limit
    schedule_share = incremental_requests * RUNS_PER_DAY / args.api_limit
    print(
        f"first sync: {len(seen):,} opportunities, {contacts:,} contact roles, {tasks:,} tasks "
        f"in {first_seconds:.1f}s ({len(seen) / first_seconds:,.0f} opportunities/s), "
        f"{first_requests} requests = {first_share:.2%} of a daily allowance of "
        f"{args.api_limit:,}"
    )
    print(
        f"incremental sync: {len(changed):,} changes ({len(pulled):,} opportunities read, the "
        f"cursor's second included) in {incremental_seconds:.2f}s, {incremental_requests} "
        f"requests; every 5 minutes that is {schedule_share:.2%} of the daily allowance"
    )
    passed = first_share <= FIRST_SYNC_SHARE_TARGET and schedule_share <= SCHEDULE_SHARE_TARGET
    print(
        f"ratio first-sync share / target {first_share / FIRST_SYNC_SHARE_TARGET:.2f}, "
        f"schedule share / target {schedule_share / SCHEDULE_SHARE_TARGET:.2f}: "
        f"{'PASS' if passed else 'MISS'}"
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
