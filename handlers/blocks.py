"""Block Kit builders: one function per message or view, built with slack_sdk's models.

The models check Slack's limits offline; every message carries a plain-text fallback.
That check runs where it finds mistakes, in the tests (`validate_blocks(True)`, which the
test suite's conftest turns on). In production the plain blocks every command sends (a
section, a context line, a header, a divider) are built straight as Slack's JSON
(`BuiltBlock`): the same dicts, without an object graph built, validated and walked per
block per request, a tenth of a /pipeline's CPU. The builders keep to the limits themselves
(`SECTION_TEXT_LIMIT`, `plain_text_within`), and a test holds both ways to the same JSON.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ContextBlock,
    DatePickerElement,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from domain.changes import DealRef
from domain.dates import format_day
from domain.deals import DealMerge, EvidenceCited
from domain.errors import Candidate, DomainError
from domain.evidence import EVIDENCE_KINDS, kind_label, missing_for_commit
from domain.forecast import ExcludedDeal, ForecastDeal, RepForecast, RollUp
from domain.money import Money, format_money
from domain.stages import DEFAULT_STAGES, Stage, stage_by_key
from domain.teams import RepAttainment, TeamStanding
from domain.views import (
    ChangeView,
    DealUpdate,
    DealView,
    EvidenceView,
    HomeView,
    NextStepView,
    PipelineView,
    TeamView,
)
from handlers import messages

SECTION_TEXT_LIMIT = 2900
PIPELINE_DEALS_SHOWN = 40

# Whether builders return slack_sdk's models, validated as they become JSON (tests), or
# `BuiltBlock`s (production). See `validate_blocks`.
_validating = False


def validate_blocks(on: bool = True) -> None:
    """Have the builders return slack_sdk's models, checked against Slack's limits (tests).

    Off by default, in production: see the module's docstring.
    """
    global _validating
    _validating = on


class BuiltBlock(Block):
    """A block built as the JSON Slack gets, for when the models' validation is off.

    A `Block`, so replies hold one kind of thing; `to_dict()` returns the JSON as built
    (each reply builds its own, and nothing changes it afterwards).
    """

    def __init__(self, payload: dict[str, Any]) -> None:
        super().__init__(type=payload["type"], block_id=payload.get("block_id"))
        self.payload = payload

    def to_dict(self, *args: Any) -> dict[str, Any]:
        return self.payload

    def __repr__(self) -> str:
        return f"<BuiltBlock: {self.payload}>"


# action_id / callback_id values: the registry of interactive surfaces.
PICK_DEAL_ACTION = "pick_deal"
OPEN_POST_MORTEM_ACTION = "open_post_mortem"
DRAFT_FOLLOW_UP_ACTION = "draft_follow_up"
SHARE_ACTION = "share_in_channel"
# The answer buttons of a question asked before acting (delete a deal, create a duplicate):
# the confirm button carries the parsed command, as a pick-a-deal button does.
CONFIRM_ACTION = "confirm_deal_command"
CANCEL_ACTION = "cancel_deal_command"
# Slack caps a button's value at 2,000 characters; longer commands are not offered sharing.
BUTTON_VALUE_LIMIT = 2000
NEW_DEAL_VIEW = "new_deal"
POST_MORTEM_VIEW = "post_mortem"


@dataclass(frozen=True)
class PendingDraft:
    """A follow-up draft asked for: which trigger to draft, and the deal as the rep named it."""

    trigger_id: int
    deal: DealRef


@dataclass(frozen=True)
class Reply:
    """A message: the fallback text Slack shows in notifications, and its blocks."""

    text: str
    blocks: tuple[Block, ...]
    # A refusal or a question back (never shared in a channel).
    is_error: bool = False
    # A follow-up draft the reply promises: made after the reply has gone (Bolt's lazy
    # listener), its outcome DMed. Plain values, as Bolt deep-copies what lazy work gets.
    pending_draft: PendingDraft | None = None

    def block_dicts(self) -> list[dict[str, Any]]:
        return [block.to_dict() for block in self.blocks]


def _mrkdwn(text: str) -> MarkdownTextObject:
    return MarkdownTextObject(text=text)


def _section(text: str) -> Block:
    text = text[:SECTION_TEXT_LIMIT]
    if _validating:
        return SectionBlock(text=_mrkdwn(text))
    return BuiltBlock({"type": "section", "text": {"type": "mrkdwn", "text": text}})


def _context(text: str) -> Block:
    text = text[:SECTION_TEXT_LIMIT]
    if _validating:
        return ContextBlock(elements=[_mrkdwn(text)])
    return BuiltBlock({"type": "context", "elements": [{"type": "mrkdwn", "text": text}]})


def _header(text: str, *, emoji: bool = False) -> Block:
    """Return a header of plain text already escaped and cut to Slack's 150 characters."""
    if _validating:
        return HeaderBlock(text=PlainTextObject(text=text, emoji=emoji or None))
    plain: dict[str, Any] = {"type": "plain_text", "text": text}
    if emoji:
        plain["emoji"] = True
    return BuiltBlock({"type": "header", "text": plain})


def _divider() -> Block:
    return DividerBlock() if _validating else BuiltBlock({"type": "divider"})


def _button(text: str, *, action_id: str, value: str, style: str | None = None) -> dict[str, Any]:
    """Return a button as Slack's JSON, for `_actions` (which checks it when validating)."""
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": text, "emoji": True},
        "action_id": action_id,
        "value": value,
    }
    if style is not None:
        button["style"] = style
    return button


def _actions(buttons: Sequence[dict[str, Any]], *, block_id: str | None = None) -> Block:
    """Return an actions block of `_button`s: the chase puts one under each of its deals."""
    if _validating:
        # slack_sdk parses each button into its model, which checks Slack's limits.
        return ActionsBlock(elements=list(buttons), block_id=block_id)
    payload: dict[str, Any] = {"type": "actions", "elements": list(buttons)}
    if block_id is not None:
        payload["block_id"] = block_id
    return BuiltBlock(payload)


def _sections(lines: Iterable[str]) -> list[Block]:
    """Return sections holding `lines`, split so that none passes Slack's text limit."""
    sections: list[Block] = []
    chunk: list[str] = []
    size = 0
    for line in lines:
        if chunk and size + len(line) + 1 > SECTION_TEXT_LIMIT:
            sections.append(_section("\n".join(chunk)))
            chunk, size = [], 0
        chunk.append(line)
        size += len(line) + 1
    if chunk:
        sections.append(_section("\n".join(chunk)))
    return sections


# Mentions the parser keeps in free text (`<@U123>`, `<#C123|sales>`) stay live mentions.
_MENTION = re.compile(r"(<[@#][A-Z0-9]+(?:\|[^<>]*)?>)")


