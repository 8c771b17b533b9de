"""Production serving: the Bolt app in N gunicorn worker processes, the jobs in one more.

`dealbot serve --workers N` runs gunicorn's arbiter in the `dealbot` process itself (a
`BaseApplication`, no config file). Each worker is forked before the app is loaded and then
builds its own app and database engine (`load`), so no worker shares a PostgreSQL connection
or pool with another, and a SQLite file in WAL mode takes their writes one at a time, each
waiting on the busy timeout rather than failing.

The scheduler runs in exactly one process of its own, forked by the arbiter once it is
ready (`when_ready`), before any worker. Not in the arbiter: gunicorn forks workers from
it for as long as it lives, and forking a process whose scheduler, lease-heartbeat and
HTTP threads may hold a lock hands every new worker that lock, held forever. Not in a
worker: a job's minutes of planning would then queue behind or in front of Slack's 3-second
requests, and a worker recycled by gunicorn would take the scheduler with it.

SIGTERM (or SIGINT) to the `dealbot` process drains: the arbiter stops accepting, each worker
finishes the requests it holds (and its work after an ack) within `GRACEFUL_TIMEOUT`, then the
scheduler process is told to stop: it starts no firing and waits, within the same bound, for
the one running to finish, so every outbox row it claimed is marked sent or pending again.
A claim cut off by a harder kill is not lost either: its lease lapses and the next sweep
sends it (see `reminders.delivery`).
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import TYPE_CHECKING, Any

from gunicorn.app.base import BaseApplication

from bot.settings import Settings

if TYPE_CHECKING:
    from gunicorn.arbiter import Arbiter

    from bot.server import WSGIApp

logger = logging.getLogger("dealbot")

# Requests in flight per worker: replies are computed in the request (process_before_response),
# so a worker waiting on a slow Slack call (views.open) still answers others meanwhile.
THREADS_PER_WORKER = 8
# Time given to in-flight requests, work after an ack and a running job firing on SIGTERM.
# Slack's requests end within 3 s; the rest is for a firing's sends. Orchestrators must wait
# longer than this before their SIGKILL (Docker's default is 10 s: use `--stop-timeout 30`).
GRACEFUL_TIMEOUT = 20
# A worker silent for this long (stuck, not busy: gthread workers beat between requests) is
# killed and replaced by the arbiter.
WORKER_TIMEOUT = 30
# Method, path without its query (OAuth callbacks carry a code in it), status, size, seconds,
# and the worker's pid: which process answered, never what was sent.
ACCESS_LOG_FORMAT = '%(h)s "%(m)s %(U)s" %(s)s %(B)s %(L)ss pid=%(p)s'
# How often the scheduler process checks that the arbiter that forked it is still alive.
PARENT_CHECK_SECONDS = 1.0


def default_workers() -> int:
    """Return one worker per core this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS has no sched_getaffinity
        return max(1, os.cpu_count() or 1)


class DealbotGunicorn(BaseApplication):  # type: ignore[misc]
    """gunicorn configured in code: workers serving Slack, and the scheduler's process."""

    def __init__(
        self,
        settings: Settings,
        *,
        workers: int,
        scheduler: bool,
        threads: int = THREADS_PER_WORKER,
        graceful_timeout: int = GRACEFUL_TIMEOUT,
    ) -> None:
        self.settings = settings
        self.workers = workers
        self.scheduler = scheduler
        self.threads = threads
        self.graceful_timeout = graceful_timeout
        self.scheduler_pid: int | None = None
        super().__init__()

    def load_config(self) -> None:
        options: dict[str, Any] = {
            "bind": f"{self.settings.host}:{self.settings.port}",
            "workers": self.workers,
            "worker_class": "gthread",
            "threads": self.threads,
            "graceful_timeout": self.graceful_timeout,
            "timeout": WORKER_TIMEOUT,
            "accesslog": "-",
            "access_log_format": ACCESS_LOG_FORMAT,
            "errorlog": "-",
            "proc_name": "dealbot",
            # Loaded in each worker after the fork: each gets its own engine and pool.
            "preload_app": False,
            "when_ready": self.when_ready,
            "on_exit": self.on_exit,
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> WSGIApp:
        """Return this worker's WSGI app (called in the worker, after the fork)."""
        return build_worker_wsgi(self.settings)

    # --- the scheduler's process (hooks run in the arbiter) ----------------------------------

    def when_ready(self, arbiter: Arbiter) -> None:
        if not self.scheduler:
            logger.info("--no-scheduler: serving Slack requests only")
            return
        pid = os.fork()
        if pid:
            self.scheduler_pid = pid
            return
        # The child: none of the arbiter's sockets, pipes or signal handlers are its own.
        code = 1
        try:
            for listener in arbiter.LISTENERS:
                listener.close()
            for fd in arbiter.PIPE:
                os.close(fd)
            for number in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT, signal.SIGCHLD):
                signal.signal(number, signal.SIG_DFL)
            # The arbiter's reload and worker-count signals are not for the jobs (a HUP to
            # the whole process group reloads the workers; the jobs carry on).
            for number in (
                signal.SIGHUP,
                signal.SIGTTIN,
                signal.SIGTTOU,
                signal.SIGUSR1,
                signal.SIGUSR2,
                signal.SIGWINCH,
            ):
                signal.signal(number, signal.SIG_IGN)
            code = run_scheduler_process(
                self.settings, parent=arbiter.pid, graceful_timeout=self.graceful_timeout
            )
        except BaseException:
            logger.exception("the scheduler process failed")
        finally:
            logging.shutdown()
            # Never return into the arbiter's code, nor run its exit handlers.
            os._exit(code)

    def on_exit(self, arbiter: Arbiter) -> None:
        """Stop the scheduler's process once the workers are gone; kill it if it hangs."""
        pid = self.scheduler_pid
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + self.graceful_timeout + 1
        while time.monotonic() < deadline:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                return  # the arbiter's SIGCHLD handler reaped it
            if done:
                return
            time.sleep(0.05)
        logger.warning("the scheduler process did not stop in time; killing it")
        os.kill(pid, signal.SIGKILL)


