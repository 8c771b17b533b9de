"""The pipeline-accuracy checks and the accuracy score: rules over plain facts.

Each check is a predicate over `DealFacts`, a plain row the storage layer builds for many
deals in a few set-based queries (`storage.facts.ReminderRepository.deal_facts`).
The same predicates serve /pipeline's "needs attention", App Home, the chase DM and the
weekly accuracy score, so all four agree.

Teams tune the checks in a versioned YAML file (`checks.yml` beside this module, or their own
copy named by $DEALBOT_CHECKS_FILE), read into pydantic models that refuse any key dealbot does
not honour, naming its line. A check a team's file leaves out takes the bundled file's setting,
so a newly added check does not stop an older file from loading.

Adding a check touches three files:
1. here, a `Check` in `CHECKS` (at its place in the evaluation order): its id, the predicate
   and, if it has thresholds, a `CheckSettings` subclass naming them;
2. `checks.yml` beside this module: its default setting;
3. `handlers/messages.py`: its label (`CHECK_LABELS`) and its fix (`CHECK_FIXES`).
"""

from __future__ import annotations

import datetime as dt
import heapq
import os
import statistics
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from functools import cache, cached_property, lru_cache
from operator import itemgetter
from pathlib import Path
from typing import Annotated, Any, Final, Literal, NamedTuple

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    ValidationInfo,
    create_model,
    model_validator,
)
from pydantic_core import ErrorDetails

from domain.config_file import (
    ConfigFileError,
    FileModel,
    Flag,
    WholeNumber,
    dotted,
    listed_stage,
    read_config,
    refuse,
)
from domain.evidence import COMMIT_EVIDENCE
from domain.fx import RateBook
from domain.money import Money
from domain.stages import DEFAULT_STAGES, EMPTY_BOOK, Stage, StageBook

CHECKS_FILE_ENV = "DEALBOT_CHECKS_FILE"
DEFAULT_CHECKS_FILE: Final = Path(__file__).with_name("checks.yml")
SUPPORTED_VERSIONS: Final = (1,)


CommitEvidence = Literal["require", "warn"]


class ChecksFileError(ConfigFileError):
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
    amount: Decimal | None = None
    currency: str | None = None
    # The evidence kinds cited for this deal (`domain.evidence.EVIDENCE_KINDS`).
    cited: frozenset[str] = frozenset()
    # `<team name key>:<stage key>` on a team with its own stages (see Deal.team_stage).
    team_stage: str | None = None

    @property
    def name(self) -> str:
        return f"{self.account} — {self.title}" if self.title else self.account


# --- what a check can be told in the file ----------------------------------------------------


_OPEN_STAGES: Final = tuple(s.key for s in DEFAULT_STAGES if not s.is_closed)


def _open_stage(value: object) -> str:
    if value not in _OPEN_STAGES:
        raise refuse(f"must be one of {', '.join(_OPEN_STAGES)}")
    return str(value)


def _stage_in_threshold(value: object) -> str:
    return listed_stage(value, _OPEN_STAGES)


OpenStage = Annotated[str, BeforeValidator(_open_stage)]
StageInThreshold = Annotated[str, BeforeValidator(_stage_in_threshold)]


class Threshold(FileModel):
    """A number per stage: `default` unless the stage has its own.

    In the file: a number for every stage, or a mapping of stage -> number with `default`.
    """

    default: WholeNumber
    per_stage: dict[StageInThreshold, WholeNumber] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _from_file(cls, value: Any) -> Any:
        if isinstance(value, Threshold):
            return value
        if not isinstance(value, dict):
            return {"default": value}
        if set(value) <= {"default", "per_stage"} and isinstance(value.get("per_stage"), dict):
            return value  # built in code, not read from a file
        if "default" not in value:
            raise refuse("needs a `default` for the stages it does not list")
        return {
            "default": value["default"],
            "per_stage": {k: v for k, v in value.items() if k != "default"},
        }

    def for_stage(self, stage: str) -> int:
        """Return the number for `stage`."""
        return self.per_stage.get(stage, self.default)


class CheckSettings(FileModel):
    """What every check takes: whether it is on (off counts neither for nor against)."""

    enabled: Flag = True


class MaxDays(CheckSettings):
    max_days: Threshold


class MaxPushes(CheckSettings):
    max_pushes: Threshold


class FromStage(CheckSettings):
    from_stage: OpenStage


class FromStageMinContacts(FromStage):
    min_contacts: Threshold


# --- the configuration in effect -------------------------------------------------------------


@dataclass(frozen=True)
class NudgeBudget:
    """When a nudge may go out, in the rep's own time.

    "At most one chase DM per rep per day" is not a setting: the chase's outbox key is the
    rep's local day, so a second chase that day cannot be sent.
    """

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


ThresholdSource = Literal["fixed", "learned"]


def team_name_key(name: str) -> str:
    """Return the key a team goes by in the checks file: its name as `storage.deals.name_key`
    makes it (case and spacing ignored), so `EMEA` and `emea` in the file are one team."""
    return " ".join(name.casefold().split())


@dataclass(frozen=True)
class TeamSettings:
    """What a team's entry under `teams:` overrides; None keeps the file's own setting."""

    commit_evidence: CommitEvidence | None = None
    thresholds: ThresholdSource | None = None