# How user text travels. The parser decodes what Slack sends (`&lt;` back to `<`), so
# the database holds exactly what the rep typed; every builder here escapes it again on
# the way out, in blocks and in the fallback `text` alike (Slack parses both).
#   - free text (next steps, reasons, criteria…): `escape`, which keeps the mentions the
#     parser put there so they still notify;
#   - names (accounts, deal titles, teams, contacts): `escape_name`, which escapes
#     everything and shows mrkdwn's formatting characters as look-alikes, because a name
#     is data: `*Acme*` must not turn bold, `_Acme_` italic, nor a backtick open code;
#   - plain_text objects (headers, buttons): `escape_plain_text`; Slack decodes the three
#     entities there too, and formatting characters mean nothing in plain text.
# Slack has no escape for `*`, `_`, `~` or a backtick, so look-alikes (no zero-width
# tricks, which the name rules refuse on the way in) are the one rule, kept here.
_MRKDWN_LOOKALIKES = str.maketrans(
    {
        "*": "\u2217",  # ∗ asterisk operator
        "_": "\u02cd",  # ˍ modifier letter low macron
        "~": "\u223c",  # ∼ tilde operator
        "`": "\u02cb",  # ˋ modifier letter grave accent
    }
)


def escape(text: str) -> str:
    """Return free text safe inside mrkdwn: `& < >` escaped, user and channel mentions kept."""
    if "&" not in text and "<" not in text and ">" not in text:
        return text  # the usual next step: nothing to escape or keep
    return "".join(
        part if _MENTION.fullmatch(part) else escape_plain_text(part)
        for part in _MENTION.split(text)
    )


def escape_name(name: str) -> str:
    """Return a name safe inside mrkdwn: `& < >` escaped, formatting shown as look-alikes."""
    return escape_plain_text(name).translate(_MRKDWN_LOOKALIKES)


def escape_plain_text(text: str) -> str:
    """Return text with Slack's three control characters as entities (`&amp;`, `&lt;`, `&gt;`)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def plain_text_within(text: str, limit: int) -> str:
    """Return `text` escaped for a plain_text object, cut (never inside an entity) to `limit`."""
    text = text[:limit]
    escaped = escape_plain_text(text)
    while len(escaped) > limit:
        # Entities make the escaped text longer; cut the text itself until it fits.
        text = text[:-1]
        escaped = escape_plain_text(text)
    return escaped


def _money(money: Money | None) -> str:
    return format_money(money) if money is not None else "no amount"


def _day(day: dt.date | None, today: dt.date) -> str:
    return format_day(day, today=today) if day is not None else "no date"


def _close_words(deal: DealView, today: dt.date) -> str:
    """Return "closes Tue 22 Dec" for an open deal; "WON on Tue 1 Dec" for a closed one,
    whose close date is the day it closed (the date it was planned for is in its history)."""
    if deal.status == "open":
        return f"closes {_day(deal.close_date, today)}"
    return f"*{deal.status.upper()}* on {_day(deal.close_date, today)}"


def _totals(totals: dict[str, Decimal]) -> str:
    if not totals:
        return "—"  # no amounts yet; a $0 would guess the team's currency
    return " + ".join(format_money(Money(amount, currency)) for currency, amount in totals.items())


def _check_labels(check_ids: Iterable[str]) -> str:
    """Return the short labels of the checks a deal fails: "single-threaded · no amount"."""
    return " · ".join(messages.check_label(c) for c in check_ids)


def _step_line(step: NextStepView, today: dt.date) -> str:
    owner = f"<@{step.owner_id}>" if step.owner_id else "no owner"
    due = _day(step.due_date, today)
    overdue = " — *overdue*" if step.due_date and step.due_date < today else ""
    return f"{escape(step.what)} ({due}, {owner}){overdue}"


def deal_line(deal: DealView, today: dt.date, *, with_owner: bool = False) -> str:
    """Return one scannable line about a deal, as pipelines and App Home list them.

    `with_owner` adds whose deal it is, for lists holding several reps' deals.
    """
    parts = [
        f"*{escape_name(deal.name)}* `#{deal.id}`",
        _money(deal.amount),
        deal.stage_label,
        _close_words(deal, today),
    ]
    if with_owner:
        parts.append(f"<@{deal.owner_id}>")
    line = " · ".join(parts)
    if deal.next_step is not None:
        line += f"\n      next: {_step_line(deal.next_step, today)}"
    if deal.attention:
        line += "\n      :warning: " + _check_labels(deal.attention)
    return line


# --- replies to commands ----------------------------------------------------------------


def error_reply(problem: str, usage: str | None = None) -> Reply:
    """Return a short private message naming what was wrong and showing the right form."""
    # Problems quote what the rep typed (decoded, like every parsed value): escaped here.
    problem = escape(problem)
    usage = escape(usage) if usage else None
    blocks: list[Block] = [_section(f":warning: {problem}")]
    if usage:
        blocks.append(_context(f"Try: `{usage}`" if "\n" not in usage else usage))
    text = problem if not usage else f"{problem} Try: {usage}"
    return Reply(text=text, blocks=tuple(blocks), is_error=True)


def refusal_reply(error: DomainError) -> Reply:
    """Return the private message for a refusal of the domain's, naming people as mentions."""
    return error_reply(*messages.refusal(error))


def ambiguous_reply(
    problem: str, candidates: Sequence[Candidate], *, value_of: Callable[[int], str]
) -> Reply:
    """Return a choice of buttons, one per candidate deal, that run the command on it.

    `value_of(deal_id)` is what the button for that deal carries: the parsed command. When
    one would pass Slack's limit on a button's value, no button is offered (a cut value
    would run something else): the candidates are listed for the rep to name one by id.
    """
    values = [value_of(candidate.deal_id) for candidate in candidates]
    problem = escape(problem)
    if any(len(value) > BUTTON_VALUE_LIMIT for value in values):
        listed = "\n".join(f"• {escape_name(candidate.label)}" for candidate in candidates)
        return Reply(
            is_error=True,
            text=f"{problem} {messages.CHOICE_TOO_LONG}",
            blocks=(
                _section(f":mag: {problem}"),
                _section(listed),
                _context(messages.CHOICE_TOO_LONG),
            ),
        )
    buttons = [
        _button(
            plain_text_within(candidate.label, 75),
            action_id=f"{PICK_DEAL_ACTION}_{index}",
            value=value,
        )
        for index, (candidate, value) in enumerate(zip(candidates, values, strict=True))
    ]
    return Reply(
        is_error=True,
        text=f"{problem} {messages.PICK_ONE}",
        blocks=(
            _section(f":mag: {problem}"),
            _actions(buttons, block_id="pick_deal"),
            _context(messages.PICK_ONE),
        ),
    )


