"""A local fake of Slack's Web API: one for the tests and the offline demo.

Modelled on bolt-python's mock Web API server: a real HTTP server on 127.0.0.1, so the code
talking to it uses an unmodified ``slack_sdk.WebClient`` (retries, headers, encodings and all).
Given the folder of Slack's published OpenAPI spec (the tests do), every call is checked
against it and a few Block Kit limits, so a test that passes here does not fail only in
production with ``invalid_arguments``. Without it (the demo: the spec is not installed with
dealbot) every call is answered as Slack would answer a valid one. An observer, when given,
sees each answered call; the demo draws them in the terminal.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import email.parser
import email.policy
import functools
import itertools
import json
import math
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Literal, Self
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

from domain.clock import Clock, SystemClock

WEB_API_SPEC_FILE = "web_api_openapi_v2.json"

BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
TEAM_ID = "T1"
APP_ID = "A0DEALBOT"

# The spec is Slack's 2019-era OpenAPI file; slack_sdk's files_upload_v2 and Socket Mode call
# methods published after it. Their required arguments are copied from api.slack.com by hand.
METHODS_MISSING_FROM_SPEC: dict[str, frozenset[str]] = {
    "files.getUploadURLExternal": frozenset({"filename", "length"}),
    "files.completeUploadExternal": frozenset({"files"}),
    "apps.connections.open": frozenset(),
}

# Form-encoded calls carry nested structures as JSON strings; tests want to inspect the structure.
JSON_STRING_FIELDS = frozenset(
    {"blocks", "attachments", "view", "metadata", "files", "unfurls", "user_auth_blocks"}
)

MESSAGE_METHODS = frozenset(
    {"chat.postMessage", "chat.postEphemeral", "chat.update", "chat.scheduleMessage"}
)
VIEW_METHODS = frozenset({"views.open", "views.update", "views.push", "views.publish"})

# Limits from Slack's Block Kit reference (api.slack.com/reference/block-kit).
MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_SECTION_TEXT = 3000
MAX_SECTION_FIELDS = 10
MAX_SECTION_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_ACTION_ID = 255
MAX_BLOCK_ID = 255
MAX_ACTIONS_ELEMENTS = 25
MAX_MODAL_TITLE = 24
MAX_MODAL_BUTTON_TEXT = 24

KNOWN_BLOCK_TYPES = frozenset(
    {
        "actions",
        "context",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "markdown",
        "rich_text",
        "section",
        "table",
        "video",
    }
)


@functools.cache
def _load_spec_paths(spec_file: Path) -> dict[str, dict[str, Any]]:
    with spec_file.open(encoding="utf-8") as handle:
        spec: dict[str, Any] = json.load(handle)
    return spec["paths"]


def web_api_spec_paths(spec_dir: Path) -> dict[str, dict[str, Any]]:
    """Return the ``paths`` of Slack's OpenAPI spec in ``spec_dir``, loaded once per file."""
    spec_file = spec_dir / WEB_API_SPEC_FILE
    if not spec_file.is_file():
        raise FileNotFoundError(f"Slack Web API spec not found at {spec_file}")
    return _load_spec_paths(spec_file)


def required_arguments(method: str, spec_dir: Path) -> frozenset[str] | None:
    """Return the arguments Slack requires for ``method``, or None if Slack has no such method."""
    if method in METHODS_MISSING_FROM_SPEC:
        return METHODS_MISSING_FROM_SPEC[method] | {"token"}
    operations = web_api_spec_paths(spec_dir).get(f"/{method}")
    if operations is None:
        return None
    return frozenset(
        parameter["name"]
        for operation in operations.values()
        for parameter in operation.get("parameters", [])
        if parameter.get("required") is True
    )


def missing_argument_problems(
    method: str, args: dict[str, Any], *, authorized: bool, spec_dir: Path
) -> list[str]:
    """Return one problem per required argument absent from a call."""
    required = required_arguments(method, spec_dir) or frozenset()
    present = {name for name, value in args.items() if value not in (None, "")}
    if authorized:
        present.add("token")
    return [f"{method}: missing required argument {name!r}" for name in sorted(required - present)]


# --- Block Kit checks: each returns human-readable problems, empty when fine. ---


def _text_of(text_object: Any) -> str:
    if isinstance(text_object, dict):
        return str(text_object.get("text", ""))
    return ""


def _length_problem(where: str, value: str, limit: int) -> list[str]:
    if len(value) > limit:
        return [f"{where}: {len(value)} chars, Slack allows {limit}"]
    return []


