"""Reads in the console: a course outside routine access asks for a reason; operations see the
operations view; every page of a course is recorded in the access log with the console as channel."""

from __future__ import annotations

import asyncpg
import pytest

from course.commands import Role
from tests.api.conftest import ASSESSMENT, Clinic

pytestmark = pytest.mark.integration


async def _sign_in(clinic: Clinic, role: Role) -> None:
    response = await clinic.http.post("/console/login", data={"token": clinic.tokens[role]})
    assert response.status_code == 303, response.text


async def _records(pool: asyncpg.Pool, course: str) -> list[tuple[str, str, str, str | None]]:
    rows = await pool.fetch(
        "SELECT staff_id, what, channel, break_glass FROM access_log WHERE course_id = $1 ORDER BY id", course
    )
    return [(r["staff_id"], r["what"], r["channel"], r["break_glass"]) for r in rows]


async def test_a_nurse_reads_a_course_in_assessment_only_by_giving_a_reason(
    clinic: Clinic, pg_pool: asyncpg.Pool
) -> None:
    course = await clinic.open()  # in assessment: not a nurse's routine read
    await _sign_in(clinic, Role.NURSE)
    asked = await clinic.http.get(f"/console/courses/{course}")
    assert asked.status_code == 403
    assert "this course is in assessment" in asked.text and 'id="break-glass"' in asked.text
    assert 'value="emergency"' in asked.text
    assert await _records(pg_pool, course) == []

    read = await clinic.http.get(f"/console/courses/{course}", params={"break_glass": "emergency"})
    assert read.status_code == 200 and "CourseOpened" in read.text
    assert await _records(pg_pool, course) == [("rn-api", "timeline", "console", "emergency")]

    made_up = await clinic.http.get(f"/console/courses/{course}", params={"break_glass": "curious"})
    assert made_up.status_code == 403  # not a reason from the set: asked again, nothing read


async def test_operations_see_the_checklist_and_not_the_clinical_record(clinic: Clinic, pg_pool: asyncpg.Pool) -> None:
    course = await clinic.open()
    await clinic.step(course, "assessment", Role.PRESCRIBER, ASSESSMENT)
    await _sign_in(clinic, Role.OPERATIONS)
    page = await clinic.http.get(f"/console/courses/{course}")
    assert page.status_code == 200
    assert 'id="checklist"' in page.text and 'id="operations-view"' in page.text
    assert 'id="gad7"' not in page.text and 'id="timeline"' not in page.text
    assert "AssessmentRecorded" not in page.text
    assert await _records(pg_pool, course) == [("ops-api", "operations", "console", None)]