def with_share_button(reply: Reply, *, command: str, text: str) -> Reply:
    """Return `reply` with a button that posts the same answer, fresh, to the channel."""
    value = json.dumps({"command": command, "text": text})
    if len(value) > BUTTON_VALUE_LIMIT or len(reply.blocks) >= 50:
        return reply
    button = _button("Share in channel", action_id=SHARE_ACTION, value=value)
    return Reply(text=reply.text, blocks=(*reply.blocks, _actions([button])))


def shared_reply(reply: Reply, *, user_id: str) -> Reply:
    """Return `reply` as posted to a channel: who shared it, and no buttons of the sharer's."""
    # By type: in production an actions block is a `BuiltBlock`, not slack_sdk's model.
    kept = tuple(block for block in reply.blocks if block.type != "actions")
    return Reply(text=reply.text, blocks=(*kept[:49], _context(messages.shared_by(user_id))))


def deal_card(deal: DealView, today: dt.date, *, heading: str | None = None) -> Reply:
    """Return the full picture of a deal: numbers, evidence, people, next step, history."""
    heading = plain_text_within(heading or deal.name, 150)
    crm = _CrmMarks.of(deal)
    summary = (
        f"*{escape_name(deal.name)}* `#{deal.id}`{crm.mark('title', 'account')}\n"
        f"{_money(deal.amount)}{crm.mark('amount', 'currency')} · "
        f"{deal.stage_label}{crm.mark('stage')} · "
        f"{_close_words(deal, today)}{crm.mark('close_date')} · "
        f"{messages.FORECAST_LABELS.get(deal.forecast_category, deal.forecast_category)}"
        f"{crm.mark('forecast_category')} · "
        f"owner <@{deal.owner_id}>{crm.mark('owner')}"
    )
    blocks: list[Block] = [_header(heading), _section(summary)]
    if crm.link is not None:
        blocks.append(_context(crm.link))
    evidence = [
        ("Buying criteria", deal.buying_criteria),
        ("Buying process", deal.buying_process),
        ("Paper process", deal.paper_process),
        ("Pain", deal.pain),
        ("Metrics", deal.metrics),
        ("Competition", deal.competition),
    ]
    evidence_lines = [f"*{label}:* {escape(value)}" for label, value in evidence if value]
    people = [_contact_line(c) for c in deal.contacts]
    if evidence_lines:
        blocks.extend(_sections(evidence_lines))
    if people:
        blocks.extend(_sections(people))
    blocks.extend(_evidence_blocks(deal, today))
    if deal.next_step is not None:
        step = _step_line(deal.next_step, today)
        blocks.append(_section(f"*Next step:* {step}{crm.mark('next_step')}"))
    elif deal.status == "open":
        blocks.append(
            _section(f"*Next step:* none yet — `/nextstep {_ref(deal)} <what> due:<date>`")
        )
    if crm.unshown:
        blocks.append(_context(crm.unshown))
    if deal.attention:
        blocks.append(_context(f":warning: {_check_labels(deal.attention)}"))
    if deal.post_mortem is not None:
        pm = deal.post_mortem
        lines = [f"*Post-mortem ({pm.outcome}):* {escape(pm.primary_reason)}"]
        if pm.competitor:
            lines.append(f"*Competitor:* {escape(pm.competitor)}")
        if pm.lessons:
            lines.append(f"*Lessons:* {escape(pm.lessons)}")
        blocks.extend(_sections(lines))
    elif deal.close_reason:
        blocks.append(_section(f"*Reason:* {escape(deal.close_reason)}"))
    if deal.history:
        blocks.append(_context(_history_text(deal, today)))
    if deal.status == "open":
        blocks = blocks[:49]
        blocks.append(
            _actions(
                [
                    _button(
                        "Draft follow-up email",
                        action_id=DRAFT_FOLLOW_UP_ACTION,
                        value=str(deal.id),
                    )
                ],
                block_id="deal_actions",
            )
        )
    closes = _close_words(deal, today)
    text = f"{escape_name(deal.name)}: {_money(deal.amount)}, {deal.stage_label}, {closes}"
    return Reply(text=text, blocks=tuple(blocks[:50]))


# The deal fields the card shows inline; a field `not_in_crm` names that is not among them
# (a CRM-only one a later engine adds) is still listed, on a line of its own.
_CARD_CRM_FIELDS = frozenset(
    {
        "title",
        "account",
        "amount",
        "currency",
        "stage",
        "close_date",
        "forecast_category",
        "owner",
        "next_step",
    }
)
_SAFE_URL = re.compile(r"https?://[^\s<>|]+")


@dataclass(frozen=True)
class _CrmMarks:
    """How a deal card shows the connected CRM: the record's link, and unsynced fields.

    A field whose change the CRM has not taken yet (pending or refused) is marked where the
    card shows it, so a rep never reads a value as the CRM's when it is only dealbot's.
    """

    crm: str | None
    link: str | None
    pending: frozenset[str]

    @classmethod
    def of(cls, deal: DealView) -> _CrmMarks:
        # getattr: DealView gains these with CRM sync; a card built before then has none.
        crm = getattr(deal, "crm_label", None)
        url = getattr(deal, "crm_url", None)
        pending = frozenset(getattr(deal, "not_in_crm", ()) or ()) if crm else frozenset()
        link = None
        if crm and url and _SAFE_URL.fullmatch(url):
            # A CRM-supplied URL goes into mrkdwn: only a plain http(s) URL is linked.
            link = f":link: <{url}|{escape_plain_text(messages.open_in_crm(crm))}>"
        return cls(crm=crm, link=link, pending=pending)

    def mark(self, *fields: str) -> str:
        if self.crm is None or not self.pending.intersection(fields):
            return ""
        return f" _({escape_plain_text(messages.not_in_crm_yet(self.crm))})_"

    @property
    def unshown(self) -> str | None:
        rest = sorted(self.pending - _CARD_CRM_FIELDS)
        if self.crm is None or not rest:
            return None
        fields = escape_name(messages.crm_fields_phrase(tuple(rest)).capitalize())
        return f":hourglass: {fields}: {messages.not_in_crm_yet(self.crm)}"


def _contact_line(contact: Any) -> str:
    who = escape_name(contact.name or "")
    if contact.slack_user_id:
        who = f"<@{contact.slack_user_id}>"
    if contact.email:
        email = escape_plain_text(contact.email)
        who = f"{who} <mailto:{email}|{escape_name(contact.email)}>".strip()
    return f"*{messages.CONTACT_ROLE_LABELS.get(contact.role, 'Contact')}:* {who}"