def build_worker_wsgi(settings: Settings) -> WSGIApp:
    """Return the WSGI app one worker serves, on its own database engine."""
    from bot.app import create_app
    from bot.email_setup import build_gmail_connect
    from bot.google_oauth import google_oauth_wsgi
    from bot.server import build_wsgi_app, tune_gc_for_serving
    from domain.clock import SystemClock
    from storage.database import Database

    # The arbiter upgraded or checked the schema once; workers only connect.
    database = Database.from_url(settings.database_url)
    app = create_app(settings, database=database)
    # The Gmail connect pages, when reps connect Gmail with per-rep OAuth.
    connect = build_gmail_connect(settings, database=database, clock=SystemClock())
    google_oauth = google_oauth_wsgi(connect) if connect is not None else None
    hubspot_webhooks = None
    if settings.crm_kind is not None and settings.hubspot_webhooks_enabled:
        from bot.crm_setup import CrmRuntime, hubspot_webhooks_app

        # The webhook's pulls log in once per worker, on that worker's connector.
        hubspot_webhooks = hubspot_webhooks_app(
            settings,
            database=database,
            client=app.client,
            runtime=CrmRuntime(settings),
            clock=SystemClock(),
        )
    wsgi = build_wsgi_app(
        app, google_oauth=google_oauth, hubspot_webhooks=hubspot_webhooks, database=database
    )
    tune_gc_for_serving()
    logger.info("worker %s ready", os.getpid())
    return wsgi


def run_scheduler_process(settings: Settings, *, parent: int, graceful_timeout: float) -> int:
    """Run the jobs until SIGTERM, SIGINT or the arbiter's death; return the exit code."""
    from bot.jobs_cli import build_scheduler
    from bot.slack import build_web_client
    from storage.database import Database

    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stop.set())
    database = Database.from_url(settings.database_url)
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    client = build_web_client(token=token, base_url=settings.slack_api_url)
    crm = None
    if settings.crm_kind is not None:
        from bot.crm_setup import CrmRuntime

        crm = CrmRuntime(settings)  # the crm-sync and crm-push jobs' one login
    scheduler = build_scheduler(settings, database=database, client=client, crm=crm)
    scheduler.start()
    logger.info("scheduler started in process %s (%s)", os.getpid(), ", ".join(scheduler.jobs))
    while not stop.wait(PARENT_CHECK_SECONDS):
        if os.getppid() != parent:
            logger.warning("the server process is gone; the scheduler stops too")
            break
    scheduler.shutdown()
    finished = _join_running_work(timeout=graceful_timeout)
    database.dispose()
    logger.info("scheduler stopped%s", "" if finished else " (a firing still running was cut off)")
    return 0


def _join_running_work(*, timeout: float) -> bool:
    """Return whether every job thread finished within `timeout` seconds.

    Once the scheduler is shut down nothing starts a firing, an idle pool thread exits at
    once, and a busy one (or the start-up catch-up, a daemon thread) when its firing has
    sent what it claimed or left it pending; the lease heartbeat ends with its firing.
    """
    deadline = time.monotonic() + timeout
    for thread in threading.enumerate():
        if thread is threading.current_thread():
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            logger.warning("still running at the scheduler's stop: thread %s", thread.name)
            return False
    return True
