"""A fake of HubSpot's CRM v3/v4 API on 127.0.0.1, for the real `hubspot-api-client`.

`hubspot.Client.create(access_token=fake.token, host=fake.url)` talks to this server exactly
as it talks to `api.hubapi.com`: deals, contacts and tasks (basic, batch and search APIs),
deal pipelines, owners, v4 associations and the account-info API.

It refuses what HubSpot refuses, so a connector that works here does not fail on the real
thing for a reason a test could have caught: a write to an unknown property
(PROPERTY_DOESNT_EXIST) or a read-only one (READ_ONLY_VALUE), a page over the documented
maximum, a search page past the 10,000th result, a request over the rate limit (429 without
`Retry-After`, as HubSpot answers), a token it does not know (401). Every answer carries
HubSpot's rate headers. Every write bumps `hs_lastmodifieddate` from the injected clock (in
milliseconds) and keeps the property's history, newest first, as `propertiesWithHistory`
returns it.

State lives in dicts plus one sorted index of (modified ms, id) so that a pipeline of
100,000 deals lists, searches and updates in microseconds per row.
"""

from __future__ import annotations

import base64
import bisect
import datetime as dt
import hashlib
import hmac
import itertools
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Protocol, Self
from urllib.error import HTTPError
from urllib.parse import parse_qs, unquote, urlsplit
from urllib.request import Request, urlopen

DEFAULT_TOKEN = "pat-na1-fake-0000-token"
DEFAULT_PORTAL_ID = 4242424
SEARCH_CAP = 10_000  # HubSpot: "never past 10,000 results for one query"
SEARCH_PAGE_MAX = 200
LIST_PAGE_MAX = 100
BATCH_READ_MAX = 100
BATCH_HISTORY_MAX = 50  # batch reads with propertiesWithHistory take at most 50 ids
ASSOCIATION_BATCH_MAX = 1000
OWNERS_PAGE_MAX = 500
DAILY_LIMIT = 500_000

# HubSpot's default sales pipeline ("default"), as a new portal has it.
DEFAULT_STAGES: tuple[tuple[str, str, str, bool], ...] = (
    ("appointmentscheduled", "Appointment Scheduled", "0.2", False),
    ("qualifiedtobuy", "Qualified To Buy", "0.4", False),
    ("presentationscheduled", "Presentation Scheduled", "0.6", False),
    ("decisionmakerboughtin", "Decision Maker Bought-In", "0.8", False),
    ("contractsent", "Contract Sent", "0.9", False),
    ("closedwon", "Closed Won", "1.0", True),
    ("closedlost", "Closed Lost", "0.0", True),
)

READ_ONLY = frozenset({"hs_object_id", "createdate", "hs_lastmodifieddate"})
# The properties each object type has in the fake portal (HubSpot ignores unknown ones in a
# read but refuses them in a write or a search filter).
PROPERTIES: dict[str, frozenset[str]] = {
    "deals": frozenset(
        {
            "dealname",
            "amount",
            "closedate",
            "dealstage",
            "pipeline",
            "hubspot_owner_id",
            "hs_next_step",
            "deal_currency_code",
            "hs_manual_forecast_category",
            "hs_forecast_category",
            "description",
            "dealtype",
            "hs_priority",
        }
        | READ_ONLY
    ),
    "contacts": frozenset(
        {"firstname", "lastname", "email", "jobtitle", "phone", "company", "lastmodifieddate"}
        | {"hs_object_id", "createdate"}
    ),
    "tasks": frozenset(
        {
            "hs_task_subject",
            "hs_task_body",
            "hs_timestamp",
            "hs_task_status",
            "hs_task_priority",
            "hs_task_type",
            "hubspot_owner_id",
        }
        | READ_ONLY
    ),
}
ENUMS: dict[tuple[str, str], frozenset[str]] = {
    ("deals", "hs_manual_forecast_category"): frozenset(
        {"OMIT", "PIPELINE", "BEST_CASE", "COMMIT", "CLOSED"}
    ),
    ("tasks", "hs_task_status"): frozenset(
        {"NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED"}
    ),
    ("tasks", "hs_task_priority"): frozenset({"LOW", "MEDIUM", "HIGH", "NONE"}),
}
NUMBERS = frozenset({("deals", "amount"), ("deals", "hs_object_id")})
DATETIMES = frozenset(
    {
        ("deals", "closedate"),
        ("deals", "createdate"),
        ("deals", "hs_lastmodifieddate"),
        ("tasks", "hs_timestamp"),
        ("tasks", "hs_lastmodifieddate"),
        ("tasks", "createdate"),
        ("contacts", "lastmodifieddate"),
        ("contacts", "createdate"),
    }
)
OWNER_PROPERTIES = frozenset({("deals", "hubspot_owner_id"), ("tasks", "hubspot_owner_id")})
REQUIRED_ON_CREATE: dict[str, tuple[str, ...]] = {
    "deals": ("dealname",),
    "tasks": ("hs_timestamp",),
    "contacts": (),
}
# HUBSPOT_DEFINED association type ids, (from, to) -> id.
DEFAULT_ASSOCIATION_TYPES: dict[tuple[str, str], int] = {
    ("deals", "contacts"): 3,
    ("contacts", "deals"): 4,
    ("deals", "tasks"): 215,
    ("tasks", "deals"): 216,
    ("contacts", "tasks"): 203,
    ("tasks", "contacts"): 204,
}
_OBJECT_TYPE_ALIASES = {
    "deal": "deals",
    "deals": "deals",
    "0-3": "deals",
    "contact": "contacts",
    "contacts": "contacts",
    "0-1": "contacts",
    "task": "tasks",
    "tasks": "tasks",
    "0-27": "tasks",
}


