"""`/pipeline team` and `/pipeline` show the quarter's roll-up, over signed requests.

Team Enterprise (Paris, reporting in USD): Ana (quota $300,000) and Ben (no quota). EUR is
worth 1.10 USD from 1 Oct; GBP has no rate. Today is Mon 23 Nov 2026 (2026-Q4).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from storage.fx import FxRepository
from tests.e2e.harness import NOW, RunningApp

ADMIN = "U0ADMIN"


def seed(app: RunningApp) -> None:
    app.command("/dealbot", "team create Enterprise <#C0SALES|sales> tz:Europe/Paris", user=ADMIN)
    app.command("/dealbot", "team add Enterprise rep <@U0ANA|ana> <@U0BEN|ben>", user=ADMIN)
    app.command("/dealbot", "team add Enterprise manager <@U0MARIA|maria>", user=ADMIN)
    app.command("/dealbot", "team quota Enterprise <@U0ANA|ana> 300k", user="U0MARIA")
    with app.database.session() as session:
        FxRepository(session).set_rate(
            currency="EUR",
            rate=Decimal("1.10"),
            effective_on=dt.date(2026, 10, 1),
            by=ADMIN,
            at=NOW,
        )
    # Commit needs cited evidence: each commit deal is created, cited, then committed.
    link = "https://acme.slack.com/archives/C0123ABC/p1700000000123456"
    for text, user in (
        ("new Initech 50k stage:discovery close:dec 15", "U0ANA"),
        *((f"Initech evidence {kind}: {link}", "U0ANA") for kind in ("eb", "process", "paper")),
        ("Initech forecast:commit", "U0ANA"),
        ("new Globex €40,000 forecast:best case close:dec 1", "U0ANA"),
        ("new Soylent 10k close:dec 18", "U0ANA"),
        ("won soylent signed", "U0ANA"),
        ("new Hooli £30,000 forecast:pipeline close:dec 10", "U0BEN"),
        ("new Acme 20k close:dec 20", "U0BEN"),
        # Closing in January: in no figure of this quarter.
        ("new Cyberdyne 70k close:2027-01-20", "U0BEN"),
        *((f"Cyberdyne evidence {kind}: {link}", "U0BEN") for kind in ("eb", "process", "paper")),
        ("Cyberdyne forecast:commit", "U0BEN"),
    ):
        assert app.command("/deal", text, user=user).status == 200


def test_pipeline_team_shows_the_roll_up_per_rep_and_team(app: RunningApp) -> None:
    seed(app)
    reply = app.command("/pipeline", "team", user="U0MARIA")
    text = reply.all_text
    # Ana: won Soylent 10,000; commit Initech 50,000; best case Globex €40,000 × 1.10 =
    #   44,000; quota 300,000: attainment 10,000 ÷ 300,000 = 3%; coverage 94,000 ÷ 290,000 =
    #   0.32 → 0.3×. Both open deals lack a next step, in commit and best case: at risk 94,000.
    assert (
        "<@U0ANA>: won *$10,000* · commit *$50,000* · best case *$44,000* · pipeline *$0*\n"
        "      quota $300,000 · attainment *3%* · coverage *0.3×* · :warning: at risk "
        "*$94,000* (2 deals)"
    ) in text
    # Ben: Acme 20,000 in pipeline; Hooli (GBP) excluded; Cyberdyne closes in January.
    assert (
        "<@U0BEN>: won *$0* · commit *$0* · best case *$0* · pipeline *$20,000*\n      no quota set"
    ) in text
    # Team: 114,000 open ÷ (300,000 − 10,000) = 0.39 → 0.4×.
    assert (
        "*Team*: won *$10,000* · commit *$50,000* · best case *$44,000* · pipeline *$20,000*\n"
        "      quota $300,000 · attainment *3%* · coverage *0.4×*"
    ) in text
    assert "• *Initech* $50,000 (<@U0ANA>): no dated next step · commit without evidence" in text
    assert "• *Globex* €40,000 ≈ $44,000 (<@U0ANA>): no dated next step" in text
    assert "*Not in these totals (1)*\n• *Hooli* £30,000: no GBP rate — dealbot fx set GBP" in text
    assert "1 EUR = 1.1 USD (rate of Thu 1 Oct 2026)" in text
    # The roll-up sits above the deal list, which still lists every open deal.
    assert text.index("*Team*") < text.index("open · total")
    assert "Cyberdyne" in text[text.index("open · total") :]


def test_pipeline_for_one_rep_shows_their_line_against_quota(app: RunningApp) -> None:
    seed(app)
    text = app.command("/pipeline", "", user="U0ANA").all_text
    assert "<@U0ANA>: won *$10,000* · commit *$50,000*" in text
    assert "quota $300,000 · attainment *3%*" in text
    assert "*Team*" not in text and "<@U0BEN>" not in text
    bens = app.command("/pipeline", "<@U0BEN|ben>", user="U0ANA").all_text
    assert "<@U0BEN>: won *$0*" in bens and "no quota set" in bens
    assert "• *Hooli* £30,000: no GBP rate" in bens
