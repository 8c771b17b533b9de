"""Which events call for which follow-up template: rules read from templates/email/triggers.yml."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from reminders.email.templates import DEFAULT_TEMPLATES_DIR

DEFAULT_RULES_FILE = DEFAULT_TEMPLATES_DIR / "triggers.yml"

# Trigger kinds, as stored with each trigger.
STAGE_CHANGE = "stage_change"
NEXT_STEP = "next_step"
CHECK = "check"
ON_DEMAND = "on_demand"


class TriggerRulesError(ValueError):
    """The rules file is malformed; the message names the file and the problem."""


@dataclass(frozen=True)
class StepRule:
    pattern: re.Pattern[str]
    template: str


@dataclass(frozen=True)
class TriggerRules:
    stage_changes: dict[str, str]
    next_steps: tuple[StepRule, ...]
    checks: dict[str, str]
    lookback_days: int = 7

    def for_stage(self, stage: str) -> str | None:
        """Return the template a move into `stage` calls for, if any."""
        return self.stage_changes.get(stage)

    def for_next_step(self, what: str) -> str | None:
        """Return the template a done (or past-due) next step with this text calls for."""
        return next((rule.template for rule in self.next_steps if rule.pattern.search(what)), None)

    def for_check(self, check_id: str) -> str | None:
        return self.checks.get(check_id)

    def templates(self) -> set[str]:
        """Return every template the rules name, to check they all exist at start-up."""
        return (
            set(self.stage_changes.values())
            | {rule.template for rule in self.next_steps}
            | set(self.checks.values())
        )


def load_trigger_rules(path: Path = DEFAULT_RULES_FILE) -> TriggerRules:
    """Return the rules in `path`, or raise TriggerRulesError naming what is wrong."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as error:
        raise TriggerRulesError(f"{path.name}: {error}") from None
    if not isinstance(data, dict):
        raise TriggerRulesError(f"{path.name}: expected a mapping at the top")
    try:
        return TriggerRules(
            stage_changes=_str_map(data.get("stage_changes") or {}, "stage_changes"),
            next_steps=tuple(_step_rule(item) for item in data.get("next_steps") or []),
            checks=_str_map(data.get("checks") or {}, "checks"),
            lookback_days=int(data.get("lookback_days", 7)),
        )
    except (TypeError, ValueError, re.error) as error:
        raise TriggerRulesError(f"{path.name}: {error}") from None


def _str_map(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError(f"{where} must map names to template names")
    return dict(value)


def _step_rule(item: Any) -> StepRule:
    if not isinstance(item, dict) or not isinstance(item.get("pattern"), str):
        raise ValueError("each next_steps rule needs a `pattern` and a `template`")
    if not isinstance(item.get("template"), str):
        raise ValueError("each next_steps rule needs a `pattern` and a `template`")
    return StepRule(pattern=re.compile(item["pattern"], re.IGNORECASE), template=item["template"])
