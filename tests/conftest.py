import datetime as dt
import os

import pytest
from hypothesis import settings

pytest_plugins = ["tests.fakes.fixtures"]

# CI must be repeatable: the same examples every run, and no wall-clock deadline on a busy
# machine. Locally, hypothesis keeps exploring new examples.
settings.register_profile("ci", derandomize=True, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fake-now",
        metavar="ISO",
        default=None,
        help="run the whole suite as if the wall clock said this (time-machine, ticking), "
        "so that no test can depend on the day CI happens to run it",
    )


def pytest_configure(config: pytest.Config) -> None:
    # Block Kit builders hand back slack_sdk's models, checked against Slack's limits as
    # they become JSON: production skips that (handlers.blocks), the suite keeps it.
    from handlers.blocks import validate_blocks

    validate_blocks(True)
    fake_now = config.getoption("--fake-now")
    if not fake_now:
        return
    import time_machine

    destination = dt.datetime.fromisoformat(fake_now)
    if destination.tzinfo is None:
        destination = destination.replace(tzinfo=dt.UTC)
    traveller = time_machine.travel(destination, tick=True)
    traveller.start()
    config.add_cleanup(traveller.stop)


def pytest_report_header(config: pytest.Config) -> str | None:
    fake_now = config.getoption("--fake-now")
    return f"wall clock moved to {fake_now} (time-machine)" if fake_now else None
