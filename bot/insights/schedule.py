"""When the weekly digest goes out: REPORT_SCHEDULE (`mon 09:00`, or `daily 09:00`) in REPORT_TIMEZONE.

Standard library only: settings validate the values with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DAILY = "daily"
_FULL = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_WEEKDAYS = {name: i for names in (DAYS, _FULL) for i, name in enumerate(names)}
_FORM = re.compile(r"^([a-z]+)\s+(\d{1,2}):(\d{2})$")


class ScheduleError(ValueError):
    """A schedule or time zone that cannot be read; the message says what would be right."""


@dataclass(frozen=True, slots=True)
class Schedule:
    weekday: int | None
    """0 = Monday; None: every day."""
    at: time
    zone: ZoneInfo

    @property
    def period(self) -> timedelta:
        """How often it fires: what the digest reports on."""
        return timedelta(days=1 if self.weekday is None else 7)

    def next_after(self, moment: datetime) -> datetime:
        """The first time strictly after `moment` (aware), in UTC. Wall-clock time in the zone: a
        time skipped by a daylight-saving change fires at the same UTC offset after the change."""
        local = moment.astimezone(self.zone)
        day = local.date()
        for offset in range(8):
            candidate_day = day + timedelta(days=offset)
            if self.weekday is not None and candidate_day.weekday() != self.weekday:
                continue
            candidate = datetime.combine(candidate_day, self.at, tzinfo=self.zone)
            # Round-trip through UTC: a nonexistent local time (spring forward) becomes a real one.
            candidate = candidate.astimezone(ZoneInfo("UTC"))
            if candidate > moment:
                return candidate
        raise AssertionError("a weekly schedule fires within eight days")

    def previous(self, due: datetime) -> datetime:
        """The time before `due` (one of its times), in UTC: a period in wall-clock time, so the
        week a daylight-saving change falls in is an hour shorter or longer."""
        day = due.astimezone(self.zone).date() - self.period
        return datetime.combine(day, self.at, tzinfo=self.zone).astimezone(ZoneInfo("UTC"))


def parse_zone(text: str) -> ZoneInfo:
    try:
        return ZoneInfo(text.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(f"'{text}' is not an IANA time zone name (e.g. Europe/Berlin or UTC)") from None


def parse_schedule(text: str, zone: ZoneInfo) -> Schedule | None:
    """None for an empty value (no digest); ScheduleError for one that cannot be read."""
    if not text.strip():
        return None
    found = _FORM.match(text.strip().casefold())
    problem = f"'{text}' is not a day and a time (e.g. mon 09:00, or daily 09:00)"
    if found is None:
        raise ScheduleError(problem)
    word, hour, minute = found.group(1), int(found.group(2)), int(found.group(3))
    if word != DAILY and word not in _WEEKDAYS:
        raise ScheduleError(problem)
    if hour > 23 or minute > 59:
        raise ScheduleError(f"'{text}': the time must be between 00:00 and 23:59")
    weekday = None if word == DAILY else _WEEKDAYS[word]
    return Schedule(weekday, time(hour, minute), zone)
