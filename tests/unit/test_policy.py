"""A course policy that cannot be right is refused when the course is opened, not inside the workflow."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from course.policy import MAX_DURATION, CoursePolicy, format_duration, parse_duration


def test_durations_read_as_iso_8601_or_seconds() -> None:
    policy = CoursePolicy.model_validate({"session_reminder_lead": "PT12H", "assessment_deadline": 86400 * 40})
    assert policy.session_reminder_lead == timedelta(hours=12)
    assert policy.assessment_deadline == timedelta(days=40)


@pytest.mark.parametrize("deadline", [10**30, "P99999999D", 1e300, "P3651D"])
def test_a_deadline_beyond_ten_years_is_refused_not_overflowed(deadline: object) -> None:
    with pytest.raises(ValidationError, match="ten years"):
        CoursePolicy.model_validate({"assessment_deadline": deadline})


@given(st.timedeltas(min_value=timedelta(0), max_value=MAX_DURATION))
@settings(max_examples=300)
def test_every_duration_written_reads_back_exactly(duration: timedelta) -> None:
    assert parse_duration(format_duration(duration)) == duration


def test_a_policy_of_fourteen_and_a_half_days_round_trips() -> None:
    # Written as PT1.08e+06S before: the course was opened, then never started.
    policy = CoursePolicy(assessment_deadline="P14DT12H", session_reminder_lead="PT0.000001S")  # type: ignore[arg-type]
    stored = policy.model_dump_json()
    assert '"P14DT12H"' in stored and '"PT0.000001S"' in stored
    assert CoursePolicy.model_validate_json(stored) == policy
    assert policy.assessment_deadline == timedelta(days=14, hours=12)


def test_a_negative_duration_is_refused() -> None:
    with pytest.raises(ValidationError, match="negative"):
        CoursePolicy(session_reminder_lead=timedelta(hours=-1))
