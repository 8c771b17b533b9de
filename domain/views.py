"""Plain snapshots the domain returns; the Slack layer renders them, nothing writes through them."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

from domain.forecast import RollUp
from domain.money import Money


@dataclass(frozen=True)
class ContactView:
    name: str | None
    email: str | None
    slack_user_id: str | None
    role: str  # economic_buyer | champion | other


@dataclass(frozen=True)
class NextStepView:
    id: int
    what: str
    owner_id: str | None
    due_date: dt.date | None
    done: bool


@dataclass(frozen=True)
class ChangeView:
    field: str
    old_value: str | None
    new_value: str | None
    changed_by: str
    changed_at: dt.datetime
    source: str | None = None  # None: made in dealbot; "salesforce", "hubspot", "import"...


@dataclass(frozen=True)
class PostMortemView:
    outcome: str
    primary_reason: str
    competitor: str | None
    lessons: str | None


@dataclass(frozen=True)
class EvidenceView:
    """The latest citation of one qualification field: where its answer came from."""

    kind: str  # one of domain.evidence.EVIDENCE_KINDS
    source: str  # "slack" | "gmail"
    reference: str  # a Slack message permalink, or a Gmail message id or link
    cited_by: str
    cited_at: dt.datetime
    excerpt: str | None = None
    cited_on: dt.date | None = None  # cited_at's day where the deal's owner is


@dataclass(frozen=True)
class DealView:
    """A deal as users see it. Lists (/pipeline, App Home) leave evidence, contacts and
    history empty; a single deal (/deal show and replies to changes) carries them."""

    id: int
    account: str
    title: str | None
    owner_id: str
    amount: Money | None
    stage: str
    stage_label: str
    probability: Decimal
    close_date: dt.date | None
    forecast_category: str
    status: str
    next_step: NextStepView | None
    attention: tuple[str, ...]  # every enabled check the deal fails, as the jobs score it
    buying_criteria: str | None = None
    buying_process: str | None = None
    paper_process: str | None = None
    pain: str | None = None
    metrics: str | None = None
    competition: str | None = None
    close_reason: str | None = None
    contacts: tuple[ContactView, ...] = ()
    history: tuple[ChangeView, ...] = ()
    close_date_pushes: int = 0
    post_mortem: PostMortemView | None = None
    # Set only when a CRM is connected and the deal is linked to it or has pushes.
    crm_label: str | None = None  # "Salesforce", "HubSpot"
    crm_url: str | None = None
    # dealbot field names with a push pending or refused ("deal": not created there yet).
    not_in_crm: tuple[str, ...] = ()
    # The latest citation per evidence kind (a single deal's view only), in EVIDENCE_KINDS order.
    evidence: tuple[EvidenceView, ...] = ()

    # Whether a check in the checks file's `attention:` list fails: what "Needs attention"
    # lists. None (a view built without the file) means any failing check.
    urgent: bool | None = None
    # Set only on the reply to the change that entered a stage whose forecast default is
    # Commit while the owner's team requires evidence: the evidence kinds still missing, for
    # which the deal kept its forecast instead of taking Commit (DealService._hold_commit).
    commit_held: tuple[str, ...] = ()

    @property
    def needs_attention(self) -> bool:
        return self.urgent if self.urgent is not None else bool(self.attention)

    @property
    def name(self) -> str:
        return f"{self.account} — {self.title}" if self.title else self.account

    @property
    def weighted_amount(self) -> Money | None:
        if self.amount is None:
            return None
        weighted = (self.amount.amount * self.probability).quantize(Decimal("0.01"))
        return Money(weighted, self.amount.currency)


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: str | None
    new: str | None
    # A forecast category the deal took from the stage it moved to, not one the rep typed.
    by_stage_default: bool = False


@dataclass(frozen=True)
class DealUpdate:
    deal: DealView
    changes: tuple[FieldChange, ...]


@dataclass(frozen=True)
class PipelineView:
    """Open deals of one rep ("me" or another "user") or of whole teams ("team")."""

    scope: str
    today: dt.date
    deals: tuple[DealView, ...]
    totals: dict[str, Decimal] = field(default_factory=dict)
    weighted_totals: dict[str, Decimal] = field(default_factory=dict)
    user_id: str | None = None  # whose pipeline, for "user"
    team_names: tuple[str, ...] = ()  # which teams, for "team"
    # The quarter's roll-up: one per team shown (for one rep, their line in their team).
    roll_ups: tuple[RollUp, ...] = ()

    @property
    def needing_attention(self) -> tuple[DealView, ...]:
        return tuple(deal for deal in self.deals if deal.needs_attention)


@dataclass(frozen=True)
class HomeView:
    user_id: str
    today: dt.date
    open_deals: tuple[DealView, ...]
    overdue_steps: tuple[tuple[NextStepView, str], ...]  # (step, deal name)
    accuracy_score: Decimal | None  # share of basic checks passed, None without open deals


@dataclass(frozen=True)
class QuotaView:
    user_id: str
    period: str
    amount: Money


@dataclass(frozen=True)
class TeamView:
    id: int
    name: str
    channel_id: str
    timezone: str
    managers: tuple[str, ...]
    reps: tuple[str, ...]
    quotas: tuple[QuotaView, ...]
    currency: str | None = None  # the team's reporting currency; None: DEALBOT_CURRENCY
