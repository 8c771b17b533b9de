"""The pipeline-accuracy checks: loaded from a versioned YAML file, evaluated on plain facts.

Each check is a predicate over `DealFacts`, a plain row the storage layer builds for many
deals in a few set-based queries (`storage.reminder_repositories.ReminderRepository.deal_facts`).
The same predicates serve /pipeline's "needs attention", App Home, the chase DM and the
weekly accuracy score, so all four agree.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache, cached_property
from pathlib import Path
from typing import Any, Final, NamedTuple

import yaml

from domain.stages import DEFAULT_STAGES, Stage

CHECKS_FILE_ENV = "DEALBOT_CHECKS_FILE"
DEFAULT_CHECKS_FILE: Final = Path(__file__).with_name("checks.yml")
SUPPORTED_VERSIONS: Final = (1,)

# Evaluation order is the SPEC's table order; COMMIT_WITHOUT_EVIDENCE looks at the others.
CHECK_IDS: Final = (
    "NO_NEXT_STEP",
    "NEXT_STEP_NO_OWNER",
    "NEXT_STEP_OVERDUE",
    "NEXT_STEP_TOO_FAR",
    "CLOSE_DATE_PAST",
    "CLOSE_DATE_SLIPPED",
    "STALE",
    "STALLED_IN_STAGE",
    "NO_ECONOMIC_BUYER",
    "SINGLE_THREADED",
    "STAGE_CRITERIA_UNMET",
    "COMMIT_WITHOUT_EVIDENCE",
    "NO_AMOUNT",
    "LOST_WITHOUT_REASON",
)
CLOSED_DEAL_CHECKS: Final = ("LOST_WITHOUT_REASON",)
_CHECK_ORDER: Final = {check: index for index, check in enumerate(CHECK_IDS)}

# Parameter name -> kind ("days"/"count": a number per stage; "stage": a stage key).
PARAMETERS: Final[dict[str, dict[str, str]]] = {
    "NEXT_STEP_TOO_FAR": {"max_days": "days"},
    "CLOSE_DATE_SLIPPED": {"max_pushes": "count"},
    "STALE": {"max_days": "days"},
    "STALLED_IN_STAGE": {"max_days": "days"},
    "NO_ECONOMIC_BUYER": {"from_stage": "stage"},
    "SINGLE_THREADED": {"from_stage": "stage", "min_contacts": "count"},
}


class ChecksFileError(ValueError):
    """The checks file is unusable; `str()` names the file, the line and the reason."""


class DealFacts(NamedTuple):
    """What the checks need to know about one deal, as plain values.

    A NamedTuple rather than a frozen dataclass: planning builds one per open deal, and at
    100,000 deals a frozen dataclass's per-field __setattr__ is a visible share of the time.
    """

    deal_id: int
    owner_id: str
    account: str
    stage: str
    status: str
    forecast_category: str
    has_amount: bool
    close_date: dt.date | None
    open_steps: int = 0
    open_steps_dated: int = 0
    open_steps_without_owner: int = 0
    next_step_due: dt.date | None = None  # the soonest open due date
    last_activity_at: dt.datetime | None = None
    stage_entered_at: dt.datetime | None = None
    contacts: int = 0
    has_economic_buyer: bool = False
    has_buying_criteria: bool = False
    has_buying_process: bool = False
    has_paper_process: bool = False
    close_date_pushes_this_quarter: int = 0
    pushed_out_of_quarter: bool = False
    has_post_mortem: bool = False
    has_close_reason: bool = False
    closed_at: dt.datetime | None = None
    title: str | None = None

    @property
    def name(self) -> str:
        return f"{self.account} — {self.title}" if self.title else self.account


@dataclass(frozen=True)
class Threshold:
    """A number per stage: `default` unless the stage has its own."""

    default: int
    per_stage: Mapping[str, int] = field(default_factory=dict)

    def for_stage(self, stage: str) -> int:
        return self.per_stage.get(stage, self.default)


@dataclass(frozen=True)
class NudgeBudget:
    chase_per_rep_per_day: int = 1
    quiet_start: dt.time = dt.time(19, 0)
    quiet_end: dt.time = dt.time(8, 0)
    weekends: bool = False

    def allows(self, local: dt.datetime) -> bool:
        """Return whether a nudge may go out at this local time (quiet hours, weekends)."""
        if not self.weekends and local.weekday() >= 5:
            return False
        moment = local.time()
        if self.quiet_start > self.quiet_end:  # quiet hours span midnight
            return self.quiet_end <= moment < self.quiet_start
        return not (self.quiet_start <= moment < self.quiet_end)


@dataclass(frozen=True)
class ChecksConfig:
    version: int
    enabled: tuple[str, ...]
    params: Mapping[str, Mapping[str, Any]]
    chase: tuple[str, ...]
    attention: tuple[str, ...]
    nudges: NudgeBudget
    stages: tuple[Stage, ...] = DEFAULT_STAGES
    source: str = "checks.yml"

    def threshold(self, check: str, name: str) -> Any:
        return self.params[check][name]

    # Cached: scoring asks these once or more per deal, 100,000 times in a weekly run.
    @cached_property
    def open_deal_checks(self) -> tuple[str, ...]:
        return tuple(c for c in self.enabled if c not in CLOSED_DEAL_CHECKS)

    @cached_property
    def _stages_by_key(self) -> dict[str, Stage]:
        return {s.key: s for s in reversed(self.stages)}  # reversed: the first of a key wins

    def stage(self, key: str) -> Stage | None:
        """Return the stage called `key`, or None for a stage this configuration lacks."""
        return self._stages_by_key.get(key)

    def stage_order(self, key: str) -> int:
        """Return the stage's place in the funnel (0 for an unknown stage)."""
        stage = self.stage(key)
        return stage.order if stage is not None else 0


