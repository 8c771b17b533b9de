"""`dealbot serve --workers 2`: a real gunicorn, its workers, its scheduler, its shutdown.

Each test starts the command as a subprocess on a free port, against a SQLite file in a
temporary folder and the fake Slack Web API, and talks to it over HTTP as Slack does.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import time_machine
from slack_bolt import App
from slack_sdk import WebClient

from bot.cli import build_parser
from bot.fake_slack import FakeSlackWebAPI
from bot.server import build_wsgi_app
from reminders.delivery import Delivery, OutgoingMessage
from storage.database import Database
from storage.migrate import upgrade
from storage.outbox import OutboxRepository
from tests.databases import BACKENDS, database_url_for, sqlite_url
from tests.fakes.slack_signing import post_signed, sign, slash_command_body

SIGNING_SECRET = "serving-test-signing-secret"


def server_time() -> int:
    """Return the machine's real clock, in seconds: the server runs in its own process, where
    the suite's moved wall clock (--fake-now) does not reach, and checks signatures by it."""
    return int(time_machine.escape_hatch.time.time())


START_SECONDS = 60.0
# The access log names the worker that answered each request (bot/gunicorn_app.py).
ANSWERED_BY = re.compile(r'"POST /slack/events" 200 \d+ [0-9.]+s pid=<(\d+)>')
SCHEDULER_STARTED = re.compile(r"scheduler started in process (\d+)")
WORKER_READY = re.compile(r"worker (\d+) ready")

pytestmark = pytest.mark.skipif(os.name == "nt", reason="gunicorn does not run on Windows")


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    slack: FakeSlackWebAPI

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def command(self, command: str, number: int, *, user: str = "U0ANA") -> dict[str, object]:
        # Each its own response_url: a byte-identical body is a replay, answered once.
        body = slash_command_body(
            command, "", user_id=user, response_url=self.slack.response_url_for(f"r{number}")
        )
        status, _, reply = post_signed(
            f"{self.url}/slack/events", body, SIGNING_SECRET, timestamp=server_time()
        )
        assert status == 200, reply
        answer: dict[str, object] = json.loads(reply)
        return answer


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


@contextmanager
def serving(
    tmp_path: Path,
    *,
    workers: int = 2,
    slow_post_seconds: float | None = None,
    database_url: str | None = None,
) -> Iterator[Served]:
    """Yield `dealbot serve --workers N` running, once every worker is ready.

    `slow_post_seconds`: the fake Slack answers the first chat.postMessage that late.
    `database_url`: a migrated database, instead of a new SQLite file in `tmp_path`.
    """
    port = free_port()
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("SLACK_", "DEALBOT_", "GMAIL_", "GOOGLE_"))
        and name not in ("DATABASE_URL", "HOST", "PORT")
    }
    with FakeSlackWebAPI() as slack:
        if slow_post_seconds is not None:
            slack.slow_next(seconds=slow_post_seconds, method="chat.postMessage")
        environment.update(
            SLACK_BOT_TOKEN="xoxb-serving-test",
            SLACK_SIGNING_SECRET=SIGNING_SECRET,
            SLACK_API_URL=slack.base_url,
            DATABASE_URL=database_url or sqlite_url(tmp_path),
            HOST="127.0.0.1",
            PORT=str(port),
        )
        log_path = tmp_path / "serve.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "serve", "--workers", str(workers)],
                cwd=tmp_path,  # no stray .env
                env=environment,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        served = Served(process=process, port=port, log_path=log_path, slack=slack)
        try:
            deadline = time.monotonic() + START_SECONDS
            while len(WORKER_READY.findall(served.log())) < workers:
                assert process.poll() is None, served.log()
                assert time.monotonic() < deadline, served.log()
                time.sleep(0.1)
            yield served
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=40)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with database_url_for(request.param, tmp_path) as url:
        upgrade(url)  # `dealbot serve` refuses a PostgreSQL schema that is behind
        yield url


def test_two_workers_answer_signed_commands_side_by_side_and_one_scheduler_runs(
    tmp_path: Path, database_url: str
) -> None:
    # On PostgreSQL each worker connects with the engine it built after the fork; on SQLite
    # both write the same WAL-mode file (every command leaves a receipt).
    with serving(tmp_path, database_url=database_url) as served:
        pids: set[str] = set()
        with ThreadPoolExecutor(max_workers=16) as clients:
            for round_ in range(10):
                numbers = range(round_ * 32, (round_ + 1) * 32)
                replies = list(clients.map(lambda n: served.command("/pipeline", n), numbers))
                assert all(reply.get("blocks") for reply in replies)
                pids = set(ANSWERED_BY.findall(served.log()))
                if len(pids) >= 2:
                    break
        status, health = get(f"{served.url}/healthz")
    log = served.log()  # stopped by now: SIGTERM on leaving `serving`

    assert len(pids) == 2, log
    assert (status, json.loads(health)) == (200, {"ok": True})
    schedulers = SCHEDULER_STARTED.findall(log)
    assert len(schedulers) == 1, log
    # The jobs have a process of their own: neither a worker nor the arbiter.
    assert schedulers[0] not in pids and schedulers[0] != str(served.process.pid)
    assert "scheduler stopped" in log
    assert served.process.returncode == 0, log


