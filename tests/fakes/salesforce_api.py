"""A fake of Salesforce's REST API on 127.0.0.1 over TLS, for the real simple-salesforce.

simple-salesforce builds `https://` URLs only, so the fake serves TLS with a local CA from
`trustme` (tests point `REQUESTS_CA_BUNDLE` at `ca_bundle_path`). It answers what the
connector's client calls, at Salesforce's paths and with Salesforce's error bodies:

- `POST /services/oauth2/token`: the JWT bearer grant, checked against the connected app's
  public key, client id, audience (the login URL), expiry (by the fake's clock) and user;
- `GET …/query/?q=` and `GET …/query/<locator>` (SOQL, paged through `nextRecordsUrl`);
- `GET …/sobjects/<Object>/describe`, `POST …/sobjects/<Object>/`, `PATCH …/sobjects/<Object>/<id>`;
- `POST …/jobs/query`, `GET …/jobs/query/<id>`, `GET …/jobs/query/<id>/results` (Bulk API 2.0,
  CSV pages chained by `Sforce-Locator`).

A request the real API would refuse is refused the same way: an unknown field or object in
SOQL (`INVALID_FIELD` / `INVALID_TYPE`), a write to a read-only field
(`INVALID_FIELD_FOR_INSERT_UPDATE`), a create without its required fields
(`REQUIRED_FIELD_MISSING`), a stage that does not exist. A change of `StageName` resets
`Probability` and `ForecastCategoryName` to the stage's defaults unless sent, as Salesforce
does. Every answer carries `Sforce-Limit-Info`; past the daily quota the API says 403
`REQUEST_LIMIT_EXCEEDED`. State lives in dicts so a bench of 100,000 opportunities stays fast.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
import json
import re
import secrets
import ssl
import tempfile
import threading
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self
from urllib.parse import parse_qs, urlsplit

import jwt
import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

MIN_API_VERSION = 31.0  # older versions are retired; newer than `api_version` are unknown
_VERSIONED = re.compile(r"^/services/data/v(\d+\.\d)/")
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
INVALID_SESSION = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


class _Clock(Protocol):
    def now(self) -> dt.datetime: ...


class MovableClock:
    """A clock a test moves by hand: the fake stamps SystemModstamp from it."""

    def __init__(self, *, at: dt.datetime) -> None:
        self.at = at

    def now(self) -> dt.datetime:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += dt.timedelta(seconds=seconds)


# --- the schema: which fields exist, which are writable, how objects relate ---


@dataclass(frozen=True)
class _Object:
    prefix: str  # Salesforce's key prefix, the first three characters of an Id
    writable: frozenset[str]
    read_only: frozenset[str]
    parents: dict[str, tuple[str, str]] = field(default_factory=dict)  # rel -> (fk, object)
    children: dict[str, tuple[str, str]] = field(default_factory=dict)  # rel -> (object, fk)
    required: tuple[str, ...] = ()

    @property
    def fields(self) -> frozenset[str]:
        return self.writable | self.read_only


_COMMON_RO = frozenset({"Id", "CreatedDate", "SystemModstamp", "LastModifiedDate"})

SCHEMA: dict[str, _Object] = {
    "Opportunity": _Object(
        prefix="006",
        writable=frozenset(
            {
                "Name",
                "AccountId",
                "Amount",
                "CurrencyIsoCode",
                "CloseDate",
                "StageName",
                "Probability",
                "ForecastCategoryName",
                "NextStep",
                "OwnerId",
                "Description",
            }
        ),
        read_only=_COMMON_RO | {"IsClosed", "IsWon", "ForecastCategory"},
        parents={"Account": ("AccountId", "Account"), "Owner": ("OwnerId", "User")},
        children={
            "OpportunityContactRoles": ("OpportunityContactRole", "OpportunityId"),
            "Tasks": ("Task", "WhatId"),
            "Histories": ("OpportunityFieldHistory", "OpportunityId"),
        },
        required=("Name", "StageName", "CloseDate"),
    ),
    "Account": _Object(prefix="001", writable=frozenset({"Name"}), read_only=_COMMON_RO),
    "Contact": _Object(
        prefix="003",
        writable=frozenset({"FirstName", "LastName", "Email", "AccountId"}),
        read_only=_COMMON_RO | {"Name"},
    ),
    "User": _Object(
        prefix="005",
        writable=frozenset({"Email", "FirstName", "LastName", "IsActive", "Username"}),
        read_only=_COMMON_RO | {"Name"},
    ),
    "OpportunityContactRole": _Object(
        prefix="00K",
        writable=frozenset({"OpportunityId", "ContactId", "Role", "IsPrimary"}),
        read_only=_COMMON_RO,
        parents={
            "Contact": ("ContactId", "Contact"),
            "Opportunity": ("OpportunityId", "Opportunity"),
        },
    ),
    "Task": _Object(
        prefix="00T",
        writable=frozenset({"WhatId", "Subject", "ActivityDate", "OwnerId", "Status", "Priority"}),
        read_only=_COMMON_RO | {"IsClosed"},
        parents={"Owner": ("OwnerId", "User")},
        required=("Status",),
    ),
    "OpportunityStage": _Object(
        prefix="01J",
        writable=frozenset(),
        read_only=_COMMON_RO
        | {
            "MasterLabel",
            "ApiName",
            "DefaultProbability",
            "SortOrder",
            "IsClosed",
            "IsWon",
            "IsActive",
            "ForecastCategory",
            "ForecastCategoryName",
        },
    ),
    "OpportunityFieldHistory": _Object(
        prefix="008",
        writable=frozenset(),
        read_only=frozenset(
            {"Id", "OpportunityId", "Field", "OldValue", "NewValue", "CreatedDate", "CreatedById"}
        ),
    ),
}

# Child object -> its foreign keys to a parent, indexed so `IN (...)` and subqueries are cheap.
_CHILD_KEYS: dict[str, tuple[str, ...]] = defaultdict(tuple)
for _schema in SCHEMA.values():
    for _child, _fk in _schema.children.values():
        _CHILD_KEYS[_child] += (_fk,)

# Forecast category labels (ForecastCategoryName) and their API values (ForecastCategory).
FORECAST_API = {
    "Pipeline": "Pipeline",
    "Best Case": "BestCase",
    "Commit": "Forecast",
    "Omitted": "Omitted",
    "Closed": "Closed",
}
HISTORY_TRACKED = ("Name", "Amount", "CloseDate", "StageName", "ForecastCategoryName")

# Salesforce's standard sales process: label, default probability (%), forecast category.
STANDARD_STAGES: tuple[tuple[str, int, str, bool, bool], ...] = (
    ("Prospecting", 10, "Pipeline", False, False),
    ("Qualification", 10, "Pipeline", False, False),
    ("Needs Analysis", 20, "Pipeline", False, False),
    ("Value Proposition", 50, "Pipeline", False, False),
    ("Id. Decision Makers", 60, "Pipeline", False, False),
    ("Perception Analysis", 70, "Pipeline", False, False),
    ("Proposal/Price Quote", 75, "Pipeline", False, False),
    ("Negotiation/Review", 90, "Pipeline", False, False),
    ("Closed Won", 100, "Closed", True, True),
    ("Closed Lost", 0, "Omitted", True, False),
)


class SalesforceFault(Exception):
    """An error answer: HTTP status and Salesforce's JSON list of errors."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: Sequence[str] = (),
        *,
        body: Any = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: Any = body or [{"message": message, "errorCode": code, "fields": list(fields)}]
        self.retry_after = retry_after


