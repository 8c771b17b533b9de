"""The `/deal` grammar: its forms, what each parses to, and the parser.

- `/deal` opens the modal; `/deal help`;
  `/deal new <account> [amount] [options]`;
  `/deal <deal> <options>`; `/deal show <deal>`;
  `/deal won <deal> [reason]`; `/deal lost <deal> <reason>`;
  `/deal followup <deal> [template]`; `/deal delete <deal>` (asks first);
  `/deal restore #<id>` (admins); `/deal merge <deal> into <deal>`;
  `/deal <deal> evidence <kind>: <Slack message link or Gmail message>`.

Deal options: `stage: close: amount: forecast: buyer: champion: contact: criteria:
process: paper: pain: metrics: competition: title:`, and on an existing deal `name:` (the
deal's name, as `title:`), `account:` and `owner:@user`. A value with spaces is quoted
(`criteria:"SSO and audit log"`), except that dates, stages, forecast categories and
amounts take the words that complete them (`close:dec 15`, `stage:closed won`,
`forecast:best case`, `amount:40k EUR`). `contact:` may repeat.

Deal reference rule. `<deal>` is a name (any case, a unique prefix is enough) or `#<id>`:

- `/deal <deal> <options>`: the reference is every word before the first option, so
  `/deal Initech Europe stage:demo` updates "Initech Europe".
- `/deal show <deal>`, `/deal delete <deal>`: the reference is all of the text.
- `/deal merge <deal> into <deal>`: the words before `into`, then the words after it.
- `/deal <deal> evidence …`: the words before `evidence` (quote a name containing it).
- `/deal won|lost|followup <deal> …`: the reference is ONE token (a word, a "quoted name"
  or `#42`), because the rest of the text is the reason or the template.

A first word that is a sub-command (`new`, `show`, …) can be used as a deal name by quoting
it: `/deal "New Horizons" stage:demo`.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Final, TypeAlias

from domain.changes import ContactRef, DealChanges, DealRef
from domain.dates import parse_date
from domain.evidence import EVIDENCE_KINDS
from domain.money import parse_amount
from domain.stages import DEFAULT_SET, StageSet, match_forecast, match_stage
from handlers.commands.tokens import (
    DOMAIN_ERRORS,
    CommandSyntaxError,
    Forms,
    Item,
    Option,
    Piece,
    Word,
    as_syntax_error,
    clip,
    guarded,
    keyword_of,
    pick_options,
    prepare,
    split_words,
)
from handlers.commands.values import (
    MAX_FREE_TEXT,
    OnDeal,
    OptionSpec,
    close_keyword,
    collect_options,
    contact_ref,
    deal_ref,
    free_text,
    longest_reading,
    plain_followers,
    read_amount,
    read_name,
    starts_amount,
    unexpected,
    user_ref,
)

# Examples per form; the first of each is what an error about that form shows.
FORMS: Final = Forms(
    {
        "/deal": ("/deal", "/deal help"),
        "/deal new": (
            "/deal new Initech 50k stage:discovery close:dec 15",
            '/deal new "Acme Corp" €40,000 forecast:pipeline close:eoq',
        ),
        "/deal update": (
            "/deal Initech stage:proposal close:eoq amount:60k forecast:commit",
            '/deal #42 buyer:@peter criteria:"SSO and an audit log" process:"legal, then CFO"',
            '/deal Initech contact:"Peter Gibbons <peter@initech.com>" champion:@samir',
        ),
        "/deal show": ("/deal show Initech", "/deal show #42"),
        "/deal won": ("/deal won Initech beat the incumbent on support",),
        "/deal lost": ('/deal lost "Acme Corp" chose a cheaper competitor',),
        "/deal followup": ("/deal followup Initech proposal_sent",),
        "/deal rename": ('/deal #42 name:"Initech renewal" account:"Initech Corp" owner:@jane',),
        "/deal delete": ("/deal delete Initech", "/deal delete #42"),
        "/deal restore": ("/deal restore #42",),
        "/deal merge": ("/deal merge #41 into #42", '/deal merge "Initech (old)" into Initech'),
        "/deal evidence": (
            "/deal Initech evidence eb: https://acme.slack.com/archives/C0123ABC/p1700000000123456",
            "/deal Initech evidence paper: https://mail.google.com/mail/u/0/#inbox/18c2f9a0b1d2e3f4",
        ),
    }
)

_TEMPLATE_RE: Final = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")
_SUBCOMMANDS: Final = ("help", "new", "show", "won", "lost", "followup")


@dataclass(frozen=True)
class OpenDealModal:
    """`/deal` with no text."""


@dataclass(frozen=True)
class DealHelp:
    """`/deal help`."""


@dataclass(frozen=True)
class NewDeal:
    """`/deal new <account> [amount] [options]`."""

    account: str
    changes: DealChanges


@dataclass(frozen=True)
class ShowDeal(OnDeal):
    """`/deal show <deal>`."""


@dataclass(frozen=True)
class CloseDeal(OnDeal):
    """`/deal won <deal> [reason]` or `/deal lost <deal> <reason>`."""

    won: bool
    reason: str | None


@dataclass(frozen=True)
class UpdateDeal(OnDeal):
    """`/deal <deal> <options>`."""

    changes: DealChanges


@dataclass(frozen=True)
class FollowUp(OnDeal):
    """`/deal followup <deal> [template]`.

    `after` is never typed: the "Make another" button of "You have a fresh draft" carries
    the fresh draft's trigger id, so the click makes one more draft, knowingly.
    """

    template: str | None
    after: int | None = None


@dataclass(frozen=True)
class DeleteDeal(OnDeal):
    """`/deal delete <deal>`: asks first; the question's Delete button carries `confirmed`."""

    confirmed: bool = False