# --- evaluation ------------------------------------------------------------------------------


def _days_between(earlier: dt.date, later: dt.date) -> int:
    return (later - earlier).days


def _local_date(moment: dt.datetime | None, zone: dt.tzinfo) -> dt.date | None:
    return moment.astimezone(zone).date() if moment is not None else None


def _criteria_unmet(facts: DealFacts, config: ChecksConfig) -> bool:
    stage = config.stage(facts.stage)
    if stage is None:
        return False
    present = {
        "amount": facts.has_amount,
        "close_date": facts.close_date is not None,
        "buying_criteria": facts.has_buying_criteria,
        "buying_process": facts.has_buying_process,
        "paper_process": facts.has_paper_process,
        "economic_buyer": facts.has_economic_buyer,
    }
    return not all(present[evidence] for evidence in stage.exit_criteria)


Predicate = Callable[[DealFacts, dt.date, dt.tzinfo, ChecksConfig], bool]


def _stage_at_least(facts: DealFacts, config: ChecksConfig, check: str) -> bool:
    return config.stage_order(facts.stage) >= config.stage_order(
        config.threshold(check, "from_stage")
    )


PREDICATES: Final[dict[str, Predicate]] = {
    "NO_NEXT_STEP": lambda f, today, zone, c: f.open_steps_dated == 0,
    "NEXT_STEP_NO_OWNER": lambda f, today, zone, c: f.open_steps_without_owner > 0,
    # Due today is not overdue: the rep still has the day.
    "NEXT_STEP_OVERDUE": lambda f, today, zone, c: (
        f.next_step_due is not None and f.next_step_due < today
    ),
    "NEXT_STEP_TOO_FAR": lambda f, today, zone, c: (
        f.next_step_due is not None
        and _days_between(today, f.next_step_due)
        > c.threshold("NEXT_STEP_TOO_FAR", "max_days").for_stage(f.stage)
    ),
    "CLOSE_DATE_PAST": lambda f, today, zone, c: f.close_date is not None and f.close_date < today,
    "CLOSE_DATE_SLIPPED": lambda f, today, zone, c: (
        f.pushed_out_of_quarter
        or f.close_date_pushes_this_quarter
        >= c.threshold("CLOSE_DATE_SLIPPED", "max_pushes").for_stage(f.stage)
    ),
    # The 14th quiet day is not stale yet; the 15th is.
    "STALE": lambda f, today, zone, c: (
        f.last_activity_at is not None
        and _days_between(_local_date(f.last_activity_at, zone) or today, today)
        > c.threshold("STALE", "max_days").for_stage(f.stage)
    ),
    "STALLED_IN_STAGE": lambda f, today, zone, c: (
        f.stage_entered_at is not None
        and _days_between(_local_date(f.stage_entered_at, zone) or today, today)
        > c.threshold("STALLED_IN_STAGE", "max_days").for_stage(f.stage)
    ),
    "NO_ECONOMIC_BUYER": lambda f, today, zone, c: (
        _stage_at_least(f, c, "NO_ECONOMIC_BUYER") and not f.has_economic_buyer
    ),
    "SINGLE_THREADED": lambda f, today, zone, c: (
        _stage_at_least(f, c, "SINGLE_THREADED")
        and f.contacts < c.threshold("SINGLE_THREADED", "min_contacts").for_stage(f.stage)
    ),
    "STAGE_CRITERIA_UNMET": lambda f, today, zone, c: _criteria_unmet(f, c),
    "NO_AMOUNT": lambda f, today, zone, c: not f.has_amount,
    "LOST_WITHOUT_REASON": lambda f, today, zone, c: (
        f.status != "open" and not f.has_post_mortem and not f.has_close_reason
    ),
}


