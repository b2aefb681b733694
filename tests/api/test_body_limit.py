"""A body too large is refused before anything reads it: no token needed to be told, none checked.

These requests never reach Temporal or PostgreSQL (the middleware, the token check or the body's
validation answers first), so the app is built without them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import cast

import asyncpg
import httpx
import pytest
import pytest_asyncio
from temporalio.client import Client

from api.app import create_app
from api.staff import ConfiguredStaff, new_token, token_digest
from application.courses import CourseClient
from course.commands import Actor, Role

LIMIT = 4096
TOKEN = new_token()
OPERATIONS = Actor(id="ops-limit", role=Role.OPERATIONS)
# An opening with one invalid field, so a 422 names it (and the padding): the body arrived whole.
OPENING = {"patient_id": "pt-limit-1", "clinician_id": "dr limit", "self_pay": True}


@pytest_asyncio.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    never_asked = CourseClient(cast(Client, None))  # no request here gets as far as a course
    staff = ConfiguredStaff([(OPERATIONS, token_digest(TOKEN))])
    app = create_app(never_asked, staff, cast(asyncpg.Pool, None), max_body_bytes=LIMIT)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        yield client


def _padded(size: int) -> bytes:
    body = json.dumps(OPENING | {"padding": ""}).encode()
    return json.dumps(OPENING | {"padding": "x" * (size - len(body))}).encode()


async def _chunks(body: bytes, size: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, len(body), size):
        yield body[start : start + size]


def _too_large(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "body_too_large" and problem["status"] == 413
    assert str(LIMIT) in problem["detail"]


async def test_a_body_over_the_limit_without_any_token_is_413_not_401(http: httpx.AsyncClient) -> None:
    response = await http.post("/courses", content=_padded(LIMIT + 1), headers={"Content-Type": "application/json"})
    _too_large(response)


async def test_a_streamed_body_over_the_limit_is_counted_and_refused(http: httpx.AsyncClient) -> None:
    # No Content-Length: the body arrives in chunks, and is counted as it comes.
    response = await http.post(
        "/courses", content=_chunks(_padded(LIMIT + 1)), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    _too_large(response)


async def test_a_body_that_lies_about_its_length_is_refused_by_its_declared_length(http: httpx.AsyncClient) -> None:
    headers = {"Content-Type": "application/json", "Content-Length": str(10 * LIMIT)}
    request = http.build_request("POST", "/console/sign-in", content=b"token=x", headers=headers)
    _too_large(await http.send(request))


@pytest.mark.parametrize("streamed", [False, True])
async def test_a_body_within_the_limit_reaches_the_token_check_and_the_route(
    http: httpx.AsyncClient, streamed: bool
) -> None:
    body = _padded(LIMIT)
    content = _chunks(body) if streamed else body
    anonymous = await http.post("/courses", content=content, headers={"Content-Type": "application/json"})
    assert anonymous.status_code == 401
    content = _chunks(body) if streamed else body
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    signed_in = await http.post("/courses", content=content, headers=headers)
    # Read whole and validated: the padding at its end is named, and the staff id that is free text.
    assert signed_in.status_code == 422, signed_in.text
    assert sorted(e["field"] for e in signed_in.json()["errors"]) == ["clinician_id", "padding"]