def _history_text(deal: DealView, today: dt.date) -> str:
    changes = [c for c in deal.history if c.old_value is not None][-6:]
    pushes = f"Close date pushed {deal.close_date_pushes}×. " if deal.close_date_pushes else ""
    if not changes:
        return pushes + "No changes since it was created."
    lines = [
        f"{messages.HISTORY_FIELD_LABELS.get(c.field, c.field)}: "
        f"{_history_value(c.field, c.old_value)} → {_history_value(c.field, c.new_value)} "
        f"({_changed_by(c)}, {format_day(c.changed_at.date(), today=today)})"
        for c in changes
    ]
    return pushes + "Recent changes: " + "; ".join(lines)


def _history_value(field: str, value: str | None) -> str:
    """Return one side of a kept change as the card shows it: escaped, an owner a mention."""
    if value is None:
        return "—"
    return f"<@{value}>" if field == "owner" else escape(value)


_SLACK_USER = re.compile(r"[UW][A-Z0-9]{1,30}")


def _changed_by(change: ChangeView) -> str:
    """Return who made a kept change: a mention, and where when it came from a CRM or import."""
    who = f"<@{change.changed_by}>" if _SLACK_USER.fullmatch(change.changed_by) else ""
    if change.source is None:
        return who or escape(change.changed_by)
    return messages.changed_in(who, change.source)


def _ref(deal: DealView) -> str:
    return f"#{deal.id}"


def deal_created(deal: DealView, today: dt.date) -> Reply:
    card = deal_card(deal, today, heading=f"New deal: {deal.name}")
    held = _commit_held(deal)
    if held is None:
        return Reply(text=f"Created {card.text}", blocks=card.blocks)
    return Reply(
        text=f"Created {card.text}\n{held}",
        blocks=(*card.blocks, _context(f":warning: {held}")),
    )


def deal_updated(update: DealUpdate, today: dt.date) -> Reply:
    """Return "Saved" with each field that changed, old → new, and the deal's line."""
    deal = update.deal
    if not update.changes:
        changed = messages.NOTHING_CHANGED
    else:
        changed = "Saved: " + "; ".join(
            messages.field_changed(
                messages.CHANGED_FIELD_LABELS.get(c.field, c.field),
                _changed_value(c.field, c.old, today),
                _changed_value(c.field, c.new, today),
            )
            + (f" ({messages.STAGE_FORECAST_DEFAULT})" if c.by_stage_default else "")
            for c in update.changes
        )
    blocks: list[Block] = [
        _section(f":white_check_mark: {changed}"),
        _section(deal_line(deal, today)),
    ]
    held = _commit_held(deal)
    warning = held or _commit_warning(deal)
    if warning is not None:
        blocks.append(_context(f":warning: {warning}"))
    # The notification text says a held forecast too: the rep asked for a stage, not this.
    text = f"{escape_name(deal.name)}: {changed}" + (f" {held}" if held else "")
    return Reply(text=text, blocks=tuple(blocks))


_CHANGED_VALUE_LIMIT = 60
_USER_ID = re.compile(r"@[UW][A-Z0-9]{1,30}")
_QUOTED_FIELDS = frozenset(
    {"title", "account", "buying_criteria", "buying_process", "paper_process", "pain", "metrics"}
    | {"competition"}
)


def _changed_value(field: str, value: str | None, today: dt.date) -> str:
    """Return one side of an old → new, as the rep would write it: a day, money, a mention."""
    if value is None or not value.strip():
        return "—"
    if field == "owner":
        return f"<@{value}>"
    if field == "forecast_category":
        return messages.FORECAST_LABELS.get(value, value).lower()
    if field == "close_date":
        return format_day(dt.date.fromisoformat(value), today=today)
    if field == "amount":
        amount, _, currency = value.partition(" ")
        return format_money(Money(Decimal(amount), currency))
    if field in ("economic_buyer", "champion") and _USER_ID.fullmatch(value):
        return f"<{value}>"  # the domain's `@U123`: a person with only a Slack account
    shown = " ".join(value.split())
    if len(shown) > _CHANGED_VALUE_LIMIT:
        shown = shown[: _CHANGED_VALUE_LIMIT - 1] + "…"
    # Free text is quoted, so where one value ends and the arrow starts is plain.
    return f"“{escape(shown)}”" if field in _QUOTED_FIELDS else escape(shown)


def deal_closed(deal: DealView, today: dt.date) -> Reply:
    icon = ":trophy:" if deal.status == "won" else ":black_flag:"
    text = f"{escape_name(deal.name)} is closed {deal.status} ({_money(deal.amount)})."
    return Reply(
        text=text,
        blocks=(
            _section(
                f"{icon} *{escape_name(deal.name)}* is closed *{deal.status}* "
                f"({_money(deal.amount)})."
            ),
            _context(messages.POST_MORTEM_PROMPT),
            _actions(
                [
                    _button(
                        "Write post-mortem",
                        action_id=OPEN_POST_MORTEM_ACTION,
                        value=str(deal.id),
                    )
                ]
            ),
        ),
    )


def next_step_added(deal: DealView, today: dt.date) -> Reply:
    step = deal.next_step
    line = _step_line(step, today) if step else ""
    return Reply(
        text=f"Next step for {escape_name(deal.name)}: {line}",
        blocks=(
            _section(f":white_check_mark: Next step for *{escape_name(deal.name)}*: {line}"),
            _context(f"Mark it done with `/nextstep done {_ref(deal)}`."),
        ),
    )


def next_step_done(deal: DealView, step: NextStepView, today: dt.date) -> Reply:
    following = (
        f"Next up: {_step_line(deal.next_step, today)}"
        if deal.next_step
        else f"No next step left: what happens next? `/nextstep {_ref(deal)} <what> due:<date>`"
    )
    return Reply(
        text=f"Done: {escape(step.what)} ({escape_name(deal.name)})",
        blocks=(
            _section(
                f":ballot_box_with_check: Done: ~{escape(step.what)}~ — *{escape_name(deal.name)}*"
            ),
            _context(following),
        ),
    )


# How many deals a roll-up names under "at risk" and "not counted" before "…and N more".
ROLL_UP_DEALS_SHOWN = 5
# A rate through the base (USD → EUR at 1 ÷ 1.20) has no end; four places say it well enough.
_RATE_SHOWN = Decimal("0.0001")


def _share(ratio: Decimal | None) -> str:
    return "—" if ratio is None else _percent(ratio)


def _times(ratio: Decimal | None) -> str:
    # Half up, as people round: 0.65 reads 0.7×, not Python's banker's 0.6×.
    return "—" if ratio is None else f"{ratio.quantize(Decimal('0.1'), ROUND_HALF_UP)}×"


