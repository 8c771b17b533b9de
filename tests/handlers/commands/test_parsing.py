import unicodedata
from collections.abc import Callable
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.changes import ContactRef, DealChanges, DealRef
from domain.money import Money
from domain.stages import (
    DEFAULT_STAGES,
    Stage,
    StageSet,
    UnknownForecast,
    UnknownStage,
    match_forecast,
    match_stage,
)
from handlers.commands.dispatch import USAGE
from handlers.commands.grammars.deal import (
    CloseDeal,
    DealHelp,
    FollowUp,
    NewDeal,
    OpenDealModal,
    ShowDeal,
    UpdateDeal,
    parse_deal,
)
from handlers.commands.grammars.dealbot import (
    DealbotHelp,
    TeamAdd,
    TeamCreate,
    TeamCurrency,
    TeamQuota,
    TeamShow,
    TeamStages,
    parse_dealbot,
)
from handlers.commands.grammars.nextstep import (
    AddNextStep,
    CompleteNextStep,
    NextStepHelp,
    parse_nextstep,
)
from handlers.commands.grammars.pipeline import PipelineQuery, parse_pipeline
from handlers.commands.tokens import CommandSyntaxError
from handlers.commands.values import ChannelRef, UserRef

TODAY = date(2026, 3, 11)  # a Wednesday in 2026-Q1
PETER_ESCAPED = '"Peter Gibbons &lt;<mailto:peter@initech.com|peter@initech.com>&gt;"'
PETER = ContactRef("Peter Gibbons", "peter@initech.com", None)
HIDDEN_CHARACTERS = (
    "\u200b\u200c\u200d\u2060\ufeff\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def usd(amount: str) -> Money:
    return Money(Decimal(amount), "USD")


def deal(text: str) -> object:
    return parse_deal(text, today=TODAY)


def nextstep(text: str) -> object:
    return parse_nextstep(text, today=TODAY)


def dealbot(text: str) -> object:
    return parse_dealbot(text, today=TODAY)


# --- /deal ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", OpenDealModal()),
        ("   ", OpenDealModal()),
        ("help", DealHelp()),
        ("HELP", DealHelp()),
        (
            "new Initech 50k stage:discovery close:dec 15",
            NewDeal(
                "Initech",
                DealChanges(stage="discovery", close_date=date(2026, 12, 15), amount=usd("50000")),
            ),
        ),
        ("new Initech", NewDeal("Initech", DealChanges())),
        ("new Initech Europe $1.2M", NewDeal("Initech Europe", DealChanges(amount=usd("1200000")))),
        (
            "new Initech EUR 40000",
            NewDeal("Initech", DealChanges(amount=Money(Decimal(40000), "EUR"))),
        ),
        (
            "new Initech 40k eur",
            NewDeal("Initech", DealChanges(amount=Money(Decimal(40000), "EUR"))),
        ),
        ("new Acme Try 50k", NewDeal("Acme Try", DealChanges(amount=usd("50000")))),
        ("new 3M 50k", NewDeal("3M", DealChanges(amount=usd("50000")))),
        ('new "Initech 2.0" 50k', NewDeal("Initech 2.0", DealChanges(amount=usd("50000")))),
        (
            "new “Acme Corp” €40,000",
            NewDeal("Acme Corp", DealChanges(amount=Money(Decimal(40000), "EUR"))),
        ),
        (
            "new Initech stage:demo 50k",
            NewDeal("Initech", DealChanges(stage="demo", amount=usd("50000"))),
        ),
        ("new AT&amp;T 10k", NewDeal("AT&T", DealChanges(amount=usd("10000")))),
        (
            "new <http://initech.com|initech.com> 5k",
            NewDeal("initech.com", DealChanges(amount=usd("5000"))),
        ),
        (
            "new Initech forecast:best case stage:closed won",
            NewDeal("Initech", DealChanges(forecast="best_case", stage="closed_won")),
        ),
        (
            "Initech stage:proposal close:eoq amount:60k forecast:commit",
            UpdateDeal(
                DealRef("Initech", None),
                DealChanges(
                    stage="proposal",
                    close_date=date(2026, 3, 31),
                    amount=usd("60000"),
                    forecast="commit",
                ),
            ),
        ),
        (
            "Initech Europe close:in 2 weeks",
            UpdateDeal(DealRef("Initech Europe", None), DealChanges(close_date=date(2026, 3, 25))),
        ),
        (
            "Initech close:dec 15 2027 stage:neg",
            UpdateDeal(
                DealRef("Initech", None),
                DealChanges(close_date=date(2027, 12, 15), stage="negotiation"),
            ),
        ),
        (
            'Initech close:"next tuesday"',
            UpdateDeal(DealRef("Initech", None), DealChanges(close_date=date(2026, 3, 17))),
        ),
        ("Initech stage: demo", UpdateDeal(DealRef("Initech", None), DealChanges(stage="demo"))),
        (
            "Initech STAGE:Closed-Won",
            UpdateDeal(DealRef("Initech", None), DealChanges(stage="closed_won")),
        ),
        ("#42 stage:prop", UpdateDeal(DealRef(None, 42), DealChanges(stage="proposal"))),
        (
            '"new horizons" stage:demo',
            UpdateDeal(DealRef("new horizons", None), DealChanges(stage="demo")),
        ),
        (
            "Initech amount:40000 EUR",
            UpdateDeal(DealRef("Initech", None), DealChanges(amount=Money(Decimal(40000), "EUR"))),
        ),
        (
            "Initech amount:EUR 40000",
            UpdateDeal(DealRef("Initech", None), DealChanges(amount=Money(Decimal(40000), "EUR"))),
        ),
        (
            f"Initech contact:{PETER_ESCAPED}",
            UpdateDeal(DealRef("Initech", None), DealChanges(contacts=(PETER,))),
        ),
        (
            "Initech contact:<mailto:peter@initech.com|peter@initech.com> "
            'contact:"Peter Gibbons <peter@initech.com>" contact:Samir',
            UpdateDeal(
                DealRef("Initech", None),
                DealChanges(
                    contacts=(
                        ContactRef(None, "peter@initech.com", None),
                        PETER,
                        ContactRef("Samir", None, None),
                    )
                ),
            ),
        ),
        (
            'Initech buyer:<@U123|peter> champion:"Samir Nagheenanajar"',
            UpdateDeal(
                DealRef("Initech", None),
                DealChanges(
                    economic_buyer=ContactRef(None, None, "U123"),
                    champion=ContactRef("Samir Nagheenanajar", None, None),
                ),
            ),
        ),
        (
            "Initech buyer:<@W9>",
            UpdateDeal(
                DealRef("Initech", None), DealChanges(economic_buyer=ContactRef(None, None, "W9"))
            ),
        ),
        (
            'Initech buyer:"Bill Lumbergh <@U7|bill>"',
            UpdateDeal(
                DealRef("Initech", None),
                DealChanges(economic_buyer=ContactRef("Bill Lumbergh", None, "U7")),
            ),
        ),
        (
            'Initech criteria:"SSO &amp; audit &lt;log&gt;" process:“legal, then CFO” '
            'paper:"MSA + DPA" pain:churn metrics:"-20% churn" competition:Globex '
            'title:"Q4 expansion"',
            UpdateDeal(
                DealRef("Initech", None),
                DealChanges(
                    buying_criteria="SSO & audit <log>",
                    buying_process="legal, then CFO",
                    paper_process="MSA + DPA",
                    pain="churn",
                    metrics="-20% churn",
                    competition="Globex",
                    title="Q4 expansion",
                ),
            ),
        ),
        (
            'Initech criteria:"line one\nline two"',
            UpdateDeal(DealRef("Initech", None), DealChanges(buying_criteria="line one\nline two")),
        ),
        ("show Initech Europe", ShowDeal(DealRef("Initech Europe", None))),
        ("show #7", ShowDeal(DealRef(None, 7))),
        ("show Acme:West", ShowDeal(DealRef("Acme:West", None))),
        ("won Initech", CloseDeal(DealRef("Initech", None), True, None)),
        (
            "won #42 beat Globex on support",
            CloseDeal(DealRef(None, 42), True, "beat Globex on support"),
        ),
        (
            'lost "Acme Corp" price: too high',
            CloseDeal(DealRef("Acme Corp", None), False, "price: too high"),
        ),
        ("lost Ini went with <@U1|x>", CloseDeal(DealRef("Ini", None), False, "went with <@U1>")),
        ("followup Initech", FollowUp(DealRef("Initech", None), None)),
        ("followup Initech proposal_sent", FollowUp(DealRef("Initech", None), "proposal_sent")),
    ],
)
def test_parse_deal(text: str, expected: object) -> None:
    assert deal(text) == expected


