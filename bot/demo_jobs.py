"""The demo's `:jobs` and `:run <job>`: run a scheduled job on the demo pipeline and show it."""

from __future__ import annotations

import datetime as dt
from typing import Final, TextIO
from zoneinfo import ZoneInfo

from slack_sdk import WebClient

from bot.jobs_cli import context_factory
from bot.settings import Settings
from domain.clock import Clock
from reminders.delivery import Delivery, SendRate
from reminders.jobs import REP_TIMEZONE, TEAM_TIMEZONE, Schedule, load_jobs, run_job
from storage.database import Database

_DAYS: Final = {
    "mon": "Monday",
    "tue": "Tuesday",
    "wed": "Wednesday",
    "thu": "Thursday",
    "fri": "Friday",
    "sat": "Saturday",
    "sun": "Sunday",
}
_DAY_RANGES: Final = {"mon-fri": "weekdays", "sat,sun": "weekends", "*": "every day"}
_ZONES: Final = {TEAM_TIMEZONE: "each team's timezone", REP_TIMEZONE: "each rep's timezone"}

ONE_AT_A_TIME = SendRate(senders=1, in_plan_order=True)


def schedule_in_words(schedule: Schedule) -> str:
    """Return when a job runs as a person says it: "weekdays at 9:00 in each rep's timezone".

    Falls back to the cron fields for a schedule these words do not cover.
    """
    cron = dict(schedule.cron)
    zone = _ZONES.get(schedule.timezone, schedule.timezone)
    minute, hour, days = (
        cron.pop("minute", "0"),
        cron.pop("hour", None),
        cron.pop("day_of_week", "*"),
    )
    # Days 1-7 of the month on one weekday: that weekday's first in the month.
    first = cron.get("day") == "1-7" and days in _DAYS
    if first:
        del cron["day"]
    if cron:  # a day of month, a month, a week number: said as cron
        return schedule.describe()
    if hour is None:
        if minute == "*":
            return "every minute"
        if minute.startswith("*/") and minute[2:].isdigit():
            return f"every {minute[2:]} minutes"
        return schedule.describe()
    if not (hour.isdigit() and minute.isdigit()):
        return schedule.describe()
    if first:
        when = f"the first {_DAYS[days]} of each month"
    elif days in _DAY_RANGES:
        when = _DAY_RANGES[days]
    elif all(day in _DAYS for day in days.split(",")):
        when = " and ".join(_DAYS[day] + "s" for day in days.split(","))
    else:
        return schedule.describe()
    return f"{when} at {int(hour)}:{int(minute):02d} in {zone}"


def demo_morning(now: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """Return 10:00 on the latest weekday in `zone`, so the demo never lands in quiet hours."""
    day = now.astimezone(zone).date()
    while day.weekday() >= 5:
        day -= dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(10), zone)


class DemoJobs:
    def __init__(
        self,
        *,
        settings: Settings,
        database: Database,
        client: WebClient,
        clock: Clock,
        zone: str,
        out: TextIO,
    ) -> None:
        self.clock = clock
        self.jobs = load_jobs()
        self.build_context = context_factory(settings, database=database, client=client)
        self.zone = ZoneInfo(zone)
        self.out = out

    def handle(self, line: str) -> bool:
        """Run `:jobs` or `:run …`; return False for any other line."""
        if line == ":jobs":
            for job in self.jobs.values():
                self._say(
                    f"{job.name:<20} {schedule_in_words(job.schedule)}\n    {job.description}"
                )
            self._say("Try :run chase-next-steps")
            return True
        if not line.startswith(":run"):
            return False
        name, _, when = line.removeprefix(":run").strip().partition(" ")
        if name not in self.jobs:
            self._say(f"Unknown job {name!r}: {', '.join(self.jobs)}")
            return True
        try:
            now = dt.datetime.fromisoformat(when) if when else None
        except ValueError:
            self._say(f"{when!r} is not an ISO datetime, e.g. 2026-11-23T09:30-05:00")
            return True
        if now is None:
            now = demo_morning(self.clock.now(), self.zone)
        elif now.tzinfo is None:
            now = now.replace(tzinfo=self.zone)
        self._say(f"Running {name} as of {now.isoformat(timespec='minutes')}…")
        context = self.build_context(now, None)
        # One sender: the console draws each DM as it goes, so they come in the order planned
        # and a button keeps its number from one run to the next.
        in_order = Delivery(database=context.database, client=context.client, rate=ONE_AT_A_TIME)
        summary = run_job(self.jobs[name], context, delivery=in_order)
        self._say(
            summary.line()
            + (
                ""
                if summary.sent
                else " (nothing new: sent already this period, quiet hours or a weekend)"
            )
        )
        return True

    def _say(self, text: str) -> None:
        print("\n".join("  " + line for line in text.splitlines()), file=self.out, flush=True)
