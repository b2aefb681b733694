"""A worker host that keeps dying: fifty courses carried from assessment to completion while the
only worker process is SIGKILLed at random moments and restarted each time.

What it proves: a step a clinician records while no worker runs waits and is applied once a
worker is back; an append or a notification cut off mid-flight is retried and stored once; every
course completes with exactly its clinical facts, versions 1..n, and PostgreSQL agrees with the
workflow's state.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.faults.audit import moved_past, position
from tests.faults.clinic import Clinic, expected_events, opening
from tests.faults.conftest import Rig
from workflows.inputs import workflow_id
from workflows.treatment_course import TreatmentCourseWorkflow

pytestmark = pytest.mark.faults

COURSES = 50
SESSIONS = 2
CRASHES = 6  # at least 5, as the issue asks
RUN_BOUND = 300.0  # seconds for the whole life cycle of every course, crashes included


async def test_fifty_courses_complete_exactly_once_while_the_worker_is_killed_at_random(rig: Rig) -> None:
    rng, ledger, pool = rig.rng(1), rig.ledger, rig.pool
    clinic = Clinic(rig.client, ledger, rng=rig.rng(2), think=(0.0, 0.6))
    (worker,) = await rig.started("crashing-worker")

    # The last step waits for the crashes to be over, so every crash lands on open courses.
    crashes_over = asyncio.Event()
    started = time.monotonic()
    courses = [
        asyncio.create_task(
            clinic.run_course(opening(f"pt-crash-{i:03d}", SESSIONS), SESSIONS, before_closing=crashes_over)
        )
        for i in range(COURSES)
    ]
    ledger.courses += COURSES
    stranded = 0  # clinician steps waiting on the workflow when the worker died
    down: list[tuple[float, float]] = []  # from each SIGKILL until the next worker polls
    try:
        for _ in range(CRASHES):
            # Kill a worker that is doing work: something was stored since it started.
            mark = await position(pool)
            assert await moved_past(pool, mark, within=60), "the restarted worker stored nothing in 60 s"
            await asyncio.sleep(rng.uniform(0.1, 1.5))
            stranded += clinic.in_flight
            worker.kill()
            killed = time.monotonic()
            ledger.crashes += 1
            await asyncio.sleep(rng.uniform(0.5, 3.0))  # steps recorded now wait for a worker
            worker.start()
            await worker.ready(rig.client.temporal)
            down.append((killed, time.monotonic()))
        crashes_over.set()
        done, pending = await asyncio.wait(courses, timeout=RUN_BOUND)
        assert not pending, f"{len(pending)} courses not completed within {RUN_BOUND:.0f}s"
        ids = [task.result() for task in done]
    finally:
        crashes_over.set()
        for task in courses:
            task.cancel()
    elapsed = time.monotonic() - started
    # Steps a clinician sent while no worker ran: each waited, then was applied (audited below).
    sent_while_down = sum(any(dead <= sent < back for dead, back in down) for sent, _ in clinic.calls)
    assert sent_while_down > 0

    expected = expected_events(SESSIONS)
    timer_facts, retried, already = 0, ledger.appends_retried, ledger.appends_already_stored
    for course in ids:
        handle = rig.client.temporal.get_workflow_handle_for(TreatmentCourseWorkflow.run, workflow_id(course))
        assert (await handle.result()).outcome == "completed"
        events = await rig.audit.course(course, expected)
        timer_facts += sum(e.type in ("ReminderSent", "FollowUpOverdue") for e in events)
    retried, already = ledger.appends_retried - retried, ledger.appends_already_stored - already
    print(
        f"\nworker crash: {COURSES} courses completed in {elapsed:.0f}s across {len(worker.pids)} worker processes; "
        f"{CRASHES} SIGKILLs with {stranded} clinician steps in flight, {sent_while_down} more sent while no worker "
        f"ran (all waited and were applied once); {timer_facts} timer facts, {rig.audit.uncertain_deliveries} "
        f"reminders left delivery_uncertain, {rig.audit.eligibility_after_close} payer answers came after the "
        f"course closed; appends retried {retried} ({already} found their events already "
        f"stored); "
        f"workflow task failures {dict(rig.audit.workflow_task_failures) or 'none'}"
    )
