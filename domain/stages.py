"""Deal stages and forecast categories, as data.

Teams may configure their own stages; the defaults below follow a common B2B sales motion,
each stage carrying the probability used for weighted pipeline and the evidence (exit
criteria) a deal must show to sit in it honestly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

__all__ = [
    "DEFAULT_STAGES",
    "EVIDENCE",
    "FORECAST_CATEGORIES",
    "FORECAST_LABELS",
    "Stage",
    "UnknownForecast",
    "UnknownStage",
    "match_forecast",
    "match_stage",
    "stage_by_key",
]

# The evidence names exit criteria may ask for; they match DealChanges field names so a
# check can look each one up on a deal without a translation table.
EVIDENCE: Final = (
    "amount",
    "close_date",
    "buying_criteria",
    "buying_process",
    "paper_process",
    "economic_buyer",
)


FORECAST_CATEGORIES: Final = ("pipeline", "best_case", "commit", "omitted")


class UnknownStage(ValueError):
    """Text that names no stage, or more than one; `str()` is a message for the rep."""


class UnknownForecast(ValueError):
    """Text that names no forecast category, or more than one; `str()` is for the rep."""


@dataclass(frozen=True)
class Stage:
    """One step of the sales process and what a deal needs to show to be in it."""

    key: str
    label: str
    probability: Decimal
    order: int
    exit_criteria: tuple[str, ...]
    is_closed: bool
    # The forecast category a deal in this stage is expected to carry. dealbot's defaults
    # all say pipeline, which is what a new deal gets whatever its stage; a team's own
    # stages may say otherwise.
    forecast_default: str = "pipeline"

    def __post_init__(self) -> None:
        if self.forecast_default not in FORECAST_CATEGORIES:
            raise ValueError(
                f"Stage {self.key!r} forecast default must be one of {FORECAST_CATEGORIES}"
            )
        unknown = set(self.exit_criteria) - set(EVIDENCE)
        if unknown:
            raise ValueError(f"Stage {self.key!r} asks for unknown evidence {sorted(unknown)}")
        if not Decimal(0) <= self.probability <= Decimal(1):
            raise ValueError(f"Stage {self.key!r} probability must be within 0..1")


_QUALIFIED: Final = ("amount", "close_date")
_DEMO: Final = (*_QUALIFIED, "buying_criteria")
_PROPOSAL: Final = (*_DEMO, "buying_process", "economic_buyer")
_NEGOTIATION: Final = (*_PROPOSAL, "paper_process")

DEFAULT_STAGES: Final[tuple[Stage, ...]] = (
    Stage("prospecting", "Prospecting", Decimal("0.10"), 1, (), is_closed=False),
    Stage("discovery", "Discovery", Decimal("0.20"), 2, _QUALIFIED, is_closed=False),
    Stage("demo", "Demo", Decimal("0.40"), 3, _DEMO, is_closed=False),
    Stage("proposal", "Proposal", Decimal("0.60"), 4, _PROPOSAL, is_closed=False),
    Stage("negotiation", "Negotiation", Decimal("0.80"), 5, _NEGOTIATION, is_closed=False),
    Stage("closed_won", "Closed won", Decimal(1), 6, _NEGOTIATION, is_closed=True),
    Stage("closed_lost", "Closed lost", Decimal(0), 7, (), is_closed=True),
)

FORECAST_LABELS: Final[dict[str, str]] = {
    "pipeline": "Pipeline",
    "best_case": "Best case",
    "commit": "Commit",
    "omitted": "Omitted",
}

_SEPARATORS: Final = re.compile(r"[\s_\-]+")


def _normalized(text: str) -> str:
    """Return `text` lower-cased with spaces, dashes and underscores as one underscore."""
    return _SEPARATORS.sub("_", text.strip().lower()).strip("_")


def stage_by_key(key: str, stages: tuple[Stage, ...] = DEFAULT_STAGES) -> Stage:
    """Return the stage whose key is exactly `key`; raises KeyError for a stored bad key."""
    for stage in stages:
        if stage.key == key:
            return stage
    raise KeyError(key)


def match_stage(text: str, stages: tuple[Stage, ...] = DEFAULT_STAGES) -> Stage:
    """Return the stage `text` names: its key or label in any case, or a unique prefix.

    `closed won`, `closed_won`, `Closed-Won` and `neg` all work. Raises UnknownStage,
    listing the valid stages, when `text` names none or several.
    """
    wanted = _normalized(text)
    valid = ", ".join(stage.key for stage in stages)
    if not wanted:
        raise UnknownStage(f"No stage given: use one of {valid}.")
    exact = [s for s in stages if wanted in (s.key, _normalized(s.label))]
    if exact:
        return exact[0]
    if wanted in ("won", "lost"):
        # Closing a deal asks for a post-mortem, which only the dedicated command collects.
        raise UnknownStage(f"To close a deal as {wanted}, use `/deal {wanted} <deal>`.")
    found = [
        s for s in stages if s.key.startswith(wanted) or _normalized(s.label).startswith(wanted)
    ]
    if len(found) == 1:
        return found[0]
    shown = text.strip()[:40]
    if found:
        names = " or ".join(s.key for s in found)
        raise UnknownStage(f"`{shown}` could be {names}: type more of it.")
    raise UnknownStage(f"`{shown}` is not a stage: use one of {valid}.")


def match_forecast(text: str) -> str:
    """Return the forecast category `text` names: `best case`, `best-case`, `commit`, `pi`.

    Separators are optional (`bestcase`) and a unique prefix is enough. Raises
    UnknownForecast, listing the categories, otherwise.
    """
    wanted = _normalized(text).replace("_", "")
    valid = ", ".join(FORECAST_CATEGORIES)
    if not wanted:
        raise UnknownForecast(f"No forecast category given: use one of {valid}.")
    found = [key for key in FORECAST_CATEGORIES if key.replace("_", "").startswith(wanted)]
    if len(found) == 1:
        return found[0]
    raise UnknownForecast(f"`{text.strip()[:40]}` is not a forecast category: use one of {valid}.")