def fired_checks(
    facts: DealFacts,
    today: dt.date,
    config: ChecksConfig,
    *,
    zone: dt.tzinfo = dt.UTC,
    only: tuple[str, ...] | None = None,
) -> tuple[str, ...]:
    """Return the ids of the enabled checks this deal fails as of `today` (in `zone`)."""
    wanted = config.enabled if only is None else tuple(c for c in only if c in config.enabled)
    if facts.status != "open":
        return tuple(
            c
            for c in wanted
            if c in CLOSED_DEAL_CHECKS and PREDICATES[c](facts, today, zone, config)
        )
    fired = [
        c
        for c in wanted
        if c not in CLOSED_DEAL_CHECKS
        and c != "COMMIT_WITHOUT_EVIDENCE"
        and PREDICATES[c](facts, today, zone, config)
    ]
    if "COMMIT_WITHOUT_EVIDENCE" in wanted and facts.forecast_category == "commit":
        # "Any of the above" means every evidence check, whether or not `only` asked for it.
        others = fired or [
            c
            for c in config.open_deal_checks
            if c != "COMMIT_WITHOUT_EVIDENCE" and PREDICATES[c](facts, today, zone, config)
        ]
        if others:
            fired.append("COMMIT_WITHOUT_EVIDENCE")
    return tuple(sorted(fired, key=_CHECK_ORDER.__getitem__))


def checks_counted(facts: DealFacts, config: ChecksConfig) -> int:
    """Return how many checks this deal is scored on (closed deals: the post-mortem only)."""
    if facts.status != "open":
        return len(config.enabled) - len(config.open_deal_checks)
    return len(config.open_deal_checks)


@dataclass(frozen=True)
class RepScore:
    """A rep's accuracy: checks passed over checks counted, and what failed most."""

    rep_id: str
    passed: int
    checked: int
    failures: Mapping[str, int]  # check id -> deals failing it
    deals: int

    @property
    def score(self) -> Decimal | None:
        if self.checked == 0:
            return None
        return (Decimal(self.passed) / Decimal(self.checked)).quantize(Decimal("0.01"))

    def best_fix(self) -> tuple[str, int, Decimal] | None:
        """Return (check id, deals to fix, score gain) for the fix that raises the score most."""
        if not self.failures or self.checked == 0:
            return None
        check, count = max(
            self.failures.items(), key=lambda item: (item[1], -_CHECK_ORDER[item[0]])
        )
        gain = (Decimal(count) / Decimal(self.checked)).quantize(Decimal("0.01"))
        return check, count, gain


def score_reps(
    facts: list[DealFacts],
    today_of: Callable[[str], tuple[dt.date, dt.tzinfo]],
    config: ChecksConfig,
) -> dict[str, RepScore]:
    """Return each deal owner's accuracy score over `facts` (open deals, closed this quarter)."""
    passed: dict[str, int] = {}
    checked: dict[str, int] = {}
    deals: dict[str, int] = {}
    failures: dict[str, dict[str, int]] = {}
    for deal in facts:
        today, zone = today_of(deal.owner_id)
        fired = fired_checks(deal, today, config, zone=zone)
        counted = checks_counted(deal, config)
        checked[deal.owner_id] = checked.get(deal.owner_id, 0) + counted
        passed[deal.owner_id] = passed.get(deal.owner_id, 0) + counted - len(fired)
        deals[deal.owner_id] = deals.get(deal.owner_id, 0) + (deal.status == "open")
        owner_failures = failures.setdefault(deal.owner_id, {})
        for check in fired:
            owner_failures[check] = owner_failures.get(check, 0) + 1
    return {
        rep: RepScore(
            rep_id=rep,
            passed=passed[rep],
            checked=checked[rep],
            failures=failures.get(rep, {}),
            deals=deals[rep],
        )
        for rep in checked
    }


