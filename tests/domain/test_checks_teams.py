"""`teams:` in the checks file: per-team `commit_evidence` and `thresholds`, keyed by the
team's name key, and `ChecksConfig.for_team`."""

from __future__ import annotations

import pytest

from domain.checks import ChecksFileError, bundled_checks, parse_checks

HEAD = "version: 1\nchecks: {}\n"
EXAMPLE = (
    HEAD + "commit_evidence: require\n"
    "thresholds: fixed\n"
    "teams:\n"
    "  emea: {commit_evidence: warn}\n"
    "  Enterprise  Sales: {thresholds: learned}\n"
    "  apac:\n"
)


def test_each_team_gets_its_overrides_and_keeps_the_files_other_settings() -> None:
    config = parse_checks(EXAMPLE, source="team.yml")
    assert (config.commit_evidence, config.thresholds) == ("require", "fixed")
    emea = config.for_team("emea")
    assert (emea.commit_evidence, emea.thresholds) == ("warn", "fixed")
    enterprise = config.for_team("enterprise sales")
    assert (enterprise.commit_evidence, enterprise.thresholds) == ("require", "learned")
    # The rest of the configuration is the file's: same checks, same limits.
    assert emea.enabled == config.enabled and emea.settings is config.settings


@pytest.mark.parametrize("typed", ["EMEA", " emea ", "Emea"])
def test_a_team_is_found_by_its_name_as_users_type_it(typed: str) -> None:
    assert parse_checks(EXAMPLE).for_team(typed).commit_evidence == "warn"


@pytest.mark.parametrize("team", [None, "", "apac", "nordics"])
def test_no_team_a_bare_entry_or_an_unlisted_team_keeps_the_files_settings(
    team: str | None,
) -> None:
    config = parse_checks(EXAMPLE)
    held = config.for_team(team)
    assert (held.commit_evidence, held.thresholds) == ("require", "fixed")


def test_a_teams_configuration_is_made_once() -> None:
    config = parse_checks(EXAMPLE)
    assert config.for_team("EMEA") is config.for_team("emea")
    assert config.for_team("nordics") is config


def test_learns_anywhere_sees_a_single_team_on_learned() -> None:
    assert parse_checks(EXAMPLE).learns_anywhere
    assert not parse_checks(HEAD + "teams:\n  emea: {commit_evidence: warn}\n").learns_anywhere
    assert not bundled_checks().learns_anywhere
    assert parse_checks(HEAD + "thresholds: learned\n").learns_anywhere


def test_a_file_without_teams_has_none_and_the_bundled_file_none() -> None:
    assert parse_checks(HEAD).teams == {}
    assert bundled_checks().teams == {}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            "teams:\n  emea: {commit_evidence: maybe}\n",
            "team.yml:4: teams.emea.commit_evidence: Input should be 'require' or 'warn'",
        ),
        (
            "teams:\n  emea:\n    thresholds: guessed\n",
            "team.yml:5: teams.emea.thresholds is 'guessed': write `thresholds: fixed` or "
            "`thresholds: learned`",
        ),
        (
            "teams:\n  emea:\n    commit_evidence: warn\n    quota: 10\n",
            "team.yml:6: teams.emea has no setting 'quota' (a team sets commit_evidence, "
            "thresholds)",
        ),
        ("teams:\n  emea: {}\n  EMEA: {}\n", "team.yml:4: teams names the team 'emea' twice"),
        ("teams: [emea]\n", "team.yml:3: teams must be a mapping"),
        ("teams:\n  emea: warn\n", "team.yml:4: teams.emea must be a mapping"),
    ],
)
def test_a_bad_teams_entry_is_refused_naming_the_file_line_and_what_is_wrong(
    body: str, expected: str
) -> None:
    with pytest.raises(ChecksFileError) as refused:
        parse_checks(HEAD + body, source="team.yml")
    assert str(refused.value) == expected


def test_an_unknown_section_names_teams_among_the_sections() -> None:
    with pytest.raises(ChecksFileError, match=r"unknown section 'team' .*teams"):
        parse_checks(HEAD + "team:\n  emea: {commit_evidence: warn}\n", source="team.yml")
