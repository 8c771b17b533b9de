"""Slash-command latency: dealbot's full reply against a do-nothing Bolt app's bare ack.

"A rep's reply should come back before a do-nothing Slack app would even ack."

The no-op app is Bolt with its defaults and listeners that only ack(), served the default
way: one waitress server in this process. dealbot answers from a seeded SQLite database,
served either the same way (one waitress process, the default) or, with `--workers N`, as
production serves it: `dealbot serve --workers N` in a process of its own, gunicorn's
arbiter and N worker processes (the jobs left out with `--no-scheduler`, so none runs
during the measurement). Both listen on 127.0.0.1; the clients run in a process of their
own. The same signed requests go to both, in alternating rounds, and the report prints
percentiles and the dealbot / no-op ratios.

    python -m bench.ack_latency [--deals 100000] [--requests 2000] [--concurrency 8]
                                [--workers N]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import http.client
import json
import logging
import multiprocessing
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from sqlalchemy import insert

from bot.app import create_app
from bot.fake_slack import FakeSlackWebAPI
from bot.server import (
    SLACK_EVENTS_PATH,
    BackgroundServer,
    WSGIApp,
    build_wsgi_app,
    tune_gc_for_serving,
)
from bot.settings import load_settings
from storage.database import Database
from storage.deals import name_key
from storage.migrate import upgrade
from storage.models import Deal, NextStep
from tests.fakes.slack_signing import FORM_CONTENT_TYPE, sign, slash_command_body
from tests.fakes.slack_spec import slack_spec_dir

BOT_TOKEN = "xoxb-bench"
SIGNING_SECRET = "bench-secret"
HOST = "127.0.0.1"

REPS = 1_000
INSERT_CHUNK = 5_000
WARMUP_REQUESTS = 200
# Requests per app per round; small rounds interleave the apps finely enough that a burst
# of machine noise lands on both, large enough that each round reaches steady state.
ROUND_SIZE = 200
OVERALL_TIMEOUT_SECONDS = 600.0
REQUEST_TIMEOUT_SECONDS = 10.0
# `dealbot serve --workers N`: how long its workers may take to start, and to drain on stop.
GUNICORN_START_SECONDS = 60.0
GUNICORN_STOP_SECONDS = 40.0
WORKER_READY = re.compile(r"worker (\d+) ready")

P50_TARGET = 1.0
P99_TARGET = 1.5

OPEN_STAGES = ("prospecting", "discovery", "demo", "proposal", "negotiation")
OPEN_STAGE_WEIGHTS = (30, 25, 20, 15, 10)
FORECASTS = ("pipeline", "best_case", "commit", "omitted")
FORECAST_WEIGHTS = (55, 25, 15, 5)
NEXT_STEPS = (
    "Discovery call with the VP of Sales",
    "Send the security questionnaire",
    "Demo to the ops team",
    "Review redlines with legal",
    "Pricing call with procurement",
    "Intro to the economic buyer",
)

DEALBOT = "dealbot"
NOOP = "no-op"


class BenchmarkError(Exception):
    """The benchmark could not measure what it claims to (a bad response, a timeout)."""


@dataclass(frozen=True)
class CommandRequest:
    """One slash command, body pre-built so the client only signs and sends it."""

    label: str
    body: bytes
    # Text a right answer must contain (the account a /deal show asks for).
    expected_text: str | None = None


@dataclass
class Samples:
    """Latencies (seconds) by app and command label, and dealbot's bodies to verify."""

    latencies: dict[tuple[str, str], list[float]] = dataclasses.field(default_factory=dict)
    # Every sample in arrival order, as plain values that can cross a process boundary.
    recorded: list[tuple[str, CommandRequest, float, int, bytes]] = dataclasses.field(
        default_factory=list
    )
    dealbot_replies: list[tuple[CommandRequest, int, bytes]] = dataclasses.field(
        default_factory=list
    )
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    def add(
        self, app: str, request: CommandRequest, seconds: float, status: int, body: bytes
    ) -> None:
        with self.lock:
            self.recorded.append((app, request, seconds, status, body if app == DEALBOT else b""))
            self.latencies.setdefault((app, request.label), []).append(seconds)
            if app == DEALBOT:
                self.dealbot_replies.append((request, status, body))
            elif status != 200:
                raise BenchmarkError(f"no-op app answered {request.label} with HTTP {status}")


# --- seeding ------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeededPipeline:
    reps: tuple[str, ...]
    open_accounts: tuple[tuple[str, str], ...]  # (owner, account)