def element_problems(element: Any, where: str) -> list[str]:
    """Check an interactive element (button, select, ...) against Slack's limits."""
    if not isinstance(element, dict):
        return [f"{where}: element must be an object"]
    problems = _length_problem(
        f"{where}.action_id", str(element.get("action_id", "")), MAX_ACTION_ID
    )
    if element.get("type") == "button":
        text = element.get("text")
        if not isinstance(text, dict) or text.get("type") != "plain_text":
            problems.append(f"{where}.text: a button needs plain_text text")
        problems += _length_problem(f"{where}.text", _text_of(text), MAX_BUTTON_TEXT)
    return problems


def section_problems(block: dict[str, Any], where: str) -> list[str]:
    """Check a section block: text or fields, their lengths, and its accessory."""
    text, fields = block.get("text"), block.get("fields")
    if text is None and not fields:
        return [f"{where}: a section needs text or fields"]
    problems = _length_problem(f"{where}.text", _text_of(text), MAX_SECTION_TEXT)
    if fields is not None:
        if not isinstance(fields, list) or len(fields) > MAX_SECTION_FIELDS:
            problems.append(f"{where}.fields: a list of at most {MAX_SECTION_FIELDS} is allowed")
        else:
            for i, item in enumerate(fields):
                problems += _length_problem(
                    f"{where}.fields[{i}]", _text_of(item), MAX_SECTION_FIELD_TEXT
                )
    if "accessory" in block:
        problems += element_problems(block["accessory"], f"{where}.accessory")
    return problems


def header_problems(block: dict[str, Any], where: str) -> list[str]:
    """Check a header block: plain_text only, short."""
    text = block.get("text")
    if not isinstance(text, dict) or text.get("type") != "plain_text":
        return [f"{where}.text: a header needs plain_text text"]
    return _length_problem(f"{where}.text", _text_of(text), MAX_HEADER_TEXT)


def actions_problems(block: dict[str, Any], where: str) -> list[str]:
    """Check an actions block: a non-empty, bounded list of valid elements."""
    elements = block.get("elements")
    if not isinstance(elements, list) or not elements:
        return [f"{where}.elements: an actions block needs at least one element"]
    problems = []
    if len(elements) > MAX_ACTIONS_ELEMENTS:
        problems.append(f"{where}.elements: {len(elements)}, Slack allows {MAX_ACTIONS_ELEMENTS}")
    for i, element in enumerate(elements):
        problems += element_problems(element, f"{where}.elements[{i}]")
    return problems


def input_problems(block: dict[str, Any], where: str) -> list[str]:
    """Check an input block: it needs a label and one element."""
    problems = []
    if not isinstance(block.get("label"), dict):
        problems.append(f"{where}.label: an input block needs a label")
    if "element" not in block:
        problems.append(f"{where}.element: an input block needs an element")
    else:
        problems += element_problems(block["element"], f"{where}.element")
    return problems


BLOCK_CHECKS: dict[str, Callable[[dict[str, Any], str], list[str]]] = {
    "section": section_problems,
    "header": header_problems,
    "actions": actions_problems,
    "input": input_problems,
}


def block_problems(block: Any, where: str) -> list[str]:
    """Check one block: a known type, then that type's own limits."""
    if not isinstance(block, dict):
        return [f"{where}: a block must be an object"]
    block_type = block.get("type")
    if block_type not in KNOWN_BLOCK_TYPES:
        return [f"{where}: unknown block type {block_type!r}"]
    problems = _length_problem(f"{where}.block_id", str(block.get("block_id", "")), MAX_BLOCK_ID)
    check = BLOCK_CHECKS.get(block_type)
    if check is not None:
        problems += check(block, where)
    return problems


def block_list_problems(blocks: Any, *, max_blocks: int, where: str) -> list[str]:
    """Check a list of blocks: its size, unique block_ids, and each block."""
    if isinstance(blocks, str):
        return [f"{where}.blocks: not valid JSON"]
    if not isinstance(blocks, list):
        return [f"{where}.blocks: must be a JSON array"]
    problems = []
    if len(blocks) > max_blocks:
        problems.append(f"{where}.blocks: {len(blocks)} blocks, Slack allows {max_blocks}")
    block_ids = [b.get("block_id") for b in blocks if isinstance(b, dict) and b.get("block_id")]
    duplicates = sorted({b for b in block_ids if block_ids.count(b) > 1})
    if duplicates:
        problems.append(f"{where}.blocks: duplicate block_id {duplicates}")
    for i, block in enumerate(blocks):
        problems += block_problems(block, f"{where}.blocks[{i}]")
    return problems