def _threshold_source(value: object) -> str | None:
    if value is not None and value not in ("fixed", "learned"):
        raise refuse(f"is {value!r}: write `thresholds: fixed` or `thresholds: learned`")
    return None if value is None else str(value)


@dataclass(frozen=True)
class ChecksConfig:
    version: int
    enabled: tuple[str, ...]
    settings: Mapping[str, CheckSettings]
    chase: tuple[str, ...]
    attention: tuple[str, ...]
    nudges: NudgeBudget
    stages: tuple[Stage, ...] = DEFAULT_STAGES
    source: str = "checks.yml"
    # "learned": STALLED_IN_STAGE's limits come from the team's won deals (see
    # reminders/calibration.py), wherever it has enough of them; "fixed": from this file.
    thresholds: ThresholdSource = "fixed"
    # Teams' own stages: a deal in one is held to that stage's exit criteria (`with_stages`).
    stage_book: StageBook = EMPTY_BOOK

    def with_stage_limits(self, days: Mapping[str, int]) -> ChecksConfig:
        """Return this configuration with STALLED_IN_STAGE's limit replaced for `days`' stages."""
        stalled = self.settings["STALLED_IN_STAGE"]
        limits = self.threshold("STALLED_IN_STAGE", "max_days")
        learned = Threshold(default=limits.default, per_stage={**limits.per_stage, **days})
        settings = {
            **self.settings,
            "STALLED_IN_STAGE": stalled.model_copy(update={"max_days": learned}),
        }
        return replace(self, settings=settings)

    # Moving a deal to Commit without COMMIT_EVIDENCE cited: "require" refuses, "warn" saves
    # and says what is missing (domain.evidence).
    commit_evidence: CommitEvidence = "require"
    # Per-team overrides by team name key (`teams:` in the file); `for_team` applies them.
    teams: Mapping[str, TeamSettings] = field(default_factory=dict)

    def for_team(self, key: str | None) -> ChecksConfig:
        """Return the configuration a team's deals are held to: this one with the team's
        `teams:` overrides, or this one itself for no team or a team the file does not list.

        Memoised per key: a configuration memoises its per-stage answers, and the jobs ask
        once per team per run.
        """
        team = team_name_key(key) if key else ""
        settings = self.teams.get(team)
        if settings is None:
            return self
        config = self._for_team.get(team)
        if config is None:
            config = replace(
                self,
                commit_evidence=settings.commit_evidence or self.commit_evidence,
                thresholds=settings.thresholds or self.thresholds,
            )
            self._for_team[team] = config
        return config

    @property
    def learns_anywhere(self) -> bool:
        """Return whether the file or any team in it asks for `thresholds: learned` (on
        `fixed` everywhere a job need not read a team's history)."""
        return self.thresholds == "learned" or any(
            t.thresholds == "learned" for t in self.teams.values()
        )

    @cached_property
    def _for_team(self) -> dict[str, ChecksConfig]:
        return {}

    def with_stages(self, book: StageBook) -> ChecksConfig:
        """Return this configuration judging deals in a team's own stage by that stage."""
        return replace(self, stage_book=book) if book is not self.stage_book else self

    def deal_stage(self, stage: str, team_stage: str | None = None) -> Stage | None:
        """Return the stage a deal goes by: its team stage while that counts, else `stage`."""
        return self.stage_book.counting(team_stage, stage) or self.stage(stage)

    def threshold(self, check: str, name: str) -> Any:
        """Return the setting `name` of `check` (a Threshold, or a stage key)."""
        return getattr(self.settings[check], name)

    def limit(self, check: str, name: str, stage: str) -> int:
        """Return the number the Threshold `name` of `check` sets for `stage`.

        Memoised: the predicates ask it per deal, and a weekly run scores a million deals
        against a handful of (check, stage) pairs.
        """
        key = (check, name, stage)
        value = self._limits.get(key)
        if value is None:
            value = self._limits[key] = self.threshold(check, name).for_stage(stage)
        return value

    def stage_at_least(self, check: str, stage: str) -> bool:
        """Return whether `stage` is at or past `check`'s `from_stage` (memoised, as `limit`)."""
        key = (check, stage)
        reached = self._reached.get(key)
        if reached is None:
            reached = self._reached[key] = self.stage_order(stage) >= self.stage_order(
                self.threshold(check, "from_stage")
            )
        return reached

    def stage_rules(self, stage: str, team_stage: str | None = None) -> StageRules:
        """Return what the checks hold a deal in `stage` to (and, for its exit criteria, the
        stage it goes by: `deal_stage`), worked out once per stage (see `StageRules`)."""
        if not team_stage:
            rules = self._stage_rules.get(stage)
            if rules is None:
                rules = self._stage_rules[stage] = self._rules_for(stage, self.stage(stage))
            return rules
        # A team stage is remembered as itself, not by name: `team stages … from-crm` may
        # give the team other stages while this configuration is in use.
        known = self.deal_stage(stage, team_stage)
        key = (stage, known)
        rules = self._stage_rules.get(key)
        if rules is None:
            rules = self._stage_rules[key] = self._rules_for(stage, known or self.stage(stage))
        return rules

    def _rules_for(self, stage: str, goes_by: Stage | None) -> StageRules:
        single_threaded = self.stage_at_least("SINGLE_THREADED", stage)
        return StageRules(
            too_far_days=self.limit("NEXT_STEP_TOO_FAR", "max_days", stage),
            max_pushes=self.limit("CLOSE_DATE_SLIPPED", "max_pushes", stage),
            stale_after=dt.timedelta(days=self.limit("STALE", "max_days", stage)),
            stalled_after=dt.timedelta(days=self.limit("STALLED_IN_STAGE", "max_days", stage)),
            needs_buyer=self.stage_at_least("NO_ECONOMIC_BUYER", stage),
            min_contacts=(
                self.limit("SINGLE_THREADED", "min_contacts", stage) if single_threaded else 0
            ),
            criteria_unmet=_criteria_test(goes_by.exit_criteria if goes_by is not None else ()),
        )

    @cached_property
    def _limits(self) -> dict[tuple[str, str, str], int]:
        return {}

    @cached_property
    def _reached(self) -> dict[tuple[str, str], bool]:
        return {}

    @cached_property
    def _stage_rules(self) -> dict[str | tuple[str, Stage | None], StageRules]:
        return {}

    # Cached: scoring asks these once or more per deal, 100,000 times in a weekly run.
    @cached_property
    def open_deal_checks(self) -> tuple[str, ...]:
        return tuple(c for c in self.enabled if c not in CLOSED_DEAL_CHECKS)

    @cached_property
    def _check_plans(self) -> dict[tuple[str, ...] | None, _CheckPlan]:
        """`fired_checks`' work out per `only`, done once per configuration (see _CheckPlan)."""
        return {}

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


