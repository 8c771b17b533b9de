"""Where Slack's published specs live in a dev checkout: beside the repo, not inside it."""

from __future__ import annotations

import os
from pathlib import Path

from bot.fake_slack import WEB_API_SPEC_FILE

SPEC_DIR_ENV = "DEALBOT_SLACK_SPEC_DIR"


def slack_spec_dir() -> Path:
    """Return the folder holding Slack's published specs (``$DEALBOT_SLACK_SPEC_DIR`` wins).

    Raises FileNotFoundError naming the variable when the Web API spec is not there, so a
    checkout without the specs fails with how to fix it rather than deep inside a test.
    """
    override = os.environ.get(SPEC_DIR_ENV)
    # The specs live in ../shared/slack beside the repo.
    spec_dir = Path(override) if override else Path(__file__).resolve().parents[3] / "shared/slack"
    if not (spec_dir / WEB_API_SPEC_FILE).is_file():
        raise FileNotFoundError(
            f"Slack Web API spec not found in {spec_dir}; set {SPEC_DIR_ENV} to its folder"
        )
    return spec_dir
