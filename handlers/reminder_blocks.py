"""Block Kit for what the scheduled jobs send: the chase DM, the accuracy post, the digest."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING

from slack_sdk.models.blocks import (
    Block,
    DatePickerElement,
    DividerBlock,
    HeaderBlock,
    InputBlock,
    PlainTextInputElement,
)
from slack_sdk.models.views import View

from domain.checks import DealFacts
from domain.dates import format_day
from domain.forecast import Flow, ForecastAccuracy
from domain.money import format_money, format_money_short
from domain.nudges import ChaseItem, DealLine, Digest, RepAccuracy
from domain.stages import DEFAULT_STAGES
from handlers import messages
from handlers.blocks import (
    OPEN_POST_MORTEM_ACTION,
    SECTION_TEXT_LIMIT,
    Reply,
    _actions,
    _button,
    _context,
    _section,
    _sections,
    escape,
    escape_name,
    plain_text_within,
    roll_up_blocks,
)
from handlers.calibration_blocks import calibration_lines, learned_lines

if TYPE_CHECKING:
    from domain.checks import DealFacts, FailingDeal

LOG_STEP_ACTION = "reminder_log_step"
MARK_DONE_ACTION = "reminder_mark_done"
SNOOZE_ACTION = "reminder_snooze"
LOG_STEP_VIEW = "reminder_log_step"
# Ten deals keep the DM inside Slack's 50-block limit and readable on a phone.
CHASE_DEALS_SHOWN = 10
MAX_BLOCKS = 50
STAGE_LABELS = {stage.key: stage.label for stage in DEFAULT_STAGES}


def _score(score: Decimal | None) -> str:
    return "—" if score is None else f"{score * 100:.0f}%"


def _why(item: ChaseItem, today: dt.date) -> str:
    reasons = []
    for check in item.checks:
        if check == "NEXT_STEP_OVERDUE" and item.deal.next_step_due:
            reasons.append(f"next step was due {format_day(item.deal.next_step_due)}")
        elif check == "CLOSE_DATE_PAST" and item.deal.close_date:
            reasons.append(f"close date {format_day(item.deal.close_date)} has passed")
        else:
            reasons.append(messages.check_label(check))
    return "; ".join(reasons)


def chase_message(items: Sequence[ChaseItem], today: dt.date) -> Reply:
    """Return the chase DM: each deal that needs a next step, with buttons to fix it."""
    count = len(items)
    noun = "deal needs" if count == 1 else "deals need"
    text = f"{count} {noun} a next step: " + ", ".join(
        escape_name(i.deal.account) for i in items[:5]
    )
    quiet = "it goes" if count == 1 else "they go"
    blocks: list[Block] = [
        _section(f"Good morning. *{count} {noun} your attention* before {quiet} quiet:")
    ]
    for item in items[:CHASE_DEALS_SHOWN]:
        deal_id = str(item.deal.deal_id)
        buttons = [
            _button("Log next step", action_id=LOG_STEP_ACTION, value=deal_id, style="primary")
        ]
        if item.deal.open_steps:
            buttons.append(_button("Mark done", action_id=MARK_DONE_ACTION, value=deal_id))
        buttons += [
            _button("Snooze 1 day", action_id=f"{SNOOZE_ACTION}_1", value=f"{deal_id}:1"),
            _button("Snooze 1 week", action_id=f"{SNOOZE_ACTION}_7", value=f"{deal_id}:7"),
        ]
        blocks.append(
            _section(f"*{escape_name(item.deal.name)}* (#{deal_id})\n:warning: {_why(item, today)}")
        )
        blocks.append(_actions(buttons, block_id=f"chase_{deal_id}"))
    if count > CHASE_DEALS_SHOWN:
        blocks.append(_context(f"…and {count - CHASE_DEALS_SHOWN} more: `/pipeline` lists them."))
    blocks.append(_context("One reminder a day at most, on weekdays. Snooze a deal to skip it."))
    return Reply(text=text, blocks=tuple(blocks))


def post_mortem_prompt(deal: DealFacts) -> Reply:
    """Return the one reminder a closed deal without a post-mortem gets, two days on."""
    outcome = "won" if deal.status == "won" else "lost"
    text = f"{escape_name(deal.account)} closed {outcome}: two minutes for the post-mortem?"
    return Reply(
        text=text,
        blocks=(
            _section(
                f"*{escape_name(deal.name)}* closed *{outcome}* two days ago. "
                "What decided it? Two minutes now make the next forecast better."
            ),
            _actions(
                [
                    _button(
                        "Write the post-mortem",
                        action_id=OPEN_POST_MORTEM_ACTION,
                        value=str(deal.deal_id),
                        style="primary",
                    )
                ]
            ),
        ),
    )


def log_step_modal(*, deal_id: int, account: str, today: dt.date) -> View:
    return View(
        type="modal",
        callback_id=LOG_STEP_VIEW,
        title="Next step",
        submit="Save",
        close="Cancel",
        private_metadata=json.dumps({"deal_id": deal_id}),
        blocks=[
            _section(f"What happens next on *{escape_name(account)}*, and when?"),
            InputBlock(
                block_id="what",
                label="Next step",
                element=PlainTextInputElement(
                    action_id="value", max_length=500, placeholder="e.g. Demo to procurement"
                ),
            ),
            InputBlock(
                block_id="due",
                label="Due",
                element=DatePickerElement(action_id="value", initial_date=today.isoformat()),
            ),
        ],
    )


def confirmation(text: str) -> Reply:
    return Reply(text=text, blocks=(_section(text),))


_PERCENT = Decimal("0.01")
# Blocks the post may use before its footer: Slack takes 50 in a message.
_POST_BLOCKS = 49
# A deal name in the post is cut here, so three deals and their fixes fit a rep's lines.
_DEAL_NAME_SHOWN = 60


def _failing_deal(deal: FailingDeal) -> str:
    name = deal.name if len(deal.name) <= _DEAL_NAME_SHOWN else deal.name[:_DEAL_NAME_SHOWN] + "…"
    amount = f" {format_money_short(deal.amount)}" if deal.amount is not None else ""
    fixes = "; ".join(f"{messages.check_label(c)} → {messages.check_fix(c)}" for c in deal.checks)
    return f"• *{escape_name(name)}*{amount}: {fixes}"


def _rep_lines(rep: RepAccuracy) -> str:
    change = ""
    if rep.change is not None:
        points = int((rep.change * 100).to_integral_value())
        change = f" ({'+' if points >= 0 else ''}{points} pts since last week)"
    line = f"<@{rep.rep_id}> *{_score(rep.score)}*{change} over {rep.deals} open deal(s)"
    if rep.top_failures:
        line += "\n      " + ", ".join(
            f"{messages.check_label(c)} ×{n}" for c, n in rep.top_failures[:3]
        )
    if rep.best_fix is not None:
        check, count, gain = rep.best_fix
        line += (
            f"\n      :bulb: {messages.check_fix(check)} on {count} deal(s): +{gain * 100:.0f} pts"
        )
    for deal in rep.failing_deals:
        line += f"\n      {_failing_deal(deal)}"
    if rep.more_failing:
        noun = "deal" if rep.more_failing == 1 else "deals"
        line += f"\n      …and {rep.more_failing} more {noun}"
    if rep.commit_claimed is not None and rep.commit_evidenced is not None:
        line += (
            f"\n      Commit claimed *{format_money(rep.commit_claimed)}* · evidenced "
            f"*{format_money(rep.commit_evidenced)}*"
        )
        claimed = rep.commit_claimed.amount
        if claimed > 0:
            line += f" ({_score((rep.commit_evidenced.amount / claimed).quantize(_PERCENT))})"
        if rep.commit_unpriced:
            line += f" · {rep.commit_unpriced} more commit deal(s) without an amount or a rate"
    return line


def accuracy_post(
    *,
    team_name: str,
    week: str,
    team_score: Decimal | None,
    reps: Sequence[RepAccuracy],
    top_checks: Sequence[tuple[str, int]],
    currency: str = "USD",
) -> Reply:
    """Return the weekly pipeline-accuracy post for a team's channel."""
    text = f"Pipeline accuracy for {escape_name(team_name)}, {week}: {_score(team_score)}"
    blocks: list[Block] = [
        HeaderBlock(text=plain_text_within(f"Pipeline accuracy · {team_name} · {week}", 150)),
        _section(
            f"Team score *{_score(team_score)}*: the share of accuracy checks our open "
            "deals pass, weighted by amount."
            + (
                "\nMost often failing: "
                + ", ".join(f"{messages.check_label(c)} ({n})" for c, n in top_checks[:3])
                if top_checks
                else ""
            )
        ),
        DividerBlock(),
    ]
    # Each rep's lines stay together; a section holds as many reps as Slack's text limit allows.
    room = _POST_BLOCKS - len(blocks) - 1  # one kept for "…and N more reps"
    chunk: list[str] = []
    shown = 0
    for rep in reps:
        lines = _rep_lines(rep)[:SECTION_TEXT_LIMIT]
        if chunk and len("\n".join([*chunk, lines])) > SECTION_TEXT_LIMIT:
            if room == 0:
                break
            blocks.append(_section("\n".join(chunk)))
            room -= 1
            chunk = []
        chunk.append(lines)
        shown += 1
    if chunk and room:
        blocks.append(_section("\n".join(chunk)))
    else:
        shown -= len(chunk)
    if shown < len(reps):
        blocks.append(
            _context(f"…and {len(reps) - shown} more rep(s): `/pipeline team` lists them.")
        )
    blocks.append(
        _context(
            f"Score = checks passed ÷ checks run over open deals, weighted by amount in "
            f"{currency} (at each deal's close-date rate); a deal without an amount or a rate "
            "weighs as the median of its rep's open deals. `/pipeline` shows yours."
        )
    )
    return Reply(text=text, blocks=tuple(blocks[:50]))