# --- the checks ------------------------------------------------------------------------------


class StageRules(NamedTuple):
    """What the checks hold a deal in one stage to, from a configuration: its limits, and
    whether the stage is past the point a check starts at. Worked out once per stage
    (`ChecksConfig.stage_rules`), so a deal's checks read plain fields: a weekly run checks
    every deal, and looking each limit up per deal cost more than the checks themselves."""

    too_far_days: int  # NEXT_STEP_TOO_FAR
    max_pushes: int  # CLOSE_DATE_SLIPPED
    stale_after: dt.timedelta  # STALE: quiet for more whole days than this
    stalled_after: dt.timedelta  # STALLED_IN_STAGE
    needs_buyer: bool  # NO_ECONOMIC_BUYER: at or past its from_stage
    min_contacts: int  # SINGLE_THREADED's minimum at or past its from_stage, else 0
    criteria_unmet: Callable[[DealFacts], bool]  # STAGE_CRITERIA_UNMET


# The DealFacts field that shows each piece of exit-criteria evidence: the evidence is there
# when the field is truthy (a close date, any date, is).
_EVIDENCE_FIELDS: Final[dict[str, str]] = {
    "amount": "has_amount",
    "close_date": "close_date",
    "buying_criteria": "has_buying_criteria",
    "buying_process": "has_buying_process",
    "paper_process": "has_paper_process",
    "economic_buyer": "has_economic_buyer",
}


def _never(facts: DealFacts) -> bool:
    return False


def _criteria_test(criteria: Iterable[str]) -> Callable[[DealFacts], bool]:
    """Return a test of whether a deal lacks evidence for any of a stage's exit criteria."""
    fields = tuple(DealFacts._fields.index(_EVIDENCE_FIELDS[c]) for c in criteria)
    if not fields:
        return _never
    if len(fields) == 1:
        (only,) = fields
        return lambda facts: not facts[only]
    shown = itemgetter(*fields)
    return lambda facts: not all(shown(facts))


@lru_cache(maxsize=4096)
def _day_starts(day: dt.date, zone: dt.tzinfo) -> dt.datetime:
    """Return the instant `day` starts in `zone`, in UTC (as timestamps are read)."""
    return dt.datetime.combine(day, dt.time(), zone).astimezone(dt.UTC)


def _quiet_too_long(
    since: dt.datetime | None, today: dt.date, zone: dt.tzinfo, after: dt.timedelta
) -> bool:
    """Return whether more whole days than `after` have passed since `since`.

    Days are counted on the calendar of `zone` (the deal's today), not the server's: more
    than N days have passed when `since` is before the start of the day N days before
    today there. A deal with no such moment yet is never flagged.
    """
    return since is not None and since < _day_starts(today - after, zone)


Predicate = Callable[[DealFacts, dt.date, dt.tzinfo, StageRules], bool]


@dataclass(frozen=True)
class Check:
    """One accuracy check: its stable id, what fires it, and what the file may set for it."""

    id: str
    fires: Predicate
    settings: type[CheckSettings] = CheckSettings
    # A closed-deal check looks at deals closed this quarter; every other one at open deals.
    closed_deals: bool = False


