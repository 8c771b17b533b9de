"""Deal stages and forecast categories, as data.

Teams may configure their own stages; the defaults below follow a common B2B sales motion,
each stage carrying the probability used for weighted pipeline and the evidence (exit
criteria) a deal must show to sit in it honestly.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Final

import yaml
from pydantic import AfterValidator, BeforeValidator
from pydantic_core import ErrorDetails

from domain.config_file import FileModel, read_config, refuse

__all__ = [
    "DEFAULT_SET",
    "DEFAULT_STAGES",
    "EMPTY_BOOK",
    "EVIDENCE",
    "FORECAST_CATEGORIES",
    "FORECAST_LABELS",
    "PipelineStage",
    "Stage",
    "StageBook",
    "StageSet",
    "StagesFileError",
    "UnknownForecast",
    "UnknownStage",
    "load_stage_book",
    "match_forecast",
    "match_stage",
    "read_team_stages",
    "stage_by_key",
    "team_stages_from_pipeline",
    "write_team_stages",
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
    # The forecast category a deal takes on entering this stage, unless the rep says
    # otherwise (see `domain.deals`); a team's own stages may say their own.
    forecast_default: str = "pipeline"
    # A team's stage names the default stage it stands for; a default stage names none.
    maps_to: str | None = None
    # A team stage taken from the CRM's pipeline: the CRM's id of that stage.
    crm_stage: str | None = None

    @property
    def default_key(self) -> str:
        """Return the default stage key a deal in this stage stores (and checks read)."""
        return self.maps_to or self.key

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
    # A deal negotiating terms is a likely close, not yet a promise: commit is the rep's call,
    # backed by cited evidence, never a stage's default.
    Stage(
        "negotiation",
        "Negotiation",
        Decimal("0.80"),
        5,
        _NEGOTIATION,
        is_closed=False,
        forecast_default="best_case",
    ),
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


# --- a team's own stages ------------------------------------------------------------------
# A team whose process is "Qualify → Evaluate → Commit → Close" writes it in
# `<DEALBOT_STAGES_DIR>/<team name key>.yml`. Every stage maps to one of the defaults above,
# and a deal stores that default key (what checks, follow-up triggers, the CRM mapping and
# the weekly figures read) plus `<team key>:<stage key>` (what the team sees and types).

_TEAM_STAGE_KEY: Final = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


class StagesFileError(ValueError):
    """A team's stages file is unusable; `str()` is `file:line: reason`."""


def _team_stage_key(value: object) -> str:
    if not isinstance(value, str) or not _TEAM_STAGE_KEY.match(value):
        raise refuse(f"{value!r} is not a stage key: lower-case letters, digits and _, at most 32")
    return value


def _probability(value: object) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise refuse(f"must be a number between 0 and 1, not {value!r}")
    try:
        number = Decimal(str(value).strip().removesuffix("%"))
    except ArithmeticError:
        raise refuse(f"must be a number between 0 and 1, not {value!r}") from None
    if isinstance(value, str) and value.strip().endswith("%"):
        number /= 100
    if not number.is_finite() or not Decimal(0) <= number <= Decimal(1):
        raise refuse(f"must be between 0 and 1 (or 0% and 100%), not {value!r}")
    return number


def _default_stage_key(value: object) -> str:
    keys = tuple(stage.key for stage in DEFAULT_STAGES)
    if value not in keys:
        raise refuse(f"is {value!r}: it must be one of dealbot's stages, {', '.join(keys)}")
    return str(value)


def _forecast_category(value: object) -> str:
    if value not in FORECAST_CATEGORIES:
        raise refuse(f"is {value!r}: use one of {', '.join(FORECAST_CATEGORIES)}")
    return str(value)


def _evidence(value: object) -> str:
    if value not in EVIDENCE:
        raise refuse(f"lists {value!r}: exit criteria are among {', '.join(EVIDENCE)}")
    return str(value)


