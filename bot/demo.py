"""`dealbot demo`: the product offline, on a seeded pipeline, through the real Bolt dispatch.

Typed slash commands become the same form-encoded requests Slack sends; Bolt routes them to
the real listeners; replies and Web API calls (modals, App Home) are drawn in the terminal.
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from slack_bolt import App, BoltRequest, BoltResponse
from sqlalchemy.engine import make_url

from bot.app import ListenerPool, create_app
from bot.console import ConsoleRenderer, Control, Surface, input_default
from bot.demo_jobs import DemoJobs
from bot.fake_slack import FakeSlackWebAPI, RecordedCall, UploadedFile
from bot.settings import Settings
from bot.slack import build_web_client
from domain.changes import ContactRef, DealChanges, DealRef
from domain.clock import Clock, FixedClock, SystemClock
from domain.dates import InvalidDate, parse_date
from domain.deals import Actor, DealService
from domain.evidence import COMMIT_EVIDENCE
from domain.money import Money
from domain.teams import TeamService
from reminders.jobs import week_period
from storage.database import Database
from storage.fx import FxRepository
from storage.migrate import upgrade
from storage.snapshots import WeeklyRepository

DEMO_TEAM = "Enterprise"
DEMO_CHANNEL_ID = "C0SALES"
DEMO_CHANNEL_NAME = "sales"
DEMO_TIMEZONE = "America/New_York"
DEMO_MAIL_DOMAIN = "dealbot-demo.example"
DEMO_CURRENCY = "USD"  # the team's reporting currency, and the quotas'
DEMO_EUR_RATE = Decimal("1.08")  # USD per euro, as `dealbot fx set EUR 1.08` stores it
# Follow-up drafts land here as .eml files (the outbox backend), and files the jobs attach
# (the digest's chart) as themselves; emptied of both on every run.
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
Buttons and form fields are numbered: :click 2 presses button 2, :fill fills in the open form
  field by field (Enter keeps the value shown) and submits it
Scheduled jobs: :jobs lists them, :run chase-next-steps (or pipeline-accuracy, manager-digest,
  rep-calibration)
Follow-up emails: /deal followup globex, /deal followup hooli redlines_review, or
  :run draft-follow-ups; drafts are .eml files in dealbot-demo-outbox/
Forecast: :as maria, then :run manager-digest (roll-up per rep, week over week, calibration);
  its chart is saved as a .png in dealbot-demo-outbox/. Globex is Commit without evidence:
  /deal globex evidence eb: https://demo.slack.com/archives/C0SALES/p1700000000000100
  Brightwell's pounds have no rate: before the digest, in another terminal,
  DATABASE_URL=sqlite:///dealbot-demo.db dealbot fx set GBP 1.27
You are @ana, a rep; @maria is the manager and an admin."""