def _invalid_field(name: str, entity: str) -> SalesforceFault:
    return SalesforceFault(
        400,
        "INVALID_FIELD",
        f"No such column '{name}' on entity '{entity}'. If you are attempting to use a custom "
        "field, be sure to append the '__c' after the custom field name. Please reference "
        "your WSDL or the describe call for the appropriate names.",
    )


def _invalid_type(name: str) -> SalesforceFault:
    return SalesforceFault(
        400,
        "INVALID_TYPE",
        f"sObject type '{name}' is not supported. If you are attempting to use a custom "
        "object, be sure to append the '__c' after the entity name.",
    )


# --- SOQL: exactly the shapes the connector emits ---

_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^'\\]|\\.)*')|(?P<op>>=|<=|!=|[(),=<>])|(?P<word>[A-Za-z0-9_.:+\-/]+))"
)
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass
class Soql:
    obj: str
    fields: list[str]  # plain or dotted relationship paths
    subqueries: list[Soql]
    count: bool
    where: list[tuple[str, str, Any]]
    order: list[str]
    descending: bool
    limit: int | None


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise SalesforceFault(400, "MALFORMED_QUERY", f"unexpected token: {text[pos:]!r}")
        out.append(match.group(match.lastgroup or "word"))
        pos = match.end()
    return [token for token in out if token.strip()]


def _literal(token: str) -> Any:
    if token.startswith("'"):
        return re.sub(r"\\(.)", r"\1", token[1:-1])
    lowered = token.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered == "null":
        return None
    if _DATETIME.match(token):
        return dt.datetime.fromisoformat(token.replace("Z", "+00:00"))
    if _DATE.match(token):
        return dt.date.fromisoformat(token)
    try:
        return Decimal(token)
    except ArithmeticError as error:
        raise SalesforceFault(400, "MALFORMED_QUERY", f"unexpected token: '{token}'") from error


class _Parser:
    def __init__(self, tokens: list[str]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token.upper() != expected):
            raise SalesforceFault(
                400, "MALFORMED_QUERY", f"expecting '{expected}', found {token!r}"
            )
        self.pos += 1
        return token

    def select(self) -> Soql:
        self.take("SELECT")
        fields: list[str] = []
        subqueries: list[Soql] = []
        count = False
        while True:
            if self.peek() == "(":
                self.take("(")
                subqueries.append(self.select())
                self.take(")")
            elif (self.peek() or "").upper() == "COUNT":
                self.take()
                self.take("(")
                self.take(")")
                count = True
            else:
                fields.append(self.take())
            if self.peek() != ",":
                break
            self.take(",")
        self.take("FROM")
        query = Soql(self.take(), fields, subqueries, count, [], [], False, None)
        if (self.peek() or "").upper() == "WHERE":
            self.take()
            query.where.append(self.condition())
            while (self.peek() or "").upper() == "AND":
                self.take()
                query.where.append(self.condition())
        if (self.peek() or "").upper() == "ORDER":
            self.take()
            self.take("BY")
            query.order.append(self.take())
            while self.peek() == ",":
                self.take(",")
                query.order.append(self.take())
            if (self.peek() or "").upper() in ("ASC", "DESC"):
                query.descending = self.take().upper() == "DESC"
        if (self.peek() or "").upper() == "LIMIT":
            self.take()
            query.limit = int(self.take())
        return query

    def condition(self) -> tuple[str, str, Any]:
        name = self.take()
        op = self.take().upper()
        if op == "IN":
            self.take("(")
            values = [_literal(self.take())]
            while self.peek() == ",":
                self.take(",")
                values.append(_literal(self.take()))
            self.take(")")
            return name, op, values
        if op not in ("=", "!=", ">=", "<=", ">", "<"):
            raise SalesforceFault(400, "MALFORMED_QUERY", f"unexpected token: '{op}'")
        return name, op, _literal(self.take())


