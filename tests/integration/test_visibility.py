"""What operations staff see: each Temporal UI filter returns exactly the right courses."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from activities.eligibility import SelfPayProvider
from activities.event_store import PostgresEventStore
from activities.notifications import ConsoleChannel, PostgresOutbox
from application.courses import CourseClient, parse_course_id
from application.queries import course_query
from course.commands import PlaceHold, Withdraw
from course.policy import CoursePolicy
from course.timing import next_for_staff
from tests import story
from tests.conftest import task_queue
from worker.main import activities_for, build_worker
from workflows import search_attributes as sa
from workflows.inputs import workflow_id

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture
async def client(dev_env: WorkflowEnvironment, pg_pool: asyncpg.Pool) -> AsyncIterator[CourseClient]:
    queue = task_queue()
    worker = build_worker(
        dev_env.client,
        queue,
        activities_for(PostgresEventStore(pg_pool), SelfPayProvider(), PostgresOutbox(pg_pool), ConsoleChannel()),
    )
    async with worker:
        yield CourseClient(dev_env.client, queue)


async def _matching(client: CourseClient, query: str) -> set[str]:
    return {w.id.removeprefix("course-") async for w in client.temporal.list_workflows(query)}


async def _eventually(client: CourseClient, query: str, expected: set[str], within: float = 20.0) -> None:
    """Visibility is eventually consistent: poll, bounded, until the answer is exactly right."""
    found: set[str] = set()
    for _ in range(int(within / 0.25)):
        found = await _matching(client, query)
        if found == expected:
            return
        await asyncio.sleep(0.25)
    raise AssertionError(f"{query}\n expected {sorted(expected)}\n found    {sorted(found)}")


async def _prepared(client: CourseClient, clinician: str, policy: CoursePolicy | None = None) -> str:
    opening = story.opening(policy=policy).model_copy(update={"clinician_id": clinician})
    course = str(await client.open(opening))
    await client.record(course, story.assessment(), story.PRESCRIBER)
    now = await _now(client)
    for actor, command in story.preparation(now):
        await client.record(course, command, actor)  # type: ignore[arg-type]
    return course


async def _now(client: CourseClient) -> object:
    from datetime import UTC, datetime

    return datetime.now(UTC)


async def test_each_filter_returns_exactly_the_right_courses(client: CourseClient) -> None:
    clinician = f"dr-vis-{uuid.uuid4().hex[:8]}"
    mine = {"clinician": clinician}

    waiting = str(await client.open(story.opening().model_copy(update={"clinician_id": clinician})))
    preparing = str(await client.open(story.opening().model_copy(update={"clinician_id": clinician})))
    await client.record(preparing, story.assessment(), story.PRESCRIBER)
    held = await _prepared(client, clinician)
    await client.record(held, PlaceHold(reason="patient_travel"), story.OPERATIONS)
    reviewing = await _prepared(client, clinician)
    await client.record(reviewing, story.check_in(1), story.NURSE)
    await client.record(reviewing, story.dose(1, patient_response="worse"), story.NURSE)
    quick = CoursePolicy(integration_reminder_after=timedelta(seconds=1), integration_due_within=timedelta(seconds=2))
    late = await _prepared(client, clinician, quick)
    await client.record(late, story.check_in(1), story.NURSE)
    await client.record(late, story.dose(1), story.NURSE)
    withdrawn = str(await client.open(story.opening().model_copy(update={"clinician_id": clinician})))
    await client.record(withdrawn, Withdraw(reason="patient_request"), story.OPERATIONS)

    open_courses = {waiting, preparing, held, reviewing, late}
    await _eventually(client, course_query(**mine), open_courses)
    await _eventually(client, course_query(include_closed=True, **mine), open_courses | {withdrawn})
    await _eventually(client, course_query(phase="assessment", **mine), {waiting})
    await _eventually(client, course_query(phase="preparation", **mine), {preparing})
    await _eventually(client, course_query(phase="dosing", **mine), {held, reviewing, late})
    await _eventually(client, course_query(awaiting="assessment", **mine), {waiting})
    await _eventually(client, course_query(awaiting="clinical-review", **mine), {reviewing})
    await _eventually(client, course_query(on_hold=True, **mine), {held})
    await _eventually(client, course_query(needs_review=True, **mine), {reviewing})
    await _eventually(client, course_query(overdue=True, **mine), {late})  # the 2-second follow-up lapsed
    await _eventually(client, course_query(clinician="dr-nobody-else"), set())


async def test_next_due_at_is_what_staff_are_asked_for_next_not_the_patients_reminder(client: CourseClient) -> None:
    course = str(await client.open(story.opening()))
    await client.record(course, story.assessment(), story.PRESCRIBER)
    await client.record(course, story.schedule(1, story.soon(datetime.now(UTC), days=2)), story.OPERATIONS)
    state, view = await client.state(course), await client.status(course)
    staff = next_for_staff(state, datetime.now(UTC))
    # The patient's reminder the day before the session comes first; operations' reminder of the
    # pending financial clearance (3 days) is what staff are asked for next.
    assert view.next_due is not None and "dosing session 1 tomorrow" in view.next_due.what
    assert staff is not None and staff.purpose == "clearance_pending" and staff.at > view.next_due.at
    handle = client.temporal.get_workflow_handle(workflow_id(parse_course_id(course)))
    due = None
    for _ in range(80):  # bounded: the upsert lands with the step's workflow task
        due = (await handle.describe()).typed_search_attributes.get(sa.NEXT_DUE_AT)
        if due == staff.at:
            break
        await asyncio.sleep(0.25)
    assert due == staff.at, f"NextDueAt {due}; staff are next asked at {staff.at}, the patient at {view.next_due.at}"
