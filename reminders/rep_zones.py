"""Each deal owner's timezone: their Slack profile's, else their team's, else the default.

A rep's morning, quiet hours and weekend are their own, and Slack knows where they are
(`users.info` -> `user.tz`, scope `users:read`). Asking Slack for every owner on every run
would be slow and rate-limited, so the answer is kept in `rep_zones` and asked again once a
day. While Slack cannot be reached, the zones already known (or the fallbacks) are used.
"""

from __future__ import annotations

import datetime as dt
import logging
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from storage.database import Database
from storage.rep_zones import RepZoneRepository

logger = logging.getLogger(__name__)

REFRESH_AFTER = dt.timedelta(days=1)
# The scheduler keeps triggers for the zones of owners of deals closed this recently, so a
# post-mortem prompt still has a morning to go out in.
ACTIVE_OWNER_WINDOW = dt.timedelta(days=30)


def refresh_rep_zones(
    database: Database, client: WebClient, *, now: dt.datetime, closed_since: dt.datetime
) -> int:
    """Ask Slack for the zones not fetched within a day; return how many were stored."""
    with database.session() as session:
        stale = RepZoneRepository(session).stale_owners(
            fetched_before=now - REFRESH_AFTER, closed_since=closed_since
        )
    stored = 0
    for user_id in stale:
        try:
            user = client.users_info(user=user_id)["user"]
            tz = _known_zone(user.get("tz"))
        except SlackApiError as error:
            status = error.response.status_code
            if status == 429 or status >= 500:
                logger.warning("users.info unavailable (HTTP %s); zones refreshed later", status)
                break
            # user_not_found, missing_scope...: asking again today would get the same answer.
            logger.warning("users.info for %s: %s", user_id, error.response.get("error"))
            tz = None
        except (SlackClientError, OSError) as error:
            logger.warning("Slack unreachable (%s); zones refreshed later", type(error).__name__)
            break
        with database.session() as session:
            RepZoneRepository(session).save(user_id, tz=tz, at=now)
        stored += 1
    return stored


def owner_timezones(
    database: Database,
    client: WebClient,
    *,
    now: dt.datetime,
    closed_since: dt.datetime,
    default_timezone: str,
) -> list[tuple[str, str]]:
    """Return (owner id, IANA zone) of the owners of open or recently closed deals."""
    refresh_rep_zones(database, client, now=now, closed_since=closed_since)
    return cached_owner_timezones(
        database, closed_since=closed_since, default_timezone=default_timezone
    )


def cached_owner_timezones(
    database: Database, *, closed_since: dt.datetime, default_timezone: str
) -> list[tuple[str, str]]:
    """Return (owner id, IANA zone) from what is stored, without asking Slack."""
    with database.session() as session:
        return RepZoneRepository(session).owner_timezones(
            default_timezone=default_timezone, closed_since=closed_since
        )


def _known_zone(name: object) -> str | None:
    """Return `name` if it is an IANA zone this machine knows, else None."""
    if not isinstance(name, str) or not name:
        return None
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None
    return name