# --- loading ---------------------------------------------------------------------------------


def _fail(source: str, node: yaml.Node | None, reason: str) -> ChecksFileError:
    line = f":{node.start_mark.line + 1}" if node is not None else ""
    return ChecksFileError(f"{source}{line}: {reason}")


def _mapping(source: str, node: yaml.Node, what: str) -> list[tuple[yaml.Node, yaml.Node]]:
    if not isinstance(node, yaml.MappingNode):
        raise _fail(source, node, f"{what} must be a mapping")
    seen: set[str] = set()
    for key, _ in node.value:
        if key.value in seen:
            raise _fail(source, key, f"{key.value!r} appears twice in {what}")
        seen.add(key.value)
    return list(node.value)


def _integer(source: str, node: yaml.Node, what: str) -> int:
    if not (isinstance(node, yaml.ScalarNode) and node.tag.endswith(":int")):
        raise _fail(source, node, f"{what} must be a whole number, not {node.value!r}")
    value = int(node.value)
    if value < 0:
        raise _fail(source, node, f"{what} must not be negative")
    return value


def _stage_key(source: str, node: yaml.Node, what: str, stages: tuple[Stage, ...]) -> str:
    keys = [s.key for s in stages if not s.is_closed]
    if not isinstance(node, yaml.ScalarNode) or node.value not in keys:
        raise _fail(source, node, f"{what} must be one of {', '.join(keys)}")
    return str(node.value)


def _threshold(source: str, node: yaml.Node, what: str, stages: tuple[Stage, ...]) -> Threshold:
    if isinstance(node, yaml.ScalarNode):
        return Threshold(default=_integer(source, node, what))
    default: int | None = None
    per_stage: dict[str, int] = {}
    for key, value in _mapping(source, node, what):
        if key.value == "default":
            default = _integer(source, value, f"{what}.default")
        else:
            stage = _stage_key(source, key, f"a stage in {what}", stages)
            per_stage[stage] = _integer(source, value, f"{what}.{stage}")
    if default is None:
        raise _fail(source, node, f"{what} needs a `default` for the stages it does not list")
    return Threshold(default=default, per_stage=per_stage)


def _time(source: str, node: yaml.Node, what: str) -> dt.time:
    try:
        return dt.time.fromisoformat(str(node.value))
    except (ValueError, TypeError):
        raise _fail(source, node, f'{what} must be a time like "19:00"') from None


def _check_list(source: str, node: yaml.Node, what: str) -> tuple[str, ...]:
    if not isinstance(node, yaml.SequenceNode):
        raise _fail(source, node, f"{what} must be a list of check ids")
    ids = []
    for item in node.value:
        if item.value not in CHECK_IDS:
            raise _fail(source, item, f"{item.value!r} in {what} is not a check id")
        ids.append(str(item.value))
    return tuple(ids)


