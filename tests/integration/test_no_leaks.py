"""Patient data never leaves the event store in clear: not in Temporal, not in logs, not in errors.

Courses run with marker strings in every free-text and identifying field; then everything an
operator, a log shipper or the Temporal UI can see without the payload keys is searched for them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from activities.eligibility import SelfPayProvider
from activities.event_store import PostgresEventStore
from activities.notifications import ConsoleChannel, PostgresOutbox
from application.courses import CourseClient, StepRejected
from course.commands import (
    RecordClinicalReview,
    RecordIntentions,
    RecordOrientation,
    RecordPriorAuthorization,
    RecordSupportPerson,
    Withdraw,
)
from tests import story
from tests.conftest import task_queue
from worker.converter import plain_converter
from worker.main import activities_for, build_worker
from workflows.inputs import workflow_id

pytestmark = pytest.mark.integration

PATIENT = "pt-LEAKPATIENT"
MARKERS = [
    "LEAKPATIENT",
    "LEAKGOALS",
    "LEAKNAME",
    "LEAKREL",
    "LEAKPHONE",
    "LEAKRATIONALE",
    "LEAKTOPIC",
    "LEAKMEMBER",
    "LEAKREF",
    "LEAKREVIEW",
]


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


def _leaks(text: str) -> list[str]:
    return [marker for marker in MARKERS if marker in text]


async def test_no_marker_reaches_temporal_logs_or_errors(
    client: CourseClient,
    dev_env: WorkflowEnvironment,
    pg_pool: asyncpg.Pool,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    opening = story.opening(patient_id=PATIENT).model_copy(
        update={"member_ref": "LEAKMEMBER-77", "self_pay": False, "payer_id": "payer-1"}
    )
    course = str(await client.open(opening))
    rejections: list[str] = []
    try:  # rejected before the assessment: its message must not echo the payload
        await client.record(
            course,
            RecordSupportPerson(name="LEAKNAME", relationship="LEAKREL", phone="555-LEAKPHONE"),
            story.OPERATIONS,
        )
    except StepRejected as rejected:
        rejections.append(f"{rejected.code} {rejected.message}")
    await client.record(
        course,
        story.assessment(contraindications=["pregnancy"], relative_contraindication_rationale="LEAKRATIONALE"),
        story.PRESCRIBER,
    )
    await client.record(course, RecordIntentions(goals="LEAKGOALS: sleep through the night"), story.THERAPIST)
    await client.record(
        course, RecordSupportPerson(name="LEAKNAME", relationship="LEAKREL", phone="555-LEAKPHONE"), story.OPERATIONS
    )
    await client.record(course, RecordOrientation(topics=["LEAKTOPIC"]), story.NURSE)
    await client.record(course, RecordPriorAuthorization(reference="PA-LEAKREF", approved=True), story.OPERATIONS)
    for actor, command in story.preparation(datetime.now(UTC))[2:5:2]:  # consent, dosing plan
        await client.record(course, command, actor)  # type: ignore[arg-type]
    try:
        await client.record(course, RecordClinicalReview(decision="continue", rationale="LEAKREVIEW"), story.PRESCRIBER)
    except StepRejected as rejected:
        rejections.append(f"{rejected.code} {rejected.message}")
    await client.record(course, Withdraw(reason="patient_request"), story.OPERATIONS)
    assert len(rejections) == 2

    # The event store keeps the clinical facts (that is its job) ...
    stored = await pg_pool.fetchval(
        "SELECT string_agg(data::text, ' ') FROM events WHERE stream_id = $1", workflow_id(course)
    )
    assert {"LEAKGOALS", "LEAKNAME", "LEAKRATIONALE"} <= set(_leaks(stored))

    # ... and nothing else does. Temporal, read without the payload keys:
    raw = await Client.connect(dev_env.client.service_client.config.target_host, data_converter=plain_converter())
    handle = raw.get_workflow_handle(workflow_id(course))
    history = await handle.fetch_history()
    blob = b"".join(event.SerializeToString() for event in history.events).decode("latin-1")
    assert "binary/encrypted" in blob  # the payloads are there, encrypted
    assert _leaks(blob) == [], "history"
    description = await handle.describe()
    assert _leaks(str(description.raw_description)) == [], "description: search attributes, memo, summaries"
    async for listed in raw.list_workflows(f"WorkflowId = '{workflow_id(course)}'"):
        assert _leaks(str(listed.raw_info)) == [], "visibility"
    assert _leaks(" ".join(rejections)) == [], "rejection messages"

    out, err = capfd.readouterr()
    assert _leaks(out + err) == [], "process output"
    assert _leaks(caplog.text) == [], "log records"
