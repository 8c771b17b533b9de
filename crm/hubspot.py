"""HubSpot through `hubspot-api-client`: deals, stages, owners, contacts and tasks.

The client is generated code over urllib3. Three things shape this module:

- **Requests are scarce.** HubSpot allows a private app about 10 requests a second (100 in
  ten seconds) and its search API about 4-5 a second, so every request waits its turn on a
  token bucket (injected `monotonic`/`sleep`, so tests check the spacing without waiting),
  reads go 100 ids a batch, and the rate headers (`X-HubSpot-RateLimit-*`) slow the bucket
  when the ten-second window is nearly spent.
- **A write is never applied twice by the transport.** urllib3's `Retry` retries 429 (HubSpot
  applied nothing) and, for reads and PATCHes, 5xx (a PATCH carries absolute values, so
  applying it again changes nothing). A POST that creates goes through a second client whose
  `Retry` only retries 429 and refused connections: after a 5xx or a broken answer the
  record may exist, so the error goes up and the engine's outbox decides.
- **Errors have no common base.** Each `hubspot.crm.*` package defines its own
  `ApiException`; they are caught as one tuple and turned into `CrmError`s carrying HubSpot's
  own message (never the token).

Mapping choices:
- Forecast category is the deal property `hs_manual_forecast_category` (HubSpot's "Forecast
  category": OMIT / PIPELINE / BEST_CASE / COMMIT / CLOSED); CLOSED has no dealbot key and
  reads as None (the stage says won or lost).
- Contact roles come from deal→contact association labels: "Decision maker" and "Economic
  buyer" are the economic buyer, "Champion" the champion; any other label, or none, is None.
- A HubSpot deal has no account field (the account is an associated company), so `account`
  reads as None and is not written.
- `record_url` needs the portal (hub) id and the app's domain (`app-eu1.hubspot.com` for a
  portal hosted in the EU): pass `portal_id`, or both are read once from the account-info
  API (`GET /account-info/v3/details`, through the client's `api_request` since the client
  has no generated module for it). The access-token info endpoint would also give the hub
  id, but it takes the token in the URL path, where request logs would keep it.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from decimal import Decimal, InvalidOperation
from typing import Any, Final, TypeVar

import hubspot
import hubspot.crm.associations.v4 as hs_associations
import hubspot.crm.contacts as hs_contacts
import hubspot.crm.deals as hs_deals
import hubspot.crm.objects.tasks as hs_tasks
import hubspot.crm.owners as hs_owners
import hubspot.crm.pipelines as hs_pipelines
import requests
import urllib3
from urllib3.util.retry import Retry

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

FORECAST_PROPERTY: Final = "hs_manual_forecast_category"
MODIFIED: Final = "hs_lastmodifieddate"
DEAL_PROPERTIES: Final = (
    "dealname",
    "amount",
    "closedate",
    "dealstage",
    "pipeline",
    "hubspot_owner_id",
    "hs_next_step",
    "deal_currency_code",
    FORECAST_PROPERTY,
    MODIFIED,
    "createdate",
)
CONTACT_PROPERTIES: Final = ("firstname", "lastname", "email")
TASK_PROPERTIES: Final = ("hs_task_subject", "hs_timestamp", "hubspot_owner_id", "hs_task_status")
# dealbot's field -> the deal property it is written to.
WRITABLE: Final[dict[str, str]] = {
    "title": "dealname",
    "amount": "amount",
    "close_date": "closedate",
    "stage": "dealstage",
    "next_step": "hs_next_step",
    "owner": "hubspot_owner_id",
    "currency": "deal_currency_code",
    "forecast_category": FORECAST_PROPERTY,
}
NOT_IN_HUBSPOT: Final = frozenset({"account"})  # the associated company, not a deal property
HISTORY_FIELDS: Final[dict[str, str]] = {
    "dealname": "title",
    "amount": "amount",
    "closedate": "close_date",
    "dealstage": "stage",
    "hs_next_step": "next_step",
}
FORECAST_TO_HUBSPOT: Final[dict[str, str]] = {
    "pipeline": "PIPELINE",
    "best_case": "BEST_CASE",
    "commit": "COMMIT",
    "omitted": "OMIT",
}
FORECAST_FROM_HUBSPOT: Final = {v: k for k, v in FORECAST_TO_HUBSPOT.items()}
CONTACT_ROLES: Final[dict[str, str]] = {
    "decision maker": "economic_buyer",
    "economic buyer": "economic_buyer",
    "champion": "champion",
}
TASK_TO_DEAL_TYPE_ID: Final = 216  # HUBSPOT_DEFINED task→deal association
DEFAULT_PIPELINE: Final = "default"
SEARCH_PAGE: Final = 200  # the search API's maximum
LIST_PAGE: Final = 100  # the basic list API's maximum
BATCH_READ: Final = 100
ASSOCIATION_BATCH: Final = 1000  # the v4 association batch read's maximum
FIRST_SYNC_BATCH: Final = 1000  # list pages gathered before their associations are read
HISTORY_BATCH: Final = 50  # batch reads with propertiesWithHistory take at most 50 ids
RETRY_STATUSES: Final = (429, 500, 502, 503, 504)
# A 429's `policyName` -> seconds until its window frees a request (DAILY: unknown, None).
POLICY_WINDOWS: Final[dict[str, float]] = {"SECONDLY": 1.0, "TEN_SECONDLY_ROLLING": 10.0}
LOW_WINDOW_SHARE: Final = 0.1  # slow down when 10% or less of the 10-second window is left

# Every generated package's ApiException, once: they share no base class.
_API_EXCEPTIONS: Final = (
    hs_deals.ApiException,
    hs_pipelines.ApiException,
    hs_owners.ApiException,
    hs_associations.ApiException,
    hs_contacts.ApiException,
    hs_tasks.ApiException,
)

T = TypeVar("T")


def transport_retry(*, creates: bool, backoff_factor: float) -> Retry:
    """Return urllib3's retry policy: creates retry only what HubSpot surely did not apply."""
    return Retry(
        total=3,
        connect=3,
        read=0 if creates else 2,
        other=0,
        status=3,
        status_forcelist=(429,) if creates else RETRY_STATUSES,
        allowed_methods=None,  # POST search / batch read and PATCH too
        backoff_factor=backoff_factor,
        raise_on_status=False,  # hand the last answer to the client: it becomes a CrmError
        respect_retry_after_header=True,
    )


