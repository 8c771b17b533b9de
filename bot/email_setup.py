"""Builds the follow-up machinery from the settings, and refuses a half-configured Gmail."""

from __future__ import annotations

from collections.abc import Callable

from bot.settings import Settings, SettingsError
from domain.clock import Clock
from domain.deals import DealService
from domain.follow_up_triggers import TriggerRulesError, load_trigger_rules
from reminders.email.backends import EmailBackend, GmailBackend, OutboxBackend
from reminders.email.drafts import FollowUps, RepProfile
from reminders.email.google_auth import (
    DelegatedMailboxes,
    GoogleSetupError,
    OAuthClient,
    OAuthMailboxes,
    gmail_profile_email,
)
from reminders.email.templates import EmailTemplates
from reminders.email.token_cipher import SecretKeyError, TokenCipher
from storage.database import Database


def build_gmail_connect(
    settings: Settings, *, database: Database, clock: Clock
) -> OAuthMailboxes | None:
    """Return the per-rep OAuth mailboxes when the Gmail backend uses them, else None."""
    if settings.dealbot_email_backend != "gmail" or settings.google_service_account_file:
        return None
    if settings.google_oauth_client_file is None:
        raise SettingsError(
            "GOOGLE_OAUTH_CLIENT_FILE is not set: DEALBOT_EMAIL_BACKEND=gmail needs it (per-rep "
            "OAuth) or GOOGLE_SERVICE_ACCOUNT_FILE (domain-wide delegation)"
        )
    if settings.dealbot_secret_key is None:
        raise SettingsError(
            "DEALBOT_SECRET_KEY is not set: Gmail refresh tokens are stored encrypted with it"
        )
    try:
        client = OAuthClient.from_file(settings.google_oauth_client_file)
        cipher = TokenCipher.from_setting(settings.dealbot_secret_key.get_secret_value())
    except GoogleSetupError as error:
        raise SettingsError(str(error)) from None
    except SecretKeyError as error:
        raise SettingsError(f"DEALBOT_SECRET_KEY: {error}") from None
    return OAuthMailboxes(
        database=database,
        cipher=cipher,
        client=client,
        clock=clock,
        profile_email=gmail_profile_email(settings.gmail_api_url),
    )


def build_email_backend(settings: Settings, *, connect: OAuthMailboxes | None) -> EmailBackend:
    """Return the backend DEALBOT_EMAIL_BACKEND names, configured from the settings."""
    if settings.dealbot_email_backend == "outbox":
        return OutboxBackend(directory=settings.dealbot_outbox_dir)
    if settings.google_service_account_file is not None:
        try:
            credentials: DelegatedMailboxes | OAuthMailboxes = DelegatedMailboxes(
                service_account_file=settings.google_service_account_file
            )
        except GoogleSetupError as error:
            raise SettingsError(str(error)) from None
    elif connect is not None:
        credentials = connect
    else:
        raise SettingsError("GOOGLE_OAUTH_CLIENT_FILE is not set (needed by the gmail backend)")
    return GmailBackend(credentials=credentials, api_url=settings.gmail_api_url)


def build_follow_ups(
    settings: Settings,
    *,
    database: Database,
    deals: DealService,
    clock: Clock,
    rep_profile: Callable[[str], RepProfile],
    backend: EmailBackend | None = None,
    templates: EmailTemplates | None = None,
) -> FollowUps:
    """Return the follow-up drafter; a bad rules file or a missing template stops start-up."""
    connect = build_gmail_connect(settings, database=database, clock=clock)
    templates = templates or EmailTemplates()
    try:
        rules = load_trigger_rules(templates.directory / "triggers.yml")
    except TriggerRulesError as error:
        raise SettingsError(f"email triggers: {error}") from None
    missing = sorted(name for name in rules.templates() if not templates.exists(name))
    if missing:
        raise SettingsError(
            f"email triggers: triggers.yml names templates that do not exist: {', '.join(missing)}"
        )
    return FollowUps(
        database=database,
        deals=deals,
        templates=templates,
        rules=rules,
        backend=backend or build_email_backend(settings, connect=connect),
        clock=clock,
        rep_profile=rep_profile,
        connect_link=connect.connect_link if connect is not None else None,
    )