def forecast_line(forecast: RepForecast, label: str) -> str:
    """Return one roll-up line: the quarter's won, commit, best case and pipeline vs quota."""
    line = (
        f"{label}: won *{format_money(forecast.won)}* · commit *{format_money(forecast.commit)}*"
        f" · best case *{format_money(forecast.best_case)}*"
        f" · pipeline *{format_money(forecast.pipeline)}*"
    )
    if forecast.quota is None:
        line += "\n      no quota set"
    else:
        line += (
            f"\n      quota {format_money(forecast.quota)} · attainment "
            f"*{_share(forecast.attainment)}* · coverage *{_times(forecast.coverage)}*"
        )
    if forecast.at_risk_deals:
        count = len(forecast.at_risk_deals)
        line += (
            f" · :warning: at risk *{format_money(forecast.at_risk)}* "
            f"({count} deal{'s' if count != 1 else ''})"
        )
    return line


def _converted(deal: ForecastDeal) -> str:
    if deal.converted is None:
        return ""
    if deal.amount is not None and deal.amount.currency != deal.converted.currency:
        return f" {format_money(deal.amount)} ≈ {format_money(deal.converted)}"
    return f" {format_money(deal.converted)}"


def at_risk_lines(deals: Sequence[ForecastDeal]) -> list[str]:
    """Return the deals at risk, largest first, each with the checks it fails."""
    lines = [
        f"• *{escape_name(deal.name)}*{_converted(deal)} (<@{deal.owner_id}>): "
        f"{_check_labels(deal.checks)}"
        for deal in deals[:ROLL_UP_DEALS_SHOWN]
    ]
    if len(deals) > ROLL_UP_DEALS_SHOWN:
        lines.append(f"• …and {len(deals) - ROLL_UP_DEALS_SHOWN} more")
    return lines


def excluded_lines(excluded: Sequence[ExcludedDeal]) -> list[str]:
    """Return the deals no total counts, each with why and how to count it."""
    lines = []
    for deal in excluded[:ROLL_UP_DEALS_SHOWN]:
        amount = f" {format_money(deal.amount)}" if deal.amount is not None else ""
        # A quota left out names its rep as a mention; a deal's name is data.
        name = f"quota of <@{deal.quota_of}>" if deal.quota_of else escape_name(deal.name)
        lines.append(f"• *{name}*{amount}: {escape(deal.reason)}")
    if len(excluded) > ROLL_UP_DEALS_SHOWN:
        lines.append(f"• …and {len(excluded) - ROLL_UP_DEALS_SHOWN} more")
    return lines


def conversion_line(roll_up: RollUp) -> str:
    """Return how the totals were converted: the reporting currency and each rate used."""
    if not roll_up.rates_used:
        return f"Totals in {roll_up.currency}; no deal counted needed converting."
    rates = ", ".join(
        f"1 {currency} = {rate.quantize(_RATE_SHOWN).normalize():f} {roll_up.currency}"
        + (f" (rate of {format_day(day)} {day.year})" if day is not None else "")
        for currency, rate, day in roll_up.rates_used
    )
    return (
        f"Totals in {roll_up.currency}, each deal converted at the rate of its close date "
        f"(`dealbot fx`): {rates}."
    )


def roll_up_blocks(roll_up: RollUp, *, rep_lines: bool = True) -> list[Block]:
    """Return the roll-up as a forecast call reads it: per rep, the team, at risk, left out."""
    team = roll_up.team
    lines: list[str] = []
    if rep_lines:
        lines += [forecast_line(rep, f"<@{rep.rep_id}>") for rep in roll_up.reps]
    if len(roll_up.reps) != 1 or not rep_lines:
        lines.append(forecast_line(team, "*Team*"))
    blocks = [_section(f"*{roll_up.period} forecast · {roll_up.currency}*"), *_sections(lines)]
    if team.at_risk_deals:
        blocks.extend(
            _sections(
                [
                    f":warning: *At risk: {format_money(team.at_risk)}* — commit and best "
                    "case on deals failing a check",
                    *at_risk_lines(team.at_risk_deals),
                ]
            )
        )
    if roll_up.excluded:
        blocks.extend(
            _sections(
                [
                    f"*Not in these totals ({len(roll_up.excluded)})*",
                    *excluded_lines(roll_up.excluded),
                ]
            )
        )
    blocks.append(_context(conversion_line(roll_up)))
    return blocks


def pipeline_reply(view: PipelineView) -> Reply:
    """Return the pipeline: totals, weighted totals, each open deal, and what needs attention."""
    teams = tuple(escape_name(name) for name in view.team_names)
    title = messages.pipeline_title(view.scope, user_id=view.user_id, teams=teams)
    heading = messages.pipeline_title(view.scope, user_id=view.user_id, teams=view.team_names)
    today = view.today
    totals = (
        f"{len(view.deals)} open · total {_totals(view.totals)}"
        f" · weighted {_totals(view.weighted_totals)}"
    )
    blocks: list[Block] = [_header(plain_text_within(heading, 150))]
    for roll_up in view.roll_ups:
        if view.scope == "team" and len(view.roll_ups) > 1:
            blocks.append(_context(f"*{escape_name(roll_up.team_name)}*"))
        blocks.extend(roll_up_blocks(roll_up))
    if view.roll_ups:
        blocks.append(_divider())
    blocks.append(_context(totals))
    if not view.deals:
        blocks.append(_section(messages.NO_OPEN_DEALS))
        return Reply(text=f"{title}: no open deals", blocks=tuple(blocks))
    shown = view.deals[:PIPELINE_DEALS_SHOWN]
    # A team's pipeline is several reps' deals: each line says whose it is.
    blocks.extend(
        _sections(deal_line(deal, today, with_owner=view.scope == "team") for deal in shown)
    )
    if len(view.deals) > len(shown):
        blocks.append(_context(f"…and {len(view.deals) - len(shown)} more."))
    blocks.append(_divider())
    attention = view.needing_attention
    if attention:
        lines = [
            f"• *{escape_name(d.name)}*: {_check_labels(d.attention)}"
            for d in attention[:PIPELINE_DEALS_SHOWN]
        ]
        blocks.append(_section(f"*Needs attention ({len(attention)})*"))
        blocks.extend(_sections(lines))
    else:
        blocks.append(_section(messages.NOTHING_NEEDS_ATTENTION))
    return Reply(text=f"{title}: {totals}", blocks=tuple(blocks[:50]))


def help_reply(usage: dict[str, Sequence[str]], *, commands: Sequence[str] | None = None) -> Reply:
    """Return help showing `usage`; the notification names `commands` (by default, usage's)."""
    lines = [messages.HELP_INTRO]
    for command, examples in usage.items():
        lines.append(f"*{command}*\n" + "\n".join(f"`{example}`" for example in examples))
    if "/deal" in usage or "/nextstep" in usage:
        lines.append(messages.date_help())
    return Reply(
        text=messages.help_text(tuple(usage) if commands is None else commands),
        blocks=(*_sections(lines), _context(messages.HELP_REFERENCES)),
    )