def test_parse_deal_uses_the_team_currency_by_default() -> None:
    parsed = parse_deal("new Initech 50k", today=TODAY, default_currency="EUR")
    assert parsed == NewDeal("Initech", DealChanges(amount=Money(Decimal(50000), "EUR")))


def test_deal_changes_is_empty() -> None:
    assert DealChanges().is_empty()
    assert not DealChanges(pain="churn").is_empty()
    assert not DealChanges(contacts=(PETER,)).is_empty()


# --- /nextstep -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", NextStepHelp()),
        ("help", NextStepHelp()),
        (
            "Initech send the proposal due:fri owner:<@U9|jane>",
            AddNextStep(
                DealRef("Initech", None), "send the proposal", date(2026, 3, 13), UserRef("U9")
            ),
        ),
        ("Initech call Bill", AddNextStep(DealRef("Initech", None), "call Bill", None, None)),
        (
            "Initech due:in 2 weeks send pricing",
            AddNextStep(DealRef("Initech", None), "send pricing", date(2026, 3, 25), None),
        ),
        (
            "Initech re: pricing due:next tuesday",
            AddNextStep(DealRef("Initech", None), "re: pricing", date(2026, 3, 17), None),
        ),
        (
            '"Acme Corp" demo for <@U1|bob> &amp; team due:dec 15',
            AddNextStep(
                DealRef("Acme Corp", None), "demo for <@U1> & team", date(2026, 12, 15), None
            ),
        ),
        ("#42 sign", AddNextStep(DealRef(None, 42), "sign", None, None)),
        ("done Initech", CompleteNextStep(DealRef("Initech", None))),
        ('done "Acme Corp"', CompleteNextStep(DealRef("Acme Corp", None))),
    ],
)
def test_parse_nextstep(text: str, expected: object) -> None:
    assert nextstep(text) == expected


