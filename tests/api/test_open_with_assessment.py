"""`POST /courses` with the assessment: the course and its first step in one round trip to Temporal."""

from __future__ import annotations

import uuid

from course.commands import Role
from tests.api.conftest import ASSESSMENT, Clinic

BODY = {"patient_id": "pt-api-1", "clinician_id": "dr-api", "therapist_id": "th-api", "self_pay": True}


async def test_a_prescriber_opens_a_course_with_its_assessment_and_a_retry_is_the_same_step(clinic: Clinic) -> None:
    course = str(uuid.uuid4())
    body = BODY | {"course_id": course, "assessment": ASSESSMENT}
    answer = await clinic.call("POST", "/courses", Role.PRESCRIBER, json=body)
    assert answer.status_code == 201, answer.text
    first = answer.json()["first_step"]
    assert first["phase"] == "preparation" and "assessment" not in first["awaiting"]
    assert answer.headers["Location"] == f"/courses/{course}"
    # The same request again (no Idempotency-Key: the step's id comes from the course, the
    # assessment and the prescriber): the same course, the assessment recorded once.
    again = await clinic.call("POST", "/courses", Role.PRESCRIBER, json=body)
    assert again.status_code == 201, again.text
    audit = (await clinic.call("GET", f"/courses/{course}/audit", Role.PRESCRIBER)).json()
    kinds = [change["type"] for change in audit["changes"]]
    assert kinds.count("AssessmentRecorded") == 1 and kinds.count("CourseOpened") == 1


async def test_only_one_who_may_record_the_assessment_sends_it_with_the_opening(clinic: Clinic) -> None:
    course = str(uuid.uuid4())
    body = BODY | {"course_id": course, "assessment": ASSESSMENT}
    refused = await clinic.call("POST", "/courses", Role.OPERATIONS, json=body)
    assert refused.status_code == 403 and refused.json()["code"] == "role_not_permitted"
    # Refused before anything was opened.
    assert (await clinic.call("GET", f"/courses/{course}", Role.OPERATIONS)).status_code == 404


async def test_a_refused_assessment_says_the_course_is_open_and_awaits_it(clinic: Clinic) -> None:
    course = str(uuid.uuid4())
    # A relative contraindication without the prescriber's rationale is refused (course/phases/assessment.py).
    unwritten = ASSESSMENT | {"contraindications": ["pregnancy"]}
    body = BODY | {"course_id": course, "assessment": unwritten}
    answer = await clinic.call("POST", "/courses", Role.PRESCRIBER, json=body)
    assert answer.status_code == 409, answer.text
    problem = answer.json()
    assert problem["code"] == "rationale_required"
    assert problem["course_id"] == course and course in problem["detail"]
    view = (await clinic.call("GET", f"/courses/{course}", Role.PRESCRIBER)).json()
    assert "assessment" in view["awaiting"]
