"""POST /crm/hubspot/webhooks: HubSpot's v3 signature, a fast answer, deals pulled after.

Deliveries are signed with hubspot-api-client's own `Signature.get_signature`, so the check
here agrees with HubSpot's published implementation, not merely with itself.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from hubspot.utils.signature import Signature
from slack_sdk import WebClient

from bot.crm_setup import CrmRuntime, hubspot_webhooks_app
from bot.fake_slack import FakeSlackWebAPI
from bot.server import (
    HUBSPOT_WEBHOOKS_PATH,
    MAX_BODY_BYTES,
    BackgroundServer,
    build_side_pages,
)
from bot.settings import Settings, SettingsError, load_settings
from crm.hubspot_webhooks import HubSpotWebhooks, deal_ids, signed_uri
from crm.sync import RefusalNotice
from domain.clock import FixedClock
from storage.database import Database
from storage.migrate import upgrade
from tests.bot.crm_doubles import EngineDouble, EngineScript
from tests.databases import sqlite_url

REPO = Path(__file__).resolve().parents[2]
SECRET = "hubspot-client-secret"
NOW = dt.datetime(2025, 12, 1, 10, 5, tzinfo=dt.UTC)
EVENTS = [
    {"eventId": 1, "subscriptionType": "deal.propertyChange", "objectId": 1234, "portalId": 62515},
    {"eventId": 2, "subscriptionType": "contact.creation", "objectId": 99},
    {"eventId": 3, "subscriptionType": "deal.creation", "objectId": 5678},
    {"eventId": 4, "subscriptionType": "deal.propertyChange", "objectId": 1234},
    {
        "eventId": 5,
        "subscriptionType": "object.propertyChange",
        "objectTypeId": "0-3",
        "objectId": 42,
    },
    {"eventId": 6, "subscriptionType": "object.creation", "objectTypeId": "0-1", "objectId": 7},
]


class Pulls:
    """Records the deal ids handed to the background, and lets a test hold it up."""

    def __init__(self) -> None:
        self.ids: list[tuple[str, ...]] = []
        self.release = threading.Event()
        self.release.set()

    def __call__(self, ids: Any) -> None:
        self.release.wait(timeout=10)
        self.ids.append(tuple(ids))


@pytest.fixture
def pulls() -> Pulls:
    return Pulls()


@pytest.fixture
def served(pulls: Pulls) -> Iterator[tuple[str, ThreadPoolExecutor]]:
    executor = ThreadPoolExecutor(max_workers=1)
    hooks = HubSpotWebhooks(
        secret=SECRET, clock=FixedClock(at=NOW), on_deals=pulls, executor=executor
    )
    server = BackgroundServer(build_side_pages(hubspot_webhooks=hooks)).start()
    try:
        yield f"http://127.0.0.1:{server.port}", executor
    finally:
        server.stop()
        executor.shutdown(wait=True)


def timestamp(at: dt.datetime) -> str:
    return str(int(at.timestamp() * 1000))


def post(
    origin: str,
    body: bytes,
    *,
    at: dt.datetime = NOW,
    secret: str = SECRET,
    signed_body: bytes | None = None,
    uri: str | None = None,
    headers: dict[str, str] | None = None,
    query: str = "",
) -> requests.Response:
    url = f"{origin}{HUBSPOT_WEBHOOKS_PATH}{query}"
    stamp = timestamp(at)
    signature = Signature.get_signature(
        secret,
        (signed_body if signed_body is not None else body).decode("utf-8"),
        "v3",
        http_uri=uri or url,
        http_method="POST",
        timestamp=stamp,
    )
    return requests.post(
        url,
        data=body,
        headers={
            "Content-Type": "application/json",
            "X-HubSpot-Signature-v3": signature,
            "X-HubSpot-Request-Timestamp": stamp,
            **(headers or {}),
        },
        timeout=5,
    )


def settled(executor: ThreadPoolExecutor) -> None:
    executor.submit(lambda: None).result(timeout=10)  # one worker: all before it are done


def test_a_signed_delivery_answers_200_and_pulls_its_deals_once_each(
    served: tuple[str, ThreadPoolExecutor], pulls: Pulls
) -> None:
    origin, executor = served
    answer = post(origin, json.dumps(EVENTS).encode())
    assert answer.status_code == 200
    settled(executor)
    assert pulls.ids == [("1234", "5678", "42")]


def test_the_answer_does_not_wait_for_the_pull(
    served: tuple[str, ThreadPoolExecutor], pulls: Pulls
) -> None:
    origin, executor = served
    pulls.release.clear()  # the pull is stuck...
    answer = post(origin, json.dumps(EVENTS[:1]).encode())
    assert answer.status_code == 200  # ...and HubSpot has its answer anyway
    assert pulls.ids == []
    pulls.release.set()
    settled(executor)
    assert pulls.ids == [("1234",)]


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param({"secret": "someone-elses-secret"}, id="wrong-secret"),
        pytest.param({"signed_body": b"[]"}, id="body-changed-after-signing"),
        pytest.param({"uri": "https://elsewhere.example/crm/hubspot/webhooks"}, id="other-uri"),
        pytest.param({"at": NOW - dt.timedelta(minutes=6)}, id="older-than-5-minutes"),
        pytest.param({"at": NOW + dt.timedelta(minutes=6)}, id="from-the-future"),
    ],
)
def test_a_bad_signature_or_a_stale_delivery_is_refused_with_401(
    served: tuple[str, ThreadPoolExecutor], pulls: Pulls, tamper: dict[str, Any]
) -> None:
    origin, executor = served
    body = json.dumps(EVENTS).encode()
    # A stale one is signed correctly for its own timestamp: only its age is wrong.
    answer = post(origin, body, **tamper)
    assert answer.status_code == 401
    settled(executor)
    assert pulls.ids == []


def test_a_delivery_four_minutes_old_is_still_taken(
    served: tuple[str, ThreadPoolExecutor], pulls: Pulls
) -> None:
    origin, executor = served
    answer = post(origin, json.dumps(EVENTS[:1]).encode(), at=NOW - dt.timedelta(minutes=4))
    assert answer.status_code == 200
    settled(executor)
    assert pulls.ids == [("1234",)]


def test_missing_headers_are_refused(served: tuple[str, ThreadPoolExecutor]) -> None:
    origin, _ = served
    answer = requests.post(f"{origin}{HUBSPOT_WEBHOOKS_PATH}", data=b"[]", timeout=5)
    assert answer.status_code == 401
    answer = requests.post(
        f"{origin}{HUBSPOT_WEBHOOKS_PATH}",
        data=b"[]",
        headers={"X-HubSpot-Signature-v3": "x", "X-HubSpot-Request-Timestamp": "soon"},
        timeout=5,
    )
    assert answer.status_code == 401


def test_the_uri_behind_a_tls_proxy_is_the_one_hubspot_called(
    served: tuple[str, ThreadPoolExecutor], pulls: Pulls
) -> None:
    origin, executor = served
    public = f"https://dealbot.initech.com{HUBSPOT_WEBHOOKS_PATH}?portal=62515"
    answer = post(
        origin,
        json.dumps(EVENTS[:1]).encode(),
        uri=public,
        query="?portal=62515",
        # What a proxy passes on; waitress drops the untrusted X-Forwarded-* headers.
        headers={"Host": "dealbot.initech.com", "X-Forwarded-Proto": "https"},
    )
    assert answer.status_code == 200
    settled(executor)
    assert pulls.ids == [("1234",)]


def test_encoded_characters_in_the_query_are_signed_decoded(
    served: tuple[str, ThreadPoolExecutor],
) -> None:
    origin, _ = served
    query = "?next=%2Fdeals%3Fid%3D1&name=a%20b"
    url = f"{origin}{HUBSPOT_WEBHOOKS_PATH}"
    # HubSpot signs %2F and %3F decoded, and leaves %3D and %20 as they came.
    answer = post(origin, b"[]", query=query, uri=f"{url}?next=/deals?id%3D1&name=a%20b")
    assert answer.status_code == 200


def test_signed_uri_decodes_only_hubspots_list() -> None:
    assert signed_uri("https://x.io/p?a=%3a%2F%3F%40%21%24%27%28%29%2A%2C%3B&b=%20%3D") == (
        "https://x.io/p?a=:/?@!$'()*,;&b=%20%3D"
    )


@pytest.mark.parametrize("body", [b"{not json", b'{"objectId": 1}', b"\xff\xfe"])
def test_a_signed_body_that_is_not_a_list_of_events_is_a_400(
    served: tuple[str, ThreadPoolExecutor], body: bytes
) -> None:
    origin, _ = served
    url = f"{origin}{HUBSPOT_WEBHOOKS_PATH}"
    stamp = timestamp(NOW)
    # Signed over the raw bytes, as HubSpot would sign whatever it sent.
    from crm.hubspot_webhooks import v3_signature

    signature = v3_signature(secret=SECRET, method="POST", uri=url, body=body, timestamp=stamp)
    answer = requests.post(
        url,
        data=body,
        headers={"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": stamp},
        timeout=5,
    )
    assert answer.status_code == 400


def test_only_post_is_served(served: tuple[str, ThreadPoolExecutor]) -> None:
    origin, _ = served
    assert requests.get(f"{origin}{HUBSPOT_WEBHOOKS_PATH}", timeout=5).status_code == 405


def test_a_body_over_the_cap_is_refused_unread(served: tuple[str, ThreadPoolExecutor]) -> None:
    origin, _ = served
    answer = requests.post(
        f"{origin}{HUBSPOT_WEBHOOKS_PATH}", data=b"[" + b" " * MAX_BODY_BYTES + b"]", timeout=10
    )
    assert answer.status_code == 413


def test_without_a_webhook_secret_the_route_is_not_there() -> None:
    server = BackgroundServer(build_side_pages()).start()
    try:
        url = f"http://127.0.0.1:{server.port}{HUBSPOT_WEBHOOKS_PATH}"
        assert requests.post(url, data=b"[]", timeout=5).status_code == 404
    finally:
        server.stop()


def test_bodies_never_reach_the_log(
    served: tuple[str, ThreadPoolExecutor], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    origin, executor = served
    body = json.dumps([{**EVENTS[0], "propertyValue": "secret-deal-terms"}]).encode()
    post(origin, body)
    post(origin, body, secret="wrong")
    settled(executor)
    assert "secret-deal-terms" not in caplog.text
    assert SECRET not in caplog.text


def test_deal_ids_ignores_what_is_not_a_deal_event() -> None:
    assert deal_ids([*EVENTS, "junk", {"subscriptionType": "deal.deletion", "objectId": "x1"}]) == (
        "1234",
        "5678",
        "42",
    )


# --- wired to the engine -----------------------------------------------------------------------


def hubspot_settings(tmp_path: Path, slack: FakeSlackWebAPI, **more: Any) -> Settings:
    url = sqlite_url(tmp_path)
    upgrade(url)
    values: dict[str, Any] = {
        "dealbot_crm": "hubspot",
        "hubspot_access_token": "pat-na1-test",
        "hubspot_webhook_secret": SECRET,
        "database_url": url,
        "slack_api_url": slack.base_url,
    }
    return load_settings(_env_file=None, **(values | more))


def test_the_wired_webhook_pulls_through_the_engine_and_dms_what_it_says(
    tmp_path: Path, slack_api: FakeSlackWebAPI
) -> None:
    settings = hubspot_settings(tmp_path, slack_api)

    def refuse(engine: EngineDouble) -> None:
        engine.notices.refused(
            RefusalNotice(
                rep="U0ANA", deal_id=3, deal_name="Initech", fields=("amount",), message="No."
            )
        )

    script = EngineScript(effect=refuse)
    runtime = CrmRuntime(settings, connect=lambda: None, engine_factory=script.factory)  # type: ignore[arg-type,return-value]
    database = Database.from_url(settings.database_url)
    executor = ThreadPoolExecutor(max_workers=1)
    hooks = hubspot_webhooks_app(
        settings,
        database=database,
        client=WebClient(token="xoxb-test", base_url=slack_api.base_url),
        runtime=runtime,
        clock=FixedClock(at=NOW),
        executor=executor,
    )
    server = BackgroundServer(build_side_pages(hubspot_webhooks=hooks)).start()
    try:
        answer = post(f"http://127.0.0.1:{server.port}", json.dumps(EVENTS[:3]).encode())
        assert answer.status_code == 200
        settled(executor)
    finally:
        server.stop()
        executor.shutdown(wait=True)
        database.dispose()
    assert script.calls == [("pull_deals", ("1234", "5678"))]
    (dm,) = slack_api.calls_to("chat.postMessage")
    assert dm.args["text"].startswith("HubSpot did not take your change to Initech's amount: No.")


def test_the_wired_webhook_needs_its_secret(tmp_path: Path, slack_api: FakeSlackWebAPI) -> None:
    settings = hubspot_settings(tmp_path, slack_api, hubspot_webhook_secret=None)
    assert settings.hubspot_webhooks_enabled is False
    runtime = CrmRuntime(settings, connect=lambda: None)  # type: ignore[arg-type,return-value]
    database = Database.from_url(settings.database_url)
    try:
        with pytest.raises(SettingsError, match="HUBSPOT_WEBHOOK_SECRET"):
            hubspot_webhooks_app(
                settings,
                database=database,
                client=WebClient(base_url=slack_api.base_url),
                runtime=runtime,
                clock=FixedClock(at=NOW),
            )
    finally:
        database.dispose()


# --- `dealbot serve` ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving(tmp_path: Path, slack: FakeSlackWebAPI, **settings: str) -> Iterator[str]:
    """Run `python app.py --no-scheduler` with these settings; yield its origin."""
    url = sqlite_url(tmp_path)
    port = free_port()
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SLACK_", "DEALBOT_", "HUBSPOT_", "SALESFORCE_", "DATABASE_URL"))
    }
    environment |= {
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": "signing-secret",
        "SLACK_API_URL": slack.base_url,
        "DATABASE_URL": url,
        "PORT": str(port),
        "DEALBOT_CRM": "hubspot",
        "HUBSPOT_ACCESS_TOKEN": "pat-na1-test",
        **settings,
    }
    log_path = tmp_path / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(REPO / "app.py"), "--no-scheduler"],
            cwd=tmp_path,
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
    origin = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not _healthy(origin):
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(log_path.read_text())
            time.sleep(0.2)
        yield origin
    finally:
        process.terminate()
        process.wait(timeout=20)
    logged = log_path.read_text()
    assert "pat-na1-test" not in logged and SECRET not in logged


def _healthy(origin: str) -> bool:
    try:
        return requests.get(f"{origin}/healthz", timeout=1).status_code == 200
    except requests.RequestException:
        return False


def test_serve_answers_hubspot_webhooks_when_the_secret_is_set(
    tmp_path: Path, slack_api: FakeSlackWebAPI
) -> None:
    with serving(tmp_path, slack_api, HUBSPOT_WEBHOOK_SECRET=SECRET) as origin:
        url = f"{origin}{HUBSPOT_WEBHOOKS_PATH}"
        assert requests.post(url, data=b"[]", timeout=5).status_code == 401
        # The server's own wall clock (the suite may run with this process's clock moved).
        server_now = parsedate_to_datetime(
            requests.get(f"{origin}/healthz", timeout=5).headers["Date"]
        )
        stamp = timestamp(server_now)
        signature = Signature.get_signature(SECRET, "[]", "v3", url, "POST", stamp)
        answer = requests.post(
            url,
            data=b"[]",
            headers={"X-HubSpot-Signature-v3": signature, "X-HubSpot-Request-Timestamp": stamp},
            timeout=5,
        )
        assert answer.status_code == 200


def test_serve_has_no_webhook_route_without_the_secret(
    tmp_path: Path, slack_api: FakeSlackWebAPI
) -> None:
    with serving(tmp_path, slack_api) as origin:
        url = f"{origin}{HUBSPOT_WEBHOOKS_PATH}"
        assert requests.post(url, data=b"[]", timeout=5).status_code == 404
