"""A team's stages file: read into stages that map to dealbot's, refused as `file:line`."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from domain.stages import (
    DEFAULT_SET,
    DEFAULT_STAGES,
    StagesFileError,
    load_stage_book,
    match_stage,
    read_team_stages,
)

GOOD = """\
stages:
  - key: qualify
    label: Qualify
    probability: 0.2
    exit_criteria: [amount, close_date]
    maps_to: discovery
  - key: evaluate
    label: Evaluate
    probability: 40%
    forecast_default: best_case
    maps_to: demo
"""


def test_a_good_file_gives_ordered_stages_mapped_to_defaults() -> None:
    qualify, evaluate = read_team_stages(GOOD, source="east.yml")
    assert (qualify.key, qualify.order, qualify.maps_to, qualify.default_key) == (
        "qualify",
        1,
        "discovery",
        "discovery",
    )
    assert qualify.exit_criteria == ("amount", "close_date")
    assert evaluate.probability == Decimal("0.4") and evaluate.forecast_default == "best_case"
    assert match_stage("eval", (qualify, evaluate)) is evaluate


_ENTRY = "stages:\n  - key: qualify\n    label: Qualify\n    probability: 0.2\n"


@pytest.mark.parametrize(
    ("text", "refusal"),
    [
        (_ENTRY, "east.yml:2: stage 1 needs `maps_to:`"),
        (
            _ENTRY + "    maps_to: demo\n    colour: red\n",
            "east.yml:6: stage 1: `colour` is not a stage setting; use key, label,",
        ),
        (
            _ENTRY.replace("0.2", "1.5") + "    maps_to: demo\n",
            "east.yml:4: stage 1 probability must be between 0 and 1",
        ),
        (_ENTRY + "    maps_to: won\n", "east.yml:5: stage 1 maps_to is 'won': it must be one of"),
        (
            _ENTRY + "    maps_to: demo\n    exit_criteria: [budget]\n",
            "east.yml:6: stage 1 exit_criteria lists 'budget'",
        ),
        (
            _ENTRY + "    maps_to: demo\n    forecast_default: maybe\n",
            "east.yml:6: stage 1 forecast_default is 'maybe'",
        ),
        (
            _ENTRY.replace("key: qualify", "key: Qualify Now") + "    maps_to: demo\n",
            "east.yml:2: stage 1 key 'Qualify Now' is not a stage key",
        ),
        (
            _ENTRY
            + "    maps_to: demo\n  - key: requalify\n    label: qualify\n"
            + "    probability: 0.3\n    maps_to: proposal\n",
            "east.yml:2: stages has 'qualify' named like 'Qualify'",
        ),
        (
            _ENTRY
            + "    maps_to: demo\n  - key: validate\n    label: Validate\n"
            + "    probability: 0.3\n    maps_to: demo\n",
            "east.yml:2: stages must each map to a different one of dealbot's stages",
        ),
        (
            _ENTRY
            + "    maps_to: proposal\n  - key: validate\n    label: Validate\n"
            + "    probability: 0.3\n    maps_to: demo\n",
            "east.yml:2: stages must each map to a different one of dealbot's stages, in",
        ),
        (
            "stages:\n  - key: won\n    label: Won\n    probability: 1\n    maps_to: closed_won\n",
            "east.yml:2: stages lists no open stage",
        ),
        ("stages: []\n", "east.yml:1: stages lists no stage"),
        ("stage:\n  - key: x\n", "east.yml:1: the file needs `stages:`"),
        ("stages:\n - [\n", "east.yml:3: not valid YAML"),
        ("", "east.yml: the file is empty"),
    ],
)
def test_a_bad_file_is_refused_naming_its_line(text: str, refusal: str) -> None:
    with pytest.raises(StagesFileError) as refused:
        read_team_stages(text, source="east.yml")
    assert str(refused.value).startswith(refusal)


def test_the_book_reads_a_folder_by_team_name_key(tmp_path: Path) -> None:
    (tmp_path / "Enterprise West.yml").write_text(GOOD, encoding="utf-8")
    (tmp_path / "notes.txt").write_text("not stages", encoding="utf-8")
    book = load_stage_book(tmp_path)
    assert list(book.teams) == ["enterprise west"]
    assert book.for_team("east") == DEFAULT_STAGES and book.set_for("east") == DEFAULT_SET
    chosen = book.set_for("enterprise west")
    evaluate = match_stage("evaluate", chosen.stages)
    assert chosen.stored(evaluate) == ("demo", "enterprise west:evaluate")
    assert book.stage_of("enterprise west:evaluate") == evaluate
    assert book.stage_of("enterprise west:gone") is None and book.stage_of(None) is None
    assert load_stage_book(None).teams == {}


def test_a_bad_file_in_the_folder_stops_the_book(tmp_path: Path) -> None:
    (tmp_path / "east.yml").write_text(_ENTRY, encoding="utf-8")
    with pytest.raises(StagesFileError, match=r"^east\.yml:2: "):
        load_stage_book(tmp_path)
    with pytest.raises(StagesFileError, match="not a folder"):
        load_stage_book(tmp_path / "missing")