# --- /pipeline -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", PipelineQuery("me")),
        ("me", PipelineQuery("me")),
        ("team", PipelineQuery("team")),
        ("TEAM East", PipelineQuery("team", "East")),
        ('team "Sales East"', PipelineQuery("team", "Sales East")),
        ("<@U1|jane>", PipelineQuery(UserRef("U1"))),
        ("<@U1>", PipelineQuery(UserRef("U1"))),
    ],
)
def test_parse_pipeline(text: str, expected: PipelineQuery) -> None:
    assert parse_pipeline(text) == expected


# --- /dealbot --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", DealbotHelp()),
        ("help", DealbotHelp()),
        (
            "team create East <#C1|sales-east> tz:America/New_York",
            TeamCreate("East", ChannelRef("C1", "sales-east"), "America/New_York"),
        ),
        ("team create East <#C1|>", TeamCreate("East", ChannelRef("C1", None), None)),
        ('team create "Sales East" <#G2>', TeamCreate("Sales East", ChannelRef("G2", None), None)),
        (
            "team create EMEA <#C2|emea> currency:eur tz:Europe/Paris",
            TeamCreate("EMEA", ChannelRef("C2", "emea"), "Europe/Paris", "EUR"),
        ),
        ("team currency EMEA GBP", TeamCurrency("EMEA", "GBP")),
        ('team Currency "Sales East" chf', TeamCurrency("Sales East", "CHF")),
        (
            "team add East rep <@U1> <@U2|raj> <@U1>",
            TeamAdd("East", "rep", (UserRef("U1"), UserRef("U2"))),
        ),
        ("team add East Managers <@U3>", TeamAdd("East", "manager", (UserRef("U3"),))),
        (
            # No currency named: the team's own decides, which the command cannot know.
            "team quota East <@U1> 250k",
            TeamQuota("East", UserRef("U1"), usd("250000"), "2026-Q1", currency_named=False),
        ),
        (
            "team quota East <@U1> 250k usd",
            TeamQuota("East", UserRef("U1"), usd("250000"), "2026-Q1"),
        ),
        (
            "team quota East <@U1> 250k EUR period:2026-q4",
            TeamQuota("East", UserRef("U1"), Money(Decimal(250000), "EUR"), "2026-Q4"),
        ),
        (
            "team quota East <@U1> $1.2M period:Q1 2027",
            TeamQuota("East", UserRef("U1"), usd("1200000"), "2027-Q1"),
        ),
        ("team show", TeamShow(None)),
        ("team show East", TeamShow("East")),
        ("team stages East", TeamStages("East")),
        ('team stages "Enterprise West"', TeamStages("Enterprise West")),
    ],
)
def test_parse_dealbot(text: str, expected: object) -> None:
    assert dealbot(text) == expected


