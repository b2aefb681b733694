"""Minimum necessary reads, every read recorded: the read-access matrix on the real stack.

Two courses: one whose care team is the clinic's prescriber and therapist (dr-api, th-api), still
in assessment; one of another care team (dr-other, th-other), in preparation. Each member of staff
reads each course through each endpoint, with and without a break-the-glass reason; every cell has
its expected status, and every allowed read leaves exactly one access record saying who, in which
role, what and why, and a refused one leaves none.
"""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from course.commands import Role
from tests.api.conftest import ASSESSMENT, STAFF, Clinic, eventually

pytestmark = pytest.mark.integration

OK, REFUSED = 200, 403
CLINICAL = {"gad7", "route", "dose_mg_per_kg", "close_reasons"}
ENDPOINTS = {"view": "", "events": "/events", "notifications": "/notifications", "audit": "/audit"}


def expected(role: Role, course: str, endpoint: str, reason: str | None) -> tuple[int, str | None]:
    """The rules of course/access.py, written out cell by cell: (status, refusal code)."""
    if role is Role.CLINIC_ADMIN:
        return REFUSED, "clinic_admin_reads_no_course"
    if role is Role.OPERATIONS:
        return (REFUSED, "operations_view_only") if endpoint == "events" else (OK, None)
    if endpoint == "audit":
        on_team = course == "team" and role in (Role.PRESCRIBER, Role.THERAPIST)
        return (OK, None) if on_team else (REFUSED, "audit_not_permitted")
    # The team's course is in assessment; the other team's course is in preparation.
    routine = course == "other" if role is Role.NURSE else course == "team"
    if routine or reason:
        return OK, None
    return REFUSED, "break_glass_required"


async def access_records(pool: asyncpg.Pool, course: str) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT staff_id, role, what, channel, break_glass FROM access_log WHERE course_id = $1 ORDER BY id", course
    )
    return [dict(row) for row in rows]


async def two_courses(clinic: Clinic) -> dict[str, str]:
    team = await clinic.open()
    other = await clinic.open(clinician_id="dr-other", therapist_id="th-other")
    assessed = await clinic.step(other, "assessment", Role.PRESCRIBER, ASSESSMENT)
    assert assessed.status_code == 200, assessed.text
    return {"team": team, "other": other}


async def test_the_read_access_matrix_and_an_access_record_for_each_allowed_read(
    clinic: Clinic, pg_pool: asyncpg.Pool
) -> None:
    courses = await two_courses(clinic)
    wrong: list[str] = []
    cells = 0
    for role in Role:
        for relation, course in courses.items():
            for endpoint, suffix in ENDPOINTS.items():
                for reason in (None, "emergency"):
                    status, code = expected(role, relation, endpoint, reason)
                    before = await access_records(pg_pool, course)
                    headers = {"X-Break-Glass-Reason": reason} if reason else {}
                    response = await clinic.call("GET", f"/courses/{course}{suffix}", role, headers=headers)
                    after = await access_records(pg_pool, course)
                    cell = f"{role.value} x {relation} x {endpoint} x {reason or 'no reason'}"
                    cells += 1
                    if response.status_code != status:
                        wrong.append(f"{cell}: {response.status_code}, expected {status}")
                        continue
                    if status == REFUSED:
                        if response.json().get("code") != code:
                            wrong.append(f"{cell}: code {response.json().get('code')}, expected {code}")
                        if after != before:
                            wrong.append(f"{cell}: a refused read left an access record")
                        continue
                    what = "operations" if (role is Role.OPERATIONS and endpoint == "view") else endpoint
                    # A reason is recorded only where it was needed to read at all.
                    glass = reason if expected(role, relation, endpoint, None)[0] == REFUSED else None
                    record = {
                        "staff_id": STAFF[role].id,
                        "role": role.value,
                        "what": what,
                        "channel": "api",
                        "break_glass": glass,
                    }
                    if after != [*before, record]:
                        wrong.append(f"{cell}: access records {after[len(before) :]}, expected [{record}]")
    assert cells == len(Role) * 2 * len(ENDPOINTS) * 2
    assert not wrong, "\n".join(wrong)


