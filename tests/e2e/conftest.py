from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.fake_slack import FakeSlackWebAPI
from tests.e2e.harness import RunningApp, running_app


@pytest.fixture
def app(slack_api: FakeSlackWebAPI, tmp_path: Path) -> Iterator[RunningApp]:
    slack_api.set_user("U0ADMIN", name="alice", is_admin=True)
    slack_api.set_user("U0ANA", name="ana")
    slack_api.set_user("U0BEN", name="ben")
    slack_api.set_user("U0MARIA", name="maria")
    with running_app(slack_api, f"sqlite:///{tmp_path / 'e2e.db'}") as running:
        yield running
