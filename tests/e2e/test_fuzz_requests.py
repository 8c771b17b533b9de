"""Property-based fuzzing of every kind of signed request Slack sends us.

Each request is signed and goes through the whole WSGI app (body cap, Bolt's parsing and
signature check, replay receipts, listeners, storage). The real HTTP path is pinned by the
regression tests; here the bulk is sent in-process so that more than ten thousand requests
fit in a CI run. Properties: never a 5xx, never an error logged by a listener, and the
database changes only when the answer says something was saved.
"""

from __future__ import annotations

import io
import itertools
import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from bot.app import ListenerPool, create_app
from bot.fake_slack import FakeSlackWebAPI
from bot.server import build_wsgi_app
from bot.settings import load_settings
from domain.clock import FixedClock
from handlers import blocks, reminder_blocks
from storage.database import Database
from storage.migrate import upgrade
from tests.e2e.harness import NOW, SIGNING_SECRET
from tests.fakes.slack_signing import FORM_CONTENT_TYPE, JSON_CONTENT_TYPE, sign
from tests.fakes.slack_spec import slack_spec_dir

# Requests per example: batching keeps hypothesis' own overhead small next to the app's.
BATCH = 16
# Examples per fuzz test; four tests of 165 batches of 16 send 10,560 requests in all.
EXAMPLES = 165
MINIMUM_PER_TEST = 2_500

USERS = ("U0ANA", "U0BEN", "U0ROOT", "U0NOBODY", "", "U" + "9" * 40)
COUNTED_TABLES = (
    "deals",
    "contacts",
    "next_steps",
    "deal_changes",
    "post_mortems",
    "teams",
    "team_members",
    "quotas",
    "deal_snoozes",
)

# --- strategies -------------------------------------------------------------------------

SEED_TEXTS = {
    "/deal": [
        "",
        "new Initech 50k stage:demo close:dec 15",
        "new Globex $1.2M forecast:commit close:eoq",
        'initech stage:proposal amount:60k buyer:<@U0BEN|ben> criteria:"SSO"',
        "show initech",
        "show #1",
        "won initech signed",
        "lost initech price",
        "followup initech",
        'initech name:"Initech East" owner:<@U0BEN|ben>',
        "initech evidence eb: https://example.slack.com/archives/C1/p1",
    ],
    "/nextstep": [
        "initech Call Bill due:fri owner:<@U0BEN|ben>",
        "done initech",
        "#1 Send proposal due:in 2 weeks",
    ],
    "/pipeline": ["", "me", "team", "<@U0BEN|ben>", "team Enterprise"],
    "/dealbot": [
        "help",
        "team create Enterprise <#C0SALES|sales> tz:Europe/Paris",
        "team add Enterprise rep <@U0ANA|ana> <@U0BEN|ben>",
        "team quota Enterprise <@U0ANA|ana> 100k period:2026-Q4",
        "team show",
        "team list",
    ],
}

NASTY_WORDS = [
    "#0",
    f"#{10**30}",
    "#-1",
    "0000-01-01",
    "close:0000-01-01",
    "close:9999-12-31",
    "due:9999-12-31",
    "amount:1e400",
    "amount:99999999999999999999",
    "stage:",
    "forecast:",
    '"',
    '""',
    "<@>",
    "<#|>",
    "<mailto:|>",
    "\x00",
    "\u202e",
    "💸",
    "payload",
    "%",
    "&text=",
    "new",
    "done",
    "show",
    "team",
    "*_~`",
    "<!channel>",
]

words = st.one_of(st.sampled_from(NASTY_WORDS), st.text(max_size=12))


@st.composite
def mutated_text(draw: st.DrawFn, command: str) -> str:
    """Return a command's text: a realistic one with words inserted, dropped or swapped."""
    tokens = draw(st.sampled_from(SEED_TEXTS[command])).split(" ")
    for _ in range(draw(st.integers(0, 3))):
        position = draw(st.integers(0, len(tokens)))
        match draw(st.sampled_from(("insert", "drop", "replace", "cut"))):
            case "insert":
                tokens.insert(position, draw(words))
            case "drop" if tokens:
                tokens.pop(min(position, len(tokens) - 1))
            case "replace" if tokens:
                tokens[min(position, len(tokens) - 1)] = draw(words)
            case "cut":
                joined = " ".join(tokens)
                tokens = [joined[: draw(st.integers(0, len(joined)))]]
    return " ".join(tokens)


