"""A missing or malformed setting stops start-up with one clear line naming it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import SettingsError, load_settings

REPO = Path(__file__).resolve().parents[2]
SETTING_NAMES = (
    "SLACK_BOT_TOKEN",
    "SLACK_SIGNING_SECRET",
    "SLACK_APP_TOKEN",
    "SLACK_API_URL",
    "DATABASE_URL",
    "DEALBOT_EMAIL_BACKEND",
    "DEALBOT_TIMEZONE",
    "DEALBOT_ADMINS",
    "PORT",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SETTING_NAMES:
        monkeypatch.delenv(name, raising=False)


def test_defaults_are_the_embedded_ones() -> None:
    settings = load_settings(_env_file=None)
    assert settings.database_url.startswith("sqlite:///")
    assert settings.dealbot_email_backend == "outbox"
    assert settings.slack_api_url == "https://slack.com/api/"
    assert (settings.host, settings.port) == ("127.0.0.1", 3000)


def test_admins_are_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEALBOT_ADMINS", "U1, U2,,U3 ")
    assert load_settings(_env_file=None).dealbot_admins == ("U1", "U2", "U3")


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("PORT", "eighty"),
        ("PORT", "70000"),
        ("DEALBOT_TIMEZONE", "Mars/Olympus"),
        ("DEALBOT_EMAIL_BACKEND", "smtp"),
        ("SLACK_API_URL", "slack.com/api"),
    ],
)
def test_a_malformed_setting_is_named_in_one_line(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        load_settings(_env_file=None)
    message = str(raised.value)
    assert message.startswith(f"{name}:")
    assert "\n" not in message


def test_serving_without_a_bot_token_names_it() -> None:
    with pytest.raises(SettingsError, match="SLACK_BOT_TOKEN"):
        load_settings(_env_file=None).require_slack_credentials()


def test_dealbot_serve_stops_with_one_line_and_exit_code_2(tmp_path: Path) -> None:
    environment = {key: value for key, value in os.environ.items() if key not in SETTING_NAMES}
    environment["PORT"] = "not-a-port"
    result = subprocess.run(
        [sys.executable, str(REPO / "app.py")],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "dealbot: PORT: Input should be a valid integer, unable to parse string as an integer"
    ]


def test_secrets_do_not_show_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-very-secret")
    monkeypatch.setenv("SLACK_SIGNING_SECRET", "signing-very-secret")
    shown = repr(load_settings(_env_file=None))
    assert "very-secret" not in shown
