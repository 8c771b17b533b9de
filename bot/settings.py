"""Settings read from the environment or `.env`; names are part of the product contract."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_DATABASE_URL = "sqlite:///dealbot.db"


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
    dealbot_timezone: str = "UTC"
    dealbot_admins: Annotated[tuple[str, ...], NoDecode] = ()
    dealbot_secret_key: SecretStr | None = None
    dealbot_currency: str = "USD"
    host: str = "127.0.0.1"
    port: int = Field(default=3000, ge=1, le=65535)

    @field_validator("slack_api_url", "gmail_api_url")
    @classmethod
    def _url_with_trailing_slash(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an http(s) URL")
        return value if value.endswith("/") else value + "/"

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


def load_settings(**overrides: object) -> Settings:
    """Return validated settings, or raise SettingsError with one line naming the bad one."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        first = error.errors()[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "settings"
        raise SettingsError(f"{name}: {first['msg']}") from None