def parse_soql(text: str) -> Soql:
    parser = _Parser(_tokens(text))
    query = parser.select()
    if parser.peek() is not None:
        raise SalesforceFault(400, "MALFORMED_QUERY", f"unexpected token: '{parser.peek()}'")
    return query


def _compare(value: Any, op: str, wanted: Any) -> bool:
    if op == "IN":
        return value in wanted
    if op == "=":
        return bool(value == wanted)
    if op == "!=":
        return bool(value != wanted)
    if value is None or wanted is None:
        return False
    if isinstance(value, float | int) and isinstance(wanted, Decimal):
        value = Decimal(str(value))
    if op == ">=":
        return bool(value >= wanted)
    if op == "<=":
        return bool(value <= wanted)
    if op == ">":
        return bool(value > wanted)
    return bool(value < wanted)


def _json_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    return value


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return str(_json_value(value))


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    query: dict[str, list[str]]
    body: Any


@dataclass
class _Rule:
    predicate: Callable[[dict[str, Any]], bool]
    message: str
    fields: tuple[str, ...]


@dataclass
class _Fault:
    status: int
    body: Any
    retry_after: float | None
    method: str | None
    path: str | None


@dataclass
class _Cursor:
    obj: str
    query: Soql
    ids: list[str]
    offset: int
    page_size: int


@dataclass
class _BulkJob:
    id: str
    query: Soql
    ids: list[str]
    polled: int = 0