# The SPEC's table order, which is also the order checks are listed and evaluated in.
# COMMIT_WITHOUT_EVIDENCE fires on what the others fire (see `fired_checks`).
CHECKS: Final[tuple[Check, ...]] = (
    Check("NO_NEXT_STEP", lambda f, today, zone, r: f.open_steps_dated == 0),
    Check("NEXT_STEP_NO_OWNER", lambda f, today, zone, r: f.open_steps_without_owner > 0),
    # Due today is not overdue: the rep still has the day.
    Check(
        "NEXT_STEP_OVERDUE",
        lambda f, today, zone, r: f.next_step_due is not None and f.next_step_due < today,
    ),
    Check(
        "NEXT_STEP_TOO_FAR",
        lambda f, today, zone, r: (
            f.next_step_due is not None and (f.next_step_due - today).days > r.too_far_days
        ),
        MaxDays,
    ),
    Check(
        "CLOSE_DATE_PAST",
        lambda f, today, zone, r: f.close_date is not None and f.close_date < today,
    ),
    Check(
        "CLOSE_DATE_SLIPPED",
        lambda f, today, zone, r: (
            f.pushed_out_of_quarter or f.close_date_pushes_this_quarter >= r.max_pushes
        ),
        MaxPushes,
    ),
    # The 14th quiet day is not stale yet; the 15th is.
    Check(
        "STALE",
        lambda f, today, zone, r: _quiet_too_long(f.last_activity_at, today, zone, r.stale_after),
        MaxDays,
    ),
    Check(
        "STALLED_IN_STAGE",
        lambda f, today, zone, r: _quiet_too_long(f.stage_entered_at, today, zone, r.stalled_after),
        MaxDays,
    ),
    Check(
        "NO_ECONOMIC_BUYER",
        lambda f, today, zone, r: r.needs_buyer and not f.has_economic_buyer,
        FromStage,
    ),
    Check(
        "SINGLE_THREADED",
        lambda f, today, zone, r: f.contacts < r.min_contacts,
        FromStageMinContacts,
    ),
    Check("STAGE_CRITERIA_UNMET", lambda f, today, zone, r: r.criteria_unmet(f)),
    # Never asked directly: `fired_checks` fires it when a commit deal fires any other check.
    Check("COMMIT_WITHOUT_EVIDENCE", lambda f, today, zone, r: False),
    Check("NO_AMOUNT", lambda f, today, zone, r: not f.has_amount),
    Check(
        "LOST_WITHOUT_REASON",
        lambda f, today, zone, r: (
            f.status != "open" and not f.has_post_mortem and not f.has_close_reason
        ),
        closed_deals=True,
    ),
)
CHECK_IDS: Final = tuple(check.id for check in CHECKS)
CLOSED_DEAL_CHECKS: Final = tuple(check.id for check in CHECKS if check.closed_deals)
PREDICATES: Final[dict[str, Predicate]] = {check.id: check.fires for check in CHECKS}
_CHECK_ORDER: Final = {check: index for index, check in enumerate(CHECK_IDS)}
_ZERO: Final = Decimal(0)


# --- evaluation ------------------------------------------------------------------------------


class _CheckPlan(NamedTuple):
    """Which predicates `fired_checks` runs for one (configuration, `only`), in check order.

    Worked out once, not per deal: a weekly run asks for a million deals' checks.
    """

    closed: tuple[tuple[str, Predicate], ...]
    open: tuple[tuple[str, Predicate], ...]  # without COMMIT_WITHOUT_EVIDENCE
    commit: bool  # COMMIT_WITHOUT_EVIDENCE is wanted
    evidence: tuple[Predicate, ...]  # every enabled evidence check, for COMMIT_WITHOUT_EVIDENCE


def _check_plan(config: ChecksConfig, only: tuple[str, ...] | None) -> _CheckPlan:
    plan = config._check_plans.get(only)
    if plan is None:
        wanted = config.enabled if only is None else tuple(c for c in only if c in config.enabled)
        # Sorted once here, so what fires comes out in check order without a sort per deal.
        ordered = sorted(wanted, key=_CHECK_ORDER.__getitem__)
        plan = config._check_plans[only] = _CheckPlan(
            closed=tuple((c, PREDICATES[c]) for c in ordered if c in CLOSED_DEAL_CHECKS),
            open=tuple(
                (c, PREDICATES[c])
                for c in ordered
                if c not in CLOSED_DEAL_CHECKS and c != "COMMIT_WITHOUT_EVIDENCE"
            ),
            commit="COMMIT_WITHOUT_EVIDENCE" in wanted,
            evidence=tuple(
                PREDICATES[c] for c in config.open_deal_checks if c != "COMMIT_WITHOUT_EVIDENCE"
            ),
        )
    return plan


def fired_checks(
    facts: DealFacts,
    today: dt.date,
    config: ChecksConfig,
    *,
    zone: dt.tzinfo = dt.UTC,
    only: tuple[str, ...] | None = None,
) -> tuple[str, ...]:
    """Return the ids of the enabled checks this deal fails as of `today` (in `zone`)."""
    plan = _check_plan(config, only)
    rules = config.stage_rules(facts.stage, facts.team_stage)
    if facts.status != "open":
        return tuple(c for c, fires in plan.closed if fires(facts, today, zone, rules))
    fired = [c for c, fires in plan.open if fires(facts, today, zone, rules)]
    # "Any of the above" means every evidence check, whether or not `only` asked for it.
    if (
        plan.commit
        and facts.forecast_category == "commit"
        and (fired or any(fires(facts, today, zone, rules) for fires in plan.evidence))
    ):
        fired.append("COMMIT_WITHOUT_EVIDENCE")
        fired.sort(key=_CHECK_ORDER.__getitem__)
    return tuple(fired)


def checks_counted(facts: DealFacts, config: ChecksConfig) -> int:
    """Return how many checks this deal is scored on (closed deals: the post-mortem only)."""
    if facts.status != "open":
        return len(config.enabled) - len(config.open_deal_checks)
    return len(config.open_deal_checks)


