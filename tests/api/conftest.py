"""The API on the real stack: a worker on the Temporal dev server, PostgreSQL, staff tokens per role."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest_asyncio
from fastapi import FastAPI
from pydantic import BaseModel
from temporalio.testing import WorkflowEnvironment

from activities.eligibility import SelfPayProvider
from activities.event_store import PostgresEventStore
from activities.notifications import ConsoleChannel, PostgresOutbox
from api.app import create_app
from api.staff import ConfiguredStaff, new_token, token_digest
from application.courses import CourseClient
from course.commands import Actor, Role
from tests import story
from tests.conftest import eligibility_known, task_queue
from worker.main import activities_for, build_worker

STAFF = {
    Role.PRESCRIBER: Actor(id="dr-api", role=Role.PRESCRIBER),
    Role.NURSE: Actor(id="rn-api", role=Role.NURSE),
    Role.THERAPIST: Actor(id="th-api", role=Role.THERAPIST),
    Role.OPERATIONS: Actor(id="ops-api", role=Role.OPERATIONS),
    Role.CLINIC_ADMIN: Actor(id="admin-api", role=Role.CLINIC_ADMIN),
}
BASE = "http://testserver"
STEP_PATH = re.compile(r"^/courses/[^/]+/(steps/[^/]+|hold|release|withdraw|reassign)$")
ASSESSMENT = {
    "blood_pressure": {"systolic": 128, "diastolic": 82},
    "heart_rate": 72,
    "contraindications": [],
    "condition": "gad",
    "gad7": 15,
}


@dataclass
class Clinic:
    """Staff of one clinic calling the API, each with their own token."""

    http: httpx.AsyncClient
    tokens: dict[Role, str]
    app: FastAPI
    courses: CourseClient

    def auth(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    async def call(
        self, method: str, path: str, role: Role = Role.PRESCRIBER, *, keyed: bool = True, **kwargs: Any
    ) -> httpx.Response:
        """A step gets a fresh Idempotency-Key (one per request, as a client makes one per form)
        unless the test sends its own, or none (`keyed=False`)."""
        headers = {**self.auth(role), **kwargs.pop("headers", {})}
        if keyed and method == "POST" and STEP_PATH.match(path) and "Idempotency-Key" not in headers:
            headers["Idempotency-Key"] = str(uuid.uuid4())
        return await self.http.request(method, path, headers=headers, **kwargs)

    async def open(self, **changes: Any) -> str:
        body = {"patient_id": "pt-api-1", "clinician_id": "dr-api", "therapist_id": "th-api", "self_pay": True}
        response = await self.call("POST", "/courses", Role.OPERATIONS, json=body | changes)
        assert response.status_code == 201, response.text
        course = str(response.json()["course_id"])
        await eligibility_known(self.courses, course)  # its first events are in the store
        return course

    async def step(self, course: str, step: str, role: Role, body: Any = None, **kwargs: Any) -> httpx.Response:
        return await self.call("POST", f"/courses/{course}/steps/{step}", role, json=body, **kwargs)

    async def prepared(self, **changes: Any) -> str:
        """A course through assessment and preparation over HTTP (tests/story.py's payloads, each by
        its usual role), with dosing session 1 scheduled an hour from now: check-in is open."""
        course = await self.open(**changes)
        await self.step(course, "assessment", Role.PRESCRIBER, ASSESSMENT)
        now = datetime.now(UTC)
        for actor, command in story.preparation(now):
            assert isinstance(command, BaseModel)
            body = command.model_dump(mode="json", exclude={"step"})
            answer = await self.step(course, str(command.model_dump()["step"]), actor.role, body)
            assert answer.status_code == 200, answer.text
        schedule = story.schedule(1, now + timedelta(hours=1)).model_dump(mode="json", exclude={"step"})
        answer = await self.step(course, "schedule-session", Role.OPERATIONS, schedule)
        assert answer.status_code == 200, answer.text
        return course


def console_app(clinic: Clinic, pool: asyncpg.Pool, time_zone: str) -> FastAPI:
    """The same clinic's API and console (its staff, worker and store), configured for another
    time zone, as a clinic away from UTC runs it."""
    staff = ConfiguredStaff([(STAFF[role], token_digest(clinic.tokens[role])) for role in Role])
    return create_app(clinic.courses, staff, pool, time_zone=time_zone, step_timeout=20, secure_cookies=False)


async def eventually(check: Callable[[], Awaitable[bool]], what: str, within: float = 15) -> None:
    """Visibility is eventually consistent: poll (bounded) until `check` holds."""
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"never happened: {what}")


@pytest_asyncio.fixture
async def clinic(dev_env: WorkflowEnvironment, pg_pool: asyncpg.Pool) -> AsyncIterator[Clinic]:
    queue = task_queue()
    worker = build_worker(
        dev_env.client,
        queue,
        activities_for(PostgresEventStore(pg_pool), SelfPayProvider(), PostgresOutbox(pg_pool), ConsoleChannel()),
    )
    tokens = {role: new_token() for role in Role}
    staff = ConfiguredStaff([(STAFF[role], token_digest(tokens[role])) for role in Role])
    courses = CourseClient(dev_env.client, queue)
    # Plain http (no TLS here): the console's cookie without Secure, as `course dev` does. Every
    # request carries the Origin a browser sends with a POST from the console's own pages.
    app = create_app(courses, staff, pg_pool, step_timeout=20, secure_cookies=False)
    transport = httpx.ASGITransport(app=app)
    async with (
        worker,
        httpx.AsyncClient(transport=transport, base_url=BASE, headers={"Origin": BASE}) as http,
    ):
        yield Clinic(http, tokens, app, courses)