def seed_deals(database: Database, *, deals: int, rng: random.Random) -> SeededPipeline:
    """Return who owns what after bulk-inserting `deals` deals and next steps for half."""
    reps = tuple(f"U{number:05d}" for number in range(1, REPS + 1))
    now = dt.datetime.now(dt.UTC)
    today = now.date()
    open_accounts: list[tuple[str, str]] = []
    deal_rows: list[dict[str, Any]] = []
    step_rows: list[dict[str, Any]] = []

    def flush() -> None:
        with database.session() as session:
            if deal_rows:
                session.execute(insert(Deal), deal_rows)
            if step_rows:
                session.execute(insert(NextStep), step_rows)
        deal_rows.clear()
        step_rows.clear()

    for deal_id in range(1, deals + 1):
        owner = reps[(deal_id - 1) % REPS]
        account = f"Account {deal_id:06d}"
        roll = rng.random()
        status = "open" if roll < 0.8 else ("won" if roll < 0.9 else "lost")
        if status == "open":
            stage = rng.choices(OPEN_STAGES, OPEN_STAGE_WEIGHTS)[0]
            open_accounts.append((owner, account))
            closed_at = None
            # Some deals sit past their close date: the slippage dealbot exists to show.
            close_date = today + dt.timedelta(days=rng.randint(-20, 180))
        else:
            stage = "closed_won" if status == "won" else "closed_lost"
            closed_at = now - dt.timedelta(days=rng.randint(1, 365))
            close_date = closed_at.date()
        created_at = now - dt.timedelta(days=rng.randint(10, 400))
        deal_rows.append(
            {
                "id": deal_id,
                "account": account,
                "account_key": name_key(account),
                "title": None,
                "title_key": None,
                "owner_id": owner,
                # Log-uniform between 5k and 500k, rounded like a rep would quote it.
                "amount": Decimal(round(5_000 * 100 ** rng.random(), -2)),
                "currency": "USD",
                "stage": stage,
                "stage_entered_at": created_at + dt.timedelta(days=rng.randint(0, 9)),
                "close_date": close_date,
                "forecast_category": rng.choices(FORECASTS, FORECAST_WEIGHTS)[0],
                "status": status,
                "created_by": owner,
                "created_at": created_at,
                "updated_at": now - dt.timedelta(days=rng.randint(0, 9)),
                "last_touch_at": now - dt.timedelta(days=rng.randint(0, 30)),
                "closed_at": closed_at,
            }
        )
        if rng.random() < 0.5:
            step_rows.append(
                {
                    "deal_id": deal_id,
                    "what": rng.choice(NEXT_STEPS),
                    "owner_id": owner if rng.random() < 0.9 else None,
                    "due_date": today + dt.timedelta(days=rng.randint(-10, 30)),
                    "done": status != "open",
                    "done_at": closed_at,
                    "created_by": owner,
                    "created_at": created_at,
                }
            )
        if len(deal_rows) >= INSERT_CHUNK:
            flush()
    flush()
    return SeededPipeline(reps=reps, open_accounts=tuple(open_accounts))


# --- the two apps -------------------------------------------------------------------------


def build_noop_app(fake: FakeSlackWebAPI) -> App:
    """Return a Bolt app with default settings whose command listeners only ack()."""
    app = App(
        token=BOT_TOKEN,
        signing_secret=SIGNING_SECRET,
        client=WebClient(base_url=fake.base_url, token=BOT_TOKEN),
    )

    def just_ack(ack: Ack) -> None:
        ack()

    app.command("/pipeline")(just_ack)
    app.command("/deal")(just_ack)
    return app


