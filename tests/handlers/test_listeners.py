"""Listeners are module-level functions: a test imports one and calls it as Bolt would."""

from __future__ import annotations

from typing import Any, cast

import pytest
from slack_bolt.util.utils import get_arg_names_of_callable

from handlers import messages
from handlers.actions import draft_follow_up, pick_deal
from handlers.actions.reminders import snooze
from handlers.events import publish_home
from handlers.listeners import with_services
from handlers.views import submit_new_deal, submit_post_mortem
from handlers.views.reminders import submit_next_step


@pytest.mark.parametrize(
    ("listener", "bolt_arguments"),
    [
        (pick_deal, ["body", "action", "client", "respond"]),
        (draft_follow_up, ["body", "action", "client", "respond"]),
        (snooze, ["body", "action", "respond"]),
        (publish_home, ["event", "client"]),
        (submit_new_deal, ["ack", "body", "view", "context"]),
    ],
)
def test_bound_services_leave_bolt_the_arguments_it_fills(
    listener: Any, bolt_arguments: list[str]
) -> None:
    # Bolt passes only the arguments it reads from the signature; `services` is bound here.
    bound = with_services(listener, services=cast(Any, object()))
    assert get_arg_names_of_callable(bound) == bolt_arguments
    assert bound.__name__ == listener.__name__


class AckRecorder:
    """Stands in for Bolt's ack(): records what a submission answered Slack."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)


@pytest.mark.parametrize(
    ("listener", "field", "extra"),
    [
        (submit_post_mortem, "reason", {}),
        (submit_next_step, "what", {"context": None}),
        (submit_new_deal, "account", {"context": None}),
    ],
)
def test_a_forged_form_is_refused_before_anything_is_read(
    listener: Any, field: str, extra: dict[str, Any]
) -> None:
    ack = AckRecorder()
    view = {"state": {"values": {}}, "private_metadata": "not json"}
    # No services: a form we cannot trust must be answered without touching them.
    listener(ack=ack, body={"user": {"id": "U0ANA"}}, view=view, services=None, **extra)
    assert ack.calls == [{"response_action": "errors", "errors": {field: messages.FORM_EXPIRED}}]


def test_a_home_tab_other_than_home_publishes_nothing() -> None:
    # Neither client nor services is touched for the Messages tab.
    publish_home({"user": "U0ANA", "tab": "messages"}, client=cast(Any, None), services=None)