# How many of a rep's failing deals a score keeps by name (the weekly post shows them).
FAILING_DEALS_KEPT: Final = 3


class FailingDeal(NamedTuple):
    """A deal behind a rep's failing checks, as the weekly post names it."""

    deal_id: int
    name: str
    amount: Money | None  # as entered, in the deal's own currency
    checks: tuple[str, ...]


def deal_weight(facts: DealFacts, rates: RateBook, currency: str, today: dt.date) -> Decimal | None:
    """Return the deal's amount in `currency` at its close date's rate (today's without one).

    None when the deal has no amount or its currency has no rate: the caller weighs it as
    the median of the rep's open deals (see `ScoreTally`).
    """
    if facts.amount is None or facts.currency is None:
        return None
    if facts.currency == currency:  # the common case, without a conversion per deal
        return facts.amount
    conversion = rates.convert(
        Money(facts.amount, facts.currency), currency, facts.close_date or today
    )
    return None if conversion is None else conversion.money.amount


def _ratio(part: Decimal, whole: Decimal) -> Decimal:
    return (part / whole).quantize(Decimal("0.01"))


@dataclass(frozen=True)
class RepScore:
    """A rep's accuracy: checks passed over checks counted, each deal's checks weighted by
    its amount in the team's reporting currency (see `ScoreTally` for the rule)."""

    rep_id: str
    passed: Decimal  # weighted points: the sum over deals of weight × checks passed
    checked: Decimal  # the sum over deals of weight × checks counted
    failures: Mapping[str, int]  # check id -> deals failing it
    deals: int  # open deals
    failing_weight: Mapping[str, Decimal] = field(default_factory=dict)  # check -> points lost
    failing_deals: tuple[FailingDeal, ...] = ()  # the largest failing deals, largest first
    deals_failing: int = 0  # deals failing at least one check
    commit_claimed: Decimal = Decimal(0)  # open commit deals' money, reporting currency
    commit_evidenced: Decimal = Decimal(0)  # the part whose deals cite every COMMIT_EVIDENCE
    commit_unpriced: int = 0  # commit deals without an amount or a rate: in neither figure

    @property
    def score(self) -> Decimal | None:
        if self.checked == 0:
            return None
        return _ratio(self.passed, self.checked)

    def best_fix(self) -> tuple[str, int, Decimal] | None:
        """Return (check id, deals to fix, score gain) for the fix that raises the score most.

        The gain is the weight of the deals failing the check over the weight checked, so a
        check failing on one large deal can beat one failing on several small ones.
        """
        if not self.failures or self.checked == 0:
            return None
        check = max(
            self.failures,
            key=lambda c: (self.failing_weight.get(c, Decimal(0)), -_CHECK_ORDER[c]),
        )
        gain = _ratio(self.failing_weight.get(check, Decimal(0)), self.checked)
        return check, self.failures[check], gain


class _RepTally:
    """One rep's running sums, kept per outcome: the deals that fired the same checks (and
    are open, or not) are added up together, and the per-check figures are worked out once
    the rep is done. A deal costs a dictionary update or two rather than one per check it
    fired; a rep's deals fall into a handful of outcomes. Deals without a weight are counted,
    and multiplied by the rep's median weight when the rep is done."""

    __slots__ = (
        "bare",
        "commit_claimed",
        "commit_evidenced",
        "commit_unpriced",
        "counts",
        "deals",
        "failing",
        "open_weights",
        "score_parts",
        "weights",
    )

    def __init__(self) -> None:
        # (open, checks fired) -> deals; the weight of those with one; how many had none.
        self.counts: dict[tuple[bool, tuple[str, ...]], int] = {}
        self.weights: dict[tuple[bool, tuple[str, ...]], Decimal] = {}
        self.bare: dict[tuple[bool, tuple[str, ...]], int] = {}
        self.deals = 0
        # The largest failing deals: (weight or -1, -deal id, deal), at most FAILING_DEALS_KEPT.
        self.failing: list[tuple[Decimal, int, FailingDeal]] = []
        self.commit_claimed = Decimal(0)
        self.commit_evidenced = Decimal(0)
        self.commit_unpriced = 0
        # Held only while this rep's deals stream past; None once the median is taken.
        self.open_weights: list[Decimal] | None = []
        self.score_parts: _ScoreParts | None = None

    def finish(self, *, open_counted: int, closed_counted: int) -> None:
        """Take the median weight and work out the rep's figures (once)."""
        if self.open_weights is None:
            return
        median = statistics.median(self.open_weights) if self.open_weights else Decimal(1)
        self.open_weights = None
        passed = checked = Decimal(0)
        failures: dict[str, int] = {}
        failing_weight: dict[str, Decimal] = {}
        deals_failing = 0
        # In the order each outcome first came, so `failures` lists checks in the order
        # the rep's deals first failed them (ties in "most common" keep that order).
        for key, deals in self.counts.items():
            is_open, fired = key
            counted = open_counted if is_open else closed_counted
            weight = self.weights.get(key, Decimal(0)) + median * self.bare.get(key, 0)
            passed += weight * (counted - len(fired))
            checked += weight * counted
            if fired:
                deals_failing += deals
            for check in fired:
                failures[check] = failures.get(check, 0) + deals
                failing_weight[check] = failing_weight.get(check, Decimal(0)) + weight
        self.score_parts = _ScoreParts(passed, checked, failures, failing_weight, deals_failing)

    def score(self, rep_id: str) -> RepScore:
        parts = self.score_parts
        assert parts is not None, "finish() first"
        return RepScore(
            rep_id=rep_id,
            passed=parts.passed,
            checked=parts.checked,
            failures=parts.failures,
            deals=self.deals,
            failing_weight=parts.failing_weight,
            failing_deals=tuple(deal for *_, deal in sorted(self.failing, reverse=True)),
            deals_failing=parts.deals_failing,
            commit_claimed=self.commit_claimed,
            commit_evidenced=self.commit_evidenced,
            commit_unpriced=self.commit_unpriced,
        )


