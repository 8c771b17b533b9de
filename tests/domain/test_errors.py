"""A refusal names people by user id; the surface that shows it writes their names."""

from __future__ import annotations

import re
from pathlib import Path

from domain.errors import InvalidChange, NotAllowed, Person

DOMAIN = Path(__file__).resolve().parents[2] / "domain"


def test_a_refusal_names_its_people_the_way_the_surface_asks() -> None:
    refusal = InvalidChange(
        (Person("U0ANA"), " is not a rep in West."),
        ("/dealbot team add West rep ", Person("U0ANA")),
    )

    assert refusal.worded(lambda person: f"@{person.user_id.lower()}") == (
        "@u0ana is not a rep in West.",
        "/dealbot team add West rep @u0ana",
    )
    # Read without a surface (logs, the import report): the bare user id.
    assert refusal.problem == "U0ANA is not a rep in West."
    assert refusal.hint == "/dealbot team add West rep U0ANA"
    assert str(refusal) == refusal.problem


def test_plain_words_stay_as_they_are() -> None:
    refusal = NotAllowed("Only a workspace admin can remove people from a team.")
    assert refusal.worded(lambda person: "nobody") == (refusal.problem, None)
    assert refusal.hint is None


def test_the_domain_writes_no_slack_mention() -> None:
    written = {
        path.name: [line for line in path.read_text().splitlines() if re.search(r"<@[{A-Z]", line)]
        for path in DOMAIN.glob("*.py")
    }
    assert {name: lines for name, lines in written.items() if lines} == {}