@contextmanager
def serving(wsgi: WSGIApp) -> Iterator[int]:
    """Yield the port of the one-process waitress server `dealbot serve` falls back to."""
    server = BackgroundServer(wsgi, host=HOST).start()
    try:
        yield server.port
    finally:
        server.stop()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving_with_gunicorn(
    *, workers: int, database_url: str, slack_api_url: str, folder: Path
) -> Iterator[int]:
    """Yield the port of `dealbot serve --workers N` run as a command, once every worker is up.

    The command runs in a folder of its own (no stray `.env`), its log (gunicorn's access
    lines included, as in production) in a file there; SIGTERM stops it, as an
    orchestrator would.
    """
    port = free_port()
    project = Path(__file__).resolve().parents[1]
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SLACK_", "DEALBOT_", "GMAIL_", "GOOGLE_", "HUBSPOT_", "CRM_"))
        and name not in ("DATABASE_URL", "HOST", "PORT")
    }
    environment.update(
        SLACK_BOT_TOKEN=BOT_TOKEN,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack_api_url,
        DATABASE_URL=database_url,
        HOST=HOST,
        PORT=str(port),
        PYTHONPATH=os.pathsep.join(filter(None, [str(project), os.environ.get("PYTHONPATH")])),
    )
    log_path = folder / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "bot.cli", "serve", "--workers", str(workers), "--no-scheduler"],
            cwd=folder,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def served_log() -> str:
        return log_path.read_text(encoding="utf-8", errors="replace")

    try:
        deadline = time.monotonic() + GUNICORN_START_SECONDS
        while len(WORKER_READY.findall(served_log())) < workers:
            if process.poll() is not None:
                raise BenchmarkError(f"dealbot serve exited:\n{served_log()[-2000:]}")
            if time.monotonic() > deadline:
                raise BenchmarkError(f"dealbot serve did not start:\n{served_log()[-2000:]}")
            time.sleep(0.1)
        yield port
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=GUNICORN_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# --- load ---------------------------------------------------------------------------------


def build_requests(
    count: int, pipeline: SeededPipeline, *, response_url: str, rng: random.Random, first: int = 0
) -> list[CommandRequest]:
    """Return `count` commands, /pipeline and /deal show in equal shares, shuffled.

    Each carries a trigger id of its own, numbered from `first`, as every command Slack
    sends does: the same body signed in the same second would be a replay, answered empty.
    """
    requests = []
    for index in range(count):
        trigger_id = f"{first + index}.{rng.getrandbits(32):08x}"
        if index % 2 == 0:
            user_id = rng.choice(pipeline.reps)
            body = slash_command_body(
                "/pipeline", "", user_id=user_id, response_url=response_url, trigger_id=trigger_id
            )
            requests.append(CommandRequest("/pipeline", body))
        else:
            owner, account = rng.choice(pipeline.open_accounts)
            body = slash_command_body(
                "/deal",
                f"show {account}",
                user_id=owner,
                response_url=response_url,
                trigger_id=trigger_id,
            )
            requests.append(CommandRequest("/deal show", body, expected_text=account))
    rng.shuffle(requests)
    return requests


# What a kept-alive connection the server has closed meanwhile raises on its next use.
CLOSED_BY_SERVER = (BrokenPipeError, ConnectionResetError, http.client.RemoteDisconnected)


def post_command(connection: http.client.HTTPConnection, body: bytes) -> tuple[float, int, bytes]:
    """Return (seconds, status, body) of one signed POST on a kept-alive connection.

    gunicorn closes a connection left idle for two seconds (its keep-alive), as a client
    at concurrency 1 leaves dealbot's while the other app's round runs: the request is
    then sent again on a new connection, as an HTTP client does, and timed from there. A
    request the server did answer would come back empty the second time (a replay), and
    fail the reply check.
    """
    # Signed right before sending: Bolt refuses timestamps more than five minutes old.
    headers = {"Content-Type": FORM_CONTENT_TYPE, **sign(body, SIGNING_SECRET)}
    try:
        started = time.perf_counter()
        connection.request("POST", SLACK_EVENTS_PATH, body=body, headers=headers)
        response = connection.getresponse()
    except CLOSED_BY_SERVER:
        connection.close()  # the next request opens a new connection
        started = time.perf_counter()
        connection.request("POST", SLACK_EVENTS_PATH, body=body, headers=headers)
        response = connection.getresponse()
    payload = response.read()
    return time.perf_counter() - started, response.status, payload


