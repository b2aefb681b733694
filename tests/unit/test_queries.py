"""Visibility queries: exact strings staff paste into the UI, safe from injection."""

from __future__ import annotations

from pathlib import Path

import pytest

from application.queries import SAVED_VIEWS, BadFilter, course_query


def test_filters_combine_into_one_query() -> None:
    query = course_query(phase="dosing", clinician="dr-ames", overdue=True)
    assert query == (
        "WorkflowType = 'TreatmentCourse' AND ExecutionStatus = 'Running' AND CoursePhase = 'dosing' "
        "AND ClinicianId = 'dr-ames' AND Overdue = true"
    )


@pytest.mark.parametrize("bad", [{"phase": "sedation"}, {"awaiting": "nap"}, {"clinician": "x' OR WorkflowId != '"}])
def test_unknown_or_hostile_values_are_refused(bad: dict[str, str]) -> None:
    with pytest.raises(BadFilter):
        course_query(**bad)  # type: ignore[arg-type]


def test_the_readme_lists_every_saved_view_verbatim() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    for name, query in SAVED_VIEWS.items():
        assert f"| {name} | `{query}` |" in readme
