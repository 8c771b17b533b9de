"""Every sentence dealbot says to a user that is not built from data lives here."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from domain.errors import DomainError, Person
from domain.evidence import CITE_SHORTCUT_NAME

CHECK_LABELS: dict[str, str] = {
    "NO_NEXT_STEP": "no dated next step",
    "NEXT_STEP_NO_OWNER": "next step has no owner",
    "NEXT_STEP_OVERDUE": "next step overdue",
    "CLOSE_DATE_PAST": "close date has passed",
    "NO_AMOUNT": "no amount",
    "NEXT_STEP_TOO_FAR": "next step too far out",
    "CLOSE_DATE_SLIPPED": "close date keeps slipping",
    "STALE": "no activity for two weeks",
    "STALLED_IN_STAGE": "stalled in its stage",
    "NO_ECONOMIC_BUYER": "no economic buyer",
    "SINGLE_THREADED": "single-threaded",
    "STAGE_CRITERIA_UNMET": "stage exit criteria unmet",
    "COMMIT_WITHOUT_EVIDENCE": "commit without evidence",
    "LOST_WITHOUT_REASON": "closed without a reason",
}

# The one fix that clears a check, phrased as an instruction (the accuracy nudge's advice).
CHECK_FIXES: dict[str, str] = {
    "NO_NEXT_STEP": "log a dated next step",
    "NEXT_STEP_NO_OWNER": "give each next step an owner",
    "NEXT_STEP_OVERDUE": "do or re-date the overdue next step",
    "NEXT_STEP_TOO_FAR": "add a nearer next step",
    "CLOSE_DATE_PAST": "move the close date or close the deal",
    "CLOSE_DATE_SLIPPED": "re-qualify the close date with the buyer",
    "STALE": "touch the deal (a next step or an update)",
    "STALLED_IN_STAGE": "advance the stage or re-qualify",
    "NO_ECONOMIC_BUYER": "name the economic buyer (`buyer:`)",
    "SINGLE_THREADED": "add a second contact",
    "STAGE_CRITERIA_UNMET": "fill in what the stage's exit criteria ask",
    "COMMIT_WITHOUT_EVIDENCE": "back the commit with evidence or move it to best case",
    "NO_AMOUNT": "add an amount",
    "LOST_WITHOUT_REASON": "write the post-mortem",
}

FORECAST_LABELS: dict[str, str] = {
    "pipeline": "Pipeline",
    "best_case": "Best case",
    "commit": "Commit",
    "omitted": "Omitted",
}

CONTACT_ROLE_LABELS: dict[str, str] = {
    "economic_buyer": "Economic buyer",
    "champion": "Champion",
    "other": "Contact",
}

HISTORY_FIELD_LABELS: dict[str, str] = {
    "stage": "Stage",
    "amount": "Amount",
    "close_date": "Close date",
    "forecast_category": "Forecast",
    "status": "Status",
    "account": "Account",
    "title": "Deal name",
    "owner": "Owner",
}

# Where a change kept in a deal's history came from, when not from Slack.
CHANGE_SOURCES: dict[str, str] = {
    "salesforce": "in Salesforce",
    "hubspot": "in HubSpot",
    "import": "by an import",
}


def changed_in(who: str, source: str) -> str:
    """Return "<@U1> in Salesforce" (or "in Salesforce" when the CRM user has no Slack match)."""
    where = CHANGE_SOURCES.get(source, f"from {source}")
    return f"{who} {where}" if who else where


# What an update reply calls each field it says changed.
CHANGED_FIELD_LABELS: dict[str, str] = {
    **HISTORY_FIELD_LABELS,
    "economic_buyer": "Economic buyer",
    "champion": "Champion",
    "buying_criteria": "Criteria",
    "buying_process": "Process",
    "paper_process": "Paper process",
    "pain": "Pain",
    "metrics": "Metrics",
    "competition": "Competition",
}
NOTHING_CHANGED = "Saved: nothing changed, the deal already says that."
# Said after a forecast category the deal took from the stage it moved to.
STAGE_FORECAST_DEFAULT = "the stage's default"


def field_changed(label: str, old: str, new: str) -> str:
    """Return one change of an update reply; `old` and `new` are mrkdwn already."""
    return f"{label.lower()} {old} → {new}"


def did_you_mean(typed: str, valid: Sequence[str], *, shown: str = "`{}`") -> str:
    """Return " Did you mean `x`?" for the valid word closest to `typed`, or "" if none is."""
    close = difflib.get_close_matches(typed.lower(), list(valid), n=1, cutoff=0.6)
    return f" Did you mean {shown.format(close[0])}?" if close else ""


def unknown_command(command: str, names: Sequence[str]) -> str:
    """Return the answer to a slash command dealbot has no listener for (`/pipline`)."""
    typed = " ".join(command.split())[:40]
    return (
        f"`{typed}` is not a dealbot command.{did_you_mean(typed, names)} "
        f"dealbot's commands: {', '.join(names)}."
    )


# What each kind of date word means (domain.dates reads them), for the help; every reply
# shows the date a word became.
DATE_WORDS: tuple[tuple[str, str], ...] = (
    ("fri", "the coming Friday (never today)"),
    ("next fri", "Friday of next week, Monday to Sunday"),
    ("yesterday", "allowed where a past date makes sense (a step already overdue)"),
    ("eow / eom / eoq / eoy", "the end of this week (Friday), month, quarter or year"),
    ("Q1", "the last day of the next Q1 still to end; `Q1 2027` names the year"),
    ("end of january", "January 31st, this year's if still ahead, else next year's"),
    ("12/15", "December 15th when only one reading is a date; `3/4` asks which"),
)


def date_help() -> str:
    """Return the help's lines on the dates `close:` and `due:` take."""
    lines = [f"`{word}`: {meaning}" for word, meaning in DATE_WORDS]
    return "*Dates* (the reply shows the day each became)\n" + "\n".join(lines)


