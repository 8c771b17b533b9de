"""The command table, and how a slash command becomes a Reply.

Each command is declared once, in `COMMANDS`: its name, its grammar (forms and parser) and
its runner. The table drives registration (`handlers/commands/__init__.py`), `/dealbot help`,
dispatch, and the manifest test. "Today" is resolved once per request, here, and passed to
the parser and to every domain call. A runner reads like a sentence: match the parsed
command, call one domain function, build the reply.
"""

from __future__ import annotations

import datetime as dt
import logging
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

from slack_sdk import WebClient

from domain.changes import DealRef
from domain.deals import AmbiguousMergeTarget, DuplicateDeal
from domain.errors import AmbiguousDeal, DomainError
from domain.stages import DEFAULT_SET, StageSet
from handlers import blocks, messages
from handlers.commands.grammars import deal, dealbot, nextstep, pipeline
from handlers.commands.intents import from_button_value, to_button_value
from handlers.commands.tokens import CommandSyntaxError, Forms
from handlers.commands.values import OnDeal
from handlers.follow_ups import follow_up_reply
from handlers.modals import open_modal

if TYPE_CHECKING:
    from bot.app import Services
    from domain.deals import Actor

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Invocation:
    """Who ran which command where, as Slack told us."""

    command: str
    text: str
    user_id: str
    channel_id: str | None
    trigger_id: str | None

    @classmethod
    def from_click(
        cls, body: dict[str, Any], *, command: str, text: str = "", with_trigger: bool = True
    ) -> Invocation:
        """Return the command a button runs, asked by whoever clicked it, where they did."""
        return cls(
            command=command,
            text=text,
            user_id=body["user"]["id"],
            channel_id=(body.get("channel") or {}).get("id"),
            trigger_id=body.get("trigger_id") if with_trigger else None,
        )


@dataclass(frozen=True)
class Request:
    """One command being answered: the invocation, and the asker's today, resolved once."""

    services: Services
    client: WebClient
    invocation: Invocation
    today: dt.date

    @property
    def actor(self) -> Actor:
        """Return the domain's view of who asked."""
        return self.services.actor(self.invocation.user_id)


def _default_stages() -> StageSet:
    return DEFAULT_SET


class Parser(Protocol):
    """(text, today, default currency[, the asker's stages]) -> the parsed command.

    Raises CommandSyntaxError. The stages are asked for only by a grammar that reads a
    stage (a team with its own stages costs a query); without them, dealbot's are read.
    """

    def __call__(
        self,
        text: str,
        today: dt.date,
        currency: str,
        stages: Callable[[], StageSet] = _default_stages,
        /,
    ) -> Any: ...


@dataclass(frozen=True)
class Command:
    """One slash command: its name, its forms (help lines, usage), its parser and runner."""

    name: str
    forms: Forms
    parse: Parser
    run: Callable[[Request, Any], blocks.Reply]
    # What `parse` returns: the kinds of parsed command, from the grammar's type alias. The
    # ones about a deal (`OnDeal`) are what a pick-a-deal button may carry.
    intents: tuple[type, ...] = ()

    def on_deal(self) -> tuple[type[OnDeal], ...]:
        """Return the kinds of this command that are about one deal."""
        return tuple(kind for kind in self.intents if issubclass(kind, OnDeal))


def reply_for(
    services: Services,
    client: WebClient,
    invocation: Invocation,
    *,
    intent: object | None = None,
) -> blocks.Reply:
    """Return the reply to a command, turning every refusal into a friendly private message.

    `intent` is a command a button already holds parsed (the deal card's follow-up, a
    picked deal), run as it is: a button's text is never parsed again.
    """
    try:
        command = _BY_NAME.get(invocation.command)
        if command is None:
            raise CommandSyntaxError(f"I don't know {invocation.command}.", "/dealbot help")
        today = services.deals.today_for(invocation.user_id)
        if intent is None:
            intent = command.parse(
                invocation.text,
                today,
                services.settings.dealbot_currency,
                lambda: services.teams.stages_for(invocation.user_id),
            )
        return command.run(Request(services, client, invocation, today), intent)
    except CommandSyntaxError as error:
        return blocks.error_reply(error.problem, error.usage)
    except AmbiguousDeal as error:
        if not isinstance(intent, OnDeal):  # only a command about one deal names one
            return blocks.refusal_reply(error)
        asked = intent
        return blocks.ambiguous_reply(
            error.problem,
            error.candidates,
            value_of=lambda deal_id: to_button_value(invocation.command, asked.on(deal_id)),
        )
    except DomainError as error:
        return blocks.refusal_reply(error)
    except Exception:
        # The session rolled back, so nothing was half-written; the user hears so.
        logger.exception("command %s failed", invocation.command)
        return blocks.error_reply(messages.UNEXPECTED_ERROR)