def message_problems(message: dict[str, Any], where: str) -> list[str]:
    """Check a message payload's blocks and that it carries a text fallback for notifications."""
    if "blocks" not in message:
        return []
    problems = block_list_problems(message["blocks"], max_blocks=MAX_MESSAGE_BLOCKS, where=where)
    if message["blocks"] and not str(message.get("text") or "").strip():
        problems.append(f"{where}: blocks without a top-level text fallback")
    return problems


def view_problems(view: Any, where: str) -> list[str]:
    """Check a modal or Home tab view: its type, title, buttons and blocks."""
    if isinstance(view, str):
        return [f"{where}.view: not valid JSON"]
    if not isinstance(view, dict):
        return [f"{where}.view: must be an object"]
    view_type = view.get("type")
    if view_type not in ("modal", "home"):
        return [f"{where}.view.type: must be 'modal' or 'home', got {view_type!r}"]
    blocks = view.get("blocks", [])
    problems = block_list_problems(blocks, max_blocks=MAX_VIEW_BLOCKS, where=f"{where}.view")
    if view_type == "modal":
        problems += modal_problems(view, blocks, where=f"{where}.view")
    return problems


def modal_problems(view: dict[str, Any], blocks: Any, *, where: str) -> list[str]:
    """Check what only a modal needs: a short title and a submit button when it takes input."""
    title = view.get("title")
    if not isinstance(title, dict) or title.get("type") != "plain_text":
        return [f"{where}.title: a modal needs a plain_text title"]
    problems = _length_problem(f"{where}.title", _text_of(title), MAX_MODAL_TITLE)
    for button in ("submit", "close"):
        if button in view:
            problems += _length_problem(
                f"{where}.{button}", _text_of(view[button]), MAX_MODAL_BUTTON_TEXT
            )
    has_input = isinstance(blocks, list) and any(
        isinstance(b, dict) and b.get("type") == "input" for b in blocks
    )
    if has_input and "submit" not in view:
        problems.append(f"{where}: a modal with input blocks needs a submit button")
    return problems


def call_payload_problems(method: str, args: dict[str, Any]) -> list[str]:
    """Return the Block Kit problems of a Web API call's message or view."""
    if method in MESSAGE_METHODS:
        return message_problems(args, method)
    if method in VIEW_METHODS and "view" in args:
        return view_problems(args["view"], method)
    return []


# --- Slack's posting limits, enforced only when asked (tests stay fast without them). ---


@dataclass(frozen=True)
class PostingLimits:
    """Slack's limits on ``chat.postMessage``, for a fake started with ``posting_limits=``.

    Slack's reference for chat.postMessage (docs.slack.dev/reference/methods/chat.postMessage,
    "Rate limiting") says it "will generally allow an app to post 1 message per second to a
    specific channel", that "there are limits governing your app's relationship with the
    entire workspace above that, limiting posting to several hundred messages per minute",
    and that "generous burst behavior is also granted"; going over answers HTTP 429 with a
    Retry-After header (docs.slack.dev/apis/web-api/rate-limits). Slack gives no exact
    workspace figure, so 300 a minute (the low end of "several hundred") is the default.
    Both limits are token buckets: the burst is the bucket's size.

    ``speedup`` runs Slack's clock that many times faster than the real one (rates times
    ``speedup``, waits divided by it), so a benchmark of thousands of messages takes minutes.
    Retry-After stays in Slack's seconds, as Slack would say it: a client of a sped-up fake
    must divide it by the same factor. ``latency`` (Slack seconds) is how long each post
    takes to answer, as a real round trip does.
    """

    per_channel_per_second: float = 1.0
    channel_burst: int = 3
    workspace_per_minute: float = 300.0
    workspace_burst: int = 20
    latency: float = 0.0
    speedup: float = 1.0


@dataclass(frozen=True)
class PostingReport:
    """What the fake saw of ``chat.postMessage`` under its limits.

    ``early_retries`` counts posts to a channel told by a 429 to wait that came before the
    wait was over (Slack warns that ignoring Retry-After can get an app disabled);
    ``overlapping`` counts posts that arrived while another post to the same channel was
    still unanswered; ``most_in_flight`` is the most posts answered at once, any channels.
    """

    accepted: int
    rate_limited: int
    early_retries: int
    overlapping: int
    most_in_flight: int


class _TokenBucket:
    """A bucket of `burst` tokens refilled at `rate` per Slack second; not thread-safe."""

    def __init__(self, *, rate: float, burst: int, now: float) -> None:
        self.rate, self.burst = rate, float(burst)
        self.tokens, self.at = float(burst), now

    def wait(self, now: float) -> float:
        """Return the Slack seconds until a token is free (0 when one is free now)."""
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate


class _PostingLimiter:
    """Enforces `PostingLimits` on chat.postMessage and watches how a client behaves."""

    def __init__(self, limits: PostingLimits) -> None:
        self.limits = limits
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._workspace = _TokenBucket(
            rate=limits.workspace_per_minute / 60, burst=limits.workspace_burst, now=0.0
        )
        self._channels: dict[str, _TokenBucket] = {}
        self._not_before: dict[str, float] = {}
        self._in_flight: Counter[str] = Counter()
        self._accepted = self._rate_limited = self._early = self._overlapping = 0
        self._most_in_flight = 0

    def _slack_now(self) -> float:
        return (time.monotonic() - self._started) * self.limits.speedup

    def admit(self, channel: str) -> int | None:
        """Return None and count the post in flight, or the Retry-After (s) of a 429."""
        with self._lock:
            now = self._slack_now()
            if now < self._not_before.get(channel, 0.0):
                self._early += 1
            bucket = self._channels.get(channel)
            if bucket is None:
                bucket = self._channels[channel] = _TokenBucket(
                    rate=self.limits.per_channel_per_second,
                    burst=self.limits.channel_burst,
                    now=now,
                )
            wait = max(bucket.wait(now), self._workspace.wait(now))
            if wait > 0:
                self._rate_limited += 1
                retry_after = max(1, math.ceil(wait))
                self._not_before[channel] = now + retry_after
                return retry_after
            bucket.tokens -= 1
            self._workspace.tokens -= 1
            self._accepted += 1
            if self._in_flight[channel]:
                self._overlapping += 1
            self._in_flight[channel] += 1
            self._most_in_flight = max(self._most_in_flight, self._in_flight.total())
            return None

    def done(self, channel: str) -> None:
        with self._lock:
            self._in_flight[channel] -= 1

    def report(self) -> PostingReport:
        with self._lock:
            return PostingReport(
                accepted=self._accepted,
                rate_limited=self._rate_limited,
                early_retries=self._early,
                overlapping=self._overlapping,
                most_in_flight=self._most_in_flight,
            )


# --- What the fake records. ---


@dataclass(frozen=True)
class RecordedCall:
    """One request to ``/api/<method>``, including attempts the fake failed on purpose."""

    method: str
    args: dict[str, Any]
    headers: dict[str, str]
    failed: bool = False
    fault: str | None = None
    response: dict[str, Any] | None = None


@dataclass(frozen=True)
class RecordedResponse:
    """One JSON body posted to a ``response_url``."""

    name: str
    body: dict[str, Any]
    headers: dict[str, str]


@dataclass(frozen=True)
class UploadedFile:
    """Bytes posted to an upload URL handed out by ``files.getUploadURLExternal``."""

    file_id: str
    filename: str
    content: bytes


@dataclass(frozen=True)
class SlackUser:
    """A workspace member as ``users.info`` describes them."""

    user_id: str
    name: str
    real_name: str
    is_admin: bool = False
    is_owner: bool = False
    tz: str = "America/New_York"
    email: str | None = None

    def to_api(self, *, now: dt.datetime) -> dict[str, Any]:
        """Return the user as ``users.info`` answers, its UTC offset as of ``now``."""
        offset = now.astimezone(ZoneInfo(self.tz)).utcoffset()
        profile: dict[str, Any] = {"real_name": self.real_name, "display_name": self.name}
        if self.email is not None:
            profile["email"] = self.email
        return {
            "id": self.user_id,
            "team_id": TEAM_ID,
            "name": self.name,
            "real_name": self.real_name,
            "deleted": False,
            "is_bot": False,
            "is_admin": self.is_admin,
            "is_owner": self.is_owner,
            "is_primary_owner": False,
            "tz": self.tz,
            "tz_label": self.tz,
            "tz_offset": int(offset.total_seconds()) if offset is not None else 0,
            "profile": profile,
        }


@dataclass
class _Fault:
    kind: Literal["status", "drop", "slow"]
    status: int = 0
    retry_after: int = 0
    seconds: float = 0.0


@dataclass
class _State:
    lock: threading.Lock = field(default_factory=threading.Lock)
    calls: list[RecordedCall] = field(default_factory=list)
    responses: list[RecordedResponse] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    uploads: dict[str, UploadedFile] = field(default_factory=dict)
    pending_uploads: dict[str, str] = field(default_factory=dict)
    # Key None holds faults for any method; a method's own queue is served first.
    faults: dict[str | None, deque[_Fault]] = field(default_factory=dict)
    users: dict[str, SlackUser] = field(default_factory=dict)
    canned: dict[str, dict[str, Any]] = field(default_factory=dict)
    counter: itertools.count[int] = field(default_factory=lambda: itertools.count(1))