@st.composite
def slash_commands(draw: st.DrawFn) -> tuple[str, bytes]:
    command = draw(st.sampled_from(tuple(SEED_TEXTS)))
    fields: dict[str, Any] = {
        "token": "deprecated",
        "team_id": "T1",
        "channel_id": draw(st.sampled_from(("C0TEAM", "D0DM", ""))),
        "user_id": draw(st.sampled_from(USERS[:4])),
        "command": command,
        "text": draw(mutated_text(command)),
        "api_app_id": "A0DEALBOT",
        "response_url": "RESPONSE_URL",
        "trigger_id": draw(st.sampled_from(("trigger.1", ""))),
    }
    for name in draw(st.sets(st.sampled_from(("channel_id", "trigger_id", "text")))):
        del fields[name]
    return FORM_CONTENT_TYPE, urlencode(fields).encode()


json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**31), max_value=10**31),
    st.text(max_size=20),
    st.sampled_from(NASTY_WORDS),
)
json_values = st.recursive(
    json_leaf,
    lambda children: st.one_of(
        st.lists(children, max_size=3), st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=3,
)


def button_values() -> st.SearchStrategy[Any]:
    deal_ids = st.one_of(st.integers(-3, 6), st.just(10**30), st.text(max_size=6))
    choice = st.fixed_dictionaries(
        {
            "command": st.sampled_from(("/deal", "/pipeline", "/nextstep", "/nope")),
            "text": st.one_of(st.sampled_from(("show initech", "me", "won initech x")), words),
            "deal_id": deal_ids,
        }
    )
    return st.one_of(
        choice.map(json.dumps),
        deal_ids.map(str),
        st.tuples(deal_ids, st.sampled_from((1, 3, 7, -1, 10**30))).map(lambda p: f"{p[0]}:{p[1]}"),
        json_values.map(json.dumps),
        words,
        st.none(),
    )


ACTION_IDS = (
    f"{blocks.PICK_DEAL_ACTION}_0",
    f"{blocks.PICK_DEAL_ACTION}_4",
    blocks.SHARE_ACTION,
    blocks.OPEN_POST_MORTEM_ACTION,
    blocks.DRAFT_FOLLOW_UP_ACTION,
    reminder_blocks.LOG_STEP_ACTION,
    reminder_blocks.MARK_DONE_ACTION,
    f"{reminder_blocks.SNOOZE_ACTION}_1",
    "unknown_action",
)


@st.composite
def block_actions(draw: st.DrawFn) -> tuple[str, bytes]:
    action = {
        "type": "button",
        "action_id": draw(st.sampled_from(ACTION_IDS)),
        "block_id": "b",
        "value": draw(button_values()),
        "action_ts": "1.1",
    }
    payload: dict[str, Any] = {
        "type": "block_actions",
        "team": {"id": "T1"},
        "user": {"id": draw(st.sampled_from(USERS[:4]))},
        "api_app_id": "A0DEALBOT",
        "trigger_id": draw(st.sampled_from(("trigger.1", None))),
        "channel": draw(st.sampled_from(({"id": "C0TEAM"}, None, {}))),
        "container": {"type": "message", "is_ephemeral": True},
        "response_url": "RESPONSE_URL",
        "actions": [action],
    }
    if payload["channel"] is None:
        del payload["channel"]
    return FORM_CONTENT_TYPE, urlencode({"payload": json.dumps(payload)}).encode()


def _input(kind: str, key: str, value: Any) -> dict[str, Any]:
    return {"value": {"type": kind, key: value}}


@st.composite
def view_submissions(draw: st.DrawFn) -> tuple[str, bytes]:
    callback_id = draw(
        st.sampled_from(
            (blocks.NEW_DEAL_VIEW, blocks.POST_MORTEM_VIEW, reminder_blocks.LOG_STEP_VIEW)
        )
    )
    texts = st.one_of(st.none(), words, st.sampled_from(("Initech", "50k", "Price", "Call Bill")))
    dates = st.one_of(
        st.none(),
        st.sampled_from(("2026-12-15", "0000-01-01", "9999-12-31", "2026-02-30", "tomorrow")),
        st.dates().map(str),
        json_leaf,
    )
    options = st.one_of(
        st.none(),
        st.fixed_dictionaries({"value": st.sampled_from(("demo", "commit", "won", "x", ""))}),
        json_values,
    )
    values = {
        "account": _input("plain_text_input", "value", draw(texts)),
        "amount": _input("plain_text_input", "value", draw(texts)),
        "stage": _input("static_select", "selected_option", draw(options)),
        "forecast": _input("static_select", "selected_option", draw(options)),
        "close_date": _input("datepicker", "selected_date", draw(dates)),
        "reason": _input("plain_text_input", "value", draw(texts)),
        "competitor": _input("plain_text_input", "value", draw(texts)),
        "lessons": _input("plain_text_input", "value", draw(json_leaf)),
        "what": _input("plain_text_input", "value", draw(texts)),
        "due": _input("datepicker", "selected_date", draw(dates)),
    }
    metadata = draw(
        st.one_of(
            st.fixed_dictionaries(
                {"deal_id": st.one_of(st.integers(-2, 6), st.just(10**30), json_leaf)}
            ).map(json.dumps),
            st.fixed_dictionaries({"channel_id": json_leaf}).map(json.dumps),
            json_values.map(json.dumps),
            st.text(max_size=10),
        )
    )
    payload = {
        "type": "view_submission",
        "team": {"id": "T1"},
        "user": {"id": draw(st.sampled_from(USERS[:4]))},
        "api_app_id": "A0DEALBOT",
        "trigger_id": "trigger.view",
        "view": {
            "id": "V1",
            "type": "modal",
            "callback_id": callback_id,
            "private_metadata": metadata,
            "state": {"values": values},
        },
    }
    return FORM_CONTENT_TYPE, urlencode({"payload": json.dumps(payload)}).encode()


event_ids = itertools.count(1)


@st.composite
def events(draw: st.DrawFn) -> tuple[str, bytes]:
    event: dict[str, Any] = {
        "type": draw(st.sampled_from(("app_home_opened", "app_home_opened", "message", "x"))),
        "user": draw(st.sampled_from(USERS)),
        "channel": "D1",
        "tab": draw(st.sampled_from(("home", "messages", "", None))),
    }
    for name in draw(st.sets(st.sampled_from(("user", "tab", "channel")))):
        del event[name]
    body = {
        "type": "event_callback",
        "team_id": "T1",
        "api_app_id": "A0DEALBOT",
        "event": event,
        "event_id": f"Ev{next(event_ids)}",
        "event_time": 1,
    }
    return JSON_CONTENT_TYPE, json.dumps(body).encode()


# --- the app under fuzz -----------------------------------------------------------------


@dataclass
class FuzzedApp:
    wsgi: Any
    database: Database
    listeners: ListenerPool
    response_url: str
    sent: int = 0
    statuses: dict[int, int] = field(default_factory=dict)

    def send(self, content_type: str, body: bytes) -> tuple[int, bytes]:
        """Return the status and body of one signed request through the whole WSGI app."""
        body = body.replace(b"RESPONSE_URL", self.response_url.encode())
        headers = sign(body, SIGNING_SECRET)
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/slack/events",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "CONTENT_TYPE": content_type,
            "CONTENT_LENGTH": str(len(body)),
            "HTTP_X_SLACK_REQUEST_TIMESTAMP": headers["X-Slack-Request-Timestamp"],
            "HTTP_X_SLACK_SIGNATURE": headers["X-Slack-Signature"],
            "wsgi.input": io.BytesIO(body),
        }
        statuses: list[str] = []
        answer = b"".join(self.wsgi(environ, lambda status, _: statuses.append(status)))
        status = int(statuses[0].split()[0])
        self.sent += 1
        self.statuses[status] = self.statuses.get(status, 0) + 1
        return status, answer

    def row_counts(self) -> tuple[int, ...]:
        counts = ", ".join(f"(SELECT count(*) FROM {table})" for table in COUNTED_TABLES)
        with self.database.session() as session:
            return tuple(session.execute(text(f"SELECT {counts}")).one())


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzedApp]:
    with FakeSlackWebAPI(spec_dir=slack_spec_dir()) as slack:
        slack.set_user("U0ANA", name="ana")
        slack.set_user("U0BEN", name="ben")
        slack.set_user("U0ROOT", name="root", is_admin=True)
        url = f"sqlite:///{Path(tmp_path_factory.mktemp('fuzz')) / 'fuzz.db'}"
        upgrade(url)
        database = Database.from_url(url)
        settings_ = load_settings(
            _env_file=None,
            slack_bot_token="xoxb-fuzz",
            slack_signing_secret=SIGNING_SECRET,
            slack_api_url=slack.base_url,
            database_url=url,
            dealbot_admins="U0ROOT",
            dealbot_timezone="America/New_York",
        )
        listeners = ListenerPool(max_workers=4)
        app = create_app(
            settings_, database=database, clock=FixedClock(at=NOW), listener_executor=listeners
        )
        fuzzed = FuzzedApp(
            wsgi=build_wsgi_app(app),
            database=database,
            listeners=listeners,
            response_url=slack.response_url_for("fuzz"),
        )
        # A few deals and a team, so that references resolve and buttons act.
        for command, words_ in [
            ("/deal", "new Initech 50k stage:demo close:dec 15"),
            ("/deal", "new Globex 20k"),
            ("/deal", "new Initrode 10k"),
        ]:
            body = urlencode(
                {"command": command, "text": words_, "user_id": "U0ANA", "team_id": "T1"}
            ).encode()
            fuzzed.send(FORM_CONTENT_TYPE, body)
        try:
            yield fuzzed
        finally:
            listeners.shutdown(wait=True)
            database.dispose()
        print(f"\nfuzz: {fuzzed.sent} signed requests, statuses {sorted(fuzzed.statuses.items())}")


