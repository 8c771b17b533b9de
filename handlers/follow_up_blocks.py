"""Block Kit for follow-up drafts: the "draft ready" DM, connect links, and what went wrong."""

from __future__ import annotations

from collections.abc import Sequence

from slack_sdk.models.blocks import Block

from domain.follow_ups import DraftOutcome
from handlers import messages
from handlers.blocks import (
    BUTTON_VALUE_LIMIT,
    Reply,
    _actions,
    _button,
    _context,
    _section,
    escape,
    escape_name,
)

# The answers to "A discovery recap draft … was already made. Make another?": the first
# carries the `/deal followup` asked, parsed, naming the draft it follows; the second
# only says that nothing was made.
MAKE_ANOTHER_ACTION = "make_another_follow_up"
KEEP_IT_ACTION = "keep_follow_up"


def _link_or_path(link: str) -> str:
    if link.startswith(("https://", "http://")):
        return f"<{link}|Open the draft in Gmail>"
    return f"Saved as `{escape(link)}`"


def _quote(text: str) -> str:
    # An email's text is data, not Slack's: no mention, no formatting (see escape_name).
    return "\n".join("> " + escape_name(line) for line in text.splitlines() if line.strip())


def draft_ready(outcome: DraftOutcome) -> Reply:
    """Return the DM (or reply) announcing a draft: subject, first lines, a link to it."""
    what = messages.template_label(outcome.template)
    subject = outcome.subject or ""
    blocks: list[Block] = [
        _section(
            f":email: Your *{what}* draft for *{escape_name(outcome.deal_name)}* is ready.\n"
            f"*Subject:* {escape_name(subject)}"
        )
    ]
    if outcome.preview:
        blocks.append(_section(_quote(outcome.preview)))
    blocks.append(
        _section(f"{_link_or_path(outcome.link or '')} · {messages.FOLLOW_UP_NEVER_SENT}")
    )
    name = escape_name(outcome.deal_name)
    text = f"Follow-up draft ready for {name}: {escape_name(subject)}"
    return Reply(text=text, blocks=tuple(blocks))


def connect_gmail(link: str, *, deals: Sequence[str], reconnect: bool) -> Reply:
    """Return the DM asking a rep to connect (or reconnect) Gmail, with a single-use link."""
    lead = messages.GMAIL_RECONNECT if reconnect else messages.GMAIL_NOT_CONNECTED
    waiting = ""
    if deals:
        waiting = "\nDrafts waiting for: " + ", ".join(f"*{escape_name(d)}*" for d in deals[:10])
    return Reply(
        text=f"{lead} {link}",
        blocks=(
            _section(f":link: {lead} <{link}|Connect Gmail>{waiting}"),
            _context(messages.GMAIL_CONNECT_WHY),
        ),
    )


def draft_skipped(outcome: DraftOutcome, *, deal_ref: str) -> Reply:
    """Return the DM saying a draft could not be made and how to get it."""
    what = messages.template_label(outcome.template)
    problem = outcome.problem or "something is missing"
    retry = f"/deal followup {deal_ref} {outcome.template}"
    return Reply(
        text=f"No {what} draft for {escape_name(outcome.deal_name)}: {escape(problem)}.",
        blocks=(
            _section(
                f":warning: I could not draft the *{what}* email for "
                f"*{escape_name(outcome.deal_name)}*: {escape(problem)}."
            ),
            _context(
                f'Add a contact with `/deal {deal_ref} contact:"Name <name@example.com>"`, '
                f"then ask again: `{retry}`"
            ),
        ),
    )


def template_broken(template: str, problem: str) -> Reply:
    """Return the admin DM naming a broken template; no draft is made from it until fixed."""
    return Reply(
        text=f"The email template {escape(template)} is broken: {escape(problem)}",
        blocks=(
            _section(
                f":warning: The email template `{escape(template)}` is broken, so no draft was "
                f"made from it:\n```{escape(problem)}```"
            ),
            _context(
                f"Fix `templates/email/{escape(template)}.j2`; the waiting drafts are made on "
                "the next run of `draft-follow-ups`."
            ),
        ),
    )


def drafting_started(deal_name: str, template: str) -> Reply:
    """Return the reply to /deal followup while Gmail works: the link follows by DM."""
    what = messages.template_label(template)
    return Reply(
        text=f"Drafting the {what} email for {escape_name(deal_name)}…",
        blocks=(
            _section(
                f":hourglass_flowing_sand: Drafting the *{what}* email for "
                f"*{escape_name(deal_name)}*; I will DM you the link in a moment."
            ),
        ),
    )


def follow_up_problem(outcome: DraftOutcome, *, deal_ref: str) -> Reply:
    """Return the reply when an on-demand draft could not be made now."""
    if outcome.status == "skipped":
        return draft_skipped(outcome, deal_ref=deal_ref)
    if outcome.status == "template_error":
        problem = f"the template is broken ({outcome.problem}); your admin has been told"
    else:
        problem = f"{outcome.problem or 'the mail service did not answer'}; I will retry shortly"
    name = escape_name(outcome.deal_name)
    problem = escape(problem)
    return Reply(
        text=f"No draft yet for {name}: {problem}",
        blocks=(_section(f":warning: No draft yet for *{name}*: {problem}."),),
    )


def fresh_draft_question(outcome: DraftOutcome, *, value: str, window_days: int) -> Reply:
    """Return the link to a fresh draft like the one asked for, and "Make another?".

    A question, not an answer (nothing was made), so it is never shared in a channel.
    """
    question = messages.fresh_draft_question(
        messages.template_label(outcome.template),
        outcome.deal_name,
        outcome.recipient or "the same person",
        window_days,
    )
    shown: list[Block] = [
        _section(f":question: {escape_name(question)}"),
        _section(
            f"*Subject:* {escape_name(outcome.subject or '')}\n{_link_or_path(outcome.link or '')}"
        ),
    ]
    if len(value) <= BUTTON_VALUE_LIMIT:  # a template name is short; a forged one is not
        shown.append(
            _actions(
                [
                    _button(
                        messages.MAKE_ANOTHER_BUTTON,
                        action_id=MAKE_ANOTHER_ACTION,
                        value=value,
                        style="primary",
                    ),
                    _button(messages.KEEP_IT_BUTTON, action_id=KEEP_IT_ACTION, value="keep"),
                ],
                block_id="fresh_draft",
            )
        )
    return Reply(text=escape_name(question), blocks=tuple(shown), is_error=True)


def follow_up_kept() -> Reply:
    """Return the answer to "Keep it": nothing was made."""
    return Reply(
        text=messages.FOLLOW_UP_KEPT, blocks=(_section(f":ok_hand: {messages.FOLLOW_UP_KEPT}"),)
    )
