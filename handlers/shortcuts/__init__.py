"""Message shortcuts: *Cite as deal evidence*, and the form it opens."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any, Final

from slack_bolt import Ack, App, BoltContext, Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from domain.changes import DealRef
from domain.errors import DomainError
from domain.evidence import EVIDENCE_KINDS, EXCERPT_LIMIT
from handlers import blocks, messages
from handlers.commands.grammars.deal import evidence_source
from handlers.listeners import after_ack, respond_privately, with_services
from handlers.modals import open_modal
from handlers.views.forms import (
    form_metadata,
    hand_over_confirmation,
    refuse_field,
    selected_value,
    send_confirmation,
)

if TYPE_CHECKING:
    from bot.app import Services

logger = logging.getLogger(__name__)
# A message's author as Slack names them; anything else in a form is not written back.
_USER_ID_RE: Final = re.compile(r"^[UW][A-Z0-9]{1,30}$")


def register(app: App, services: Services) -> None:
    after_ack(app.shortcut(blocks.CITE_EVIDENCE_SHORTCUT), open_cite_form, services)
    app.view(blocks.CITE_EVIDENCE_VIEW)(
        ack=with_services(submit_citation, services), lazy=[send_confirmation]
    )


def open_cite_form(
    body: dict[str, Any], client: WebClient, respond: Respond, *, services: Services
) -> None:
    """Return once the citation form is open on the pressed message, or the rep told why not.

    The message's link comes from Slack (chat.getPermalink), so what is cited is the message
    itself, wherever it is; its text is kept only as a short excerpt, never logged.
    """
    user_id = body["user"]["id"]
    channel_id = (body.get("channel") or {}).get("id")
    message = body.get("message") or {}
    deals = services.deals.open_deals_to_cite(services.actor(user_id))
    if not deals:
        respond_privately(respond, blocks.error_reply(messages.CITE_NO_OPEN_DEALS))
        return
    permalink = _permalink(client, channel_id, body.get("message_ts") or message.get("ts"))
    if permalink is None:
        respond_privately(respond, blocks.error_reply(messages.CITE_NO_PERMALINK))
        return
    text = message.get("text")
    excerpt = text[:EXCERPT_LIMIT] if isinstance(text, str) and text.strip() else None
    author = message.get("user")
    form = blocks.cite_evidence_modal(
        deals,
        permalink=permalink,
        excerpt=excerpt,
        channel_id=channel_id,
        author_id=author if isinstance(author, str) and _USER_ID_RE.match(author) else None,
    )
    if not open_modal(client, body.get("trigger_id"), form):
        respond_privately(respond, blocks.error_reply(messages.CITE_FORM_DID_NOT_OPEN))


def _permalink(client: WebClient, channel_id: str | None, ts: str | None) -> str | None:
    """Return the message's permalink from Slack, or None when Slack gives none."""
    if not channel_id or not ts:
        return None
    try:
        answer = client.chat_getPermalink(channel=channel_id, message_ts=ts)
    except SlackApiError as error:
        logger.warning("chat.getPermalink failed: %s", error.response.get("error"))
        return None
    except (SlackClientError, OSError) as error:
        logger.warning("chat.getPermalink failed: %s", type(error).__name__)
        return None
    permalink = answer.get("permalink")
    return permalink if isinstance(permalink, str) and evidence_source(permalink) else None


def submit_citation(
    ack: Ack,
    body: dict[str, Any],
    view: dict[str, Any],
    context: BoltContext,
    *,
    services: Services,
) -> None:
    """Ack the citation form: its errors in the form, or the citation written and confirmed."""
    user_id = body["user"]["id"]
    values = view["state"]["values"]
    metadata = form_metadata(view) or {}
    permalink = metadata.get("permalink")
    # We wrote the link when the form opened; anything else is a forged or stale form.
    if not isinstance(permalink, str) or evidence_source(permalink) != "slack":
        refuse_field(ack, "deal", messages.FORM_EXPIRED)
        return
    picked_deal = selected_value(values, "deal") or ""
    deal_id = int(picked_deal) if picked_deal.isdigit() else 0
    kind = selected_value(values, "kind") or ""
    errors: dict[str, str] = {}
    if deal_id <= 0:
        errors["deal"] = messages.PICK_A_DEAL
    if kind not in EVIDENCE_KINDS:
        errors["kind"] = messages.PICK_A_KIND
    if errors:
        ack(response_action="errors", errors=errors)
        return
    excerpt = metadata.get("excerpt")
    today = services.deals.today_for(user_id)
    try:
        cited = services.deals.cite_evidence(
            services.actor(user_id),
            DealRef(None, deal_id),
            kind,
            "slack",
            permalink,
            excerpt if isinstance(excerpt, str) else None,
            today=today,
        )
    except DomainError as error:
        refuse_field(ack, "deal", messages.refusal(error)[0])
        return
    channel_id = metadata.get("channel_id")
    author = metadata.get("author_id")
    author_id = author if isinstance(author, str) and _USER_ID_RE.match(author) else None
    hand_over_confirmation(
        context,
        blocks.evidence_cited(cited, today, author_id=author_id),
        channel_id=channel_id if isinstance(channel_id, str) else None,
    )
    ack()