@dataclass(frozen=True)
class RestoreDeal(OnDeal):
    """`/deal restore #<id>`: a deleted deal back in the pipeline (admins)."""


@dataclass(frozen=True)
class MergeDeals(OnDeal):
    """`/deal merge <deal> into <deal>`: `deal` is merged into `into`, then deleted."""

    into: DealRef


@dataclass(frozen=True)
class CreateAnother(OnDeal):
    """The Create button of "Initech already has an open deal (#3): create another?".

    Never typed: it carries the `/deal new` that was asked about, parsed, and the open deal
    it resembles (`deal`), so the click makes exactly the deal the rep typed.
    """

    account: str
    changes: DealChanges


@dataclass(frozen=True)
class CiteEvidence(OnDeal):
    """`/deal <deal> evidence <kind>: <link>`: the link, read, backs the deal's `kind`."""

    kind: str
    source: str
    reference: str


DealCommand: TypeAlias = (
    OpenDealModal
    | DealHelp
    | NewDeal
    | ShowDeal
    | CloseDeal
    | UpdateDeal
    | FollowUp
    | DeleteDeal
    | RestoreDeal
    | MergeDeals
    | CreateAnother
    | CiteEvidence
)


_DEAL_OPTIONS: Final[dict[str, str]] = {
    "stage": "stage",
    "close": "close_date",
    "amount": "amount",
    "forecast": "forecast",
    "buyer": "economic_buyer",
    "champion": "champion",
    "contact": "contacts",
    "criteria": "buying_criteria",
    "process": "buying_process",
    "paper": "paper_process",
    "pain": "pain",
    "metrics": "metrics",
    "competition": "competition",
    "title": "title",
    "name": "title",
    "account": "account",
    "owner": "owner_id",
}
# Options that change who a deal is rather than where it stands: not for `/deal new`.
_EXISTING_DEAL_OPTIONS: Final = ("account", "owner")
# Words that, after an account name, say an amount in words (`fifty grand`). A tail of
# them reads as an amount only with a tens, magnitude or currency word: "Capital One" is a
# name, "Pied Piper fifty grand" is not.
_NUMBER_WORDS: Final = frozenset(
    {
        *("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"),
        *("eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen"),
        *("eighteen", "nineteen", "a", "k", "m", "usd", "eur", "gbp"),
    }
)
_AMOUNT_WORDS: Final = frozenset(
    {
        *("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"),
        *("hundred", "thousand", "million", "billion", "grand", "bucks", "dollars", "euros"),
        "pounds",
    }
)


