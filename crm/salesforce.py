"""Salesforce as a `CrmConnector`, through simple-salesforce.

Login is the OAuth 2.0 JWT bearer flow done here, not by simple-salesforce: its own JWT
login hard-codes `https://{domain}.salesforce.com` and so cannot reach
`SALESFORCE_LOGIN_URL` (a My Domain, a sandbox, the test fake). The client is then built from
the token's `instance_url` and `access_token`; such a client never logs in again by itself,
so a 401 `INVALID_SESSION_ID` is caught here, a new token fetched once and the call retried.

Mapping choices (Salesforce → dealbot):
- Forecast categories: Pipeline → pipeline, Best Case → best_case, Commit (API value
  Forecast) → commit, Omitted → omitted, and Closed → commit: Salesforce's cumulative
  forecast rolls closed-won revenue into Commit, and whether a deal is closed is carried by
  its stage (`CrmStage.is_closed` / `is_won`), not by the category. Dealbot's categories are
  written back as Pipeline / Best Case / Commit / Omitted.
- Contact roles: Economic Buyer, Economic Decision Maker and Decision Maker → economic_buyer;
  Champion → champion; any other role → None (kept as a contact, no MEDDICC role).
- Owners are the active users (`IsActive = true`); a deal owned by a deactivated user keeps
  its owner id, and the engine reports that owner as one with no Slack user.
- A stage change resets `ForecastCategoryName` to the stage's default in Salesforce unless it
  is sent too: `update_deal` sends exactly the fields it is given, so when the caller passes
  both `stage` and `forecast_category` both are sent in one PATCH; with `stage` alone the
  org's default category applies and comes back on the next pull.
- `account` is not writable by name: it is looked up as an Account with exactly that name
  and written as `AccountId`; with no such Account the field is left out (and logged), never
  created, since creating accounts is the CRM owners' call.
- Amounts travel as JSON numbers (Salesforce's currency fields hold two decimals, which a
  float carries exactly enough); `currency` is written only on a multi-currency org.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import Any, Final, TypeVar

import jwt
import requests
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceOperationError,
)

from crm.records import (
    ApiUsage,
    CrmAuthFailed,
    CrmContact,
    CrmDeal,
    CrmError,
    CrmFieldChange,
    CrmKind,
    CrmOwner,
    CrmRateLimited,
    CrmRefused,
    CrmStage,
    CrmTask,
    CrmUnavailable,
    DealFields,
    NewTask,
    PullBatch,
)
from domain.clock import Clock

log = logging.getLogger(__name__)

T = TypeVar("T")

JWT_GRANT: Final = "urn:ietf:params:oauth:grant-type:jwt-bearer"
JWT_LIFETIME: Final = dt.timedelta(minutes=3)
BULK_THRESHOLD: Final = 10_000  # Salesforce's advice: REST queries up to ~10k rows, Bulk past it
ID_CHUNK: Final = 200  # ids per `IN (...)`: ~4 kB of SOQL, well inside a GET URL
REQUEST_TIMEOUT: Final = 30.0
MAX_READ_RETRIES: Final = 3
MAX_RETRY_AFTER: Final = 60.0  # seconds; a longer wait is the sync job's next run's business
SLOW_DOWN_AT: Final = 0.8  # share of the daily API allowance past which reads are paced
PACE_SECONDS: Final = 1.0  # the pause before each read past SLOW_DOWN_AT

FORECAST_FROM_SF: Final[dict[str, str]] = {
    "Pipeline": "pipeline",
    "BestCase": "best_case",
    "Best Case": "best_case",
    "Commit": "commit",
    "Forecast": "commit",
    "Closed": "commit",
    "Omitted": "omitted",
}
FORECAST_TO_SF: Final[dict[str, str]] = {
    "pipeline": "Pipeline",
    "best_case": "Best Case",
    "commit": "Commit",
    "omitted": "Omitted",
}
ROLES: Final[dict[str, str]] = {
    "Economic Buyer": "economic_buyer",
    "Economic Decision Maker": "economic_buyer",
    "Decision Maker": "economic_buyer",
    "Champion": "champion",
}
# dealbot's field -> the Opportunity field it is written to (account goes through AccountId).
FIELD_TO_SF: Final[dict[str, str]] = {
    "title": "Name",
    "account": "AccountId",
    "amount": "Amount",
    "currency": "CurrencyIsoCode",
    "close_date": "CloseDate",
    "stage": "StageName",
    "forecast_category": "ForecastCategoryName",
    "next_step": "NextStep",
    "owner": "OwnerId",
}
FIELD_FROM_SF: Final[dict[str, str]] = {sf: ours for ours, sf in FIELD_TO_SF.items()}
HISTORY_FIELDS: Final[dict[str, str]] = {
    "Name": "title",
    "Amount": "amount",
    "CloseDate": "close_date",
    "StageName": "stage",
    "ForecastCategoryName": "forecast_category",
    "NextStep": "next_step",
}

_OPPORTUNITY_FIELDS: Final = (
    "Id",
    "Name",
    "Account.Name",
    "Amount",
    "CloseDate",
    "StageName",
    "ForecastCategoryName",
    "NextStep",
    "OwnerId",
    "SystemModstamp",
    "CreatedDate",
)
_ROLE_FIELDS: Final = "Id, ContactId, Contact.Name, Contact.Email, Role"
_TASK_FIELDS: Final = "Id, Subject, ActivityDate, OwnerId, IsClosed"
_USAGE: Final = re.compile(r"api-usage=(\d+)/(\d+)")


class _TimeoutSession(requests.Session):
    """A session whose calls time out: simple-salesforce passes no timeout of its own."""

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", REQUEST_TIMEOUT)
        return super().request(method, url, *args, **kwargs)


@dataclass(frozen=True, repr=False)
class JwtGrant:
    """What the JWT bearer flow needs: the connected app and the integration user."""

    login_url: str
    client_id: str
    username: str
    private_key: bytes

    def __repr__(self) -> str:  # the key never reaches a log line
        return f"JwtGrant(login_url={self.login_url!r}, client_id=…, username={self.username!r})"


class SalesforceConnector:
    """One Salesforce org through simple-salesforce; build it with `login()`."""

    kind: CrmKind = "salesforce"

    def __init__(
        self,
        *,
        grant: JwtGrant,
        api_version: str,
        clock: Clock,
        sleep: Callable[[float], None] = time.sleep,
        bulk_threshold: int = BULK_THRESHOLD,
        bulk_poll_seconds: int = 2,
        id_chunk: int = ID_CHUNK,
    ) -> None:
        self._grant = grant
        self._api_version = api_version.removeprefix("v")
        self._clock = clock
        self._sleep = sleep
        self._bulk_threshold = bulk_threshold
        self._bulk_poll_seconds = bulk_poll_seconds
        self._id_chunk = id_chunk
        self._session = _TimeoutSession()
        self._session.hooks["response"].append(self._on_response)
        self._usage: ApiUsage | None = None
        self._retry_after: float | None = None
        self._multi_currency: bool | None = None
        self._instance_url = ""
        self._sf: Salesforce | None = None

    @classmethod
    def login(
        cls,
        *,
        login_url: str,
        client_id: str,
        username: str,
        private_key: bytes,
        api_version: str,
        clock: Clock,
        sleep: Callable[[float], None] = time.sleep,
        bulk_threshold: int = BULK_THRESHOLD,
        bulk_poll_seconds: int = 2,
        id_chunk: int = ID_CHUNK,
    ) -> SalesforceConnector:
        """Return a connector logged in with the JWT bearer flow; raises CrmAuthFailed."""
        connector = cls(
            grant=JwtGrant(
                login_url=login_url.rstrip("/"),
                client_id=client_id,
                username=username,
                private_key=private_key,
            ),
            api_version=api_version,
            clock=clock,
            sleep=sleep,
            bulk_threshold=bulk_threshold,
            bulk_poll_seconds=bulk_poll_seconds,
            id_chunk=id_chunk,
        )
        connector._login()
        return connector

    # --- session ---

    def _login(self) -> None:
        grant = self._grant
        claims = {
            "iss": grant.client_id,
            "sub": grant.username,
            "aud": grant.login_url,
            "exp": int((self._clock.now() + JWT_LIFETIME).timestamp()),
        }
        try:
            assertion = jwt.encode(claims, grant.private_key, algorithm="RS256")
        except (ValueError, TypeError, jwt.PyJWTError) as error:
            raise CrmAuthFailed(
                f"The Salesforce private key cannot sign a login ({type(error).__name__}).",
                code="invalid_key",
            ) from None
        try:
            answer = self._session.post(
                f"{grant.login_url}/services/oauth2/token",
                data={"grant_type": JWT_GRANT, "assertion": assertion},
            )
        except requests.RequestException as error:
            raise CrmUnavailable(
                f"Salesforce's login server could not be reached ({type(error).__name__})."
            ) from None
        if answer.status_code >= 500:
            raise CrmUnavailable(f"Salesforce's login server answered HTTP {answer.status_code}.")
        try:
            body = answer.json()
        except ValueError:
            body = {}
        if answer.status_code != 200 or "access_token" not in body:
            error = str(body.get("error") or f"HTTP {answer.status_code}")
            description = str(body.get("error_description") or error)
            raise CrmAuthFailed(f"Salesforce refused the login: {description}", code=error)
        self._instance_url = str(body["instance_url"]).rstrip("/")
        self._sf = Salesforce(
            instance_url=self._instance_url,
            session_id=str(body["access_token"]),
            version=self._api_version,
            session=self._session,
        )

    def _on_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        """Keep the org's API usage and any Retry-After from every answer (a requests hook)."""
        found = _USAGE.search(response.headers.get("Sforce-Limit-Info") or "")
        if found:
            self._usage = ApiUsage(used=int(found.group(1)), limit=int(found.group(2)))
        retry_after = response.headers.get("Retry-After")
        if response.status_code in (429, 503) and retry_after:
            try:
                self._retry_after = max(0.0, float(retry_after))
            except ValueError:
                self._retry_after = None

    def _call(self, action: Callable[[Salesforce], T]) -> T:
        """Run one client call, logging in again once on INVALID_SESSION_ID."""
        logged_in_again = False
        while True:
            assert self._sf is not None
            self._retry_after = None
            try:
                return action(self._sf)
            except SalesforceExpiredSession as error:
                if logged_in_again:
                    raise _translate(error, None) from None
                log.info("Salesforce session expired; logging in again")
                self._login()
                logged_in_again = True
            except SalesforceError as error:
                raise _translate(error, self._retry_after) from None
            except SalesforceOperationError as error:
                # A Bulk 2.0 job that Salesforce marked Failed or Aborted: try the run again.
                raise CrmUnavailable(f"Salesforce's bulk query failed: {error}") from None
            except requests.RequestException as error:
                raise CrmUnavailable(
                    f"Salesforce could not be reached ({type(error).__name__})."
                ) from None

    def _read(self, action: Callable[[Salesforce], T]) -> T:
        """Run a read, waiting out a 429/503 that says Retry-After (within a bound)."""
        attempt = 0
        while True:
            if self._usage is not None and self._usage.share >= SLOW_DOWN_AT:
                # Past 80% of the day's allowance the org's other integrations come first.
                self._sleep(PACE_SECONDS)
            try:
                return self._call(action)
            except CrmUnavailable:
                wait = self._retry_after
                if attempt >= MAX_READ_RETRIES or wait is None or wait > MAX_RETRY_AFTER:
                    raise
                log.info("Salesforce asked to wait %.1fs; retrying the read", wait)
                self._sleep(wait)
                attempt += 1

    def _pages(self, soql: str) -> Iterator[list[dict[str, Any]]]:
        """Yield a query's records page by page, following nextRecordsUrl."""
        page = self._read(lambda sf: sf.query(soql))
        yield list(page.get("records") or [])
        while not page.get("done", True) and page.get("nextRecordsUrl"):
            url = str(page["nextRecordsUrl"])
            page = self._read(lambda sf, url=url: sf.query_more(url, identifier_is_url=True))
            yield list(page.get("records") or [])

    def _complete(self, record: dict[str, Any]) -> dict[str, Any]:
        """Return an opportunity with every page of its child subqueries.

        Salesforce pages a long child list inside the parent record (`done: false` and its own
        `nextRecordsUrl`); a deal with years of tasks would otherwise lose some.
        """
        for relation in ("OpportunityContactRoles", "Tasks"):
            child = record.get(relation)
            while isinstance(child, dict) and not child.get("done", True):
                url = str(child.get("nextRecordsUrl") or "")
                if not url:
                    break
                more = self._read(lambda sf, url=url: sf.query_more(url, identifier_is_url=True))
                child = {
                    **more,
                    "records": [*child.get("records", []), *(more.get("records") or [])],
                }
                record = {**record, relation: child}
        return record

    def _records(self, soql: str) -> list[dict[str, Any]]:
        return [record for page in self._pages(soql) for record in page]

    def _is_multi_currency(self) -> bool:
        """Return whether Opportunity has CurrencyIsoCode (asked once, by describe)."""
        if self._multi_currency is None:
            described = self._read(lambda sf: sf.Opportunity.describe())
            names = {f.get("name") for f in described.get("fields") or []}
            self._multi_currency = "CurrencyIsoCode" in names
        return self._multi_currency

    def _opportunity_fields(self) -> list[str]:
        fields = list(_OPPORTUNITY_FIELDS)
        if self._is_multi_currency():
            fields.insert(4, "CurrencyIsoCode")
        return fields

    def _opportunity_select(self) -> str:
        return (
            f"SELECT {', '.join(self._opportunity_fields())}, "
            f"(SELECT {_ROLE_FIELDS} FROM OpportunityContactRoles), "
            f"(SELECT {_TASK_FIELDS} FROM Tasks) FROM Opportunity"
        )

    # --- reads ---

    def stages(self) -> tuple[CrmStage, ...]:
        rows = self._records(
            "SELECT ApiName, MasterLabel, DefaultProbability, SortOrder, IsClosed, IsWon, "
            "ForecastCategoryName FROM OpportunityStage WHERE IsActive = true ORDER BY SortOrder"
        )
        return tuple(
            CrmStage(
                id=str(row["ApiName"]),
                label=str(row["MasterLabel"]),
                probability=_decimal(row.get("DefaultProbability") or 0) / 100,
                order=int(row.get("SortOrder") or 0),
                is_closed=bool(row.get("IsClosed")),
                is_won=bool(row.get("IsWon")),
                forecast_category=FORECAST_FROM_SF.get(row.get("ForecastCategoryName") or ""),
            )
            for row in rows
        )

    def owners(self) -> tuple[CrmOwner, ...]:
        rows = self._records(
            "SELECT Id, Email, Name, IsActive FROM User WHERE IsActive = true ORDER BY Name"
        )
        return tuple(
            CrmOwner(id=str(row["Id"]), email=row.get("Email") or None, name=str(row["Name"]))
            for row in rows
        )

    def pull(self, cursor: str | None) -> Iterator[PullBatch]:
        """Yield deals changed since `cursor`, a page a batch; nothing when none changed.

        `SystemModstamp` has second precision, so the query reads `>=` the cursor and a
        deal seen at the cursor's second comes again; the engine keeps the later copy. A
        first sync over the bulk threshold goes through a Bulk API 2.0 query instead.
        """
        if cursor is None:
            total = self._read(lambda sf: sf.query("SELECT COUNT() FROM Opportunity"))
            if int(total.get("totalSize") or 0) > self._bulk_threshold:
                yield from self._pull_bulk()
                return
        where = "" if cursor is None else f" WHERE SystemModstamp >= {_soql_datetime(cursor)}"
        soql = f"{self._opportunity_select()}{where} ORDER BY SystemModstamp, Id"
        for records in self._pages(soql):
            deals = tuple(_deal(self._complete(record)) for record in records)
            if deals:
                yield PullBatch(deals=deals, cursor=deals[-1].modified_at.isoformat())

    def _pull_bulk(self) -> Iterator[PullBatch]:
        soql = f"SELECT {', '.join(self._opportunity_fields())} FROM Opportunity"
        poll = self._bulk_poll_seconds

        def run(sf: Salesforce) -> list[str]:
            return [str(page) for page in sf.bulk2.Opportunity.query(soql, wait=poll)]

        rows: list[dict[str, Any]] = []
        for page in self._read(run):
            rows.extend(_from_csv(row) for row in csv.DictReader(io.StringIO(page)))
        rows.sort(key=lambda row: (_datetime(row["SystemModstamp"]), row["Id"]))
        log.info("Salesforce first sync through Bulk API 2.0: %d opportunities", len(rows))
        for start in range(0, len(rows), 2000):
            chunk = rows[start : start + 2000]
            deals = self._with_children([_deal(row) for row in chunk])
            yield PullBatch(deals=deals, cursor=deals[-1].modified_at.isoformat())

    def _with_children(self, deals: list[CrmDeal]) -> tuple[CrmDeal, ...]:
        """Attach contact roles and tasks read by `OpportunityId IN (...)` in chunks."""
        contacts: dict[str, list[CrmContact]] = defaultdict(list)
        tasks: dict[str, list[CrmTask]] = defaultdict(list)
        for ids in _chunks([deal.id for deal in deals], self._id_chunk):
            listed = _soql_list(ids)
            for row in self._records(
                f"SELECT OpportunityId, {_ROLE_FIELDS} FROM OpportunityContactRole "
                f"WHERE OpportunityId IN ({listed})"
            ):
                contacts[str(row["OpportunityId"])].append(_contact(row))
            for row in self._records(
                f"SELECT WhatId, {_TASK_FIELDS} FROM Task WHERE WhatId IN ({listed})"
            ):
                tasks[str(row["WhatId"])].append(_task(row))
        return tuple(
            replace(deal, contacts=tuple(contacts[deal.id]), tasks=tuple(tasks[deal.id]))
            for deal in deals
        )

    def deals(self, ids: Sequence[str]) -> tuple[CrmDeal, ...]:
        found: list[CrmDeal] = []
        for chunk in _chunks(list(ids), self._id_chunk):
            soql = f"{self._opportunity_select()} WHERE Id IN ({_soql_list(chunk)})"
            found.extend(_deal(self._complete(record)) for record in self._records(soql))
        return tuple(found)

    def field_history(self, deal_ids: Sequence[str]) -> Iterator[CrmFieldChange]:
        changes: list[CrmFieldChange] = []
        for chunk in _chunks(list(deal_ids), self._id_chunk):
            for row in self._records(
                "SELECT OpportunityId, Field, OldValue, NewValue, CreatedDate, CreatedById "
                f"FROM OpportunityFieldHistory WHERE OpportunityId IN ({_soql_list(chunk)}) "
                "ORDER BY CreatedDate"
            ):
                ours = HISTORY_FIELDS.get(str(row.get("Field")))
                if ours is None:
                    continue  # "created", Owner (id and name rows), untracked custom fields
                changes.append(
                    CrmFieldChange(
                        deal_id=str(row["OpportunityId"]),
                        field=ours,
                        old=_history_value(ours, row.get("OldValue")),
                        new=_history_value(ours, row.get("NewValue")),
                        at=_datetime(row["CreatedDate"]),
                        by=row.get("CreatedById"),
                    )
                )
        changes.sort(key=lambda change: change.at)
        yield from changes

    # --- writes: never retried here, the engine's outbox retries ---

    def _sf_fields(self, fields: DealFields) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, value in fields.items():
            if name not in FIELD_TO_SF:
                raise ValueError(f"{name!r} is not a field dealbot syncs")
            if name == "account":
                account_id = self._account_id(str(value)) if value else None
                if account_id is None:
                    log.warning("no Salesforce Account named %r: the account is left as is", value)
                    continue
                out["AccountId"] = account_id
            elif name == "currency":
                if self._is_multi_currency():
                    out["CurrencyIsoCode"] = value
            elif name == "amount":
                out["Amount"] = None if value is None else float(_decimal(value))
            elif name == "close_date":
                out["CloseDate"] = value.isoformat() if isinstance(value, dt.date) else value
            elif name == "forecast_category":
                out["ForecastCategoryName"] = FORECAST_TO_SF.get(str(value), value)
            else:
                out[FIELD_TO_SF[name]] = value
        return out

    def _account_id(self, name: str) -> str | None:
        rows = self._records(f"SELECT Id FROM Account WHERE Name = {_soql_string(name)} LIMIT 1")
        return str(rows[0]["Id"]) if rows else None

    def create_deal(self, fields: DealFields) -> str:
        body = self._sf_fields(fields)
        created = self._call(lambda sf: sf.Opportunity.create(body))
        return str(created["id"])

    def update_deal(self, deal_id: str, fields: DealFields) -> None:
        body = self._sf_fields(fields)
        if body:
            self._call(lambda sf: sf.Opportunity.update(deal_id, body))

    def create_task(self, deal_id: str, task: NewTask) -> str:
        body: dict[str, Any] = {
            "WhatId": deal_id,
            "Subject": task.subject,
            "ActivityDate": task.due.isoformat() if task.due else None,
            "Status": "Completed" if task.done else "Not Started",
        }
        if task.owner:
            body["OwnerId"] = task.owner
        created = self._call(lambda sf: sf.Task.create(body))
        return str(created["id"])

    def complete_task(self, task_id: str) -> None:
        self._call(lambda sf: sf.Task.update(task_id, {"Status": "Completed"}))

    def record_url(self, deal_id: str) -> str:
        return f"{self._instance_url}/lightning/r/Opportunity/{deal_id}/view"

    def usage(self) -> ApiUsage | None:
        return self._usage