class _ScoreParts(NamedTuple):
    """A finished rep's sums over their outcomes (see `_RepTally.finish`)."""

    passed: Decimal
    checked: Decimal
    failures: dict[str, int]
    failing_weight: dict[str, Decimal]
    deals_failing: int


class ScoreTally:
    """Rep scores added up one deal at a time, so a job can score a stream of deals.

    The score weighs each deal by its amount: a deal's checks count with weight = its
    amount in the reporting `currency` (converted by `rates` at its close date), so a $250k
    commit failing counts ten times a $25k prospect. A deal without an amount, or whose
    currency has no rate, weighs as the median converted amount of the rep's open deals
    (1 when none of them has one); a deal entered at 0 weighs 0, as its amount says.
    `passed` and `checked` are therefore money-weighted points, not counts; the score is
    their ratio.

    The facts must come grouped by owner (`stream_deal_facts` sorts by owner): a rep's
    median needs their open deals' weights, which are held only while that rep's deals
    stream past, so memory grows with reps, not deals. Mutable on purpose: it is the
    accumulator a million-deal run folds its facts into.
    """

    def __init__(
        self, *, config: ChecksConfig, currency: str = "USD", rates: RateBook | None = None
    ) -> None:
        self.config = config
        self.currency = currency
        self.rates = rates if rates is not None else RateBook(currency, ())
        self._open_counted = len(config.open_deal_checks)
        self._closed_counted = len(config.enabled) - self._open_counted
        self._tallies: dict[str, _RepTally] = {}
        self._current: _RepTally | None = None

    def add(self, deal: DealFacts, today: dt.date, zone: dt.tzinfo) -> tuple[str, ...]:
        """Count `deal` towards its owner's score as of `today` in `zone`; return the checks
        it fired (a caller that needs them too, the digest's roll-up, need not run them again).
        """
        tally = self._tallies.get(deal.owner_id)
        if tally is None:
            if self._current is not None:
                self._finish(self._current)
            tally = self._current = self._tallies[deal.owner_id] = _RepTally()
        elif tally is not self._current:
            raise ValueError(f"deal facts must come grouped by owner ({deal.owner_id} again)")
        fired = fired_checks(deal, today, self.config, zone=zone)
        is_open = deal.status == "open"
        key = (is_open, fired)
        weight = deal_weight(deal, self.rates, self.currency, today)
        if weight is None:
            tally.bare[key] = tally.bare.get(key, 0) + 1
        else:
            tally.weights[key] = tally.weights.get(key, _ZERO) + weight
            if is_open:
                tally.open_weights.append(weight)  # type: ignore[union-attr]
        tally.counts[key] = tally.counts.get(key, 0) + 1
        tally.deals += is_open
        if fired:
            self._keep_failing(tally, deal, weight, fired)
        if is_open and deal.forecast_category == "commit":
            if weight is None:
                tally.commit_unpriced += 1
            else:
                tally.commit_claimed += weight
                if deal.cited.issuperset(COMMIT_EVIDENCE):
                    tally.commit_evidenced += weight
        return fired

    def _finish(self, tally: _RepTally) -> None:
        tally.finish(open_counted=self._open_counted, closed_counted=self._closed_counted)

    @staticmethod
    def _keep_failing(
        tally: _RepTally, deal: DealFacts, weight: Decimal | None, fired: tuple[str, ...]
    ) -> None:
        """Keep the deal if it is among the rep's largest failing ones (no amount: last)."""
        key = (weight if weight is not None else Decimal(-1), -deal.deal_id)
        if len(tally.failing) == FAILING_DEALS_KEPT and key <= tally.failing[0][:2]:
            return
        amount = (
            Money(deal.amount, deal.currency)
            if deal.amount is not None and deal.currency is not None
            else None
        )
        entry = (*key, FailingDeal(deal.deal_id, deal.name, amount, fired))
        if len(tally.failing) < FAILING_DEALS_KEPT:
            heapq.heappush(tally.failing, entry)
        else:
            heapq.heapreplace(tally.failing, entry)

    def scores(self) -> dict[str, RepScore]:
        for tally in self._tallies.values():
            self._finish(tally)
        return {rep: tally.score(rep) for rep, tally in self._tallies.items()}


