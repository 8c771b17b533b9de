"""Teams: a channel, managers, reps, a timezone and quotas per rep and period."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from domain.clock import Clock, ZoneCache
from domain.dates import quarter_bounds, quarter_of
from domain.deals import CRM_LABELS, Actor
from domain.errors import InvalidChange, NotAllowed, Person, TeamNotFound
from domain.fx import RateBook
from domain.money import Money, is_currency_code
from domain.stages import (
    DEFAULT_SET,
    EMPTY_BOOK,
    PipelineStage,
    Stage,
    StageBook,
    StageSet,
    team_stages_from_pipeline,
    write_team_stages,
)
from domain.views import QuotaView, TeamView
from storage.crm import CrmRepository
from storage.database import Database
from storage.deals import name_key
from storage.fx import FxRepository
from storage.models import Quota, Team, TeamMember
from storage.teams import TeamRepository, WonDeal


@dataclass(frozen=True, kw_only=True)
class ExcludedDeal:
    """A won deal attainment leaves out, and why: it is listed, never silently dropped."""

    deal_id: int
    name: str
    amount: Money | None  # None: the deal was won with no amount
    reason: str  # "no_rate" (a currency without an exchange rate) or "no_amount"
    missing_rate: str | None = None  # with "no_rate": the currency `dealbot fx set` needs


@dataclass(frozen=True, kw_only=True)
class ConvertedAmount:
    """Won money counted in another currency, and the rate it was counted at."""

    original: Money  # what the deals were won in, added up when they share a rate
    converted: Money  # the same, in the attainment's currency
    rate: Decimal  # units of the attainment's currency per unit of the original
    rate_date: dt.date  # the day that rate took effect


@dataclass(frozen=True, kw_only=True)
class RepAttainment:
    """One rep's quota for the period and what they won against it.

    `won` holds one amount: in the quota's currency with a quota, else in the team's
    reporting currency. A deal won in another currency is converted at the rate of its
    close date and said so in `converted`; one whose currency has no rate is in `excluded`
    with the rate to set. `ratio` is won ÷ quota, None without a quota.
    """

    user_id: str
    quota: Money | None
    won: tuple[Money, ...]
    ratio: Decimal | None
    deal_count: int
    excluded: tuple[ExcludedDeal, ...]
    converted: tuple[ConvertedAmount, ...] = ()


@dataclass(frozen=True, kw_only=True)
class TeamStanding:
    """A team with each rep's attainment for the current period (a quarter in its zone)."""

    team: TeamView
    period: str
    first_day: dt.date
    last_day: dt.date
    reps: tuple[RepAttainment, ...]
    currency: str = "USD"  # what the team reports in: its own currency, or DEALBOT_CURRENCY


def attainment_of(
    user_id: str,
    quota: Money | None,
    won: Sequence[WonDeal],
    *,
    currency: str,
    rates: RateBook,
    zone: ZoneInfo,
) -> RepAttainment:
    """Return `user_id`'s attainment against `quota` from the deals they won in the period.

    Each deal counts in the quota's currency (without a quota, in `currency`, the team's),
    converted at the rate of its close date; a deal whose currency has no rate is listed
    as excluded, never guessed at, and never dropped without a word.
    """
    target = quota.currency if quota is not None else currency
    excluded: list[ExcludedDeal] = []
    total = Decimal(0)
    counted = 0
    # Deals converted at the same rate are said once: "incl. €140,000 at 1.08 on Tue 1 Dec".
    converted: dict[tuple[str, Decimal, dt.date], tuple[Decimal, Decimal]] = {}
    for deal in won:
        name = deal.account if not deal.title else f"{deal.account} – {deal.title}"
        if deal.amount is None:
            excluded.append(
                ExcludedDeal(deal_id=deal.id, name=name, amount=None, reason="no_amount")
            )
            continue
        money = Money(Decimal(deal.amount), deal.currency)
        day = deal.rate_day(zone)
        conversion = rates.convert(money, target, day)
        if conversion is None:
            missing = deal.currency if rates.to_base(deal.currency, day) is None else target
            excluded.append(
                ExcludedDeal(
                    deal_id=deal.id,
                    name=name,
                    amount=money,
                    reason="no_rate",
                    missing_rate=missing,
                )
            )
            continue
        total += conversion.money.amount
        counted += 1
        if conversion.rate_date is not None:
            key = (deal.currency, conversion.rate, conversion.rate_date)
            was_original, was_converted = converted.get(key, (Decimal(0), Decimal(0)))
            converted[key] = (
                was_original + money.amount,
                was_converted + conversion.money.amount,
            )
    return RepAttainment(
        user_id=user_id,
        quota=quota,
        won=(Money(total, target),) if counted or quota is not None else (),
        ratio=total / quota.amount if quota is not None and quota.amount else None,
        deal_count=counted,
        excluded=tuple(excluded),
        converted=tuple(
            ConvertedAmount(
                original=Money(original, source),
                converted=Money(amount, target),
                rate=rate,
                rate_date=rate_date,
            )
            for (source, rate, rate_date), (original, amount) in sorted(
                converted.items(), key=lambda item: (item[0][0], item[0][2])
            )
        ),
    )


