"""Each accuracy check at its boundaries, the score, and the checks file's refusals."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from domain.checks import (
    CHECK_IDS,
    DEFAULT_CHECKS_FILE,
    ChecksFileError,
    DealFacts,
    bundled_checks,
    fired_checks,
    load_checks,
    parse_checks,
    score_reps,
)

TODAY = dt.date(2026, 11, 23)
NOON = dt.datetime(2026, 11, 23, 17, tzinfo=dt.UTC)
CONFIG = load_checks(DEFAULT_CHECKS_FILE)

# A deal every check passes: the baseline each test changes one fact of.
HEALTHY = DealFacts(
    deal_id=1,
    owner_id="U0ANA",
    account="Initech",
    stage="proposal",
    status="open",
    forecast_category="commit",
    has_amount=True,
    close_date=TODAY + dt.timedelta(days=20),
    open_steps=1,
    open_steps_dated=1,
    next_step_due=TODAY + dt.timedelta(days=3),
    last_activity_at=NOON - dt.timedelta(days=1),
    stage_entered_at=NOON - dt.timedelta(days=5),
    contacts=2,
    has_economic_buyer=True,
    has_buying_criteria=True,
    has_buying_process=True,
    has_paper_process=True,
)


def fired(**changes: object) -> tuple[str, ...]:
    return fired_checks(HEALTHY._replace(**changes), TODAY, CONFIG)


def test_the_healthy_deal_passes_every_check() -> None:
    assert fired() == ()


def test_the_bundled_file_lists_every_check_in_the_spec() -> None:
    assert set(CONFIG.enabled) == set(CHECK_IDS)
    assert "LOST_WITHOUT_REASON" in CONFIG.enabled


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        # NEXT_STEP_OVERDUE: due today is not overdue, yesterday is.
        ({"next_step_due": TODAY}, ()),
        ({"next_step_due": TODAY - dt.timedelta(days=1)}, ("NEXT_STEP_OVERDUE",)),
        # NEXT_STEP_TOO_FAR: 14 days out is fine, 15 is too far.
        ({"next_step_due": TODAY + dt.timedelta(days=14)}, ()),
        ({"next_step_due": TODAY + dt.timedelta(days=15)}, ("NEXT_STEP_TOO_FAR",)),
        # NO_NEXT_STEP: an undated open step does not count.
        ({"open_steps_dated": 0, "next_step_due": None}, ("NO_NEXT_STEP",)),
        ({"open_steps_without_owner": 1}, ("NEXT_STEP_NO_OWNER",)),
        # CLOSE_DATE_PAST: closing today is not past.
        ({"close_date": TODAY}, ()),
        ({"close_date": TODAY - dt.timedelta(days=1)}, ("CLOSE_DATE_PAST",)),
        # CLOSE_DATE_SLIPPED: once is life, twice in a quarter is a pattern.
        ({"close_date_pushes_this_quarter": 1}, ()),
        ({"close_date_pushes_this_quarter": 2}, ("CLOSE_DATE_SLIPPED",)),
        ({"pushed_out_of_quarter": True}, ("CLOSE_DATE_SLIPPED",)),
        # STALE: the 14th quiet day is not stale, the 15th is.
        ({"last_activity_at": NOON - dt.timedelta(days=14)}, ()),
        ({"last_activity_at": NOON - dt.timedelta(days=15)}, ("STALE",)),
        # STALLED_IN_STAGE: proposal's limit is 45 days in checks.yml.
        ({"stage_entered_at": NOON - dt.timedelta(days=45)}, ()),
        ({"stage_entered_at": NOON - dt.timedelta(days=46)}, ("STALLED_IN_STAGE",)),
        ({"has_economic_buyer": False}, ("NO_ECONOMIC_BUYER", "STAGE_CRITERIA_UNMET")),
        ({"contacts": 1}, ("SINGLE_THREADED",)),
        ({"has_buying_process": False}, ("STAGE_CRITERIA_UNMET",)),
        ({"has_amount": False}, ("STAGE_CRITERIA_UNMET", "NO_AMOUNT")),
    ],
)
def test_each_check_fires_just_past_its_boundary(
    changes: dict[str, object], expected: tuple[str, ...]
) -> None:
    # The healthy deal is forecast as commit, so any evidence gap also fires the commit check.
    with_commit = (*expected, "COMMIT_WITHOUT_EVIDENCE") if expected else ()
    order = {check: i for i, check in enumerate(CHECK_IDS)}
    assert fired(**changes) == tuple(sorted(with_commit, key=order.__getitem__))


def test_stage_thresholds_differ_per_stage() -> None:
    stalled = {"stage_entered_at": NOON - dt.timedelta(days=25), "forecast_category": "pipeline"}
    assert fired(stage="proposal", **stalled) == ()
    # Prospecting allows 21 days; its exit criteria ask for nothing.
    assert "STALLED_IN_STAGE" in fired(stage="prospecting", **stalled)


def test_economic_buyer_and_threading_only_count_from_their_stage() -> None:
    early = {"stage": "discovery", "forecast_category": "pipeline"}
    assert fired(has_economic_buyer=False, contacts=1, **early) == ()
    assert fired(stage="demo", contacts=1, forecast_category="pipeline") == ("SINGLE_THREADED",)


def test_commit_without_evidence_needs_commit() -> None:
    assert fired(contacts=1, forecast_category="best_case") == ("SINGLE_THREADED",)


def test_a_closed_deal_without_reason_fires_until_the_post_mortem_is_in() -> None:
    closed = {"status": "lost", "stage": "closed_lost", "has_amount": False}
    assert fired(**closed) == ("LOST_WITHOUT_REASON",)
    assert fired(has_close_reason=True, **closed) == ()
    assert fired(has_post_mortem=True, **closed) == ()


def test_accuracy_score_is_checks_passed_over_checks_counted() -> None:
    deals = [
        HEALTHY,
        HEALTHY._replace(deal_id=2, has_amount=False, forecast_category="pipeline"),
    ]
    score = score_reps(deals, lambda _rep: (TODAY, dt.UTC), CONFIG)["U0ANA"]
    open_checks = len(CHECK_IDS) - 1  # LOST_WITHOUT_REASON is for closed deals
    assert (score.checked, score.passed) == (2 * open_checks, 2 * open_checks - 2)
    check, count, _gain = score.best_fix() or ("", 0, 0)
    assert (check, count) == ("STAGE_CRITERIA_UNMET", 1)


BUNDLED = DEFAULT_CHECKS_FILE.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("old", "new", "line_of", "reason"),
    [
        (
            "    max_days: 14\n  CLOSE",
            "    max_days: fourteen\n  CLOSE",
            "max_days: fourteen",
            "whole number",
        ),
        ("  NO_AMOUNT: {}", "  NO_AMOUNTS: {}", "NO_AMOUNTS", "not a check id"),
        ("      proposal: 45", "      propsal: 45", "propsal", "must be one of"),
        ("version: 1", "version: 7", "version: 7", "not supported"),
        (
            "    from_stage: proposal",
            "    from_stage: proposal\n    colour: red",
            "colour",
            "no setting 'colour'",
        ),
        ("nudges:\n", "nudges:\n  chase_per_rep_per_day: 1\n", "chase_per_rep", "one chase a day"),
        ("  weekends: false", "  weekends: false\n  holidays: true", "holidays", "no setting"),
        ("version: 1", "version: 1\ncolour: red", "colour", "unknown section 'colour'"),
        ("  NO_AMOUNT: {}", "  NO_AMOUNT: {}\n  NO_AMOUNT: {}", "NO_AMOUNT", "appears twice"),
        ("  NO_AMOUNT: {}", "  NO_AMOUNT: {enabled: maybe}", "NO_AMOUNT", "true or false"),
        ("    max_days: 14\n  CLOSE", "    max_days: true\n  CLOSE", "max_days: true", "whole"),
        ("      default: 30\n", "", "STALLED_IN_STAGE", "needs a `default`"),
        ("chase: [NO_NEXT_STEP, NEXT_STEP_OVERDUE, CLOSE_DATE_PAST]", "chase: 3", "chase", "list"),
        ("chase: [NO_NEXT_STEP,", "chase: [NO_NEXT_STEPS,", "chase: [", "not a check id"),
        ('quiet_hours: {start: "19:00"', 'quiet_hours: {start: "7pm"', "quiet_hours", "time like"),
        ("  STALE:", "  STALE: [", "STALE: [", "not valid YAML"),
    ],
)
def test_a_bad_checks_file_is_refused_naming_the_line_and_reason(
    old: str, new: str, line_of: str, reason: str
) -> None:
    assert old in BUNDLED
    text = BUNDLED.replace(old, new, 1)
    with pytest.raises(ChecksFileError) as refused:
        parse_checks(text, source="team-checks.yml")
    message = str(refused.value)
    lines = text.splitlines()
    expected_line = next(i for i, line in enumerate(lines, 1) if line_of in line)
    assert message.startswith("team-checks.yml:")
    line = int(message.split(":")[1])
    # YAML syntax errors are reported where the parser noticed them, a line or so later.
    assert expected_line <= line <= expected_line + 2, message
    assert reason in message


def test_the_bundled_file_itself_must_list_every_check() -> None:
    # A team's file may leave checks out (they take the bundled setting); the bundled file is
    # where those settings come from, so it may not.
    text = BUNDLED.replace("  LOST_WITHOUT_REASON: {}", "", 1)
    with pytest.raises(ChecksFileError, match=r"^checks\.yml:\d+: LOST_WITHOUT_REASON missing"):
        parse_checks(text, source="checks.yml", defaults=None)
    with pytest.raises(ChecksFileError, match=r"^checks\.yml:\d+: `nudges\.weekends:` is missing"):
        parse_checks(BUNDLED.replace("  weekends: false", ""), defaults=None)


def test_regression_a_custom_file_missing_a_newly_added_check_stopped_loading() -> None:
    # A team's copy made before LOST_WITHOUT_REASON existed does not list it: it now takes the
    # bundled setting instead of refusing to start.
    older = BUNDLED.replace("  LOST_WITHOUT_REASON: {}", "", 1)
    assert "LOST_WITHOUT_REASON" not in older.split("# What the chase")[0]
    config = parse_checks(older, source="team-checks.yml")
    assert config.enabled == CONFIG.enabled
    assert "LOST_WITHOUT_REASON" in config.enabled


def test_a_short_custom_file_takes_every_unsaid_setting_from_the_bundled_file() -> None:
    config = parse_checks(
        "version: 1\n"
        "checks:\n"
        "  STALE: {enabled: false}\n"
        "  STALLED_IN_STAGE: {max_days: {default: 10, demo: 12}}\n"
        "nudges:\n"
        "  quiet_hours: {start: 20:00, end: '07:30'}\n",
        source="team-checks.yml",
    )
    assert "STALE" not in config.enabled
    assert config.threshold("STALE", "max_days").for_stage("demo") == 14  # kept, though off
    stalled = config.threshold("STALLED_IN_STAGE", "max_days")
    assert (stalled.for_stage("demo"), stalled.for_stage("proposal")) == (12, 10)
    assert config.threshold("SINGLE_THREADED", "from_stage") == "demo"
    assert (config.chase, config.attention) == (CONFIG.chase, CONFIG.attention)
    # An unquoted 20:00 is a time of day, not YAML 1.1's base-60 number 1200.
    assert (config.nudges.quiet_start, config.nudges.quiet_end) == (dt.time(20), dt.time(7, 30))
    assert config.nudges.weekends is False


def test_the_bundled_file_is_read_once_with_its_own_name() -> None:
    assert load_checks(DEFAULT_CHECKS_FILE) is bundled_checks()
    assert bundled_checks().source == "checks.yml"


def test_a_missing_checks_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ChecksFileError, match="cannot read"):
        load_checks(tmp_path / "nope.yml")


def test_quiet_hours_and_weekends() -> None:
    budget = CONFIG.nudges
    monday = dt.datetime(2026, 11, 23, tzinfo=dt.UTC)
    assert budget.allows(monday.replace(hour=8))
    assert not budget.allows(monday.replace(hour=7, minute=59))
    assert not budget.allows(monday.replace(hour=19))
    assert budget.allows(monday.replace(hour=18, minute=59))
    assert not budget.allows((monday - dt.timedelta(days=1)).replace(hour=10))  # Sunday


def test_commit_evidence_is_required_unless_the_file_says_warn() -> None:
    assert bundled_checks().commit_evidence == "require"
    assert parse_checks("version: 1\nchecks: {}\n").commit_evidence == "require"
    warn = parse_checks("version: 1\nchecks: {}\ncommit_evidence: warn\n")
    assert warn.commit_evidence == "warn"


def test_a_commit_evidence_setting_dealbot_does_not_know_is_refused_naming_its_line() -> None:
    with pytest.raises(ChecksFileError, match=r"checks.yml:3: commit_evidence: .*require.*warn"):
        parse_checks("version: 1\nchecks: {}\ncommit_evidence: maybe\n")


@pytest.mark.parametrize(
    ("zone", "today", "stale_from", "day_starts"),
    [
        # Midnight on the fifteenth day back, in New York (EST, UTC-5).
        ("America/New_York", dt.date(2026, 11, 23), dt.date(2026, 11, 9), "2026-11-09T05:00"),
        # That day is the one Paris moves its clocks forward (at 02:00, not at midnight).
        ("Europe/Paris", dt.date(2026, 4, 12), dt.date(2026, 3, 29), "2026-03-28T23:00"),
        # Santiago moves its clocks forward at midnight: that day starts at 01:00 (UTC-3).
        ("America/Santiago", dt.date(2026, 9, 20), dt.date(2026, 9, 6), "2026-09-06T04:00"),
    ],
)
def test_quiet_days_are_counted_on_the_deals_own_calendar(
    zone: str, today: dt.date, stale_from: dt.date, day_starts: str
) -> None:
    # STALE's limit is 14 days: quiet since any moment before the day 14 days back starts.
    local = ZoneInfo(zone)
    starts = dt.datetime.fromisoformat(day_starts).replace(tzinfo=dt.UTC)
    last_quiet = starts - dt.timedelta(microseconds=1)
    assert (today - stale_from).days == 14
    assert last_quiet.astimezone(local).date() < stale_from == starts.astimezone(local).date()
    for moment, expected in ((last_quiet, ("STALE",)), (starts, ())):
        deal = HEALTHY._replace(
            forecast_category="best_case",  # a commit deal failing a check fires one more
            last_activity_at=moment,
            next_step_due=today + dt.timedelta(days=3),
            close_date=today + dt.timedelta(days=20),
            stage_entered_at=moment + dt.timedelta(days=10),
        )
        assert fired_checks(deal, today, CONFIG, zone=local) == expected, moment