def _deal_lines(lines: Sequence[DealLine], *, limit: int = 6) -> str:
    shown = []
    for line in lines[:limit]:
        amount = f" {format_money(line.amount)}" if line.amount else ""
        note = f" — {escape(line.note)}" if line.note else ""
        shown.append(f"• *{escape_name(line.name)}*{amount} (<@{line.owner_id}>){note}")
    if len(lines) > limit:
        shown.append(f"• …and {len(lines) - limit} more")
    return "\n".join(shown)


# Flow lines as a forecast call names them (FlowLine.kind).
FLOW_LABELS = {
    "created": "Created",
    "pulled_in": "Pulled in",
    "pushed_out": "Pushed out",
    "amount_up": "Amount up",
    "amount_down": "Amount down",
    "moved": "Moved category",
    "won": "Won",
    "lost": "Lost",
}


def _days(days: int | Decimal | None) -> str:
    return "—" if days is None else f"{days} days"


def _flow_lines(flow: Flow) -> list[str]:
    since = f"since {flow.since_week}" if flow.since_week else "no earlier snapshot yet"
    lines = [f"*Week over week* ({since})"]
    for line in flow.lines:
        if not line.count:
            continue
        names = ", ".join(
            escape_name(d.name) + (f" ({escape(d.note)})" if d.note else "") for d in line.deals[:3]
        )
        more = f" and {len(line.deals) - 3} more" if len(line.deals) > 3 else ""
        lines.append(
            f"• {FLOW_LABELS.get(line.kind, line.kind)}: {line.count} · "
            f"{format_money(line.money)}" + (f" — {names}{more}" if names else "")
        )
    if len(lines) == 1:
        lines.append("• Nothing moved.")
    return lines


