"""Settings read from the environment or `.env`; names are part of the product contract."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_DATABASE_URL = "sqlite:///dealbot.db"
DEFAULT_SALESFORCE_LOGIN_URL = "https://login.salesforce.com"
DEFAULT_SALESFORCE_API_VERSION = "62.0"
DEFAULT_HUBSPOT_API_URL = "https://api.hubapi.com"


class SettingsError(Exception):
    """A setting is missing or malformed; the message is one line naming it."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", case_sensitive=False
    )

    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = DEFAULT_SLACK_API_URL
    database_url: str = DEFAULT_DATABASE_URL
    dealbot_email_backend: Literal["outbox", "gmail"] = "outbox"
    gmail_api_url: str | None = None
    google_service_account_file: Path | None = None
    google_oauth_client_file: Path | None = None
    dealbot_outbox_dir: Path = Path("outbox")
    # A folder of `<team name>.yml` files, each a team's own stages (domain/stages.py).
    dealbot_stages_dir: Path | None = None
    dealbot_timezone: str = "UTC"
    dealbot_admins: Annotated[tuple[str, ...], NoDecode] = ()
    dealbot_secret_key: SecretStr | None = None
    dealbot_currency: str = "USD"
    host: str = "127.0.0.1"
    port: int = Field(default=3000, ge=1, le=65535)
    # CRM sync (SPEC "CRM sync"): which CRM, and how to reach it.
    dealbot_crm: Literal["none", "salesforce", "hubspot"] = "none"
    salesforce_login_url: str = DEFAULT_SALESFORCE_LOGIN_URL
    salesforce_client_id: str | None = None
    salesforce_username: str | None = None
    salesforce_private_key_file: Path | None = None
    salesforce_api_version: str = DEFAULT_SALESFORCE_API_VERSION
    hubspot_access_token: SecretStr | None = None
    hubspot_api_url: str = DEFAULT_HUBSPOT_API_URL
    hubspot_webhook_secret: SecretStr | None = None

    @field_validator("slack_api_url", "gmail_api_url")
    @classmethod
    def _url_with_trailing_slash(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value if value.endswith("/") else value + "/"

    @field_validator("salesforce_login_url", "hubspot_api_url")
    @classmethod
    def _origin_without_trailing_slash(cls, value: str) -> str:
        # The connectors append their own paths (/services/oauth2/token, /crm/v3/...).
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @field_validator("salesforce_api_version")
    @classmethod
    def _api_version(cls, value: str) -> str:
        # simple-salesforce wants "62.0"; people copy "v62.0" from Salesforce's URLs.
        version = value.strip().removeprefix("v")
        if not re.fullmatch(r"\d{2,3}\.0", version):
            raise ValueError("must be a Salesforce API version such as 62.0")
        return version

    @field_validator(
        "salesforce_client_id",
        "salesforce_username",
        "salesforce_private_key_file",
        "hubspot_access_token",
        "hubspot_webhook_secret",
        mode="before",
    )
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        # `HUBSPOT_WEBHOOK_SECRET=` in a .env means "not set", not "an empty secret".
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("dealbot_timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown IANA timezone {value!r} (e.g. Europe/Paris)") from None
        return value

    @field_validator("dealbot_admins", mode="before")
    @classmethod
    def _split_admins(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("dealbot_currency")
    @classmethod
    def _currency_code(cls, value: str) -> str:
        if len(value) != 3 or not value.isalpha():
            raise ValueError("must be a 3-letter currency code such as USD")
        return value.upper()

    @property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.dealbot_timezone)

    def require_slack_credentials(self) -> None:
        """Raise SettingsError naming the first Slack credential that serving needs but lacks."""
        if self.slack_bot_token is None:
            raise SettingsError("SLACK_BOT_TOKEN is not set (the bot token, xoxb-...)")
        if self.slack_app_token is None and self.slack_signing_secret is None:
            raise SettingsError(
                "SLACK_SIGNING_SECRET is not set (Basic Information > Signing Secret)"
            )

    @property
    def crm_kind(self) -> Literal["salesforce", "hubspot"] | None:
        """Return the connected CRM's kind, or None when dealbot's database is the record."""
        return None if self.dealbot_crm == "none" else self.dealbot_crm

    @property
    def hubspot_webhooks_enabled(self) -> bool:
        """Return whether POST /crm/hubspot/webhooks is served (HubSpot with a secret)."""
        return self.dealbot_crm == "hubspot" and self.hubspot_webhook_secret is not None

    def require_crm_settings(self) -> None:
        """Raise SettingsError naming the first setting the selected CRM needs but lacks.

        Checked by `dealbot crm ...` and at serve time, so a half-configured CRM stops
        start-up with one line instead of failing at the first sync five minutes later.
        """
        if self.dealbot_crm == "salesforce":
            if self.salesforce_client_id is None:
                raise SettingsError(
                    "SALESFORCE_CLIENT_ID is not set (the connected app's consumer key)"
                )
            if self.salesforce_username is None:
                raise SettingsError(
                    "SALESFORCE_USERNAME is not set (the integration user's username)"
                )
            key = self.salesforce_private_key_file
            if key is None:
                raise SettingsError(
                    "SALESFORCE_PRIVATE_KEY_FILE is not set (the PEM key of the connected "
                    "app's certificate)"
                )
            if not key.is_file():
                raise SettingsError(f"SALESFORCE_PRIVATE_KEY_FILE: no file at {key}")
        elif self.dealbot_crm == "hubspot" and self.hubspot_access_token is None:
            raise SettingsError(
                "HUBSPOT_ACCESS_TOKEN is not set (the private app's access token, pat-...)"
            )


def load_settings(**overrides: object) -> Settings:
    """Return validated settings, or raise SettingsError with one line naming the bad one."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        first = error.errors()[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "settings"
        raise SettingsError(f"{name}: {first['msg']}") from None
