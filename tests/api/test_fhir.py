"""GET /courses/{id}/fhir on the real stack: a course driven over HTTP comes back as a valid R4B Bundle
under the same read rules and access log as its other reads."""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import asyncpg
from fhir.resources.R4B import get_fhir_model_class
from fhir.resources.R4B.bundle import Bundle

from activities.event_store import PostgresEventStore
from course.commands import Role
from interop.steps import recorded_steps
from tests import story
from tests.api.conftest import Clinic
from tests.unit.test_fhir_export import references

FHIR_JSON = "application/fhir+json"
PROBLEM = "application/problem+json"


async def bundle_of(clinic: Clinic, course: str, role: Role) -> dict[str, Any]:
    response = await clinic.call("GET", f"/courses/{course}/fhir", role)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == FHIR_JSON
    document: dict[str, Any] = response.json()
    Bundle.model_validate(document)
    for entry in document["entry"]:
        get_fhir_model_class(entry["resource"]["resourceType"]).model_validate(entry["resource"])
    return document


async def dosed(clinic: Clinic) -> str:
    """Assessment, preparation, session 1 scheduled, checked in, dosed, and its integration session."""
    course = await clinic.prepared()
    for step, role, command in [
        ("check-in", Role.NURSE, story.check_in(1)),
        ("dosing-session", Role.NURSE, story.dose(1)),
        ("integration-session", Role.THERAPIST, story.integration(datetime.now(UTC))),
    ]:
        answer = await clinic.step(course, step, role, command.model_dump(mode="json", exclude={"step"}))
        assert answer.status_code == 200, answer.text
    return course


async def test_the_care_team_exports_a_course_as_a_bundle_whose_counts_match_its_stream(
    clinic: Clinic, pg_pool: asyncpg.Pool
) -> None:
    course = await dosed(clinic)
    document = await bundle_of(clinic, course, Role.PRESCRIBER)
    assert document["type"] == "collection"
    present = {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in document["entry"]}
    for entry in document["entry"]:
        assert (
            entry["fullUrl"] == f"http://testserver/fhir/{entry['resource']['resourceType']}/{entry['resource']['id']}"
        )
        assert set(references(entry["resource"])) <= present
    stream = await PostgresEventStore(pg_pool).read(f"course-{course}")
    kinds = Counter(e["resource"]["resourceType"] for e in document["entry"])
    assert kinds["MedicationAdministration"] == 1 and kinds["Procedure"] == 1 and kinds["RelatedPerson"] == 1
    assert kinds["Provenance"] == len(recorded_steps(stream))
    identities = {
        entity["what"]["identifier"]["value"]
        for e in document["entry"]
        if e["resource"]["resourceType"] == "Provenance"
        for entity in e["resource"]["entity"]
    }
    assert {e.metadata.update_id for e in stream if e.metadata.update_id} <= identities

    # More steps later: every id exported before is exported again.
    before = present
    answer = await clinic.call("POST", f"/courses/{course}/hold", Role.OPERATIONS, json={"reason": "travel"})
    assert answer.status_code == 200, answer.text
    after = await bundle_of(clinic, course, Role.THERAPIST)
    assert before <= {f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in after["entry"]}


async def test_operations_export_without_the_support_person_or_free_text_and_every_export_is_logged(
    clinic: Clinic,
) -> None:
    course = await dosed(clinic)
    operations = await bundle_of(clinic, course, Role.OPERATIONS)
    text = str(operations)
    assert "RelatedPerson" not in text and "'note'" not in text
    for private in ("Sam Support", "555-0100", "Fewer panic episodes at work"):
        assert private not in text
    assert "MedicationAdministration" in text  # the structured record is the EHR interface's to file
    clinical = str(await bundle_of(clinic, course, Role.PRESCRIBER))
    assert "Sam Support" in clinical and "Fewer panic episodes at work" in clinical

    audit = await clinic.call("GET", f"/courses/{course}/audit", Role.OPERATIONS)
    exports = [(r["staff_id"], r["what"]) for r in audit.json()["reads"] if r["what"] == "export"]
    assert exports == [("ops-api", "export"), ("dr-api", "export")]


async def test_an_unknown_course_is_404_and_a_reader_the_rules_refuse_is_403(clinic: Clinic) -> None:
    missing = await clinic.call("GET", f"/courses/{uuid.uuid4()}/fhir", Role.PRESCRIBER)
    assert missing.status_code == 404 and missing.headers["content-type"] == PROBLEM
    course = await clinic.open()
    admin = await clinic.call("GET", f"/courses/{course}/fhir", Role.CLINIC_ADMIN)
    assert admin.status_code == 403 and admin.json()["code"] == "clinic_admin_reads_no_course"
    # Not on the care team and no reason given: refused, and the glass can be broken.
    outsider = await clinic.call("GET", f"/courses/{course}/fhir", Role.THERAPIST)
    assert outsider.status_code == 200  # th-api is the course's therapist
    nurse = await clinic.call("GET", f"/courses/{course}/fhir", Role.NURSE)
    assert nurse.status_code == 403 and nurse.json()["code"] == "break_glass_required"
    glass = await clinic.call(
        "GET", f"/courses/{course}/fhir", Role.NURSE, headers={"X-Break-Glass-Reason": "emergency"}
    )
    assert glass.status_code == 200, glass.text