def _crm_stage_id(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > 120:
        raise refuse("must be the CRM's stage id, 1 to 120 characters")
    return value


def _label(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value.strip()) > 40:
        raise refuse("must be a name of 1 to 40 characters")
    return value.strip()


class _StageEntry(FileModel):
    key: Annotated[str, BeforeValidator(_team_stage_key)]
    label: Annotated[str, BeforeValidator(_label)]
    probability: Annotated[Decimal, BeforeValidator(_probability)]
    forecast_default: Annotated[str, BeforeValidator(_forecast_category)] = "pipeline"
    exit_criteria: tuple[Annotated[str, BeforeValidator(_evidence)], ...] = ()
    maps_to: Annotated[str, BeforeValidator(_default_stage_key)]
    crm_stage: Annotated[str, BeforeValidator(_crm_stage_id)] | None = None


def _distinct(stages: tuple[_StageEntry, ...]) -> tuple[_StageEntry, ...]:
    """Return `stages` when no two share a key or a label (typing one must name one stage)."""
    if not stages:
        raise refuse("lists no stage")
    seen: dict[str, str] = {}
    for entry in stages:
        for name in {entry.key, _normalized(entry.label)}:
            if name in seen:
                raise refuse(f"has {entry.label!r} named like {seen[name]!r}: names must differ")
            seen[name] = entry.label
    orders = [stage_by_key(entry.maps_to).order for entry in stages]
    from_crm = all(entry.crm_stage for entry in stages)
    if orders != (sorted(orders) if from_crm else sorted(set(orders))):
        # One team stage per default, in the defaults' order: a move between two team
        # stages is then a move of the stored stage, kept in history and seen by checks.
        # A CRM's pipeline has the stages it has (Salesforce's has seven open ones): there
        # several may stand for one default, and the CRM keeps the moves between them.
        raise refuse(
            "must each map to a different one of dealbot's stages, in dealbot's order ("
            + ", ".join(stage.key for stage in DEFAULT_STAGES)
            + ")"
        )
    if all(stage_by_key(entry.maps_to).is_closed for entry in stages):
        raise refuse("lists no open stage: at least one must map to an open stage")
    return stages


class _StagesFile(FileModel):
    stages: Annotated[tuple[_StageEntry, ...], AfterValidator(_distinct)]


_STAGE_SETTINGS: Final = ", ".join(_StageEntry.model_fields)


def _named(path: tuple[str | int, ...]) -> str:
    """Return how a refusal names a place in the file: `stage 2 probability`."""
    if len(path) > 1 and isinstance(path[1], int):
        return " ".join([f"stage {path[1] + 1}", *map(str, path[2:3])])
    return "stages" if path else ""


def _described(error: ErrorDetails, path: tuple[str | int, ...]) -> str:
    """Return a refusal pydantic worded for programmers, worded for whoever edits the file."""
    where = f"stage {path[1] + 1}" if len(path) > 1 and isinstance(path[1], int) else "the file"
    if error["type"] == "extra_forbidden":
        if len(path) > 2:
            return f"{where}: `{path[-1]}` is not a stage setting; use {_STAGE_SETTINGS}"
        return f"`{path[-1]}` is not a setting of the file: it holds `stages:` only"
    if error["type"] == "missing":
        missing = error["loc"][-1]
        return f"{where} needs `{missing}:`" if len(path) > 1 else "the file needs `stages:`"
    return f"{where}: {error['msg']}"


def read_team_stages(text: str, *, source: str) -> tuple[Stage, ...]:
    """Return the stages a team's file lists, in its order; StagesFileError names file:line."""
    parsed = read_config(
        text,
        _StagesFile,
        source=source,
        error=StagesFileError,
        describe=_described,
        name=_named,
    )
    return tuple(
        Stage(
            key=entry.key,
            label=entry.label,
            probability=entry.probability,
            order=index + 1,
            exit_criteria=entry.exit_criteria,
            is_closed=stage_by_key(entry.maps_to).is_closed,
            forecast_default=entry.forecast_default,
            maps_to=entry.maps_to,
            crm_stage=entry.crm_stage,
        )
        for index, entry in enumerate(parsed.stages)
    )


@dataclass(frozen=True, kw_only=True)
class StageBook:
    """Each team's own stages, by team name key; a team with no file has dealbot's."""

    teams: dict[str, tuple[Stage, ...]]

    def for_team(self, team_key: str | None) -> tuple[Stage, ...]:
        """Return the stages of the team with this name key: its own, else the defaults."""
        return self.teams.get(team_key or "", DEFAULT_STAGES)

    def set_for(self, team_key: str | None) -> StageSet:
        """Return the stages a rep of this team types (the defaults if it has none)."""
        if team_key is None or team_key not in self.teams:
            return DEFAULT_SET
        return StageSet(team_key=team_key, stages=self.teams[team_key])

    def stage_of(self, team_stage: str | None) -> Stage | None:
        """Return the team stage a deal stores as `<team key>:<stage key>`, if still defined."""
        if not team_stage or ":" not in team_stage:
            return None
        team_key, _, key = team_stage.rpartition(":")
        return next((s for s in self.teams.get(team_key, ()) if s.key == key), None)

    def put(self, team_key: str, stages: tuple[Stage, ...]) -> None:
        """Give the team these stages from now on (a file was just written for them).

        The book is shared by the services of this process, so all of them see the change.
        """
        self.teams[team_key] = stages

    def from_crm(self, team_key: str | None, crm_stage: str | None) -> str | None:
        """Return `<team key>:<stage key>` of the team's stage taken from this CRM stage,
        None when the team's stages are not the CRM's or list no such stage."""
        found = next(
            (s for s in self.teams.get(team_key or "", ()) if s.crm_stage == crm_stage), None
        )
        return f"{team_key}:{found.key}" if found is not None and crm_stage else None

    def counting(self, team_stage: str | None, stage: str) -> Stage | None:
        """Return the deal's team stage (whose label, probability and exit criteria it goes
        by) while it still stands for `stage`, the default stage the deal stores.

        A move made elsewhere (the CRM, an import) changes the stored stage without naming a
        team stage: the deal then goes by its default stage.
        """
        found = self.stage_of(team_stage)
        return found if found is not None and found.maps_to == stage else None


EMPTY_BOOK: Final = StageBook(teams={})


@dataclass(frozen=True, kw_only=True)
class StageSet:
    """The stages one person types: their team's own (`team_key` set), or the defaults."""

    team_key: str | None
    stages: tuple[Stage, ...]

    def stored(self, stage: Stage) -> tuple[str, str | None]:
        """Return what a deal stores for `stage`: its default key, and the team stage."""
        if self.team_key is None or stage.maps_to is None:
            return stage.key, None
        return stage.maps_to, f"{self.team_key}:{stage.key}"


DEFAULT_SET: Final = StageSet(team_key=None, stages=DEFAULT_STAGES)


def load_stage_book(directory: Path | None) -> StageBook:
    """Return the stages of every `<team name key>.yml` in `directory` (none: the defaults).

    Read once at start: a bad file stops dealbot with `file:line: reason` rather than
    leaving a team on stages it did not write.
    """
    if directory is None:
        return EMPTY_BOOK
    if not directory.is_dir():
        raise StagesFileError(f"{directory.name}: DEALBOT_STAGES_DIR is not a folder")
    teams: dict[str, tuple[Stage, ...]] = {}
    for path in sorted(directory.glob("*.yml")):
        teams[" ".join(path.stem.casefold().split())] = read_team_stages(
            path.read_text(encoding="utf-8"), source=path.name
        )
    return StageBook(teams=teams)


# --- a team's stages from the CRM's pipeline ----------------------------------------------
# `/dealbot team stages <team> from-crm` writes the team's file from the pipeline the last
# CRM pull stored, so the file stays the one store of a team's stages: it loads at start like
# a hand-written one, and an admin may edit it afterwards.


@dataclass(frozen=True, kw_only=True)
class PipelineStage:
    """One stage of the CRM's pipeline as the last pull stored it, in plain values."""

    id: str
    label: str
    probability: Decimal
    order: int
    # dealbot's category of the CRM's own (Salesforce's ForecastCategoryName); None: none.
    forecast_category: str | None
    # The dealbot stage the CRM stage maps to (`crm.mapping.dealbot_stage_for`, at the pull).
    maps_to: str
    pipeline: str | None = None


_NOT_KEY: Final = re.compile(r"[^a-z0-9]+")


def _key_from(label: str, taken: set[str]) -> str:
    """Return a stage key made from a CRM label ("Proposal/Price Quote": proposal_price_quote)."""
    base = _NOT_KEY.sub("_", label.casefold()).strip("_")[:32].strip("_")
    if not base or not base[0].isalpha():
        base = f"stage_{base}"[:32].strip("_")
    key, n = base, 2
    while key in taken:
        suffix = f"_{n}"
        key, n = base[: 32 - len(suffix)] + suffix, n + 1
    taken.add(key)
    return key


def team_stages_from_pipeline(pipeline: Sequence[PipelineStage]) -> tuple[Stage, ...]:
    """Return a team's stages made from the CRM's: label, probability, closed or won, the
    forecast category as default, and the exit criteria of the dealbot stage each maps to.

    With several pipelines (HubSpot's), the first is taken. Stages come in dealbot's order
    of what they map to, the CRM's order within one, so a rep moves through them as the
    checks expect. Raises ValueError when the pipeline has no open stage.
    """
    if not pipeline:
        raise ValueError("the CRM's pipeline lists no stage")
    first = min(pipeline, key=lambda s: s.order).pipeline
    chosen = sorted(
        (s for s in pipeline if s.pipeline == first),
        key=lambda s: (stage_by_key(s.maps_to).order, s.order),
    )
    if all(stage_by_key(s.maps_to).is_closed for s in chosen):
        raise ValueError("the CRM's pipeline lists no open stage")
    keys: set[str] = set()
    labels: set[str] = set()
    stages: list[Stage] = []
    for index, crm in enumerate(chosen):
        label = " ".join(crm.label.split())[:40] or crm.id[:40]
        while _normalized(label) in labels:
            label = f"{label[:36]} ({index + 1})"
        labels.add(_normalized(label))
        default = stage_by_key(crm.maps_to)
        stages.append(
            Stage(
                key=_key_from(label, keys),
                label=label,
                probability=min(max(crm.probability, Decimal(0)), Decimal(1)),
                order=index + 1,
                exit_criteria=default.exit_criteria,
                is_closed=default.is_closed,
                forecast_default=(
                    crm.forecast_category
                    if crm.forecast_category in FORECAST_CATEGORIES
                    else "pipeline"
                ),
                maps_to=default.key,
                crm_stage=crm.id,
            )
        )
    return tuple(stages)


def team_stages_text(stages: Sequence[Stage], *, taken_from: str) -> str:
    """Return the stages file of `stages`, as `read_team_stages` reads it."""
    entries = [
        {
            "key": stage.key,
            "label": stage.label,
            "probability": str(stage.probability.normalize()),
            "forecast_default": stage.forecast_default,
            "exit_criteria": list(stage.exit_criteria),
            "maps_to": stage.maps_to,
            "crm_stage": stage.crm_stage,
        }
        for stage in stages
    ]
    header = (
        f"# Taken from {taken_from}'s pipeline by `/dealbot team stages <team> from-crm`.\n"
        "# Run it again after the pipeline changes; edits made here are kept until then.\n"
    )
    return header + yaml.safe_dump({"stages": entries}, sort_keys=False, allow_unicode=True)


def write_team_stages(
    directory: Path, team_key: str, stages: Sequence[Stage], *, taken_from: str
) -> tuple[Stage, ...]:
    """Write `<team key>.yml` in `directory` at once (a reader never sees half a file);
    return the stages as read back, which is what the next start will load."""
    name = f"{team_key}.yml"
    text = team_stages_text(stages, taken_from=taken_from)
    written = read_team_stages(text, source=name)  # refuse before anything is written
    # The temporary name does not end in .yml: a start meanwhile does not load it.
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{team_key}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, directory / name)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return written