def parse_deal(
    text: str, *, today: date, default_currency: str = "USD", stages: StageSet = DEFAULT_SET
) -> DealCommand:
    """Return the `/deal` command `text` asks for; `stage:` names one of `stages`.

    Raises CommandSyntaxError (and nothing else) when the text is not a valid `/deal`.
    """
    return guarded(
        "/deal",
        FORMS.usage("/deal update"),
        lambda: _parse_deal(text, today=today, currency=default_currency, stages=stages),
    )


def _parse_deal(text: str, *, today: date, currency: str, stages: StageSet) -> DealCommand:
    """Return the `/deal` command of `text`; the body of parse_deal."""
    first = (text or "").split(maxsplit=1)[0].lower() if (text or "").strip() else ""
    early_form = f"/deal {first}" if f"/deal {first}" in FORMS.examples else "/deal update"
    early_usage = FORMS.usage(early_form)
    words = split_words(prepare(text, early_usage), early_usage)
    if not words:
        return OpenDealModal()
    keyword = keyword_of(words[0])
    rest = words[1:]
    if keyword == "help":
        return DealHelp()
    if keyword == "new":
        return _parse_new_deal(rest, today=today, currency=currency, stages=stages)
    if keyword == "show":
        if not rest:
            raise CommandSyntaxError("Say which deal to show.", FORMS.usage("/deal show"))
        return ShowDeal(deal_ref(rest, FORMS.usage("/deal show")))
    if keyword in ("won", "lost"):
        return _parse_close_deal(rest, won=keyword == "won")
    if keyword == "followup":
        return _parse_follow_up(rest)
    if keyword == "delete":
        if not rest:
            raise CommandSyntaxError("Say which deal to delete.", FORMS.usage("/deal delete"))
        return DeleteDeal(deal_ref(rest, FORMS.usage("/deal delete")))
    if keyword == "restore":
        return _parse_restore(rest)
    if keyword == "merge":
        return _parse_merge(rest)
    evidence_at = _evidence_start(words)
    if evidence_at is not None:
        return _parse_evidence(words, evidence_at)
    return _parse_update_deal(words, today=today, currency=currency, stages=stages)


def _parse_new_deal(
    words: Sequence[Word], *, today: date, currency: str, stages: StageSet
) -> NewDeal:
    """Return `/deal new <account> [amount] [options]`."""
    usage = FORMS.usage("/deal new")
    items = pick_options(words, None)
    if not items or not isinstance(items[0], Word):
        raise CommandSyntaxError("Name the account for the new deal.", usage)
    account_end = 1
    if not items[0].quoted:
        while account_end < len(items):
            item = items[account_end]
            if not isinstance(item, Word) or item.quoted or starts_amount(items, account_end):
                break
            account_end += 1
    account_words = [item for item in items[:account_end] if isinstance(item, Word)]
    account = read_name(account_words, "account", usage)
    _refuse_unread_tail(
        account_words,
        plain_followers(items, account_end - 1, 3),
        today=today,
        currency=currency,
        stages=stages,
    )
    changes = _deal_changes(
        items[account_end:],
        today=today,
        currency=currency,
        stages=stages,
        usage=usage,
        allow_amount=True,
    )
    for key in _EXISTING_DEAL_OPTIONS:
        if getattr(changes, _DEAL_OPTIONS[key]) is not None:
            raise CommandSyntaxError(
                f"`{key}:` changes an existing deal; a new deal is yours, named as typed.",
                FORMS.usage("/deal rename"),
            )
    return NewDeal(account, changes)