# --- Errors --------------------------------------------------------------------------

Parser = Callable[[str], object]

MALFORMED: list[tuple[Parser, str, str, str]] = [
    # (parser, text, what the problem must quote or say, the command form the usage shows)
    (deal, "Initech", "`/deal show Initech`", "/deal Initech"),
    (deal, "Initech stag:demo", "`stag:`", "/deal Initech"),
    (deal, "Initech stag:demo", "stage:", "/deal Initech"),
    (deal, "Initech due:fri", "`due:`", "/deal Initech"),
    (deal, "Initech stage:demo stage:prop", "`stage:` is given twice", "/deal Initech"),
    (deal, "Initech close:fri close:eoq", "`close:` is given twice", "/deal Initech"),
    (deal, "Initech stage:", "`stage:` needs a value", "/deal Initech"),
    (deal, 'Initech pain:""', "`pain:` needs a value", "/deal Initech"),
    (deal, "Initech stage:foo", "`foo` is not a stage", "/deal Initech"),
    (deal, "Initech stage:closed", "closed_won or closed_lost", "/deal Initech"),
    (deal, "Initech stage:won", "`/deal won <deal>`", "/deal Initech"),
    (deal, "Initech forecast:maybe", "`maybe` is not a forecast", "/deal Initech"),
    (deal, "Initech close:3/4", "`3/4` could be", "/deal Initech"),
    (deal, "Initech close:2026-02-30", "`2026-02-30` is not a real date", "/deal Initech"),
    (deal, "Initech close:dec 32 send", "`dec 32`", "/deal Initech"),
    (deal, "Initech close:next fooday", "`next fooday`", "/deal Initech"),
    (deal, "Initech amount:-5k", "`-5k` is negative", "/deal Initech"),
    (deal, "Initech amount:0", "`0` is zero", "/deal Initech"),
    (deal, "Initech amount:lots", "`lots`", "/deal Initech"),
    (deal, "Initech amount:5k amount:6k", "`amount:` is given twice", "/deal Initech"),
    (deal, "Initech stage:demo 50k", "`amount:50k`", "/deal Initech"),
    (deal, "Initech buyer:Peter Gibbons", "`Gibbons`", "/deal Initech"),
    (deal, "Initech buyer:@peter", "`@peter`", "/deal Initech"),
    (deal, "Initech buyer:<#C1|sales>", "channel", "/deal Initech"),
    (deal, 'Initech contact:"Peter <not-an-email>"', "`not-an-email`", "/deal Initech"),
    (deal, "stage:demo", "`stage:demo`", "/deal Initech"),
    (deal, "<@U1|jane> stage:demo", "`<@U1|jane>` is a person", "/deal Initech"),
    (deal, "#abc stage:demo", "`#abc`", "/deal Initech"),
    (deal, "#0 stage:demo", "`#0`", "/deal Initech"),
    (deal, "Initech title:" + "x" * 201, "longer than 200", "/deal Initech"),
    (deal, "Initech pain:" + "x" * 2001, "under 2000", "/deal Initech"),
    (deal, "Initech stage:demo\x07", "U+0007", "/deal Initech"),
    (deal, "new", "account", "/deal new"),
    (deal, "new stage:demo", "account", "/deal new"),
    (deal, 'new "Acme Corp', '`"Acme Corp`', "/deal new"),
    (deal, "new Initech 50k 60k", "`60k` is a second amount", "/deal new"),
    (deal, "new Initech 2.0 50k", "quote an account name", "/deal new"),
    (deal, "new Initech 50k $40 EUR", "second amount", "/deal new"),
    (deal, "new Initech €40k usd", "two currencies", "/deal new"),
    (deal, "new " + "A" * 201, "longer than 200", "/deal new"),
    (deal, "show", "which deal", "/deal show"),
    (deal, "won", "which deal", "/deal won"),
    (deal, "lost Initech", "`Initech` was lost", "/deal lost"),
    (deal, "lost Initech " + "x" * 2001, "under 2000", "/deal lost"),
    (deal, "followup", "which deal", "/deal followup"),
    (deal, "followup Initech a b", "`b`", "/deal followup"),
    (deal, "followup Initech Bad!", "`Bad!`", "/deal followup"),
    (nextstep, "Initech", "`Initech`", "/nextstep Initech"),
    (nextstep, "Initech due:fri", "next step on `Initech`", "/nextstep Initech"),
    (nextstep, "Initech call due:someday", "`someday`", "/nextstep Initech"),
    (nextstep, "Initech call due:fri due:mon", "`due:` is given twice", "/nextstep Initech"),
    (nextstep, "Initech call owner:@jane", "`@jane`", "/nextstep Initech"),
    (nextstep, "Initech call owner:", "`owner:` needs a value", "/nextstep Initech"),
    (nextstep, "Initech " + "x" * 501, "under 500", "/nextstep Initech"),
    (nextstep, "done", "which deal", "/nextstep done"),
    (nextstep, "done Initech Europe", "`Europe`", "/nextstep done"),
    (nextstep, "“Acme call them", "never closed", "/nextstep Initech"),
    (parse_pipeline, "bob", "`bob`", "/pipeline"),
    (parse_pipeline, "team East West", "`East West`", "/pipeline"),
    (parse_pipeline, "<@U1> <@U2>", "`<@U1> <@U2>`", "/pipeline"),
    (dealbot, "foo", "`foo`", "/dealbot team create"),
    (dealbot, "team", "`team`", "/dealbot team create"),
    (dealbot, "team delete East", "`delete` is not a /dealbot team", "/dealbot team create"),
    (dealbot, "team create East", "#channel", "/dealbot team create"),
    (dealbot, "team create East #sales", "`#sales`", "/dealbot team create"),
    (dealbot, "team create Sales East <#C1|x>", "`<#C1|x>`", "/dealbot team create"),
    (dealbot, "team create East <#C1|x> tz:Mars/Base", "`Mars/Base`", "/dealbot team create"),
    (
        dealbot,
        "team create East <#C1|x> tz:../../etc/passwd",
        "`../../etc/passwd`",
        "/dealbot team create",
    ),
    (dealbot, "team create East <#C1|x> zone:UTC", "`zone:`", "/dealbot team create"),
    (
        dealbot,
        "team create East <#C1|x> currency:EURO",
        "`EURO` is not a currency code",
        "/dealbot team create EMEA #sales-emea tz:Europe/Paris currency:EUR",
    ),
    (dealbot, "team currency East", "a currency code", "/dealbot team currency"),
    (dealbot, "team currency East $", "`$` is not a currency code", "/dealbot team currency"),
    (dealbot, "team currency Sales East EUR", "quote team names", "/dealbot team currency"),
    (dealbot, "team create <@U1> <#C1|x>", "`<@U1>` is a person", "/dealbot team create"),
    (dealbot, "team add East boss <@U1>", "`boss`", "/dealbot team add"),
    (dealbot, "team add East rep", "@user", "/dealbot team add"),
    (dealbot, "team add East rep <@U1> jane", "`jane`", "/dealbot team add"),
    (dealbot, "team quota East <@U1>", "amount", "/dealbot team quota"),
    (dealbot, "team quota East jane 5k", "`jane`", "/dealbot team quota"),
    (dealbot, "team quota East <@U1> lots", "`lots`", "/dealbot team quota"),
    (dealbot, "team quota East <@U1> 5k period:2026", "`2026`", "/dealbot team quota"),
    (dealbot, "team quota East <@U1> 5k extra", "`extra`", "/dealbot team quota"),
    (dealbot, "team show East West", "`East West`", "/dealbot team show"),
    (dealbot, "team stages", "team whose stages", "/dealbot team stages"),
    (dealbot, "team stages East West", "`East West`", "/dealbot team stages"),
]


