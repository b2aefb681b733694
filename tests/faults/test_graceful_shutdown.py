"""A deploy stops the worker (SIGTERM) while a clinician's step is being stored.

The append is held up by a lock on `events` (an admin transaction), then the worker is told to
stop. What it proves: the worker waits for the activity in flight (up to
WORKER_GRACEFUL_SHUTDOWN_SECONDS) instead of abandoning it, exits 0, and the completion it
reported is not lost: the next worker carries the step to the clinician without running the
append again. An append that outlives the grace period is cut off and reported, so the next
worker retries it at once (not after the 10 s attempt timeout), and it is still stored once.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client

from course.commands import RecordIntentions
from course.policy import CoursePolicy
from course.view import StepOutcome
from tests import story
from tests.faults.clinic import eligibility_answered, opening
from tests.faults.conftest import Rig
from tests.faults.harness import WorkerProcess, table_locked, waiting_for_lock
from workflows.inputs import workflow_id

pytestmark = pytest.mark.faults

GRACE = 10.0  # WORKER_GRACEFUL_SHUTDOWN_SECONDS
HELD = 2.0  # how long the append stays blocked after SIGTERM
STORED = Counter(
    ["CourseOpened", "EligibilityChecked", "AssessmentRecorded", "CandidacyConfirmed", "IntentionsRecorded"]
)


async def test_sigterm_lets_the_append_in_flight_finish_and_its_completion_is_kept(rig: Rig) -> None:
    worker, course = await _assessed_course(rig, "pt-graceful", GRACE)
    async with table_locked(rig.dsn, "events"):
        step = await _step_caught_on_the_lock(rig, course)
        worker.terminate()
        stopped = time.monotonic()
        await asyncio.sleep(HELD)
        assert worker.alive, "the worker quit with an activity in flight"
    code = await worker.exited(within=GRACE + 10)
    shutdown = time.monotonic() - stopped
    assert code == 0
    assert shutdown < GRACE, f"shutdown took {shutdown:.1f}s: the activity was cut off at the timeout"
    assert not step.done(), "the step finished with no worker running"

    answered = await _restart_and_answer(rig, worker, step)
    attempts = await _completed_attempts(rig.client.temporal, workflow_id(course))
    assert attempts == [1] * len(attempts), f"an activity ran twice: its completion was lost ({attempts})"
    events = await rig.audit.course(course, STORED, timers=False)
    assert (await step).version == events[-1].version
    rig.ledger.graceful_stops += 1
    print(
        f"\ngraceful shutdown: SIGTERM with an append in flight; worker exited 0 after {shutdown:.1f}s "
        f"(limit {GRACE:.0f}s, lock held {HELD:.0f}s); the next worker answered the clinician {answered:.1f}s "
        f"after it started; {len(attempts)} activities, each completed on its first attempt"
    )


async def test_an_append_that_outlives_the_grace_period_is_cut_off_and_retried_at_once(rig: Rig) -> None:
    grace = 2.0
    worker, course = await _assessed_course(rig, "pt-graceful-late", grace)
    async with table_locked(rig.dsn, "events"):
        step = await _step_caught_on_the_lock(rig, course)
        worker.terminate()
        stopped = time.monotonic()
        code = await worker.exited(within=grace + 10)  # the lock is still held: it must not wait for it
        shutdown = time.monotonic() - stopped
    assert code == 0
    assert shutdown < grace + 5, f"shutdown took {shutdown:.1f}s with a {grace:.0f}s grace period"

    answered = await _restart_and_answer(rig, worker, step)
    assert answered < 25, f"the clinician waited {answered:.0f}s"
    attempts = await _completed_attempts(rig.client.temporal, workflow_id(course))
    assert attempts[-1] == 2 and attempts[:-1] == [1] * (len(attempts) - 1), attempts
    # Reported as cut off, so retried at once: the first attempt did not end by timing out.
    assert await _last_retry_cause(rig.client.temporal, workflow_id(course)) == "cut_off"
    events = await rig.audit.course(course, STORED, timers=False)
    assert (await step).version == events[-1].version
    rig.ledger.graceful_stops += 1
    print(
        f"\ngraceful timeout: append still blocked at the {grace:.0f}s grace limit; worker exited 0 after "
        f"{shutdown:.1f}s; the next worker retried it at once and answered {answered:.1f}s after it started; "
        "stored once"
    )


async def _assessed_course(rig: Rig, patient: str, grace: float) -> tuple[WorkerProcess, str]:
    """A running worker and an idle course (assessed, eligibility answered)."""
    worker = rig.worker(graceful_seconds=grace)
    worker.start()
    await worker.ready(rig.client.temporal)
    course = str(await rig.client.open(opening(patient, 2, CoursePolicy())))
    rig.ledger.courses += 1
    await rig.client.record(course, story.assessment(), story.PRESCRIBER)
    await eligibility_answered(rig.client, course)
    return worker, course


async def _step_caught_on_the_lock(rig: Rig, course: str) -> asyncio.Task[StepOutcome]:
    """The therapist records intentions; its append is left waiting on the locked table."""
    goals = RecordIntentions(goals="Sleep through the night")
    step = asyncio.create_task(rig.client.record(course, goals, story.THERAPIST, request_id=f"{course}:intentions"))
    await _until(lambda: waiting_for_lock(rig.dsn, "events"), "the append never reached the locked table")
    return step


async def _restart_and_answer(rig: Rig, worker: WorkerProcess, step: asyncio.Task[StepOutcome]) -> float:
    """Start the next worker; seconds until the waiting clinician has the answer."""
    restarted = time.monotonic()
    worker.start()
    await worker.ready(rig.client.temporal)
    await asyncio.wait_for(step, timeout=60)
    return time.monotonic() - restarted


async def _until(probe: Callable[[], Awaitable[int]], failure: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await probe():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(failure)


async def _last_retry_cause(client: Client, stream: str) -> str:
    """Why the last retried activity needed its second attempt: `timeout` or `cut_off`."""
    cause = "none"
    async for event in client.get_workflow_handle(stream).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started = event.activity_task_started_event_attributes
            if started.attempt > 1:
                timed_out = started.last_failure.HasField("timeout_failure_info")
                cause = "timeout" if timed_out else "cut_off"
    return cause


async def _completed_attempts(client: Client, stream: str) -> list[int | None]:
    """The attempt each scheduled activity completed on (None: it never completed)."""
    scheduled: list[int] = []
    started: dict[int, int] = {}
    completed: dict[int, int] = {}
    async for event in client.get_workflow_handle(stream).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            scheduled.append(event.event_id)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            attributes = event.activity_task_started_event_attributes
            started[attributes.scheduled_event_id] = attributes.attempt
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            scheduled_id = event.activity_task_completed_event_attributes.scheduled_event_id
            completed[scheduled_id] = started[scheduled_id]
    return [completed.get(event_id) for event_id in scheduled]