HELP_INTRO = (
    "*dealbot* keeps your pipeline honest: every open deal has a next step with an owner "
    "and a date, and every change of stage, amount and close date is kept."
)

HELP_REFERENCES = (
    "A `<deal>` is an account or deal name (any case; a unique prefix is enough) or `#<id>`. "
    'For `won`, `lost` and `/nextstep` it is one word, a "quoted name" or `#id`.\n'
    "Amounts: `50000`, `50k`, `$1.2M`, `€40,000`. Dates also: `2026-12-15`, `dec 15`, "
    "`in 2 weeks`."
)

UNEXPECTED_ERROR = (
    "Something went wrong on our side and nothing was saved. Please try again in a moment."
)

PICK_ONE = "Pick the one you meant; nothing has been changed yet."

SHARE_FAILED = "Could not post it in the channel (is dealbot a member?). Nothing was shared."

POST_MORTEM_PROMPT = (
    "Two minutes now make the next forecast better: what decided it? A post-mortem form is open."
)

NOTHING_NEEDS_ATTENTION = "Nothing needs attention. Every open deal has a dated next step."

NO_OPEN_DEALS = "No open deals yet. Log one with `/deal new <account> [amount]`."

OPENING_NEW_DEAL_FORM = "Opening the new deal form…"
NEW_DEAL_FORM_DID_NOT_OPEN = (
    "Slack did not open the new deal form in time. Run `/deal` again, "
    "or type it: `/deal new Initech 50k stage:demo close:eom`."
)
ADMIN_UNKNOWN = (
    "Slack did not say in time whether you are a workspace admin, so nothing changed. "
    "Try again in a minute."
)

DEAL_GONE = "That deal no longer exists."

CHOICE_EXPIRED = "That choice has expired; please run the command again."

CHOICE_TOO_LONG = (
    "That command is too long to put on a button: run it again naming the deal by its #id. "
    "Nothing has been changed yet."
)

BUTTON_EXPIRED = "That button has expired."

FOLLOW_UP_BUTTON_EXPIRED = "That button has expired; use /deal followup <deal>."

FORM_EXPIRED = "This form has expired; close it and try again."

PICK_A_STAGE = "Pick a stage from the list."
PICK_A_REAL_DATE = "Pick a date from the calendar, e.g. 2026-12-15."


def check_label(check_id: str) -> str:
    return CHECK_LABELS.get(check_id, check_id.replace("_", " ").lower())


def check_fix(check_id: str) -> str:
    return CHECK_FIXES.get(check_id, "clear " + check_label(check_id))


# --- Follow-up email drafts ----------------------------------------------------------------

FOLLOW_UP_NEVER_SENT = "dealbot never sends it: review it, then send it yourself."

GMAIL_CONNECT_WHY = (
    "dealbot asks Google only for permission to *create drafts* (gmail.compose); it never "
    "sends or reads your mail. The link works once, for 24 hours."
)

GMAIL_NOT_CONNECTED = "To put follow-up drafts in your Gmail, connect it once:"

GMAIL_RECONNECT = "Your Gmail connection was revoked or has expired, so drafts are waiting:"


MAKE_ANOTHER_BUTTON = "Make another"