def _decode_json_strings(args: dict[str, Any]) -> dict[str, Any]:
    decoded = dict(args)
    for name in JSON_STRING_FIELDS & decoded.keys():
        value = decoded[name]
        if isinstance(value, str):
            # Left as a string when it is not JSON, so the Block Kit checks can report it.
            with contextlib.suppress(json.JSONDecodeError):
                decoded[name] = json.loads(value)
    return decoded


def _parse_multipart(content_type: str, body: bytes) -> dict[str, Any]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    args: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True) or b""
        is_file = part.get_filename() is not None
        args[str(name)] = payload if is_file else payload.decode("utf-8")
    return args


def parse_call_args(content_type: str, query: str, body: bytes) -> dict[str, Any]:
    """Return a call's arguments from its query string and body, as slack_sdk encodes them."""
    args: dict[str, Any] = dict(parse_qsl(query, keep_blank_values=True))
    media_type = content_type.split(";")[0].strip().lower()
    if media_type == "application/json" and body:
        parsed = json.loads(body)
        if isinstance(parsed, dict):
            args.update(parsed)
    elif media_type == "multipart/form-data":
        args.update(_parse_multipart(content_type, body))
    elif body:
        args.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    return _decode_json_strings(args)


class _Handler(BaseHTTPRequestHandler):
    server: _FakeServer

    def log_message(self, format: str, *args: Any) -> None:
        # Test output stays readable; the fake's record is the log.
        pass

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _dispatch(self) -> None:
        fake = self.server.fake
        url = urlsplit(self.path)
        body = self._read_body()
        headers = dict(self.headers.items())
        if url.path.startswith("/api/"):
            method = url.path.removeprefix("/api/")
            args = parse_call_args(self.headers.get("Content-Type", ""), url.query, body)
            fault = fake._take_fault(method)
            if fault is not None and fault.kind == "slow":
                time.sleep(fault.seconds)
                answer = fake._answer_call(method, args, headers)
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self._send_json(HTTPStatus.OK, answer)  # the caller may have given up
                return
            if fault is not None:
                fake._record_fault(method, args, headers, fault)
                self._send_fault(fault)
                return
            limiter = fake._limiter if method == "chat.postMessage" else None
            if limiter is not None:
                self._post_within_limits(limiter, args, headers)
                return
            self._send_json(HTTPStatus.OK, fake._answer_call(method, args, headers))
        elif url.path.startswith("/response/"):
            name = url.path.removeprefix("/response/")
            status, answer = fake._answer_response_url(name, body, headers)
            self._send_json(status, answer)
        elif url.path.startswith("/upload/"):
            file_id = url.path.removeprefix("/upload/")
            if fake._accept_upload(file_id, body):
                self._send_text(HTTPStatus.OK, f"OK - {len(body)}")
            else:
                self._send_text(HTTPStatus.NOT_FOUND, "unknown upload url")
        else:
            self._send_text(HTTPStatus.NOT_FOUND, "not found")

    def _post_within_limits(
        self, limiter: _PostingLimiter, args: dict[str, Any], headers: dict[str, str]
    ) -> None:
        fake = self.server.fake
        channel = str(args.get("channel") or "")
        retry_after = limiter.admit(channel)
        if retry_after is not None:
            fault = _Fault("status", HTTPStatus.TOO_MANY_REQUESTS, retry_after)
            fake._record_fault("chat.postMessage", args, headers, fault)
            self._send_fault(fault)
            return
        try:
            if limiter.limits.latency:
                time.sleep(limiter.limits.latency / limiter.limits.speedup)
            answer = fake._answer_call("chat.postMessage", args, headers)
        finally:
            # Counted out before the answer leaves: the client's next post may follow at once.
            limiter.done(channel)
        self._send_json(HTTPStatus.OK, answer)

    def _send_fault(self, fault: _Fault) -> None:
        if fault.kind == "drop":
            # Closing without a status line is what urllib reports as RemoteDisconnected.
            self.close_connection = True
            return
        extra = {}
        if fault.status == HTTPStatus.TOO_MANY_REQUESTS:
            extra["Retry-After"] = str(fault.retry_after)
            answer = {"ok": False, "error": "ratelimited"}
        else:
            answer = {"ok": False, "error": "fatal_error"}
        self._send_json(fault.status, answer, extra)

    def _send_json(
        self, status: int, answer: dict[str, Any], extra: dict[str, str] | None = None
    ) -> None:
        payload = json.dumps(answer).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (extra or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _send_text(self, status: int, text: str) -> None:
        payload = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _FakeServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, fake: FakeSlackWebAPI) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake


CallObserver = Callable[[RecordedCall], None]