# --- translation helpers ---


def _translate(error: SalesforceError, retry_after: float | None) -> CrmError:
    """Return the crm.records error for a simple-salesforce one, with Salesforce's words."""
    status = int(error.status)
    content = error.content
    first: dict[str, Any] = {}
    if isinstance(content, list) and content and isinstance(content[0], dict):
        first = content[0]
    elif isinstance(content, dict):
        first = content
    message = str(first.get("message") or f"Salesforce answered HTTP {status}.")
    code = first.get("errorCode") or first.get("statusCode")
    fields = tuple(FIELD_FROM_SF.get(str(f), str(f)) for f in first.get("fields") or ())
    if status == 429 or code == "REQUEST_LIMIT_EXCEEDED":
        return CrmRateLimited(message, retry_after=retry_after)
    if status == 401:
        return CrmAuthFailed(message, code=code)
    if status >= 500:
        return CrmUnavailable(message, code=code)
    return CrmRefused(message, code=code, fields=fields)


def _chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _soql_string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _soql_list(ids: Iterable[str]) -> str:
    return ", ".join(_soql_string(i) for i in ids)


def _soql_datetime(cursor: str) -> str:
    """Return a cursor as a SOQL datetime literal: unquoted, UTC, second precision."""
    at = _datetime(cursor)
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _datetime(text: str) -> dt.datetime:
    """Parse Salesforce's `2026-12-01T10:00:00.000+0000`, Bulk's `…Z` and ISO cursors."""
    value = text.strip().replace("Z", "+00:00")
    value = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", value)
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.astimezone(dt.UTC)