KEEP_IT_BUTTON = "Keep it"

FOLLOW_UP_KEPT = "Kept the draft you have; no new one was made."


def fresh_draft_question(what: str, deal_name: str, recipient: str, window_days: int) -> str:
    """Return the question `/deal followup` asks over a draft like the one asked for."""
    within = "today" if window_days <= 1 else f"in the last {window_days} days"
    return f"A {what} draft for {deal_name} to {recipient} was already made {within}. Make another?"


TEMPLATE_LABELS: dict[str, str] = {"re_engage": "re-engage", "demo_follow_up": "demo follow-up"}


def template_label(name: str) -> str:
    """Return a template's name as people say it: `proposal_sent` -> "proposal sent"."""
    return TEMPLATE_LABELS.get(name) or name.replace("_", " ").replace("-", " ")


def mention(person: Person) -> str:
    """Return how a Slack message names a person: a mention, shown as their name."""
    return f"<@{person.user_id}>"


def refusal(error: DomainError) -> tuple[str, str | None]:
    """Return a domain refusal's (problem, hint) as Slack shows them, people as mentions."""
    return error.worded(mention)


def help_text(commands: Sequence[str]) -> str:
    """Return help's notification text, naming the commands the command table declares."""
    return f"dealbot help: {', '.join(commands)}"


def shared_by(user_id: str) -> str:
    return f"Shared by <@{user_id}>"


def pipeline_title(scope: str, *, user_id: str | None, teams: tuple[str, ...]) -> str:
    if scope == "team":
        return "Pipeline of " + ", ".join(teams)
    if scope == "user" and user_id:
        return f"Pipeline of <@{user_id}>"
    return "Your pipeline"


# --- Teams: who may join, move and leave ------------------------------------------------------


def team_members_added(count: int, role: str, team: str) -> str:
    return f"Added {count} {role}(s) to {team}."


def team_members_already_there(role: str, team: str) -> str:
    return f"Everyone named was already a {role} in {team}."


def team_member_removed(user_id: str, team: str) -> str:
    return f"Removed <@{user_id}> from {team}."


def team_member_moved(user_id: str, team: str) -> str:
    return f"Moved <@{user_id}> to {team}; they are on no other team now."


def team_currency_set(team: str, currency: str) -> str:
    return f"{team} reports in {currency} from now on."


def team_currency(currency: str, *, chosen: bool) -> str:
    """Return what a team's figures are reported in: its own currency, or the default."""
    if chosen:
        return f"Reporting currency: {currency}"
    return f"Reporting currency: {currency} (the default, DEALBOT_CURRENCY)"


# --- CRM sync (SPEC "CRM sync") -----------------------------------------------------------
# Every CRM-supplied text (deal names, values, the CRM's own error messages, emails) reaches
# these functions already escaped by the builder in handlers/blocks.py that calls them.

CRM_FIELD_LABELS: dict[str, str] = {
    "title": "deal name",
    "account": "account",
    "amount": "amount",
    "currency": "currency",
    "close_date": "close date",
    "stage": "stage",
    "forecast_category": "forecast category",
    "next_step": "next step",
    "owner": "owner",
}

# What to check when a CRM refuses dealbot's login, by CRM kind.
CRM_LOGIN_SETTINGS: dict[str, str] = {
    "salesforce": (
        "SALESFORCE_CLIENT_ID, SALESFORCE_USERNAME and SALESFORCE_PRIVATE_KEY_FILE (and that "
        "the connected app is approved for that user)"
    ),
    "hubspot": "HUBSPOT_ACCESS_TOKEN (a private app's token stops working when it is rotated)",
}


def crm_field_label(field: str) -> str:
    return CRM_FIELD_LABELS.get(field, field.replace("_", " "))


def crm_fields_phrase(fields: tuple[str, ...]) -> str:
    """Return `stage`, `stage and close date`, `amount, stage and close date`."""
    labels = [crm_field_label(field) for field in fields] or ["deal"]
    if len(labels) == 1:
        return labels[0]
    return ", ".join(labels[:-1]) + " and " + labels[-1]


def not_in_crm_yet(crm: str) -> str:
    return f"not in {crm} yet"


def open_in_crm(crm: str) -> str:
    return f"Open in {crm}"


def crm_conflict(*, deal: str, field: str, yours: str, theirs: str, crm: str, crm_won: bool) -> str:
    """Return the rep's private note that their change and the CRM's crossed on one field."""
    outcome = (
        f"{crm}'s was later, so it stands. Yours is kept in the deal's history."
        if crm_won
        else f"yours was later, so it stands. {crm}'s is kept in the deal's history."
    )
    return (
        f"{deal}: your {crm_field_label(field)} ({yours}) and a change in {crm} ({theirs}) "
        f"crossed; {outcome}"
    )