def parse_checks(text: str, *, source: str = "checks.yml") -> ChecksConfig:
    """Return the checks configuration in `text`, or raise ChecksFileError naming the line."""
    stages = DEFAULT_STAGES
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise ChecksFileError(f"{source}{line}: not valid YAML ({error.problem})") from None
    if root is None:
        raise ChecksFileError(f"{source}: the file is empty")
    sections = dict((key.value, (key, value)) for key, value in _mapping(source, root, "the file"))
    for name, (key, _) in sections.items():
        if name not in ("version", "checks", "chase", "attention", "nudges"):
            raise _fail(source, key, f"unknown section {name!r}")
    if "version" not in sections:
        raise _fail(source, root, "`version:` is missing (this dealbot reads version 1)")
    version_node = sections["version"][1]
    version = _integer(source, version_node, "version")
    if version not in SUPPORTED_VERSIONS:
        raise _fail(source, version_node, f"version {version} is not supported (use 1)")
    if "checks" not in sections:
        raise _fail(source, root, "`checks:` is missing")
    enabled: list[str] = []
    params: dict[str, dict[str, Any]] = {}
    listed: set[str] = set()
    for key, body in _mapping(source, sections["checks"][1], "checks"):
        check = key.value
        if check not in CHECK_IDS:
            raise _fail(source, key, f"{check!r} is not a check id")
        listed.add(check)
        known = PARAMETERS.get(check, {})
        values: dict[str, Any] = {}
        is_enabled = True
        entries = (
            [] if isinstance(body, yaml.ScalarNode) and body.value in ("", "~", "null") else None
        )
        for name_node, value in entries if entries is not None else _mapping(source, body, check):
            name = name_node.value
            if name == "enabled":
                if not (isinstance(value, yaml.ScalarNode) and value.tag.endswith(":bool")):
                    raise _fail(source, value, f"{check}.enabled must be true or false")
                is_enabled = value.value.lower() == "true"
            elif name not in known:
                allowed = ", ".join(["enabled", *known]) or "enabled"
                raise _fail(
                    source, name_node, f"{check} has no setting {name!r} (it takes {allowed})"
                )
            elif known[name] == "stage":
                values[name] = _stage_key(source, value, f"{check}.{name}", stages)
            else:
                values[name] = _threshold(source, value, f"{check}.{name}", stages)
        missing = [name for name in known if name not in values]
        if missing:
            raise _fail(source, key, f"{check} needs {', '.join(missing)}")
        params[check] = values
        if is_enabled:
            enabled.append(check)
    absent = [c for c in CHECK_IDS if c not in listed]
    if absent:
        raise _fail(
            source,
            sections["checks"][0],
            f"{', '.join(absent)} missing from checks (write `enabled: false` to switch one off)",
        )
    chase = (
        _check_list(source, sections["chase"][1], "chase")
        if "chase" in sections
        else (
            "NO_NEXT_STEP",
            "NEXT_STEP_OVERDUE",
            "CLOSE_DATE_PAST",
        )
    )
    attention = (
        _check_list(source, sections["attention"][1], "attention")
        if "attention" in sections
        else (
            "NO_NEXT_STEP",
            "NEXT_STEP_NO_OWNER",
            "NEXT_STEP_OVERDUE",
            "CLOSE_DATE_PAST",
            "NO_AMOUNT",
        )
    )
    budget = NudgeBudget()
    if "nudges" in sections:
        settings: dict[str, Any] = {}
        for key, value in _mapping(source, sections["nudges"][1], "nudges"):
            if key.value == "chase_per_rep_per_day":
                settings["chase_per_rep_per_day"] = _integer(
                    source, value, "nudges.chase_per_rep_per_day"
                )
            elif key.value == "weekends":
                if not (isinstance(value, yaml.ScalarNode) and value.tag.endswith(":bool")):
                    raise _fail(source, value, "nudges.weekends must be true or false")
                settings["weekends"] = value.value.lower() == "true"
            elif key.value == "quiet_hours":
                hours = dict((k.value, v) for k, v in _mapping(source, value, "nudges.quiet_hours"))
                if set(hours) != {"start", "end"}:
                    raise _fail(source, value, "nudges.quiet_hours needs exactly start and end")
                settings["quiet_start"] = _time(source, hours["start"], "quiet_hours.start")
                settings["quiet_end"] = _time(source, hours["end"], "quiet_hours.end")
            else:
                raise _fail(source, key, f"nudges has no setting {key.value!r}")
        budget = NudgeBudget(**settings)
    return ChecksConfig(
        version=version,
        enabled=tuple(c for c in CHECK_IDS if c in enabled),
        params=params,
        chase=chase,
        attention=attention,
        nudges=budget,
        stages=stages,
        source=source,
    )


def load_checks(path: Path | None = None) -> ChecksConfig:
    """Return the checks from `path`, $DEALBOT_CHECKS_FILE, or the bundled defaults."""
    if path is None:
        configured = os.environ.get(CHECKS_FILE_ENV)
        path = Path(configured) if configured else DEFAULT_CHECKS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ChecksFileError(f"{path}: cannot read the checks file ({error.strerror})") from None
    return parse_checks(text, source=path.name if path == DEFAULT_CHECKS_FILE else str(path))


@cache
def default_checks() -> ChecksConfig:
    """Return the checks in effect for this process (read once)."""
    return load_checks()