@pytest.fixture
def listener_errors(caplog: pytest.LogCaptureFixture) -> Callable[[], list[str]]:
    caplog.set_level(logging.ERROR)
    return lambda: [r.getMessage()[:200] for r in caplog.records if r.levelno >= logging.ERROR]


def _saved(answer: bytes) -> bool:
    """Return whether a synchronous answer may have saved something (it is not a refusal)."""
    if not answer.strip():
        return True
    try:
        parsed = json.loads(answer)
    except ValueError:
        return False
    if not isinstance(parsed, dict):
        return False
    refused = parsed.get("response_action") == "errors" or str(parsed.get("text", "")).startswith(
        ":warning:"
    )
    return not refused and "error" not in parsed


def _check_batch(
    fuzzed: FuzzedApp, batch: list[tuple[str, bytes]], errors: Callable[[], list[str]]
) -> None:
    for content_type, body in batch:
        before = fuzzed.row_counts()
        status, answer = fuzzed.send(content_type, body)
        fuzzed.listeners.wait_until_idle()
        assert status < 500, (status, body[:300])
        if not _saved(answer) or status >= 400:
            assert fuzzed.row_counts() == before, ("refused but wrote", body[:300], answer[:300])
    assert errors() == []


FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _count_sent(fuzzed: FuzzedApp) -> Callable[[], int]:
    start = fuzzed.sent
    return lambda: fuzzed.sent - start