def crm_refused(*, deal: str, fields: tuple[str, ...], message: str, crm: str) -> str:
    """Return the rep's private note that the CRM refused their change, in the CRM's words."""
    reason = message.rstrip().rstrip(".") or "no reason given"
    return (
        f"{crm} did not take your change to {deal}'s {crm_fields_phrase(fields)}: {reason}. "
        f'It stays in dealbot, marked "{not_in_crm_yet(crm)}".'
    )


def crm_owners_without_slack_user(emails: tuple[str, ...], *, crm: str) -> str:
    listed = ", ".join(emails)
    return (
        f"These {crm} deal owners have no Slack user with the same email, so dealbot "
        f"cannot tell them about their deals: {listed}. Give each one a Slack account with "
        f"that email, or change the owner's email in {crm}; dealbot matches them on the "
        "next sync."
    )


def crm_login_refused(message: str, *, crm: str, kind: str) -> str:
    reason = message.rstrip().rstrip(".") or "no reason given"
    check = CRM_LOGIN_SETTINGS.get(kind, "the CRM settings")
    # Connectors often name themselves ("Salesforce refused the login: ..."): say it once.
    said = reason if reason.startswith(crm) else f"dealbot could not log in to {crm}: {reason}"
    return f"{said}. Sync is paused until a login works; check {check}."


# --- deleting, restoring, merging, duplicates (`/deal delete|restore|merge`, `/deal new`) ---

EVIDENCE_LABELS: dict[str, str] = {
    "buying_criteria": "buying criteria",
    "buying_process": "buying process",
    "paper_process": "paper process",
    "pain": "pain",
    "metrics": "metrics",
    "competition": "competition",
}

DELETE_BUTTON = "Delete"
CREATE_ANOTHER_BUTTON = "Create"
CANCEL_BUTTON = "Cancel"
CANCELLED = "Cancelled; nothing was changed."


def delete_question(name: str, deal_id: int, amount: str) -> str:
    return f"Delete {name} (#{deal_id}, {amount})?"


DELETE_EXPLAINED = (
    "A deleted deal leaves every list and figure but is kept with its history; "
    "an admin can restore it."
)


def deal_deleted(name: str, deal_id: int, amount: str) -> str:
    return (
        f"Deleted {name} (#{deal_id}, {amount}). It is kept with its history: "
        f"an admin can restore it with /deal restore #{deal_id}."
    )


def deal_restored(name: str, deal_id: int) -> str:
    return f"Restored {name} (#{deal_id}): it is back in the pipeline."


def duplicate_question(account: str, deal_id: int, amount: str, stage: str) -> str:
    return f"{account} already has an open deal (#{deal_id}, {amount}, {stage}): create another?"


DUPLICATE_TOO_LONG = (
    "That command is too long to put on a button: give the new deal a `title:` that tells "
    "the two apart, or update the open one. Nothing has been created."
)


def deal_merged(
    source: str,
    source_id: int,
    target: str,
    target_id: int,
    *,
    next_steps: int,
    contacts: int,
    history: int,
    evidence: Sequence[str],
) -> str:
    moved = [
        _count(next_steps, "next step"),
        _count(contacts, "contact"),
        _count(history, "history entry", "history entries"),
    ]
    filled = f"; filled {', '.join(evidence)}" if evidence else ""
    return (
        f"Merged {source} (#{source_id}) into {target} (#{target_id}): moved "
        f"{', '.join(moved)}{filled}. #{source_id} is deleted, its history saying where it went."
    )


def _count(count: int, one: str, many: str | None = None) -> str:
    return f"{count} {one if count == 1 else many or one + 's'}"


# --- a team's quotas and attainment, and its stages (`/dealbot team show|stages`) --------


def attainment_heading(period: str, first: str, last: str) -> str:
    return f"*Quota attainment, {period}* ({first} – {last}): deals won and closed this quarter"


NO_REPS = "No reps yet: add them with `/dealbot team add <team> rep @someone`."


def rep_attainment(
    user_id: str, won: str, quota: str, percent: str, deals: int, converted: Sequence[str] = ()
) -> str:
    line = f"<@{user_id}>: {won} of {quota} ({percent}) from {_count(deals, 'won deal')}"
    return line + _converted(converted)