def _refuse_unread_tail(
    words: Sequence[Word],
    following: Sequence[Word],
    *,
    today: date,
    currency: str,
    stages: StageSet,
) -> None:
    """Refuse account words that read as an amount or an option dealbot could not take.

    `/deal new Pied Piper fifty grand` would otherwise make an account called "Pied Piper
    fifty grand", and `/deal new Acme amount 50k` one called "Acme amount". `following` are
    the plain words after the account (an amount), which an option's value may have taken.
    A quoted name is taken as it is: quoting is how to say that the words are the name.
    """
    usage = FORMS.usage("/deal new")
    after = [word.text.lower() for word in following]
    for index in range(1, len(words)):
        tail = words[index:]
        texts = [word.text.lower().strip(".,!?$€£") for word in tail]
        key, equals, value = texts[0].partition("=")
        own = [value, *texts[1:]] if value else texts[1:]
        reads_alone = _reads_as_option(key, own, today, currency, stages)
        took_after = not reads_alone and _reads_as_option(key, own + after, today, currency, stages)
        option_like = key in _DEAL_OPTIONS and (bool(equals) or reads_alone or took_after)
        amount_like = all(text in _NUMBER_WORDS | _AMOUNT_WORDS for text in texts) and any(
            text in _AMOUNT_WORDS for text in texts
        )
        if option_like or amount_like:
            # The words after the account are shown when the option's value took them.
            shown_words = (*tail, *(following if option_like and took_after else ()))
            shown = clip(" ".join(word.raw for word in shown_words))
            name = clip(" ".join(word.raw for word in words))
            what = "an option" if option_like else "an amount"
            hint = f"`{key}:`" if option_like else "digits, like `50k`"
            raise CommandSyntaxError(
                f"Is `{shown}` {what}? I could not read it as one: write it with {hint}, "
                f'or quote the account name if that is its name: `/deal new "{name}"`.',
                usage,
            )


def _reads_as_option(
    key: str, words: Sequence[str], today: date, currency: str, stages: StageSet
) -> bool:
    """Return whether some first `words` are a valid value of option `key` (no colon)."""
    readers = {
        "stage": lambda value: match_stage(value, stages.stages),
        "forecast": match_forecast,
        "close": lambda value: parse_date(value, today=today),
        "amount": lambda value: parse_amount(value, default_currency=currency),
    }
    read = readers.get(key)
    if read is None:
        return False
    for count in range(len(words), 0, -1):
        try:
            read(" ".join(words[:count]))
        except DOMAIN_ERRORS:
            continue
        return True
    return False


def _parse_restore(words: Sequence[Word]) -> RestoreDeal:
    """Return `/deal restore #<id>`: a deleted deal is named by its id only."""
    usage = FORMS.usage("/deal restore")
    if len(words) != 1:
        raise CommandSyntaxError("Give the id of the deleted deal, like `#42`.", usage)
    ref = deal_ref(words, usage)
    if ref.deal_id is None:
        raise CommandSyntaxError(
            f"`{clip(words[0].raw)}` is not a deal id: a deleted deal is restored by its id.",
            usage,
        )
    return RestoreDeal(ref)


def _parse_merge(words: Sequence[Word]) -> MergeDeals:
    """Return `/deal merge <deal> into <deal>`; a deal called "into" is quoted."""
    usage = FORMS.usage("/deal merge")
    split = [i for i, word in enumerate(words) if word.plain and word.text.lower() == "into"]
    if len(split) != 1:
        problem = (
            "Say which deal to merge into which, with `into` between them."
            if not split
            else "`into` appears twice: quote a deal name that contains it."
        )
        raise CommandSyntaxError(problem, usage)
    source, target = words[: split[0]], words[split[0] + 1 :]
    if not source or not target:
        missing = "merge" if not source else "merge it into"
        raise CommandSyntaxError(f"Say which deal to {missing}.", usage)
    return MergeDeals(deal_ref(source, usage), into=deal_ref(target, usage))