def _date(value: Any) -> dt.date | None:
    return dt.date.fromisoformat(str(value)) if value else None


def _decimal(value: Any) -> Decimal:
    try:
        return Decimal(str(value))
    except InvalidOperation as error:
        raise CrmUnavailable(f"Salesforce sent a number dealbot cannot read: {value!r}") from error


def _amount(value: Any) -> Decimal | None:
    return None if value in (None, "") else _decimal(value).quantize(Decimal("0.01"))


def _history_value(field: str, value: Any) -> str | None:
    if value is None or value == "":
        return None
    if field == "forecast_category":
        return FORECAST_FROM_SF.get(str(value), str(value))
    if field == "amount":
        return str(_amount(value))
    return str(value)


def _from_csv(row: dict[str, str]) -> dict[str, Any]:
    """Return a Bulk CSV row shaped as a REST record (empty cells are nulls)."""
    record: dict[str, Any] = {}
    for name, value in row.items():
        cell = value if value != "" else None
        if "." in name:
            relation, inner = name.split(".", 1)
            if cell is not None:
                record.setdefault(relation, {})[inner] = cell
            else:
                record.setdefault(relation, None)
        else:
            record[name] = cell
    return record


def _contact(row: dict[str, Any]) -> CrmContact:
    contact = row.get("Contact") or {}
    return CrmContact(
        id=str(row.get("ContactId") or row["Id"]),
        name=str(contact.get("Name") or ""),
        email=contact.get("Email") or None,
        role=ROLES.get(str(row.get("Role") or "")),
    )