@pytest.mark.parametrize(
    ("parse", "text", "named", "usage_starts"),
    MALFORMED,
    ids=[f"{parse.__name__}:{text[:40]}" for parse, text, _, _ in MALFORMED],
)
def test_malformed_commands_name_the_problem_and_show_the_right_form(
    parse: Parser, text: str, named: str, usage_starts: str
) -> None:
    with pytest.raises(CommandSyntaxError) as caught:
        parse(text)
    error = caught.value
    assert named in error.problem
    assert str(error) == error.problem
    assert error.usage.startswith(usage_starts)
    assert "\n" not in error.problem


def test_every_error_usage_is_a_help_example() -> None:
    examples = {line for lines in USAGE.values() for line in lines}
    for parse, text, _, _ in MALFORMED:
        with pytest.raises(CommandSyntaxError) as caught:
            parse(text)
        first = caught.value.usage.splitlines()[0]
        assert first in examples or first.startswith("/deal followup"), text


def test_usage_covers_every_command() -> None:
    assert set(USAGE) == {"/deal", "/nextstep", "/pipeline", "/dealbot"}
    assert all(USAGE[command] for command in USAGE)
    assert "/deal show Initech" in USAGE["/deal"]


@pytest.mark.parametrize("line", [line for lines in USAGE.values() for line in lines])
def test_every_help_example_parses(line: str) -> None:
    command, _, text = line.partition(" ")
    # Slack turns a picked @user or #channel into its escaped form; do the same here.
    text = (
        text.replace("@jane", "<@U1|jane>")
        .replace("@raj", "<@U2|raj>")
        .replace("@peter", "<@U3|peter>")
        .replace("@samir", "<@U4|samir>")
        .replace("#sales-east", "<#C1|sales-east>")
        .replace("#sales-emea", "<#C2|sales-emea>")
        .replace("<peter@initech.com>", "&lt;<mailto:peter@initech.com|peter@initech.com>&gt;")
    )
    parsers: dict[str, Parser] = {
        "/deal": deal,
        "/nextstep": nextstep,
        "/pipeline": parse_pipeline,
        "/dealbot": dealbot,
    }
    parsers[command](text)


