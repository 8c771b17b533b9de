"""templates/email/triggers.yml: what it honours is read, anything else is refused by line."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.follow_up_triggers import DEFAULT_RULES_FILE, TriggerRulesError, load_trigger_rules

BUNDLED = DEFAULT_RULES_FILE.read_text(encoding="utf-8")


def test_the_bundled_rules_read_as_the_readme_tells() -> None:
    rules = load_trigger_rules()
    assert rules.for_stage("proposal") == "proposal_sent"
    assert rules.for_stage("discovery") is None
    assert rules.for_next_step("Demo for the CFO") == "demo_follow_up"
    assert rules.for_next_step("Two calls with legal") == "discovery_recap"
    assert rules.for_next_step("Send the MSA") is None
    assert rules.for_check("STALE") == "re_engage"
    assert rules.lookback_days == 7
    assert rules.repeat_window_days == 7


@pytest.mark.parametrize(
    ("old", "new", "line_of", "reason"),
    [
        # Only STALE drafts a follow-up: another check id was accepted and never honoured.
        ("  STALE: re_engage", "  NO_AMOUNT: re_engage", "NO_AMOUNT", "only STALE drafts"),
        ("  demo: discovery_recap", "  dmeo: discovery_recap", "dmeo", "a stage must be one of"),
        ("lookback_days: 7", "lookback_days: 7\ncolour: red", "colour", "unknown section"),
        (
            "    template: demo_follow_up",
            "    template: demo_follow_up\n    when: always",
            "when: always",
            "no setting 'when'",
        ),
        ("  - pattern: '\\bdemo'", "  - pattern: '(demo'", "(demo", "not a regular expression"),
        ("lookback_days: 7", "lookback_days: a week", "lookback_days", "whole number"),
        ("lookback_days: 7", "lookback_days: -1", "lookback_days", "must not be negative"),
        (
            "repeat_window_days: 7",
            "repeat_window_days: a week",
            "repeat_window_days",
            "whole number",
        ),
        (
            "repeat_window_days: 7",
            "repeat_window_days: -7",
            "repeat_window",
            "must not be negative",
        ),
        ("repeat_window_days: 7", "repeat_window: 7", "repeat_window: 7", "unknown section"),
        ("version: 1", "version: 2", "version: 2", "not supported"),
        ("next_steps:", "next_steps:\n  - template: re_engage", "template: re_engage", "pattern"),
    ],
)
def test_a_bad_rules_file_is_refused_naming_the_line_and_reason(
    tmp_path: Path, old: str, new: str, line_of: str, reason: str
) -> None:
    assert old in BUNDLED
    text = BUNDLED.replace(old, new, 1)
    path = tmp_path / "triggers.yml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(TriggerRulesError) as refused:
        load_trigger_rules(path)
    message = str(refused.value)
    expected_line = next(i for i, line in enumerate(text.splitlines(), 1) if line_of in line)
    assert message.startswith(f"triggers.yml:{expected_line}: "), message
    assert reason in message