def score_reps(
    facts: Iterable[DealFacts],
    today_of: Callable[[str], tuple[dt.date, dt.tzinfo]],
    config: ChecksConfig,
    *,
    currency: str = "USD",
    rates: RateBook | None = None,
) -> dict[str, RepScore]:
    """Return each deal owner's weighted accuracy score over `facts` (grouped by owner:
    open deals and those closed this quarter), as `ScoreTally` weighs it."""
    tally = ScoreTally(config=config, currency=currency, rates=rates)
    for deal in facts:
        today, zone = today_of(deal.owner_id)
        tally.add(deal, today, zone)
    return tally.scores()


# --- loading ---------------------------------------------------------------------------------


def _check_id(value: object) -> str:
    if value not in CHECK_IDS:
        raise refuse(f"lists {value!r}, which is not a check id")
    return str(value)


CheckId = Annotated[str, BeforeValidator(_check_id)]


def _supported(version: int) -> int:
    if version not in SUPPORTED_VERSIONS:
        raise refuse(f"{version} is not supported (use 1)")
    return version


def _time_of_day(value: object) -> dt.time:
    try:
        return dt.time.fromisoformat(str(value))
    except ValueError:
        raise refuse('must be a time like "19:00"') from None


class _QuietHours(FileModel):
    start: Annotated[dt.time, BeforeValidator(_time_of_day)]
    end: Annotated[dt.time, BeforeValidator(_time_of_day)]


class _Nudges(FileModel):
    quiet_hours: _QuietHours | None = None
    weekends: Flag | None = None


def _team_keys(value: Any) -> Any:
    """Refuse two entries under `teams:` that name one team (`EMEA` and `emea`).

    The keys stay as written here, so a refusal inside an entry still finds its line; they
    become name keys when the configuration is built.
    """
    if not isinstance(value, dict):
        return value
    seen: set[str] = set()
    for name in value:
        key = team_name_key(str(name))
        if not key:
            raise refuse("lists a team with no name: write its name, e.g. `emea:`")
        if key in seen:
            raise refuse(f"names the team {key!r} twice")
        seen.add(key)
    # `emea:` with nothing after it reads as null: the team, overriding nothing.
    return {name: {} if body is None else body for name, body in value.items()}


class _TeamSection(FileModel):
    """One team's entry under `teams:`: the settings a team may hold for itself."""

    commit_evidence: CommitEvidence | None = None
    thresholds: Annotated[ThresholdSource | None, BeforeValidator(_threshold_source)] = None


class _ChecksSection(FileModel):
    """The `checks:` mapping: one optional entry per check id (see `_CHECKS_SECTION`)."""

    @model_validator(mode="before")
    @classmethod
    def _unsaid_settings_from_defaults(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, dict):
            return value
        defaults: ChecksConfig | None = (info.context or {}).get("defaults")
        # `NO_AMOUNT:` with nothing after it reads as null: the check, with no settings.
        bodies = {check: {} if body is None else body for check, body in value.items()}
        if defaults is None:
            return bodies
        # `STALE: {enabled: false}` switches STALE off and keeps its bundled threshold.
        # `enabled` itself is not inherited: listing a check means it is on unless it says not.
        for check, body in bodies.items():
            if isinstance(body, dict) and check in defaults.settings:
                inherited = defaults.settings[check]
                for name in type(inherited).model_fields:
                    if name != "enabled" and name not in body:
                        body[name] = getattr(inherited, name)
        return bodies

    @model_validator(mode="after")
    def _all_listed_unless_defaulted(self, info: ValidationInfo) -> _ChecksSection:
        if (info.context or {}).get("defaults") is None:
            absent = [c for c in CHECK_IDS if getattr(self, c) is None]
            if absent:
                raise refuse(
                    f"{', '.join(absent)} missing from checks"
                    " (write `enabled: false` to switch one off)"
                )
        return self


# One field per check, typed by what that check takes, so the registry is the only list.
_CHECKS_SECTION: Final = create_model(
    "ChecksSection",
    __base__=_ChecksSection,
    **{check.id: (check.settings | None, None) for check in CHECKS},  # type: ignore[call-overload]
)


class _ChecksFile(FileModel):
    """The checks file. Sections it leaves out take the bundled file's (`defaults`)."""

    version: Annotated[WholeNumber, AfterValidator(_supported)]
    checks: _CHECKS_SECTION  # type: ignore[valid-type]
    chase: tuple[CheckId, ...] | None = None
    attention: tuple[CheckId, ...] | None = None
    nudges: _Nudges | None = None
    thresholds: Annotated[ThresholdSource | None, BeforeValidator(_threshold_source)] = None
    commit_evidence: CommitEvidence | None = None
    teams: Annotated[dict[str, _TeamSection] | None, BeforeValidator(_team_keys)] = None

    @model_validator(mode="after")
    def _complete_unless_defaulted(self, info: ValidationInfo) -> _ChecksFile:
        if (info.context or {}).get("defaults") is None:
            nudges = self.nudges or _Nudges()
            for name, value in (
                ("chase", self.chase),
                ("attention", self.attention),
                ("nudges.quiet_hours", nudges.quiet_hours),
                ("nudges.weekends", nudges.weekends),
            ):
                if value is None:
                    raise refuse(f"`{name}:` is missing")
        return self

    def config(self, source: str, defaults: ChecksConfig | None) -> ChecksConfig:
        """Return the configuration this file asks for, `defaults` filling what it leaves out."""

        def unsaid(what: str) -> Any:
            # Only reached with defaults: without, the validator above made the file say all.
            return getattr(defaults, what)

        settings: dict[str, CheckSettings] = {
            check: getattr(self.checks, check) or unsaid("settings")[check] for check in CHECK_IDS
        }
        nudges = self.nudges or _Nudges()
        budget: NudgeBudget = unsaid("nudges") if defaults is not None else NudgeBudget()
        if nudges.quiet_hours is not None:
            budget = replace(
                budget, quiet_start=nudges.quiet_hours.start, quiet_end=nudges.quiet_hours.end
            )
        if nudges.weekends is not None:
            budget = replace(budget, weekends=nudges.weekends)
        return ChecksConfig(
            version=self.version,
            enabled=tuple(c for c in CHECK_IDS if settings[c].enabled),
            settings=settings,
            chase=self.chase if self.chase is not None else unsaid("chase"),
            attention=self.attention if self.attention is not None else unsaid("attention"),
            nudges=budget,
            stages=DEFAULT_STAGES,
            source=source,
            thresholds=self.thresholds or (defaults.thresholds if defaults else "fixed"),
            commit_evidence=self.commit_evidence
            or (unsaid("commit_evidence") if defaults is not None else "require"),
            # A team's settings are the file's own: the bundled file's teams are not inherited.
            teams={
                team_name_key(name): TeamSettings(
                    commit_evidence=t.commit_evidence, thresholds=t.thresholds
                )
                for name, t in (self.teams or {}).items()
            },
        )