def _task(row: dict[str, Any]) -> CrmTask:
    return CrmTask(
        id=str(row["Id"]),
        subject=str(row.get("Subject") or ""),
        due=_date(row.get("ActivityDate")),
        owner=row.get("OwnerId") or None,
        done=bool(row.get("IsClosed")),
    )


def _children(record: dict[str, Any], relation: str) -> list[dict[str, Any]]:
    child = record.get(relation)  # an empty child subquery comes back as null
    return list(child.get("records") or []) if isinstance(child, dict) else []


def _deal(record: dict[str, Any]) -> CrmDeal:
    account = record.get("Account")
    forecast = record.get("ForecastCategoryName")
    return CrmDeal(
        id=str(record["Id"]),
        title=str(record.get("Name") or ""),
        account=account.get("Name") if isinstance(account, dict) else None,
        amount=_amount(record.get("Amount")),
        currency=record.get("CurrencyIsoCode") or None,
        close_date=_date(record.get("CloseDate")),
        stage=str(record.get("StageName") or ""),
        forecast_category=FORECAST_FROM_SF.get(str(forecast)) if forecast else None,
        next_step=record.get("NextStep") or None,
        owner=record.get("OwnerId") or None,
        modified_at=_datetime(str(record["SystemModstamp"])),
        created_at=_datetime(str(record["CreatedDate"])) if record.get("CreatedDate") else None,
        contacts=tuple(_contact(row) for row in _children(record, "OpportunityContactRoles")),
        tasks=tuple(_task(row) for row in _children(record, "Tasks")),
    )