def _parse_update_deal(
    words: Sequence[Word], *, today: date, currency: str, stages: StageSet
) -> UpdateDeal:
    """Return `/deal <deal> <options>`; the deal is every word before the first option."""
    usage = FORMS.usage("/deal update")
    items = pick_options(words, None)
    ref_end = next((i for i, item in enumerate(items) if isinstance(item, Option)), len(items))
    ref_words = [item for item in items[:ref_end] if isinstance(item, Word)]
    if not ref_words:
        raise CommandSyntaxError(f"Say which deal to change before `{clip(items[0].raw)}`.", usage)
    deal = deal_ref(ref_words, usage)
    if ref_end == len(items):
        # `/deal shwo Initech`: with nothing to change, a near miss of a sub-command was meant.
        shown = clip(" ".join(word.raw for word in ref_words))
        meant = close_keyword(ref_words[0], _SUBCOMMANDS)
        if meant is not None:
            form = f"/deal {meant}" if f"/deal {meant}" in FORMS.examples else "/deal"
            typed = " ".join([f"/deal {meant}", *(word.raw for word in ref_words[1:])])
            raise CommandSyntaxError(
                f"Nothing to change on `{shown}`. Did you mean `{clip(typed)}`?",
                FORMS.usage(form),
            )
        hint = "" if len(ref_words) > 1 else f" (to see it: `/deal show {shown}`)"
        raise CommandSyntaxError(
            f"Nothing to change on `{shown}`: add an option like stage: or close:{hint}.",
            usage,
        )
    changes = _deal_changes(
        items[ref_end:],
        today=today,
        currency=currency,
        stages=stages,
        usage=usage,
        allow_amount=False,
    )
    return UpdateDeal(deal, changes)


def _parse_close_deal(words: Sequence[Word], *, won: bool) -> CloseDeal:
    """Return `/deal won <deal> [reason]` or `/deal lost <deal> <reason>`."""
    usage = FORMS.usage("/deal won" if won else "/deal lost")
    if not words:
        raise CommandSyntaxError(f"Say which deal was {'won' if won else 'lost'}.", usage)
    deal = deal_ref(words[:1], usage)
    reason = free_text(words[1:], "reason", usage, limit=MAX_FREE_TEXT)
    if reason is None and not won:
        raise CommandSyntaxError(
            f"Say why `{clip(words[0].raw)}` was lost, after the deal name.", usage
        )
    return CloseDeal(deal, won, reason)


def _parse_follow_up(words: Sequence[Word]) -> FollowUp:
    """Return `/deal followup <deal> [template]`."""
    usage = FORMS.usage("/deal followup")
    if not words:
        raise CommandSyntaxError("Say which deal to follow up on.", usage)
    deal = deal_ref(words[:1], usage)
    if len(words) > 2:
        raise CommandSyntaxError(
            f"`{clip(' '.join(w.raw for w in words[2:]))}` is extra: give one template name.",
            usage,
        )
    template = words[1].text.strip().lower() if len(words) == 2 else None
    if template is not None and not _TEMPLATE_RE.match(template):
        raise CommandSyntaxError(
            f"`{clip(words[1].raw)}` is not a template name like `proposal_sent`.", usage
        )
    return FollowUp(deal, template)


def _deal_changes(
    items: Sequence[Item],
    *,
    today: date,
    currency: str,
    stages: StageSet,
    usage: str,
    allow_amount: bool,
) -> DealChanges:
    """Return the changes the options in `items` ask for."""
    values: dict[str, Any] = {}
    contacts: list[ContactRef] = []

    def positional(item: Word, index: int) -> int:
        if allow_amount and starts_amount(items, index):
            if "amount" in values:
                raise CommandSyntaxError(
                    f"`{clip(item.raw)}` is a second amount: give one, and quote an "
                    "account name that contains numbers.",
                    usage,
                )
            with as_syntax_error(usage):
                money, used = read_amount(item, plain_followers(items, index, 1), currency)
            values["amount"] = money
            return 1 + used
        if starts_amount(items, index):
            raise CommandSyntaxError(
                f"`{clip(item.raw)}` is unexpected: set an amount with `amount:{item.text}`.",
                usage,
            )
        raise unexpected(item, items[:index], usage)

    def option(option: Option, value: Word, index: int) -> int:
        with as_syntax_error(usage):
            return _apply_deal_option(
                option,
                value,
                items,
                index,
                (values, contacts),
                today=today,
                currency=currency,
                stages=stages,
                usage=usage,
            )

    def amount_given(option: Option) -> str | None:
        if option.key == "amount" and "amount" in values:
            return "The amount is given twice; give it once."
        if option.key in ("name", "title") and "title" in values:
            return "`name:` and `title:` both name the deal; give one."
        return None

    spec = OptionSpec(tuple(_DEAL_OPTIONS), usage, repeatable=frozenset({"contact"}))
    collect_options(items, spec, read=option, word=positional, already=amount_given)
    return DealChanges(contacts=tuple(contacts), **values)


