"""`--in`, `--ago` and `--at`: a step's time relative to now, so commands written down do not rot."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cli.when import BadTime, duration, resolve, since

NOW = datetime(2027, 3, 14, 9, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", timedelta(minutes=30)),
        ("2h", timedelta(hours=2)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("3w", timedelta(weeks=3)),
        (" 1H30M ", timedelta(hours=1, minutes=30)),
    ],
)
def test_durations_are_read_in_minutes_hours_days_and_weeks(text: str, expected: timedelta) -> None:
    assert duration(text) == expected


@pytest.mark.parametrize("text", ["", "1", "h", "1.5h", "-1h", "1y", "2 days", "400d"])
def test_what_is_not_a_duration_says_how_to_write_one(text: str) -> None:
    with pytest.raises(BadTime) as refused:
        duration(text)
    assert "30m" in str(refused.value) or "--at" in str(refused.value)


def test_each_option_fills_the_steps_own_time_field() -> None:
    scheduled = resolve("schedule-session", NOW, in_="1h")
    assert scheduled is not None
    assert (scheduled.field, scheduled.at, scheduled.written) == ("scheduled_at", NOW + timedelta(hours=1), "--in 1h")
    signed = resolve("consent", NOW, ago="2d")
    assert signed is not None and (signed.field, signed.at) == ("signed_at", NOW - timedelta(days=2))
    held = resolve("integration-session", NOW, at="now")
    assert held is not None and (held.field, held.at) == ("held_at", NOW)
    zoned = resolve("maintenance-session", NOW, at="2027-03-14T10:00:00+01:00")
    assert zoned is not None and zoned.at == datetime(2027, 3, 14, 9, tzinfo=UTC)
    assert resolve("check-in", NOW) is None  # no option, nothing filled


def test_a_step_without_a_time_or_two_options_or_a_time_without_its_zone_is_refused() -> None:
    with pytest.raises(BadTime, match="check-in has no time to give"):
        resolve("check-in", NOW, in_="1h")
    with pytest.raises(BadTime, match="not --in and --at"):
        resolve("consent", NOW, in_="1h", at="now")
    with pytest.raises(BadTime, match="has no zone"):
        resolve("consent", NOW, at="2027-03-14T10:00:00")
    with pytest.raises(BadTime, match="is not a time"):
        resolve("consent", NOW, at="tomorrow")


@given(st.integers(0, 52), st.integers(0, 6), st.integers(0, 23), st.integers(0, 59))
def test_a_written_duration_reads_back_as_its_parts(weeks: int, days: int, hours: int, minutes: int) -> None:
    expected = timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes)
    text = f"{weeks}w{days}d{hours}h{minutes}m"
    if expected > timedelta(days=366):
        with pytest.raises(BadTime):
            duration(text)
    else:
        assert duration(text) == expected


def test_since_is_a_duration_ago_now_or_a_time_with_its_zone() -> None:
    """`course export --fhir --since`: the bulk export's lower bound."""
    assert since("7d", NOW) == NOW - timedelta(days=7)
    assert since("1d12h", NOW) == NOW - timedelta(days=1, hours=12)
    assert since("now", NOW) == NOW
    assert since("2026-11-30T01:00:00+01:00", NOW) == datetime(2026, 11, 30, tzinfo=UTC)
    for written in ("yesterday", "2026-11-30", "7 days", "-3d", "400d"):
        with pytest.raises(BadTime):
            since(written, NOW)