class _Clock(Protocol):
    def now(self) -> dt.datetime: ...


class _SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.UTC)


def to_ms(at: dt.datetime) -> int:
    """Return epoch milliseconds of an aware datetime."""
    return int(at.timestamp() * 1000)


def iso_ms(ms: int) -> str:
    """Return HubSpot's datetime string for epoch milliseconds: `2024-02-29T10:00:00.123Z`."""
    at = dt.datetime.fromtimestamp(ms / 1000, dt.UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_datetime_value(value: str) -> int | None:
    """Return epoch ms of a datetime property value (ms digits or ISO 8601), None if bad."""
    if value.isdigit():
        return int(value)
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return to_ms(parsed)


@dataclass(frozen=True)
class Call:
    """One request the fake answered."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: Any
    status: int


@dataclass(frozen=True)
class HistoryEntry:
    value: str
    ms: int
    source_type: str
    user_id: int | None


@dataclass
class _Rule:
    object_type: str
    refuse_when: Callable[[dict[str, str]], bool]
    message: str
    property_name: str | None


@dataclass
class _Owner:
    id: str
    email: str
    first_name: str
    last_name: str
    user_id: int
    archived: bool = False


class HubSpotError(Exception):
    """An error answer: status and HubSpot's JSON error body."""

    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(body.get("message"))
        self.status = status
        self.body = body


def _error_body(
    category: str, message: str, errors: Iterable[dict[str, Any]] = (), **extra: Any
) -> dict[str, Any]:
    return {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
        "errors": list(errors),
        "context": {},
        "links": {},
        **extra,
    }


def _validation_error(message: str, errors: Iterable[dict[str, Any]] = ()) -> HubSpotError:
    return HubSpotError(400, _error_body("VALIDATION_ERROR", message, errors))


def _property_errors(problems: list[tuple[str, str, str]]) -> HubSpotError:
    """HubSpot's 400 for bad property values: a summary plus one error per property."""
    detail = [
        {"isValid": False, "message": message, "error": code, "name": name}
        for name, code, message in problems
    ]
    errors = [
        {"message": message, "code": code, "context": {"propertyName": [name]}}
        for name, code, message in problems
    ]
    return _validation_error(
        "Property values were not valid: " + json.dumps(detail, separators=(",", ":")),
        errors,
    )


@dataclass
class _Limiter:
    """HubSpot's sliding windows: per second and per ten seconds, plus a daily count."""

    per_second: int | None
    per_ten_seconds: int | None
    daily: int = DAILY_LIMIT
    used_today: int = 0
    stamps: deque[float] = field(default_factory=deque)

    def admit(self, now: float) -> str | None:
        """Count one request; return the policy it breaks (then it is not counted)."""
        while self.stamps and now - self.stamps[0] >= 10.0:
            self.stamps.popleft()
        last_second = sum(1 for s in self.stamps if now - s < 1.0) if self.per_second else 0
        if self.per_second is not None and last_second >= self.per_second:
            return "SECONDLY"
        if self.per_ten_seconds is not None and len(self.stamps) >= self.per_ten_seconds:
            return "TEN_SECONDLY_ROLLING"
        if self.used_today >= self.daily:
            return "DAILY"
        self.stamps.append(now)
        self.used_today += 1
        return None

    def headers(self, now: float) -> dict[str, str]:
        window = self.per_ten_seconds or 190
        in_window = sum(1 for s in self.stamps if now - s < 10.0)
        second = self.per_second or 19
        in_second = sum(1 for s in self.stamps if now - s < 1.0)
        return {
            "X-HubSpot-RateLimit-Daily": str(self.daily),
            "X-HubSpot-RateLimit-Daily-Remaining": str(max(self.daily - self.used_today, 0)),
            "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
            "X-HubSpot-RateLimit-Max": str(window),
            "X-HubSpot-RateLimit-Remaining": str(max(window - in_window, 0)),
            "X-HubSpot-RateLimit-Secondly": str(second),
            "X-HubSpot-RateLimit-Secondly-Remaining": str(max(second - in_second, 0)),
        }


class FakeHubSpot:
    """The fake portal and its server; use as a context manager or `start()`/`stop()`."""

    def __init__(
        self,
        *,
        token: str = DEFAULT_TOKEN,
        clock: _Clock | None = None,
        portal_id: int = DEFAULT_PORTAL_ID,
        ui_domain: str = "app.hubspot.com",
        search_cap: int = SEARCH_CAP,
        requests_per_second: int | None = None,
        requests_per_ten_seconds: int | None = None,
        daily_limit: int = DAILY_LIMIT,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token = token
        self.clock: _Clock = clock or _SystemClock()
        self.portal_id = portal_id
        self.ui_domain = ui_domain
        self.search_cap = search_cap
        self.monotonic = monotonic
        self.limiter = _Limiter(
            per_second=requests_per_second,
            per_ten_seconds=requests_per_ten_seconds,
            daily=daily_limit,
        )
        self.lock = threading.RLock()
        self.objects: dict[str, dict[str, dict[str, str]]] = {t: {} for t in PROPERTIES}
        self.history: dict[tuple[str, str], dict[str, list[HistoryEntry]]] = {}
        self.created_ms: dict[tuple[str, str], int] = {}
        # (from type, from id, to type) -> {to id: [(category, type id, label)]}
        self.associations: dict[tuple[str, str, str], dict[str, list[tuple[str, int, str | None]]]]
        self.associations = {}
        self.labels: dict[tuple[str, str, str], int] = {}  # (from, to, label) -> type id
        self.owners: dict[str, _Owner] = {}
        self.pipelines: dict[str, tuple[str, list[dict[str, Any]]]] = {
            "default": (
                "Sales Pipeline",
                [
                    {
                        "id": stage_id,
                        "label": label,
                        "displayOrder": order,
                        "metadata": {"isClosed": str(closed).lower(), "probability": prob},
                    }
                    for order, (stage_id, label, prob, closed) in enumerate(DEFAULT_STAGES)
                ],
            )
        }
        self.calls: list[Call] = []
        self.unknown_reads: list[tuple[str, str]] = []  # (object type, property) asked for
        self.faults: deque[tuple[int, str | None]] = deque()
        self.rules: list[_Rule] = []
        self.revoked = False
        # Called with each answered request, under the fake's lock: a test changes records
        # between two pages as a HubSpot user would.
        self.after_request: Callable[[Call], None] | None = None
        self._ids = itertools.count(10_001)
        self._owner_ids = itertools.count(70_001)
        self._label_ids = itertools.count(101)
        self._deal_index: list[tuple[int, int]] = []  # sorted (modified ms, id) of deals
        # Ids only grow and nothing is deleted, so appending keeps each list sorted.
        self._sorted_ids: dict[str, list[int]] = {t: [] for t in PROPERTIES}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        fake = self

        class Handler(_Handler):
            hubspot = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # -- seeding and test knobs --------------------------------------------------------------

    def now_ms(self) -> int:
        return to_ms(self.clock.now())

    def add_owner(
        self, *, email: str, first_name: str = "", last_name: str = "", archived: bool = False
    ) -> str:
        with self.lock:
            owner_id = str(next(self._owner_ids))
            self.owners[owner_id] = _Owner(
                id=owner_id,
                email=email,
                first_name=first_name,
                last_name=last_name,
                user_id=int(owner_id) + 1_000_000,
                archived=archived,
            )
            return owner_id

    def add_deal(self, **props: str) -> str:
        """Seed a deal (defaults: the default pipeline's first stage); return its id."""
        props.setdefault("pipeline", "default")
        props.setdefault("dealstage", DEFAULT_STAGES[0][0])
        return self._create("deals", props, source="CRM_UI")

    def add_contact(self, **props: str) -> str:
        return self._create("contacts", props, source="CRM_UI")

    def add_task(self, *, deal_id: str | None = None, **props: str) -> str:
        props.setdefault("hs_task_status", "NOT_STARTED")
        props.setdefault("hs_timestamp", iso_ms(self.now_ms()))
        task_id = self._create("tasks", props, source="CRM_UI")
        if deal_id is not None:
            self.associate("tasks", task_id, "deals", deal_id)
        return task_id

    def set_deal(self, deal_id: str, **props: str) -> None:
        """Change a deal as a HubSpot user would (history, modification time)."""
        with self.lock:
            self._write("deals", deal_id, props, source="CRM_UI")

    def associate(
        self, from_type: str, from_id: str, to_type: str, to_id: str, *, label: str | None = None
    ) -> None:
        """Associate two records both ways: the default type, plus a labelled one if given."""
        from_type, to_type = _object_type(from_type), _object_type(to_type)
        with self.lock:
            forward = [("HUBSPOT_DEFINED", DEFAULT_ASSOCIATION_TYPES[(from_type, to_type)], None)]
            backward = [("HUBSPOT_DEFINED", DEFAULT_ASSOCIATION_TYPES[(to_type, from_type)], None)]
            if label is not None:
                forward.append(("USER_DEFINED", self._label_id(from_type, to_type, label), label))
                backward.append(("USER_DEFINED", self._label_id(to_type, from_type, label), label))
            self._link(from_type, from_id, to_type, to_id, forward)
            self._link(to_type, to_id, from_type, from_id, backward)

    def fail_next(self, status: int, times: int = 1, *, path: str | None = None) -> None:
        """Answer the next `times` requests (to paths starting with `path`) with `status`."""
        with self.lock:
            self.faults.extend([(status, path)] * times)

    def add_validation_rule(
        self,
        refuse_when: Callable[[dict[str, str]], bool],
        message: str,
        *,
        object_type: str = "deals",
        property_name: str | None = None,
    ) -> None:
        """Refuse a write when `refuse_when(properties after the write)` is true."""
        with self.lock:
            self.rules.append(_Rule(_object_type(object_type), refuse_when, message, property_name))

    def revoke(self) -> None:
        """Revoke the token: every later request answers 401."""
        self.revoked = True

    def deal(self, deal_id: str) -> dict[str, str]:
        return dict(self.objects["deals"][deal_id])

    def task(self, task_id: str) -> dict[str, str]:
        return dict(self.objects["tasks"][task_id])

    def property_history(self, object_type: str, object_id: str, name: str) -> list[str]:
        """Return a property's values, oldest first."""
        entries = self.history.get((_object_type(object_type), object_id), {}).get(name, [])
        return [e.value for e in reversed(entries)]

    def calls_to(self, method: str, path_prefix: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and c.path.startswith(path_prefix)]

    def associated(self, from_type: str, from_id: str, to_type: str) -> dict[str, list[int]]:
        """Return {to id: [association type ids]} of one record."""
        links = self.associations.get((_object_type(from_type), from_id, _object_type(to_type)))
        return {to_id: [t for _, t, _ in kinds] for to_id, kinds in (links or {}).items()}

    # -- webhooks ------------------------------------------------------------------------------

    def deal_event(self, deal_id: str, name: str, *, event_id: int = 1) -> dict[str, Any]:
        """Return the `deal.propertyChange` event HubSpot sends for a deal's property."""
        record = self.objects["deals"][deal_id]
        return {
            "eventId": event_id,
            "subscriptionId": 1,
            "portalId": self.portal_id,
            "appId": 1,
            "occurredAt": parse_datetime_value(record.get("hs_lastmodifieddate", "0")),
            "subscriptionType": "deal.propertyChange",
            "attemptNumber": 0,
            "objectId": int(deal_id),
            "propertyName": name,
            "propertyValue": record.get(name, ""),
            "changeSource": "CRM_UI",
        }

    @staticmethod
    def deliver_webhook(
        url: str, events: list[dict[str, Any]], *, secret: str, timestamp_ms: int
    ) -> int:
        """POST events to an app as HubSpot does, signed with `X-HubSpot-Signature-v3`.

        Signed as HubSpot documents it: base64 of HMAC-SHA256 (key: the app's client
        secret) over method + full URI + body + the `X-HubSpot-Request-Timestamp` value.
        """
        body = json.dumps(events).encode()
        timestamp = str(timestamp_ms)
        source = b"POST" + url.encode() + body + timestamp.encode()
        signature = base64.b64encode(
            hmac.new(secret.encode(), source, hashlib.sha256).digest()
        ).decode()
        request = Request(
            url,
            data=body,
            method="POST",
            headers={
                "Content-Type": "application/json",
                "X-HubSpot-Signature-v3": signature,
                "X-HubSpot-Request-Timestamp": timestamp,
            },
        )
        try:
            with urlopen(request, timeout=10) as answer:
                return int(answer.status)
        except HTTPError as refused:
            return int(refused.code)

    # -- state changes -----------------------------------------------------------------------

    def _label_id(self, from_type: str, to_type: str, label: str) -> int:
        key = (from_type, to_type, label)
        if key not in self.labels:
            self.labels[key] = next(self._label_ids)
        return self.labels[key]

    def _link(
        self,
        from_type: str,
        from_id: str,
        to_type: str,
        to_id: str,
        kinds: list[tuple[str, int, str | None]],
    ) -> None:
        existing = self.associations.setdefault((from_type, from_id, to_type), {})
        have = existing.setdefault(to_id, [])
        for kind in kinds:
            if kind not in have:
                have.append(kind)

    def _create(self, object_type: str, props: dict[str, str], *, source: str) -> str:
        with self.lock:
            object_id = str(next(self._ids))
            now = self.now_ms()
            record: dict[str, str] = {"hs_object_id": object_id, "createdate": iso_ms(now)}
            self.objects[object_type][object_id] = record
            self._sorted_ids[object_type].append(int(object_id))
            self.created_ms[(object_type, object_id)] = now
            self._write(object_type, object_id, dict(props), source=source, created=True)
            return object_id

    def _write(
        self,
        object_type: str,
        object_id: str,
        props: dict[str, str],
        *,
        source: str,
        created: bool = False,
    ) -> None:
        record = self.objects[object_type][object_id]
        now = self.now_ms()
        history = self.history.setdefault((object_type, object_id), {})
        for name, value in props.items():
            value = "" if value is None else str(value)
            if object_type == "deals" and name in {"closedate"} and value:
                ms = parse_datetime_value(value)
                value = iso_ms(ms) if ms is not None else value
            if record.get(name) == value and not created:
                continue
            record[name] = value
            history.setdefault(name, []).insert(0, HistoryEntry(value, now, source, None))
        modified = "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"
        old_ms = parse_datetime_value(record.get(modified, "")) if modified in record else None
        record[modified] = iso_ms(now)
        if object_type == "deals":
            if old_ms is not None:
                position = bisect.bisect_left(self._deal_index, (old_ms, int(object_id)))
                if self._deal_index[position : position + 1] == [(old_ms, int(object_id))]:
                    del self._deal_index[position]
            bisect.insort(self._deal_index, (now, int(object_id)))

    def _check_write(
        self, object_type: str, props: dict[str, Any], current: dict[str, str]
    ) -> dict[str, str]:
        """Return the properties as HubSpot stores them, or raise its 400."""
        if not isinstance(props, dict):
            raise _validation_error("Invalid input JSON: properties must be an object")
        known = PROPERTIES[object_type]
        problems: list[tuple[str, str, str]] = []
        clean: dict[str, str] = {}
        for name, raw in props.items():
            if name not in known:
                problems.append(
                    (name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')
                )
                continue
            if name in READ_ONLY:
                problems.append(
                    (
                        name,
                        "READ_ONLY_VALUE",
                        f'"{name}" is a read only property; its value cannot be set.',
                    )
                )
                continue
            value = "" if raw is None else str(raw)
            problem = self._check_value(object_type, name, value)
            if problem is not None:
                problems.append((name, problem[0], problem[1]))
            clean[name] = value
        if problems:
            raise _property_errors(problems)
        after = {**current, **clean}
        for rule in self.rules:
            if rule.object_type == object_type and rule.refuse_when(after):
                context = {"propertyName": [rule.property_name]} if rule.property_name else {}
                raise _validation_error(
                    rule.message,
                    [{"message": rule.message, "code": "VALIDATION_RULE", "context": context}],
                )
        return clean

    def _check_value(self, object_type: str, name: str, value: str) -> tuple[str, str] | None:
        if value == "":
            return None
        key = (object_type, name)
        if key in ENUMS and value not in ENUMS[key]:
            return "INVALID_OPTION", f"{value} was not one of the allowed options"
        if key in NUMBERS:
            try:
                Decimal(value)
            except InvalidOperation:
                return "INVALID_DECIMAL", f"{value} was not a valid number"
        if key in DATETIMES and parse_datetime_value(value) is None:
            return "INVALID_DATE", f"{value} was not a valid date or datetime"
        if key in OWNER_PROPERTIES and value not in self.owners:
            return "INVALID_OWNER_ID", f"{value} is not a valid owner id"
        if key == ("deals", "dealstage"):
            stages = {s["id"] for _, stages in self.pipelines.values() for s in stages}
            if value not in stages:
                return "INVALID_OPTION", f"{value} is not a valid pipeline stage"
        if key == ("deals", "pipeline") and value not in self.pipelines:
            return "INVALID_OPTION", f"{value} is not a valid pipeline"
        return None

    # -- rendering ---------------------------------------------------------------------------

    def _render(
        self,
        object_type: str,
        object_id: str,
        properties: list[str] | None,
        with_history: list[str] = (),  # type: ignore[assignment]
    ) -> dict[str, Any]:
        record = self.objects[object_type][object_id]
        modified = "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"
        always = ("hs_object_id", "createdate", modified)
        names = list(properties) if properties else sorted(record)
        rendered: dict[str, str | None] = {name: record.get(name) for name in always}
        for name in names:
            if name not in PROPERTIES[object_type]:
                self.unknown_reads.append((object_type, name))
                continue
            rendered[name] = record.get(name)
        created = iso_ms(self.created_ms[(object_type, object_id)])
        answer: dict[str, Any] = {
            "id": object_id,
            "properties": rendered,
            "createdAt": created,
            "updatedAt": record.get(modified) or created,
            "archived": False,
        }
        if with_history:
            history = self.history.get((object_type, object_id), {})
            answer["propertiesWithHistory"] = {
                name: [
                    {
                        "value": entry.value,
                        "timestamp": iso_ms(entry.ms),
                        "sourceType": entry.source_type,
                        "sourceId": "userId:1",
                        "updatedByUserId": entry.user_id,
                    }
                    for entry in history.get(name, [])
                ]
                for name in with_history
                if name in PROPERTIES[object_type]
            }
        return answer

    # -- endpoints ---------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], body: Any, auth: str | None
    ) -> tuple[int, Any, dict[str, str]]:
        """Answer one request: (status, JSON body, extra headers)."""
        with self.lock:
            now = self.monotonic()
            try:
                status, answer = self._answer(method, path, query, body, auth, now)
            except HubSpotError as error:
                status, answer = error.status, error.body
            call = Call(method, path, query, body, status)
            self.calls.append(call)
            if self.after_request is not None:
                self.after_request(call)
            return status, answer, self.limiter.headers(now)

    def _answer(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        body: Any,
        auth: str | None,
        now: float,
    ) -> tuple[int, Any]:
        if auth != f"Bearer {self.token}" or self.revoked:
            raise HubSpotError(
                401,
                _error_body(
                    "INVALID_AUTHENTICATION",
                    "Authentication credentials not found. This API supports OAuth 2.0 "
                    "authentication and you can find more details at "
                    "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
                ),
            )
        policy = self.limiter.admit(now)
        if policy is not None:
            raise HubSpotError(
                429,
                {
                    "status": "error",
                    "message": f"You have reached your {policy.lower()} limit.",
                    "errorType": "RATE_LIMIT",
                    "correlationId": str(uuid.uuid4()),
                    "policyName": policy,
                },
            )
        for index, (status, prefix) in enumerate(self.faults):
            if prefix is None or path.startswith(prefix):
                del self.faults[index]
                category = "RATE_LIMITS" if status == 429 else "INTERNAL_ERROR"
                raise HubSpotError(status, _error_body(category, f"fake fault {status}"))
        parts = [unquote(p) for p in path.strip("/").split("/")]
        match parts:
            case ["account-info", "v3", "details"] if method == "GET":
                return self._account_info()
            case ["crm", "v3", "pipelines", object_type] if method == "GET":
                return self._pipelines(_object_type(object_type))
            case ["crm", "v3", "owners", *_] if method == "GET":
                return self._owners(query)
            case ["crm", "v4", "associations", from_type, to_type, "batch", "read"] if (
                method == "POST"
            ):
                return self._association_batch(_object_type(from_type), _object_type(to_type), body)
            case ["crm", "v3", "objects", object_type] if method == "GET":
                return self._list(_object_type(object_type), query)
            case ["crm", "v3", "objects", object_type] if method == "POST":
                return self._create_endpoint(_object_type(object_type), body)
            case ["crm", "v3", "objects", object_type, "search"] if method == "POST":
                return self._search(_object_type(object_type), body)
            case ["crm", "v3", "objects", object_type, "batch", "read"] if method == "POST":
                return self._batch_read(_object_type(object_type), body)
            case ["crm", "v3", "objects", object_type, object_id] if method == "GET":
                return self._get(_object_type(object_type), object_id, query)
            case ["crm", "v3", "objects", object_type, object_id] if method == "PATCH":
                return self._update(_object_type(object_type), object_id, body)
        raise HubSpotError(404, _error_body("OBJECT_NOT_FOUND", f"No route for {method} {path}"))

    def _account_info(self) -> tuple[int, Any]:
        return 200, {
            "portalId": self.portal_id,
            "accountType": "STANDARD",
            "timeZone": "US/Eastern",
            "companyCurrency": "USD",
            "additionalCurrencies": ["EUR"],
            "utcOffset": "-05:00",
            "utcOffsetMilliseconds": -18_000_000,
            "uiDomain": self.ui_domain,
            "dataHostingLocation": "na1",
        }

    def _pipelines(self, object_type: str) -> tuple[int, Any]:
        if object_type != "deals":
            return 200, {"results": []}
        stamp = iso_ms(0)
        results = []
        for order, (pipeline_id, (label, stages)) in enumerate(self.pipelines.items()):
            results.append(
                {
                    "id": pipeline_id,
                    "label": label,
                    "displayOrder": order,
                    "archived": False,
                    "createdAt": stamp,
                    "updatedAt": stamp,
                    "stages": [
                        {**stage, "archived": False, "createdAt": stamp, "updatedAt": stamp}
                        for stage in stages
                    ],
                }
            )
        return 200, {"results": results}

    def _owners(self, query: dict[str, list[str]]) -> tuple[int, Any]:
        limit = int(query.get("limit", ["100"])[0])
        if limit > OWNERS_PAGE_MAX:
            raise _validation_error(f"limit must be at most {OWNERS_PAGE_MAX}")
        archived = query.get("archived", ["false"])[0] == "true"
        owners = [o for o in self.owners.values() if o.archived == archived]
        if "email" in query:
            owners = [o for o in owners if o.email == query["email"][0]]
        start = int(query.get("after", ["0"])[0])
        page = owners[start : start + limit]
        stamp = iso_ms(0)
        answer: dict[str, Any] = {
            "results": [
                {
                    "id": o.id,
                    "email": o.email,
                    "firstName": o.first_name,
                    "lastName": o.last_name,
                    "userId": o.user_id,
                    "type": "PERSON",
                    "createdAt": stamp,
                    "updatedAt": stamp,
                    "archived": o.archived,
                    "teams": [],
                }
                for o in page
            ]
        }
        if start + limit < len(owners):
            answer["paging"] = {"next": {"after": str(start + limit)}}
        return 200, answer

    def _properties_query(self, query: dict[str, list[str]], name: str) -> list[str]:
        values: list[str] = []
        for value in query.get(name, []):
            values.extend(v for v in value.split(",") if v)
        return values

    def _list(self, object_type: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        limit = int(query.get("limit", ["10"])[0])
        if limit > LIST_PAGE_MAX:
            raise _validation_error(f"limit must be at most {LIST_PAGE_MAX}")
        ids = self._sorted_ids[object_type]
        after = int(query.get("after", ["0"])[0])
        start = bisect.bisect_left(ids, after)
        page = ids[start : start + limit]
        properties = self._properties_query(query, "properties")
        with_history = self._properties_query(query, "propertiesWithHistory")
        answer: dict[str, Any] = {
            "results": [self._render(object_type, str(i), properties, with_history) for i in page]
        }
        if start + limit < len(ids):
            answer["paging"] = {"next": {"after": str(ids[start + limit])}}
        return 200, answer

    def _get(
        self, object_type: str, object_id: str, query: dict[str, list[str]]
    ) -> tuple[int, Any]:
        if object_id not in self.objects[object_type]:
            raise HubSpotError(404, _error_body("OBJECT_NOT_FOUND", "resource not found"))
        properties = self._properties_query(query, "properties")
        with_history = self._properties_query(query, "propertiesWithHistory")
        return 200, self._render(object_type, object_id, properties, with_history)

    def _create_endpoint(self, object_type: str, body: Any) -> tuple[int, Any]:
        props = (body or {}).get("properties", {})
        clean = self._check_write(object_type, props, {})
        missing = [n for n in REQUIRED_ON_CREATE[object_type] if not clean.get(n)]
        if missing:
            raise _property_errors([(n, "REQUIRED", f"{n} is required on create") for n in missing])
        links: list[tuple[str, str, int]] = []
        for association in (body or {}).get("associations") or []:
            to_id = str(association["to"]["id"])
            for kind in association["types"]:
                type_id = int(kind["associationTypeId"])
                to_type = next(
                    (
                        t
                        for (f, t), i in DEFAULT_ASSOCIATION_TYPES.items()
                        if f == object_type and i == type_id
                    ),
                    None,
                )
                if to_type is None or to_id not in self.objects[to_type]:
                    raise _validation_error(
                        f"Association type {type_id} to {to_id} is not valid for {object_type}"
                    )
                links.append((to_type, to_id, type_id))
        if object_type == "deals":
            clean.setdefault("pipeline", "default")
        object_id = self._create(object_type, clean, source="INTEGRATION")
        for to_type, to_id, _type_id in links:
            self.associate(object_type, object_id, to_type, to_id)
        return 201, self._render(object_type, object_id, None)

    def _update(self, object_type: str, object_id: str, body: Any) -> tuple[int, Any]:
        if object_id not in self.objects[object_type]:
            raise HubSpotError(404, _error_body("OBJECT_NOT_FOUND", "resource not found"))
        current = self.objects[object_type][object_id]
        clean = self._check_write(object_type, (body or {}).get("properties", {}), current)
        self._write(object_type, object_id, clean, source="INTEGRATION")
        return 200, self._render(object_type, object_id, None)

    def _batch_read(self, object_type: str, body: Any) -> tuple[int, Any]:
        body = body or {}
        inputs = [str(i["id"]) for i in body.get("inputs", [])]
        with_history = body.get("propertiesWithHistory") or []
        cap = BATCH_HISTORY_MAX if with_history else BATCH_READ_MAX
        if len(inputs) > cap:
            raise _validation_error(f"Batch input must have at most {cap} ids")
        if body.get("idProperty") not in (None, "hs_object_id"):
            raise _validation_error("idProperty must be a unique property")
        stamp = iso_ms(self.now_ms())
        found = [i for i in inputs if i in self.objects[object_type]]
        missing = [i for i in inputs if i not in self.objects[object_type]]
        answer: dict[str, Any] = {
            "status": "COMPLETE",
            "results": [
                self._render(object_type, i, body.get("properties") or None, with_history)
                for i in dict.fromkeys(found)
            ],
            "startedAt": stamp,
            "completedAt": stamp,
        }
        if not missing:
            return 200, answer
        answer["numErrors"] = 1
        answer["errors"] = [
            {
                "status": "error",
                "category": "OBJECT_NOT_FOUND",
                "message": f"Could not get some {object_type} objects, they may be deleted or "
                "not exist. Check that ids are valid.",
                "context": {"ids": missing},
                "links": {},
                "errors": [],
            }
        ]
        return 207, answer

    def _association_batch(self, from_type: str, to_type: str, body: Any) -> tuple[int, Any]:
        inputs = [str(i["id"]) for i in (body or {}).get("inputs", [])]
        if len(inputs) > ASSOCIATION_BATCH_MAX:
            raise _validation_error(f"Batch input must have at most {ASSOCIATION_BATCH_MAX} ids")
        stamp = iso_ms(self.now_ms())
        results = []
        for from_id in dict.fromkeys(inputs):
            links = self.associations.get((from_type, from_id, to_type))
            if not links:
                continue
            results.append(
                {
                    "from": {"id": from_id},
                    "to": [
                        {
                            "toObjectId": int(to_id),
                            "associationTypes": [
                                {"category": category, "typeId": type_id, "label": label}
                                for category, type_id, label in kinds
                            ],
                        }
                        for to_id, kinds in links.items()
                    ],
                }
            )
        return 200, {
            "status": "COMPLETE",
            "results": results,
            "startedAt": stamp,
            "completedAt": stamp,
        }

    def _search(self, object_type: str, body: Any) -> tuple[int, Any]:
        body = body or {}
        limit = int(body.get("limit") or 10)
        if limit > SEARCH_PAGE_MAX:
            raise _validation_error(f"limit must be at most {SEARCH_PAGE_MAX}")
        after = int(body.get("after") or 0)
        if after + 1 > self.search_cap:
            raise _validation_error(
                f"There was a problem with the request. Paging past {self.search_cap} results "
                "is not supported; narrow the query."
            )
        groups = body.get("filterGroups") or []
        if len(groups) > 5 or any(len(g.get("filters", [])) > 6 for g in groups):
            raise _validation_error("Too many filter groups or filters")
        filters = [[_Filter.parse(object_type, f) for f in g.get("filters", [])] for g in groups]
        sorts = [_Sort.parse(object_type, s) for s in body.get("sorts") or []]
        if len(sorts) > 1:
            raise _validation_error("Only one sort is supported")
        sort = sorts[0] if sorts else _Sort("hs_object_id", ascending=True)
        modified = "lastmodifieddate" if object_type == "contacts" else "hs_lastmodifieddate"
        records = self.objects[object_type]
        candidates: Iterable[str]
        ordered = False
        if object_type == "deals" and len(filters) == 1 and sort.name == modified:
            low = _index_low(filters[0], modified)
            start = bisect.bisect_left(self._deal_index, (low, -1)) if low is not None else 0
            index = self._deal_index
            candidates = (str(index[i][1]) for i in range(start, len(index)))
            ordered = sort.ascending
        else:
            candidates = list(records)
        matches = (
            i
            for i in candidates
            if not filters or any(all(f.accepts(records[i]) for f in g) for g in filters)
        )
        if ordered:
            wanted = list(itertools.islice(matches, after + limit + 1))
            # Counting every match of a 100,000-deal portal per page would make the fake
            # slow; an upper bound is enough (nobody pages by `total`).
            total = len(wanted) if len(wanted) <= after + limit else len(index) - start
        else:
            wanted = sorted(
                matches, key=lambda i: sort.key(records[i], i), reverse=not sort.ascending
            )
            total = len(wanted)
        page = wanted[after : after + limit]
        properties = body.get("properties") or ["hs_object_id", "createdate", modified]
        answer: dict[str, Any] = {
            "total": total,
            "results": [self._render(object_type, i, properties) for i in page],
        }
        if len(wanted) > after + limit:
            answer["paging"] = {"next": {"after": str(after + limit)}}
        return 200, answer


def _object_type(name: str) -> str:
    try:
        return _OBJECT_TYPE_ALIASES[name.lower()]
    except KeyError:
        raise HubSpotError(
            400, _error_body("VALIDATION_ERROR", f"Unable to infer object type from: {name}")
        ) from None


def _index_low(filters: list[_Filter], modified: str) -> int | None:
    lows = [
        f.number
        for f in filters
        if f.name == modified and f.operator in {"GTE", "GT", "EQ"} and f.number is not None
    ]
    return max(lows) if lows else None


@dataclass(frozen=True)
class _Filter:
    name: str
    operator: str
    value: str | None
    values: tuple[str, ...]
    numeric: bool
    number: int | None

    @classmethod
    def parse(cls, object_type: str, raw: dict[str, Any]) -> _Filter:
        name = raw.get("propertyName", "")
        operator = raw.get("operator", "")
        if name not in PROPERTIES[object_type]:
            raise _property_errors(
                [(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')]
            )
        if operator not in {
            "EQ",
            "NEQ",
            "LT",
            "LTE",
            "GT",
            "GTE",
            "IN",
            "NOT_IN",
            "HAS_PROPERTY",
            "NOT_HAS_PROPERTY",
        }:
            raise _validation_error(f"Unsupported operator {operator}")
        numeric = (object_type, name) in NUMBERS or (object_type, name) in DATETIMES
        value = None if raw.get("value") is None else str(raw["value"])
        number = None
        if numeric and value is not None:
            number = _as_number(object_type, name, value)
            if number is None:
                raise _validation_error(f"{value} is not a valid value for {name}")
        return cls(name, operator, value, tuple(raw.get("values") or ()), numeric, number)

    def accepts(self, record: dict[str, str]) -> bool:
        stored = record.get(self.name)
        if self.operator == "HAS_PROPERTY":
            return bool(stored)
        if self.operator == "NOT_HAS_PROPERTY":
            return not stored
        if self.operator in {"IN", "NOT_IN"}:
            inside = stored in self.values
            return inside if self.operator == "IN" else not inside
        if not stored:
            return self.operator == "NEQ"
        left: Any = stored
        right: Any = self.value
        if self.numeric:
            left = _stored_number(self.name, stored)
            right = self.number
        match self.operator:
            case "EQ":
                return bool(left == right)
            case "NEQ":
                return bool(left != right)
            case "LT":
                return bool(left < right)
            case "LTE":
                return bool(left <= right)
            case "GT":
                return bool(left > right)
            case _:
                return bool(left >= right)


def _as_number(object_type: str, name: str, value: str) -> int | None:
    if (object_type, name) in DATETIMES:
        return parse_datetime_value(value)
    try:
        return int(Decimal(value))
    except InvalidOperation:
        return None


def _stored_number(name: str, stored: str) -> Any:
    if name in {"amount"}:
        return Decimal(stored)
    if name == "hs_object_id":
        return int(stored)
    return parse_datetime_value(stored)


@dataclass(frozen=True)
class _Sort:
    name: str
    ascending: bool

    @classmethod
    def parse(cls, object_type: str, raw: Any) -> _Sort:
        if isinstance(raw, str):  # the client's model types sorts as strings
            name, ascending = raw.lstrip("-"), not raw.startswith("-")
        else:
            name = raw.get("propertyName", "")
            ascending = raw.get("direction", "ASCENDING") == "ASCENDING"
        if name not in PROPERTIES[object_type]:
            raise _property_errors(
                [(name, "PROPERTY_DOESNT_EXIST", f'Property "{name}" does not exist')]
            )
        return cls(name, ascending)

    def key(self, record: dict[str, str], object_id: str) -> tuple[Any, int]:
        stored = record.get(self.name) or ""
        if self.name in {"hs_object_id"}:
            return (int(object_id), int(object_id))
        if self.name in {"hs_lastmodifieddate", "createdate", "closedate", "lastmodifieddate"}:
            return (parse_datetime_value(stored) or 0, int(object_id))
        if self.name == "amount":
            return (Decimal(stored) if stored else Decimal(0), int(object_id))
        return (stored, int(object_id))


class _Handler(BaseHTTPRequestHandler):
    hubspot: FakeHubSpot
    protocol_version = "HTTP/1.1"
    # Headers and body go out as two writes: without this, Nagle plus the client's delayed
    # ACK adds ~40 ms to every answer.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests read `calls`, not the server's log."""

    def _serve(self) -> None:
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = None
        status, answer, headers = self.hubspot.handle(
            self.command,
            split.path,
            parse_qs(split.query),
            body,
            self.headers.get("Authorization"),
        )
        payload = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    do_GET = _serve
    do_POST = _serve
    do_PATCH = _serve
    do_DELETE = _serve
    do_PUT = _serve
