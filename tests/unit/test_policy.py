"""A course policy that cannot be right is refused when the course is opened, not inside the workflow."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from course.policy import CoursePolicy


def test_durations_read_as_iso_8601_or_seconds() -> None:
    policy = CoursePolicy.model_validate({"session_reminder_lead": "PT12H", "assessment_deadline": 86400 * 40})
    assert policy.session_reminder_lead == timedelta(hours=12)
    assert policy.assessment_deadline == timedelta(days=40)


@pytest.mark.parametrize("deadline", [10**30, "P99999999D", 1e300, "P3651D"])
def test_a_deadline_beyond_ten_years_is_refused_not_overflowed(deadline: object) -> None:
    with pytest.raises(ValidationError, match="ten years"):
        CoursePolicy.model_validate({"assessment_deadline": deadline})