class FakeSalesforce:
    """Threaded HTTPS fake of one Salesforce org: the token endpoint and the REST API."""

    CLIENT_ID = "3MVG9fake.connected.app"
    USERNAME = "integration@example.com"

    def __init__(
        self,
        *,
        clock: _Clock,
        page_size: int = 2000,
        child_page_size: int = 200,
        api_limit: int = 100_000,
        multi_currency: bool = False,
        api_version: str = "62.0",
    ) -> None:
        self.clock = clock
        self.page_size = page_size
        self.child_page_size = child_page_size
        self.fail_bulk_jobs = False
        self.api_limit = api_limit
        self.api_usage = 0
        self.multi_currency = multi_currency
        self.api_version = api_version  # the newest version the org serves
        self._version = api_version  # the version of the call being answered
        self.calls: list[Call] = []
        self.records: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in SCHEMA}
        self._children: dict[tuple[str, str], dict[str, list[str]]] = defaultdict(
            lambda: defaultdict(list)
        )
        self._ids = itertools.count(1)
        self._lock = threading.RLock()
        self._faults: list[_Fault] = []
        self._rules: list[_Rule] = []
        self._locked: set[str] = set()
        self._sessions: set[str] = set()
        self._revoked = False
        self._cursors: dict[str, _Cursor] = {}
        self._jobs: dict[str, _BulkJob] = {}
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._ca = trustme.CA()
        self._cert = self._ca.issue_cert("127.0.0.1", "localhost")
        self._ca_dir: Path | None = None
        self._own_dir: tempfile.TemporaryDirectory[str] | None = None
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_key_pem: bytes = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self.public_key_pem: bytes = key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        self.integration_user = self.add_user(
            name="Integration User", email=self.USERNAME, username=self.USERNAME
        )
        for order, (label, probability, forecast, closed, won) in enumerate(STANDARD_STAGES, 1):
            self.add_stage(
                label,
                probability=probability,
                forecast_category=forecast,
                is_closed=closed,
                is_won=won,
                order=order,
            )

    # --- lifecycle ---

    def start(self, ca_dir: Path | None = None) -> Self:
        """Serve on 127.0.0.1 (a free port); the CA's PEM goes to `ca_dir` or a temp dir."""
        fake = self

        class Handler(_Handler):
            salesforce = fake

        if ca_dir is None:
            self._own_dir = tempfile.TemporaryDirectory(prefix="fake-salesforce-")
            ca_dir = Path(self._own_dir.name)
        self._ca_dir = ca_dir
        self._ca.cert_pem.write_to_path(str(self.ca_bundle_path))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._cert.configure_cert(context)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._own_dir is not None:
            self._own_dir.cleanup()
            self._own_dir = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def ca_bundle_path(self) -> Path:
        assert self._ca_dir is not None, "start() the fake first"
        return self._ca_dir / "fake-salesforce-ca.pem"

    @property
    def instance_url(self) -> str:
        assert self._server is not None
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    @property
    def login_url(self) -> str:
        """The URL the connected app's JWTs must name as `aud` (one server plays both)."""
        assert self._server is not None
        return f"https://localhost:{self._server.server_address[1]}"

    # --- seeding (no API call is counted) ---

    def _new_id(self, obj: str) -> str:
        return f"{SCHEMA[obj].prefix}{next(self._ids):012d}AAA"

    def _insert(self, obj: str, record: dict[str, Any]) -> str:
        record.setdefault("Id", self._new_id(obj))
        self.records[obj][record["Id"]] = record
        for fk in _CHILD_KEYS.get(obj, ()):
            if record.get(fk):
                self._children[(obj, fk)][record[fk]].append(record["Id"])
        return str(record["Id"])

    def _stamp(self) -> dt.datetime:
        return self.clock.now().astimezone(dt.UTC).replace(microsecond=0)

    def add_user(
        self, *, name: str, email: str | None, active: bool = True, username: str | None = None
    ) -> str:
        now = self._stamp()
        return self._insert(
            "User",
            {
                "Name": name,
                "Email": email,
                "IsActive": active,
                "Username": username or email,
                "CreatedDate": now,
                "SystemModstamp": now,
            },
        )

    def add_stage(
        self,
        label: str,
        *,
        probability: int,
        forecast_category: str,
        is_closed: bool = False,
        is_won: bool = False,
        order: int | None = None,
        active: bool = True,
    ) -> str:
        now = self._stamp()
        return self._insert(
            "OpportunityStage",
            {
                "MasterLabel": label,
                "ApiName": label,
                "DefaultProbability": Decimal(probability),
                "SortOrder": order
                if order is not None
                else len(self.records["OpportunityStage"]) + 1,
                "IsClosed": is_closed,
                "IsWon": is_won,
                "IsActive": active,
                "ForecastCategoryName": forecast_category,
                "ForecastCategory": FORECAST_API[forecast_category],
                "CreatedDate": now,
                "SystemModstamp": now,
            },
        )

    def add_account(self, name: str) -> str:
        for record in self.records["Account"].values():
            if record["Name"] == name:
                return str(record["Id"])
        now = self._stamp()
        return self._insert("Account", {"Name": name, "CreatedDate": now, "SystemModstamp": now})

    def add_opportunity(self, *, account: str | None = None, **fields: Any) -> str:
        """Seed an opportunity from Salesforce field names; `account` names its Account."""
        now = self._stamp()
        stage = self._stage(fields.get("StageName", "Prospecting"))
        record: dict[str, Any] = {
            "Name": "Opportunity",
            "AccountId": self.add_account(account) if account else None,
            "Amount": None,
            "CloseDate": now.date() + dt.timedelta(days=30),
            "StageName": stage["MasterLabel"],
            "Probability": stage["DefaultProbability"],
            "ForecastCategoryName": stage["ForecastCategoryName"],
            "NextStep": None,
            "OwnerId": self.integration_user,
            "Description": None,
            "CreatedDate": now,
            "SystemModstamp": now,
            "LastModifiedDate": now,
        }
        if self.multi_currency:
            record["CurrencyIsoCode"] = "USD"
        for name, value in fields.items():
            if isinstance(value, float | int) and not isinstance(value, bool):
                value = Decimal(str(value))
            record[name] = value
        self._derive(record)
        return self._insert("Opportunity", record)

    def add_contact_role(
        self, opportunity_id: str, *, name: str, email: str | None, role: str | None
    ) -> str:
        now = self._stamp()
        first, _, last = name.rpartition(" ")
        contact = self._insert(
            "Contact",
            {
                "FirstName": first,
                "LastName": last,
                "Name": name,
                "Email": email,
                "CreatedDate": now,
                "SystemModstamp": now,
            },
        )
        return self._insert(
            "OpportunityContactRole",
            {
                "OpportunityId": opportunity_id,
                "ContactId": contact,
                "Role": role,
                "IsPrimary": False,
                "CreatedDate": now,
                "SystemModstamp": now,
            },
        )

    def add_task(self, opportunity_id: str, **fields: Any) -> str:
        now = self._stamp()
        record: dict[str, Any] = {
            "WhatId": opportunity_id,
            "Subject": "Call",
            "ActivityDate": None,
            "OwnerId": self.integration_user,
            "Status": "Not Started",
            "Priority": "Normal",
            "CreatedDate": now,
            "SystemModstamp": now,
            "LastModifiedDate": now,
            **fields,
        }
        record["IsClosed"] = record["Status"] == "Completed"
        return self._insert("Task", record)

    def add_history(
        self, opportunity_id: str, field_name: str, old: Any, new: Any, *, by: str | None = None
    ) -> str:
        return self._insert(
            "OpportunityFieldHistory",
            {
                "OpportunityId": opportunity_id,
                "Field": field_name,
                "OldValue": old,
                "NewValue": new,
                "CreatedDate": self._stamp(),
                "CreatedById": by or self.integration_user,
            },
        )

    # --- faults and rules ---

    def fail_next(
        self,
        status: int,
        times: int = 1,
        body: Any = None,
        retry_after: float | None = None,
        *,
        method: str | None = None,
        path: str | None = None,
    ) -> None:
        """Answer the next `times` REST calls with `status` (the token endpoint is spared).

        `method` and `path` (a part of it, `/sobjects/Opportunity/`) narrow which calls fail,
        so a test can fail the write itself and not a read made before it.
        """
        if body is None:
            code = {429: "REQUEST_LIMIT_EXCEEDED", 503: "SERVER_UNAVAILABLE"}.get(
                status, "UNKNOWN_EXCEPTION"
            )
            body = [{"message": "An unexpected error occurred.", "errorCode": code}]
        with self._lock:
            self._faults.extend(
                _Fault(status, body, retry_after, method, path) for _ in range(times)
            )

    def add_validation_rule(
        self, predicate: Callable[[dict[str, Any]], bool], message: str, fields: Sequence[str] = ()
    ) -> None:
        """Refuse an Opportunity write whose resulting record makes `predicate` true."""
        self._rules.append(_Rule(predicate, message, tuple(fields)))

    def lock(self, opportunity_id: str) -> None:
        """Lock the record, as an approval process does."""
        self._locked.add(opportunity_id)

    def revoke(self) -> None:
        """Revoke the connected app: sessions die and no new token is granted."""
        with self._lock:
            self._revoked = True
            self._sessions.clear()

    def expire_sessions(self) -> None:
        """End every session (a timeout); a new JWT grant still works."""
        with self._lock:
            self._sessions.clear()

    # --- reading the state ---

    @property
    def opportunities(self) -> dict[str, dict[str, Any]]:
        return self.records["Opportunity"]

    @property
    def tasks(self) -> dict[str, dict[str, Any]]:
        return self.records["Task"]

    def calls_to(self, method: str, path_part: str) -> list[Call]:
        return [c for c in self.calls if c.method == method and path_part in c.path]

    def writes(self) -> list[Call]:
        return [c for c in self.calls if c.method in ("POST", "PATCH") and "/sobjects/" in c.path]

    # --- the HTTP surface ---

    def handle(
        self, method: str, target: str, headers: Any, raw: bytes
    ) -> tuple[int, Any, dict[str, str], str]:
        """Return (status, payload, extra headers, content type) for one request."""
        parts = urlsplit(target)
        query = parse_qs(parts.query)
        body: Any = raw.decode() if raw else None
        if body and "json" in (headers.get("Content-Type") or ""):
            body = json.loads(body)
        with self._lock:
            self.calls.append(Call(method, parts.path, query, body))
            if parts.path == "/services/oauth2/token" and method == "POST":
                status, payload = self._token(parse_qs(raw.decode()))
                return status, payload, {}, "application/json"
            extra: dict[str, str] = {}
            try:
                payload, status, extra, kind = self._rest(method, parts.path, query, headers, body)
            except SalesforceFault as fault:
                payload, status, kind = fault.body, fault.status, "application/json"
                if fault.retry_after is not None:
                    extra["Retry-After"] = str(fault.retry_after)
            extra["Sforce-Limit-Info"] = f"api-usage={self.api_usage}/{self.api_limit}"
            return status, payload, extra, kind

    def _token(self, form: dict[str, list[str]]) -> tuple[int, Any]:
        def refused(error: str, description: str) -> tuple[int, Any]:
            return 400, {"error": error, "error_description": description}

        if form.get("grant_type") != [JWT_GRANT]:
            return refused("unsupported_grant_type", "grant type not supported")
        assertion = (form.get("assertion") or [""])[0]
        try:
            claims = jwt.decode(
                assertion,
                self.public_key_pem,
                algorithms=["RS256"],
                options={"verify_exp": False, "verify_aud": False},
            )
        except jwt.InvalidTokenError:
            return refused("invalid_grant", "invalid assertion")
        if claims.get("iss") != self.CLIENT_ID:
            return refused("invalid_client_id", "client identifier invalid")
        if claims.get("aud") != self.login_url:
            return refused("invalid_grant", "audience is invalid")
        if (
            not isinstance(claims.get("exp"), int | float)
            or claims["exp"] < self._stamp().timestamp()
        ):
            return refused("invalid_grant", "expired authorization code")
        users = [u for u in self.records["User"].values() if u["Username"] == claims.get("sub")]
        if not users or not users[0]["IsActive"]:
            return refused("invalid_grant", "user hasn't approved this consumer")
        if self._revoked:
            return refused("invalid_grant", "user hasn't approved this consumer")
        token = "00Dfake!" + secrets.token_urlsafe(24)
        self._sessions.add(token)
        return 200, {
            "access_token": token,
            "scope": "api",
            "instance_url": self.instance_url,
            "id": f"{self.login_url}/id/00D000000000001AAA/{users[0]['Id']}",
            "token_type": "Bearer",
        }

    def _rest(
        self, method: str, path: str, query: dict[str, list[str]], headers: Any, body: Any
    ) -> tuple[Any, int, dict[str, str], str]:
        for fault in self._faults:
            if fault.method in (None, method) and (fault.path is None or fault.path in path):
                self._faults.remove(fault)
                raise SalesforceFault(
                    fault.status, "", "", body=fault.body, retry_after=fault.retry_after
                )
        token = (headers.get("Authorization") or "").removeprefix("Bearer ")
        if token not in self._sessions:
            raise SalesforceFault(401, "", "", body=INVALID_SESSION)
        versioned = _VERSIONED.match(path)
        if versioned is None or not MIN_API_VERSION <= float(versioned.group(1)) <= float(
            self.api_version
        ):
            raise SalesforceFault(404, "NOT_FOUND", "The requested resource does not exist")
        self._version = versioned.group(1)  # calls are serialised by the lock
        prefix = versioned.group(0)
        if self.api_usage >= self.api_limit:
            raise SalesforceFault(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
        self.api_usage += 1
        rest = path[len(prefix) :].strip("/").split("/")
        json_kind = "application/json"
        if rest[0] == "query" and method == "GET":
            if len(rest) == 1:
                return self._query((query.get("q") or [""])[0]), 200, {}, json_kind
            return self._query_more(rest[1]), 200, {}, json_kind
        if rest[0] == "sobjects" and len(rest) >= 2:
            obj = rest[1]
            if obj not in SCHEMA:
                raise SalesforceFault(404, "NOT_FOUND", "The requested resource does not exist")
            if len(rest) == 3 and rest[2] == "describe" and method == "GET":
                return self._describe(obj), 200, {}, json_kind
            if len(rest) == 2 and method == "POST":
                return self._create(obj, body), 201, {}, json_kind
            if len(rest) == 3 and method == "PATCH":
                self._update(obj, rest[2], body)
                return None, 204, {}, json_kind
        if rest[:2] == ["jobs", "query"]:
            return self._bulk(method, rest[2:], query, body)
        raise SalesforceFault(404, "NOT_FOUND", "The requested resource does not exist")

    # --- SOQL ---

    def _check(self, query: Soql, obj: str | None = None) -> None:
        obj = obj or query.obj
        schema = SCHEMA.get(obj)
        if schema is None:
            raise _invalid_type(obj)
        for name in [*query.fields, *(w[0] for w in query.where), *query.order]:
            self._check_path(obj, name)

    def _check_path(self, obj: str, name: str) -> None:
        schema = SCHEMA[obj]
        if "." in name:
            rel, rest = name.split(".", 1)
            if rel not in schema.parents:
                raise SalesforceFault(
                    400,
                    "INVALID_FIELD",
                    f"Didn't understand relationship '{rel}' in field path. If you are "
                    "attempting to use a custom relationship, be sure to append the '__r' "
                    "after the custom relationship name.",
                )
            self._check_path(schema.parents[rel][1], rest)
            return
        if name not in self._fields(obj):
            raise _invalid_field(name, obj)

    def _fields(self, obj: str) -> frozenset[str]:
        fields = SCHEMA[obj].fields
        if obj == "Opportunity" and not self.multi_currency:
            fields = fields - {"CurrencyIsoCode"}
        return fields

    def _value(self, obj: str, record: dict[str, Any], path: str) -> Any:
        if "." not in path:
            return record.get(path)
        rel, rest = path.split(".", 1)
        fk, parent = SCHEMA[obj].parents[rel]
        target = self.records[parent].get(record.get(fk) or "")
        return None if target is None else self._value(parent, target, rest)

    def _select(self, obj: str, query: Soql, ids: Iterable[str] | None = None) -> list[str]:
        table = self.records[obj]
        if ids is None:
            ids = self._indexed(obj, query)
        candidates = table.values() if ids is None else (table[i] for i in ids if i in table)
        found = [
            r
            for r in candidates
            if all(_compare(self._value(obj, r, f), op, v) for f, op, v in query.where)
        ]
        if query.order:
            found.sort(
                key=lambda r: tuple(self._value(obj, r, f) for f in query.order),
                reverse=query.descending,
            )
        if query.limit is not None:
            found = found[: query.limit]
        return [str(r["Id"]) for r in found]

    def _indexed(self, obj: str, query: Soql) -> list[str] | None:
        """Return candidate ids from an `Id IN` or a foreign key `IN`, so a bench stays fast."""
        for name, op, values in query.where:
            if op != "IN":
                continue
            if name == "Id":
                return [str(v) for v in values]
            index = self._children.get((obj, name))
            if index is not None:
                return [i for v in values for i in index.get(str(v), [])]
        return None

    def _render(self, obj: str, record: dict[str, Any], query: Soql) -> dict[str, Any]:
        out: dict[str, Any] = {
            "attributes": {
                "type": obj,
                "url": f"/services/data/v{self._version}/sobjects/{obj}/{record['Id']}",
            }
        }
        for name in query.fields:
            if "." not in name:
                out[name] = _json_value(record.get(name))
                continue
            rel, rest = name.split(".", 1)
            fk, parent = SCHEMA[obj].parents[rel]
            target = self.records[parent].get(record.get(fk) or "")
            if target is None:
                out[rel] = None
                continue
            nested = out.get(rel) or {"attributes": {"type": parent, "url": ""}}
            nested[rest] = _json_value(self._value(parent, target, rest))
            out[rel] = nested
        for sub in query.subqueries:
            child, fk = SCHEMA[obj].children[sub.obj]
            ids = self._children[(child, fk)].get(str(record["Id"]), [])
            found = self._select(child, sub, ids)
            if not found:
                out[sub.obj] = None  # Salesforce's answer for an empty child list
                continue
            # A long child list is paged inside its parent, with its own locator.
            locator = f"01g{next(self._ids):015d}"
            self._cursors[locator] = _Cursor(child, sub, found, 0, self.child_page_size)
            out[sub.obj] = self._page(locator)
        return out

    def _query(self, text: str) -> dict[str, Any]:
        query = parse_soql(text)
        self._check(query)
        for sub in query.subqueries:
            rel = SCHEMA[query.obj].children.get(sub.obj)
            if rel is None:
                raise SalesforceFault(
                    400,
                    "INVALID_TYPE",
                    f"Didn't understand relationship '{sub.obj}' in FROM part of query call.",
                )
            self._check(sub, rel[0])
        ids = self._select(query.obj, query)
        if query.count:
            return {"totalSize": len(ids), "done": True, "records": []}
        locator = f"01g{next(self._ids):015d}"
        self._cursors[locator] = _Cursor(query.obj, query, ids, 0, self.page_size)
        return self._page(locator)

    def _query_more(self, identifier: str) -> dict[str, Any]:
        locator, _, offset = identifier.rpartition("-")
        cursor = self._cursors.get(locator)
        if cursor is None or not offset.isdigit():
            raise SalesforceFault(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        cursor.offset = int(offset)
        return self._page(locator)

    def _page(self, locator: str) -> dict[str, Any]:
        cursor = self._cursors[locator]
        end = cursor.offset + cursor.page_size
        table = self.records[cursor.obj]
        rows = [
            self._render(cursor.obj, table[i], cursor.query)
            for i in cursor.ids[cursor.offset : end]
            if i in table
        ]
        answer: dict[str, Any] = {
            "totalSize": len(cursor.ids),
            "done": end >= len(cursor.ids),
            "records": rows,
        }
        if end < len(cursor.ids):
            answer["nextRecordsUrl"] = f"/services/data/v{self._version}/query/{locator}-{end}"
        return answer

    def _describe(self, obj: str) -> dict[str, Any]:
        schema = SCHEMA[obj]
        return {
            "name": obj,
            "fields": [
                {
                    "name": name,
                    "updateable": name in schema.writable,
                    "createable": name in schema.writable,
                }
                for name in sorted(self._fields(obj))
            ],
        }

    # --- writes ---

    def _stage(self, label: str) -> dict[str, Any]:
        for stage in self.records["OpportunityStage"].values():
            if stage["ApiName"] == label and stage["IsActive"]:
                return stage
        raise SalesforceFault(
            400,
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            f"Stage: bad value for restricted picklist field: {label}",
            ["StageName"],
        )

    def _derive(self, record: dict[str, Any]) -> None:
        stage = self._stage(record["StageName"])
        record["IsClosed"] = stage["IsClosed"]
        record["IsWon"] = stage["IsWon"]
        record["ForecastCategory"] = FORECAST_API.get(record.get("ForecastCategoryName") or "")

    def _check_write(self, obj: str, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise SalesforceFault(400, "JSON_PARSER_ERROR", "The request body is not a JSON object")
        fields = self._fields(obj)
        for name in body:
            if name not in fields:
                raise SalesforceFault(
                    400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {obj}"
                )
        read_only = [name for name in body if name not in SCHEMA[obj].writable]
        if read_only:
            raise SalesforceFault(
                400,
                "INVALID_FIELD_FOR_INSERT_UPDATE",
                f"Unable to create/update fields: {', '.join(read_only)}. Please check the "
                "security settings of this field and verify that it is read/write for your "
                "profile or permission set.",
                read_only,
            )
        values: dict[str, Any] = {}
        for name, value in body.items():
            if name in ("CloseDate", "ActivityDate") and value is not None:
                try:
                    value = dt.date.fromisoformat(value)
                except (TypeError, ValueError) as error:
                    raise SalesforceFault(
                        400, "JSON_PARSER_ERROR", f"Cannot deserialize value: {value}"
                    ) from error
            elif isinstance(value, float | int) and not isinstance(value, bool):
                value = Decimal(str(value))
            values[name] = value
        return values

    def _apply_opportunity(self, before: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
        after = {**before, **values}
        if "StageName" in values and values["StageName"] != before.get("StageName"):
            stage = self._stage(values["StageName"])
            after.setdefault("Probability", stage["DefaultProbability"])
            if "Probability" not in values:
                after["Probability"] = stage["DefaultProbability"]
            if "ForecastCategoryName" not in values:
                after["ForecastCategoryName"] = stage["ForecastCategoryName"]
        if after.get("ForecastCategoryName") not in FORECAST_API:
            raise SalesforceFault(
                400,
                "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                "Forecast Category: bad value for restricted picklist field: "
                f"{after.get('ForecastCategoryName')}",
                ["ForecastCategoryName"],
            )
        self._derive(after)
        for rule in self._rules:
            if rule.predicate(after):
                raise SalesforceFault(
                    400, "FIELD_CUSTOM_VALIDATION_EXCEPTION", rule.message, rule.fields
                )
        return after

    def _history(self, opportunity_id: str, before: dict[str, Any], after: dict[str, Any]) -> None:
        for name in HISTORY_TRACKED:
            if before.get(name) != after.get(name):
                self.add_history(opportunity_id, name, before.get(name), after.get(name))

    def _create(self, obj: str, body: Any) -> dict[str, Any]:
        values = self._check_write(obj, body)
        missing = [name for name in SCHEMA[obj].required if values.get(name) in (None, "")]
        if missing:
            raise SalesforceFault(
                400,
                "REQUIRED_FIELD_MISSING",
                f"Required fields are missing: [{', '.join(missing)}]",
                missing,
            )
        now = self._stamp()
        stamps = {"CreatedDate": now, "SystemModstamp": now, "LastModifiedDate": now}
        if obj == "Opportunity":
            blank: dict[str, Any] = dict.fromkeys(SCHEMA[obj].writable)
            blank.update(OwnerId=self.integration_user, ForecastCategoryName=None)
            if not self.multi_currency:
                blank.pop("CurrencyIsoCode")
            else:
                blank["CurrencyIsoCode"] = "USD"
            stage = self._stage(values["StageName"])
            blank["Probability"] = stage["DefaultProbability"]
            blank["ForecastCategoryName"] = stage["ForecastCategoryName"]
            record = self._apply_opportunity(blank, values) | stamps
            new_id = self._insert(obj, record)
            self.add_history(new_id, "created", None, None)
        elif obj == "Task":
            record = {"Subject": None, "ActivityDate": None, "OwnerId": self.integration_user}
            record.update(values)
            record.update(stamps, IsClosed=values.get("Status") == "Completed")
            new_id = self._insert(obj, record)
        else:
            new_id = self._insert(obj, {**values, **stamps})
        return {"id": new_id, "success": True, "errors": []}

    def _update(self, obj: str, record_id: str, body: Any) -> None:
        before = self.records[obj].get(record_id)
        if before is None:
            raise SalesforceFault(404, "NOT_FOUND", "The requested resource does not exist")
        values = self._check_write(obj, body)
        if record_id in self._locked:
            raise SalesforceFault(
                400,
                "ENTITY_IS_LOCKED",
                "This record is locked. If you need to edit it, contact your admin",
            )
        now = self._stamp()
        if obj == "Opportunity":
            after = self._apply_opportunity(before, values)
            self._history(record_id, before, after)
        else:
            after = {**before, **values}
            if obj == "Task":
                after["IsClosed"] = after.get("Status") == "Completed"
        after.update(SystemModstamp=now, LastModifiedDate=now)
        self.records[obj][record_id] = after

    def touch(self, opportunity_id: str, **values: Any) -> None:
        """Change an opportunity as a user in Salesforce would (no API call is counted)."""
        with self._lock:
            self._update("Opportunity", opportunity_id, values)

    # --- Bulk API 2.0 query jobs ---

    def _bulk(
        self, method: str, rest: list[str], params: dict[str, list[str]], body: Any
    ) -> tuple[Any, int, dict[str, str], str]:
        json_kind = "application/json"
        if not rest and method == "POST":
            if not isinstance(body, dict) or body.get("operation") not in ("query", "queryAll"):
                raise SalesforceFault(400, "INVALIDJOB", "InvalidJob : operation is required")
            query = parse_soql(str(body.get("query", "")))
            self._check(query)
            if query.subqueries or query.count:
                raise SalesforceFault(
                    400,
                    "INVALIDJOB",
                    "InvalidJob : Bulk API 2.0 does not support nested queries or COUNT()",
                )
            job = _BulkJob(f"750{next(self._ids):012d}AAA", query, self._select(query.obj, query))
            self._jobs[job.id] = job
            return self._job_info(job, "UploadComplete"), 200, {}, json_kind
        job = self._jobs.get(rest[0]) if rest else None
        if job is None:
            raise SalesforceFault(404, "NOT_FOUND", "The requested resource does not exist")
        if len(rest) == 1 and method == "GET":
            job.polled += 1
            state = "InProgress" if job.polled == 1 else "JobComplete"
            if self.fail_bulk_jobs and job.polled > 1:
                state = "Failed"
            info = self._job_info(job, state)
            if state == "Failed":
                info["errorMessage"] = "InternalServerError: the query job could not complete"
            return info, 200, {}, json_kind
        if len(rest) == 2 and rest[1] == "results" and method == "GET":
            if job.polled < 2:
                raise SalesforceFault(400, "INVALIDJOBSTATE", "Job is not complete")
            start = int((params.get("locator") or ["0"])[0])
            size = int((params.get("maxRecords") or ["50000"])[0])
            chunk = job.ids[start : start + size]
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(job.query.fields)
            table = self.records[job.query.obj]
            for record_id in chunk:
                record = table[record_id]
                writer.writerow(
                    [_csv_value(self._value(job.query.obj, record, f)) for f in job.query.fields]
                )
            end = start + size
            headers = {
                "Sforce-Locator": str(end) if end < len(job.ids) else "null",
                "Sforce-NumberOfRecords": str(len(chunk)),
            }
            return out.getvalue(), 200, headers, "text/csv"
        raise SalesforceFault(404, "NOT_FOUND", "The requested resource does not exist")

    def _job_info(self, job: _BulkJob, state: str) -> dict[str, Any]:
        return {
            "id": job.id,
            "operation": "query",
            "object": job.query.obj,
            "state": state,
            "concurrencyMode": "Parallel",
            "contentType": "CSV",
            "apiVersion": float(self._version),
            "lineEnding": "LF",
            "columnDelimiter": "COMMA",
            "numberRecordsProcessed": len(job.ids) if state == "JobComplete" else 0,
        }


class _Handler(BaseHTTPRequestHandler):
    salesforce: FakeSalesforce
    protocol_version = "HTTP/1.1"  # keep-alive: a TLS handshake per call would dwarf the work
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms stall

    def log_message(self, format: str, *args: Any) -> None:
        return

    def do_GET(self) -> None:
        self._answer("GET")

    def do_POST(self) -> None:
        self._answer("POST")

    def do_PATCH(self) -> None:
        self._answer("PATCH")

    def do_DELETE(self) -> None:
        self._answer("DELETE")

    def _answer(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        status, payload, extra, kind = self.salesforce.handle(method, self.path, self.headers, raw)
        if payload is None:
            data = b""
        elif isinstance(payload, str) and kind == "text/csv":
            data = payload.encode()
        else:
            data = json.dumps(payload).encode()
        self.send_response(status)
        for name, value in extra.items():
            self.send_header(name, value)
        if data:
            self.send_header("Content-Type", f"{kind}; charset=UTF-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