class ConsoleCalls:
    """Draws the Web API calls users would see (messages, modals, App Home) in the terminal.

    The fake Slack calls it with each answered call (its JSON arguments decoded) before
    answering, so a reply is drawn before the console reads the next line.
    """

    def __init__(
        self, *, renderer: ConsoleRenderer, out: TextIO, files_dir: Path = DEMO_OUTBOX_DIR
    ) -> None:
        self.renderer = renderer
        self.out = out
        # Where a file posted with a message (the digest's chart) is written for you to open.
        self.files_dir = files_dir
        # Set once the fake exists (it is built with this observer): uploads are read from it.
        self.slack: FakeSlackWebAPI | None = None

    def __call__(self, call: RecordedCall) -> None:
        method, args = call.method, call.args
        if method in ("views.open", "views.push", "views.update", "views.publish"):
            # The id Slack gave the view is what a submission or a click in it names.
            answered = (call.response or {}).get("view") or {}
            self._print(self.renderer.view({**args["view"], "id": answered.get("id")}))
        elif method == "files.completeUploadExternal" and self.slack is not None:
            uploads = self.slack.uploads
            for attached in args.get("files") or []:
                upload = uploads.get(str(attached.get("id")))
                if upload is not None:
                    self._print(self._save(upload, title=str(attached.get("title") or "")))
        elif method in ("chat.postMessage", "chat.postEphemeral"):
            channel = str(args.get("channel") or "")
            ephemeral = method == "chat.postEphemeral"
            if ephemeral:
                where = f"(only visible to {self._name(str(args.get('user') or ''))})"
            elif channel.startswith("C"):
                where = f"(posted in #{self.renderer.channels.get(channel, channel)})"
            else:
                # A DM names its reader: a job's output says who each message went to.
                where = f"(DM to {self._name(channel.removeprefix('D'))})"
            surface = Surface("message", channel_id=channel, ephemeral=ephemeral)
            self._print(f"{where}\n" + self._message(args, surface))

    def _name(self, user_id: str) -> str:
        return "@" + self.renderer.names.get(user_id, user_id or "someone")

    def _save(self, upload: UploadedFile, *, title: str) -> str:
        """Write an attached file into the demo's folder; return the line that says where."""
        self.files_dir.mkdir(parents=True, exist_ok=True)
        # Only the file's own name: a name from a message never picks the folder.
        path = self.files_dir / (Path(upload.filename).name or "attachment")
        path.write_bytes(upload.content)
        shown = os.path.relpath(path)
        return f"(file attached: {title or path.name}; saved to {shown})"

    def _message(self, message: dict[str, Any], surface: Surface) -> str:
        blocks = message.get("blocks") or []
        if not blocks:
            return self.renderer.mrkdwn(message["text"])
        return self.renderer.blocks(blocks, surface=replace(surface, blocks=tuple(blocks)))

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
        slack: FakeSlackWebAPI,
        ask: Callable[[str], str | None],
        clock: Clock,
        jobs: DemoJobs | None = None,
    ) -> None:
        self.app = app
        self.listeners = listeners
        self.renderer = renderer
        self.out = out
        self.slack = slack
        # Reads one more line (a form field's value) after showing a prompt; None at the end.
        self.ask = ask
        self.clock = clock
        self.jobs = jobs
        self.user = USERS_BY_HANDLE["ana"]

    def handle(self, line: str) -> bool:
        """Run one line; return False when the user asked to quit."""
        line = line.strip()
        if not line:
            return True
        if line in (":quit", ":q", "exit", "quit"):
            return False
        if line.startswith(":click"):
            self._click(line.removeprefix(":click").strip())
            return True
        if line == ":fill":
            self._fill()
            return True
        self.renderer.new_turn()
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
                "response_url": self.slack.response_url_for("command"),
                "trigger_id": "demo.trigger",
            }
        )
        posted = len(self.slack.responses)
        response = self.app.dispatch(
            BoltRequest(body=body, headers={"content-type": ["application/x-www-form-urlencoded"]})
        )
        if response.body:
            message = json.loads(response.body)
            blocks = message.get("blocks", [])
            surface = Surface(
                "message", channel_id=DEMO_CHANNEL_ID, ephemeral=True, blocks=tuple(blocks)
            )
            self._say("(only visible to you)\n" + self.renderer.blocks(blocks, surface=surface))
        self.listeners.wait_until_idle()
        self._show_responses(since=posted)

    def _click(self, which: str) -> None:
        """Press a numbered button: a block_actions request through Bolt, as Slack sends it."""
        control = self._control(which)
        if control is None:
            return
        if control.kind == "input":
            self._say(f"{control.number} is a form field: type :fill to fill in the form.")
            return
        self._say(f"(you click [{control.label}])")
        self.renderer.new_turn()
        posted = len(self.slack.responses)
        self._dispatch_interaction(self._block_actions(control))
        self.listeners.wait_until_idle()
        self._show_responses(since=posted)

    def _control(self, which: str) -> Control | None:
        controls = self.renderer.controls
        if not which.isdigit() or int(which) not in controls:
            shown = ", ".join(f"{n} {c.label}" for n, c in controls.items()) or "none on screen"
            self._say(f"Say which button by its number, e.g. :click 1 ({shown}).")
            return None
        return controls[int(which)]

    def _block_actions(self, control: Control) -> dict[str, Any]:
        element, surface = control.element, control.surface
        payload: dict[str, Any] = {
            **self._interaction("block_actions"),
            "actions": [
                {
                    "type": "button",
                    "action_id": element.get("action_id", ""),
                    "block_id": control.block.get("block_id", ""),
                    "value": element.get("value", ""),
                    "text": element.get("text", {}),
                    "action_ts": "0",
                }
            ],
        }
        if surface.kind == "message":
            channel = surface.channel_id or DEMO_CHANNEL_ID
            payload["container"] = {
                "type": "message",
                "message_ts": "0",
                "channel_id": channel,
                "is_ephemeral": surface.ephemeral,
            }
            payload["channel"] = {"id": channel}
            payload["message"] = {"type": "message", "ts": "0", "blocks": list(surface.blocks)}
            payload["response_url"] = self.slack.response_url_for("click")
        else:
            payload["container"] = {"type": "view", "view_id": surface.view.get("id")}
            payload["view"] = dict(surface.view)
        return payload

    def _fill(self) -> None:
        """Walk the open form's inputs, reading each from the next line, then submit it."""
        modal = self.renderer.modal
        if modal is None:
            self._say("No form is open: a button such as Write post-mortem opens one.")
            return
        values: dict[str, Any] = {}
        for block in modal.get("blocks", []):
            if block.get("type") != "input":
                continue
            element = block.get("element", {})
            answer = self._ask_field(block, element)
            if answer is None:
                self._say("(form left open: the input ended)")
                return
            values.setdefault(block.get("block_id", ""), {})[element.get("action_id", "")] = answer
        self.renderer.new_turn()
        posted = len(self.slack.responses)
        submitted = {**modal, "state": {"values": values}}
        response = self._dispatch_interaction(
            {**self._interaction("view_submission"), "view": submitted}
        )
        answer = json.loads(response.body) if response.body else {}
        if answer.get("response_action") == "errors":
            labels = {
                b.get("block_id"): b["label"]["text"] for b in modal["blocks"] if "label" in b
            }
            for block_id, problem in answer.get("errors", {}).items():
                self._say(f"✘ {labels.get(block_id, block_id)}: {self.renderer.mrkdwn(problem)}")
            self._say("The form is still open: :fill again.")
        elif answer.get("response_action") in ("update", "push"):
            # The form changes in place: it keeps its id for the next :fill.
            self._say(self.renderer.view({**answer["view"], "id": modal.get("id")}))
        else:
            self.renderer.modal = None
            self._say("(form submitted)")
        self.listeners.wait_until_idle()
        self._show_responses(since=posted)

    def _ask_field(self, block: dict[str, Any], element: dict[str, Any]) -> dict[str, Any] | None:
        """Return one input's state as Slack sends it, asking until the typed value reads."""
        kind = element.get("type")
        label = block["label"]["text"] + (" (optional)" if block.get("optional") else "")
        default = input_default(element)
        options = element.get("options", [])
        if kind == "static_select":
            listed = ", ".join(f"{n}) {o['text']['text']}" for n, o in enumerate(options, 1))
            self._say(f"{label}: {listed}")
        while True:
            typed = self.ask(f"  {label}" + (f" [{default}]" if default else "") + ": ")
            if typed is None:
                return None
            typed = typed.strip()
            if kind == "plain_text_input":
                text = typed or element.get("initial_value")
                return {"type": kind, "value": text or None}
            if kind == "static_select":
                option = _pick_option(options, typed) if typed else element.get("initial_option")
                if option is not None or not typed:
                    return {"type": kind, "selected_option": option}
                self._say(f"`{typed}` is not one of the choices: type its number or its name.")
                continue
            if kind == "datepicker":
                if not typed:
                    return {"type": kind, "selected_date": element.get("initial_date")}
                try:
                    # Typed the way a rep types dates, as of the demo reps' today.
                    today = self.clock.now().astimezone(ZoneInfo(DEMO_TIMEZONE)).date()
                    picked = parse_date(typed, today=today)
                except InvalidDate as problem:
                    self._say(str(problem))
                    continue
                return {"type": kind, "selected_date": picked.isoformat()}
            return {"type": kind}

    def _interaction(self, kind: str) -> dict[str, Any]:
        return {
            "type": kind,
            "token": "demo",
            "team": {"id": "T0DEMO", "domain": "demo"},
            "user": {"id": self.user.user_id, "username": self.user.handle, "team_id": "T0DEMO"},
            "api_app_id": "A0DEMO",
            "trigger_id": "demo.trigger",
        }

    def _dispatch_interaction(self, payload: dict[str, Any]) -> BoltResponse:
        body = urlencode({"payload": json.dumps(payload)})
        return self.app.dispatch(
            BoltRequest(body=body, headers={"content-type": ["application/x-www-form-urlencoded"]})
        )

    def _show_responses(self, *, since: int) -> None:
        """Draw what listeners posted to a response_url (a click's answer, a replaced message)."""
        for response in self.slack.responses[since:]:
            body = response.body
            if body.get("delete_original"):
                self._say("(the message is removed)")
                continue
            where = (
                f"(posted in #{DEMO_CHANNEL_NAME})"
                if body.get("response_type") == "in_channel"
                else "(only visible to you)"
            )
            if body.get("replace_original"):
                where += " (replaces the message)"
            blocks = body.get("blocks") or []
            surface = Surface(
                "message",
                channel_id=DEMO_CHANNEL_ID,
                ephemeral=body.get("response_type") != "in_channel",
                blocks=tuple(blocks),
            )
            shown = (
                self.renderer.blocks(blocks, surface=surface)
                if blocks
                else self.renderer.mrkdwn(str(body.get("text", "")))
            )
            self._say(f"{where}\n{shown}")

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
    """Fill the demo database with a team, its history and deals in every stage.

    Seeded as it happened, oldest first, so the history, the weekly snapshots and the
    figures read from them agree: past quarters' closed deals (each rep's calibration), the
    quarter's deals logged six weeks ago, a snapshot every week as the digest job takes it,
    and last week's moves (one deal pushed out, one pulled in with its amount raised, one
    moved to Commit with its evidence cited). Everything is relative to `now`: no calendar date.
    """
    clock = FixedClock(at=now - dt.timedelta(days=300))
    deals = DealService(database=database, clock=clock, default_timezone=dt.UTC)  # type: ignore[arg-type]
    teams = TeamService(database=database, clock=clock, default_timezone=DEMO_TIMEZONE)
    ana, ben, chloe, maria = (Actor(u.user_id) for u in DEMO_USERS)
    reps = [ana.user_id, ben.user_id, chloe.user_id]
    admin = Actor(maria.user_id, is_admin=lambda: True)
    teams.create_team(admin, name=DEMO_TEAM, channel_id=DEMO_CHANNEL_ID, timezone=DEMO_TIMEZONE)
    teams.add_members(admin, name=DEMO_TEAM, role="manager", user_ids=[maria.user_id])
    teams.add_members(admin, name=DEMO_TEAM, role="rep", user_ids=reps)
    # The team's own reporting currency (`/dealbot team currency`), which the digest names.
    teams.set_currency(admin, name=DEMO_TEAM, currency=DEMO_CURRENCY)
    today = now.date()
    quarter = f"{today.year}-Q{(today.month - 1) // 3 + 1}"
    for rep, quota in ((ana, 300_000), (ben, 450_000), (chloe, 250_000)):
        teams.set_quota(
            admin, name=DEMO_TEAM, user_id=rep.user_id, amount=usd(quota), period=quarter
        )
    # Soylent is priced in euros and has a rate; Brightwell's pounds have none, so the
    # digest shows one honest exclusion with its fix (`dealbot fx set GBP <rate>`).
    with database.session() as session:
        FxRepository(session).set_rate(
            currency="EUR",
            rate=DEMO_EUR_RATE,
            effective_on=today - dt.timedelta(days=50),
            by=maria.user_id,
            at=clock.now(),
        )

    def day(offset: int) -> dt.date:
        return today + dt.timedelta(days=offset)

    def at(days_ago: int) -> None:
        clock.at = now - dt.timedelta(days=days_ago)

    def new(actor: Actor, account: str, cite: tuple[str, ...] = (), **changes: Any) -> DealRef:
        # Globex was logged as Commit before the gate: the cards show it still lacks
        # evidence. Every later move to Commit below goes through the gate.
        deal = deals.create_deal(actor, account, DealChanges(**changes), evidence_gate=False)
        ref = DealRef(name=None, deal_id=deal.id)
        cite_all(actor, ref, cite)
        return ref

    def cite_all(actor: Actor, ref: DealRef, kinds: tuple[str, ...]) -> None:
        for number, kind in enumerate(kinds):
            message_id = f"msg-f:{1_780_000_000_000_000_000 + (ref.deal_id or 0) * 10 + number}"
            deals.cite_evidence(actor, ref, kind, "gmail", message_id)

    def snapshot(days_ago: int) -> None:
        # What the Monday digest job stores: the open deals as they stood that week.
        at(days_ago)
        taken = clock.now()
        with database.session() as session:
            WeeklyRepository(session).snapshot_open_deals(
                week=week_period(taken, ZoneInfo(DEMO_TIMEZONE)), owner_ids=reps, at=taken
            )

    # Past quarters: each rep's calls, for rep calibration (date called vs the day closed).
    # (owner, account, amount, logged and closed days ago, close date called in days ago)
    past = (
        (ben, "Oscorp", 80_000, 270, 190, 200),
        (ana, "Vehement Capital", 40_000, 260, 175, 180),
        (chloe, "Gringotts", 20_000, 240, 150, 150),
        (ana, "Massive Dynamic", 30_000, 200, 130, 120),
        (chloe, "Pied Piper", 35_000, 175, 95, 100),
        (ben, "Tyrell Corp", 55_000, 170, 112, 110),
    )
    logged: dict[str, DealRef] = {}
    # Logged and closed in the order it happened: (days ago, is it the close, the deal).
    events = sorted(
        [(row[3], False, row) for row in past] + [(row[4], True, row) for row in past],
        key=lambda event: -event[0],
    )
    for days_ago, closing, (rep, account, amount, _, _, called) in events:
        at(days_ago)
        if not closing:
            logged[account] = new(
                rep, account, amount=usd(amount), stage="proposal", close_date=day(-called)
            )
            continue
        lost = account in ("Massive Dynamic", "Pied Piper")
        deals.close_deal(
            rep, logged[account], won=not lost, reason="No budget this year" if lost else None
        )

    # Six weeks ago: the quarter's deals are logged.
    at(45)
    initech = new(
        ana,
        "Initech",
        amount=usd(40_000),
        stage="demo",
        close_date=day(30),
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
        cite=("process",),
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
        forecast="best_case",
        paper_process="MSA redlines with legal; PO via Coupa",
        economic_buyer=ContactRef("Gavin Belson", "gavin@hooli.com", None),
        champion=ContactRef("Jared Dunn", "jared@hooli.com", None),
    )
    dunder = new(
        ana,
        "Dunder Mifflin",
        amount=usd(35_000),
        stage="negotiation",
        close_date=day(-18),
        forecast="best_case",
        paper_process="Order form; PO from Scranton",
        economic_buyer=ContactRef("David Wallace", "david@dundermifflin.example", None),
    )
    stark = new(ben, "Stark Industries", stage="prospecting")
    wayne = new(ben, "Wayne Enterprises", amount=usd(90_000), stage="proposal", close_date=day(-5))
    acme = new(
        chloe,
        "Acme Corp",
        amount=usd(60_000),
        stage="proposal",
        close_date=day(25),
        forecast="best_case",
        buying_criteria="Replaces three spreadsheets; live by Q1",
        buying_process="Pilot, then procurement",
        paper_process="Order form on their paper; PO from procurement",
        economic_buyer=ContactRef("Wile E. Coyote", "wile@acme.example", None),
        champion=ContactRef("Road Runner", "road@acme.example", None),
        contacts=(ContactRef("Marvin Martian", "marvin@acme.example", None),),
    )
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
        chloe, acme, what="Pricing call with procurement", due=day(5), owner_id=chloe.user_id
    )
    deals.add_next_step(ben, stark, what="Find the economic buyer", due=None, owner_id=None)
    # Days later: Ben and Ana cite their evidence from the threads, then call Commit.
    at(44)
    cite_all(ben, hooli, COMMIT_EVIDENCE)
    cite_all(ana, dunder, COMMIT_EVIDENCE)
    at(43)
    deals.update_deal(ben, hooli, DealChanges(forecast="commit"))
    deals.update_deal(ana, dunder, DealChanges(forecast="commit"))
    snapshot(42)
    snapshot(35)
    snapshot(28)
    snapshot(21)

    at(20)
    deals.close_deal(ana, dunder, won=True, reason="Signed two days early")
    new(
        ben,
        "Brightwell Ltd",
        amount=Money(Decimal(40_000), "GBP"),
        stage="demo",
        close_date=day(28),
        forecast="best_case",
    )

    # Two weeks ago: Hooli slips, the first time.
    at(15)
    deals.update_deal(ben, hooli, DealChanges(close_date=day(7)))
    snapshot(14)
    snapshot(7)  # last week's: this week's flow is measured against it

    # This week: Hooli slips again; Wayne is won and Initrode lost.
    at(6)
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
    # Initech adds EU hosting and wants it live sooner; Acme earns its Commit. (Globex is
    # left quiet since it was logged: the follow-up job drafts its re-engage email.)
    at(3)
    deals.update_deal(ana, initech, DealChanges(amount=usd(48_000), close_date=day(20)))
    at(2)
    cite_all(chloe, acme, COMMIT_EVIDENCE)
    deals.update_deal(chloe, acme, DealChanges(forecast="commit"))

    # Today: fresh next steps.
    at(0)
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