# --- The stage and forecast vocabulary the options rely on ---------------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("closed won", "closed_won"),
        ("closed_won", "closed_won"),
        ("Closed-Won", "closed_won"),
        ("closed lost", "closed_lost"),
        ("neg", "negotiation"),
        ("prop", "proposal"),
        ("pros", "prospecting"),
        ("DEMO", "demo"),
        ("disc", "discovery"),
    ],
)
def test_match_stage(text: str, key: str) -> None:
    assert match_stage(text).key == key


@pytest.mark.parametrize("text", ["won", "lost", "closed", "p", "", "qualification"])
def test_match_stage_refuses_and_lists_stages(text: str) -> None:
    with pytest.raises(UnknownStage):
        match_stage(text)


def test_unknown_stage_lists_the_valid_ones() -> None:
    with pytest.raises(UnknownStage, match="prospecting, discovery, demo"):
        match_stage("qualification")


def test_default_stages_are_ordered_with_probabilities() -> None:
    assert [stage.order for stage in DEFAULT_STAGES] == sorted(s.order for s in DEFAULT_STAGES)
    probabilities = {stage.key: stage.probability for stage in DEFAULT_STAGES}
    assert probabilities["negotiation"] == Decimal("0.80")
    assert probabilities["closed_won"] == 1
    assert probabilities["closed_lost"] == 0
    assert [stage.key for stage in DEFAULT_STAGES if stage.is_closed] == [
        "closed_won",
        "closed_lost",
    ]


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("best case", "best_case"),
        ("best-case", "best_case"),
        ("bestcase", "best_case"),
        ("Best_Case", "best_case"),
        ("best", "best_case"),
        ("commit", "commit"),
        ("com", "commit"),
        ("pipe", "pipeline"),
        ("omit", "omitted"),
    ],
)
def test_match_forecast(text: str, key: str) -> None:
    assert match_forecast(text) == key


