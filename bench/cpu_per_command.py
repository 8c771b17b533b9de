"""CPU per command: what one /pipeline, /deal show or App Home costs dealbot's process.

Latency under load is CPU per request times requests in flight, divided by the cores
serving: this measures the first factor, in one process with nothing else running. Each
slash command goes through the whole WSGI app in-process (Bolt's signature check, the
replay receipt, parsing, the domain, the blocks, the JSON of the reply, the work after
the ack), the App Home through what its listener does but the HTTP call to Slack (the
home read, its blocks and their JSON). CPU time is the process's, so work a command hands
to another thread counts too. `--profile` prints cProfile's top functions per command.

    python -m bench.cpu_per_command [--deals 100000] [--requests 300] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import json
import logging
import pstats
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from bench.ack_latency import (
    BOT_TOKEN,
    SIGNING_SECRET,
    BenchmarkError,
    SeededPipeline,
    seed_deals,
)
from bot.app import ListenerPool, create_app
from bot.fake_slack import FakeSlackWebAPI
from bot.server import SLACK_EVENTS_PATH, build_wsgi_app, tune_gc_for_serving
from bot.settings import load_settings
from handlers import blocks
from storage.database import Database
from storage.migrate import upgrade
from storage.models import Deal
from tests.fakes.slack_signing import FORM_CONTENT_TYPE, sign, slash_command_body
from tests.fakes.slack_spec import slack_spec_dir

WARMUP = 50
TARGET_PIPELINE_MS = 3.0
TOP_FUNCTIONS = 25


@dataclass(frozen=True)
class Measured:
    label: str
    requests: int
    cpu_ms: float
    wall_ms: float


def wsgi_environ(body: bytes) -> dict[str, Any]:
    """Return the WSGI environ a server would pass for a signed slash command."""
    headers = {"Content-Type": FORM_CONTENT_TYPE, **sign(body, SIGNING_SECRET)}
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": SLACK_EVENTS_PATH,
        "QUERY_STRING": "",
        "CONTENT_TYPE": headers.pop("Content-Type"),
        "CONTENT_LENGTH": str(len(body)),
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "3000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
    }
    for name, value in headers.items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    return environ


def measure(
    label: str, calls: Sequence[Callable[[], None]], *, settle: Callable[[], None]
) -> Measured:
    """Return the process CPU and wall time per call of `calls`, after `settle` returns."""
    cpu, wall = time.process_time(), time.perf_counter()
    for call in calls:
        call()
    settle()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return Measured(label, len(calls), cpu * 1000 / len(calls), wall * 1000 / len(calls))


def profile(calls: Iterable[Callable[[], None]], *, settle: Callable[[], None]) -> str:
    """Return cProfile's top functions (own time, then cumulative) over `calls`."""
    profiler = cProfile.Profile()
    profiler.enable()
    for call in calls:
        call()
    settle()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(TOP_FUNCTIONS)
    stats.sort_stats("cumulative").print_stats(TOP_FUNCTIONS)
    return out.getvalue()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.cpu_per_command", description=__doc__)
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300, help="per command")
    parser.add_argument("--seed", type=int, default=20261215)
    parser.add_argument("--profile", action="store_true", help="print cProfile's top functions")
    parser.add_argument(
        "--database", type=Path, help="reuse (or create) this SQLite file instead of a temp one"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="dealbot-cpu-") as folder:
        path = args.database or Path(folder) / "bench.db"
        url = f"sqlite:///{path}"
        pipeline = prepare(url, fresh=not path.exists(), deals=args.deals, rng=rng)
        results, profiles = run(url, pipeline, requests=args.requests, rng=rng, args=args)
    print(f"\nCPU per command: {args.deals:,} deals, {args.requests} requests each, one process")
    print(f"{'command':<11} {'n':>5} {'cpu ms':>8} {'wall ms':>8}")
    for result in results:
        print(
            f"{result.label:<11} {result.requests:>5} {result.cpu_ms:>8.2f} {result.wall_ms:>8.2f}"
        )
    pipeline_ms = next(r.cpu_ms for r in results if r.label == "/pipeline")
    verdict = "PASS" if pipeline_ms <= TARGET_PIPELINE_MS else "MISS"
    print(f"/pipeline CPU {pipeline_ms:.2f} ms (target ≤ {TARGET_PIPELINE_MS:.1f} ms): {verdict}")
    for label, text in profiles:
        print(f"\n===== cProfile: {label} =====\n{text}")
    return 0


