"""`thresholds: fixed | learned` in the checks file, and a configuration with learned limits."""

from __future__ import annotations

import datetime as dt

import pytest

from domain.checks import (
    DEFAULT_CHECKS_FILE,
    ChecksFileError,
    DealFacts,
    bundled_checks,
    fired_checks,
    parse_checks,
)

BUNDLED = DEFAULT_CHECKS_FILE.read_text(encoding="utf-8")
UTC = dt.UTC


def test_the_bundled_file_keeps_the_files_thresholds() -> None:
    assert "thresholds: fixed" in BUNDLED
    assert bundled_checks().thresholds == "fixed"


@pytest.mark.parametrize("value", ["learned", "fixed"])
def test_a_team_file_says_where_its_thresholds_come_from(value: str) -> None:
    config = parse_checks(f"version: 1\nchecks: {{}}\nthresholds: {value}\n", source="team.yml")
    assert config.thresholds == value


def test_a_team_file_that_does_not_say_keeps_the_bundled_setting() -> None:
    assert parse_checks("version: 1\nchecks: {}\n", source="team.yml").thresholds == "fixed"


@pytest.mark.parametrize("value", ["learnt", "true", "30", "[learned]"])
def test_a_bad_thresholds_value_is_refused_naming_the_line_and_the_right_form(
    value: str,
) -> None:
    text = f"version: 1\nchecks: {{}}\n\nthresholds: {value}\n"
    with pytest.raises(ChecksFileError) as refused:
        parse_checks(text, source="team.yml")
    message = str(refused.value)
    assert message.startswith("team.yml:4: thresholds is "), message
    assert "write `thresholds: fixed` or `thresholds: learned`" in message


def test_with_stage_limits_replaces_only_the_stages_it_is_given() -> None:
    config = bundled_checks()
    learned = config.with_stage_limits({"discovery": 12, "proposal": 60})
    limit = learned.limit
    assert limit("STALLED_IN_STAGE", "max_days", "discovery") == 12
    assert limit("STALLED_IN_STAGE", "max_days", "proposal") == 60
    assert limit("STALLED_IN_STAGE", "max_days", "prospecting") == 21  # the file's own
    assert limit("STALLED_IN_STAGE", "max_days", "demo") == 30  # the file's default
    assert limit("STALE", "max_days", "discovery") == 14  # other checks untouched
    # The original is unchanged (configurations are shared, memoised values).
    assert config.limit("STALLED_IN_STAGE", "max_days", "discovery") == 30
    assert config.limit("STALLED_IN_STAGE", "max_days", "proposal") == 45


def test_stalled_in_stage_fires_past_the_learned_limit() -> None:
    learned = bundled_checks().with_stage_limits({"discovery": 12})
    today = dt.date(2026, 12, 2)

    def facts(days_in_stage: int) -> DealFacts:
        entered = dt.datetime.combine(today - dt.timedelta(days=days_in_stage), dt.time(12), UTC)
        return DealFacts(
            deal_id=1,
            owner_id="U0ANA",
            account="Initech",
            stage="discovery",
            status="open",
            forecast_category="pipeline",
            has_amount=True,
            close_date=today + dt.timedelta(days=30),
            stage_entered_at=entered,
        )

    only = ("STALLED_IN_STAGE",)
    assert fired_checks(facts(12), today, learned, zone=UTC, only=only) == ()
    assert fired_checks(facts(13), today, learned, zone=UTC, only=only) == ("STALLED_IN_STAGE",)
    assert fired_checks(facts(13), today, bundled_checks(), zone=UTC, only=only) == ()
