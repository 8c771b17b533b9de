"""Every accuracy check has its words: a label and the one fix that clears it."""

from __future__ import annotations

from domain.checks import CHECK_IDS
from handlers.messages import CHECK_FIXES, CHECK_LABELS


def test_every_check_has_a_label_and_a_fix_and_no_wording_outlives_its_check() -> None:
    # Adding a check is its rule, its default and these words; this names the third if missed.
    assert set(CHECK_LABELS) == set(CHECK_IDS)
    assert set(CHECK_FIXES) == set(CHECK_IDS)
