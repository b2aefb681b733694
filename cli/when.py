"""Times given relative to now on the command line: `--in 1h`, `--ago 30m`, `--at now`.

A walk-through, a runbook or a shell history that writes "2026-12-01T15:00:00Z" is wrong the day
after; one that writes `--in 1h` is right on any day. The option fills the step's one time field
(the session's `scheduled_at`, the consent's `signed_at`, an integration session's `held_at`),
resolved against this machine's clock; the course still applies its own rules to the result (a
session cannot be scheduled in the past, a session cannot be held in the future).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

# The step's time field, for the steps that have exactly one.
TIME_FIELDS: dict[str, str] = {
    "consent": "signed_at",
    "schedule-session": "scheduled_at",
    "integration-session": "held_at",
    "maintenance-session": "held_at",
    "dose-administered": "given_at",
    "monitoring-reading": "taken_at",
    "discharge": "discharged_at",
}

_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1), "w": timedelta(weeks=1)}
_DURATION = re.compile(r"^(?:\d{1,4}[wdhm])+$")
_PART = re.compile(r"(\d{1,4})([wdhm])")
# A year of offsets is far more than any step needs; more is a typo (365d for 36.5d, say).
LONGEST = timedelta(days=366)


class BadTime(ValueError):
    """A relative time the CLI cannot read: the message says what it accepts."""


@dataclass(frozen=True)
class RelativeTime:
    """One of --in, --ago, --at as written: `written` is what a retry of the same command repeats."""

    field: str
    written: str
    at: datetime


def duration(text: str) -> timedelta:
    """`90m`, `2h`, `1d12h`, `3w`: minutes, hours, days and weeks, largest first or in any order."""
    cleaned = text.strip().lower()
    if not _DURATION.match(cleaned):
        raise BadTime(f"{text!r} is not a duration; write it like 30m, 2h, 1d or 1d12h (m, h, d, w)")
    total = sum((int(n) * _UNITS[unit] for n, unit in _PART.findall(cleaned)), timedelta())
    if total > LONGEST:
        raise BadTime(f"{text!r} is more than a year; give the time itself with --at")
    return total


def instant(text: str, now: datetime) -> datetime:
    """`now`, or an ISO 8601 time with its zone (`2026-12-03T15:00:00Z`, `...+01:00`)."""
    if text.strip().lower() == "now":
        return now
    try:
        parsed = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BadTime(f"{text!r} is not a time; write now, or a time with its zone like 2026-12-03T15:00:00Z") from None
    if parsed.tzinfo is None:
        raise BadTime(f"{text!r} has no zone; add Z for UTC or the clinic's offset, like +01:00")
    return parsed.astimezone(UTC)


def resolve(
    step: str, now: datetime, *, in_: str | None = None, ago: str | None = None, at: str | None = None
) -> RelativeTime | None:
    """The step's time from at most one of the options, or None when none was given."""
    given = [(flag, value) for flag, value in (("--in", in_), ("--ago", ago), ("--at", at)) if value is not None]
    if not given:
        return None
    if len(given) > 1:
        raise BadTime(f"give one of --in, --ago and --at, not {' and '.join(flag for flag, _ in given)}")
    field = TIME_FIELDS.get(step)
    if field is None:
        steps = ", ".join(TIME_FIELDS)
        raise BadTime(f"{step} has no time to give; --in, --ago and --at are for {steps}")
    flag, value = given[0]
    match flag:
        case "--in":
            when = now + duration(value)
        case "--ago":
            when = now - duration(value)
        case _:
            when = instant(value, now)
    return RelativeTime(field=field, written=f"{flag} {value.strip()}", at=when)


def since(text: str, now: datetime) -> datetime:
    """`--since`: a duration ago (`7d`, `12h`), `now`, or an ISO 8601 time with its zone."""
    cleaned = text.strip().lower()
    if _DURATION.match(cleaned):
        return now - duration(cleaned)
    return instant(text, now)
