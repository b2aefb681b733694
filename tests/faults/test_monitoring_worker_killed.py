"""A patient in the chair while the only worker is SIGKILLed, twice.

The dose is given and the worker dies; the blood-pressure recheck falls due and goes late while no
worker runs. A new worker process picks the course up from its history, tells the nurse on duty
once, and takes two high readings (one review for the prescriber); it is killed again across the
escalation mark, and the next one escalates once. Then the discharge: every notification of the
chair is in the outbox exactly once, and the stream, the summary and the workflow agree (the
fault suite's audit).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from course.commands import AdministerDose
from course.policy import CoursePolicy, MonitoringPolicy
from tests import story
from tests.faults.audit import TIMER_EVENTS
from tests.faults.clinic import eligibility_answered, opening
from tests.faults.conftest import Rig
from workflows.inputs import workflow_id

pytestmark = pytest.mark.faults

# Seconds, not minutes: the clocks of issue 18 shrunk so the test runs in real time.
CHAIR = MonitoringPolicy(
    minimum_observation={"iv_infusion": timedelta(seconds=20)},
    first_recheck_after=timedelta(seconds=12),
    late_after=timedelta(seconds=4),
    recheck_every=timedelta(seconds=30),
    escalate_after=timedelta(seconds=40),
)


async def sent(rig: Rig, stream: str) -> Counter[str]:
    rows = await rig.pool.fetch("SELECT purpose FROM notifications WHERE stream_id = $1", stream)
    return Counter(row["purpose"] for row in rows)


async def notified(rig: Rig, stream: str, purpose: str, within: float = 60.0) -> int:
    deadline = time.monotonic() + within
    for _ in range(int(within / 0.1)):  # bounded polling: the outbox is another process's
        if (counts := await sent(rig, stream))[purpose] or time.monotonic() > deadline:
            return counts[purpose]
        await asyncio.sleep(0.1)
    return (await sent(rig, stream))[purpose]


async def until(moment: datetime) -> None:
    """Let the wall clock pass a moment the chair's timers are set against."""
    await asyncio.sleep(max((moment - datetime.now(UTC)).total_seconds(), 0.0))


async def test_the_chair_clocks_fire_once_while_the_worker_is_killed(rig: Rig) -> None:
    client = rig.client
    (worker,) = await rig.started("chair-worker")
    course = str(await client.open(opening("pt-chair-kill", 1, CoursePolicy(monitoring=CHAIR))))
    stream = workflow_id(course)
    rig.ledger.courses += 1
    await eligibility_answered(client, course)
    await client.record(course, story.assessment(), story.PRESCRIBER)
    for actor, command in story.preparation(datetime.now(UTC), planned_sessions=1):
        await client.record(course, command, actor)  # type: ignore[arg-type]
    await client.record(course, story.schedule(1, datetime.now(UTC) + timedelta(hours=1)), story.OPERATIONS)
    await client.record(course, story.check_in(1), story.NURSE)
    given = datetime.now(UTC)
    dose = {"session_number": 1, "route": "iv_infusion", "dose_mg_per_kg": 0.5, "given_at": given}
    await client.record(course, AdministerDose.model_validate(dose), story.NURSE)

    worker.kill()  # the recheck is armed; nothing runs while it goes late
    rig.ledger.crashes += 1
    await until(given + CHAIR.first_recheck_after + CHAIR.late_after + timedelta(seconds=2))
    assert (await sent(rig, stream))["monitoring_recheck_late"] == 0
    worker.start()
    await worker.ready(client.temporal)
    assert await notified(rig, stream, "monitoring_recheck_late") == 1
    await client.record(course, story.reading(datetime.now(UTC), 165), story.NURSE)
    await client.record(course, story.reading(datetime.now(UTC), 168), story.NURSE)
    assert await notified(rig, stream, "monitoring_review") == 1
    await client.record(course, story.reading(datetime.now(UTC), 130), story.NURSE)

    worker.kill()  # again, across the escalation mark
    rig.ledger.crashes += 1
    await until(given + CHAIR.escalate_after + timedelta(seconds=2))
    assert (await sent(rig, stream))["monitoring_escalation"] == 0
    worker.start()
    await worker.ready(client.temporal)
    assert await notified(rig, stream, "monitoring_escalation") == 1
    await client.record(course, story.reading(datetime.now(UTC), 128), story.NURSE)
    view = await client.record(course, story.discharge(datetime.now(UTC)), story.NURSE)
    assert "discharge" not in view.awaiting

    counts = await sent(rig, stream)
    chair = {p: counts[p] for p in ("monitoring_recheck_late", "monitoring_review", "monitoring_escalation")}
    assert chair == dict.fromkeys(chair, 1)
    stored = await rig.pool.fetch("SELECT type FROM events WHERE stream_id = $1", stream)
    clinical = Counter(row["type"] for row in stored if row["type"] not in TIMER_EVENTS)
    assert clinical["DoseAdministered"] == clinical["PatientDischarged"] == 1
    assert clinical["MonitoringReadingRecorded"] == 4 and clinical["ClinicalReviewRequired"] == 1
    # Versions 1..n, no fact or timer key twice, the outbox holds each reminder once, the summary
    # and fold(stream) equal the workflow's state, and no workflow task failed on a bug.
    await rig.audit.course(course, clinical)
