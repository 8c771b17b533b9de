"""Which events call for which follow-up template: rules read from templates/email/triggers.yml.

The file is read into pydantic models that refuse what dealbot does not honour, naming the
line (`triggers.yml:20: …`): an unknown key, a stage no deal can move into, a pattern that is
not a regular expression, or a check other than STALE under `checks:` (only a deal going
quiet drafts a follow-up; the other checks are for the rep, not the buyer).
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Annotated, Final, Literal

from pydantic import BeforeValidator, Field
from pydantic_core import ErrorDetails

from domain.config_file import (
    ConfigFileError,
    FileModel,
    WholeNumber,
    dotted,
    listed_stage,
    read_config,
    refuse,
)
from domain.stages import DEFAULT_STAGES

# Kept with the email templates it names, so an admin edits both in one folder.
DEFAULT_RULES_FILE = Path(__file__).resolve().parents[1] / "templates" / "email" / "triggers.yml"

# Trigger kinds, as stored with each trigger.
STAGE_CHANGE = "stage_change"
NEXT_STEP = "next_step"
CHECK = "check"
ON_DEMAND = "on_demand"

# The checks whose firing drafts a follow-up (see FollowUps._events).
DRAFTING_CHECKS: Final = ("STALE",)

_STAGES: Final = tuple(stage.key for stage in DEFAULT_STAGES)


class TriggerRulesError(ConfigFileError):
    """The rules file is malformed; the message names the file, the line and the problem."""


def _name(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise refuse(f"must be a template name, not {value!r}")
    return value


def _stage(value: object) -> str:
    return listed_stage(value, _STAGES)


def _drafting_check(value: object) -> str:
    if value not in DRAFTING_CHECKS:
        raise refuse(
            f"lists {value!r}: only {', '.join(DRAFTING_CHECKS)} drafts a follow-up"
            " (the other checks are for the rep, not the buyer)"
        )
    return str(value)


def _pattern(value: object) -> re.Pattern[str]:
    if not isinstance(value, str):
        raise refuse(f"must be a regular expression in quotes, not {value!r}")
    try:
        return re.compile(value, re.IGNORECASE)
    except re.error as error:
        raise refuse(f"is not a regular expression ({error})") from None


TemplateName = Annotated[str, BeforeValidator(_name)]
StageKey = Annotated[str, BeforeValidator(_stage)]
DraftingCheck = Annotated[str, BeforeValidator(_drafting_check)]


class StepRule(FileModel):
    pattern: Annotated[re.Pattern[str], BeforeValidator(_pattern)]
    template: TemplateName


class TriggerRules(FileModel):
    version: Literal[1] = 1
    stage_changes: dict[StageKey, TemplateName] = Field(default_factory=dict)
    next_steps: tuple[StepRule, ...] = ()
    checks: dict[DraftingCheck, TemplateName] = Field(default_factory=dict)
    lookback_days: WholeNumber = 7
    # Events that call for the same template for the same deal and recipient within this
    # many days make one draft: a stage move, a done call and `/deal followup` in the same
    # minute are one conversation to recap, not three. 0 drafts every event.
    repeat_window_days: WholeNumber = 7

    @property
    def repeat_window(self) -> dt.timedelta:
        """Return how long a draft stands for every later event calling for the same one."""
        return dt.timedelta(days=self.repeat_window_days)

    def for_stage(self, stage: str) -> str | None:
        """Return the template a move into `stage` calls for, if any."""
        return self.stage_changes.get(stage)

    def for_next_step(self, what: str) -> str | None:
        """Return the template a done (or past-due) next step with this text calls for."""
        return next((rule.template for rule in self.next_steps if rule.pattern.search(what)), None)

    def for_check(self, check_id: str) -> str | None:
        """Return the template a deal firing `check_id` calls for, if any."""
        return self.checks.get(check_id)

    def templates(self) -> set[str]:
        """Return every template the rules name, to check they all exist at start-up."""
        return (
            set(self.stage_changes.values())
            | {rule.template for rule in self.next_steps}
            | set(self.checks.values())
        )


def _describe(error: ErrorDetails, path: tuple[str | int, ...]) -> str:
    """Return what is wrong, for an error no validator of ours worded."""
    kind, what = error["type"], dotted(path)
    if kind == "extra_forbidden":
        parent = dotted(path[:-1])
        if not parent:
            sections = ", ".join(TriggerRules.model_fields)
            return f"unknown section {path[-1]!r} (the file has {sections})"
        where = f"a {parent} rule" if parent == "next_steps" else parent
        return f"{where} has no setting {path[-1]!r}"
    if kind == "missing":
        return f"each next_steps rule needs a `pattern` and a `template` ({error['loc'][-1]})"
    if kind == "literal_error":
        return f"{what} {error['input']!r} is not supported (use 1)"
    if kind in ("dict_type", "model_type"):
        return f"{what} must be a mapping"
    if kind in ("tuple_type", "list_type"):
        return f"{what} must be a list of rules"
    return f"{what}: {error['msg']}"


def load_trigger_rules(path: Path = DEFAULT_RULES_FILE) -> TriggerRules:
    """Return the rules in `path`, or raise TriggerRulesError naming the line and what is wrong."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise TriggerRulesError(f"{path.name}: cannot read it ({error.strerror})") from None
    # An empty file has always meant "no automatic drafts"; it still does.
    return read_config(
        text,
        TriggerRules,
        source=path.name,
        error=TriggerRulesError,
        describe=_describe,
        empty_means_defaults=True,
    )