async def test_operations_read_the_operations_view_without_any_clinical_field(clinic: Clinic) -> None:
    course = await clinic.open()
    await clinic.step(course, "assessment", Role.PRESCRIBER, ASSESSMENT)
    clinical = (await clinic.call("GET", f"/courses/{course}", Role.PRESCRIBER)).json()
    assert clinical["gad7"]["baseline"] == 15
    ops = (await clinic.call("GET", f"/courses/{course}", Role.OPERATIONS)).json()
    assert ops["view"] == "operations" and ops["phase"] == "preparation" and ops["awaiting"]
    assert not CLINICAL & set(ops)
    # A step operations record answers with the operations view too.
    cleared = await clinic.step(
        course, "financial-clearance", Role.OPERATIONS, {"self_pay": True, "estimated_cost_acknowledged": True}
    )
    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["view"] == "operations" and not CLINICAL & set(cleared.json())


async def test_a_break_the_glass_reason_outside_the_fixed_set_is_refused_and_nothing_is_read(
    clinic: Clinic, pg_pool: asyncpg.Pool
) -> None:
    course = await clinic.open(clinician_id="dr-other", therapist_id="th-other")
    response = await clinic.call(
        "GET", f"/courses/{course}/events", Role.PRESCRIBER, headers={"X-Break-Glass-Reason": "curious"}
    )
    assert response.status_code == 422
    assert "curious" not in response.text
    assert await access_records(pg_pool, course) == []


async def test_lists_show_each_reader_only_the_courses_they_read_and_record_each_row(
    clinic: Clinic, pg_pool: asyncpg.Pool
) -> None:
    courses = await two_courses(clinic)

    async def listed(role: Role) -> set[str]:
        rows = (await clinic.call("GET", "/courses", role, params={"limit": 1000})).json()
        return {row["course_id"] for row in rows} & set(courses.values())

    async def settled() -> bool:  # visibility is eventually consistent
        return await listed(Role.OPERATIONS) == set(courses.values())

    await eventually(settled, "both courses listed for operations")
    assert await listed(Role.PRESCRIBER) == {courses["team"]}
    assert await listed(Role.THERAPIST) == {courses["team"]}
    assert await listed(Role.NURSE) == {courses["other"]}  # in preparation; the team's is in assessment
    reads = {(r["staff_id"], r["what"]) for r in await access_records(pg_pool, courses["team"])}
    assert {("dr-api", "list"), ("th-api", "list"), ("ops-api", "list")} <= reads
    assert ("rn-api", "list") not in reads


async def test_the_audit_shows_who_read_with_break_the_glass_marked_and_who_changed_the_course(
    clinic: Clinic, pg_pool: asyncpg.Pool
) -> None:
    courses = await two_courses(clinic)
    course = courses["other"]
    glass = await clinic.call(
        "GET", f"/courses/{course}", Role.THERAPIST, headers={"X-Break-Glass-Reason": "covering_colleague"}
    )
    assert glass.status_code == 200
    audit = await clinic.call("GET", f"/courses/{course}/audit", Role.OPERATIONS)
    assert audit.status_code == 200, audit.text
    trail = audit.json()
    reads = [(r["staff_id"], r["what"], r["break_glass"]) for r in trail["reads"]]
    assert ("th-api", "view", "covering_colleague") in reads
    assert reads[-1] == ("ops-api", "audit", None)  # reading the audit is itself recorded
    changes = {c["type"]: (c["staff_id"], c["role"], c["signed"]) for c in trail["changes"]}
    assert changes["CourseOpened"][:2] == ("ops-api", "operations")
    assert changes["AssessmentRecorded"] == ("dr-api", "prescriber", True)
    assert [c["version"] for c in trail["changes"]] == list(range(1, len(trail["changes"]) + 1))


async def test_the_access_log_cannot_be_changed_or_emptied_by_the_service(
    clinic: Clinic, pg_pool: asyncpg.Pool
) -> None:
    course = await clinic.open()
    assert (await clinic.call("GET", f"/courses/{course}")).status_code == 200
    before = await access_records(pg_pool, course)
    assert before
    for statement in (
        "UPDATE access_log SET staff_id = 'someone-else' WHERE course_id = $1",
        "DELETE FROM access_log WHERE course_id = $1",
    ):
        with pytest.raises(asyncpg.PostgresError, match="append-only"):
            await pg_pool.execute(statement, course)
    with pytest.raises(asyncpg.PostgresError, match="append-only"):
        await pg_pool.execute("TRUNCATE access_log")
    assert await access_records(pg_pool, course) == before