class TeamService:
    def __init__(
        self,
        *,
        database: Database,
        clock: Clock,
        default_timezone: str,
        zones: ZoneCache | None = None,
        stage_book: StageBook = EMPTY_BOOK,
        base_currency: str = "USD",
        stages_dir: Path | None = None,
        crm: str | None = None,
    ) -> None:
        self.database = database
        # DEALBOT_CURRENCY: what every exchange rate is in, and a team's default currency.
        self.base_currency = base_currency
        self.stage_book = stage_book
        # Where teams' stages files live (DEALBOT_STAGES_DIR), and the connected CRM, whose
        # pipeline a team may take its stages from.
        self.stages_dir = stages_dir
        self.crm = crm
        self.clock = clock
        self.default_timezone = default_timezone
        # Shared with DealService: membership decides a user's "today".
        self.zones = zones or ZoneCache()

    def create_team(
        self,
        actor: Actor,
        *,
        name: str,
        channel_id: str,
        timezone: str | None,
        currency: str | None = None,
    ) -> TeamView:
        """Return the new team; only admins create teams.

        `currency` is the team's reporting currency; None leaves it to DEALBOT_CURRENCY, so
        a change of that setting moves the teams that never chose.
        """
        if not actor.is_admin():
            raise NotAllowed("Only a workspace admin can create teams.")
        if currency is not None and not is_currency_code(currency):
            raise InvalidChange(
                f"`{currency}` is not an ISO currency code.",
                f"/dealbot team create {_as_typed(name)} #sales currency:EUR",
            )
        with self.database.session() as session:
            teams = TeamRepository(session)
            if teams.by_name(name) is not None:
                raise InvalidChange(
                    f"A team called “{name}” already exists.", f"/dealbot team show {name}"
                )
            team = teams.add(
                Team(
                    name=name,
                    name_key=name_key(name),
                    channel_id=channel_id,
                    timezone=timezone or self.default_timezone,
                    currency=currency,
                    created_by=actor.user_id,
                    created_at=self.clock.now(),
                )
            )
            return _team_view(team)

    def add_members(
        self, actor: Actor, *, name: str, role: str, user_ids: Iterable[str]
    ) -> tuple[TeamView, tuple[str, ...]]:
        """Return the team and the users newly added in `role` (already-members are skipped).

        A manager may add to their own team only people on no team, and only as reps;
        naming managers and taking people from another team are an admin's. Everyone
        named is checked before anyone is added, so a refusal writes nothing.
        """
        wanted = tuple(dict.fromkeys(user_ids))
        with self.database.session() as session:
            teams = TeamRepository(session)
            team = self._find(teams, name)
            admin = actor.is_admin  # asked only when the rule needs it: it may ask Slack
            if not (self._manages(team, actor) or admin()):
                raise NotAllowed(f"Only {team.name}'s managers or a workspace admin can change it.")
            if role == "manager" and not admin():
                raise NotAllowed(
                    "Only a workspace admin can name managers; a manager adds reps.",
                    f"/dealbot team add {_as_typed(team.name)} rep @someone",
                )
            present = {(m.user_id, m.role) for m in team.members}
            added = [user_id for user_id in wanted if (user_id, role) not in present]
            memberships = teams.memberships_of(added)
            for user_id in added:
                elsewhere = [m for m in memberships.get(user_id, ()) if m.team_id != team.id]
                if role == "rep" and any(m.role == "rep" for m in elsewhere):
                    other = next(m for m in elsewhere if m.role == "rep").team.name
                    raise InvalidChange(
                        (
                            Person(user_id),
                            f" is already a rep in {other}, and a rep is on one team only; "
                            "an admin can move them.",
                        ),
                        ("/dealbot team move ", Person(user_id), f" {_as_typed(team.name)}"),
                    )
                if memberships.get(user_id) and not admin():
                    other = memberships[user_id][0].team.name
                    raise NotAllowed(
                        (
                            Person(user_id),
                            f" is already on {other}; a manager adds only people on no team, "
                            "and an admin can move them.",
                        ),
                        ("/dealbot team move ", Person(user_id), f" {_as_typed(team.name)}"),
                    )
            for user_id in added:
                team.members.append(TeamMember(user_id=user_id, role=role))
            session.flush()
            self.zones.clear()
            return _team_view(team), tuple(added)

    def remove_member(self, actor: Actor, *, name: str, user_id: str) -> TeamView:
        """Return the team without this user (in every role); only admins remove people."""
        with self.database.session() as session:
            teams = TeamRepository(session)
            team = self._find(teams, name)
            if not actor.is_admin():
                raise NotAllowed("Only a workspace admin can remove people from a team.")
            leaving = [m for m in team.members if m.user_id == user_id]
            if not leaving:
                raise InvalidChange(
                    (Person(user_id), f" is not on {team.name}."),
                    f"/dealbot team show {_as_typed(team.name)}",
                )
            for membership in leaving:
                team.members.remove(membership)
            session.flush()
            self.zones.clear()
            return _team_view(team)

    def move_member(self, actor: Actor, *, user_id: str, name: str) -> TeamView:
        """Return the team this user now belongs to, in the roles they had (a rep if none).

        Only admins move people: the user leaves every other team.
        """
        with self.database.session() as session:
            teams = TeamRepository(session)
            team = self._find(teams, name)
            if not actor.is_admin():
                raise NotAllowed("Only a workspace admin can move people between teams.")
            memberships = teams.memberships_of([user_id]).get(user_id, [])
            roles = {m.role for m in memberships} or {"rep"}
            for membership in memberships:
                if membership.team_id != team.id:
                    session.delete(membership)
            # The old rep row must be gone before the new one: one team per rep is a
            # unique index, checked row by row.
            session.flush()
            present = {m.role for m in team.members if m.user_id == user_id}
            for role in sorted(roles - present):
                team.members.append(TeamMember(user_id=user_id, role=role))
            session.flush()
            session.refresh(team)
            self.zones.clear()
            return _team_view(team)

    def list_teams(self) -> tuple[TeamView, ...]:
        """Return every team, by name."""
        with self.database.session() as session:
            return tuple(_team_view(team) for team in TeamRepository(session).all())

    def set_quota(
        self,
        actor: Actor,
        *,
        name: str,
        user_id: str,
        amount: Money,
        period: str,
        currency_named: bool = True,
    ) -> TeamView:
        """Return the team with the rep's quota for `period` set (replacing an earlier one).

        An amount typed without a currency (`currency_named` False) is in the team's
        reporting currency: a quota of `250k` for a team in euros is €250,000.
        """
        with self.database.session() as session:
            teams = TeamRepository(session)
            team = self._team_for_change(teams, actor, name)
            if not currency_named:
                amount = Money(amount.amount, team.currency or self.base_currency)
            if not any(m.user_id == user_id and m.role == "rep" for m in team.members):
                raise InvalidChange(
                    (Person(user_id), f" is not a rep in {team.name}."),
                    (f"/dealbot team add {team.name} rep ", Person(user_id)),
                )
            quota = teams.quota_for(team, user_id, period)
            if quota is None:
                team.quotas.append(
                    Quota(
                        user_id=user_id,
                        period=period,
                        amount=amount.amount,
                        currency=amount.currency,
                    )
                )
            else:
                quota.amount = amount.amount
                quota.currency = amount.currency
            session.flush()
            return _team_view(team)

    def set_currency(self, actor: Actor, *, name: str, currency: str) -> TeamView:
        """Return the team reporting in `currency` from now on (its managers' or an admin's)."""
        if not is_currency_code(currency):
            raise InvalidChange(
                f"`{currency}` is not an ISO currency code.",
                f"/dealbot team currency {_as_typed(name)} EUR",
            )
        with self.database.session() as session:
            teams = TeamRepository(session)
            team = self._team_for_change(teams, actor, name)
            team.currency = currency
            session.flush()
            return _team_view(team)

    def show_teams(self, actor: Actor, name: str | None) -> tuple[TeamStanding, ...]:
        """Return the named team, or the actor's teams (every team for an admin on none),
        each with its reps' quota and attainment for the quarter under way in its zone.

        Quotas and attainment are the team's business: its members (managers and reps)
        and admins see them; anyone else is refused. Someone on no team, not an admin,
        is told so rather than shown every team's figures.
        """
        with self.database.session() as session:
            teams = TeamRepository(session)
            if name:
                team = teams.by_name(name)
                if team is None:
                    raise TeamNotFound(
                        f"There is no team called “{name}”.", "/dealbot team list lists them."
                    )
                if not _is_member(team, actor) and not actor.is_admin():
                    raise NotAllowed(
                        f"Only {team.name}'s members and workspace admins can see its quotas.",
                        "/dealbot team show (your own teams)",
                    )
                shown: Sequence[Team] = (team,)
            else:
                shown = teams.teams_of(actor.user_id)
                if not shown:
                    if not actor.is_admin():
                        raise TeamNotFound(
                            "You are on no team yet, so there are no quotas to show.",
                            "/dealbot team list shows the teams; a manager or admin adds you.",
                        )
                    shown = teams.all()
            # One read of the rates per request: every rep of every team shown converts with it.
            rates = FxRepository(session).rate_book(self.base_currency)
            return tuple(self._standing(teams, team, rates) for team in shown)

    def _standing(self, teams: TeamRepository, team: Team, rates: RateBook) -> TeamStanding:
        """Return `team` with its reps' attainment for the quarter under way in its zone."""
        zone = ZoneInfo(team.timezone)
        today = self.clock.now().astimezone(zone).date()
        first, last = quarter_bounds(today)
        period = quarter_of(today)
        start = dt.datetime.combine(first, dt.time(), zone)
        end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), zone)
        view = _team_view(team)
        won: dict[str, list[WonDeal]] = {}
        for deal in teams.won_between(view.reps, start=start, end=end):
            won.setdefault(deal.owner_id, []).append(deal)
        quotas = {q.user_id: q.amount for q in view.quotas if q.period == period}
        return TeamStanding(
            team=view,
            period=period,
            first_day=first,
            last_day=last,
            currency=team.currency or self.base_currency,
            reps=tuple(
                attainment_of(
                    rep,
                    quotas.get(rep),
                    won.get(rep, ()),
                    currency=team.currency or self.base_currency,
                    rates=rates,
                    zone=zone,
                )
                for rep in view.reps
            ),
        )

    def team_stages(self, actor: Actor, name: str) -> tuple[TeamView, tuple[Stage, ...]]:
        """Return the team and its stages in order; its members and admins may see them."""
        with self.database.session() as session:
            team = self._find(TeamRepository(session), name)
            if not _is_member(team, actor) and not actor.is_admin():
                raise NotAllowed(
                    f"Only {team.name}'s members and workspace admins can see its stages.",
                    "/dealbot team show (your own teams)",
                )
            return _team_view(team), self.stage_book.for_team(team.name_key)

    def take_crm_stages(self, actor: Actor, name: str) -> tuple[TeamView, tuple[Stage, ...], str]:
        """Return the team, the stages it now has from the CRM's pipeline, and the CRM's name.

        For admins. The stages are made from the pipeline the last CRM pull stored (no call
        to the CRM while Slack waits), written to the team's file in DEALBOT_STAGES_DIR (the
        one store of a team's stages, loaded at every start) and taken into use at once. The
        team's open deals linked to the CRM take the team stage of their CRM stage, in the
        same transaction. Nothing is written on a refusal.
        """
        if not actor.is_admin():
            raise NotAllowed("Only a workspace admin can set a team's stages.")
        if self.crm is None:
            raise InvalidChange(
                "No CRM is connected, so there is no pipeline to take stages from.",
                "Set DEALBOT_CRM to salesforce or hubspot, or write the team's stages file.",
            )
        crm_label = CRM_LABELS.get(self.crm, self.crm)
        if self.stages_dir is None:
            raise InvalidChange(
                "A team's stages are kept in a file under DEALBOT_STAGES_DIR, which is not set.",
                "Set DEALBOT_STAGES_DIR to a folder dealbot may write, restart dealbot, "
                f"then run `/dealbot team stages {name} from-crm` again.",
            )
        with self.database.session() as session:
            team = self._find(TeamRepository(session), name)
            crm = CrmRepository(session)
            pipeline = [
                PipelineStage(
                    id=row.stage_id,
                    label=row.label,
                    probability=row.probability,
                    order=row.sort_order,
                    forecast_category=row.forecast_category,
                    maps_to=row.dealbot_stage,
                    pipeline=row.pipeline,
                )
                for row in crm.stages(self.crm)
            ]
            if not pipeline:
                raise InvalidChange(
                    f"dealbot has not read {crm_label}'s pipeline yet.",
                    f"Run `dealbot crm sync`, then `/dealbot team stages {name} from-crm`.",
                )
            try:
                stages = team_stages_from_pipeline(pipeline)
            except ValueError as error:  # StagesFileError too: nothing is written then
                raise InvalidChange(f"{crm_label}: {error}.") from None
            key = team.name_key
            by_crm_stage = {stage.crm_stage: stage for stage in stages}
            reps = [m.user_id for m in team.members if m.role == "rep"]
            for deal, crm_stage in crm.open_deals_in_crm_stages(self.crm, reps):
                stage = by_crm_stage.get(crm_stage)
                # Only where the CRM stage still stands for the deal's stored stage.
                if stage is not None and stage.maps_to == deal.stage:
                    deal.team_stage = f"{key}:{stage.key}"
            session.flush()
            try:
                # Last: a refused write rolls the deals back with it.
                stages = write_team_stages(self.stages_dir, key, stages, taken_from=crm_label)
            except ValueError as error:  # the file would not load again: not written
                raise InvalidChange(f"{crm_label}: {error}.") from None
            except OSError as error:
                raise InvalidChange(
                    f"Could not write {key}.yml in DEALBOT_STAGES_DIR ({error.strerror}).",
                    "Let dealbot write to that folder, then run this again.",
                ) from None
            self.stage_book.put(key, stages)
            return _team_view(team), stages, crm_label

    def stages_for(self, user_id: str) -> StageSet:
        """Return the stages this person types: their team's own, else dealbot's.

        A rep's team decides. Someone on no team as a rep (a manager) types the stages of
        the one team they manage that has its own; managing several such teams, or none,
        they type dealbot's stages, which every team's stages map to.
        """
        if not self.stage_book.teams:
            return DEFAULT_SET  # no team has its own stages: no query
        with self.database.session() as session:
            teams = TeamRepository(session)
            for team in teams.teams_of(user_id, role="rep"):
                return self.stage_book.set_for(team.name_key)
            own = [
                team.name_key
                for team in teams.teams_of(user_id, role="manager")
                if team.name_key in self.stage_book.teams
            ]
            return self.stage_book.set_for(own[0]) if len(own) == 1 else DEFAULT_SET

    @staticmethod
    def _find(teams: TeamRepository, name: str) -> Team:
        """Return the named team, or refuse with how to create it."""
        team = teams.by_name(name)
        if team is None:
            raise TeamNotFound(
                f"There is no team called “{name}”.",
                f"/dealbot team create {name} #sales tz:America/New_York",
            )
        return team

    @staticmethod
    def _manages(team: Team, actor: Actor) -> bool:
        """Return whether the actor is one of this team's managers."""
        return any(m.user_id == actor.user_id and m.role == "manager" for m in team.members)

    def _team_for_change(self, teams: TeamRepository, actor: Actor, name: str) -> Team:
        """Return the named team if the actor manages it or is an admin."""
        team = self._find(teams, name)
        if not self._manages(team, actor) and not actor.is_admin():
            raise NotAllowed(f"Only {team.name}'s managers or a workspace admin can change it.")
        return team


def _is_member(team: Team, actor: Actor) -> bool:
    """Return whether the actor is on this team, as a manager or a rep."""
    return any(m.user_id == actor.user_id for m in team.members)


def _as_typed(name: str) -> str:
    """Return a team name as a command takes it: quoted when it has spaces."""
    return f'"{name}"' if " " in name else name


def _team_view(team: Team) -> TeamView:
    return TeamView(
        id=team.id,
        name=team.name,
        channel_id=team.channel_id,
        timezone=team.timezone,
        currency=team.currency,
        managers=tuple(m.user_id for m in team.members if m.role == "manager"),
        reps=tuple(m.user_id for m in team.members if m.role == "rep"),
        quotas=tuple(
            QuotaView(
                user_id=q.user_id, period=q.period, amount=Money(Decimal(q.amount), q.currency)
            )
            for q in team.quotas
        ),
    )