def run_load(
    requests: Sequence[CommandRequest],
    ports: dict[str, int],
    *,
    concurrency: int,
    deadline: float,
) -> Samples:
    """Return latencies of `requests` sent to each app, alternating apps round by round.

    Every thread sends its slice of a round to one app, then all threads meet at a barrier
    before the next round goes to the other app, so the apps are never loaded at once.
    Round order runs ABBA so neither app always goes first after a pause.
    """
    samples = Samples()
    rounds: list[tuple[str, Sequence[CommandRequest]]] = []
    for number, start in enumerate(range(0, len(requests), ROUND_SIZE)):
        chunk = requests[start : start + ROUND_SIZE]
        order = (DEALBOT, NOOP) if number % 2 == 0 else (NOOP, DEALBOT)
        rounds.extend((app, chunk) for app in order)
    barrier = threading.Barrier(concurrency)
    failures: list[BaseException] = []

    def client(worker: int) -> None:
        connections = {
            app: http.client.HTTPConnection(HOST, port, timeout=REQUEST_TIMEOUT_SECONDS)
            for app, port in ports.items()
        }
        try:
            for app, chunk in rounds:
                for request in chunk[worker::concurrency]:
                    if time.monotonic() > deadline:
                        raise BenchmarkError("overall timeout reached")
                    seconds, status, body = post_command(connections[app], request.body)
                    samples.add(app, request, seconds, status, body)
                barrier.wait(timeout=max(0.0, deadline - time.monotonic()))
        except BaseException as error:
            failures.append(error)
            barrier.abort()  # the other threads stop at the next round instead of hanging
        finally:
            for connection in connections.values():
                connection.close()

    threads = [
        threading.Thread(target=client, args=(worker,), name=f"bench-client-{worker}")
        for worker in range(concurrency)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()) + REQUEST_TIMEOUT_SECONDS)
    if any(thread.is_alive() for thread in threads):
        raise BenchmarkError("client threads did not finish before the overall timeout")
    if failures:
        # The first real failure, not the broken barriers it caused in the other threads.
        cause = next(
            (error for error in failures if not isinstance(error, threading.BrokenBarrierError)),
            failures[0],
        )
        raise BenchmarkError(f"load failed: {cause!r}") from cause
    return samples


def _load_in_child(
    requests: Sequence[CommandRequest], ports: dict[str, int], concurrency: int, seconds: float
) -> list[tuple[str, CommandRequest, float, int, bytes]]:
    samples = run_load(
        requests, ports, concurrency=concurrency, deadline=time.monotonic() + seconds
    )
    return samples.recorded


def run_load_in_another_process(
    requests: Sequence[CommandRequest],
    ports: dict[str, int],
    *,
    concurrency: int,
    deadline: float,
) -> Samples:
    """Return run_load's samples, with the clients in their own process.

    Python runs one thread at a time per process: clients sharing the servers' process
    would queue their own signing and parsing in front of the requests they time.
    """
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:
        rows = pool.apply(
            _load_in_child, (requests, ports, concurrency, max(0.0, deadline - time.monotonic()))
        )
    samples = Samples()
    for app, request, seconds, status, body in rows:
        samples.add(app, request, seconds, status, body)
    return samples


def verify_dealbot_replies(samples: Samples) -> None:
    """Raise unless every dealbot reply is HTTP 200 with Block Kit blocks."""
    for request, status, body in samples.dealbot_replies:
        label = request.label
        if status != 200:
            raise BenchmarkError(f"dealbot answered {label} with HTTP {status}: {body[:200]!r}")
        try:
            reply = json.loads(body)
        except ValueError:
            raise BenchmarkError(f"dealbot answered {label} without JSON: {body[:200]!r}") from None
        if not reply.get("blocks"):
            raise BenchmarkError(f"dealbot answered {label} without blocks: {body[:200]!r}")
        # An error card is a fast reply to the wrong question: measure the real work only.
        # An error reply opens with a ":warning:" section; a real answer opens with a header.
        opening = reply["blocks"][0].get("text") or {}
        is_error = str(opening.get("text", "")).startswith(":warning:")
        if is_error or (request.expected_text and request.expected_text not in body.decode()):
            raise BenchmarkError(f"dealbot answered {label} wrongly: {body[:300]!r}")


