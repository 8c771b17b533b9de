"""`dealbot demo` makes readable drafts for the seeded deals with the outbox backend."""

from __future__ import annotations

import io
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from bot.demo import run_demo


def test_the_demo_drafts_follow_ups_into_its_outbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the demo's outbox folder is relative to where it runs
    out = io.StringIO()
    commands = "/deal followup globex\n/deal followup initech redlines_review\n"

    run_demo(database_url=f"sqlite:///{tmp_path / 'demo.db'}", stdin=io.StringIO(commands), out=out)

    drafts = {
        str(mail["Subject"]): mail
        for mail in (
            message_from_bytes(path.read_bytes(), policy=policy.default)
            for path in (tmp_path / "dealbot-demo-outbox").glob("*.eml")
        )
    }
    assert set(drafts) == {"Proposal for Globex", "Initech — contract redlines"}
    globex = drafts["Proposal for Globex"]
    assert str(globex["To"]) == "Hank Scorpio <hank@globex.com>"
    assert str(globex["From"]) == "Ana Ruiz <ana@dealbot-demo.example>"
    body = globex.get_body(preferencelist=("plain",))
    assert body is not None and "Please find attached our proposal for Globex" in str(
        body.get_content()
    )
    assert "Subject: Proposal for Globex" in out.getvalue()
    assert "Saved as" in out.getvalue()
