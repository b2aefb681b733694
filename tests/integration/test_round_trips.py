"""What a caller pays in round trips to the server (issue 21), on the dev server.

A step is one call (the server answers once the update completed); opening a course with its
assessment is one call too (an update-with-start), as idempotent as `open` then `record`. The
calls are counted at the client's service client, so these are the round trips themselves.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from activities.eligibility import SelfPayProvider
from activities.event_store import InMemoryEventStore
from activities.notifications import ConsoleChannel, InMemoryOutbox
from application.courses import CourseClient, StepRejected
from bench.common import RpcCounter
from course.state import Phase
from tests import story
from tests.conftest import task_queue
from worker.main import activities_for, build_worker
from workflows.inputs import workflow_id

pytestmark = pytest.mark.integration


@pytest_asyncio.fixture
async def rig(dev_env: WorkflowEnvironment) -> AsyncIterator[tuple[CourseClient, InMemoryEventStore, RpcCounter]]:
    # A client of its own: the counter wraps its service client, not the session's shared one.
    client = await type(dev_env.client).connect(
        dev_env.client.service_client.config.target_host,
        namespace=dev_env.client.namespace,
        data_converter=dev_env.client.data_converter,
    )
    queue, store = task_queue(), InMemoryEventStore()
    courses = CourseClient(client, queue)
    worker = build_worker(
        dev_env.client, queue, activities_for(store, SelfPayProvider(), InMemoryOutbox(), ConsoleChannel())
    )
    async with worker:
        yield courses, store, RpcCounter(courses.temporal)


async def _accepted_updates(courses: CourseClient, course: uuid.UUID) -> int:
    history = await courses.temporal.get_workflow_handle(workflow_id(course)).fetch_history()
    return sum(e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED for e in history.events)


async def test_a_step_is_one_call_and_answers_with_its_outcome(rig: tuple[CourseClient, Any, RpcCounter]) -> None:
    courses, _, calls = rig
    course = await courses.open(story.opening(uuid.uuid4()))
    with calls.counting() as made:
        outcome = await courses.record(course, story.assessment(), story.PRESCRIBER, request_id=f"{course}-a")
    assert made == ["update_workflow_execution"], made
    # The outcome is small (no steps, no clinical payload); the whole view is the status query.
    assert outcome.phase is Phase.PREPARATION and outcome.version >= 2
    assert set(type(outcome).model_fields) < set(type(await courses.status(course)).model_fields)


async def test_opening_with_the_assessment_is_one_call_and_is_applied_once(
    rig: tuple[CourseClient, InMemoryEventStore, RpcCounter],
) -> None:
    courses, store, calls = rig
    opening = story.opening(uuid.uuid4())
    with calls.counting() as made:
        outcome = await courses.open_with_step(opening, story.assessment(), story.PRESCRIBER)
    assert made == ["execute_multi_operation"], made  # open, then record, is two calls
    assert outcome.phase is Phase.PREPARATION and "assessment" not in outcome.awaiting
    # Sent again (a client that never saw the answer): the same course and step, applied once.
    again = await courses.open_with_step(opening, story.assessment(), story.PRESCRIBER)
    assert again.version >= outcome.version
    assert await _accepted_updates(courses, opening.course_id) == 1
    stored = [e.type for e in await store.read(workflow_id(opening.course_id))]
    assert stored.count("CourseOpened") == 1 and stored.count("AssessmentRecorded") == 1


async def test_an_open_course_takes_the_step_once_whichever_way_it_was_sent(
    rig: tuple[CourseClient, InMemoryEventStore, RpcCounter],
) -> None:
    courses, store, _ = rig
    opening = story.opening(uuid.uuid4())
    await courses.open(opening)
    first = await courses.record(opening.course_id, story.assessment(), story.PRESCRIBER)
    # The same assessment by the same prescriber with the opening: the same derived request id.
    with_start = await courses.open_with_step(opening, story.assessment(), story.PRESCRIBER)
    assert with_start.version >= first.version
    stored = [e.type for e in await store.read(workflow_id(opening.course_id))]
    assert stored.count("CourseOpened") == 1 and stored.count("AssessmentRecorded") == 1


async def test_a_refused_first_step_leaves_the_course_open_awaiting_it(
    rig: tuple[CourseClient, InMemoryEventStore, RpcCounter],
) -> None:
    courses, store, _ = rig
    opening = story.opening(uuid.uuid4())
    with pytest.raises(StepRejected) as refused:
        await courses.open_with_step(opening, story.assessment(), story.NURSE)  # a prescriber's step
    assert refused.value.code == "role_not_permitted"
    view = await courses.status(opening.course_id)
    assert view.phase is Phase.ASSESSMENT and "assessment" in view.awaiting
    assert "AssessmentRecorded" not in [e.type for e in await store.read(workflow_id(opening.course_id))]
