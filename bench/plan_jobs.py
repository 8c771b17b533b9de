"""Planning time of `chase-next-steps` and `pipeline-accuracy` on a big SQLite pipeline.

    python -m bench.plan_jobs [--deals 100000] [--reps 1000]

Seeds 100,000 open deals across 1,000 reps in 20 teams and five timezones (with next steps,
contacts and close-date history), then times each job's plan function: working out who gets
what, with no Slack calls. It counts the SQL statements each plan runs (set-based planning
is a handful, whatever the number of deals) and prints the ratio against a per-deal loop
(one ORM load and lazy loads per deal), timed on a sample and scaled up.
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from slack_sdk import WebClient
from sqlalchemy import event, insert, select

from bot.jobs_cli import context_factory
from bot.settings import load_settings
from domain.checks import DealFacts, default_checks, fired_checks
from handlers.blocks import Reply
from reminders.accuracy import plan_accuracy
from reminders.chase import plan_chase
from storage.database import Database
from storage.migrate import upgrade
from storage.models import Contact, Deal, DealChange, NextStep, Team, TeamMember

NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)  # a Monday, daytime in every zone below
ZONES = ("America/New_York", "America/Chicago", "America/Denver", "Europe/London", "Europe/Paris")
STAGES = ("prospecting", "discovery", "demo", "proposal", "negotiation")


def seed(database: Database, *, deals: int, reps: int) -> None:
    rng = random.Random(7)
    rep_ids = [f"U{index:08d}" for index in range(reps)]
    teams = 20
    with database.session() as session:
        session.execute(
            insert(Team),
            [
                {
                    "id": t + 1,
                    "name": f"Team {t}",
                    "name_key": f"team {t}",
                    "channel_id": f"C{t:08d}",
                    "timezone": ZONES[t % len(ZONES)],
                    "created_by": "U0ADMIN",
                    "created_at": NOW,
                }
                for t in range(teams)
            ],
        )
        session.execute(
            insert(TeamMember),
            [
                {"team_id": i % teams + 1, "user_id": rep, "role": "rep"}
                for i, rep in enumerate(rep_ids)
            ]
            + [
                {"team_id": t + 1, "user_id": f"UM{t:07d}", "role": "manager"} for t in range(teams)
            ],
        )
    day = NOW.date()
    batch = 10_000
    for start in range(0, deals, batch):
        rows, steps, contacts, changes = [], [], [], []
        for deal_id in range(start + 1, min(deals, start + batch) + 1):
            created = NOW - dt.timedelta(days=rng.randint(1, 120))
            close = day + dt.timedelta(days=rng.randint(-20, 90))
            rows.append(
                {
                    "id": deal_id,
                    "account": f"Account {deal_id}",
                    "account_key": f"account {deal_id}",
                    "owner_id": rep_ids[deal_id % reps],
                    "amount": Decimal(rng.randint(5, 500) * 1000) if rng.random() > 0.05 else None,
                    "currency": "USD",
                    "stage": rng.choice(STAGES),
                    "stage_entered_at": created,
                    "close_date": close,
                    "forecast_category": rng.choice(("pipeline", "best_case", "commit")),
                    "status": "open",
                    "buying_criteria": "SSO" if rng.random() > 0.4 else None,
                    "created_by": rep_ids[deal_id % reps],
                    "created_at": created,
                    "updated_at": created,
                    "last_touch_at": created + dt.timedelta(days=rng.randint(0, 30)),
                }
            )
            if rng.random() < 0.7:
                steps.append(
                    {
                        "deal_id": deal_id,
                        "what": "Follow up",
                        "owner_id": rep_ids[deal_id % reps] if rng.random() > 0.05 else None,
                        "due_date": day + dt.timedelta(days=rng.randint(-10, 30)),
                        "done": False,
                        "created_by": rep_ids[deal_id % reps],
                        "created_at": created,
                    }
                )
            for _ in range(rng.randint(0, 3)):
                contacts.append({"deal_id": deal_id, "name": "Pat", "role": "other"})
            for push in range(rng.choice((0, 0, 1, 2))):
                changes.append(
                    {
                        "deal_id": deal_id,
                        "field": "close_date",
                        "old_value": (close - dt.timedelta(days=30 * (push + 1))).isoformat(),
                        "new_value": (close - dt.timedelta(days=30 * push)).isoformat(),
                        "changed_by": rep_ids[deal_id % reps],
                        "changed_at": NOW - dt.timedelta(days=10 * (push + 1)),
                    }
                )
        with database.session() as session:
            session.execute(insert(Deal), rows)
            session.execute(insert(NextStep), steps)
            session.execute(insert(Contact), contacts)
            if changes:
                session.execute(insert(DealChange), changes)


@contextmanager
def counting_statements(database: Database) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(args[2])

    event.listen(database.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(database.engine, "before_cursor_execute", count)


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = action()
    return time.perf_counter() - started, result


@contextmanager
def timing_block_kit() -> Iterator[list[float]]:
    """Accumulate the time spent turning slack_sdk Block Kit models into dicts."""
    spent = [0.0]
    original = Reply.block_dicts

    def timed_block_dicts(self: Reply) -> list[dict[str, Any]]:
        started = time.perf_counter()
        try:
            return original(self)
        finally:
            spent[0] += time.perf_counter() - started

    Reply.block_dicts = timed_block_dicts  # type: ignore[method-assign]
    try:
        yield spent
    finally:
        Reply.block_dicts = original  # type: ignore[method-assign]


def facts_from_deal(deal: Deal) -> DealFacts:
    """Return the check facts of one loaded Deal, in Python: the approach measured here."""
    open_steps = [step for step in deal.next_steps if not step.done]
    dated = [step.due_date for step in open_steps if step.due_date is not None]
    return DealFacts(
        deal_id=deal.id,
        owner_id=deal.owner_id,
        account=deal.account,
        title=deal.title,
        stage=deal.stage,
        status=deal.status,
        forecast_category=deal.forecast_category,
        has_amount=deal.amount is not None,
        close_date=deal.close_date,
        open_steps=len(open_steps),
        open_steps_dated=len(dated),
        open_steps_without_owner=sum(1 for step in open_steps if step.owner_id is None),
        next_step_due=min(dated) if dated else None,
        stage_entered_at=deal.stage_entered_at,
        contacts=len(deal.contacts),
        has_economic_buyer=any(c.role == "economic_buyer" for c in deal.contacts),
        has_buying_criteria=bool(deal.buying_criteria),
        has_buying_process=bool(deal.buying_process),
        has_paper_process=bool(deal.paper_process),
        has_close_reason=bool(deal.close_reason),
    )


def per_deal_loop(database: Database, deal_ids: list[int]) -> int:
    """The shape the set-based queries replace: load each deal, lazy-load what checks need."""
    config = default_checks()
    fired = 0
    with database.session() as session:
        for deal_id in deal_ids:
            deal = session.get(Deal, deal_id)
            assert deal is not None
            len(deal.changes)  # close-date pushes
            fired += len(fired_checks(facts_from_deal(deal), NOW.date(), config))
    return fired


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=1_000)
    parser.add_argument("--sample", type=int, default=2_000, help="deals in the per-deal loop")
    arguments = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        upgrade(url)
        database = Database.from_url(url)
        seconds, _ = timed(lambda: seed(database, deals=arguments.deals, reps=arguments.reps))
        print(f"seeded {arguments.deals:,} open deals, {arguments.reps:,} reps in {seconds:.1f} s")
        settings = load_settings(_env_file=None, database_url=url)
        client = WebClient(base_url="http://127.0.0.1:9/api/")  # never called: planning only
        build = context_factory(settings, database=database, client=client)
        results: dict[str, float] = {}
        for name, plan in (("chase-next-steps", plan_chase), ("pipeline-accuracy", plan_accuracy)):
            with counting_statements(database) as statements, timing_block_kit() as rendering:
                seconds, messages = timed(lambda plan=plan: plan(build(NOW, None)))
            reads = sum(1 for s in statements if s.lstrip().upper().startswith("SELECT"))
            results[name] = seconds
            print(
                f"{name:<18} {seconds:6.2f} s to plan {len(messages):,} messages "
                f"({len(statements):,} SQL statements, {reads} of them SELECTs; "
                f"{rendering[0]:.2f} s of it rendering Block Kit)"
            )
        with database.session() as session:
            sample = list(session.scalars(select(Deal.id).limit(arguments.sample)))
        seconds, _ = timed(lambda: per_deal_loop(database, sample))
        loop_estimate = seconds * arguments.deals / len(sample)
        print(
            f"per-deal loop      {loop_estimate:6.2f} s estimated for the same deals "
            f"({seconds:.2f} s for {len(sample):,})"
        )
        ratio = loop_estimate / results["pipeline-accuracy"]
        print(f"ratio: per-deal loop / set-based pipeline-accuracy = {ratio:.1f}x")
        database.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