def _apply_deal_option(
    option: Option,
    value: Word,
    items: Sequence[Item],
    index: int,
    changes: tuple[dict[str, Any], list[ContactRef]],
    *,
    today: date,
    currency: str,
    stages: StageSet,
    usage: str,
) -> int:
    """Return how many words after `items[index]` the option used, storing its value."""
    values, contacts = changes
    key = option.key
    field_name = _DEAL_OPTIONS[key]
    followers = plain_followers(items, index, 3)
    used = 0
    if key == "close":
        values[field_name], used = longest_reading(
            value, followers, lambda text: parse_date(text, today=today)
        )
    elif key == "stage":
        stage, used = longest_reading(
            value, followers[:1], lambda text: match_stage(text, stages.stages)
        )
        values[field_name], values["team_stage"] = stages.stored(stage)
    elif key == "forecast":
        values[field_name], used = longest_reading(value, followers[:1], match_forecast)
    elif key == "amount":
        values[field_name], used = read_amount(value, followers[:1], currency)
    elif key == "contact":
        contacts.append(contact_ref(value, key, usage))
    elif key in ("buyer", "champion"):
        values[field_name] = contact_ref(value, key, usage)
    elif key == "title":
        values[field_name] = read_name([value], "title", usage)
    elif key in ("name", "account"):
        values[field_name] = read_name([value], "deal name" if key == "name" else key, usage)
    elif key == "owner":
        values[field_name] = user_ref(value, usage).user_id
    else:
        values[field_name] = free_text([value], f"`{key}:` text", usage, limit=MAX_FREE_TEXT)
    return used


# --- `/deal <deal> evidence <kind>: <link>` --------------------------------------------------

# Other words reps type for a kind; the stored kinds are EVIDENCE_KINDS' keys.
_KIND_ALIASES: Final[dict[str, str]] = {
    "buyer": "eb",
    "economic_buyer": "eb",
    "decision_criteria": "criteria",
    "decision_process": "process",
    "paper_process": "paper",
}
# A Slack message permalink: https://<workspace>.slack.com/archives/<channel>/p<ts digits>,
# perhaps with ?thread_ts=…&cid=… for a reply in a thread.
_SLACK_PERMALINK_RE: Final = re.compile(
    r"^https://[a-z0-9][a-z0-9-]*(\.enterprise)?\.slack\.com/archives/[CGD][A-Z0-9]{2,30}"
    r"/p\d{16}(\?[A-Za-z0-9_.=&%-]*)?$"
)
# A Gmail web link to one message: https://mail.google.com/mail/u/<n>/#<folder>/<id>.
_GMAIL_LINK_RE: Final = re.compile(
    r"^https://mail\.google\.com/mail/u/\d{1,2}/#[a-z]+(/[A-Za-z0-9_%+-]+)?/[A-Za-z0-9]{16,}$"
)
# A bare Gmail message id: 16 hex digits (the API's id) or `msg-f:<digits>` (the RFC id
# Gmail shows under "Show original").
_GMAIL_ID_RE: Final = re.compile(r"^([0-9a-f]{16}|msg-f:\d{10,20})$")


