"""CRM settings (SPEC "CRM sync"): defaults, one line naming what is missing, no secrets shown."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import Settings, SettingsError, load_settings

REPO = Path(__file__).resolve().parents[2]
CRM_SETTINGS = (
    "DEALBOT_CRM",
    "SALESFORCE_LOGIN_URL",
    "SALESFORCE_CLIENT_ID",
    "SALESFORCE_USERNAME",
    "SALESFORCE_PRIVATE_KEY_FILE",
    "SALESFORCE_API_VERSION",
    "HUBSPOT_ACCESS_TOKEN",
    "HUBSPOT_API_URL",
    "HUBSPOT_WEBHOOK_SECRET",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in CRM_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env is read


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "salesforce.key"
    path.write_text("-----BEGIN PRIVATE KEY-----\n...\n-----END PRIVATE KEY-----\n")
    return path


def salesforce(monkeypatch: pytest.MonkeyPatch, key_file: Path) -> None:
    monkeypatch.setenv("DEALBOT_CRM", "salesforce")
    monkeypatch.setenv("SALESFORCE_CLIENT_ID", "3MVG9-consumer-key")
    monkeypatch.setenv("SALESFORCE_USERNAME", "dealbot@initech.com")
    monkeypatch.setenv("SALESFORCE_PRIVATE_KEY_FILE", str(key_file))


def test_no_crm_by_default_and_the_documented_defaults() -> None:
    settings = load_settings(_env_file=None)
    assert settings.dealbot_crm == "none"
    assert settings.crm_kind is None
    assert settings.salesforce_login_url == "https://login.salesforce.com"
    assert settings.salesforce_api_version == "62.0"
    assert settings.hubspot_api_url == "https://api.hubapi.com"
    assert settings.hubspot_webhooks_enabled is False
    settings.require_crm_settings()  # nothing is needed without a CRM


def test_a_complete_salesforce_setup_passes(
    monkeypatch: pytest.MonkeyPatch, key_file: Path
) -> None:
    salesforce(monkeypatch, key_file)
    monkeypatch.setenv("SALESFORCE_LOGIN_URL", "https://test.salesforce.com/")
    monkeypatch.setenv("SALESFORCE_API_VERSION", "v61.0")
    settings = load_settings(_env_file=None)
    settings.require_crm_settings()
    assert settings.crm_kind == "salesforce"
    # Connectors append their paths: no trailing slash; the version as simple-salesforce wants.
    assert settings.salesforce_login_url == "https://test.salesforce.com"
    assert settings.salesforce_api_version == "61.0"


@pytest.mark.parametrize(
    "missing", ["SALESFORCE_CLIENT_ID", "SALESFORCE_USERNAME", "SALESFORCE_PRIVATE_KEY_FILE"]
)
def test_a_missing_salesforce_setting_is_named_in_one_line(
    monkeypatch: pytest.MonkeyPatch, key_file: Path, missing: str
) -> None:
    salesforce(monkeypatch, key_file)
    monkeypatch.delenv(missing)
    with pytest.raises(SettingsError) as raised:
        load_settings(_env_file=None).require_crm_settings()
    message = str(raised.value)
    assert message.startswith(f"{missing} is not set")
    assert "\n" not in message


def test_a_blank_setting_counts_as_missing(monkeypatch: pytest.MonkeyPatch, key_file: Path) -> None:
    salesforce(monkeypatch, key_file)
    monkeypatch.setenv("SALESFORCE_USERNAME", "  ")
    with pytest.raises(SettingsError, match=r"^SALESFORCE_USERNAME is not set"):
        load_settings(_env_file=None).require_crm_settings()


def test_a_key_file_that_is_not_there_is_named(
    monkeypatch: pytest.MonkeyPatch, key_file: Path, tmp_path: Path
) -> None:
    salesforce(monkeypatch, key_file)
    monkeypatch.setenv("SALESFORCE_PRIVATE_KEY_FILE", str(tmp_path / "nowhere.key"))
    with pytest.raises(SettingsError, match=r"^SALESFORCE_PRIVATE_KEY_FILE: no file at"):
        load_settings(_env_file=None).require_crm_settings()


def test_hubspot_needs_its_token_and_the_secret_turns_the_webhook_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DEALBOT_CRM", "hubspot")
    with pytest.raises(SettingsError, match=r"^HUBSPOT_ACCESS_TOKEN is not set"):
        load_settings(_env_file=None).require_crm_settings()
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "pat-na1-secret-token")
    settings = load_settings(_env_file=None)
    settings.require_crm_settings()
    assert settings.hubspot_webhooks_enabled is False
    monkeypatch.setenv("HUBSPOT_WEBHOOK_SECRET", "client-secret")
    assert load_settings(_env_file=None).hubspot_webhooks_enabled is True


def test_the_webhook_secret_alone_does_not_serve_webhooks_for_salesforce(
    monkeypatch: pytest.MonkeyPatch, key_file: Path
) -> None:
    salesforce(monkeypatch, key_file)
    monkeypatch.setenv("HUBSPOT_WEBHOOK_SECRET", "client-secret")
    assert load_settings(_env_file=None).hubspot_webhooks_enabled is False


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DEALBOT_CRM", "pipedrive"),
        ("SALESFORCE_LOGIN_URL", "login.salesforce.com"),
        ("SALESFORCE_API_VERSION", "latest"),
        ("HUBSPOT_API_URL", "api.hubapi.com"),
    ],
)
def test_a_malformed_crm_setting_is_named_in_one_line(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as raised:
        load_settings(_env_file=None)
    message = str(raised.value)
    assert message.startswith(f"{name}:")
    assert "\n" not in message


def test_crm_secrets_do_not_show_in_the_settings_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "pat-very-secret")
    monkeypatch.setenv("HUBSPOT_WEBHOOK_SECRET", "hook-very-secret")
    settings = load_settings(_env_file=None)
    assert "very-secret" not in repr(settings)
    assert "very-secret" not in str(settings.model_dump())


def test_serve_with_a_half_configured_crm_stops_with_one_line(tmp_path: Path) -> None:
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in CRM_SETTINGS and not key.startswith(("SLACK_", "DATABASE_URL"))
    }
    environment |= {
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": "signing-secret",
        "DEALBOT_CRM": "hubspot",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'dealbot.db'}",
    }
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
        "dealbot: HUBSPOT_ACCESS_TOKEN is not set (the private app's access token, pat-...)"
    ]


def test_settings_model_declares_every_documented_crm_setting() -> None:
    # The names are the product contract (SPEC "CRM sync"): a rename must fail here.
    assert {name.upper() for name in Settings.model_fields} >= set(CRM_SETTINGS)