def test_sigterm_during_a_slow_request_still_answers_it_then_stops_everything(
    tmp_path: Path,
) -> None:
    with serving(tmp_path) as served:
        body = slash_command_body(
            "/pipeline", "", user_id="U0ANA", response_url=served.slack.response_url_for("x")
        )
        connection = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
        connection.putrequest("POST", "/slack/events")
        for name, value in {
            "Content-Type": "application/x-www-form-urlencoded",
            "Content-Length": str(len(body)),
            **sign(body, SIGNING_SECRET, timestamp=server_time()),
        }.items():
            connection.putheader(name, value)
        connection.endheaders()
        # Half the body, then a pause: a worker holds the request, waiting for the rest.
        connection.send(body[: len(body) // 2])
        time.sleep(1.0)
        served.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        connection.send(body[len(body) // 2 :])
        response = connection.getresponse()
        reply = json.loads(response.read())
        connection.close()
        code = served.process.wait(timeout=40)
        log = served.log()

    assert response.status == 200, log
    assert reply.get("blocks"), reply
    assert code == 0, log
    assert "scheduler stopped" in log
    # Nothing is accepted once the drain began.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", served.port), timeout=2).close()


def test_healthz_says_503_when_the_database_does_not_answer(tmp_path: Path) -> None:
    # A SQLite file in a folder that does not exist cannot be opened: the database is "down".
    database = Database.from_url(f"sqlite:///{tmp_path / 'missing' / 'dealbot.sqlite3'}")
    up = Database.from_url(f"sqlite:///{tmp_path / 'dealbot.sqlite3'}")
    app = App(signing_secret="secret", token="xoxb-unused", token_verification_enabled=False)
    try:
        answers = []
        for each in (database, up):
            wsgi = build_wsgi_app(app, database=each)
            started: list[str] = []

            def start_response(status: str, _headers: object, seen: list[str] = started) -> None:
                seen.append(status)

            body = b"".join(
                wsgi({"PATH_INFO": "/healthz", "REQUEST_METHOD": "GET"}, start_response)
            )
            answers.append((started[0], json.loads(body)))
    finally:
        database.dispose()
        up.dispose()

    assert answers == [
        ("503 Service Unavailable", {"ok": False}),
        ("200 OK", {"ok": True}),
    ]


@pytest.mark.parametrize("workers", ["0", "-2", "two"])
def test_serve_refuses_a_number_of_workers_that_is_not_one_or_more(
    workers: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        build_parser().parse_args(["serve", "--workers", workers])

    assert stopped.value.code == 2
    assert "is not a number of workers (1 or more)" in capsys.readouterr().err


def test_sigterm_during_a_jobs_send_waits_for_it_and_leaves_no_claim_behind(
    tmp_path: Path,
) -> None:
    # A DM waiting in the outbox: the start-up catch-up of draft-follow-ups sends its job's
    # pending rows, and Slack takes 3 s to accept it.
    url = sqlite_url(tmp_path)
    upgrade(url)
    database = Database.from_url(url)
    try:
        Delivery(database=database, client=WebClient()).record(
            "draft-follow-ups",
            [OutgoingMessage(recipient="U0ANA", subject="s", period="p", text="Your draft")],
        )
        with serving(tmp_path, workers=1, slow_post_seconds=3.0) as served:
            deadline = time.monotonic() + START_SECONDS
            while outbox_statuses(database) != ["sending"]:
                assert time.monotonic() < deadline, served.log()
                time.sleep(0.05)
            served.process.send_signal(signal.SIGTERM)
            code = served.process.wait(timeout=40)
            posted = served.slack.calls_to("chat.postMessage")
        log = served.log()
        statuses = outbox_statuses(database)
    finally:
        database.dispose()

    assert code == 0, log
    assert statuses == ["sent"], log
    assert [call.args["text"] for call in posted] == ["Your draft"]
    assert "scheduler stopped" in log and "cut off" not in log


def outbox_statuses(database: Database) -> list[str]:
    with database.session() as session:
        return [message.status for message in OutboxRepository(session).messages()]