def _evidence_start(words: Sequence[Word]) -> int | None:
    """Return the index of the `evidence` word of `/deal <deal> evidence …`, or None.

    The deal is the words before it (no option among them); a deal whose name contains the
    word "evidence" is quoted.
    """
    for index, word in enumerate(words):
        if isinstance(pick_options([word], None)[0], Option):
            return None
        if index >= 1 and keyword_of(word) == "evidence":
            return index
    return None


def _parse_evidence(words: Sequence[Word], at: int) -> CiteEvidence:
    """Return `/deal <deal> evidence <kind>: <link>`, `evidence` being `words[at]`."""
    usage = FORMS.usage("/deal evidence")
    deal = deal_ref(words[:at], usage)
    rest = list(words[at + 1 :])
    if not rest:
        raise CommandSyntaxError(
            f"Say what to cite: one of {', '.join(EVIDENCE_KINDS)}, then a link.", usage
        )
    first = rest[0]
    head = first.pieces[0]
    kind_text, colon, after = (
        head.value.partition(":") if head.kind == "text" and not head.quoted else ("", "", "")
    )
    if not colon:
        kind_text = first.text
    link_words: list[Word] = rest[1:]
    if colon and (after or len(first.pieces) > 1):
        # `eb:<link>`: the link is the rest of the same word.
        pieces = ((Piece("text", after),) if after else ()) + first.pieces[1:]
        link_words = [Word(pieces, first.raw[len(kind_text) + 1 :]), *rest[1:]]
    kind = _evidence_kind(kind_text, first, usage)
    if not link_words:
        raise CommandSyntaxError(
            f"Paste the link to cite after `{kind}:` (a Slack message link or a Gmail message).",
            usage,
        )
    if len(link_words) > 1:
        extra = clip(" ".join(word.raw for word in link_words[1:]))
        raise CommandSyntaxError(f"`{extra}` is extra: cite one link at a time.", usage)
    source, reference = read_evidence_link(link_words[0], usage)
    return CiteEvidence(deal, kind=kind, source=source, reference=reference)


def _evidence_kind(text: str, word: Word, usage: str) -> str:
    """Return the evidence kind `text` names; a near miss is asked about."""
    typed = text.strip().lower().replace("-", "_")
    kind = _KIND_ALIASES.get(typed, typed)
    if kind in EVIDENCE_KINDS:
        return kind
    known = (*EVIDENCE_KINDS, *_KIND_ALIASES)
    close = difflib.get_close_matches(typed, known, n=1, cutoff=0.6)
    hint = f" Did you mean `{_KIND_ALIASES.get(close[0], close[0])}`?" if close else ""
    raise CommandSyntaxError(
        f"`{clip(text or word.raw)}` is not a kind of evidence.{hint} "
        f"Kinds: {', '.join(EVIDENCE_KINDS)}.",
        usage,
    )


def read_evidence_link(word: Word, usage: str) -> tuple[str, str]:
    """Return (source, reference) of a Slack message permalink or a Gmail message link or id.

    Anything else is refused showing the right form: a citation that leads nowhere is not
    evidence.
    """
    link = next((piece.value for piece in word.pieces if piece.kind == "link"), None)
    text = (link if link is not None else word.text).strip()
    source = evidence_source(text)
    if source is not None:
        return source, text
    raise CommandSyntaxError(
        f"`{clip(word.raw)}` is not a Slack message link or a Gmail message. Copy a message's "
        "link in Slack (More actions › Copy link), or a Gmail link like "
        "https://mail.google.com/mail/u/0/#inbox/<id>, or a Gmail message id.",
        usage,
    )


def evidence_source(reference: str) -> str | None:
    """Return "slack" for a Slack message permalink, "gmail" for a Gmail message link or id,
    None for anything else."""
    if _SLACK_PERMALINK_RE.match(reference):
        return "slack"
    if _GMAIL_LINK_RE.match(reference) or _GMAIL_ID_RE.match(reference):
        return "gmail"
    return None
