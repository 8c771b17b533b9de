"""Opening modals: a trigger id lives about three seconds, so opening one may fail."""

from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.models.views import View

logger = logging.getLogger(__name__)


def open_modal(client: WebClient, trigger_id: str | None, view: View) -> bool:
    """Return whether Slack opened the modal; a refusal is logged, never raised.

    An expired trigger must not undo what the user asked for: callers say so in a
    private reply or offer a button that opens the form again.
    """
    if not trigger_id:
        return False
    try:
        client.views_open(trigger_id=trigger_id, view=view)
    except SlackApiError as error:
        logger.warning("views.open failed: %s", error.response.get("error"))
        return False
    except (SlackClientError, OSError) as error:  # a timeout or a refused connection
        logger.warning("views.open failed: %s", type(error).__name__)
        return False
    return True