@pytest.mark.parametrize("text", ["", "maybe", "best cases"])
def test_match_forecast_refuses(text: str) -> None:
    with pytest.raises(UnknownForecast, match="pipeline, best_case, commit, omitted"):
        match_forecast(text)


# --- Properties: whatever Slack sends, only CommandSyntaxError comes out ----------------

PARSERS: list[Parser] = [deal, nextstep, parse_pipeline, dealbot]

fragments = st.sampled_from(
    [
        "new", "show", "won", "lost", "help", "followup", "done", "team", "create", "add",
        "quota", "me", "rep", "manager", "Initech", "Acme Corp", "#42", "#", "#0", "50k",
        "$1.2M", "€40,000", "EUR", "-5", "0", "1e9999", "stage:", "close:", "amount:",
        "forecast:", "buyer:", "champion:", "contact:", "criteria:", "process:", "paper:",
        "pain:", "metrics:", "competition:", "title:", "due:", "owner:", "tz:", "period:",
        "dec 15", "next tuesday", "in 2 weeks", "eoq", "2026-02-30", "12/15", "2026-Q4",
        "closed won", "best case", '"', "“", "”", "„", "<", ">", "|", ":", "&amp;", "&lt;",
        "&gt;", "&", "<@U123|jane>", "<@U123>", "<@>", "<#C123|sales>", "<#C123|>",
        "<#C123>", "<mailto:peter@initech.com|peter@initech.com>", "<http://x|x>",
        "<!here>", "<!subteam^S1|@sales>", "Europe/Paris", "../etc", "\n", "\t", " ",
        "ß", "İ", "日本", "٣", "🙂", "\u200b", "\u00a0", "\x00", "\x1f",
    ]
)  # fmt: skip
grammarish = st.lists(st.one_of(fragments, st.text(max_size=5)), max_size=14).map(
    lambda parts: " ".join(parts) if len(parts) % 2 else "".join(parts)
)


def assert_only_syntax_errors(parse: Parser, text: str) -> None:
    try:
        parse(text)
    except CommandSyntaxError as error:
        assert error.problem
        assert error.usage
        # The catch-all message means an unexpected exception slipped through: a bug.
        assert "could not read" not in error.problem, text


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(parse=st.sampled_from(PARSERS), text=st.text())
def test_any_text_raises_only_command_syntax_error(parse: Parser, text: str) -> None:
    assert_only_syntax_errors(parse, text)


@settings(max_examples=1500, suppress_health_check=[HealthCheck.too_slow])
@given(parse=st.sampled_from(PARSERS), text=grammarish)
def test_grammar_like_text_raises_only_command_syntax_error(parse: Parser, text: str) -> None:
    assert_only_syntax_errors(parse, text)


@settings(max_examples=300)
@given(
    parse=st.sampled_from(PARSERS),
    prefix=st.sampled_from(["", "new ", "Initech ", "team create ", "team quota East <@U1> "]),
    key=st.sampled_from(
        ["stage:", "close:", "amount:", "buyer:", "contact:", "due:", "tz:", "period:"]
    ),
    value=st.text(max_size=20),
)
def test_option_values_raise_only_command_syntax_error(
    parse: Parser, prefix: str, key: str, value: str
) -> None:
    assert_only_syntax_errors(parse, f"{prefix}{key}{value}")


@given(day=st.dates(min_value=date(2000, 1, 1), max_value=date(2100, 12, 31)))
def test_iso_close_dates_pass_through(day: date) -> None:
    assert deal(f"Initech close:{day.isoformat()}") == UpdateDeal(
        DealRef("Initech", None), DealChanges(close_date=day)
    )


@given(
    name=st.text(
        alphabet=st.characters(
            blacklist_categories=("Cc", "Cs", "Z"),
            # Quotes and Slack's control characters, and the hidden characters names refuse.
            blacklist_characters='"“”„<>&' + HIDDEN_CHARACTERS,
        ),
        min_size=1,
        max_size=30,
    )
)
def test_any_quoted_name_is_a_deal_reference(name: str) -> None:
    # Names are NFC: a compatibility ideograph such as U+F9E9 is read as its canonical U+4E3D.
    expected = unicodedata.normalize("NFC", name)
    assert deal(f'show "{name}"') == ShowDeal(DealRef(expected, None))


