"""Button clicks: pick an ambiguous deal, open the post-mortem form, draft a follow-up (and
"Make another" / "Keep it" over a fresh one), answer a question asked before acting
(`questions`)."""

from __future__ import annotations

import json
import logging
import re
from typing import TYPE_CHECKING, Any

from slack_bolt import App, Respond
from slack_sdk import WebClient

from handlers import blocks, follow_up_blocks, messages
from handlers.actions import questions, reminders
from handlers.commands.dispatch import Invocation, picked_intent, reply_for
from handlers.commands.grammars.deal import FollowUp
from handlers.follow_ups import draft_and_dm
from handlers.listeners import (
    after_ack,
    deal_on_button,
    open_deal_form,
    respond_privately,
)

if TYPE_CHECKING:
    from bot.app import Services

logger = logging.getLogger(__name__)


def register(app: App, services: Services) -> None:
    reminders.register(app, services)
    questions.register(app, services)
    after_ack(app.action(re.compile(f"^{blocks.PICK_DEAL_ACTION}_\\d+$")), pick_deal, services)
    after_ack(app.action(blocks.SHARE_ACTION), share_in_channel, services)
    after_ack(app.action(blocks.OPEN_POST_MORTEM_ACTION), open_post_mortem, services)
    after_ack(app.action(blocks.DRAFT_FOLLOW_UP_ACTION), draft_follow_up, services)
    after_ack(app.action(follow_up_blocks.MAKE_ANOTHER_ACTION), make_another_draft, services)
    after_ack(app.action(follow_up_blocks.KEEP_IT_ACTION), keep_draft, services)


def pick_deal(
    body: dict[str, Any],
    action: dict[str, Any],
    client: WebClient,
    respond: Respond,
    *,
    services: Services,
) -> None:
    """Run the command, as it was parsed, on the deal picked among ambiguous matches.

    The button carries the parsed command (`dispatch.picked_intent`): nothing is parsed again.
    """
    picked = picked_intent(action.get("value"))
    if picked is None:
        reply = blocks.error_reply(messages.CHOICE_EXPIRED)
    else:
        command, intent = picked
        invocation = Invocation.from_click(body, command=command)
        reply = reply_for(services, client, invocation, intent=intent)
    respond_privately(respond, reply, replace_original=True)
    if reply.pending_draft is not None:  # the chosen deal's `/deal followup`
        draft_and_dm(services, client, reply.pending_draft)


def share_in_channel(
    body: dict[str, Any],
    action: dict[str, Any],
    client: WebClient,
    respond: Respond,
    *,
    services: Services,
) -> None:
    """Post a question's fresh answer in the channel, or say privately why not."""
    user_id = body["user"]["id"]
    asked = _parse_shared_command(action.get("value"))
    if asked is None:
        respond_privately(respond, blocks.error_reply(messages.BUTTON_EXPIRED))
        return
    command, text = asked
    # Asked afresh: the channel sees the pipeline as it is now, not as it was.
    invocation = Invocation.from_click(body, command=command, text=text, with_trigger=False)
    reply = reply_for(services, client, invocation)
    if reply.is_error:
        respond_privately(respond, reply)
        return
    shared = blocks.shared_reply(reply, user_id=user_id)
    posted = respond(
        response_type="in_channel",
        replace_original=False,
        text=shared.text,
        blocks=shared.block_dicts(),
    )
    if posted.status_code != 200:
        logger.warning("sharing %s failed: HTTP %s", command, posted.status_code)
        respond_privately(respond, blocks.error_reply(messages.SHARE_FAILED))


def open_post_mortem(
    body: dict[str, Any],
    action: dict[str, Any],
    client: WebClient,
    respond: Respond,
    *,
    services: Services,
) -> None:
    """Open the post-mortem form for the deal on the button, or say why it cannot open."""
    open_deal_form(body, action, client, respond, services=services, form=blocks.post_mortem_modal)


def draft_follow_up(
    body: dict[str, Any],
    action: dict[str, Any],
    client: WebClient,
    respond: Respond,
    *,
    services: Services,
) -> None:
    """Ask for a follow-up draft of the deal on the button; reply privately."""
    try:
        deal = deal_on_button(action)
    except ValueError:
        reply = blocks.error_reply(messages.FOLLOW_UP_BUTTON_EXPIRED)
    else:
        invocation = Invocation.from_click(body, command="/deal")
        # The button is the intent, `/deal followup #<id>` with the default template.
        intent = FollowUp(deal, template=None)
        reply = reply_for(services, client, invocation, intent=intent)
    respond_privately(respond, reply)
    if reply.pending_draft is not None:  # already after the ack: draft now, then DM
        draft_and_dm(services, client, reply.pending_draft)


def make_another_draft(
    body: dict[str, Any],
    action: dict[str, Any],
    client: WebClient,
    respond: Respond,
    *,
    services: Services,
) -> None:
    """Make the follow-up the rep asked for over a fresh one, in the question's place.

    The button carries `/deal followup` parsed, naming the fresh draft it follows: checked
    again as if typed now (permissions, the deal still open), and one draft however many
    times it is clicked.
    """
    picked = picked_intent(action.get("value"))
    if picked is None or not isinstance(picked[1], FollowUp) or picked[1].after is None:
        reply = blocks.error_reply(messages.FOLLOW_UP_BUTTON_EXPIRED)
    else:
        command, intent = picked
        invocation = Invocation.from_click(body, command=command, with_trigger=False)
        reply = reply_for(services, client, invocation, intent=intent)
    respond_privately(respond, reply, replace_original=True)
    if reply.pending_draft is not None:  # Gmail: draft now, after the ack, then DM
        draft_and_dm(services, client, reply.pending_draft)


def keep_draft(
    body: dict[str, Any],
    action: dict[str, Any],
    client: WebClient,
    respond: Respond,
    *,
    services: Services,
) -> None:
    """Say that no new draft was made, in the question's place."""
    respond_privately(respond, follow_up_blocks.follow_up_kept(), replace_original=True)


SHAREABLE_COMMANDS = ("/deal", "/pipeline")


def _parse_shared_command(value: str | None) -> tuple[str, str] | None:
    """Return the (command, text) a share button re-runs, or None if the value is not ours."""
    try:
        asked = json.loads(value or "")
    except json.JSONDecodeError:
        return None
    if not isinstance(asked, dict) or asked.get("command") not in SHAREABLE_COMMANDS:
        return None
    text = asked.get("text")
    # Only questions are shared: a button must never re-run a command that changes a deal.
    if not isinstance(text, str) or (asked["command"] == "/deal" and not text.startswith("show ")):
        return None
    return asked["command"], text