def _run_deal(request: Request, parsed: deal.DealCommand) -> blocks.Reply:
    services, today, actor = request.services, request.today, request.actor
    match parsed:
        case deal.OpenDealModal():
            opened = open_modal(
                services.in_request_client,
                request.invocation.trigger_id,
                blocks.new_deal_modal(
                    channel_id=request.invocation.channel_id,
                    stages=services.teams.stages_for(request.invocation.user_id).stages,
                ),
            )
            if not opened:
                return blocks.error_reply(messages.NEW_DEAL_FORM_DID_NOT_OPEN)
            return blocks.Reply(text=messages.OPENING_NEW_DEAL_FORM, blocks=())
        case deal.NewDeal(account=account, changes=changes):
            try:
                created = services.deals.create_deal(
                    actor, account, changes, today=today, check_duplicates=True
                )
            except DuplicateDeal as duplicate:
                existing = duplicate.existing
                create = deal.CreateAnother(DealRef(None, existing.id), account, changes)
                value = to_button_value(request.invocation.command, create)
                return blocks.duplicate_question(existing, value=value)
            return blocks.deal_created(created, today)
        case deal.CreateAnother(account=account, changes=changes):
            created = services.deals.create_deal(actor, account, changes, today=today)
            return blocks.deal_created(created, today)
        case deal.DeleteDeal(deal=ref, confirmed=False):
            asked = services.deals.deal_to_delete(actor, ref, today=today)
            confirm = deal.DeleteDeal(DealRef(None, asked.id), confirmed=True)
            value = to_button_value(request.invocation.command, confirm)
            return blocks.delete_question(asked, value=value)
        case deal.DeleteDeal(deal=ref, confirmed=True):
            return blocks.deal_deleted(services.deals.delete_deal(actor, ref, today=today))
        case deal.RestoreDeal(deal=DealRef(deal_id=int(deal_id))):
            restored = services.deals.restore_deal(actor, deal_id, today=today)
            return blocks.deal_restored(restored, today)
        case deal.MergeDeals(deal=ref, into=into):
            try:
                merged = services.deals.merge_deals(actor, ref, into, today=today)
            except AmbiguousMergeTarget as error:
                # The picker replaces the deal to merge into; the one to merge is known.
                source = DealRef(None, error.source_id)
                return blocks.ambiguous_reply(
                    error.problem,
                    error.candidates,
                    value_of=lambda deal_id: to_button_value(
                        request.invocation.command,
                        deal.MergeDeals(source, into=DealRef(None, deal_id)),
                    ),
                )
            return blocks.deal_merged(merged, today)
        case deal.UpdateDeal(deal=ref, changes=changes):
            updated = services.deals.update_deal(actor, ref, changes, today=today)
            return blocks.deal_updated(updated, today)
        case deal.CiteEvidence(deal=ref, kind=kind, source=source, reference=reference):
            cited = services.deals.cite_evidence(actor, ref, kind, source, reference, today=today)
            return blocks.evidence_cited(cited, today)
        case deal.ShowDeal(deal=ref):
            shown = services.deals.show_deal(actor, ref, today=today)
            # Shared by id, so the channel sees this deal even if the name becomes ambiguous.
            return blocks.with_share_button(
                blocks.deal_card(shown, today), command="/deal", text=f"show #{shown.id}"
            )
        case deal.CloseDeal(deal=ref, won=won, reason=reason):
            closed = services.deals.close_deal(actor, ref, won=won, reason=reason, today=today)
            # If the form cannot open, the reply's button opens it later.
            open_modal(
                services.in_request_client,
                request.invocation.trigger_id,
                blocks.post_mortem_modal(closed),
            )
            return blocks.deal_closed(closed, today)
        case deal.FollowUp(deal=ref, template=template, after=after):
            return follow_up_reply(
                services,
                request.client,
                actor,
                ref,
                template,
                today=request.today,
                after=after,
                # "Make another" carries the request, its template settled and the draft it
                # follows named, so the click drafts what the question was about.
                again_value=lambda fresh: to_button_value(
                    request.invocation.command,
                    deal.FollowUp(
                        DealRef(None, fresh.deal_id), fresh.template, after=fresh.trigger_id
                    ),
                ),
            )
        case _:
            return _help("/deal")


def _run_nextstep(request: Request, parsed: nextstep.NextStepCommand) -> blocks.Reply:
    services, today, actor = request.services, request.today, request.actor
    match parsed:
        case nextstep.AddNextStep(deal=ref, what=what, due=due, owner=owner):
            added = services.deals.add_next_step(
                actor,
                ref,
                what=what,
                due=due,
                owner_id=owner.user_id if owner else None,
                today=today,
            )
            return blocks.next_step_added(added, today)
        case nextstep.CompleteNextStep(deal=ref):
            done, step = services.deals.complete_next_step(actor, ref, today=today)
            return blocks.next_step_done(done, step, today)
        case _:
            return _help("/nextstep")


