"""`dealbot demo`: the product offline, on a seeded pipeline, through the real Bolt dispatch.

Typed slash commands become the same form-encoded requests Slack sends; Bolt routes them to
the real listeners; replies and Web API calls (modals, App Home) are drawn in the terminal.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlencode

from slack_bolt import App, BoltRequest
from sqlalchemy.engine import make_url

from bot.app import ListenerPool, create_app
from bot.console import ConsoleRenderer
from bot.demo_jobs import DemoJobs
from bot.fake_slack import FakeSlackWebAPI, RecordedCall
from bot.settings import Settings
from bot.slack import build_web_client
from domain.changes import ContactRef, DealChanges, DealRef
from domain.clock import Clock, FixedClock, SystemClock
from domain.deals import Actor, DealService
from domain.money import Money
from domain.teams import TeamService
from storage.database import Database
from storage.migrate import upgrade

DEMO_TEAM = "Enterprise"
DEMO_CHANNEL_ID = "C0SALES"
DEMO_CHANNEL_NAME = "sales"
DEMO_TIMEZONE = "America/New_York"
DEMO_MAIL_DOMAIN = "dealbot-demo.example"
# Follow-up drafts land here as .eml files (the outbox backend), emptied on every run.
DEMO_OUTBOX_DIR = Path("dealbot-demo-outbox")


@dataclass(frozen=True)
class DemoUser:
    user_id: str
    handle: str
    real_name: str
    is_admin: bool = False


DEMO_USERS = (
    DemoUser("U0ANA", "ana", "Ana Ruiz"),
    DemoUser("U0BEN", "ben", "Ben Okafor"),
    DemoUser("U0CHLOE", "chloe", "Chloe Martin"),
    DemoUser("U0MARIA", "maria", "Maria Keller", is_admin=True),
)
USERS_BY_HANDLE = {user.handle: user for user in DEMO_USERS}

INTRO = """dealbot demo — a seeded pipeline, offline. Type slash commands as you would in Slack:
  /pipeline            /pipeline team          /deal show globex
  /deal new Vandelay 30k stage:discovery close:eoq
  /deal initech stage:proposal close:dec 19 buyer:"Bill Lumbergh <bill@initech.com>"
  /nextstep globex Send the security review due:fri owner:@ben
  /nextstep done initech       /deal won hooli signed for 3 years      /dealbot help
Console commands: :as <ana|ben|chloe|maria> (who you are), :home (App Home), :quit
Scheduled jobs: :jobs lists them, :run chase-next-steps (or pipeline-accuracy, manager-digest)
Follow-up emails: /deal followup globex, /deal followup hooli redlines_review, or
  :run draft-follow-ups; drafts are .eml files in dealbot-demo-outbox/
