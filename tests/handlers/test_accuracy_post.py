"""The weekly accuracy post stays within Slack's limits and escapes the deal names it names."""

from __future__ import annotations

from decimal import Decimal

from domain.checks import FailingDeal
from domain.money import Money
from domain.nudges import RepAccuracy
from handlers import reminder_blocks
from handlers.blocks import SECTION_TEXT_LIMIT
from tests.e2e.harness import blocks_text

HOSTILE = "<!channel> <@U0BEN> & *Acme*"


def _rep(index: int, name: str) -> RepAccuracy:
    checks = ("NO_NEXT_STEP", "SINGLE_THREADED", "STAGE_CRITERIA_UNMET", "NO_ECONOMIC_BUYER")
    return RepAccuracy(
        rep_id=f"U{index:05d}",
        score=Decimal("0.50"),
        change=Decimal("-0.03"),
        deals=40,
        top_failures=(("NO_NEXT_STEP", 12), ("SINGLE_THREADED", 9), ("NO_AMOUNT", 2)),
        best_fix=("NO_NEXT_STEP", 12, Decimal("0.08")),
        failing_deals=tuple(
            FailingDeal(i, f"{name} {i}", Money(Decimal(250_000), "EUR"), checks) for i in range(3)
        ),
        more_failing=37,
        commit_claimed=Money(Decimal("1250000"), "USD"),
        commit_evidenced=Money(Decimal("400000"), "USD"),
        commit_unpriced=2,
    )


def test_a_big_team_fits_slacks_block_and_text_limits_and_says_how_many_reps_are_left() -> None:
    reps = [_rep(i, "Northwind Traders International " * 4) for i in range(300)]
    reply = reminder_blocks.accuracy_post(
        team_name="Everyone", week="2026-W48", team_score=Decimal("0.5"), reps=reps,
        top_checks=(("NO_NEXT_STEP", 3600),), currency="USD",
    )  # fmt: skip
    blocks = reply.block_dicts()
    assert len(blocks) <= 50
    texts = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert all(len(text) <= SECTION_TEXT_LIMIT for text in texts)
    shown = sum(text.count("<@U") for text in texts)
    assert 0 < shown < 300
    assert f"…and {300 - shown} more rep(s)" in blocks_text(blocks)
    # A rep's lines are never split across sections: each shown rep has its commit line.
    assert sum(text.count("Commit claimed") for text in texts) == shown
    # Long deal names are cut so three deals and their fixes fit a rep's lines.
    assert "…" in texts[1] and "and 37 more deals" in texts[1]


def test_deal_names_in_the_post_are_escaped_and_name_no_one() -> None:
    reply = reminder_blocks.accuracy_post(
        team_name="East", week="2026-W48", team_score=None, reps=[_rep(1, HOSTILE)],
        top_checks=(),
    )  # fmt: skip
    text = blocks_text(reply.block_dicts())
    assert "<!channel>" not in text and "<@U0BEN>" not in text
    assert "&lt;!channel&gt;" in text
    assert "€250k" in text  # each deal in its own currency
    # 400,000 ÷ 1,250,000 = 32% of the commit is backed by cited evidence.
    assert "Commit claimed *$1,250,000* · evidenced *$400,000* (32%)" in text
