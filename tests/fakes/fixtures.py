"""Pytest fixtures serving the fake Slack Web API (enabled from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.fake_slack import FakeSlackWebAPI
from tests.fakes.slack_spec import slack_spec_dir


def assert_no_violations(fake: FakeSlackWebAPI) -> None:
    """Fail the current test if the fake saw any call Slack would have rejected."""
    violations = fake.violations
    if violations:
        listed = "\n".join(f"  - {problem}" for problem in violations)
        pytest.fail(f"Slack would have rejected {len(violations)} call(s):\n{listed}")


@pytest.fixture
def slack_api() -> Iterator[FakeSlackWebAPI]:
    """Yield a running fake Slack Web API; the test fails at teardown if Slack would object."""
    with FakeSlackWebAPI(spec_dir=slack_spec_dir()) as fake:
        yield fake
    # Checked after the test body so a handler's swallowed SlackApiError still fails the test.
    assert_no_violations(fake)


@pytest.fixture
def slack_api_lenient() -> Iterator[FakeSlackWebAPI]:
    """Yield a running fake Slack Web API that tolerates invalid calls (for fault tests)."""
    with FakeSlackWebAPI(spec_dir=slack_spec_dir()) as fake:
        yield fake