def _accuracy_line(accuracy: ForecastAccuracy) -> str:
    # Mid-quarter the figure is what it is: commit closed so far, not an accuracy yet.
    name = "Forecast accuracy" if accuracy.final else "Commit closed so far"
    if accuracy.commit_called is None:
        return f"*{name}* ({accuracy.quarter}): — no snapshot from the quarter's first week"
    return (
        f"*{name}* ({accuracy.quarter}): *{_score(accuracy.ratio)}* — "
        f"{format_money(accuracy.won_of_commit)} won of "
        f"{format_money(accuracy.commit_called)} committed at the quarter's start"
    )


def manager_digest(digest: Digest) -> Reply:
    """Return a manager's weekly digest: the forecast roll-up first, then what moved."""
    roll = digest.roll_up
    team = roll.team
    text = (
        f"{escape_name(digest.team_name)} weekly digest, {digest.week}: won "
        f"{format_money(team.won)}, commit {format_money(team.commit)}, best case "
        f"{format_money(team.best_case)}, pipeline {format_money(team.pipeline)}"
    )
    blocks: list[Block] = [
        HeaderBlock(text=plain_text_within(f"{digest.team_name} · week {digest.week}", 150)),
        *roll_up_blocks(roll),
        DividerBlock(),
    ]
    if digest.flow is not None:
        blocks.extend(_sections(_flow_lines(digest.flow)))
    week_parts = []
    # What was created, moved and slipped is the flow's; the wins and losses stay here for
    # their post-mortems.
    for title, lines in ((":trophy: Won", digest.won), ("Lost", digest.lost)):
        if lines:
            week_parts.append(f"*{title} ({len(lines)})*\n{_deal_lines(lines)}")
    blocks.append(
        _section(
            f"*This week* · {digest.open_deals} open deals\n"
            + ("\n".join(week_parts) if week_parts else "A quiet week.")
        )
    )
    quarter_lines = []
    closed = digest.closed
    if closed is not None:
        quarter_lines.append(
            f"*{digest.quarter} so far*: win rate *{_score(closed.win_rate)}* · average days "
            f"to close *{_days(closed.average_days_to_close)}* · slip rate "
            f"*{_score(closed.slip_rate)}*"
        )
    if digest.accuracy is not None:
        quarter_lines.append(_accuracy_line(digest.accuracy))
    if quarter_lines:
        blocks.append(_section("\n".join(quarter_lines)))
    if digest.calibration:
        by_rep = {rep.rep_id: rep for rep in digest.calibration}
        blocks.extend(
            _sections(
                [
                    "*Rep calibration* (their calls over the last 4 quarters)",
                    *calibration_lines(by_rep, list(by_rep)),
                ]
            )
        )
    if digest.learned is not None:
        # Shown only to a team on `thresholds: learned`: the figures its limits came from.
        blocks.extend(
            _sections(["*Learned thresholds*", *learned_lines(digest.learned, applied=True)])
        )
    scores = " · ".join(f"<@{rep}> {_score(score)}" for rep, score in digest.rep_scores)
    blocks.append(_section(f"*Accuracy per rep*: {scores or 'no reps yet'}"))
    if digest.ignored_checks:
        ignored = ", ".join(
            f"{messages.check_label(check)} (acted on {acted} of {nudged})"
            for check, nudged, acted in digest.ignored_checks
        )
        blocks.append(_context(f"Nudges reps ignore most (last 4 weeks): {ignored}"))
    blocks.append(
        _context(
            "Chart: each rep's won, commit, best case and pipeline vs quota, and the team's "
            "commit and won week by week."
        )
    )
    if len(blocks) > MAX_BLOCKS:
        # Slack refuses a message over 50 blocks: keep the top, say where the rest is.
        blocks = [
            *blocks[: MAX_BLOCKS - 1],
            _context("More in `/pipeline team`: this digest reached Slack's message size."),
        ]
    return Reply(text=text, blocks=tuple(blocks))
