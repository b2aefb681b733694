"""Clinic systems talk to courses over HTTP: every endpoint and every error, on the real stack."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from course.commands import Role
from tests.api.conftest import ASSESSMENT, STAFF, Clinic, eventually

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
MISSING = "3f1e9c2a-0000-4000-8000-000000000000"
NOW = datetime.now(UTC).isoformat()


async def test_the_care_team_takes_a_course_through_assessment_and_preparation_over_http(clinic: Clinic) -> None:
    course = await clinic.open()
    view = await clinic.call("GET", f"/courses/{course}")
    assert view.status_code == 200 and view.json()["phase"] == "assessment"

    assessed = await clinic.step(course, "assessment", Role.PRESCRIBER, ASSESSMENT)
    assert assessed.status_code == 200, assessed.text
    assert assessed.json()["phase"] == "preparation"
    for step, role, body in [
        ("financial-clearance", Role.OPERATIONS, {"self_pay": True, "estimated_cost_acknowledged": True}),
        ("intentions", Role.THERAPIST, {"goals": "Fewer panic episodes at work"}),
        ("consent", Role.NURSE, {"form_version": "2026-01", "signed_at": NOW}),
        ("support-person", Role.NURSE, {"name": "Sam", "relationship": "spouse", "phone": "555-0100"}),
        (
            "dosing-plan",
            Role.PRESCRIBER,
            {"route": "iv_infusion", "planned_sessions": 3, "starting_dose_mg_per_kg": 0.5, "max_dose_mg_per_kg": 1},
        ),
        ("orientation", Role.NURSE, {"topics": ["what_to_expect", "side_effects", "ride_home"]}),
    ]:
        recorded = await clinic.step(course, step, role, body)
        assert recorded.status_code == 200, (step, recorded.text)
    assert recorded.json()["phase"] == "dosing" and recorded.json()["awaiting"] == ["check-in"]

    events = (await clinic.call("GET", f"/courses/{course}/events")).json()
    assert [e["version"] for e in events] == list(range(1, len(events) + 1))
    by_type = {e["type"]: e["metadata"]["actor"] for e in events}
    # The actor is whoever the token belongs to, never a field the caller fills in.
    assert by_type["AssessmentRecorded"] == STAFF[Role.PRESCRIBER].model_dump(mode="json")
    assert by_type["ConsentRecorded"] == STAFF[Role.NURSE].model_dump(mode="json")
    assert by_type["CourseOpened"] == STAFF[Role.OPERATIONS].model_dump(mode="json")

    notifications = await clinic.call("GET", f"/courses/{course}/notifications")
    assert notifications.status_code == 200 and isinstance(notifications.json(), list)
    recent = await clinic.call("GET", "/notifications", Role.OPERATIONS, params={"attention": "true", "limit": 5})
    assert recent.status_code == 200 and isinstance(recent.json(), list)

    async def listed() -> bool:
        found = await clinic.call("GET", "/courses", params={"clinician": "dr-api", "phase": "dosing"})
        return course in {row["course_id"] for row in found.json()}

    await eventually(listed, "the course listed in dosing for dr-api")
    me = await clinic.call("GET", "/me", Role.NURSE)
    assert me.json() == {"id": "rn-api", "role": "nurse"}


async def test_without_a_valid_token_nothing_is_read_or_recorded(clinic: Clinic) -> None:
    course = await clinic.open()
    for headers in ({}, {"Authorization": "Bearer not-a-staff-token"}, {"Authorization": "Basic abc"}):
        for method, path in [("GET", f"/courses/{course}"), ("GET", "/courses"), ("GET", "/me")]:
            response = await clinic.http.request(method, path, headers=headers)
            assert response.status_code == 401, (path, headers)
            assert response.headers["content-type"] == PROBLEM
            assert response.headers["www-authenticate"].startswith("Bearer")
            assert response.json()["status"] == 401
    refused = await clinic.http.post(f"/courses/{course}/steps/intentions", json={"goals": "x"})
    assert refused.status_code == 401
    assert len((await clinic.call("GET", f"/courses/{course}/events")).json()) == 2  # opened, eligibility


async def test_roles_are_checked_before_the_course_is_asked(clinic: Clinic) -> None:
    course = await clinic.open()
    for step, role, body in [
        ("assessment", Role.NURSE, ASSESSMENT),  # only prescribers confirm candidacy
        ("assessment", Role.OPERATIONS, ASSESSMENT),
        ("dosing-plan", Role.NURSE, {"route": "iv_infusion", "starting_dose_mg_per_kg": 0.5, "max_dose_mg_per_kg": 1}),
        ("clinical-review", Role.THERAPIST, {"decision": "continue", "rationale": "ok"}),
        ("intentions", Role.OPERATIONS, {"goals": "x"}),  # operations never record clinical findings
    ]:
        response = await clinic.step(course, step, role, body)
        assert response.status_code == 403, (step, role, response.text)
        problem = response.json()
        assert response.headers["content-type"] == PROBLEM
        assert problem["code"] == "role_not_permitted" and problem["status"] == 403
        assert role.value in problem["detail"]
    assert len((await clinic.call("GET", f"/courses/{course}/events")).json()) == 2


async def test_unknown_courses_and_steps_are_404(clinic: Clinic) -> None:
    for method, path, body in [
        ("GET", f"/courses/{MISSING}", None),
        ("GET", "/courses/not-a-course-id", None),
        ("GET", f"/courses/{MISSING}/events", None),
        ("GET", f"/courses/{MISSING}/notifications", None),
        ("POST", f"/courses/{MISSING}/steps/intentions", {"goals": "x"}),
        ("POST", f"/courses/{MISSING}/hold", {"reason": "patient_request"}),
        ("POST", f"/courses/{MISSING}/steps/sedation", {}),
    ]:
        response = await clinic.call(method, path, Role.THERAPIST, json=body)
        assert response.status_code == 404, (path, response.text)
        assert response.headers["content-type"] == PROBLEM and response.json()["status"] == 404


async def test_a_step_the_rules_refuse_is_409_with_the_rules_code_and_nothing_is_written(clinic: Clinic) -> None:
    course = await clinic.open()
    early = await clinic.step(course, "intentions", Role.THERAPIST, {"goals": "x"})
    assert early.status_code == 409
    assert early.json()["code"] == "assessment_first"
    await clinic.step(course, "assessment", Role.PRESCRIBER, ASSESSMENT)
    before = (await clinic.call("GET", f"/courses/{course}/events")).json()

    outdated = await clinic.step(course, "consent", Role.NURSE, {"form_version": "2019-01", "signed_at": NOW})
    assert outdated.status_code == 409 and outdated.headers["content-type"] == PROBLEM
    problem = outdated.json()
    assert problem["code"] == "consent_outdated" and problem["type"].endswith(":consent_outdated")
    assert "2026-01" in problem["detail"]  # the rule's message names the current form
    dose = {
        "session_number": 1,
        "route": "iv_infusion",
        "dose_mg_per_kg": 0.5,
        "post_vitals": {"systolic": 130, "diastolic": 84, "heart_rate": 76},
        "patient_response": "better",
    }
    early_dose = await clinic.step(course, "dosing-session", Role.NURSE, dose)
    assert early_dose.status_code == 409 and early_dose.json()["code"] == "preparation_incomplete"
    assert (await clinic.call("GET", f"/courses/{course}/events")).json() == before


async def test_invalid_input_is_422_and_never_echoes_what_was_sent(clinic: Clinic) -> None:
    course = await clinic.open()
    marker = "MARKER-PATIENT-TEXT"
    for step, body in [
        ("assessment", {**ASSESSMENT, "gad7": 40, "condition": marker}),
        ("intentions", {"goals": "x", "actor": {"id": "dr-forged", "role": "prescriber"}}),  # no actor in bodies
        # Messages tolerate unknown fields between worker versions; a person's request does not.
        (
            "check-in",
            {
                "session_number": 1,
                "ride_home_arranged": True,
                "vitals": {"systolic": 120, "diastolic": 80, "heart_rate": 70, "spo2": 98},
            },
        ),
        ("support-person", {"name": marker}),
        # PostgreSQL cannot store U+0000: the step would never be appended, so it is refused here.
        ("support-person", {"name": f"Sam\u0000{marker}", "relationship": "spouse", "phone": "555-0100"}),
    ]:
        response = await clinic.step(course, step, Role.PRESCRIBER, body)
        assert response.status_code == 422, (step, response.text)
        assert response.headers["content-type"] == PROBLEM
        assert marker not in response.text
        assert response.json()["errors"], response.text
        if step == "assessment":  # the stable path and code, and the same problem in words
            gad7 = next(e for e in response.json()["errors"] if e["field"] == "gad7")
            assert gad7["type"] == "less_than_equal"
            assert gad7["words"] == "This GAD-7 score is not plausible: it must be at most 21."
    not_json = await clinic.call(
        "POST",
        f"/courses/{course}/steps/intentions",
        content=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert not_json.status_code == 422
    for params in ({"awaiting": "sedation"}, {"clinician": "dr' OR 1=1"}, {"phase": "nowhere"}, {"limit": 0}):
        bad = await clinic.call("GET", "/courses", params=params)
        assert bad.status_code == 422, params
        assert bad.headers["content-type"] == PROBLEM
    bad_key = await clinic.step(course, "hold", Role.NURSE, {"reason": "x"}, headers={"Idempotency-Key": "a b"})
    assert bad_key.status_code == 422
    mixed = await clinic.call("POST", "/courses", Role.OPERATIONS, json={"patient_id": "p", "clinician_id": "d",
                                                                         "payer_id": "acme"})  # fmt: skip
    assert mixed.status_code == 422
    opening = {"patient_id": "p", "clinician_id": "d", "self_pay": True}
    typo = await clinic.call("POST", "/courses", Role.OPERATIONS, json=opening | {"policy_nmae": "default"})
    assert typo.status_code == 422 and typo.json()["errors"][0]["field"] == "policy_nmae"
    for bad in ({"policy_version": 0}, {"policy_name": "Default Policy"}):
        refused = await clinic.call("POST", "/courses", Role.OPERATIONS, json=opening | bad)
        assert refused.status_code == 422 and refused.headers["content-type"] == PROBLEM, bad
        assert refused.json()["errors"][0]["field"] == next(iter(bad)), refused.text


async def test_a_retried_request_with_the_same_idempotency_key_is_applied_once(clinic: Clinic) -> None:
    course = await clinic.open()
    key = {"Idempotency-Key": "front-desk-7-hold-1"}
    hold = {"reason": "patient_request"}
    first = await clinic.call("POST", f"/courses/{course}/hold", Role.OPERATIONS, json=hold, headers=key)
    retried = await clinic.call("POST", f"/courses/{course}/hold", Role.OPERATIONS, json=hold, headers=key)
    assert first.status_code == retried.status_code == 200, retried.text
    assert first.json()["version"] == retried.json()["version"]
    events = (await clinic.call("GET", f"/courses/{course}/events")).json()
    assert [e["type"] for e in events].count("HoldPlaced") == 1
    # A new key is a new request, and the rule then refuses a second hold.
    again = await clinic.call(
        "POST", f"/courses/{course}/hold", Role.OPERATIONS, json=hold, headers={"Idempotency-Key": "other"}
    )
    assert again.status_code == 409 and again.json()["code"] == "already_on_hold"


async def test_operations_hold_release_reassign_and_withdraw_a_course(clinic: Clinic) -> None:
    course = await clinic.open()
    held = await clinic.call("POST", f"/courses/{course}/hold", Role.OPERATIONS, json={"reason": "patient_request"})
    assert held.status_code == 200 and held.json()["flags"]["on_hold"] is True
    twice = await clinic.call("POST", f"/courses/{course}/hold", Role.OPERATIONS, json={"reason": "patient_request"})
    assert twice.status_code == 409 and twice.json()["code"] == "already_on_hold"
    released = await clinic.call("POST", f"/courses/{course}/release", Role.OPERATIONS)  # no body needed
    assert released.status_code == 200 and released.json()["flags"]["on_hold"] is False
    reassigned = await clinic.call(
        "POST", f"/courses/{course}/steps/reassign", Role.OPERATIONS, json={"clinician_id": "dr-other"}
    )
    assert reassigned.status_code == 200 and reassigned.json()["clinician_id"] == "dr-other"
    withdrawn = await clinic.call("POST", f"/courses/{course}/withdraw", Role.OPERATIONS, json={"reason": "moved"})
    assert withdrawn.status_code == 200 and withdrawn.json()["outcome"] == "withdrawn"
    closed = await clinic.step(course, "assessment", Role.PRESCRIBER, ASSESSMENT)
    assert closed.status_code == 409 and closed.json()["code"] == "course_closed"


async def test_opening_is_idempotent_on_the_course_id_and_the_document_describes_every_step(clinic: Clinic) -> None:
    course = await clinic.open(course_id=MISSING.replace("3f1e", "4a2b"))
    again = await clinic.open(course_id=course)
    assert again == course
    document = (await clinic.http.get("/openapi.json")).json()
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    consent = document["paths"]["/courses/{course_id}/steps/consent"]["post"]
    assert consent["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/RecordConsent")
    assert {"403", "404", "409", "422"} <= set(consent["responses"])
    # The document speaks as the forms do: a title in words and the unit beside each field.
    dose = document["components"]["schemas"]["RecordDosingSession"]["properties"]
    assert dose["post_vitals"]["title"] == "Post-dose vitals" and dose["dose_mg_per_kg"]["title"] == "Dose"
    assert "mg/kg" in dose["dose_mg_per_kg"]["description"]
    assert (await clinic.http.get("/docs")).status_code == 200