You are @ana, a rep; @maria is the manager and an admin."""


class ConsoleCalls:
    """Draws the Web API calls users would see (messages, modals, App Home) in the terminal.

    The fake Slack calls it with each answered call (its JSON arguments decoded) before
    answering, so a reply is drawn before the console reads the next line.
    """

    def __init__(self, *, renderer: ConsoleRenderer, out: TextIO) -> None:
        self.renderer = renderer
        self.out = out
        # Set once the fake exists (it is built with this observer): uploads are read from it.
        self.slack: FakeSlackWebAPI | None = None

    def __call__(self, call: RecordedCall) -> None:
        method, args = call.method, call.args
        if method in ("views.open", "views.push", "views.update", "views.publish"):
            self._print(self.renderer.view(args["view"]))
        elif method == "files.completeUploadExternal" and self.slack is not None:
            uploads = self.slack.uploads
            files = [f for f in args["files"] if f.get("id") in uploads]
            chart = Path("dealbot-demo-chart.png")
            chart.write_bytes(uploads[files[0]["id"]].content if files else b"")
            self._print(f"(chart attached; saved to {chart})")
        elif method in ("chat.postMessage", "chat.postEphemeral"):
            channel = str(args.get("channel") or "")
            where = "(only visible to you)" if method == "chat.postEphemeral" else "(DM)"
            if method == "chat.postMessage" and channel.startswith("C"):
                where = f"(posted in #{self.renderer.channels.get(channel, channel)})"
            self._print(f"{where}\n" + self._message(args))

    def _message(self, message: dict[str, Any]) -> str:
        blocks = message.get("blocks") or []
        return self.renderer.blocks(blocks) if blocks else self.renderer.mrkdwn(message["text"])

    def _print(self, text: str) -> None:
        print(_indent(text), file=self.out, flush=True)


def demo_slack(*, renderer: ConsoleRenderer, out: TextIO, clock: Clock) -> FakeSlackWebAPI:
    """Return the fake Slack Web API (not started) that knows the demo's users and draws calls.

    Bolt builds a fresh WebClient per request from the base URL, so the demo points that
    URL at the fake rather than substituting a client object.
    """
    calls = ConsoleCalls(renderer=renderer, out=out)
    slack = FakeSlackWebAPI(observer=calls, clock=clock)
    calls.slack = slack
    for user in DEMO_USERS:
        # Follow-up drafts are signed with the real name and sent From the address.
        slack.set_user(
            user.user_id,
            name=user.handle,
            real_name=user.real_name,
            is_admin=user.is_admin,
            tz=DEMO_TIMEZONE,
            email=f"{user.handle}@{DEMO_MAIL_DOMAIN}",
        )
    return slack


def _indent(text: str) -> str:
    return "\n".join("  " + line if line else "" for line in text.splitlines()) + "\n"


def slack_escape(text: str) -> str:
    """Return `text` as Slack would send it with should_escape: entities, mentions, links."""
    text = html.escape(text, quote=False)

    def mention(match: re.Match[str]) -> str:
        user = USERS_BY_HANDLE.get(match.group(1).lower())
        return f"<@{user.user_id}|{user.handle}>" if user else match.group(0)

    text = re.sub(r"(?<![\w<])@(\w+)", mention, text)
    text = re.sub(
        rf"(?<![\w<])#({DEMO_CHANNEL_NAME})\b", f"<#{DEMO_CHANNEL_ID}|{DEMO_CHANNEL_NAME}>", text
    )
    return re.sub(r"(?<![\w:|<])([\w.+-]+@[\w-]+\.[\w.]+\w)", r"<mailto:\1|\1>", text)


class DemoConsole:
    """Reads commands, sends them through Bolt as Slack would, and prints the replies."""

    def __init__(
        self,
        *,
        app: App,
        listeners: ListenerPool,
        renderer: ConsoleRenderer,
        out: TextIO,
        jobs: DemoJobs | None = None,
    ) -> None:
        self.app = app
        self.listeners = listeners
        self.renderer = renderer
        self.out = out
        self.jobs = jobs
        self.user = USERS_BY_HANDLE["ana"]

    def handle(self, line: str) -> bool:
        """Run one line; return False when the user asked to quit."""
        line = line.strip()
        if not line:
            return True
        if line in (":quit", ":q", "exit", "quit"):
            return False
        if line.startswith(":as"):
            handle = line.removeprefix(":as").strip().lstrip("@").lower()
            if handle not in USERS_BY_HANDLE:
                self._say(f"Unknown user {handle!r}; pick one of: {', '.join(USERS_BY_HANDLE)}")
            else:
                self.user = USERS_BY_HANDLE[handle]
                self._say(f"You are now @{self.user.handle}.")
            return True
        if line == ":home":
            self._dispatch_event(
                {"type": "app_home_opened", "user": self.user.user_id, "tab": "home"}
            )
            return True
        if self.jobs is not None and self.jobs.handle(line):
            return True
        if not line.startswith("/"):
            self._say("Type a slash command such as /pipeline, or :quit.")
            return True
        command, _, text = line.partition(" ")
        self._dispatch_command(command.lower(), text)
        return True

    def _dispatch_command(self, command: str, text: str) -> None:
        body = urlencode(
            {
                "token": "demo",
                "team_id": "T0DEMO",
                "team_domain": "demo",
                "channel_id": DEMO_CHANNEL_ID,
                "channel_name": DEMO_CHANNEL_NAME,
                "user_id": self.user.user_id,
                "user_name": self.user.handle,
                "command": command,
                "text": slack_escape(text),
                "api_app_id": "A0DEMO",
                "response_url": "https://hooks.slack.invalid/commands/demo",
                "trigger_id": "demo.trigger",
            }
        )
        response = self.app.dispatch(
            BoltRequest(body=body, headers={"content-type": ["application/x-www-form-urlencoded"]})
        )
        if response.status == 404:
            self._say(f"{command} is not a dealbot command. Try /deal, /nextstep, /pipeline.")
        elif response.body:
            message = json.loads(response.body)
            self._say("(only visible to you)\n" + self.renderer.blocks(message.get("blocks", [])))

    def _dispatch_event(self, event: dict[str, Any]) -> None:
        body = json.dumps(
            {
                "type": "event_callback",
                "team_id": "T0DEMO",
                "api_app_id": "A0DEMO",
                "event": event,
                "event_id": "Ev0DEMO",
                "event_time": 0,
            }
        )
        self.app.dispatch(BoltRequest(body=body, headers={"content-type": ["application/json"]}))
        # Events are acked first and handled after: show their effect before the next prompt.
        self.listeners.wait_until_idle()

    def _say(self, text: str) -> None:
        print(_indent(text), file=self.out)


def seed_pipeline(database: Database, *, now: dt.datetime) -> None:
    """Fill the demo database with a team and deals in every stage, some needing attention."""
    clock = FixedClock(at=now - dt.timedelta(days=30))
    deals = DealService(database=database, clock=clock, default_timezone=dt.UTC)  # type: ignore[arg-type]
    teams = TeamService(database=database, clock=clock, default_timezone=DEMO_TIMEZONE)
    ana, ben, chloe, maria = (Actor(u.user_id) for u in DEMO_USERS)
    admin = Actor(maria.user_id, is_admin=lambda: True)
    teams.create_team(admin, name=DEMO_TEAM, channel_id=DEMO_CHANNEL_ID, timezone=DEMO_TIMEZONE)
    teams.add_members(admin, name=DEMO_TEAM, role="manager", user_ids=[maria.user_id])
    teams.add_members(
        admin, name=DEMO_TEAM, role="rep", user_ids=[ana.user_id, ben.user_id, chloe.user_id]
    )
    today = now.date()
    quarter = f"{today.year}-Q{(today.month - 1) // 3 + 1}"
    for rep, quota in ((ana, 300_000), (ben, 450_000), (chloe, 250_000)):
        teams.set_quota(
            admin, name=DEMO_TEAM, user_id=rep.user_id, amount=usd(quota), period=quarter
        )

    def day(offset: int) -> dt.date:
        return today + dt.timedelta(days=offset)

    def new(actor: Actor, account: str, **changes: Any) -> DealRef:
        deal = deals.create_deal(actor, account, DealChanges(**changes))
        return DealRef(name=None, deal_id=deal.id)

    # A month ago: the quarter's deals are logged.
    initech = new(
        ana,
        "Initech",
        amount=usd(48_000),
        stage="demo",
        close_date=day(20),
        forecast="best_case",
        buying_criteria="SSO, audit log, EU hosting",
        economic_buyer=ContactRef("Bill Lumbergh", "bill@initech.com", None),
        champion=ContactRef("Peter Gibbons", "peter@initech.com", None),
    )
    globex = new(
        ana,
        "Globex",
        amount=usd(120_000),
        stage="proposal",
        close_date=day(35),
        forecast="commit",
        buying_process="Security review, then CFO sign-off",
        contacts=(ContactRef("Hank Scorpio", "hank@globex.com", None),),
    )
    umbrella = new(ana, "Umbrella", amount=usd(25_000), stage="discovery", close_date=day(-3))
    hooli = new(
        ben,
        "Hooli",
        amount=usd(250_000),
        stage="negotiation",
        close_date=day(-10),
        forecast="commit",
        paper_process="MSA redlines with legal; PO via Coupa",
        economic_buyer=ContactRef("Gavin Belson", "gavin@hooli.com", None),
        champion=ContactRef("Jared Dunn", "jared@hooli.com", None),
    )
    stark = new(ben, "Stark Industries", stage="prospecting")
    wayne = new(ben, "Wayne Enterprises", amount=usd(90_000), stage="proposal", close_date=day(-5))
    acme = new(chloe, "Acme Corp", amount=usd(60_000), stage="demo", close_date=day(25))
    initrode = new(chloe, "Initrode", amount=usd(15_000), stage="discovery", close_date=day(12))
    soylent = new(
        chloe,
        "Soylent",
        amount=Money(Decimal(90_000), "EUR"),
        stage="proposal",
        close_date=day(10),
        forecast="best_case",
    )
    deals.add_next_step(
        ana, globex, what="Security questionnaire back to Hank", due=day(-2), owner_id=ana.user_id
    )
    deals.add_next_step(
        chloe, acme, what="Pricing call with procurement", due=day(-4), owner_id=None
    )
    deals.add_next_step(ben, stark, what="Find the economic buyer", due=None, owner_id=None)

    # Two weeks ago: Hooli slips, twice.
    clock.at = now - dt.timedelta(days=14)
    deals.update_deal(ben, hooli, DealChanges(close_date=day(7)))
    clock.at = now - dt.timedelta(days=6)
    deals.update_deal(ben, hooli, DealChanges(close_date=day(21)))
    deals.close_deal(ben, wayne, won=True, reason="Champion pushed it through before year end")
    deals.record_post_mortem(
        ben,
        wayne.deal_id or 0,
        primary_reason="Strong champion; ROI case landed with the CFO",
        competitor="Globex Cloud",
        lessons="Get to the CFO in discovery, not at proposal",
    )
    deals.close_deal(chloe, initrode, won=False, reason="Went with a cheaper point tool")

    # Today: fresh next steps.
    clock.at = now
    deals.add_next_step(
        ana, initech, what="Demo for the procurement team", due=day(3), owner_id=ana.user_id
    )
    deals.add_next_step(
        ben, hooli, what="Redlines review with legal", due=day(2), owner_id=ben.user_id
    )
    deals.add_next_step(
        chloe, soylent, what="Send the mutual success plan", due=day(30), owner_id=chloe.user_id
    )
    del umbrella  # left with no next step and a past close date, on purpose


def usd(amount: int) -> Money:
    return Money(Decimal(amount), "USD")


def _fresh_sqlite(database_url: str) -> None:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database:
        for suffix in ("", "-wal", "-shm"):
            Path(url.database + suffix).unlink(missing_ok=True)


def _lines(stream: TextIO, prompt: Any) -> Iterator[str]:
    if stream.isatty():
        while True:
            try:
                yield input(prompt())
            except EOFError:
                return
    else:
        yield from stream


def run_demo(
    *,
    database_url: str,
    clock: Clock | None = None,
    stdin: TextIO | None = None,
    out: TextIO | None = None,
) -> int:
    """Seed a fresh demo database and answer slash commands typed or piped in.

    The sample pipeline is seeded relative to `clock`'s now, and the app, its jobs and the
    console all read that same clock, so a given clock always shows the same demo.
    """
    clock = clock or SystemClock()
    stdin = stdin or sys.stdin
    out = out or sys.stdout
    _fresh_sqlite(database_url)
    upgrade(database_url)
    database = Database.from_url(database_url)
    seed_pipeline(database, now=clock.now())
    renderer = ConsoleRenderer(
        names={u.user_id: u.handle for u in DEMO_USERS},
        channels={DEMO_CHANNEL_ID: DEMO_CHANNEL_NAME},
        bold=out.isatty(),
    )
    slack = demo_slack(renderer=renderer, out=out, clock=clock).start()
    client = build_web_client(token="xoxb-demo", base_url=slack.base_url)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        slack_bot_token=None,
        slack_signing_secret=None,
        slack_app_token=None,
        dealbot_admins=tuple(u.user_id for u in DEMO_USERS if u.is_admin),
        dealbot_email_backend="outbox",
        dealbot_outbox_dir=DEMO_OUTBOX_DIR,
    )
    for draft in DEMO_OUTBOX_DIR.glob("*.eml"):
        draft.unlink()
    listeners = ListenerPool()
    app = create_app(
        settings,
        client=client,
        database=database,
        clock=clock,
        verify_requests=False,
        listener_executor=listeners,
    )
    jobs = DemoJobs(
        settings=settings,
        database=database,
        client=client,
        clock=clock,
        zone=DEMO_TIMEZONE,
        out=out,
    )
    console = DemoConsole(app=app, listeners=listeners, renderer=renderer, out=out, jobs=jobs)
    print(INTRO, file=out)
    interactive = stdin.isatty()
    for line in _lines(stdin, lambda: f"{console.user.handle}> "):
        if not interactive and line.strip():
            print(f"{console.user.handle}> {line.strip()}", file=out)
        if not console.handle(line):
            break
    slack.stop()
    database.dispose()
    return 0
