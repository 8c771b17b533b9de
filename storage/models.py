"""SQLAlchemy models of the sales domain: deals, their evidence, next steps, history, teams."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.sql.elements import ColumnElement

# Stable constraint names keep Alembic migrations identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

MONEY = Numeric(18, 2)
SLACK_ID = String(32)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timezone-aware timestamp stored as UTC and read back aware on every backend.

    SQLite has no timezone type: plain `DateTime(timezone=True)` drops the offset when
    writing (a 09:00-05:00 time is stored as 09:00, the wrong instant) and reads naive
    datetimes back, which then never equal, and cannot be compared with, aware ones.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: times must be timezone-aware")
        return value.astimezone(dt.UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        """Return process_result_value fused with the backend's own parsing, in one call.

        TypeDecorator's default chains three Python calls per value; a /pipeline reads a
        few hundred timestamps, so the one function is a visible share of its CPU.
        """
        parse = self.impl_instance.result_processor(dialect, coltype)
        utc = dt.UTC
        from_iso = dt.datetime.fromisoformat

        def process(value: Any) -> dt.datetime | None:
            if value is None:
                return None
            if isinstance(value, str):
                # SQLite's text, written naive in UTC by process_bind_param: read aware in one
                # parse (a `replace(tzinfo=)` after parsing costs five times the parse).
                try:
                    return from_iso(value + "+00:00")
                except ValueError:
                    pass  # another format, or one with its own offset: parsed below
            if parse is not None:
                value = parse(value)
            tzinfo = value.tzinfo
            if tzinfo is utc:  # PostgreSQL's, as connections are set to UTC (storage/database)
                return value  # type: ignore[no-any-return]
            if tzinfo is None:
                return value.replace(tzinfo=utc)  # type: ignore[no-any-return]
            return value.astimezone(utc)  # type: ignore[no-any-return]

        return process


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {dt.datetime: UTCDateTime()}


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    name_key: Mapped[str] = mapped_column(String(80), unique=True)
    channel_id: Mapped[str] = mapped_column(SLACK_ID)
    timezone: Mapped[str] = mapped_column(String(64))
    # The currency the team's figures are reported in; None: DEALBOT_CURRENCY.
    currency: Mapped[str | None] = mapped_column(String(3))
    created_by: Mapped[str] = mapped_column(SLACK_ID)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    members: Mapped[list[TeamMember]] = relationship(
        back_populates="team", cascade="all, delete-orphan", order_by="TeamMember.id"
    )
    quotas: Mapped[list[Quota]] = relationship(
        back_populates="team", cascade="all, delete-orphan", order_by="Quota.id"
    )


class TeamMember(Base):
    __tablename__ = "team_members"
    __table_args__ = (
        UniqueConstraint("team_id", "user_id", "role", name="uq_team_members_membership"),
        CheckConstraint("role IN ('rep', 'manager')", name="role"),
        Index("ix_team_members_user", "user_id", "role"),
        # A rep is on at most one team (managers may run several): a partial unique index.
        Index(
            "uq_team_members_one_team_per_rep",
            "user_id",
            unique=True,
            sqlite_where=text("role = 'rep'"),
            postgresql_where=text("role = 'rep'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(SLACK_ID)
    role: Mapped[str] = mapped_column(String(16))

    team: Mapped[Team] = relationship(back_populates="members")


class Quota(Base):
    __tablename__ = "quotas"
    __table_args__ = (
        UniqueConstraint("team_id", "user_id", "period", name="uq_quotas_rep_period"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"))
    user_id: Mapped[str] = mapped_column(SLACK_ID)
    period: Mapped[str] = mapped_column(String(8))  # "2026-Q4"
    amount: Mapped[Decimal] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3))

    team: Mapped[Team] = relationship(back_populates="quotas")


class Deal(Base):
    __tablename__ = "deals"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'won', 'lost')", name="status"),
        CheckConstraint(
            "forecast_category IN ('pipeline', 'best_case', 'commit', 'omitted')",
            name="forecast_category",
        ),
        Index("ix_deals_owner_status", "owner_id", "status"),
        Index("ix_deals_status_close_date", "status", "close_date"),
        # Prefix lookups ("init" finds "Initech") use LIKE 'init%'; on PostgreSQL that
        # needs pattern ops to use the index under a non-C collation.
        Index(
            "ix_deals_account_key",
            "account_key",
            postgresql_ops={"account_key": "text_pattern_ops"},
        ),
        Index("ix_deals_title_key", "title_key", postgresql_ops={"title_key": "text_pattern_ops"}),
        # A unique index, not a constraint: SQLite adds it without rebuilding the table.
        Index("ix_deals_external_ref", "external_ref", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    account: Mapped[str] = mapped_column(String(200))
    account_key: Mapped[str] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(String(200))
    title_key: Mapped[str | None] = mapped_column(String(200))
    owner_id: Mapped[str] = mapped_column(SLACK_ID)
    amount: Mapped[Decimal | None] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3))
    stage: Mapped[str] = mapped_column(String(32))
    stage_entered_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    close_date: Mapped[dt.date | None] = mapped_column(Date)
    forecast_category: Mapped[str] = mapped_column(String(16), default="pipeline")
    status: Mapped[str] = mapped_column(String(8), default="open")
    buying_criteria: Mapped[str | None] = mapped_column(Text)
    buying_process: Mapped[str | None] = mapped_column(Text)
    paper_process: Mapped[str | None] = mapped_column(Text)
    pain: Mapped[str | None] = mapped_column(Text)
    metrics: Mapped[str | None] = mapped_column(Text)
    competition: Mapped[str | None] = mapped_column(Text)
    close_reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(SLACK_ID)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    last_touch_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[dt.datetime | None]
    # "<source>:<record id>" of a deal imported from a CRM export, so a re-import finds it.
    external_ref: Mapped[str | None] = mapped_column(String(160))
    # A deal deleted by mistake (or merged into another) is kept, with its history, but
    # left out of every list, figure and lookup by name: see `Deal.is_live`.
    deleted_at: Mapped[dt.datetime | None]
    deleted_by: Mapped[str | None] = mapped_column(SLACK_ID)
    # A team with its own stages: `<team name key>:<stage key>` of the stage the rep chose;
    # `stage` holds the default stage it maps to, which every check and figure reads.
    team_stage: Mapped[str | None] = mapped_column(String(120))

    contacts: Mapped[list[Contact]] = relationship(
        back_populates="deal", cascade="all, delete-orphan", order_by="Contact.id"
    )
    next_steps: Mapped[list[NextStep]] = relationship(
        back_populates="deal", cascade="all, delete-orphan", order_by="NextStep.id"
    )
    changes: Mapped[list[DealChange]] = relationship(
        back_populates="deal", cascade="all, delete-orphan", order_by="DealChange.id"
    )
    post_mortem: Mapped[PostMortem | None] = relationship(
        back_populates="deal", cascade="all, delete-orphan"
    )

    @classmethod
    def is_live(cls) -> ColumnElement[bool]:
        """Return the condition every query of deals adds: the deal is not deleted."""
        return cls.deleted_at.is_(None)


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (
        CheckConstraint("role IN ('economic_buyer', 'champion', 'other')", name="role"),
        Index("ix_contacts_deal", "deal_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    name: Mapped[str | None] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    title: Mapped[str | None] = mapped_column(String(200))
    slack_user_id: Mapped[str | None] = mapped_column(SLACK_ID)
    role: Mapped[str] = mapped_column(String(16), default="other")

    deal: Mapped[Deal] = relationship(back_populates="contacts")


class NextStep(Base):
    __tablename__ = "next_steps"
    __table_args__ = (
        Index("ix_next_steps_deal_done", "deal_id", "done"),
        Index("ix_next_steps_owner_open", "owner_id", "done", "due_date"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    what: Mapped[str] = mapped_column(Text)
    owner_id: Mapped[str | None] = mapped_column(SLACK_ID)
    due_date: Mapped[dt.date | None] = mapped_column(Date)
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    done_at: Mapped[dt.datetime | None]
    created_by: Mapped[str] = mapped_column(SLACK_ID)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    deal: Mapped[Deal] = relationship(back_populates="next_steps")


class DealChange(Base):
    """One change to a tracked field, kept so that slippage is evidence, not memory."""

    __tablename__ = "deal_changes"
    __table_args__ = (Index("ix_deal_changes_deal_field", "deal_id", "field", "changed_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    field: Mapped[str] = mapped_column(String(32))
    old_value: Mapped[str | None] = mapped_column(String(64))
    new_value: Mapped[str | None] = mapped_column(String(64))
    changed_by: Mapped[str] = mapped_column(SLACK_ID)
    changed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    # Where the change was made: None in dealbot (Slack), else "salesforce", "hubspot", ...
    source: Mapped[str | None] = mapped_column(String(16))

    deal: Mapped[Deal] = relationship(back_populates="changes")


class DealEvidence(Base):
    """Where a qualification field's answer came from: a Slack message or a Gmail message.

    `field` is one of `domain.evidence.EVIDENCE_KINDS`; a field may be cited more than once
    (the latest citation is the one shown).
    """

    __tablename__ = "deal_evidence"
    __table_args__ = (
        CheckConstraint(
            "field IN ('eb', 'criteria', 'process', 'paper', 'champion', 'metrics')", name="field"
        ),
        CheckConstraint("source IN ('slack', 'gmail')", name="source"),
        Index("ix_deal_evidence_deal_field", "deal_id", "field"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    field: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(8))
    # A Slack message permalink, or a Gmail message id.
    reference: Mapped[str] = mapped_column(Text)
    excerpt: Mapped[str | None] = mapped_column(Text)
    cited_by: Mapped[str] = mapped_column(SLACK_ID)
    cited_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class FxRate(Base):
    """How much of DEALBOT_CURRENCY one unit of `currency` is worth from `effective_on` on."""

    __tablename__ = "fx_rates"
    __table_args__ = (
        UniqueConstraint("currency", "effective_on", name="uq_fx_rates_currency_day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    currency: Mapped[str] = mapped_column(String(3))
    effective_on: Mapped[dt.date] = mapped_column(Date)
    rate: Mapped[Decimal] = mapped_column(Numeric(20, 10))
    # A Slack user id, or "cli:<who>" when set from the command line.
    set_by: Mapped[str] = mapped_column(String(64))
    set_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class TeamStageLimit(Base):
    """A limit STALLED_IN_STAGE holds a team's deals to in one stage, learned from its won deals.

    Written by the weekly jobs whenever they learn a team's limits (`thresholds: learned`),
    the team's rows replaced at once; the deal card, /pipeline and App Home read them, so they
    flag a deal where the post does without re-reading four quarters of closed deals.
    """

    __tablename__ = "team_stage_limits"

    team_id: Mapped[int] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True
    )
    stage: Mapped[str] = mapped_column(String(32), primary_key=True)
    days: Mapped[int] = mapped_column(Integer)
    # The team's day the limit was learned on, and from how many won deals through the stage.
    learned_on: Mapped[dt.date] = mapped_column(Date)
    won_deals: Mapped[int] = mapped_column(Integer)


class PostMortem(Base):
    __tablename__ = "post_mortems"
    __table_args__ = (CheckConstraint("outcome IN ('won', 'lost')", name="outcome"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"), unique=True)
    outcome: Mapped[str] = mapped_column(String(8))
    primary_reason: Mapped[str] = mapped_column(Text)
    competitor: Mapped[str | None] = mapped_column(String(200))
    lessons: Mapped[str | None] = mapped_column(Text)
    submitted_by: Mapped[str] = mapped_column(SLACK_ID)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    deal: Mapped[Deal] = relationship(back_populates="post_mortem")


__all__ = [
    "Base",
    "Contact",
    "Deal",
    "DealChange",
    "DealEvidence",
    "FxRate",
    "NextStep",
    "PostMortem",
    "Quota",
    "Team",
    "TeamMember",
    "UTCDateTime",
]


# --- Reminders: scheduled job runs, the delivery outbox, nudges, snoozes, weekly snapshots ---
# (issue 3; the reminders/ package owns these tables)


class JobRun(Base):
    """One firing of a scheduled job in one scope; the unique key makes one process win it.

    APScheduler ticks in every process that runs a scheduler; whichever inserts this row
    first does the work, the others see the conflict and stand down.
    """

    __tablename__ = "job_runs"
    __table_args__ = (
        UniqueConstraint("job", "scope", "fire_time", name="uq_job_runs_firing"),
        CheckConstraint("status IN ('running', 'done', 'failed')", name="status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(64))  # a timezone, or "all" for manual runs
    fire_time: Mapped[dt.datetime]
    status: Mapped[str] = mapped_column(String(16), default="running")
    runner: Mapped[str] = mapped_column(String(120))
    started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[dt.datetime | None]
    summary: Mapped[str | None] = mapped_column(String(200))


class OutboxMessage(Base):
    """A message a job decided to send, recorded before it is sent.

    (job, period, recipient, subject) is the idempotency key: recording the same message
    twice is a no-op, so reruns, restarts and second instances never send it twice.
    """

    __tablename__ = "outbox_messages"
    __table_args__ = (
        UniqueConstraint("job", "period", "recipient", "subject", name="uq_outbox_messages_key"),
        CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'failed', 'expired')", name="status"
        ),
        Index("ix_outbox_messages_job_status", "job", "status"),
        # The sweeper's two questions: which pending rows are due, which claims have lapsed.
        Index("ix_outbox_messages_status_next_attempt", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    job: Mapped[str] = mapped_column(String(64))
    period: Mapped[str] = mapped_column(String(32))  # "2026-11-23" or "2026-W48"
    recipient: Mapped[str] = mapped_column(SLACK_ID)  # a user id (DM) or a channel id
    subject: Mapped[str] = mapped_column(String(120))
    text: Mapped[str] = mapped_column(Text)
    blocks: Mapped[str | None] = mapped_column(Text)  # JSON list of Block Kit blocks
    file_name: Mapped[str | None] = mapped_column(String(120))
    file_title: Mapped[str | None] = mapped_column(String(200))
    file_content: Mapped[bytes | None] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    not_after: Mapped[dt.datetime | None]  # a chase is stale after the rep's day ends
    claimed_at: Mapped[dt.datetime | None]
    # Who holds a "sending" row and until when; the holder renews the lease while it lives.
    claimed_by: Mapped[str | None] = mapped_column(String(120))
    lease_until: Mapped[dt.datetime | None]
    # A failed send waits until then before the sweeper tries again (backoff per row).
    next_attempt_at: Mapped[dt.datetime | None]
    sent_at: Mapped[dt.datetime | None]
    slack_channel: Mapped[str | None] = mapped_column(SLACK_ID)
    slack_ts: Mapped[str | None] = mapped_column(String(32))
    file_sent: Mapped[bool] = mapped_column(Boolean, default=False)


class Nudge(Base):
    """One deal flagged in one chase DM, and whether the rep acted on it afterwards."""

    __tablename__ = "nudges"
    __table_args__ = (
        UniqueConstraint("period", "rep_id", "deal_id", name="uq_nudges_rep_deal_day"),
        Index("ix_nudges_rep_period", "rep_id", "period"),
        Index("ix_nudges_open", "acted_at", "deal_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    period: Mapped[str] = mapped_column(String(32))
    rep_id: Mapped[str] = mapped_column(SLACK_ID)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    checks: Mapped[str] = mapped_column(String(200))  # comma-separated check ids
    nudged_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    acted_at: Mapped[dt.datetime | None]
    action: Mapped[str | None] = mapped_column(String(32))  # next_step | change | closed


class DealSnooze(Base):
    """A rep asked not to be chased about a deal until a date (their own today)."""

    __tablename__ = "deal_snoozes"

    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"), unique=True)
    until: Mapped[dt.date] = mapped_column(Date)
    snoozed_by: Mapped[str] = mapped_column(SLACK_ID)
    snoozed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class DealSnapshot(Base):
    """An open deal as it stood in one ISO week: the evidence behind "since last week"."""

    __tablename__ = "deal_snapshots"
    __table_args__ = (
        UniqueConstraint("week", "deal_id", name="uq_deal_snapshots_week_deal"),
        Index("ix_deal_snapshots_owner_week", "owner_id", "week"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    week: Mapped[str] = mapped_column(String(10))  # "2026-W48"
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    owner_id: Mapped[str] = mapped_column(SLACK_ID)
    stage: Mapped[str] = mapped_column(String(32))
    amount: Mapped[Decimal | None] = mapped_column(MONEY)
    currency: Mapped[str] = mapped_column(String(3))
    forecast_category: Mapped[str] = mapped_column(String(16))
    close_date: Mapped[dt.date | None] = mapped_column(Date)
    taken_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class AccuracyScore(Base):
    """A rep's accuracy score for one ISO week, kept for "change since last week"."""

    __tablename__ = "accuracy_scores"
    __table_args__ = (UniqueConstraint("week", "rep_id", name="uq_accuracy_scores_week_rep"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    week: Mapped[str] = mapped_column(String(10))
    rep_id: Mapped[str] = mapped_column(SLACK_ID)
    passed: Mapped[int] = mapped_column(Integer)
    checked: Mapped[int] = mapped_column(Integer)
    computed_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class RepZone(Base):
    """A user's timezone as their Slack profile (`users.info` `tz`) said when last asked.

    `tz` is None when Slack had no zone for them (or refused to say); the rep then falls
    back to their team's zone, then DEALBOT_TIMEZONE. Refreshed once a day.
    """

    __tablename__ = "rep_zones"

    user_id: Mapped[str] = mapped_column(SLACK_ID, primary_key=True)
    tz: Mapped[str | None] = mapped_column(String(64))
    fetched_at: Mapped[dt.datetime]


__all__ += [
    "AccuracyScore",
    "DealSnapshot",
    "DealSnooze",
    "JobRun",
    "Nudge",
    "OutboxMessage",
    "RepZone",
]


# --- Follow-up email drafts (issue 4; reminders/email/ owns these tables) ---


class FollowUpTrigger(Base):
    """An event that calls for one follow-up draft; `source_key` makes it happen once."""

    __tablename__ = "follow_up_triggers"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'drafted', 'skipped', 'failed')", name="status"),
        Index("ix_follow_up_triggers_status", "status", "created_at"),
        Index("ix_follow_up_triggers_deal", "deal_id", "drafted_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # "stage_change:<change id>", "next_step:<step id>", "check:STALE:<deal>:<date>", ...
    source_key: Mapped[str] = mapped_column(String(160), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    rep_id: Mapped[str] = mapped_column(SLACK_ID)
    template: Mapped[str] = mapped_column(String(64))
    # What the trigger was about, for the template: the next step's text, the new stage.
    detail: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    # Set while one worker drafts it, so a second instance leaves it alone.
    claimed_until: Mapped[dt.datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    message_id: Mapped[str | None] = mapped_column(String(255))
    draft_id: Mapped[str | None] = mapped_column(String(255))
    thread_id: Mapped[str | None] = mapped_column(String(255))
    draft_link: Mapped[str | None] = mapped_column(Text)
    subject: Mapped[str | None] = mapped_column(Text)
    preview: Mapped[str | None] = mapped_column(Text)  # the body's first lines, for the DM
    recipient: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    drafted_at: Mapped[dt.datetime | None]


class GmailGrant(Base):
    """A rep's Gmail authorisation: the refresh token, encrypted (never stored in clear)."""

    __tablename__ = "gmail_grants"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[str] = mapped_column(SLACK_ID, unique=True)
    email: Mapped[str | None] = mapped_column(String(320))
    refresh_token_encrypted: Mapped[str] = mapped_column(Text)
    scopes: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class GoogleOAuthState(Base):
    """A connect link in flight: issued once, consumed once, expires."""

    __tablename__ = "google_oauth_states"

    state: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(SLACK_ID)
    # PKCE verifier (encrypted), set when the rep opens the link and Google is asked.
    code_verifier_encrypted: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[dt.datetime]
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


__all__ += ["FollowUpTrigger", "GmailGrant", "GoogleOAuthState"]


class SlackRequestReceipt(Base):
    """A Slack request already acted on, so a retry or a replay has its effect once.

    The key is a hash (of the event id, or of the signed timestamp and body), never the body
    itself: requests carry tokens and response URLs that must not be kept.
    """

    __tablename__ = "slack_request_receipts"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[dt.datetime] = mapped_column(index=True)


__all__ += ["SlackRequestReceipt"]


# --- CRM sync (issue 10; crm/ owns these tables, storage/crm.py queries them) ---


class CrmLink(Base):
    """A dealbot deal mirrored with one CRM record, and what both sides last agreed on.

    `synced` is a JSON object of the CRM's values as last seen, per synced field, as text: a
    pulled value that differs from it is a change made in the CRM since the last sync.
    """

    __tablename__ = "crm_links"
    __table_args__ = (UniqueConstraint("kind", "crm_id", name="uq_crm_links_kind_crm_id"),)

    deal_id: Mapped[int] = mapped_column(
        ForeignKey("deals.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    crm_id: Mapped[str] = mapped_column(String(64))
    url: Mapped[str | None] = mapped_column(Text)
    crm_stage: Mapped[str | None] = mapped_column(String(120))  # the CRM's own stage id
    synced: Mapped[str] = mapped_column(Text, default="{}")
    remote_modified_at: Mapped[dt.datetime | None]


class CrmPush(Base):
    """A change made in dealbot waiting to be written to the CRM: the CRM outbox.

    `key` makes enqueueing idempotent; a row is claimed (owner + lease) before it is sent and
    a row marked "sent" is never sent again.
    """

    __tablename__ = "crm_pushes"
    __table_args__ = (
        CheckConstraint("kind IN ('update', 'create', 'task', 'task_done')", name="kind"),
        CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'refused', 'superseded')", name="status"
        ),
        Index("ix_crm_pushes_status_next_attempt", "status", "next_attempt_at"),
        Index("ix_crm_pushes_deal_status", "deal_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    deal_id: Mapped[int] = mapped_column(ForeignKey("deals.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    field: Mapped[str | None] = mapped_column(String(32))  # a crm.records.SYNCED_FIELDS name
    value: Mapped[str | None] = mapped_column(Text)  # JSON
    key: Mapped[str] = mapped_column(String(200), unique=True)
    made_by: Mapped[str] = mapped_column(SLACK_ID)
    made_at: Mapped[dt.datetime]
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[dt.datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(String(120))
    lease_until: Mapped[dt.datetime | None]
    error: Mapped[str | None] = mapped_column(Text)  # the CRM's own message
    crm_result: Mapped[str | None] = mapped_column(String(120))  # e.g. the created record's id


class CrmState(Base):
    """Where the pull stands for one CRM, and what the engine must not say twice."""

    __tablename__ = "crm_state"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    cursor: Mapped[str | None] = mapped_column(Text)
    last_pull_at: Mapped[dt.datetime | None]
    last_push_at: Mapped[dt.datetime | None]
    # Set when admins were told the login was refused; cleared by the next call that works.
    login_refused_at: Mapped[dt.datetime | None]
    usage_used: Mapped[int | None] = mapped_column(Integer)
    usage_limit: Mapped[int | None] = mapped_column(Integer)


class CrmOwnerLink(Base):
    """A CRM user who can own deals, and their Slack user found by email (None: no match)."""

    __tablename__ = "crm_owners"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    crm_owner_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320))
    name: Mapped[str | None] = mapped_column(String(200))
    slack_user_id: Mapped[str | None] = mapped_column(SLACK_ID)
    reported_at: Mapped[dt.datetime | None]  # when admins were told there is no Slack match


class CrmStageLink(Base):
    """One stage of the CRM's pipeline definition and the dealbot stage it maps to."""

    __tablename__ = "crm_stages"

    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    stage_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    label: Mapped[str] = mapped_column(String(200))
    probability: Mapped[Decimal] = mapped_column(Numeric(5, 4))
    sort_order: Mapped[int] = mapped_column(Integer)
    is_closed: Mapped[bool] = mapped_column(Boolean)
    is_won: Mapped[bool] = mapped_column(Boolean)
    forecast_category: Mapped[str | None] = mapped_column(String(16))
    pipeline: Mapped[str | None] = mapped_column(String(64))
    dealbot_stage: Mapped[str] = mapped_column(String(32))


__all__ += ["CrmLink", "CrmOwnerLink", "CrmPush", "CrmStageLink", "CrmState"]
