"""Callers get answers: a step without an Idempotency-Key is 428 (saying what to send), and a step
no worker takes is 504 naming the request to retry, in the API and in the console alike."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from api.services import update_id
from api.staff import ConfiguredStaff, new_token, token_digest
from application.courses import CourseClient
from course.commands import Role
from tests.api.conftest import BASE, STAFF, Clinic
from tests.conftest import task_queue

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"


async def test_a_step_without_an_idempotency_key_is_428_and_nothing_is_recorded(clinic: Clinic) -> None:
    course = await clinic.open()
    for path in (f"/courses/{course}/steps/hold", f"/courses/{course}/hold"):
        refused = await clinic.call("POST", path, Role.OPERATIONS, keyed=False, json={"reason": "patient_request"})
        assert refused.status_code == 428, refused.text
        assert refused.headers["content-type"] == PROBLEM
        problem = refused.json()
        assert problem["code"] == "idempotency_key_required"
        assert problem["title"] == "Precondition Required"
        assert "Send an Idempotency-Key header" in problem["detail"]
    assert (await clinic.call("GET", f"/courses/{course}")).json()["flags"]["on_hold"] is False
    keyed = await clinic.call("POST", f"/courses/{course}/hold", Role.OPERATIONS, json={"reason": "patient_request"})
    assert keyed.status_code == 200 and keyed.json()["flags"]["on_hold"] is True


async def test_the_openapi_document_says_the_key_is_required_and_documents_428_and_504(clinic: Clinic) -> None:
    operation = clinic.app.openapi()["paths"]["/courses/{course_id}/steps/consent"]["post"]
    header = next(p for p in operation["parameters"] if p["name"] == "Idempotency-Key")
    assert header["required"] is True and header["in"] == "header"
    assert {"428", "504"} <= set(operation["responses"])


@pytest_asyncio.fixture
async def unserved(dev_env: WorkflowEnvironment, pg_pool: asyncpg.Pool) -> AsyncIterator[Clinic]:
    """The API in front of a task queue that no worker polls, answering within 1.5 s."""
    tokens = {role: new_token() for role in Role}
    staff = ConfiguredStaff([(STAFF[role], token_digest(tokens[role])) for role in Role])
    courses = CourseClient(dev_env.client, task_queue())
    app = create_app(courses, staff, pg_pool, step_timeout=1.5, secure_cookies=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE, headers={"Origin": BASE}) as http:
        yield Clinic(http, tokens, app, courses)


async def _opened(unserved: Clinic) -> str:
    body = {"patient_id": "pt-api-1", "clinician_id": "dr-api", "self_pay": True}
    opened = await unserved.call("POST", "/courses", Role.OPERATIONS, json=body)
    assert opened.status_code == 201, opened.text
    return str(opened.json()["course_id"])


async def test_a_step_nobody_takes_is_504_naming_the_request_to_retry_with(unserved: Clinic) -> None:
    course = await _opened(unserved)
    key = "front-desk-7-hold-1"
    late = await unserved.call(
        "POST", f"/courses/{course}/hold", Role.OPERATIONS, json={"reason": "travel"}, headers={"Idempotency-Key": key}
    )
    assert late.status_code == 504, late.text
    assert late.headers["content-type"] == PROBLEM and late.headers["retry-after"] == "5"
    problem = late.json()
    request_id = update_id("hold", STAFF[Role.OPERATIONS], key)
    assert problem["request_id"] == request_id
    assert problem["code"] == "no_worker"
    assert request_id in problem["detail"] and "same Idempotency-Key" in problem["detail"]
    assert key not in late.text  # the caller's own text is not echoed


async def test_the_console_form_the_course_did_not_answer_keeps_its_request_id(unserved: Clinic) -> None:
    course = await _opened(unserved)
    signed = await unserved.http.post("/console/login", data={"token": unserved.tokens[Role.NURSE]})
    assert signed.status_code == 303
    form = await unserved.http.get(f"/console/courses/{course}/steps/hold")
    sent = re.search(r'name="request_id" value="([^"]+)"', form.text)
    assert sent
    late = await unserved.http.post(
        f"/console/courses/{course}/steps/hold", data={"reason": "travel", "request_id": sent.group(1)}
    )
    assert late.status_code == 504, late.text
    kept = re.search(r'name="request_id" value="([^"]+)"', late.text)
    assert kept and kept.group(1) == sent.group(1)
    assert update_id("hold", STAFF[Role.NURSE], sent.group(1)) in late.text
    assert "Submit this form again unchanged" in late.text


async def test_a_console_form_without_a_request_id_is_not_sent_and_comes_back_with_one(clinic: Clinic) -> None:
    course = await clinic.open()
    assert (await clinic.http.post("/console/login", data={"token": clinic.tokens[Role.NURSE]})).status_code == 303
    bare = await clinic.http.post(f"/console/courses/{course}/steps/hold", data={"reason": "travel"})
    assert bare.status_code == 428 and "had no request id" in bare.text
    assert 'value="travel"' in bare.text  # what was typed is kept
    assert (await clinic.courses.status(course)).flags.on_hold is False
    fresh = re.search(r'name="request_id" value="([^"]+)"', bare.text)
    assert fresh
    data = {"reason": "travel", "request_id": fresh.group(1)}
    first = await clinic.http.post(f"/console/courses/{course}/steps/hold", data=data)
    again = await clinic.http.post(f"/console/courses/{course}/steps/hold", data=data)  # a double submit
    assert first.status_code == again.status_code == 303, again.text
    events = (await clinic.call("GET", f"/courses/{course}/events")).json()
    assert [e["type"] for e in events].count("HoldPlaced") == 1