# --- Text that travels: contacts as people type them, names without hidden characters ---


@pytest.mark.parametrize(
    "value",
    [
        # What Slack sends for `buyer:"Peter Gibbons peter@initech.com"`: the address linked.
        '"Peter Gibbons <mailto:peter@initech.com|peter@initech.com>"',
        # ... and with the address not linked (an older client, or typed inside code).
        '"Peter Gibbons peter@initech.com"',
        '"Peter Gibbons, peter@initech.com"',
        # The bracketed form keeps working.
        PETER_ESCAPED,
        '"Peter Gibbons &lt;peter@initech.com&gt;"',
    ],
)
@pytest.mark.parametrize("key", ["buyer", "champion", "contact"])
def test_a_contact_typed_as_name_space_address_is_read_as_name_and_email(
    key: str, value: str
) -> None:
    parsed = deal(f"Initech {key}:{value}")
    assert isinstance(parsed, UpdateDeal)
    changes = parsed.changes
    found = {"buyer": changes.economic_buyer, "champion": changes.champion}.get(
        key, changes.contacts[0] if changes.contacts else None
    )
    assert found == PETER


def test_a_name_then_something_that_is_not_an_address_is_still_refused() -> None:
    with pytest.raises(CommandSyntaxError) as caught:
        deal('Initech buyer:"Peter Gibbons peter@initech"')
    assert "`peter@initech` in `buyer:` is not an email address" in caught.value.problem


@pytest.mark.parametrize(
    "text",
    [
        "new Acme\u200b 50k",
        'new "Acme\u200b" 50k',
        'Initech title:"Renewal\u202e"',
        'Initech contact:"Peter\u2060 Gibbons <peter@initech.com>"',
        'Initech contact:"Peter Gibbons peter\u200d@initech.com"',
        "show Acme\ufeff",
        'team create "East\u2066" <#C1|sales>',
    ],
)
def test_a_name_with_a_hidden_character_is_refused_naming_it(text: str) -> None:
    parse = parse_dealbot if text.startswith("team ") else parse_deal
    with pytest.raises(CommandSyntaxError) as caught:
        parse(text, today=TODAY)
    assert "invisible character (U+" in caught.value.problem


def test_a_name_is_nfc_normalised_so_acme_typed_two_ways_is_one_acme() -> None:
    composed = deal("new Café 10k")
    decomposed = deal("new Cafe\u0301 10k")
    assert isinstance(composed, NewDeal) and isinstance(decomposed, NewDeal)
    assert decomposed.account == composed.account == "Café"


def test_a_typed_channel_mention_round_trips_as_the_text_the_rep_typed() -> None:
    # A literal `<!channel>` arrives entity-escaped; the parser stores the typed text.
    parsed = deal("new &lt;!channel&gt; 10k")
    assert isinstance(parsed, NewDeal)
    assert parsed.account == "<!channel>"


def test_a_problem_quotes_what_the_rep_typed_not_slack_s_escaping() -> None:
    with pytest.raises(CommandSyntaxError) as caught:
        nextstep("Initech Call Bill owner:&lt;bill&amp;co&gt;")
    assert "`<bill&co>` is not a Slack user" in caught.value.problem
    with pytest.raises(CommandSyntaxError) as caught:
        parse_pipeline("&lt;everyone&gt;")
    assert "`<everyone>` is not a pipeline" in caught.value.problem


def test_a_team_with_its_own_stages_types_them_and_the_default_each_maps_to_is_stored() -> None:
    evaluate = Stage("evaluate", "Evaluate", Decimal("0.5"), 1, (), False, maps_to="demo")
    stages = StageSet(team_key="east", stages=(evaluate,))
    parsed = parse_deal("initech stage:eval", today=TODAY, stages=stages)
    assert isinstance(parsed, UpdateDeal)
    assert (parsed.changes.stage, parsed.changes.team_stage) == ("demo", "east:evaluate")
    with pytest.raises(CommandSyntaxError, match="`demo` is not a stage: use one of evaluate"):
        parse_deal("initech stage:demo", today=TODAY, stages=stages)
    default = parse_deal("initech stage:demo", today=TODAY)
    assert isinstance(default, UpdateDeal) and default.changes.team_stage is None
