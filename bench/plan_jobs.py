"""Planning time and memory of the weekly and daily jobs at a large org, each beside its SQL.

    python -m bench.plan_jobs [--deals 100000] [--reps 1000] [--database URL] [--reuse]
                              [--rounds 3] [--profile FILE]

Seeds open deals (and a few closed recently) across reps in 20 teams and five timezones,
10% of them in EUR with `fx_rates` rows to convert them, with next steps, contacts,
close-date pushes (some in the last week), moves to commit, closed deals' history (the
status change and the close date set to the day closed) and a weekly snapshot for each week
of the quarter so far (some deals stood differently then), so the digest's flow, accuracy,
calibration and trend all have data. Then plans `chase-next-steps`, `pipeline-accuracy` and
`manager-digest`: working out who gets what, with no Slack calls (the client points at a
closed port: the digest's `users.info` lookups fail at once and the chart shows ids).
Each job runs in a child process of its own so its peak RSS (`ru_maxrss`) is its own; each is
printed beside its floor, run through the driver's cursor with no ORM and no per-row Python,
so the ratio is what planning adds to the database's own work:
- the chase's floor is the bare SQL selecting the same facts and writing its nudges (COPY on
  PostgreSQL);
- the accuracy post's and the digest's floor replays the job's own statements, recorded as it
  ran (SQL and parameters: facts, rates, history, calibration, trend, quotas, nudges, and the
  week's snapshot and scores written), every row fetched and dropped — so every read the job
  adds is in its floor too.
The digest's stages are timed one by one (chart drawing has no SQL: it is printed, and the
ratio without it), and matplotlib's one-off import and first chart are timed apart.
`--database` takes a PostgreSQL server URL (a throwaway database is created on it); without
it a SQLite file is used. `--reuse` keeps the seeded database (named after the seed's version
and sizes) and reuses it on the next run. Each job and its floor run `--rounds` times,
alternating, and the fastest of each is compared (a shared machine's noise only adds time).
`--profile FILE` writes each job's cProfile stats to FILE.<job>.pstats. Also prints the ratio
against a per-deal loop (one ORM load and lazy loads per deal), timed on a sample.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import json
import os
import pickle
import random
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from slack_sdk import WebClient
from sqlalchemy import Connection, create_engine, event, insert, select, text
from sqlalchemy.engine import make_url

from bot.jobs_cli import context_factory
from bot.settings import load_settings
from domain.checks import DealFacts, default_checks, fired_checks
from domain.dates import quarter_bounds
from handlers.blocks import Reply
from reminders import digest as digest_module
from reminders.accuracy import plan_accuracy
from reminders.chase import POST_MORTEM_WINDOW, plan_chase
from reminders.digest import plan_digest
from reminders.jobs import JobContext, OutgoingMessage, collect_garbage_less_often, week_period
from storage.database import Database, normalize_url
from storage.facts import deal_facts_query
from storage.migrate import upgrade
from storage.models import Deal, FxRate, Team, TeamMember

NOW = dt.datetime(2026, 11, 23, 15, 0, tzinfo=dt.UTC)  # a Monday, daytime in every zone below
ZONES = ("America/New_York", "America/Chicago", "America/Denver", "Europe/London", "Europe/Paris")
STAGES = ("prospecting", "discovery", "demo", "proposal", "negotiation")
TEAMS = 20
# The second currency: this share of deals is in EUR, converted by the rates below.
EUR_SHARE = 0.10
FX_RATES = ((dt.date(2025, 1, 1), "1.0800000000"), (dt.date(2026, 10, 1), "1.1000000000"))
# Weekly snapshots from the quarter's first week to last week: the trend's points, the commit
# called at the quarter's start, and last week's snapshot the flow compares with.
SNAPSHOT_WEEKS = tuple(
    week_period(NOW - dt.timedelta(days=7 * back), ZoneInfo("UTC")) for back in range(8, 0, -1)
)
# Bumped when the seed changes, so `--reuse` never plans on an older seed.
SEED_VERSION = 2
JOBS: dict[str, Callable[[JobContext], Iterable[OutgoingMessage]]] = {
    "chase-next-steps": plan_chase,
    "pipeline-accuracy": plan_accuracy,
    "manager-digest": plan_digest,
}
# What the jobs write; emptied before each measurement so every run does the same work.
JOB_TABLES = ("nudges", "deal_snapshots", "accuracy_scores")
THIS_WEEK = week_period(NOW, ZoneInfo("UTC"))  # the same ISO week in every zone above at NOW
FETCH = 10_000


# --- seeding ---------------------------------------------------------------------------------


def seed(database: Database, *, deals: int, reps: int) -> None:
    """Seed teams, reps and `deals` deals: executemany on SQLite, COPY on PostgreSQL.

    Rows are plain tuples in the driver's own value types, written without SQLAlchemy's
    per-row processing: a million deals and their 3 million child rows in about a minute.
    """
    rep_ids = [f"U{index:08d}" for index in range(reps)]
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
                for t in range(TEAMS)
            ],
        )
        session.execute(
            insert(TeamMember),
            [
                {"team_id": i % TEAMS + 1, "user_id": rep, "role": "rep"}
                for i, rep in enumerate(rep_ids)
            ]
            + [
                {"team_id": t + 1, "user_id": f"UM{t:07d}", "role": "manager"} for t in range(TEAMS)
            ],
        )
        session.execute(
            insert(FxRate),
            [
                {
                    "currency": "EUR",
                    "effective_on": day,
                    "rate": Decimal(rate),
                    "set_by": "cli:bench",
                    "set_at": NOW,
                }
                for day, rate in FX_RATES
            ],
        )
    postgres = database.engine.dialect.name == "postgresql"
    raw = database.engine.raw_connection()
    try:
        cursor = raw.cursor()
        for batch in _seed_rows(deals=deals, rep_ids=rep_ids, postgres=postgres):
            for table, columns in SEED_COLUMNS.items():  # in foreign-key order
                names = ", ".join(columns)
                if postgres:
                    with cursor.copy(f"COPY {table} ({names}) FROM STDIN") as copy:
                        for row in batch[table]:
                            copy.write_row(row)
                else:
                    marks = ", ".join("?" * len(columns))
                    cursor.executemany(
                        f"INSERT INTO {table} ({names}) VALUES ({marks})", batch[table]
                    )
            raw.commit()
        if postgres:
            cursor.execute("SELECT setval(pg_get_serial_sequence('deals', 'id'), %s)", (deals,))
            raw.commit()
    finally:
        raw.close()
    if postgres:
        # What autovacuum would have done by the time a weekly job runs.
        with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.exec_driver_sql("VACUUM ANALYZE")


def _seed_rows(
    *, deals: int, rep_ids: list[str], postgres: bool
) -> Iterator[dict[str, list[tuple[Any, ...]]]]:
    """Yield batches of rows to seed (table -> rows in SEED_COLUMNS' order), in driver types."""
    rng = random.Random(7)
    day = NOW.date()

    # SQLite stores what SQLAlchemy's types would write: ISO text, UTC, no offset.
    def at(value: dt.datetime) -> Any:
        return value if postgres else value.strftime("%Y-%m-%d %H:%M:%S.%f")

    def on(value: dt.date) -> Any:
        return value if postgres else value.isoformat()

    created_at = [at(NOW - dt.timedelta(days=d)) for d in range(0, 200)]
    dates = {offset: on(day + dt.timedelta(days=offset)) for offset in range(-200, 200)}
    iso = {offset: (day + dt.timedelta(days=offset)).isoformat() for offset in range(-400, 200)}
    # Each snapshot week's Monday, as days before NOW, and its taken_at.
    weeks = [
        (week, (day - dt.date.fromisocalendar(*_week_parts(week), 1)).days)
        for week in SNAPSHOT_WEEKS
    ]
    done = False if postgres else 0
    batch = 20_000
    for start in range(0, deals, batch):
        rows, steps, contacts, changes, snapshots = [], [], [], [], []
        for deal_id in range(start + 1, min(deals, start + batch) + 1):
            owner = rep_ids[deal_id % len(rep_ids)]
            age = rng.randint(1, 120)
            close = rng.randint(-20, 90)
            amount = rng.randint(5, 500) * 1000 if rng.random() > 0.05 else None
            currency = "EUR" if rng.random() < EUR_SHARE else "USD"
            category = rng.choice(("pipeline", "best_case", "commit"))
            stage = rng.choice(STAGES)
            status, closed_at, closed_ago = "open", None, 0
            close_date = dates[close]
            if rng.random() < 0.03:
                status = rng.choice(("won", "lost"))
                closed_ago = rng.randint(0, min(age, 60))
                closed_at = created_at[closed_ago]
                # History convention: a closed deal's close date is the day it closed, and
                # the planned one is the old value of a close-date row written with the status.
                close_date = dates[-closed_ago]
                changes.append((deal_id, "status", "open", status, owner, closed_at))
                changes.append(
                    (deal_id, "close_date", iso[close], iso[-closed_ago], owner, closed_at)
                )
            rows.append(
                (
                    deal_id,
                    f"Account {deal_id}",
                    f"account {deal_id}",
                    owner,
                    amount,
                    currency,
                    stage,
                    created_at[age],
                    close_date,
                    category,
                    status,
                    closed_at,
                    "SSO" if rng.random() > 0.4 else None,
                    owner,
                    created_at[age],
                    created_at[age],
                    created_at[max(age - rng.randint(0, 30), 0)],
                )
            )
            if rng.random() < 0.7:
                step_owner = owner if rng.random() > 0.05 else None
                due = dates[rng.randint(-10, 30)]
                steps.append((deal_id, "Follow up", step_owner, due, done, owner, created_at[age]))
            contacts.extend((deal_id, "Pat", "other") for _ in range(rng.randint(0, 3)))
            # Close-date pushes, the latest within the last three weeks (some in the digest's
            # week), and a move to commit for a third of the commit deals.
            for push in range(rng.choice((0, 0, 1, 2))):
                when = rng.randint(0, 20) + 20 * push
                changes.append(
                    (
                        deal_id,
                        "close_date",
                        iso[close - 30 * (push + 1)],
                        iso[close - 30 * push],
                        owner,
                        created_at[min(when, age)],
                    )
                )
            if category == "commit" and rng.random() < 0.33:
                moved = created_at[rng.randint(closed_ago, age)]
                changes.append((deal_id, "forecast_category", "best_case", "commit", owner, moved))
            # Weekly snapshots of the deal while it was open; some weeks it stood differently
            # (an earlier close date, a lower amount, best case), so the flow has moves.
            for week, monday_ago in weeks:
                if age < monday_ago or (status != "open" and closed_ago >= monday_ago):
                    continue
                shifted = rng.random() < 0.1
                snapshots.append(
                    (
                        week,
                        deal_id,
                        owner,
                        stage,
                        amount if amount is None or not shifted else amount - 1000,
                        currency,
                        "best_case" if shifted and category == "commit" else category,
                        dates[close - 14] if shifted else dates[close],
                        created_at[monday_ago],
                    )
                )
        yield {
            "deals": rows,
            "next_steps": steps,
            "contacts": contacts,
            "deal_changes": changes,
            "deal_snapshots": snapshots,
        }


def _week_parts(week: str) -> tuple[int, int]:
    year, number = week.split("-W")
    return int(year), int(number)


SEED_COLUMNS: dict[str, tuple[str, ...]] = {
    "deals": (
        "id",
        "account",
        "account_key",
        "owner_id",
        "amount",
        "currency",
        "stage",
        "stage_entered_at",
        "close_date",
        "forecast_category",
        "status",
        "closed_at",
        "buying_criteria",
        "created_by",
        "created_at",
        "updated_at",
        "last_touch_at",
    ),
    "next_steps": ("deal_id", "what", "owner_id", "due_date", "done", "created_by", "created_at"),
    "contacts": ("deal_id", "name", "role"),
    "deal_changes": ("deal_id", "field", "old_value", "new_value", "changed_by", "changed_at"),
    "deal_snapshots": (
        "week",
        "deal_id",
        "owner_id",
        "stage",
        "amount",
        "currency",
        "forecast_category",
        "close_date",
        "taken_at",
    ),
}


# A statement as the driver ran it: SQL, parameters, executemany.
Recorded = tuple[str, Any, bool]


@contextmanager
def counting_statements(database: Database) -> Iterator[list[Recorded]]:
    """Record every statement the driver runs, with its parameters (the floor replays them)."""
    statements: list[Recorded] = []

    def count(*args: Any) -> None:
        statements.append((args[2], args[3], bool(args[5])))

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


# What the digest does beside the roll-up, timed one by one (names in reminders.digest).
DIGEST_STAGES = (
    "read_facts",
    "closed_figures",
    "forecast_accuracy",
    "week_flow",
    "rep_calibration",
    "weekly_trend",
    "rep_names",
    "forecast_chart",
)


@contextmanager
def timing_stages(module: Any, names: Sequence[str]) -> Iterator[dict[str, float]]:
    """Accumulate the seconds spent in each of `module`'s functions `names`, by name."""
    spent = dict.fromkeys(names, 0.0)
    originals = {name: getattr(module, name) for name in names}

    def timed_call(name: str) -> Callable[..., Any]:
        original = originals[name]

        def call(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                spent[name] += time.perf_counter() - started

        return call

    for name in names:
        setattr(module, name, timed_call(name))
    try:
        yield spent
    finally:
        for name, original in originals.items():
            setattr(module, name, original)


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


# --- the database under test -------------------------------------------------------------


@contextmanager
def bench_database(arguments: argparse.Namespace) -> Iterator[tuple[str, bool]]:
    """Yield (URL, already seeded) of the database to plan on; drop it unless `--reuse`."""
    name = f"dealbot_plan_jobs_v{SEED_VERSION}_{arguments.deals}_{arguments.reps}"
    if arguments.database is None or arguments.database.startswith("sqlite"):
        if arguments.database is not None:
            url = arguments.database
            yield url, arguments.reuse and _seeded(url, arguments.deals)
            return
        if arguments.reuse:
            url = f"sqlite:///{Path(tempfile.gettempdir()) / (name + '.sqlite3')}"
            seeded = _seeded(url, arguments.deals)
            if not seeded:
                for suffix in ("", "-wal", "-shm"):
                    with suppress(FileNotFoundError):
                        os.remove(make_url(url).database + suffix)  # type: ignore[operator]
            yield url, seeded
            return
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{Path(folder) / 'bench.sqlite3'}", False
        return
    # PostgreSQL: a database of our own on the server, as tests/databases.py makes them.
    server = make_url(normalize_url(arguments.database))
    if not arguments.reuse:
        name = f"dealbot_plan_jobs_{secrets.token_hex(6)}"
    url = server.set(database=name).render_as_string(hide_password=False)
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            exists = connection.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            )
            seeded = bool(exists) and _seeded(url, arguments.deals)
            if exists and not seeded:
                connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
            if not seeded:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield url, seeded
        finally:
            if not arguments.reuse:
                with admin.connect() as connection:
                    connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def _seeded(url: str, deals: int) -> bool:
    """Return whether `url` holds a bench database seeded with `deals` deals."""
    if url.startswith("sqlite") and not Path(str(make_url(url).database)).exists():
        return False
    engine = create_engine(normalize_url(url))
    try:
        with engine.connect() as connection:
            return connection.exec_driver_sql("SELECT count(*) FROM deals").scalar() == deals
    except Exception:
        return False
    finally:
        engine.dispose()


def reset_job_tables(database: Database) -> None:
    """Empty what the jobs write, so each measurement starts from the same state."""
    with database.session() as session:
        for table in JOB_TABLES:
            if table == "deal_snapshots":
                # The seeded weeks stay: they are history the digest reads.
                session.execute(
                    text("DELETE FROM deal_snapshots WHERE week >= :week"), {"week": THIS_WEEK}
                )
            else:
                session.execute(text(f"DELETE FROM {table}"))


# --- the measured children -----------------------------------------------------------------


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def run_job(database: Database, url: str, job: str, record: Path) -> dict[str, Any]:
    """Plan `job` as the scheduler would (Slack unreachable: planning only).

    The statements it ran are pickled to `record`, for its floor to replay bare.
    """
    settings = load_settings(_env_file=None, database_url=url)
    # Unreachable, and no retries: the job asks Slack for rep zones once, fails at once,
    # and plans with the stored zones (no retry back-off in the measured time).
    client = WebClient(base_url="http://127.0.0.1:9/api/", retry_handlers=[])
    build = context_factory(settings, database=database, client=client)
    context = build(NOW, None)
    collect_garbage_less_often()  # as in the scheduler's process (reminders/jobs.py)
    started_rss = peak_rss_mb()
    cpu = time.process_time()
    stages = DIGEST_STAGES if job == "manager-digest" else ()
    with (
        counting_statements(database) as statements,
        timing_block_kit() as rendering,
        timing_stages(digest_module, stages) as spent,
    ):
        # Consumed as run_job consumes a plan: message by message, nothing kept (run_job
        # records them in batches; recording is delivery's work, not timed here).
        seconds, messages = timed(lambda: sum(1 for _ in JOBS[job](context)))
    record.write_bytes(pickle.dumps(statements))
    return {
        "stages": spent,
        "seconds": seconds,
        "cpu": time.process_time() - cpu,
        "messages": messages,
        "statements": len(statements),
        "rendering": rendering[0],
        "rss_start": started_rss,
        "rss_peak": peak_rss_mb(),
    }


def fetch_bare(connection: Connection, statement: Any, parameters: dict[str, Any]) -> int:
    """Run `statement` and fetch every row through the driver's cursor; return the count.

    SQLAlchemy compiles the statement and binds the parameters once; the rows never pass
    through its result processing (PostgreSQL: a server-side cursor, like the jobs').
    """
    result = connection.execute(statement, parameters, execution_options={"stream_results": True})
    # A server-side cursor's result reads one row ahead at execute: counted here, the rest
    # fetched bare from the driver's cursor.
    rows = len(result.fetchmany(1))
    cursor = result.cursor
    while cursor is not None and (batch := cursor.fetchmany(FETCH)):
        rows += len(batch)
    result.close()
    return rows


def replay_floor(database: Database, record: Path) -> dict[str, Any]:
    """Time the job's own statements run again bare: the same SQL and parameters through the
    driver's cursor, every row fetched and dropped, no ORM, no per-row Python.

    What the job read (facts, history, calibration, trend, rates, quotas, nudges) and wrote
    (the week's snapshot, scores, nudges marked acted) is the database's share of the job:
    the ratio is what planning adds. Writes are replayed on emptied job tables, as the job ran.
    """
    statements: list[Recorded] = pickle.loads(record.read_bytes())
    reset_job_tables(database)
    started_rss = peak_rss_mb()
    rows = 0
    spent = {"reads": 0.0, "writes": 0.0}
    cpu = time.process_time()
    raw = database.engine.raw_connection()
    try:
        cursor = raw.cursor()
        for statement, parameters, many in statements:
            started = time.perf_counter()
            if many:
                cursor.executemany(statement, parameters)
            else:
                cursor.execute(statement, parameters)
            if cursor.description is not None:
                while batch := cursor.fetchmany(FETCH):
                    rows += len(batch)
            kind = "reads" if statement.lstrip()[:6].upper() in ("SELECT", "WITH") else "writes"
            spent[kind] += time.perf_counter() - started
        started = time.perf_counter()
        raw.commit()
        spent["writes"] += time.perf_counter() - started
    finally:
        raw.close()
    return {
        "seconds": spent["reads"] + spent["writes"],
        "cpu": time.process_time() - cpu,
        "reads": spent["reads"],
        "writes": spent["writes"],
        "rows": rows,
        "written": 0,
        "rss_start": started_rss,
        "rss_peak": peak_rss_mb(),
    }


def run_floor(database: Database) -> dict[str, Any]:
    """Time the bare SQL selecting the facts the chase plans from and writing its nudges."""
    with database.session() as session:
        owners = list(session.scalars(select(Deal.owner_id).distinct()))
    closed_since = NOW - POST_MORTEM_WINDOW - dt.timedelta(days=1)
    reads = [
        deal_facts_query(
            quarter=quarter_bounds(NOW.date()), closed_since=closed_since, owner_ids=owners
        )
    ]
    # The rows the job just wrote, written again bare: one executemany, driver values.
    with database.engine.begin() as connection:
        nudges: Sequence[Sequence[Any]] = connection.exec_driver_sql(
            "SELECT period, rep_id, deal_id, checks, nudged_at FROM nudges"
        ).all()
        connection.exec_driver_sql("DELETE FROM nudges")
    reset_job_tables(database)
    started_rss = peak_rss_mb()
    rows = 0
    cpu = time.process_time()
    with database.engine.connect() as connection:
        started = time.perf_counter()
        for statement, parameters in reads:
            rows += fetch_bare(connection, statement, parameters)
        read_seconds = time.perf_counter() - started
        connection.rollback()
    started = time.perf_counter()
    if nudges:
        columns = "period, rep_id, deal_id, checks, nudged_at"
        raw = database.engine.raw_connection()
        try:
            cursor = raw.cursor()
            if database.engine.dialect.name == "postgresql":
                # COPY: PostgreSQL's fastest bare write, so the floor is a true floor.
                with cursor.copy(f"COPY nudges ({columns}) FROM STDIN") as copy:
                    for row in nudges:
                        copy.write_row(tuple(row))
            else:
                cursor.executemany(
                    f"INSERT INTO nudges ({columns}) VALUES (?, ?, ?, ?, ?)",
                    [tuple(row) for row in nudges],
                )
            raw.commit()
        finally:
            raw.close()
    write_seconds = time.perf_counter() - started
    return {
        "seconds": read_seconds + write_seconds,
        "cpu": time.process_time() - cpu,
        "reads": read_seconds,
        "writes": write_seconds,
        "rows": rows,
        "written": len(nudges),
        "rss_start": started_rss,
        "rss_peak": peak_rss_mb(),
    }


# Times importing the chart module (matplotlib) and drawing one chart, in a fresh interpreter.
_CHART_ONE_OFF = """
import time
started = time.perf_counter()
import reminders.chart as chart
imported = time.perf_counter() - started
started = time.perf_counter()
chart.forecast_chart(title="t", currency="USD", reps=[], trend=[])
print(imported, time.perf_counter() - started)
"""


def chart_one_off() -> tuple[tuple[float, float], tuple[float, float]]:
    """Return (import s, first chart s) with matplotlib's font cache cold, then warm.

    Both are paid once per process (the scheduler's), not once per digest: the job children
    above import matplotlib before planning starts, so these are not in their times.
    """
    with tempfile.TemporaryDirectory() as folder:
        environment = {**os.environ, "MPLCONFIGDIR": folder}
        runs = []
        for _ in ("cold", "warm"):
            finished = subprocess.run(
                [sys.executable, "-c", _CHART_ONE_OFF],
                check=True,
                capture_output=True,
                text=True,
                env=environment,
            )
            imported, first = finished.stdout.split()
            runs.append((float(imported), float(first)))
    return runs[0], runs[1]


def child(
    kind: str, job: str, url: str, record: Path, profile: Path | None = None
) -> dict[str, Any]:
    """Run one measurement in a fresh interpreter and return what it printed."""
    command = [sys.executable, "-m", "bench.plan_jobs", "--child", kind, "--job", job]
    command += ["--database", url, "--record", str(record)]
    if profile is not None:
        command += ["--profile", str(profile)]
    finished = subprocess.run(command, check=False, capture_output=True, text=True)
    if finished.returncode:
        sys.stderr.write(finished.stderr)
        raise SystemExit(f"the {kind} of {job} failed")
    output = finished.stdout
    return json.loads(output.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=1_000)
    parser.add_argument(
        "--database", help="sqlite:///FILE, or a PostgreSQL server URL to create a database on"
    )
    parser.add_argument("--reuse", action="store_true", help="keep the seeded database, reuse it")
    parser.add_argument("--jobs", nargs="+", choices=list(JOBS), default=list(JOBS))
    parser.add_argument("--sample", type=int, default=2_000, help="deals in the per-deal loop")
    parser.add_argument(
        "--rounds", type=int, default=3, help="job and floor runs, alternating; the fastest count"
    )
    parser.add_argument("--child", choices=("job", "floor"), help=argparse.SUPPRESS)
    parser.add_argument("--job", choices=list(JOBS), help=argparse.SUPPRESS)
    parser.add_argument("--record", type=Path, help=argparse.SUPPRESS)
    parser.add_argument(
        "--profile", type=Path, help="cProfile each job's planning into FILE.<job>.pstats"
    )
    arguments = parser.parse_args(argv)
    if arguments.child:
        database = Database.from_url(arguments.database)
        if arguments.child == "job" and arguments.profile:
            with cProfile.Profile() as profile:
                result = run_job(database, arguments.database, arguments.job, arguments.record)
            profile.dump_stats(f"{arguments.profile}.{arguments.job}.pstats")
        elif arguments.child == "job":
            result = run_job(database, arguments.database, arguments.job, arguments.record)
        elif arguments.job == "chase-next-steps":
            result = run_floor(database)
        else:
            result = replay_floor(database, arguments.record)
        database.dispose()
        print(json.dumps(result))
        return 0
    with bench_database(arguments) as (url, seeded):
        if seeded:
            print(f"reusing the seeded database ({arguments.deals:,} deals)")
        else:
            upgrade(url)
            database = Database.from_url(url)
            seconds, _ = timed(lambda: seed(database, deals=arguments.deals, reps=arguments.reps))
            database.dispose()
            print(
                f"seeded {arguments.deals:,} deals (3% closed lately), {arguments.reps:,} reps "
                f"in {TEAMS} teams in {seconds:.1f} s"
            )
        database = Database.from_url(url)
        backend = database.engine.dialect.name
        print(f"{backend}: each job in its own process, beside the bare SQL of the same rows")
        # CPU seconds are this process's own: on SQLite the database works in-process, so
        # they compare job and SQL fairly on a busy machine; on PostgreSQL the server works
        # elsewhere and wall time is the measure.
        print(
            f"{'job':<18} {'job s':>7} {'SQL s':>7} {'ratio':>6} {'CPU ratio':>10} "
            f"{'peak RSS':>9}  {'messages':>8}  details"
        )
        for job in arguments.jobs:
            rounds = []
            for _ in range(arguments.rounds):
                reset_job_tables(database)
                with tempfile.TemporaryDirectory() as folder:
                    record = Path(folder) / "statements.pickle"
                    rounds.append(
                        (
                            child("job", job, url, record, arguments.profile),
                            child("floor", job, url, record),
                        )
                    )
            # The fastest round of each side: the least disturbed by the machine's other work
            # (a shared machine's noise only ever adds time); peak RSS is the largest seen.
            measured = min((job_run for job_run, _ in rounds), key=lambda run: run["seconds"])
            floor = min((floor_run for _, floor_run in rounds), key=lambda run: run["seconds"])
            measured["rss_peak"] = max(job_run["rss_peak"] for job_run, _ in rounds)
            ratio = measured["seconds"] / floor["seconds"]
            print(
                f"{job:<18} {measured['seconds']:7.2f} {floor['seconds']:7.2f} {ratio:5.2f}x "
                f"{measured['cpu'] / floor['cpu']:9.2f}x "
                f"{measured['rss_peak']:6.0f} MB  {measured['messages']:>8,}  "
                f"CPU s job {measured['cpu']:.2f} / SQL {floor['cpu']:.2f}; "
                f"SQL: {floor['rows']:,} rows read in {floor['reads']:.2f} s, writes "
                f"{floor['writes']:.2f} s; job: {measured['statements']} statements, "
                f"{measured['rendering']:.2f} s rendering Block Kit, "
                f"{measured['rss_start']:.0f} MB before planning"
            )
            if measured["stages"]:
                print(
                    "  digest stages, s: "
                    + ", ".join(f"{name} {spent:.2f}" for name, spent in measured["stages"].items())
                )
                # Drawing has no SQL to compare with: the ratio of everything else too.
                drawing = measured["stages"]["forecast_chart"]
                print(
                    f"  without chart drawing: {measured['seconds'] - drawing:.2f} s, "
                    f"{(measured['seconds'] - drawing) / floor['seconds']:.2f}x its floor"
                )
        reset_job_tables(database)
        if "manager-digest" in arguments.jobs:
            cold, warm = chart_one_off()
            print(
                f"matplotlib, once per process: import {cold[0]:.2f} s and first chart "
                f"{cold[1]:.2f} s with its font cache cold, {warm[0]:.2f} s and {warm[1]:.2f} s "
                "warm"
            )
        if arguments.sample:
            with database.session() as session:
                sample = list(
                    session.scalars(
                        select(Deal.id).where(Deal.status == "open").limit(arguments.sample)
                    )
                )
            seconds, _ = timed(lambda: per_deal_loop(database, sample))
            print(
                f"per-deal loop: {seconds * arguments.deals / len(sample):.2f} s estimated for "
                f"every deal ({seconds:.2f} s for {len(sample):,}), one ORM load per deal"
            )
        database.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
