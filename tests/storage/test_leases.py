"""The lease heartbeat both outboxes use: it beats while the work runs, and only then."""

from __future__ import annotations

import threading

import pytest

from storage.leases import renewing


def test_renews_while_the_block_runs_and_stops_when_it_exits() -> None:
    beats: list[int] = []
    twice = threading.Event()

    def renew() -> None:
        beats.append(1)
        if len(beats) >= 2:
            twice.set()

    with renewing(every=0.001, renew=renew, name="test-lease"):
        assert twice.wait(timeout=10), "the heartbeat never beat twice"
    after_exit = len(beats)

    assert not any(t.name == "test-lease" for t in threading.enumerate())
    assert len(beats) == after_exit


def test_a_failed_renewal_is_logged_and_the_next_beat_tries_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls: list[int] = []
    recovered = threading.Event()

    def renew() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise ConnectionError("the database blinked")
        recovered.set()

    with renewing(every=0.001, renew=renew, name="test-lease"):
        assert recovered.wait(timeout=10), "no beat after the failed one"

    assert "renewing leases (test-lease) failed" in caplog.text
