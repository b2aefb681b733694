"""Everything sent twice takes effect once: a clinician's step (the same request id, at the same
moment and again after the worker restarted), a reminder (the notification activity run again
after it delivered, and several attempts at once), a course (opened twice at the same moment).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from temporalio.testing import ActivityEnvironment

from activities.notifications import NotificationActivities, PostgresOutbox
from activities.ports import Notification
from course.commands import RecordIntentions
from course.policy import CoursePolicy
from tests import story
from tests.faults.clinic import eligibility_answered, opening
from tests.faults.conftest import Rig
from workflows.inputs import workflow_id

pytestmark = pytest.mark.faults

# Clinic defaults: no reminder fires within a test, so every stream is exactly what is recorded.
CALM = CoursePolicy()
ASSESSED = Counter(["CourseOpened", "EligibilityChecked", "AssessmentRecorded", "CandidacyConfirmed"])


async def test_a_step_sent_twice_at_once_and_again_after_a_worker_restart_is_recorded_once(rig: Rig) -> None:
    (worker,) = await rig.started("worker")
    client = rig.client
    course = str(await client.open(opening("pt-dup-step", 2, CALM)))
    rig.ledger.courses += 1
    await eligibility_answered(client, course)  # the payer's answer is stored on its own: let it land first
    await client.record(course, story.assessment(), story.PRESCRIBER)
    # Intentions may be recorded again and again (goals change), so only the request id keeps a
    # retried call from writing a second fact.
    goals = RecordIntentions(goals="Fewer panic episodes at work")
    request = f"{course}:intentions"

    views = await asyncio.gather(*(client.record(course, goals, story.THERAPIST, request_id=request) for _ in range(4)))
    assert len({view.version for view in views}) == 1, "the copies saw different outcomes"

    worker.kill()  # the workflow's cache is gone; the next worker replays it from history
    rig.ledger.crashes += 1
    worker.start()
    await worker.ready(client.temporal)
    again = await client.record(course, goals, story.THERAPIST, request_id=request)
    assert again.version == views[0].version

    # Control: a new request id is a new fact, so the step itself is not what deduplicated.
    await client.record(course, goals, story.THERAPIST, request_id=f"{course}:intentions-revised")
    await rig.audit.course(course, ASSESSED + Counter({"IntentionsRecorded": 2}), timers=False)


class CountingChannel:
    """A slow channel that counts what reaches the patient, per notification key."""

    name = "counting"

    def __init__(self) -> None:
        self.delivered: Counter[str] = Counter()

    async def deliver(self, message: object) -> None:
        await asyncio.sleep(0.2)  # long enough for concurrent attempts to overlap
        notification = getattr(message, "notification", message)
        self.delivered[notification.idempotency_key] += 1  # type: ignore[attr-defined]


def reminder() -> Notification:
    stream = f"course-{uuid4()}"
    return Notification(
        idempotency_key=f"{stream}:session-1-reminder",
        stream_id=stream,
        purpose="session_tomorrow",
        recipient="patient",
        recipient_id="pt-dup-note",
        due_at=datetime.now(UTC) + timedelta(hours=23),
    )


async def test_a_reminder_sent_again_after_delivery_or_by_concurrent_attempts_reaches_the_patient_once(
    rig: Rig,
) -> None:
    pg_pool = rig.pool
    channel = CountingChannel()
    send = NotificationActivities(PostgresOutbox(pg_pool), channel).send_notification
    env = ActivityEnvironment()

    # Retried after delivery (the worker died before Temporal heard of the result).
    retried = reminder()
    first = await env.run(send, retried)
    second = await env.run(send, retried)
    assert (first.delivered, second.delivered, second.duplicate) == (True, False, True)

    # Several attempts at once (a timed-out attempt still running when its retry starts).
    racing = reminder()
    results = await asyncio.gather(*(env.run(send, racing) for _ in range(5)))
    assert sum(r.delivered for r in results) == 1, results

    assert channel.delivered == {retried.idempotency_key: 1, racing.idempotency_key: 1}
    # One outbox row per key, and both end up recorded as delivered.
    rows = await pg_pool.fetch(
        "SELECT delivered_at FROM notifications WHERE idempotency_key = ANY($1::text[])",
        [retried.idempotency_key, racing.idempotency_key],
    )
    assert len(rows) == 2 and all(row["delivered_at"] is not None for row in rows), rows
    rig.ledger.duplicates += sum(n - 1 for n in channel.delivered.values())


async def test_a_course_opened_twice_at_once_is_one_course(rig: Rig) -> None:
    await rig.started("worker")
    clinic_client = rig.client
    request = opening("pt-dup-open", 2, CALM)
    course = workflow_id(request.course_id)

    opened = await asyncio.gather(*(clinic_client.open(request) for _ in range(3)))
    assert set(opened) == {request.course_id}
    assert await clinic_client.open(request) == request.course_id  # and once more, while it runs
    await eligibility_answered(clinic_client, request.course_id)
    rig.ledger.courses += 1
    # A step recorded after the opens lands on the one live course.
    await clinic_client.record(request.course_id, story.assessment(), story.PRESCRIBER)
    runs: list[object] = []
    for _ in range(50):  # visibility is eventually consistent: wait (bounded) for the run to show
        runs = [w async for w in clinic_client.temporal.list_workflows(f"WorkflowId = '{course}'")]
        if runs:
            break
        await asyncio.sleep(0.1)
    assert len(runs) == 1, runs
    await rig.audit.course(request.course_id, ASSESSED, timers=False)