def _pick_option(options: list[dict[str, Any]], typed: str) -> dict[str, Any] | None:
    """Return the option typed by its number, its label or its value, or None."""
    if typed.isdigit() and 1 <= int(typed) <= len(options):
        return options[int(typed) - 1]
    wanted = typed.lower()
    return next(
        (o for o in options if wanted in (o["text"]["text"].lower(), str(o["value"]).lower())),
        None,
    )


class LineReader:
    """Reads the demo's lines: typed at a prompt, or piped in and echoed after the prompt."""

    def __init__(self, *, stream: TextIO, out: TextIO) -> None:
        self.stream = stream
        self.out = out
        self.interactive = stream.isatty()

    def read(self, prompt: str, *, echo_empty: bool = False) -> str | None:
        """Return the next line (without its newline), or None at the end of the input.

        Piped lines are echoed after the prompt; an empty one only when it answers a form
        field (`echo_empty`), where Enter means "keep the value shown".
        """
        if self.interactive:
            try:
                return input(prompt)
            except EOFError:
                return None
        line = self.stream.readline()
        if not line:
            return None
        if line.strip() or echo_empty:
            print(f"{prompt}{line.strip()}", file=self.out)
        return line.rstrip("\n")


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
    for earlier in (*DEMO_OUTBOX_DIR.glob("*.eml"), *DEMO_OUTBOX_DIR.glob("*.png")):
        earlier.unlink()
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
    reader = LineReader(stream=stdin, out=out)
    console = DemoConsole(
        app=app,
        listeners=listeners,
        renderer=renderer,
        out=out,
        slack=slack,
        ask=lambda prompt: reader.read(prompt, echo_empty=True),
        clock=clock,
        jobs=jobs,
    )
    print(INTRO, file=out)
    while (line := reader.read(f"{console.user.handle}> ")) is not None:
        if not console.handle(line):
            break
    slack.stop()
    database.dispose()
    return 0
