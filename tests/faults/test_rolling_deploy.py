"""A rolling deploy: an old and a new worker side by side on the same task queue and courses.

The new version adds optional fields: its clinicians' tools send `entered_on` in a step's command,
and it stores `entered_on` in every event's data and `deployment` in its metadata. The old worker
(this code, run as `course worker` in its own process) must take whatever the new one wrote: the
update payloads in history, and the stored events its event store folds when it appends after a
restart (worker restarts re-fold whole streams). Refusing an unknown field there (`extra="forbid"`)
failed the workflow task, or retried the append forever with the course's lock held.

The new version is simulated in this process: a Worker of the same workflow whose append activity
stores events as subclasses of today's models with the new fields (so its own fold works as a
new version's would), and a raw update whose command JSON carries the extra key, sent as the new
version's client would send it. The old worker is the real entry point in a process of its own.
With the events back on `extra="forbid"` this test fails: the old worker's first step after its
restart is never answered (its append folds the stream, meets `entered_on` and is retried forever).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from functools import cache
from typing import Any
from uuid import uuid4

import pytest
from pydantic import BaseModel, create_model
from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.worker import Worker

from activities.channels import ConsoleChannel
from activities.eligibility import SelfPayProvider
from activities.event_store import PostgresEventStore
from activities.notifications import PostgresOutbox
from activities.ports import AppendResult, CourseSummary
from course.commands import (
    Actor,
    ClinicianCommand,
    RecordFinancialClearance,
    RecordIntentions,
    RecordSupportPerson,
)
from course.events import EventEnvelope, EventMetadata
from course.policy import CoursePolicy
from course.view import StepOutcome
from tests import story
from tests.faults.audit import diagnose
from tests.faults.clinic import eligibility_answered, opening
from tests.faults.conftest import Rig
from trust import keys
from worker.main import activities_for, build_worker
from workflows.inputs import workflow_id

pytestmark = pytest.mark.faults

CALM = CoursePolicy()  # no reminder fires within the test: each stream is exactly what is recorded
COURSES = 3
STEP_WITHIN = 60.0  # an old worker that refuses the new fields never answers: fail, do not hang
SIDE_BY_SIDE: list[tuple[Actor, ClinicianCommand]] = [
    (story.OPERATIONS, RecordFinancialClearance(self_pay=True, estimated_cost_acknowledged=True)),
    (story.THERAPIST, RecordIntentions(goals="Fewer panic episodes at work")),
]
SUPPORT_PERSON = RecordSupportPerson(name="Sam Support", relationship="spouse", phone="555-0100")


@cache
def _newer(model: type[BaseModel]) -> type[BaseModel]:
    """Today's model as the next version has it: one more optional field."""
    field = "deployment" if model is EventMetadata else "entered_on"
    optional: Any = (str | None, None)
    return create_model(model.__name__, __base__=model, **{field: optional})


def as_the_new_version_writes(envelope: EventEnvelope) -> EventEnvelope:
    event = _newer(type(envelope.event)).model_validate({**envelope.event.model_dump(), "entered_on": "tablet"})
    metadata = _newer(EventMetadata).model_validate({**envelope.metadata.model_dump(), "deployment": "green"})
    return envelope.model_copy(update={"event": event, "metadata": metadata})


class NewVersionStore(PostgresEventStore):
    async def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[EventEnvelope],
        summary: CourseSummary | None = None,
    ) -> AppendResult:
        return await super().append(
            stream_id, expected_version, [as_the_new_version_writes(e) for e in events], summary
        )


async def record_as_the_new_version(rig: Rig, course: str, command: ClinicianCommand, actor: Actor) -> StepOutcome:
    """The new version's tool: the command's JSON carries a field this code's models do not have."""
    # Signed over the fields every worker of the fleet knows: a new optional field is signed only
    # once no old worker is left (docs/changing-the-workflow.md); until then old workers ignore it.
    update_id = f"{command.step}-{uuid4()}"
    signer = keys.signer()
    assert signer is not None
    signature = signer.sign(
        course_id=str(course).removeprefix("course-"),
        update_id=update_id,
        actor_id=actor.id,
        role=actor.role.value,
        step=command.step,
        payload=command.model_dump(mode="json"),
    )
    sent: dict[str, Any] = {
        "command": {**command.model_dump(mode="json"), "entered_on": "tablet"},
        "actor": actor.model_dump(mode="json"),
        "signature": signature.model_dump(mode="json"),
    }
    handle = rig.client.temporal.get_workflow_handle(workflow_id(course))
    # A StepOutcome reads an answer from any version: a whole CourseView (before issue 21) as well.
    update = handle.execute_update("record", sent, id=update_id, result_type=StepOutcome)
    try:
        return await asyncio.wait_for(update, STEP_WITHIN)
    except (TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError):
        history = await diagnose(rig.client.temporal, workflow_id(course))
        raise AssertionError(f"{command.step} not answered in {STEP_WITHIN:.0f}s on {course}:\n{history}") from None


def new_worker(rig: Rig) -> Worker:
    store = NewVersionStore(rig.pool)
    activities = activities_for(store, SelfPayProvider(), PostgresOutbox(rig.pool), ConsoleChannel())
    return build_worker(rig.client.temporal, rig.queue, activities)


async def test_old_and_new_workers_side_by_side_keep_the_courses_running(rig: Rig) -> None:
    courses: list[str] = []
    async with new_worker(rig):
        # Before the deploy reaches the old worker's host: only the new version runs.
        for n in range(COURSES):
            courses.append(str(await rig.client.open(opening(f"pt-deploy-{n}", 2, CALM))))
            rig.ledger.courses += 1
        for course in courses:
            await eligibility_answered(rig.client, course)
            await record_as_the_new_version(rig, course, story.assessment(), story.PRESCRIBER)

        # Side by side: tasks and activities go to whichever worker polls first.
        (old,) = await rig.started("old")
        for actor, command in SIDE_BY_SIDE:
            await asyncio.gather(*(record_as_the_new_version(rig, course, command, actor) for course in courses))

    # The new worker is gone; the old one restarts, so nothing is cached: it replays each course
    # from history and folds each stream from PostgreSQL before it appends.
    old.kill()
    rig.ledger.crashes += 1
    old.start()
    await old.ready(rig.client.temporal)
    for course in courses:
        view = await record_as_the_new_version(rig, course, SUPPORT_PERSON, story.OPERATIONS)
        assert view.outcome is None and "support-person" not in view.awaiting

    newer_rows = await rig.pool.fetchval(
        "SELECT count(*) FROM events WHERE stream_id = ANY($1::text[]) AND data ? 'entered_on'",
        [workflow_id(course) for course in courses],
    )
    assert newer_rows > 0, "the new version stored nothing with its new field: the test proves nothing"
    expected = Counter(
        [
            "CourseOpened",
            "EligibilityChecked",
            "AssessmentRecorded",
            "CandidacyConfirmed",
            "FinancialClearanceRecorded",
            "IntentionsRecorded",
            "SupportPersonRecorded",
        ]
    )
    retried = rig.ledger.appends_retried
    for course in courses:
        # Versions 1..n, fold(stream) == the workflow's state, summaries, no failed workflow task.
        await rig.audit.course(course, expected, timers=False)
        description = await rig.client.temporal.get_workflow_handle(workflow_id(course)).describe()
        assert description.status is not None and description.status.name == "RUNNING"
    assert rig.ledger.appends_retried == retried, "an append had to be retried: a worker refused what it read"