def _run_pipeline(request: Request, query: pipeline.PipelineQuery) -> blocks.Reply:
    scope = query.scope if isinstance(query.scope, str) else query.scope.user_id
    view = request.services.deals.pipeline(
        request.actor, scope=scope, team_name=query.team_name, today=request.today
    )
    invocation = request.invocation
    return blocks.with_share_button(
        blocks.pipeline_reply(view), command=invocation.command, text=invocation.text
    )


def _run_dealbot(request: Request, parsed: dealbot.DealbotCommand) -> blocks.Reply:
    actor, teams = request.actor, request.services.teams
    match parsed:
        case dealbot.TeamCreate(name=name, channel=channel, timezone=timezone, currency=currency):
            team = teams.create_team(
                actor,
                name=name,
                channel_id=channel.channel_id,
                timezone=timezone,
                currency=currency,
            )
            return blocks.team_reply(
                [team],
                heading=f"Team {team.name} created. Add people with /dealbot team add {team.name} "
                "rep @someone",
            )
        case dealbot.TeamCurrency(name=name, currency=currency):
            team = teams.set_currency(actor, name=name, currency=currency)
            return blocks.team_reply(
                [team], heading=messages.team_currency_set(team.name, currency)
            )
        case dealbot.TeamAdd(name=name, role=role, users=users):
            team, added = teams.add_members(
                actor, name=name, role=role, user_ids=[u.user_id for u in users]
            )
            heading = (
                messages.team_members_added(len(added), role, team.name)
                if added
                else messages.team_members_already_there(role, team.name)
            )
            return blocks.team_reply([team], heading=heading)
        case dealbot.TeamRemove(name=name, user=user):
            team = teams.remove_member(actor, name=name, user_id=user.user_id)
            return blocks.team_reply(
                [team], heading=messages.team_member_removed(user.user_id, team.name)
            )
        case dealbot.TeamMove(user=user, name=name):
            team = teams.move_member(actor, user_id=user.user_id, name=name)
            return blocks.team_reply(
                [team], heading=messages.team_member_moved(user.user_id, team.name)
            )
        case dealbot.TeamList():
            return blocks.team_reply(teams.list_teams())
        case dealbot.TeamQuota(
            name=name, user=user, amount=amount, period=period, currency_named=named
        ):
            team = teams.set_quota(
                actor,
                name=name,
                user_id=user.user_id,
                amount=amount,
                period=period,
                currency_named=named,
            )
            return blocks.team_reply([team], heading=f"Quota for {period} saved.")
        case dealbot.TeamShow(name=name):
            return blocks.team_standing_reply(teams.show_teams(actor, name))
        case dealbot.TeamStages(name=name, from_crm=True):
            team, stages, crm_label = teams.take_crm_stages(actor, name)
            return blocks.team_stages_reply(team, stages, taken_from=crm_label)
        case dealbot.TeamStages(name=name):
            return blocks.team_stages_reply(*teams.team_stages(actor, name))
        case _:
            return _help()


# The one list of slash commands, in the order `/dealbot help` shows them.
COMMANDS: Final[tuple[Command, ...]] = (
    Command(
        name="/deal",
        forms=deal.FORMS,
        parse=lambda text, today, currency, stages=_default_stages: deal.parse_deal(
            text, today=today, default_currency=currency, stages=stages()
        ),
        run=_run_deal,
        intents=typing.get_args(deal.DealCommand),
    ),
    Command(
        name="/nextstep",
        forms=nextstep.FORMS,
        parse=lambda text, today, currency, stages=_default_stages: nextstep.parse_nextstep(
            text, today=today
        ),
        run=_run_nextstep,
        intents=typing.get_args(nextstep.NextStepCommand),
    ),
    Command(
        name="/pipeline",
        forms=pipeline.FORMS,
        parse=lambda text, today, currency, stages=_default_stages: pipeline.parse_pipeline(text),
        run=_run_pipeline,
        intents=(pipeline.PipelineQuery,),
    ),
    Command(
        name="/dealbot",
        forms=dealbot.FORMS,
        parse=lambda text, today, currency, stages=_default_stages: dealbot.parse_dealbot(
            text, today=today, default_currency=currency
        ),
        run=_run_dealbot,
        intents=typing.get_args(dealbot.DealbotCommand),
    ),
)
_BY_NAME: Final = {command.name: command for command in COMMANDS}
_ON_DEAL: Final = {command.name: command.on_deal() for command in COMMANDS}


def picked_intent(value: str | None) -> tuple[str, OnDeal] | None:
    """Return the (command, parsed intent) a pick-a-deal button carries, or None if not ours."""
    return from_button_value(value, _ON_DEAL)


# What `/dealbot help` lists: every example of every command, from the table.
USAGE: Final[dict[str, tuple[str, ...]]] = {
    command.name: command.forms.help_lines() for command in COMMANDS
}


def _help(*names: str) -> blocks.Reply:
    """Return `/dealbot help`, or its part for `names`; the notification names every command."""
    shown = {name: USAGE[name] for name in names} if names else USAGE
    return blocks.help_reply(shown, commands=tuple(USAGE))