def test_fuzzed_slash_commands_never_answer_5xx_or_write_on_refusal(
    fuzzed: FuzzedApp, listener_errors: Callable[[], list[str]]
) -> None:
    sent = _count_sent(fuzzed)

    @FUZZ_SETTINGS
    @given(st.lists(slash_commands(), min_size=BATCH, max_size=BATCH))
    def fuzz(batch: list[tuple[str, bytes]]) -> None:
        _check_batch(fuzzed, batch, listener_errors)

    fuzz()
    assert sent() >= MINIMUM_PER_TEST


def test_fuzzed_button_clicks_never_answer_5xx_or_fail_after_the_ack(
    fuzzed: FuzzedApp, listener_errors: Callable[[], list[str]]
) -> None:
    sent = _count_sent(fuzzed)

    @FUZZ_SETTINGS
    @given(st.lists(block_actions(), min_size=BATCH, max_size=BATCH))
    def fuzz(batch: list[tuple[str, bytes]]) -> None:
        _check_batch(fuzzed, batch, listener_errors)

    fuzz()
    assert sent() >= MINIMUM_PER_TEST


def test_fuzzed_form_submissions_never_answer_5xx_or_write_on_refusal(
    fuzzed: FuzzedApp, listener_errors: Callable[[], list[str]]
) -> None:
    sent = _count_sent(fuzzed)

    @FUZZ_SETTINGS
    @given(st.lists(view_submissions(), min_size=BATCH, max_size=BATCH))
    def fuzz(batch: list[tuple[str, bytes]]) -> None:
        _check_batch(fuzzed, batch, listener_errors)

    fuzz()
    assert sent() >= MINIMUM_PER_TEST


def test_fuzzed_events_never_answer_5xx_or_fail_after_the_ack(
    fuzzed: FuzzedApp, listener_errors: Callable[[], list[str]]
) -> None:
    sent = _count_sent(fuzzed)

    @FUZZ_SETTINGS
    @given(st.lists(events(), min_size=BATCH, max_size=BATCH))
    def fuzz(batch: list[tuple[str, bytes]]) -> None:
        _check_batch(fuzzed, batch, listener_errors)

    fuzz()
    assert sent() >= MINIMUM_PER_TEST