def rep_without_quota(
    user_id: str, period: str, won: Sequence[str], deals: int, converted: Sequence[str] = ()
) -> str:
    so_far = f"won {' + '.join(won)} from {_count(deals, 'deal')}" if won else "nothing won yet"
    return f"<@{user_id}>: no quota for {period} ({so_far}{_converted(converted)})"


def converted_amount(original: str, rate: str, day: str) -> str:
    """Return how won money in another currency was counted: `€140,000 at 1.08 on Tue 1 Dec`."""
    return f"{original} at {rate} on {day}"


def _converted(converted: Sequence[str]) -> str:
    return f", incl. {' and '.join(converted)}" if converted else ""


def deal_excluded(name: str, deal_id: int, amount: str | None, missing_rate: str | None) -> str:
    if amount is None:
        return f"left out: {name} (#{deal_id}) was won with no amount"
    return (
        f"left out: {name} (#{deal_id}, {amount}): there is no {missing_rate} exchange rate; "
        f"an admin sets one with `dealbot fx set {missing_rate} <rate>`"
    )


def team_stages_heading(team: str, count: int) -> str:
    return f"*{team}* stages, in order ({count})"


def team_stages_from_crm(team: str, crm: str) -> str:
    """Return the line above the stages a team just took from the CRM (`team` is escaped)."""
    return (
        f":white_check_mark: *{team}* now uses {crm}'s pipeline as its stages; its deals in "
        f"{crm} take them at the next sync. Run this again when the pipeline changes."
    )


STAGE_EVIDENCE_LABELS: dict[str, str] = {
    "amount": "amount",
    "close_date": "close date",
    "buying_criteria": "buying criteria",
    "buying_process": "buying process",
    "paper_process": "paper process",
    "economic_buyer": "economic buyer",
}


def stage_line(
    order: int,
    label: str,
    key: str,
    percent: str,
    forecast: str,
    criteria: Sequence[str],
    maps_to: str | None = None,
) -> str:
    asks = ", ".join(STAGE_EVIDENCE_LABELS.get(c, c) for c in criteria) or "none"
    counts_as = f" · counts as {maps_to}" if maps_to else ""
    return (
        f"{order}. *{label}* (`{key}`) · {percent} · forecast default {forecast} · "
        f"exit criteria: {asks}{counts_as}"
    )


# --- Evidence: `/deal <deal> evidence …` and the message shortcut -----------------------------

# How a kind is labelled on the card ("EB: Dana Scully — cited …").
EVIDENCE_CARD_LABELS: dict[str, str] = {
    "eb": "EB",
    "criteria": "Decision criteria",
    "process": "Decision process",
    "paper": "Paper process",
    "champion": "Champion",
    "metrics": "Metrics",
}
# What a citation points at, in a sentence.
EVIDENCE_SOURCE_WORDS: dict[str, str] = {"slack": "a Slack message", "gmail": "an email"}
CITE_MODAL_TITLE = "Cite as evidence"
CITE_NO_OPEN_DEALS = (
    "You have no open deals to cite this message for. Create one with `/deal new <account>`."
)
CITE_FORM_DID_NOT_OPEN = (
    "The citation form could not open (Slack took too long). Try the shortcut again, or "
    "`/deal <deal> evidence <kind>: <link>`."
)
CITE_NO_PERMALINK = (
    "Slack did not give me this message's link, so it cannot be cited. Copy its link and use "
    "`/deal <deal> evidence <kind>: <link>`."
)
PICK_A_DEAL = "Pick one of your open deals."
PICK_A_KIND = "Pick what this message is evidence of."


def evidence_cited(
    deal_name: str, kind_label: str, source_words: str, by: str, day: str, author: str | None
) -> str:
    """Return the confirmation of a citation, as mrkdwn (`deal_name` already escaped)."""
    written = f" by {author}" if author else ""
    return f"Cited for {deal_name}: {kind_label} ← {source_words}{written}, cited by {by} on {day}"


def commit_held(forecast: str, missing: str, example: str) -> str:
    """Return why a stage's Commit default did not apply (`commit_evidence: require`)."""
    return (
        f"Forecast stays {forecast}: Commit needs cited evidence for {missing}. Cite with "
        f"`{example}` or the message shortcut *{CITE_SHORTCUT_NAME}*, then set "
        "`forecast: commit`."
    )


def commit_missing_evidence(missing: str, example: str) -> str:
    """Return the warning a Commit deal without its evidence shows (`commit_evidence: warn`)."""
    return (
        f"Commit without cited evidence for: {missing}. Cite with `{example}` or the message "
        f"shortcut *{CITE_SHORTCUT_NAME}*."
    )
