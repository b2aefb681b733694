"""Policies live on the server: a clinic admin publishes named versions, a course opens on one and
records which, and no caller can hand a course a threshold, a consent form or a day of its own.

Each test publishes under a name of its own: the database is shared by the whole test run, and the
`default` policy other tests open on must stay as the migration published it.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest

from course.commands import Role
from course.policy import CoursePolicy
from course.publication import canonical, sha256_of
from tests.api.conftest import ASSESSMENT, STAFF, Clinic

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
NOW = datetime.now(UTC).isoformat()


def _name(what: str) -> str:
    return f"{what}-{uuid.uuid4().hex[:8]}"


async def _publish(clinic: Clinic, name: str, policy: dict[str, Any], role: Role = Role.CLINIC_ADMIN) -> Any:
    return await clinic.call("POST", "/policies", role, json={"name": name, "policy": policy})


async def test_a_course_that_brings_its_own_policy_is_422_and_never_opened(clinic: Clinic) -> None:
    course_id = str(uuid.uuid4())
    dangerous = {
        "bp_threshold": {"systolic": 300, "diastolic": 200},
        "consent_form_version": "2019-01",
        "day_length": 1,
    }
    body = {"course_id": course_id, "patient_id": "pt-pol-1", "clinician_id": "dr-api", "self_pay": True}
    for policy in (dangerous, {}, None):
        refused = await clinic.call("POST", "/courses", Role.OPERATIONS, json=body | {"policy": policy})
        assert refused.status_code == 422, refused.text
        assert refused.headers["content-type"] == PROBLEM
        problem = refused.json()
        assert problem["code"] == "policy_not_accepted"
        assert "course policy publish" in problem["detail"] and "policy_name" in problem["detail"]
        assert problem["errors"] == [
            {"field": "policy", "problem": "policies are published on the server, not sent with a course"}
        ]
    assert (await clinic.call("GET", f"/courses/{course_id}")).status_code == 404
    # The OpenAPI document no longer offers the field, and says what to send instead.
    schema = clinic.app.openapi()["components"]["schemas"]["OpenCourseRequest"]
    assert "policy" not in schema["properties"] and {"policy_name", "policy_version"} <= set(schema["properties"])


async def test_publishing_a_new_version_changes_new_courses_only(clinic: Clinic) -> None:
    name = _name("downtown")
    first = await _publish(clinic, name, {"consent_form_version": "2026-01"})
    assert first.status_code == 201, first.text
    assert first.headers["location"] == f"/policies/{name}/1"
    before = await clinic.open(policy_name=name)

    second = await _publish(clinic, name, {"consent_form_version": "2026-07", "bp_threshold": {"systolic": 150}})
    assert second.status_code == 201, second.text
    assert second.json()["version"] == 2
    after = await clinic.open(policy_name=name)
    pinned = await clinic.open(policy_name=name, policy_version=1)

    # Each course records the version it opened on, with the hash of that version's canonical body.
    v1, v2 = first.json(), second.json()
    for course, published in ((before, v1), (after, v2), (pinned, v1)):
        view = (await clinic.call("GET", f"/courses/{course}")).json()
        assert view["policy"] == {"name": name, "version": published["version"], "sha256": published["sha256"]}
        opened = (await clinic.call("GET", f"/courses/{course}/events")).json()[0]
        assert opened["type"] == "CourseOpened"
        assert opened["data"]["policy_ref"] == view["policy"]
        assert sha256_of(canonical(CoursePolicy.model_validate(opened["data"]["policy"]))) == published["sha256"]

    # And runs by it: the course opened before version 2 still takes the consent form of version 1.
    for course in (before, after):
        assessed = await clinic.step(course, "assessment", Role.PRESCRIBER, ASSESSMENT)
        assert assessed.status_code == 200, assessed.text
    consent = {"form_version": "2026-01", "signed_at": NOW}
    assert (await clinic.step(before, "consent", Role.NURSE, consent)).status_code == 200
    outdated = await clinic.step(after, "consent", Role.NURSE, consent)
    assert outdated.status_code == 409 and outdated.json()["code"] == "consent_outdated"
    assert "2026-07" in outdated.json()["detail"]


async def test_only_a_clinic_admin_publishes_and_every_version_stays_as_published(
    clinic: Clinic, pg_pool: asyncpg.Pool
) -> None:
    name = _name("north")
    for role in (Role.PRESCRIBER, Role.NURSE, Role.THERAPIST, Role.OPERATIONS):
        refused = await _publish(clinic, name, {}, role)
        assert refused.status_code == 403, (role, refused.text)
        assert refused.json()["code"] == "role_not_permitted" and "clinic_admin" in refused.json()["detail"]
    assert (await clinic.call("GET", f"/policies/{name}")).status_code == 404

    published = await _publish(clinic, name, {"gad7_review_threshold": 8})
    assert published.status_code == 201
    again = await _publish(clinic, name, {"gad7_review_threshold": 8})  # a retried publication
    assert again.status_code == 200 and again.json() == published.json()

    listed = [row for row in (await clinic.call("GET", "/policies", Role.NURSE)).json() if row["name"] == name]
    assert listed == [
        {
            "name": name,
            "version": 1,
            "sha256": published.json()["sha256"],
            "published_by": STAFF[Role.CLINIC_ADMIN].id,
            "published_at": published.json()["published_at"],
            "current": True,
        }
    ]
    shown = (await clinic.call("GET", f"/policies/{name}/1", Role.THERAPIST)).json()
    assert shown["policy"]["gad7_review_threshold"] == 8 and shown["policy"]["day_length"] == "P1D"
    # The default the migration published is there for clinics that publish nothing.
    default = (await clinic.call("GET", "/policies/default/1")).json()
    assert default["published_by"] == "migration"
    # Its hash is of the body as stored; the API shows the policy courses run by (a field added to
    # the policy since takes its built-in value).
    stored = await pg_pool.fetchval("SELECT body FROM clinic_policies WHERE name = 'default' AND version = 1")
    assert default["sha256"] == sha256_of(stored)
    assert CoursePolicy.model_validate(default["policy"]) == CoursePolicy.model_validate_json(stored)

    # Append-only: the table is the audit of who published what, so no row changes or goes.
    for statement in (
        "UPDATE clinic_policies SET body = '{}' WHERE name = $1",
        "DELETE FROM clinic_policies WHERE name = $1",
    ):
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
            await pg_pool.execute(statement, name)
    row = await pg_pool.fetchrow("SELECT sha256, published_by FROM clinic_policies WHERE name = $1", name)
    assert row is not None and dict(row) == {"sha256": published.json()["sha256"], "published_by": "admin-api"}


async def test_a_policy_courses_could_not_safely_run_by_is_refused_with_what_to_fix(clinic: Clinic) -> None:
    name = _name("unsafe")
    out_of_bounds = await _publish(
        clinic,
        name,
        {
            "bp_threshold": {"systolic": 300, "diastolic": 200},
            "consent_form_version": "",
            "day_length": "PT1S",
            "command_window": "P1D",
        },
    )
    assert out_of_bounds.status_code == 422, out_of_bounds.text
    problem = out_of_bounds.json()
    assert problem["code"] == "policy_out_of_bounds"
    assert {e["field"] for e in problem["errors"]} == {
        "bp_threshold.systolic",
        "bp_threshold.diastolic",
        "consent_form_version",
        "day_length",
        "command_window",
    }
    typo = await _publish(clinic, name, {"asessment_deadline": "P9D"})
    assert typo.status_code == 422 and typo.json()["code"] == "policy_invalid"
    assert typo.json()["errors"][0]["field"] == "asessment_deadline"
    bad_name = await clinic.call("POST", "/policies", Role.CLINIC_ADMIN, json={"name": "Main Street", "policy": {}})
    assert bad_name.status_code == 422
    assert (await clinic.call("GET", f"/policies/{name}")).status_code == 404  # nothing was published


async def test_a_course_opens_only_on_a_published_policy_and_never_for_a_clinic_admin(clinic: Clinic) -> None:
    body = {"patient_id": "pt-pol-2", "clinician_id": "dr-api", "self_pay": True}
    unknown = await clinic.call("POST", "/courses", Role.OPERATIONS, json=body | {"policy_name": _name("nowhere")})
    assert unknown.status_code == 422 and unknown.json()["code"] == "unknown_policy"
    assert "course policy publish" in unknown.json()["detail"]
    name = _name("east")
    assert (await _publish(clinic, name, {})).status_code == 201
    missing = await clinic.call(
        "POST", "/courses", Role.OPERATIONS, json=body | {"policy_name": name, "policy_version": 2}
    )
    assert missing.status_code == 422 and missing.json()["code"] == "unknown_policy_version"

    admin = await clinic.call("POST", "/courses", Role.CLINIC_ADMIN, json=body)
    assert admin.status_code == 403 and admin.json()["code"] == "role_not_permitted"
    course = await clinic.open()
    for step, payload in (("hold", {"reason": "patient_request"}), ("assessment", ASSESSMENT)):
        refused = await clinic.step(course, step, Role.CLINIC_ADMIN, payload)
        assert refused.status_code == 403 and refused.json()["code"] == "role_not_permitted", step
    view = (await clinic.call("GET", f"/courses/{course}")).json()
    assert view["policy"]["name"] == "default" and view["policy"]["version"] >= 1