# --- report -------------------------------------------------------------------------------


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Return the nearest-rank percentile of already sorted values."""
    rank = max(1, round(fraction * len(sorted_values) + 0.5))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summary(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": percentile(ordered, 0.50) * 1000,
        "p90": percentile(ordered, 0.90) * 1000,
        "p99": percentile(ordered, 0.99) * 1000,
        "max": ordered[-1] * 1000,
    }


def report(samples: Samples, *, deals: int, requests: int, concurrency: int, served: str) -> bool:
    """Print the percentile table and the verdicts; return True when both targets pass."""
    labels = sorted({label for _, label in samples.latencies})
    rows: list[tuple[str, str, dict[str, float], int]] = []
    for app in (DEALBOT, NOOP):
        everything: list[float] = []
        for label in labels:
            values = samples.latencies.get((app, label), [])
            everything.extend(values)
            rows.append((app, label, summary(values), len(values)))
        rows.append((app, "all", summary(everything), len(everything)))
    print(
        f"\nack latency: {deals:,} deals, {requests:,} requests per app, "
        f"concurrency {concurrency}, 127.0.0.1\n"
        f"dealbot: {served}; no-op: Bolt on waitress, one process"
    )
    columns = "".join(f"{name:>9}" for name in ("p50 ms", "p90 ms", "p99 ms", "max ms"))
    print(f"{'app':<8} {'command':<11} {'n':>5}{columns}")
    for app, label, stats, count in rows:
        print(
            f"{app:<8} {label:<11} {count:>5} {stats['p50']:>9.2f} {stats['p90']:>8.2f} "
            f"{stats['p99']:>8.2f} {stats['max']:>8.2f}"
        )
    by_key = {(app, label): stats for app, label, stats, _ in rows}
    verdicts = []
    for metric, target in (("p50", P50_TARGET), ("p99", P99_TARGET)):
        print(f"\n{metric} ratio dealbot / no-op (target ≤ {target:.1f}×):")
        for label in [*labels, "all"]:
            ratio = by_key[(DEALBOT, label)][metric] / by_key[(NOOP, label)][metric]
            passed = ratio <= target
            if label == "all":
                verdicts.append(passed)
            print(f"  {label:<11} {ratio:6.2f}×  {'PASS' if passed else 'MISS'}")
    return all(verdicts)


# --- main ---------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.ack_latency", description=__doc__)
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=2_000, help="measured, per app")
    parser.add_argument("--concurrency", type=int, default=8, help="client threads")
    parser.add_argument("--seed", type=int, default=20261215)
    parser.add_argument(
        "--workers",
        type=int,
        help="serve dealbot with `dealbot serve --workers N` (gunicorn) instead of waitress "
        "in one process",
    )
    args = parser.parse_args(argv)
    if args.deals < REPS or args.requests < 1 or args.concurrency < 1:
        parser.error(f"need --deals ≥ {REPS}, --requests ≥ 1, --concurrency ≥ 1")
    if args.workers is not None and args.workers < 1:
        parser.error("need --workers ≥ 1")
    # Bolt's warnings about the bench's fake workspace would only add noise to the table.
    logging.basicConfig(level=logging.ERROR)
    rng = random.Random(args.seed)

    with tempfile.TemporaryDirectory(prefix="dealbot-bench-") as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        started = time.perf_counter()
        upgrade(url)
        seeding_database = Database.from_url(url)
        pipeline = seed_deals(seeding_database, deals=args.deals, rng=rng)
        seeding_database.dispose()
        print(f"seeded {args.deals:,} deals in {time.perf_counter() - started:.1f} s", flush=True)

        fake = FakeSlackWebAPI(spec_dir=slack_spec_dir()).start()
        try:
            settings = load_settings(
                slack_bot_token=BOT_TOKEN,
                slack_signing_secret=SIGNING_SECRET,
                slack_api_url=fake.base_url,
                database_url=url,
            )
            noop = build_noop_app(fake)
            response_url = fake.response_url_for("bench")
            warmup = build_requests(WARMUP_REQUESTS, pipeline, response_url=response_url, rng=rng)
            measured = build_requests(
                args.requests, pipeline, response_url=response_url, rng=rng, first=WARMUP_REQUESTS
            )
            with ExitStack() as stack:
                if args.workers is None:
                    served = "waitress, one process"
                    dealbot_port = stack.enter_context(
                        serving(build_wsgi_app(create_app(settings)))
                    )
                else:
                    served = f"dealbot serve --workers {args.workers} (gunicorn)"
                    dealbot_port = stack.enter_context(
                        serving_with_gunicorn(
                            workers=args.workers,
                            database_url=url,
                            slack_api_url=fake.base_url,
                            folder=Path(folder),
                        )
                    )
                noop_port = stack.enter_context(serving(build_wsgi_app(noop)))
                ports = {DEALBOT: dealbot_port, NOOP: noop_port}
                tune_gc_for_serving()  # as `dealbot serve` does
                deadline = time.monotonic() + OVERALL_TIMEOUT_SECONDS
                verify_dealbot_replies(
                    run_load_in_another_process(
                        warmup, ports, concurrency=args.concurrency, deadline=deadline
                    )
                )
                samples = run_load_in_another_process(
                    measured, ports, concurrency=args.concurrency, deadline=deadline
                )
            verify_dealbot_replies(samples)
            unexpected = {call.method for call in fake.calls} - {"auth.test"}
            if unexpected:
                raise BenchmarkError(f"the apps called Slack during the run: {sorted(unexpected)}")
        finally:
            fake.stop()

    passed = report(
        samples,
        deals=args.deals,
        requests=args.requests,
        concurrency=args.concurrency,
        served=served,
    )
    return 0 if passed else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchmarkError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        sys.exit(2)