class FakeSlackWebAPI:
    """A threaded fake of Slack's Web API and response_url endpoints on 127.0.0.1.

    ``spec_dir`` (the folder of Slack's OpenAPI spec) switches on checking every call as Slack
    would; ``observer`` is called with each answered call before its answer is sent, so what
    it prints comes before whatever the caller does next. ``posting_limits`` switches on
    Slack's rate limits for ``chat.postMessage`` (429 with Retry-After), off by default.
    """

    def __init__(
        self,
        *,
        spec_dir: Path | None = None,
        observer: CallObserver | None = None,
        clock: Clock | None = None,
        posting_limits: PostingLimits | None = None,
    ) -> None:
        self._state = _State()
        # Off unless asked: most tests post a few messages and must not wait a second each.
        self._limiter = _PostingLimiter(posting_limits) if posting_limits else None
        self._server: _FakeServer | None = None
        self._thread: threading.Thread | None = None
        self._spec_dir = spec_dir
        self._observer = observer
        self._clock = clock or SystemClock()
        if spec_dir is not None:
            # Fail fast on a missing spec, before any test talks to the server.
            web_api_spec_paths(spec_dir)

    # --- lifecycle ---

    def start(self) -> Self:
        """Start serving on an ephemeral port; returns self for chaining."""
        if self._server is not None:
            return self
        self._server = _FakeServer(self)
        # A short poll keeps stop() (one per test) from costing the default half second.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="fake-slack-web-api",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and free the port."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server, self._thread = None, None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def origin(self) -> str:
        """Return ``http://127.0.0.1:PORT`` of the running server."""
        if self._server is None:
            raise RuntimeError("FakeSlackWebAPI is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def base_url(self) -> str:
        """Return the URL to give ``WebClient(base_url=...)``."""
        return f"{self.origin}/api/"

    def response_url_for(self, name: str) -> str:
        """Return a response_url to put in a slash command or interaction payload."""
        return f"{self.origin}/response/{name}"

    # --- what happened ---

    @property
    def calls(self) -> list[RecordedCall]:
        """Return a snapshot of every Web API request, failed attempts included."""
        with self._state.lock:
            return list(self._state.calls)

    @property
    def violations(self) -> list[str]:
        """Return a snapshot of every problem Slack would have rejected."""
        with self._state.lock:
            return list(self._state.violations)

    @property
    def responses(self) -> list[RecordedResponse]:
        """Return a snapshot of every body posted to a response_url."""
        with self._state.lock:
            return list(self._state.responses)

    @property
    def uploads(self) -> dict[str, UploadedFile]:
        """Return files uploaded through ``files.getUploadURLExternal`` URLs, by file id."""
        with self._state.lock:
            return dict(self._state.uploads)

    def posting_report(self) -> PostingReport:
        """Return what the posting limits saw; only for a fake started with them."""
        if self._limiter is None:
            raise RuntimeError("this fake was started without posting_limits")
        return self._limiter.report()

    def calls_to(self, method: str, *, include_failed: bool = False) -> list[RecordedCall]:
        """Return calls to ``method``; failed attempts only when ``include_failed``."""
        return [
            call
            for call in self.calls
            if call.method == method and (include_failed or not call.failed)
        ]

    def reset(self) -> None:
        """Forget calls, responses, violations, uploads and pending faults (keep users)."""
        with self._state.lock:
            self._state.calls.clear()
            self._state.responses.clear()
            self._state.violations.clear()
            self._state.uploads.clear()
            self._state.pending_uploads.clear()
            self._state.faults.clear()

    # --- configuration ---

    def set_user(
        self,
        user_id: str,
        *,
        name: str | None = None,
        real_name: str | None = None,
        is_admin: bool = False,
        is_owner: bool = False,
        tz: str = "America/New_York",
        email: str | None = None,
    ) -> SlackUser:
        """Configure what ``users.info`` and ``users.lookupByEmail`` say about a user."""
        ZoneInfo(tz)  # An unknown zone should fail here, not inside a request thread.
        user = SlackUser(
            user_id=user_id,
            name=name or user_id.lower(),
            real_name=real_name or name or user_id,
            is_admin=is_admin,
            is_owner=is_owner,
            tz=tz,
            email=email,
        )
        with self._state.lock:
            self._state.users[user_id] = user
        return user

    def set_response(self, method: str, answer: dict[str, Any]) -> None:
        """Answer every valid call to ``method`` with ``answer`` instead of the canned reply."""
        with self._state.lock:
            self._state.canned[method] = answer

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int = 429,
        retry_after: int = 1,
        method: str | None = None,
    ) -> None:
        """Answer the next ``count`` calls (to ``method``, or any) with an HTTP error status."""
        self._queue_faults(method, [_Fault("status", status, retry_after) for _ in range(count)])

    def slow_next(self, count: int = 1, *, seconds: float, method: str | None = None) -> None:
        """Answer the next ``count`` calls (to ``method``, or any) only after ``seconds``."""
        self._queue_faults(method, [_Fault("slow", seconds=seconds) for _ in range(count)])

    def drop_next(self, count: int = 1, method: str | None = None) -> None:
        """Close the connection without answering the next ``count`` calls."""
        self._queue_faults(method, [_Fault("drop") for _ in range(count)])

    def _queue_faults(self, method: str | None, faults: list[_Fault]) -> None:
        with self._state.lock:
            self._state.faults.setdefault(method, deque()).extend(faults)

    # --- request handling (called from server threads) ---

    def _take_fault(self, method: str) -> _Fault | None:
        with self._state.lock:
            for key in (method, None):
                queue = self._state.faults.get(key)
                if queue:
                    return queue.popleft()
        return None

    def _record_fault(
        self, method: str, args: dict[str, Any], headers: dict[str, str], fault: _Fault
    ) -> None:
        label = "drop" if fault.kind == "drop" else f"status {fault.status}"
        call = RecordedCall(method, args, headers, failed=True, fault=label)
        with self._state.lock:
            self._state.calls.append(call)

    def _answer_call(
        self, method: str, args: dict[str, Any], headers: dict[str, str]
    ) -> dict[str, Any]:
        problems, answer = self._validate_call(method, args, headers)
        if answer is None:
            answer = self._canned_answer(method, args)
        call = RecordedCall(method, args, headers, response=answer)
        with self._state.lock:
            self._state.violations.extend(problems)
            self._state.calls.append(call)
        if self._observer is not None:
            self._observer(call)
        return answer

    def _validate_call(
        self, method: str, args: dict[str, Any], headers: dict[str, str]
    ) -> tuple[list[str], dict[str, Any] | None]:
        if self._spec_dir is None:
            return [], None
        if required_arguments(method, self._spec_dir) is None:
            problem = f"{method}: unknown method (not in Slack's Web API spec)"
            return [problem], {"ok": False, "error": "unknown_method", "req_method": method}
        authorization = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        authorized = authorization.startswith("Bearer ") and len(authorization) > len("Bearer ")
        problems = missing_argument_problems(
            method, args, authorized=authorized, spec_dir=self._spec_dir
        )
        problems += call_payload_problems(method, args)
        if not problems:
            return [], None
        messages = [f"[ERROR] {problem}" for problem in problems]
        answer = {
            "ok": False,
            "error": "invalid_arguments",
            "response_metadata": {"messages": messages},
        }
        return problems, answer

    def _answer_response_url(
        self, name: str, body: bytes, headers: dict[str, str]
    ) -> tuple[int, dict[str, Any]]:
        try:
            payload = json.loads(body or b"null")
        except json.JSONDecodeError:
            payload = None
        if not isinstance(payload, dict):
            problems = [f"response_url {name}: body must be a JSON object"]
            payload = {}
        else:
            problems = message_problems(payload, f"response_url {name}")
        with self._state.lock:
            self._state.violations.extend(problems)
            self._state.responses.append(RecordedResponse(name, payload, headers))
        if problems:
            return HTTPStatus.BAD_REQUEST, {"ok": False, "error": "invalid_blocks"}
        return HTTPStatus.OK, {"ok": True}

    def _accept_upload(self, file_id: str, content: bytes) -> bool:
        with self._state.lock:
            filename = self._state.pending_uploads.pop(file_id, None)
            if filename is None:
                return False
            self._state.uploads[file_id] = UploadedFile(file_id, filename, content)
            return True

    def _next_number(self) -> int:
        with self._state.lock:
            return next(self._state.counter)

    def _next_ts(self) -> str:
        number = self._next_number()
        return f"{1_700_000_000 + number}.{number:06d}"

    def _canned_answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        with self._state.lock:
            override = self._state.canned.get(method)
        if override is not None:
            return override
        build = self._CANNED.get(method)
        return build(self, args) if build is not None else {"ok": True}

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://dealbot-test.slack.com/",
            "team": "Dealbot Test",
            "user": "dealbot",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _message(self, args: dict[str, Any], ts: str) -> dict[str, Any]:
        message: dict[str, Any] = {
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "app_id": APP_ID,
            "team": TEAM_ID,
            "text": args.get("text", ""),
            "ts": ts,
        }
        for name in ("blocks", "attachments", "thread_ts", "metadata"):
            if name in args:
                message[name] = args[name]
        return message

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        ts = self._next_ts()
        channel = args["channel"]
        return {"ok": True, "channel": channel, "ts": ts, "message": self._message(args, ts)}

    def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "message_ts": self._next_ts()}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "channel": args["channel"],
            "ts": args["ts"],
            "text": args.get("text", ""),
            "message": self._message(args, args["ts"]),
        }

    def _chat_schedule_message(self, args: dict[str, Any]) -> dict[str, Any]:
        number = self._next_number()
        return {
            "ok": True,
            "channel": args.get("channel"),
            "scheduled_message_id": f"Q{number:010d}",
            "post_at": args.get("post_at"),
            "message": self._message(args, self._next_ts()),
        }

    def _views(self, args: dict[str, Any]) -> dict[str, Any]:
        view = args.get("view") if isinstance(args.get("view"), dict) else {}
        view_id = args.get("view_id") or f"V{self._next_number():010d}"
        answer_view = {
            "id": view_id,
            "team_id": TEAM_ID,
            "app_id": APP_ID,
            "bot_id": BOT_ID,
            "state": {"values": {}},
            "hash": f"{self._next_number()}.fakehash",
            "root_view_id": view_id,
            "previous_view_id": None,
            "blocks": [],
            **view,
        }
        return {"ok": True, "view": answer_view}

    def _chat_get_permalink(self, args: dict[str, Any]) -> dict[str, Any]:
        # Slack's shape: the workspace's URL, the channel, and the ts without its dot.
        channel = str(args.get("channel") or "")
        ts = str(args.get("message_ts") or "")
        seconds, _, micros = ts.partition(".")
        if not seconds.isdigit() or not micros.isdigit():
            return {"ok": False, "error": "message_not_found"}
        return {
            "ok": True,
            "channel": channel,
            "permalink": f"https://dealbot-test.slack.com/archives/{channel}/p{seconds}{micros}",
        }

    def _conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        users = str(args.get("users") or "").split(",")
        channel_id = args.get("channel") or f"D{users[0].strip()}"
        return {"ok": True, "channel": {"id": channel_id}}

    def _conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        channel_id = str(args.get("channel") or "C0TEAM")
        is_im = channel_id.startswith("D")
        return {
            "ok": True,
            "channel": {
                "id": channel_id,
                "name": channel_id.lower(),
                "is_channel": not is_im,
                "is_im": is_im,
                "is_private": channel_id.startswith("G"),
                "is_archived": False,
                "is_member": True,
            },
        }

    def _user(self, user_id: str) -> SlackUser:
        with self._state.lock:
            known = self._state.users.get(user_id)
        return known or SlackUser(user_id=user_id, name=user_id.lower(), real_name=user_id)

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self._user(str(args.get("user", "")))
        return {"ok": True, "user": user.to_api(now=self._clock.now())}

    def _users_lookup_by_email(self, args: dict[str, Any]) -> dict[str, Any]:
        with self._state.lock:
            found = [u for u in self._state.users.values() if u.email == args.get("email")]
        if not found:
            return {"ok": False, "error": "users_not_found"}
        return {"ok": True, "user": found[0].to_api(now=self._clock.now())}

    def _files_get_upload_url(self, args: dict[str, Any]) -> dict[str, Any]:
        file_id = f"F{self._next_number():010d}"
        with self._state.lock:
            self._state.pending_uploads[file_id] = str(args["filename"])
        return {"ok": True, "upload_url": f"{self.origin}/upload/{file_id}", "file_id": file_id}

    def _files_complete_upload(self, args: dict[str, Any]) -> dict[str, Any]:
        files = args["files"] if isinstance(args["files"], list) else []
        created = self._clock.now().timestamp()
        return {
            "ok": True,
            "files": [
                {"id": f.get("id"), "title": f.get("title", ""), "created": int(created)}
                for f in files
                if isinstance(f, dict)
            ],
        }

    _CANNED: ClassVar[dict[str, Callable[[FakeSlackWebAPI, dict[str, Any]], dict[str, Any]]]] = {
        "auth.test": _auth_test,
        "chat.postMessage": _chat_post_message,
        "chat.postEphemeral": _chat_post_ephemeral,
        "chat.update": _chat_update,
        "chat.scheduleMessage": _chat_schedule_message,
        "chat.getPermalink": _chat_get_permalink,
        "views.open": _views,
        "views.update": _views,
        "views.push": _views,
        "views.publish": _views,
        "conversations.open": _conversations_open,
        "conversations.info": _conversations_info,
        "users.info": _users_info,
        "users.lookupByEmail": _users_lookup_by_email,
        "files.getUploadURLExternal": _files_get_upload_url,
        "files.completeUploadExternal": _files_complete_upload,
    }