def team_reply(teams: Sequence[TeamView], *, heading: str | None = None) -> Reply:
    if not teams:
        return Reply(
            text="No teams yet.",
            blocks=(
                _section(
                    "No teams yet. An admin creates one with "
                    "`/dealbot team create <name> <#channel>`."
                ),
            ),
        )
    lines = []
    for team in teams:
        managers = " ".join(f"<@{m}>" for m in team.managers) or "none"
        reps = " ".join(f"<@{r}>" for r in team.reps) or "none"
        quotas = ", ".join(
            f"<@{q.user_id}> {format_money(q.amount)} ({q.period})" for q in team.quotas
        )
        currency = f" · {team.currency}" if team.currency else ""
        line = (
            f"*{escape_name(team.name)}* · <#{team.channel_id}> · {team.timezone}{currency}\n"
            f"Managers: {managers}\nReps: {reps}"
        )
        if quotas:
            line += f"\nQuotas: {quotas}"
        lines.append(line)
    blocks: list[Block] = []
    if heading:
        blocks.append(_section(f":white_check_mark: {escape(heading)}"))
    blocks.extend(_sections(lines))
    text = escape(heading) if heading else f"{len(teams)} team(s)"
    return Reply(text=text, blocks=tuple(blocks))


def _percent(ratio: Decimal) -> str:
    """Return a ratio as a whole percentage, half up: 0.125 → `13%`."""
    return f"{(ratio * 100).quantize(Decimal(1), rounding=ROUND_HALF_UP)}%"


def _team_header(team: TeamView) -> str:
    managers = " ".join(f"<@{m}>" for m in team.managers) or "none"
    return (
        f"*{escape_name(team.name)}* · <#{team.channel_id}> · {team.timezone}\nManagers: {managers}"
    )


def _rate(rate: Decimal) -> str:
    """Return an exchange rate as people quote one: `1.08`, a cross rate to 4 places."""
    exponent = rate.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -4:
        rate = rate.quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    return f"{rate.normalize():f}"


def _attainment_lines(rep: RepAttainment, period: str) -> list[str]:
    """Return a rep's line, then one per won deal left out of their attainment."""
    converted = [
        messages.converted_amount(format_money(c.original), _rate(c.rate), format_day(c.rate_date))
        for c in rep.converted
    ]
    if rep.quota is None:
        line = messages.rep_without_quota(
            rep.user_id, period, [format_money(m) for m in rep.won], rep.deal_count, converted
        )
    else:
        percent = _percent(rep.ratio) if rep.ratio is not None else "n/a"
        line = messages.rep_attainment(
            rep.user_id,
            format_money(rep.won[0]),
            format_money(rep.quota),
            percent,
            rep.deal_count,
            converted,
        )
    lines = [f"• {line}"]
    for deal in rep.excluded:
        amount = format_money(deal.amount) if deal.amount is not None else None
        lines.append(
            "      :warning: "
            + messages.deal_excluded(
                escape_name(deal.name), deal.deal_id, amount, deal.missing_rate
            )
        )
    return lines


def team_standing_reply(standings: Sequence[TeamStanding]) -> Reply:
    """Return `/dealbot team show`: each team, and each rep's quota and attainment."""
    if not standings:
        return team_reply(())
    lines: list[str] = []
    for standing in standings:
        if lines:
            lines.append("")
        lines.append(_team_header(standing.team))
        lines.append(
            messages.team_currency(standing.currency, chosen=standing.team.currency is not None)
        )
        lines.append(
            messages.attainment_heading(
                standing.period, format_day(standing.first_day), format_day(standing.last_day)
            )
        )
        if not standing.reps:
            lines.append(messages.NO_REPS)
        for rep in standing.reps:
            lines.extend(_attainment_lines(rep, standing.period))
    text = ", ".join(f"{escape_name(s.team.name)} ({s.period})" for s in standings)
    return Reply(text=text, blocks=tuple(_sections(lines)))


def team_stages_reply(
    team: TeamView, stages: Sequence[Stage], *, taken_from: str | None = None
) -> Reply:
    """Return `/dealbot team stages`: the team's stages in order, with what each asks.

    With `taken_from` (a CRM's name), the team just took them from that CRM's pipeline.
    """
    name = escape_name(team.name)
    lines = [] if taken_from is None else [messages.team_stages_from_crm(name, taken_from)]
    lines.append(messages.team_stages_heading(escape_name(team.name), len(stages)))
    for stage in sorted(stages, key=lambda s: s.order):
        lines.append(
            messages.stage_line(
                stage.order,
                escape_name(stage.label),
                stage.key,
                _percent(stage.probability),
                messages.FORECAST_LABELS.get(stage.forecast_default, stage.forecast_default),
                stage.exit_criteria,
                stage_by_key(stage.maps_to).label if stage.maps_to else None,
            )
        )
    text = f"{escape_name(team.name)}: {len(stages)} stages"
    return Reply(text=text, blocks=tuple(_sections(lines)))


# --- views --------------------------------------------------------------------------------


def new_deal_modal(*, channel_id: str | None, stages: Sequence[Stage] = DEFAULT_STAGES) -> View:
    """Return the modal `/deal` opens: the same fields as `/deal new`, in a form.

    `stages` are the ones the rep types (their team's own, else dealbot's): the form offers
    what `/deal new … stage:` would take from them, keyed as they type it.
    """
    stage_options = [
        Option(text=stage.label, value=stage.key)
        for stage in sorted(stages, key=lambda s: s.order)
        if not stage.is_closed
    ]
    forecast_options = [
        Option(text=label, value=key) for key, label in messages.FORECAST_LABELS.items()
    ]
    return View(
        type="modal",
        callback_id=NEW_DEAL_VIEW,
        title="New deal",
        submit="Create",
        close="Cancel",
        private_metadata=json.dumps({"channel_id": channel_id}),
        blocks=[
            InputBlock(
                block_id="account",
                label="Account",
                element=PlainTextInputElement(
                    action_id="value", max_length=200, placeholder="Initech"
                ),
            ),
            InputBlock(
                block_id="amount",
                label="Amount",
                optional=True,
                element=PlainTextInputElement(action_id="value", placeholder="50k, $1.2M, €40,000"),
            ),
            InputBlock(
                block_id="stage",
                label="Stage",
                optional=True,
                element=StaticSelectElement(
                    action_id="value", options=stage_options, initial_option=stage_options[0]
                ),
            ),
            InputBlock(
                block_id="close_date",
                label="Close date",
                optional=True,
                element=DatePickerElement(action_id="value"),
            ),
            InputBlock(
                block_id="forecast",
                label="Forecast category",
                optional=True,
                element=StaticSelectElement(
                    action_id="value", options=forecast_options, initial_option=forecast_options[0]
                ),
            ),
        ],
    )