_SECTIONS: Final = tuple(_ChecksFile.model_fields)


def _name(path: tuple[str | int, ...]) -> str:
    # A check's settings are named from the check (`STALE.max_days`), as teams write them.
    return dotted(path[1:] if path[:1] == ("checks",) else path)


def _describe(error: ErrorDetails, path: tuple[str | int, ...]) -> str:
    """Return what is wrong, for an error no validator of ours worded."""
    kind, loc = error["type"], error["loc"]
    if kind == "extra_forbidden":
        key, parent = path[-1], path[:-1]
        if parent == ():
            return f"unknown section {key!r} (the file has {', '.join(_SECTIONS)})"
        if parent == ("checks",):
            return f"{key!r} is not a check id"
        if len(parent) == 2 and parent[0] == "checks":
            check = str(parent[1])
            allowed = ", ".join(_SETTINGS_BY_CHECK[check].model_fields)
            return f"{check} has no setting {key!r} (it takes {allowed})"
        if len(parent) == 2 and parent[0] == "teams":
            allowed = ", ".join(_TeamSection.model_fields)
            return f"{_name(parent)} has no setting {key!r} (a team sets {allowed})"
        if key == "chase_per_rep_per_day":
            return (
                "nudges has no setting 'chase_per_rep_per_day': a rep gets at most one chase"
                " a day whatever it says (delete the line)"
            )
        return f"{_name(parent)} has no setting {key!r}"
    if kind == "missing":
        missing = str(loc[-1])
        if len(loc) == 1:
            hint = " (this dealbot reads version 1)" if missing == "version" else ""
            return f"`{missing}:` is missing{hint}"
        return f"{_name(tuple(loc[:-1]))} needs {missing}"
    what = _name(path) or "the file"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        return f"{what} must be a mapping"
    if kind in ("tuple_type", "list_type"):
        return f"{what} must be a list of check ids"
    return f"{what}: {error['msg']}"


_SETTINGS_BY_CHECK: Final[dict[str, type[CheckSettings]]] = {c.id: c.settings for c in CHECKS}


def parse_checks(
    text: str,
    *,
    source: str = "checks.yml",
    defaults: ChecksConfig | Literal["bundled"] | None = "bundled",
) -> ChecksConfig:
    """Return the checks configuration in `text`, or raise ChecksFileError naming the line.

    What the file leaves out comes from `defaults` (the bundled file's, unless told); with
    `defaults=None` the file must say everything, as the bundled file itself must.
    """
    fallback = bundled_checks() if isinstance(defaults, str) else defaults
    parsed = read_config(
        text,
        _ChecksFile,
        source=source,
        error=ChecksFileError,
        describe=_describe,
        name=_name,
        context={"defaults": fallback},
    )
    return parsed.config(source, fallback)


def load_checks(path: Path | None = None) -> ChecksConfig:
    """Return the checks from `path`, $DEALBOT_CHECKS_FILE, or the bundled defaults."""
    if path is None:
        configured = os.environ.get(CHECKS_FILE_ENV)
        path = Path(configured) if configured else DEFAULT_CHECKS_FILE
    if path == DEFAULT_CHECKS_FILE:
        return bundled_checks()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ChecksFileError(f"{path}: cannot read the checks file ({error.strerror})") from None
    return parse_checks(text, source=str(path))


@cache
def bundled_checks() -> ChecksConfig:
    """Return the checks in the bundled file, which must set every check (read once)."""
    try:
        text = DEFAULT_CHECKS_FILE.read_text(encoding="utf-8")
    except OSError as error:
        raise ChecksFileError(
            f"{DEFAULT_CHECKS_FILE}: cannot read the checks file ({error.strerror})"
        ) from None
    return parse_checks(text, source=DEFAULT_CHECKS_FILE.name, defaults=None)


@cache
def default_checks() -> ChecksConfig:
    """Return the checks in effect for this process (read once)."""
    return load_checks()