class HubSpotConnector:
    """A `CrmConnector` for one HubSpot portal, through a private app's access token."""

    kind: CrmKind = "hubspot"

    def __init__(
        self,
        *,
        access_token: str,
        api_url: str,
        clock: Clock,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
        requests_per_second: float = 4.0,
        portal_id: str | None = None,
        backoff_factor: float = 0.5,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._monotonic = monotonic
        self._spacing = 1.0 / requests_per_second
        self._extra_spacing = 0.0
        self._next_slot: float | None = None
        self._portal_id = portal_id
        self._app_domain = "app.hubspot.com"
        self._host = api_url.rstrip("/")
        self._daily: tuple[int, int] | None = None  # (limit, remaining)
        self._stages: tuple[CrmStage, ...] | None = None
        host = api_url.rstrip("/")
        reads = hubspot.Client.create(
            access_token=access_token,
            host=host,
            retry=transport_retry(creates=False, backoff_factor=backoff_factor),
        )
        creates = hubspot.Client.create(
            access_token=access_token,
            host=host,
            retry=transport_retry(creates=True, backoff_factor=backoff_factor),
        )
        # Each discovery property builds a new ApiClient and connection pool: keep one each.
        self._deals = reads.crm.deals.basic_api
        self._deal_batch = reads.crm.deals.batch_api
        self._deal_search = reads.crm.deals.search_api
        self._deal_create = creates.crm.deals.basic_api
        self._pipelines = reads.crm.pipelines.pipelines_api
        self._owners = reads.crm.owners.owners_api
        self._associations = reads.crm.associations.v4.batch_api
        self._contact_batch = reads.crm.contacts.batch_api
        self._task_batch = reads.crm.objects.tasks.batch_api
        self._tasks = reads.crm.objects.tasks.basic_api
        self._task_create = creates.crm.objects.tasks.basic_api
        self._raw = reads

    def __repr__(self) -> str:
        return f"HubSpotConnector(portal_id={self._portal_id!r})"

    # -- the transport: throttle, rate headers, errors -----------------------------------------

    def _wait_turn(self) -> None:
        now = self._monotonic()
        if self._next_slot is not None and self._next_slot > now:
            self._sleep(self._next_slot - now)
            now = self._next_slot
        self._next_slot = now + max(self._spacing, self._extra_spacing)

    def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call one `*_with_http_info` method in its turn; return the answer's data."""
        self._wait_turn()
        try:
            data, _status, headers = method(*args, **kwargs)
        except _API_EXCEPTIONS as exc:
            self._read_rate_headers(exc.headers)
            raise _crm_error(exc.status, exc.body, exc.headers) from exc
        except urllib3.exceptions.HTTPError as exc:
            raise CrmUnavailable(f"HubSpot cannot be reached ({type(exc).__name__})") from exc
        self._read_rate_headers(headers)
        return data

    def _read_rate_headers(self, headers: Any) -> None:
        if not headers:
            return
        daily = _int_header(headers, "X-HubSpot-RateLimit-Daily")
        daily_left = _int_header(headers, "X-HubSpot-RateLimit-Daily-Remaining")
        if daily is not None and daily_left is not None:
            self._daily = (daily, daily_left)
        window = _int_header(headers, "X-HubSpot-RateLimit-Max")
        left = _int_header(headers, "X-HubSpot-RateLimit-Remaining")
        interval_ms = _int_header(headers, "X-HubSpot-RateLimit-Interval-Milliseconds")
        if left is None or interval_ms is None:
            return
        low = max(1, int((window or 100) * LOW_WINDOW_SHARE))
        # Nearly spent: spread what is left over the window instead of running into a 429.
        self._extra_spacing = interval_ms / 1000 / (left + 1) if left <= low else 0.0

    def usage(self) -> ApiUsage | None:
        if self._daily is None:
            return None
        limit, remaining = self._daily
        return ApiUsage(used=max(limit - remaining, 0), limit=limit)

    # -- reads ---------------------------------------------------------------------------------

    def stages(self) -> tuple[CrmStage, ...]:
        answer = self._call(self._pipelines.get_all_with_http_info, "deals")
        stages: list[CrmStage] = []
        for pipeline in sorted(answer.results, key=lambda p: p.display_order):
            for stage in sorted(pipeline.stages, key=lambda s: s.display_order):
                if stage.archived:
                    continue
                metadata = stage.metadata or {}
                probability = _decimal(metadata.get("probability")) or Decimal(0)
                closed = str(metadata.get("isClosed", "false")).lower() == "true"
                stages.append(
                    CrmStage(
                        id=stage.id,
                        label=stage.label,
                        probability=probability,
                        order=stage.display_order,
                        is_closed=closed,
                        is_won=closed and probability == Decimal(1),
                        forecast_category=None,
                        pipeline=pipeline.id,
                    )
                )
        self._stages = tuple(stages)
        return self._stages

    def owners(self) -> tuple[CrmOwner, ...]:
        owners: list[CrmOwner] = []
        after: str | None = None
        while True:
            page = self._call(self._owners.get_page_with_http_info, limit=500, after=after)
            for owner in page.results:
                name = " ".join(p for p in (owner.first_name, owner.last_name) if p)
                owners.append(CrmOwner(id=owner.id, email=owner.email, name=name or owner.email))
            after = _next_after(page)
            if after is None:
                return tuple(owners)

    def pull(self, cursor: str | None) -> Iterator[PullBatch]:
        """Yield changed deals oldest first; see `_pull_all` and `_pull_since`."""
        if not cursor:
            return self._pull_all()
        return self._pull_since(int(cursor))

    def _pull_all(self) -> Iterator[PullBatch]:
        """List every deal (id order), then hand back a cursor safe for the next pull.

        Id order is not modification order, so no cursor is safe before the end: the
        batches before the last carry "" (start over). The last carries the newest
        modification seen, but never later than this listing's start by our clock, less a
        minute: a deal changed while the listing ran is then read again next time rather
        than missed.
        """
        started_ms = _ms(self._clock.now()) - 60_000
        newest = 0
        after: str | None = None
        gathered: list[Any] = []
        while True:
            page = self._call(
                self._deals.get_page_with_http_info,
                limit=LIST_PAGE,
                after=after,
                properties=list(DEAL_PROPERTIES),
                archived=False,
            )
            gathered.extend(page.results)
            after = _next_after(page)
            if after is not None and len(gathered) < FIRST_SYNC_BATCH:
                continue  # one association read per 1,000 deals, not per 100
            deals = self._complete(gathered)
            gathered = []
            newest = max([newest, *(_ms(d.modified_at) for d in deals)])
            if after is None:
                yield PullBatch(deals=deals, cursor=str(min(newest, started_ms) or started_ms))
                return
            yield PullBatch(deals=deals, cursor="")

    def _pull_since(self, since_ms: int) -> Iterator[PullBatch]:
        """Search deals modified at or after `since_ms`, oldest first, 200 a page.

        Each page starts a new query from the newest modification seen (>=, skipping the ids
        already read at that millisecond) instead of paging with `after`: a query never
        nears the search API's 10,000-result cap, and a deal changed while we page cannot
        shift an unread one past our offset. When a whole page shares one millisecond the
        query cannot move forward by time, so it walks that millisecond by `hs_object_id`.
        """
        start = since_ms
        strict = False
        seen_at_start: set[str] = set()
        while True:
            operator = "GT" if strict else "GTE"
            page = self._search([_filter(MODIFIED, operator, start)], sort=MODIFIED)
            fresh = [d for d in page if d.id not in seen_at_start]
            if not page:
                return
            newest = max(_modified_ms(d) for d in page)
            yield PullBatch(deals=self._complete(fresh), cursor=str(newest))
            if len(page) < SEARCH_PAGE:
                return
            if newest > start:
                start, strict = newest, False
                seen_at_start = {d.id for d in page if _modified_ms(d) == newest}
                continue
            yield from self._walk_millisecond(start, seen_at_start | {d.id for d in page})
            strict, seen_at_start = True, set()

    def _walk_millisecond(self, at_ms: int, seen: set[str]) -> Iterator[PullBatch]:
        after_id = 0
        while True:
            page = self._search(
                [_filter(MODIFIED, "EQ", at_ms), _filter("hs_object_id", "GT", after_id)],
                sort="hs_object_id",
            )
            fresh = [d for d in page if d.id not in seen]
            if fresh:
                yield PullBatch(deals=self._complete(fresh), cursor=str(at_ms))
            if len(page) < SEARCH_PAGE:
                return
            after_id = max(int(d.id) for d in page)

    def _search(self, filters: list[hs_deals.Filter], *, sort: str) -> list[Any]:
        request = hs_deals.PublicObjectSearchRequest(
            filter_groups=[hs_deals.FilterGroup(filters=filters)],
            sorts=[{"propertyName": sort, "direction": "ASCENDING"}],  # type: ignore[list-item]
            properties=list(DEAL_PROPERTIES),
            limit=SEARCH_PAGE,
        )
        return list(self._call(self._deal_search.do_search_with_http_info, request).results)

    def deals(self, ids: Sequence[str]) -> tuple[CrmDeal, ...]:
        found: list[Any] = []
        for chunk in _chunks(list(dict.fromkeys(ids)), BATCH_READ):
            request = hs_deals.BatchReadInputSimplePublicObjectId(
                inputs=[hs_deals.SimplePublicObjectId(id=i) for i in chunk],
                properties=list(DEAL_PROPERTIES),
                properties_with_history=[],
            )
            found.extend(self._call(self._deal_batch.read_with_http_info, request).results)
        return self._complete(found)

    def field_history(self, deal_ids: Sequence[str]) -> Iterator[CrmFieldChange]:
        changes: list[CrmFieldChange] = []
        for chunk in _chunks(list(dict.fromkeys(deal_ids)), HISTORY_BATCH):
            request = hs_deals.BatchReadInputSimplePublicObjectId(
                inputs=[hs_deals.SimplePublicObjectId(id=i) for i in chunk],
                properties=[],
                properties_with_history=list(HISTORY_FIELDS),
            )
            answer = self._call(self._deal_batch.read_with_http_info, request)
            for deal in answer.results:
                for name, entries in (deal.properties_with_history or {}).items():
                    if name in HISTORY_FIELDS:
                        changes.extend(_history_changes(deal.id, HISTORY_FIELDS[name], entries))
        # Oldest first across all the deals asked for, not per batch of 50.
        yield from sorted(changes, key=lambda c: c.at)

    def _complete(self, objects: Sequence[Any]) -> tuple[CrmDeal, ...]:
        """Map deals and attach their contacts and tasks, reading both in batches."""
        if not objects:
            return ()
        ids = [o.id for o in objects]
        contact_links = self._associated(ids, "contacts")
        task_links = self._associated(ids, "tasks")
        contacts = self._read_objects(
            self._contact_batch,
            hs_contacts,
            {c for links in contact_links.values() for c in links},
            CONTACT_PROPERTIES,
        )
        tasks = self._read_objects(
            self._task_batch,
            hs_tasks,
            {t for links in task_links.values() for t in links},
            TASK_PROPERTIES,
        )
        deals = []
        for obj in objects:
            deal_contacts = tuple(
                _contact(contacts[cid], labels)
                for cid, labels in contact_links.get(obj.id, {}).items()
                if cid in contacts
            )
            deal_tasks = tuple(
                _task(tasks[tid]) for tid in task_links.get(obj.id, {}) if tid in tasks
            )
            deals.append(_deal(obj, deal_contacts, deal_tasks))
        return tuple(deals)

    def _associated(self, deal_ids: list[str], to_type: str) -> dict[str, dict[str, list[str]]]:
        """Return {deal id: {associated id: [labels]}} through v4 batch reads."""
        links: dict[str, dict[str, list[str]]] = {}
        for chunk in _chunks(deal_ids, ASSOCIATION_BATCH):
            request = hs_associations.BatchInputPublicFetchAssociationsBatchRequest(
                inputs=[hs_associations.PublicFetchAssociationsBatchRequest(id=i) for i in chunk]
            )
            answer = self._call(
                self._associations.get_page_with_http_info, "deals", to_type, request
            )
            for result in answer.results:
                mine = links.setdefault(str(result._from.id), {})
                for to in result.to:
                    labels = [t.label for t in to.association_types or [] if t.label]
                    mine.setdefault(str(to.to_object_id), []).extend(labels)
        return links

    def _read_objects(
        self, batch_api: Any, package: Any, ids: Iterable[str], properties: Sequence[str]
    ) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for chunk in _chunks(sorted(ids, key=int), BATCH_READ):
            request = package.BatchReadInputSimplePublicObjectId(
                inputs=[package.SimplePublicObjectId(id=i) for i in chunk],
                properties=list(properties),
                properties_with_history=[],
            )
            for obj in self._call(batch_api.read_with_http_info, request).results:
                found[obj.id] = obj
        return found

    # -- writes --------------------------------------------------------------------------------

    def update_deal(self, deal_id: str, fields: DealFields) -> None:
        properties = _deal_properties(fields)
        if not properties:
            return
        self._call(
            self._deals.update_with_http_info,
            deal_id,
            hs_deals.SimplePublicObjectInput(properties=properties),
        )

    def create_deal(self, fields: DealFields) -> str:
        properties = _deal_properties(fields)
        stages = self._stages if self._stages is not None else self.stages()
        stage = next((s for s in stages if s.id == properties.get("dealstage")), None)
        if stage is None:
            stage = next(s for s in stages if s.pipeline == DEFAULT_PIPELINE or not s.pipeline)
            properties["dealstage"] = stage.id
        properties["pipeline"] = stage.pipeline or DEFAULT_PIPELINE
        answer = self._call(
            self._deal_create.create_with_http_info,
            hs_deals.SimplePublicObjectInputForCreate(properties=properties, associations=[]),
        )
        return str(answer.id)

    def create_task(self, deal_id: str, task: NewTask) -> str:
        properties = {  # HubSpot requires hs_timestamp: an undated step is due today
            "hs_task_subject": task.subject,
            "hs_timestamp": _midnight_utc(task.due or self._clock.now().date()),
            "hs_task_status": "COMPLETED" if task.done else "NOT_STARTED",
        }
        if task.owner:
            properties["hubspot_owner_id"] = task.owner
        body = hs_tasks.SimplePublicObjectInputForCreate(
            properties=properties,
            associations=[
                hs_tasks.PublicAssociationsForObject(
                    to=hs_tasks.PublicObjectId(id=deal_id),
                    types=[
                        hs_tasks.AssociationSpec(
                            association_category="HUBSPOT_DEFINED",
                            association_type_id=TASK_TO_DEAL_TYPE_ID,
                        )
                    ],
                )
            ],
        )
        answer = self._call(self._task_create.create_with_http_info, body)
        return str(answer.id)

    def complete_task(self, task_id: str) -> None:
        self._call(
            self._tasks.update_with_http_info,
            task_id,
            hs_tasks.SimplePublicObjectInput(properties={"hs_task_status": "COMPLETED"}),
        )

    def record_url(self, deal_id: str) -> str:
        if self._portal_id is None:
            self._read_account()
        return f"https://{self._app_domain}/contacts/{self._portal_id}/deal/{deal_id}"

    def _read_account(self) -> None:
        self._wait_turn()
        try:
            answer = self._raw.api_request(
                {"method": "GET", "path": "/account-info/v3/details", "base_url": self._host}
            )
        except requests.RequestException as exc:
            raise CrmUnavailable(f"HubSpot cannot be reached ({type(exc).__name__})") from exc
        self._read_rate_headers(answer.headers)
        if answer.status_code >= 400:
            raise _crm_error(answer.status_code, answer.text, answer.headers)
        details = answer.json()
        self._portal_id = str(details["portalId"])
        self._app_domain = details.get("uiDomain") or self._app_domain


# -- mapping -----------------------------------------------------------------------------------


def _deal_properties(fields: DealFields) -> dict[str, str]:
    """Return HubSpot's properties for dealbot's fields (only those given)."""
    properties: dict[str, str] = {}
    for name, value in fields.items():
        if name in NOT_IN_HUBSPOT:
            continue
        if name not in WRITABLE:
            raise ValueError(f"not a synced deal field: {name}")
        properties[WRITABLE[name]] = _property_value(name, value)
    return properties


def _property_value(name: str, value: object) -> str:
    if value is None:
        return ""  # HubSpot clears a property set to the empty string
    if name == "amount":
        return format(Decimal(str(value)), "f")
    if name == "close_date":
        if not isinstance(value, dt.date):
            raise ValueError(f"close_date must be a date, not {value!r}")
        return _midnight_utc(value)
    if name == "forecast_category":
        return FORECAST_TO_HUBSPOT[str(value)]
    return str(value)


def _deal(obj: Any, contacts: tuple[CrmContact, ...], tasks: tuple[CrmTask, ...]) -> CrmDeal:
    props: dict[str, str | None] = obj.properties or {}
    modified = _datetime(props.get(MODIFIED)) or _aware(obj.updated_at)
    return CrmDeal(
        id=str(obj.id),
        title=props.get("dealname") or "",
        account=None,
        amount=_decimal(props.get("amount")),
        currency=props.get("deal_currency_code") or None,
        close_date=_date(props.get("closedate")),
        stage=props.get("dealstage") or "",
        forecast_category=FORECAST_FROM_HUBSPOT.get(props.get(FORECAST_PROPERTY) or ""),
        next_step=props.get("hs_next_step") or None,
        owner=props.get("hubspot_owner_id") or None,
        modified_at=modified,
        created_at=_datetime(props.get("createdate")) or _aware(obj.created_at),
        contacts=contacts,
        tasks=tasks,
    )


def _contact(obj: Any, labels: list[str]) -> CrmContact:
    props = obj.properties or {}
    name = " ".join(p for p in (props.get("firstname"), props.get("lastname")) if p)
    role = next((CONTACT_ROLES[x.lower()] for x in labels if x.lower() in CONTACT_ROLES), None)
    return CrmContact(
        id=str(obj.id),
        name=name or props.get("email") or "",
        email=props.get("email") or None,
        role=role,
    )


def _task(obj: Any) -> CrmTask:
    props = obj.properties or {}
    due = _datetime(props.get("hs_timestamp"))
    return CrmTask(
        id=str(obj.id),
        subject=props.get("hs_task_subject") or "",
        due=due.date() if due else None,
        owner=props.get("hubspot_owner_id") or None,
        done=props.get("hs_task_status") == "COMPLETED",
    )


def _history_changes(deal_id: str, field: str, entries: Sequence[Any]) -> list[CrmFieldChange]:
    """Turn one property's history (newest first, as HubSpot gives it) into changes."""
    changes = []
    previous: str | None = None
    for entry in sorted(entries, key=lambda e: e.timestamp):
        value = _history_value(field, entry.value)
        if value == previous:
            continue
        by = entry.updated_by_user_id if entry.updated_by_user_id is not None else entry.source_id
        changes.append(
            CrmFieldChange(
                deal_id=str(deal_id),
                field=field,
                old=previous,
                new=value,
                at=_aware(entry.timestamp),
                by=None if by is None else str(by),
            )
        )
        previous = value
    return changes


def _history_value(field: str, raw: str | None) -> str | None:
    if not raw:
        return None
    if field == "close_date":
        day = _date(raw)
        return day.isoformat() if day else raw
    if field == "amount":
        amount = _decimal(raw)
        return str(amount) if amount is not None else raw
    return raw


def _crm_error(status: int | None, body: Any, headers: Any) -> CrmError:
    """Map an error answer to a `CrmError` with HubSpot's own words."""
    message, category, errors = _error_parts(body)
    if status == 401 or status == 403:
        return CrmAuthFailed(message or "HubSpot refused the access token", code=category)
    if status == 429:
        retry_after = _int_header(headers, "Retry-After") if headers else None
        return CrmRateLimited(
            message or "HubSpot's rate limit was reached",
            retry_after=float(retry_after) if retry_after is not None else _policy_wait(body),
        )
    if status is None or status == 0 or status >= 500:
        return CrmUnavailable(message or f"HubSpot answered {status}", code=category)
    codes = [str(e.get("code")) for e in errors if e.get("code")]
    fields: list[str] = []
    for error in errors:
        context = error.get("context") or {}
        fields.extend(str(n) for n in context.get("propertyName") or [])
    details = [str(e["message"]) for e in errors if e.get("message")]
    return CrmRefused(
        "; ".join(details) if details else message or f"HubSpot answered {status}",
        code=codes[0] if codes else category,
        fields=tuple(dict.fromkeys(_dealbot_field(f) for f in fields)),
    )


def _error_parts(body: Any) -> tuple[str | None, str | None, list[dict[str, Any]]]:
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    try:
        parsed = json.loads(body) if body else {}
    except (TypeError, ValueError):
        return None, None, []
    if not isinstance(parsed, dict):
        return None, None, []
    errors = [e for e in parsed.get("errors") or [] if isinstance(e, dict)]
    return parsed.get("message"), parsed.get("category") or parsed.get("errorType"), errors


def _policy_wait(body: Any) -> float | None:
    """Return how long the window HubSpot names lasts (its 429 carries no Retry-After)."""
    try:
        policy = json.loads(body).get("policyName") if body else None
    except (TypeError, ValueError, AttributeError):
        return None
    return POLICY_WINDOWS.get(str(policy))


def _dealbot_field(hubspot_property: str) -> str:
    for field, name in WRITABLE.items():
        if name == hubspot_property:
            return field
    return hubspot_property


# -- small parsers -----------------------------------------------------------------------------


def _filter(name: str, operator: str, value: int) -> hs_deals.Filter:
    return hs_deals.Filter(property_name=name, operator=operator, value=str(value))


def _next_after(page: Any) -> str | None:
    paging = page.paging
    if paging is None or paging.next is None:
        return None
    return str(paging.next.after)


def _chunks(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _int_header(headers: Any, name: str) -> int | None:
    value = headers.get(name) if hasattr(headers, "get") else None
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _modified_ms(obj: Any) -> int:
    """Return a raw deal's `hs_lastmodifieddate` in epoch milliseconds."""
    modified = _datetime((obj.properties or {}).get(MODIFIED)) or _aware(obj.updated_at)
    return _ms(modified)


def _ms(at: dt.datetime) -> int:
    return int(at.timestamp() * 1000)


def _aware(at: dt.datetime | None) -> dt.datetime:
    if at is None:
        return dt.datetime.fromtimestamp(0, dt.UTC)
    return at if at.tzinfo else at.replace(tzinfo=dt.UTC)


def _datetime(raw: str | None) -> dt.datetime | None:
    """Parse a HubSpot datetime value: ISO 8601 (`…Z`) or epoch milliseconds."""
    if not raw:
        return None
    if raw.isdigit():
        return dt.datetime.fromtimestamp(int(raw) / 1000, dt.UTC)
    try:
        parsed = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def _date(raw: str | None) -> dt.date | None:
    """Return the UTC date of a datetime value: HubSpot stores a close date at midnight UTC."""
    parsed = _datetime(raw)
    return parsed.astimezone(dt.UTC).date() if parsed else None


def _decimal(raw: object) -> Decimal | None:
    if raw is None or raw == "":
        return None
    try:
        return Decimal(str(raw))
    except InvalidOperation:
        return None


def _midnight_utc(day: dt.date) -> str:
    return f"{day.isoformat()}T00:00:00Z"
