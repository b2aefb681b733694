"""Signed steps on the real stack: a raw Temporal client cannot act as a clinician.

The client here holds the data converter (an attacker with the payload keys, the strongest case)
but not the edge's signing key. Each forged step is refused by the update validator: nothing in
the workflow's history (no accepted update) and nothing in PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import pytest_asyncio
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowUpdateFailedError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment

from activities.eligibility import SelfPayProvider
from activities.event_store import PostgresEventStore
from activities.notifications import ConsoleChannel, PostgresOutbox
from application.courses import CourseClient
from course.commands import RecordIntentions, StepRequest
from tests import story
from tests.conftest import eligibility_known, task_queue
from trust import keys
from trust.signing import Signer
from trust.verify import verify_stream
from worker.main import activities_for, build_worker
from workflows.inputs import workflow_id
from workflows.treatment_course import TreatmentCourseWorkflow

pytestmark = pytest.mark.integration

STEP = RecordIntentions(goals="Fewer panic episodes at work")


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


async def _course(client: CourseClient) -> uuid.UUID:
    course = await client.open(story.opening())
    await eligibility_known(client, course)
    await client.record(course, story.assessment(), story.PRESCRIBER, request_id=f"{course}-assessment")
    return course


def _signature(signer: Signer, course: uuid.UUID, update_id: str, now: datetime | None = None) -> object:
    return signer.sign(
        course_id=str(course),
        update_id=update_id,
        actor_id=story.THERAPIST.id,
        role=story.THERAPIST.role.value,
        step=STEP.step,
        payload=STEP.model_dump(mode="json"),
        now=now,
    )


async def _refused(client: CourseClient, course: uuid.UUID, request: StepRequest, update_id: str) -> str:
    handle = client.temporal.get_workflow_handle_for(TreatmentCourseWorkflow.run, workflow_id(course))
    with pytest.raises(WorkflowUpdateFailedError) as failed:
        await handle.execute_update(TreatmentCourseWorkflow.record, request, id=update_id)
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "RuleViolation"
    return str(cause.details[0])


async def _accepted_updates(client: CourseClient, course: uuid.UUID) -> list[str]:
    history = await client.temporal.get_workflow_handle(workflow_id(course)).fetch_history()
    accepted = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED
    return [
        e.workflow_execution_update_accepted_event_attributes.accepted_request.meta.update_id
        for e in history.events
        if e.event_type == accepted
    ]


async def test_forged_steps_are_refused_before_history_or_postgresql(
    client: CourseClient, pg_pool: asyncpg.Pool
) -> None:
    course, other = await _course(client), await _course(client)
    edge = keys.signer()
    assert edge is not None
    before = await pg_pool.fetch("SELECT * FROM events WHERE stream_id = $1 ORDER BY version", workflow_id(course))
    accepted_before = await _accepted_updates(client, course)

    unsigned = StepRequest(command=STEP, actor=story.THERAPIST)
    assert await _refused(client, course, unsigned, "forged-1") == "unsigned"

    stranger = Signer.generate(edge.key_id)  # the right key id, another key
    forged = unsigned.model_copy(update={"signature": _signature(stranger, course, "forged-2")})
    assert await _refused(client, course, forged, "forged-2") == "bad_signature"

    unknown = unsigned.model_copy(update={"signature": _signature(Signer.generate("nobody"), course, "forged-3")})
    assert await _refused(client, course, unknown, "forged-3") == "unknown_key"

    # A genuine signature, made for another course, replayed here with the same request id.
    copied = unsigned.model_copy(update={"signature": _signature(edge, other, "forged-4")})
    assert await _refused(client, course, copied, "forged-4") == "signed_for_another_course"

    stale = datetime.now(UTC) - timedelta(minutes=10)
    late = unsigned.model_copy(update={"signature": _signature(edge, course, "forged-5", stale)})
    assert await _refused(client, course, late, "forged-5") == "signature_expired"

    # An actor swapped into a genuinely signed step.
    swapped = StepRequest(
        command=STEP,
        actor=story.PRESCRIBER,
        signature=_signature(edge, course, "forged-6"),  # type: ignore[arg-type]
    )
    assert await _refused(client, course, swapped, "forged-6") == "bad_signature"

    after = await pg_pool.fetch("SELECT * FROM events WHERE stream_id = $1 ORDER BY version", workflow_id(course))
    assert after == before
    assert await _accepted_updates(client, course) == accepted_before

    # The same step through the edge (CourseClient signs as the staff member) is taken, and its
    # events keep the signature and the command for `course verify`.
    view = await client.record(course, STEP, story.THERAPIST, request_id="intentions-signed")
    stored = await pg_pool.fetchrow(
        "SELECT metadata FROM events WHERE stream_id = $1 AND version = $2", workflow_id(course), view.version
    )
    assert stored is not None
    assert stored["metadata"]["signature"]["key_id"] == edge.key_id
    assert stored["metadata"]["command"]["goals"] == STEP.goals


async def _verify_cli(pg_dsn: str, *args: str) -> tuple[int, str]:
    env = {**os.environ, "DATABASE_URL": pg_dsn}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from cli.main import main; main()",
        "verify",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode() + err.decode()


async def test_course_verify_proves_a_course_and_names_the_version_altered_in_postgresql(
    client: CourseClient, pg_pool: asyncpg.Pool, pg_dsn: str
) -> None:
    now = datetime.now(UTC)
    course = await _course(client)
    for index, (actor, command) in enumerate(story.preparation(now)):
        await client.record(course, command, actor, request_id=f"{course}-prep-{index}")  # type: ignore[arg-type]
    # Scheduled within the reminder lead: the reminder falls due at once (a timer batch).
    await client.record(course, story.schedule(1, now + timedelta(hours=2)), story.NURSE, request_id=f"{course}-s1")
    stream = workflow_id(course)

    async def reminded() -> bool:
        return bool(
            await pg_pool.fetchval("SELECT count(*) FROM events WHERE stream_id=$1 AND type='ReminderSent'", stream)
        )

    for _ in range(300):
        if await reminded():
            break
        await asyncio.sleep(0.1)
    ring = keys.ring()
    assert ring is not None
    proven = verify_stream(stream, await PostgresEventStore(pg_pool).read(stream), ring)
    assert proven.ok, proven
    assert proven.signed_steps == 8 and proven.timer_batches >= 1 and proven.unsigned_steps == 0
    code, out = await _verify_cli(pg_dsn, str(course))
    assert code == 0 and " ok;" in out, out

    # One byte of one stored event's data changed by someone with database access.
    version = await pg_pool.fetchval(
        "SELECT version FROM events WHERE stream_id = $1 AND type = 'IntentionsRecorded'", stream
    )
    await pg_pool.execute(
        "UPDATE events SET data = jsonb_set(data, '{goals}', to_jsonb(replace(data->>'goals', 'F', 'G')))"
        " WHERE stream_id = $1 AND version = $2",
        stream,
        version,
    )
    altered = verify_stream(stream, await PostgresEventStore(pg_pool).read(stream), ring)
    assert (altered.failed_at, altered.code) == (version, "event_altered")
    code, out = await _verify_cli(pg_dsn, str(course))
    assert code == 1 and f"FAILED at version {version}: event_altered" in out, out


async def test_break_glass_and_ordinary_keys_never_stand_in_for_each_other(
    client: CourseClient, pg_pool: asyncpg.Pool, pg_dsn: str
) -> None:
    """An operator's break-glass key signs break-glass steps only; the API's key never signs one.
    A genuine break-glass step is taken, keeps its reason, and `course verify` proves it."""
    course = await _course(client)
    edge, glass = keys.signer(), Signer.from_setting(os.environ["BREAK_GLASS_KEY"])
    assert edge is not None
    before = await pg_pool.fetch("SELECT * FROM events WHERE stream_id = $1 ORDER BY version", workflow_id(course))
    unsigned = StepRequest(command=STEP, actor=story.THERAPIST)

    ordinary = unsigned.model_copy(update={"signature": _signature(glass, course, "glass-1")})
    assert await _refused(client, course, ordinary, "glass-1") == "break_glass_key_misused"
    marked = unsigned.model_copy(
        update={"signature": edge.sign(**_fields(course, "glass-2"), break_glass="api_unavailable")}
    )
    assert await _refused(client, course, marked, "glass-2") == "not_a_break_glass_key"
    unknown = unsigned.model_copy(update={"signature": glass.sign(**_fields(course, "glass-3"), break_glass="bored")})
    assert await _refused(client, course, unknown, "glass-3") == "break_glass_reason_unknown"
    after = await pg_pool.fetch("SELECT * FROM events WHERE stream_id = $1 ORDER BY version", workflow_id(course))
    assert after == before

    operator = CourseClient(client.temporal, client.task_queue, signer=glass, break_glass="emergency_care")
    view = await operator.record(course, STEP, story.THERAPIST, request_id="glass-4")
    stored = await pg_pool.fetchrow(
        "SELECT metadata FROM events WHERE stream_id = $1 AND version = $2", workflow_id(course), view.version
    )
    assert stored is not None
    assert stored["metadata"]["signature"]["break_glass"] == "emergency_care"
    assert stored["metadata"]["signature"]["key_id"] == glass.key_id
    code, out = await _verify_cli(pg_dsn, str(course))
    assert code == 0 and " ok;" in out and "2 signed steps proven" in out, out


def _fields(course: uuid.UUID, update_id: str) -> dict[str, object]:
    return {
        "course_id": str(course),
        "update_id": update_id,
        "actor_id": story.THERAPIST.id,
        "role": story.THERAPIST.role.value,
        "step": STEP.step,
        "payload": STEP.model_dump(mode="json"),
    }