def prepare(url: str, *, fresh: bool, deals: int, rng: random.Random) -> SeededPipeline:
    """Return who owns what, seeding the database first when it is new."""
    if fresh:
        started = time.perf_counter()
        upgrade(url)
        database = Database.from_url(url)
        pipeline = seed_deals(database, deals=deals, rng=rng)
        database.dispose()
        print(f"seeded {deals:,} deals in {time.perf_counter() - started:.1f} s", flush=True)
        return pipeline
    # Reused: who owns what is read back from the deals themselves.
    database = Database.from_url(url)
    try:
        with database.session() as session:
            rows = session.execute(select(Deal.owner_id, Deal.account, Deal.status)).all()
    finally:
        database.dispose()
    reps = tuple(sorted({owner for owner, _, _ in rows}))
    open_accounts = tuple((owner, account) for owner, account, status in rows if status == "open")
    return SeededPipeline(reps=reps, open_accounts=open_accounts)


def run(
    url: str,
    pipeline: SeededPipeline,
    *,
    requests: int,
    rng: random.Random,
    args: argparse.Namespace,
) -> tuple[list[Measured], list[tuple[str, str]]]:
    fake = FakeSlackWebAPI(spec_dir=slack_spec_dir()).start()
    try:
        settings = load_settings(
            slack_bot_token=BOT_TOKEN,
            slack_signing_secret=SIGNING_SECRET,
            slack_api_url=fake.base_url,
            database_url=url,
        )
        pool = ListenerPool()
        app = create_app(settings, listener_executor=pool)
        wsgi = build_wsgi_app(app)
        response_url = fake.response_url_for("bench")
        triggers = itertools.count(1)

        def command(name: str, text: str, user_id: str, expected: str | None) -> Callable[[], None]:
            # A trigger id of its own: the same body signed in the same second is a replay.
            body = slash_command_body(
                name,
                text,
                user_id=user_id,
                response_url=response_url,
                trigger_id=f"{next(triggers)}.bench",
            )

            def call() -> None:
                status: list[str] = []
                chunks = wsgi(wsgi_environ(body), lambda s, _h, *_: status.append(s))
                reply = b"".join(chunks)
                if not status[0].startswith("200") or not reply.startswith(b"{"):
                    raise BenchmarkError(f"{name} {text!r} answered {status[0]}: {reply[:200]!r}")
                if expected is not None and expected.encode() not in reply:
                    raise BenchmarkError(f"{name} {text!r} answered wrongly: {reply[:200]!r}")

            return call

        def home(user_id: str) -> Callable[[], None]:
            deals = _deal_service(app)

            def call() -> None:
                view = blocks.home_view(deals.home(user_id))
                json.dumps(view.to_dict())

            return call

        def pipelines(count: int) -> list[Callable[[], None]]:
            return [command("/pipeline", "", rng.choice(pipeline.reps), None) for _ in range(count)]

        def shows(count: int) -> list[Callable[[], None]]:
            picked = [rng.choice(pipeline.open_accounts) for _ in range(count)]
            return [command("/deal", f"show {a}", owner, a) for owner, a in picked]

        def homes(count: int) -> list[Callable[[], None]]:
            return [home(rng.choice(pipeline.reps)) for _ in range(count)]

        kinds: list[tuple[str, Callable[[int], list[Callable[[], None]]]]] = [
            ("/pipeline", pipelines),
            ("/deal show", shows),
            ("App Home", homes),
        ]
        for _, make in kinds:
            measure("warm-up", make(WARMUP), settle=pool.wait_until_idle)
        tune_gc_for_serving()  # as `dealbot serve` does
        results = [
            measure(label, make(requests), settle=pool.wait_until_idle) for label, make in kinds
        ]
        profiles = (
            [(label, profile(make(requests), settle=pool.wait_until_idle)) for label, make in kinds]
            if args.profile
            else []
        )
        return results, profiles
    finally:
        fake.stop()


def _deal_service(app: Any) -> Any:
    """Return the DealService bound into the app's listeners (found through one of them)."""
    for listener in app._listeners:
        for function in (listener.ack_function, *listener.lazy_functions):
            services = getattr(function, "keywords", {}).get("services")
            if services is not None:
                return services.deals
    raise BenchmarkError("no listener carries the services")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchmarkError as error:
        print(f"benchmark failed: {error}", file=sys.stderr)
        sys.exit(2)
