"""What a client without the payload keys can do to a course: nothing.

A raw `temporalio` client on the Temporal frontend, speaking the plain pydantic converter, sends the
`record` update the way `course record` would, but unencrypted; and an encrypted step copied from one
course's history is sent into another course. The worker refuses both before the validator: the
course's history and its event stream are as they were, and the course still takes real steps.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import pytest
import pytest_asyncio
from temporalio.api.common.v1 import Payload
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHandle, WorkflowUpdateFailedError
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities.eligibility import SelfPayProvider
from activities.event_store import PostgresEventStore
from activities.notifications import ConsoleChannel, PostgresOutbox
from application.courses import CourseClient
from course.commands import StepRequest
from tests import story
from tests.conftest import task_queue
from worker.codec import BOUND_ENCODING, WORKFLOW_ID
from worker.converter import plain_converter
from worker.main import activities_for, build_worker
from workflows.inputs import workflow_id

pytestmark = pytest.mark.integration

MARKER = "Grace-Hopper-07700-900456"


@dataclass
class Clinic:
    courses: CourseClient
    raw: Client  # no codec, no keys: what anyone who reaches the frontend has
    pg: asyncpg.Pool


@pytest_asyncio.fixture
async def clinic(dev_env: WorkflowEnvironment, pg_pool: asyncpg.Pool) -> AsyncIterator[Clinic]:
    queue = task_queue()
    worker = build_worker(
        dev_env.client,
        queue,
        activities_for(PostgresEventStore(pg_pool), SelfPayProvider(), PostgresOutbox(pg_pool), ConsoleChannel()),
    )
    raw = await Client.connect(
        dev_env.client.service_client.config.target_host,
        namespace=dev_env.client.namespace,
        data_converter=plain_converter(),
    )
    async with worker:
        yield Clinic(CourseClient(dev_env.client, queue), raw, pg_pool)


async def _settled(handle: WorkflowHandle[object, object], within: float = 20.0) -> int:
    """The course's history length once it has nothing in flight (no workflow task, no activity)."""
    deadline = asyncio.get_running_loop().time() + within
    while asyncio.get_running_loop().time() < deadline:
        description = (await handle.describe()).raw_description
        if not description.pending_activities and not description.HasField("pending_workflow_task"):
            return len((await handle.fetch_history()).events)
        await asyncio.sleep(0.1)
    raise AssertionError("the course never settled")


async def _stream_version(pg: asyncpg.Pool, course: uuid.UUID) -> int:
    return int(await pg.fetchval("SELECT count(*) FROM events WHERE stream_id = $1", workflow_id(course)))


def _refusal(failed: WorkflowUpdateFailedError) -> str:
    """The refusal is the cause of the SDK's 'Failed decoding arguments', readable without keys."""
    cause = failed.cause
    while isinstance(cause, ApplicationError) and cause.type != "PayloadRefused":
        cause = cause.cause
    assert isinstance(cause, ApplicationError), failed
    return cause.message


async def _step_payload(handle: WorkflowHandle[object, object]) -> Payload:
    async for event in handle.fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            [payload] = event.workflow_execution_update_accepted_event_attributes.accepted_request.input.args.payloads
            return payload
    raise AssertionError("no accepted update in the history")


async def test_a_client_that_does_not_encrypt_is_refused_and_nothing_is_written(
    clinic: Clinic, capfd: pytest.CaptureFixture[str]
) -> None:
    course = await clinic.courses.open(story.opening())
    handle = clinic.raw.get_workflow_handle(workflow_id(course))
    events, version = await _settled(handle), await _stream_version(clinic.pg, course)

    forged = StepRequest(command=story.assessment(relative_contraindication_rationale=MARKER), actor=story.PRESCRIBER)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update("record", forged, id=f"assessment-{uuid.uuid4()}")

    reason = _refusal(refused.value)
    assert "payload is not encrypted: the client sending it is not using the payload codec" in reason
    assert MARKER not in reason
    assert len((await handle.fetch_history()).events) == events
    assert await _stream_version(clinic.pg, course) == version
    out, err = capfd.readouterr()
    assert "payload refused" in out + err and MARKER not in out + err

    # The course is not stuck behind the refusal: the clinic's own client records the step.
    await clinic.courses.record(course, story.assessment(), story.PRESCRIBER)
    assert await _stream_version(clinic.pg, course) > version


async def test_an_encrypted_step_copied_from_another_course_is_refused(clinic: Clinic) -> None:
    first = await clinic.courses.open(story.opening())
    await clinic.courses.record(first, story.assessment(), story.PRESCRIBER)
    copied = await _step_payload(clinic.raw.get_workflow_handle(workflow_id(first)))
    assert copied.metadata["encoding"] == BOUND_ENCODING
    assert copied.metadata[WORKFLOW_ID] == workflow_id(first).encode()

    second = await clinic.courses.open(story.opening())
    handle = clinic.raw.get_workflow_handle(workflow_id(second))
    events, version = await _settled(handle), await _stream_version(clinic.pg, second)
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await handle.execute_update("record", RawValue(copied), id=f"assessment-{uuid.uuid4()}")

    reason = _refusal(refused.value)
    assert f"made for workflow {workflow_id(first)!r}, not for {workflow_id(second)!r}" in reason
    assert len((await handle.fetch_history()).events) == events
    assert await _stream_version(clinic.pg, second) == version

    # The same step, encrypted for this course by the clinic's client, is taken.
    await clinic.courses.record(second, story.assessment(), story.PRESCRIBER)
    assert await _stream_version(clinic.pg, second) > version