def post_mortem_modal(deal: DealView) -> View:
    """Return the short post-mortem form a closed deal asks for."""
    return View(
        type="modal",
        callback_id=POST_MORTEM_VIEW,
        title="Post-mortem",
        submit="Save",
        close="Later",
        private_metadata=json.dumps({"deal_id": deal.id}),
        blocks=[
            _section(f"*{escape_name(deal.name)}* — closed *{deal.status}*. What decided it?"),
            InputBlock(
                block_id="reason",
                label="Primary reason",
                element=PlainTextInputElement(
                    action_id="value",
                    max_length=500,
                    initial_value=deal.close_reason or None,
                    placeholder="e.g. champion left, price, timing",
                ),
            ),
            InputBlock(
                block_id="competitor",
                label="Competitor",
                optional=True,
                element=PlainTextInputElement(action_id="value", max_length=200),
            ),
            InputBlock(
                block_id="lessons",
                label="Lessons",
                optional=True,
                element=PlainTextInputElement(action_id="value", multiline=True, max_length=2000),
            ),
        ],
    )


def home_view(home: HomeView) -> View:
    """Return the App Home: my open deals, my overdue next steps, my accuracy score."""
    today = home.today
    score = f"{home.accuracy_score * 100:.0f}%" if home.accuracy_score is not None else "—"
    blocks: list[Block] = [
        # A header given as a string is plain text with emoji on, as Slack's models make it.
        _header("Your pipeline", emoji=True),
        _context(f"Accuracy score: *{score}* · {len(home.open_deals)} open deal(s)"),
    ]
    if home.overdue_steps:
        blocks.append(_section("*Overdue next steps*"))
        blocks.extend(
            _sections(
                f"• *{escape_name(name)}*: {_step_line(step, today)}"
                for step, name in home.overdue_steps
            )
        )
    if home.open_deals:
        blocks.append(_section("*Open deals*"))
        blocks.extend(
            _sections(deal_line(d, today) for d in home.open_deals[:PIPELINE_DEALS_SHOWN])
        )
        attention = [d for d in home.open_deals if d.needs_attention]
        if attention:
            blocks.append(_divider())
            blocks.append(_section(f"*Needs attention ({len(attention)})*"))
            blocks.extend(
                _sections(
                    f"• *{escape_name(d.name)}*: {_check_labels(d.attention)}"
                    for d in attention[:PIPELINE_DEALS_SHOWN]
                )
            )
    else:
        blocks.append(_section(messages.NO_OPEN_DEALS))
    return View(type="home", blocks=blocks[:100])


# --- CRM sync notices (DMs) ---------------------------------------------------------------
# Everything here but the CRM's label comes from the CRM: names through `escape_name`, its
# messages and emails through `escape_plain_text`, so nothing it says becomes a mention, a
# link or formatting.


def _crm_notice(text: str) -> Reply:
    return Reply(text=text, blocks=(_section(text),))


def _crm_value(field: str, value: str | None, today: dt.date) -> str:
    if value is None or not value.strip():
        return "none"
    if field == "close_date":
        try:
            return format_day(dt.date.fromisoformat(value[:10]), today=today)
        except ValueError:
            pass
    return escape_name(value)


def crm_conflict_notice(
    *,
    deal_name: str,
    field: str,
    yours: str | None,
    theirs: str | None,
    crm: str,
    crm_won: bool,
    today: dt.date,
) -> Reply:
    """Return the DM telling a rep their change and the CRM's crossed, and which stands."""
    return _crm_notice(
        messages.crm_conflict(
            deal=escape_name(deal_name),
            field=field,
            yours=_crm_value(field, yours, today),
            theirs=_crm_value(field, theirs, today),
            crm=crm,
            crm_won=crm_won,
        )
    )


def crm_refused_notice(*, deal_name: str, fields: tuple[str, ...], message: str, crm: str) -> Reply:
    """Return the DM giving a rep the CRM's own reason for refusing their change."""
    return _crm_notice(
        messages.crm_refused(
            deal=escape_name(deal_name), fields=fields, message=escape_plain_text(message), crm=crm
        )
    )


def crm_owners_notice(emails: tuple[str, ...], *, crm: str) -> Reply:
    """Return the admins' DM listing CRM owners that match no Slack user by email."""
    return _crm_notice(
        messages.crm_owners_without_slack_user(
            tuple(escape_plain_text(email) for email in emails), crm=crm
        )
    )


def crm_login_refused_notice(message: str, *, crm: str, kind: str) -> Reply:
    """Return the admins' DM saying the CRM refused dealbot's login, and what to check."""
    return _crm_notice(messages.crm_login_refused(escape_plain_text(message), crm=crm, kind=kind))


# --- questions before acting, and what deleting and merging did --------------------------


def confirm_question(
    question: str, *, confirm: str, value: str, danger: bool = False, note: str | None = None
) -> Reply:
    """Return a private question with a confirm button carrying `value`, and Cancel.

    A question is not an answer: nothing has happened yet, so it is never shared.
    """
    question = escape(question)
    if len(value) > BUTTON_VALUE_LIMIT:
        return error_reply(question, messages.DUPLICATE_TOO_LONG)
    buttons = [
        _button(
            confirm,
            action_id=CONFIRM_ACTION,
            value=value,
            style="danger" if danger else "primary",
        ),
        _button(messages.CANCEL_BUTTON, action_id=CANCEL_ACTION, value="cancel"),
    ]
    shown: list[Block] = [
        _section(f":question: {question}"),
        _actions(buttons, block_id="confirm"),
    ]
    if note:
        shown.append(_context(escape(note)))
    return Reply(text=question, blocks=tuple(shown), is_error=True)


def delete_question(deal: DealView, *, value: str) -> Reply:
    """Return "Delete Initech (#3, $50,000)?" with Delete and Cancel."""
    question = messages.delete_question(deal.name, deal.id, _money(deal.amount))
    return confirm_question(
        question,
        confirm=messages.DELETE_BUTTON,
        value=value,
        danger=True,
        note=messages.DELETE_EXPLAINED,
    )


def duplicate_question(existing: DealView, *, value: str) -> Reply:
    """Return "Initech already has an open deal (#3, $50,000, Proposal): create another?"."""
    question = messages.duplicate_question(
        existing.name, existing.id, _money(existing.amount), existing.stage_label
    )
    return confirm_question(question, confirm=messages.CREATE_ANOTHER_BUTTON, value=value)


