"""Runs a slash command's text to a Reply; shared by the commands and the pick-a-deal buttons.

Each branch reads like a sentence: parse, call one domain function, build the reply.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_sdk import WebClient

from domain.changes import DealRef
from domain.errors import AmbiguousDeal, DomainError
from handlers import blocks, messages
from handlers.commands import parsing
from handlers.commands.parsing import CommandSyntaxError
from handlers.follow_ups import follow_up_reply
from handlers.modals import open_modal

if TYPE_CHECKING:
    from bot.app import Services

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Invocation:
    """Who ran which command where, as Slack told us."""

    command: str
    text: str
    user_id: str
    channel_id: str | None
    trigger_id: str | None


def reply_for(
    services: Services,
    client: WebClient,
    invocation: Invocation,
    *,
    deal_id: int | None = None,
) -> blocks.Reply:
    """Return the reply to a command, turning every refusal into a friendly private message.

    `deal_id` replaces the parsed deal reference: it is how a pick-a-deal button re-runs
    the command on the deal the user chose.
    """
    try:
        return _run(services, client, invocation, deal_id=deal_id)
    except CommandSyntaxError as error:
        return blocks.error_reply(error.problem, error.usage)
    except AmbiguousDeal as error:
        return blocks.ambiguous_reply(
            error.problem, error.candidates, command=invocation.command, text=invocation.text
        )
    except DomainError as error:
        return blocks.error_reply(error.problem, error.hint)
    except Exception:
        # The session rolled back, so nothing was half-written; the user hears so.
        logger.exception("command %s failed", invocation.command)
        return blocks.error_reply(messages.UNEXPECTED_ERROR)


def _run(
    services: Services, client: WebClient, invocation: Invocation, *, deal_id: int | None
) -> blocks.Reply:
    runner = _RUNNERS.get(invocation.command)
    if runner is None:
        raise CommandSyntaxError(f"I don't know {invocation.command}.", "/dealbot help")
    return runner(services, client, invocation, deal_id)


def _with_deal(parsed: Any, deal_id: int | None) -> Any:
    if deal_id is None or not hasattr(parsed, "deal"):
        return parsed
    return dataclasses.replace(parsed, deal=DealRef(name=None, deal_id=deal_id))


def _run_deal(
    services: Services, client: WebClient, invocation: Invocation, deal_id: int | None
) -> blocks.Reply:
    user_id = invocation.user_id
    today = services.deals.today_for(user_id)
    parsed = _with_deal(
        parsing.parse_deal(
            invocation.text, today=today, default_currency=services.settings.dealbot_currency
        ),
        deal_id,
    )
    actor = services.actor(user_id)
    match parsed:
        case parsing.OpenDealModal():
            opened = open_modal(
                services.in_request_client,
                invocation.trigger_id,
                blocks.new_deal_modal(channel_id=invocation.channel_id),
            )
            if not opened:
                return blocks.error_reply(messages.NEW_DEAL_FORM_DID_NOT_OPEN)
            return blocks.Reply(text=messages.OPENING_NEW_DEAL_FORM, blocks=())
        case parsing.NewDeal(account=account, changes=changes):
            return blocks.deal_created(services.deals.create_deal(actor, account, changes), today)
        case parsing.UpdateDeal(deal=ref, changes=changes):
            return blocks.deal_updated(services.deals.update_deal(actor, ref, changes), today)
        case parsing.ShowDeal(deal=ref):
            deal = services.deals.show_deal(actor, ref)
            # Shared by id, so the channel sees this deal even if the name becomes ambiguous.
            return blocks.with_share_button(
                blocks.deal_card(deal, today), command="/deal", text=f"show #{deal.id}"
            )
        case parsing.CloseDeal(deal=ref, won=won, reason=reason):
            deal = services.deals.close_deal(actor, ref, won=won, reason=reason)
            # If the form cannot open, the reply's button opens it later.
            open_modal(
                services.in_request_client, invocation.trigger_id, blocks.post_mortem_modal(deal)
            )
            return blocks.deal_closed(deal, today)
        case parsing.FollowUp(deal=ref, template=template):
            return follow_up_reply(services, client, actor, ref, template)
        case _:
            return blocks.help_reply({"/deal": parsing.USAGE["/deal"]})


def _run_nextstep(
    services: Services, client: WebClient, invocation: Invocation, deal_id: int | None
) -> blocks.Reply:
    user_id = invocation.user_id
    today = services.deals.today_for(user_id)
    parsed = _with_deal(parsing.parse_nextstep(invocation.text, today=today), deal_id)
    actor = services.actor(user_id)
    match parsed:
        case parsing.AddNextStep(deal=ref, what=what, due=due, owner=owner):
            deal = services.deals.add_next_step(
                actor, ref, what=what, due=due, owner_id=owner.user_id if owner else None
            )
            return blocks.next_step_added(deal, today)
        case parsing.CompleteNextStep(deal=ref):
            deal, step = services.deals.complete_next_step(actor, ref)
            return blocks.next_step_done(deal, step, today)
        case _:
            return blocks.help_reply({"/nextstep": parsing.USAGE["/nextstep"]})


def _run_pipeline(
    services: Services, client: WebClient, invocation: Invocation, deal_id: int | None
) -> blocks.Reply:
    query = parsing.parse_pipeline(invocation.text)
    scope = query.scope if isinstance(query.scope, str) else query.scope.user_id
    view = services.deals.pipeline(
        services.actor(invocation.user_id), scope=scope, team_name=query.team_name
    )
    return blocks.with_share_button(
        blocks.pipeline_reply(view), command=invocation.command, text=invocation.text
    )


def _run_dealbot(
    services: Services, client: WebClient, invocation: Invocation, deal_id: int | None
) -> blocks.Reply:
    today = services.deals.today_for(invocation.user_id)
    parsed = parsing.parse_dealbot(
        invocation.text, today=today, default_currency=services.settings.dealbot_currency
    )
    actor = services.actor(invocation.user_id)
    teams = services.teams
    match parsed:
        case parsing.TeamCreate(name=name, channel=channel, timezone=timezone):
            team = teams.create_team(
                actor, name=name, channel_id=channel.channel_id, timezone=timezone
            )
            return blocks.team_reply(
                [team],
                heading=f"Team {team.name} created. Add people with /dealbot team add {team.name} "
                "rep @someone",
            )
        case parsing.TeamAdd(name=name, role=role, users=users):
            team, added = teams.add_members(
                actor, name=name, role=role, user_ids=[u.user_id for u in users]
            )
            heading = (
                messages.team_members_added(len(added), role, team.name)
                if added
                else messages.team_members_already_there(role, team.name)
            )
            return blocks.team_reply([team], heading=heading)
        case parsing.TeamRemove(name=name, user=user):
            team = teams.remove_member(actor, name=name, user_id=user.user_id)
            return blocks.team_reply(
                [team], heading=messages.team_member_removed(user.user_id, team.name)
            )
        case parsing.TeamMove(user=user, name=name):
            team = teams.move_member(actor, user_id=user.user_id, name=name)
            return blocks.team_reply(
                [team], heading=messages.team_member_moved(user.user_id, team.name)
            )
        case parsing.TeamList():
            return blocks.team_reply(teams.list_teams())
        case parsing.TeamQuota(name=name, user=user, amount=amount, period=period):
            team = teams.set_quota(
                actor, name=name, user_id=user.user_id, amount=amount, period=period
            )
            return blocks.team_reply([team], heading=f"Quota for {period} saved.")
        case parsing.TeamShow(name=name):
            return blocks.team_reply(teams.show_teams(actor, name))
        case _:
            return blocks.help_reply(parsing.USAGE)


_RUNNERS = {
    "/deal": _run_deal,
    "/nextstep": _run_nextstep,
    "/pipeline": _run_pipeline,
    "/dealbot": _run_dealbot,
}