def cancelled() -> Reply:
    return Reply(text=messages.CANCELLED, blocks=(_section(messages.CANCELLED),))


def deal_deleted(deal: DealView) -> Reply:
    text = escape(messages.deal_deleted(deal.name, deal.id, _money(deal.amount)))
    return Reply(text=text, blocks=(_section(f":wastebasket: {text}"),))


def deal_restored(deal: DealView, today: dt.date) -> Reply:
    text = escape(messages.deal_restored(deal.name, deal.id))
    return Reply(
        text=text, blocks=(_section(f":recycle: {text}"), _section(deal_line(deal, today)))
    )


def deal_merged(merge: DealMerge, today: dt.date) -> Reply:
    target = merge.target
    text = escape(
        messages.deal_merged(
            merge.source_name,
            merge.source_id,
            target.name,
            target.id,
            next_steps=merge.next_steps,
            contacts=merge.contacts,
            history=merge.history,
            evidence=[messages.EVIDENCE_LABELS.get(name, name) for name in merge.evidence],
        )
    )
    return Reply(
        text=text,
        blocks=(
            _section(f":twisted_rightwards_arrows: {text}"),
            _section(deal_line(target, today)),
        ),
    )


# --- evidence ------------------------------------------------------------------------------

CITE_EVIDENCE_SHORTCUT = "cite_evidence"
CITE_EVIDENCE_VIEW = "cite_evidence_form"
# Slack's cap on a static select's options; a rep with more open deals sees the first ones.
_SELECT_OPTIONS_LIMIT = 100


def _cited_value(deal: DealView, kind: str) -> str | None:
    """Return the answer a kind backs on this deal (the buyer's name, the process text)."""
    if kind in ("eb", "champion"):
        role = "economic_buyer" if kind == "eb" else "champion"
        holder = next((c for c in deal.contacts if c.role == role), None)
        if holder is None:
            return None
        return (
            f"<@{holder.slack_user_id}>"
            if holder.slack_user_id
            else escape_name(holder.name or holder.email or "")
        )
    text = {
        "criteria": deal.buying_criteria,
        "process": deal.buying_process,
        "paper": deal.paper_process,
        "metrics": deal.metrics,
    }[kind]
    return escape(text) if text else None


def _source_words(citation: EvidenceView) -> str:
    """Return "a Slack message" / "an email", linked when the reference is a link."""
    words = messages.EVIDENCE_SOURCE_WORDS.get(citation.source, citation.source)
    if citation.reference.startswith("https://"):
        return f"<{escape_plain_text(citation.reference)}|{words}>"
    return words


def _evidence_blocks(deal: DealView, today: dt.date) -> list[Block]:
    """Return the card's lines of cited evidence, and the Commit warning if it lacks some."""
    lines = []
    for citation in deal.evidence:
        label = messages.EVIDENCE_CARD_LABELS.get(citation.kind, citation.kind)
        value = _cited_value(deal, citation.kind)
        day = format_day(citation.cited_on or citation.cited_at.date(), today=today)
        said = f" {value}" if value else ""
        lines.append(f"*{label}:*{said} — cited {day} from {_source_words(citation)}")
    blocks: list[Block] = list(_sections(lines)) if lines else []
    warning = _commit_warning(deal)
    if warning is not None:
        blocks.append(_context(f":warning: {warning}"))
    return blocks


def _commit_held(deal: DealView) -> str | None:
    """Return why the stage the deal just entered did not make it Commit, if it did not."""
    if not deal.commit_held:
        return None
    example = f"/deal {_ref(deal)} evidence {deal.commit_held[0]}: <link>"
    return messages.commit_held(
        messages.FORECAST_LABELS.get(deal.forecast_category, deal.forecast_category).lower(),
        ", ".join(kind_label(kind) for kind in deal.commit_held),
        escape(example),
    )


def _commit_warning(deal: DealView) -> str | None:
    """Return what an open Commit deal still needs cited, or None when it has it all."""
    if deal.status != "open" or deal.forecast_category != "commit":
        return None
    missing = missing_for_commit({c.kind for c in deal.evidence})
    if not missing:
        return None
    example = f"/deal {_ref(deal)} evidence {missing[0]}: <link>"
    return messages.commit_missing_evidence(
        ", ".join(kind_label(kind) for kind in missing), escape(example)
    )


def evidence_cited(cited: EvidenceCited, today: dt.date, *, author_id: str | None = None) -> Reply:
    """Return "Cited for Initech: economic buyer ← a Slack message by @dana, cited by @ana
    on Thu 12 Nov"; the message's author is known only to the shortcut (`author_id`)."""
    citation, deal = cited.citation, cited.deal
    text = messages.evidence_cited(
        escape_name(deal.name),
        kind_label(citation.kind),
        _source_words(citation),
        f"<@{citation.cited_by}>",
        format_day(citation.cited_on or citation.cited_at.date(), today=today),
        f"<@{author_id}>" if author_id else None,
    )
    blocks: list[Block] = [_section(f":paperclip: {text}")]
    warning = _commit_warning(deal)
    if warning is not None:
        blocks.append(_context(f":warning: {warning}"))
    return Reply(text=text, blocks=tuple(blocks))


def cite_evidence_modal(
    deals: Sequence[DealView],
    *,
    permalink: str,
    excerpt: str | None,
    channel_id: str | None,
    author_id: str | None = None,
) -> View:
    """Return the form the message shortcut opens: which deal, and what the message backs.

    The message's link and excerpt travel in private_metadata; the form shows the excerpt
    so the rep sees what they cite.
    """
    deal_options = [
        Option(text=plain_text_within(deal.name, 75), value=str(deal.id))
        for deal in deals[:_SELECT_OPTIONS_LIMIT]
    ]
    kind_options = [Option(text=label, value=kind) for kind, label in EVIDENCE_KINDS.items()]
    quoted = escape(excerpt) if excerpt else "(a message with no text)"
    return View(
        type="modal",
        callback_id=CITE_EVIDENCE_VIEW,
        title=messages.CITE_MODAL_TITLE,
        submit="Cite",
        close="Cancel",
        private_metadata=json.dumps(
            {
                "permalink": permalink,
                "excerpt": excerpt,
                "channel_id": channel_id,
                "author_id": author_id,
            }
        ),
        blocks=[
            _context(f"> {quoted}"),
            InputBlock(
                block_id="deal",
                label="Deal",
                element=StaticSelectElement(
                    action_id="value", options=deal_options, placeholder="Pick a deal"
                ),
            ),
            InputBlock(
                block_id="kind",
                label="Evidence of",
                element=StaticSelectElement(
                    action_id="value", options=kind_options, placeholder="Economic buyer, …"
                ),
            ),
        ],
    )
