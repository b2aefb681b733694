"""A busy morning: two workers share the task queue, and each course gets a burst of steps at
the same moment (the whole dosing calendar booked at once, the patient checked in from three
tablets, a retried booking, and two steps that break a rule).

What it proves: handlers interleave while appends run, yet every accepted step is stored once,
in versions without gaps; a step that the validator let through but that a step ahead of it
made invalid is rejected under the lock and leaves nothing; rejected steps leave nothing; both
workers carry the load. The server admits 10 updates in flight per course: the rest are told
RESOURCE_EXHAUSTED, which the course client absorbs by sending them again (bounded, jittered),
so every caller gets the step's own answer, never the raw RPC error.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.service import RetryConfig

from application.courses import CourseClient, StepRejected
from course.events import SessionScheduled
from course.policy import CoursePolicy
from tests import story
from tests.faults.clinic import Clinic, eligibility_answered, opening
from tests.faults.conftest import Rig
from workflows.inputs import workflow_id

pytestmark = pytest.mark.faults

COURSES = 6
SESSIONS = 12  # the policy's maximum: the whole calendar is booked in one burst
PREPARED = Counter(
    [
        "CourseOpened",
        "EligibilityChecked",
        "AssessmentRecorded",
        "CandidacyConfirmed",
        "FinancialClearanceRecorded",
        "IntentionsRecorded",
        "ConsentRecorded",
        "SupportPersonRecorded",
        "DosingPlanRecorded",
        "OrientationRecorded",
        "PreparationCompleted",
    ]
)


async def test_bursts_of_steps_on_two_workers_are_each_stored_once_in_order(rig: Rig) -> None:
    pair = await rig.started("worker-1", "worker-2")
    clinic_client, audit, ledger = rig.client, rig.audit, rig.ledger
    clinic = Clinic(clinic_client, ledger)
    courses = await asyncio.gather(*(_prepared(clinic, f"pt-burst-{i}") for i in range(COURSES)))
    ledger.courses += COURSES

    clinic.peak_in_flight = 0
    outcomes = await asyncio.gather(*(_burst(clinic, course) for course in courses))
    assert clinic.peak_in_flight > 10 * COURSES, clinic.peak_in_flight

    interleaved = 0
    for course, outcome in zip(courses, outcomes, strict=True):
        assert outcome["schedule"] == ["ok"] * (SESSIONS + 2), outcome  # 12 bookings + 2 retries of the first
        assert sorted(outcome["check-in"]) == ["already_checked_in", "already_checked_in", "ok"], outcome
        assert outcome["invalid"] == ["held_in_future", "session_out_of_order"], outcome
        events = await audit.course(
            course, PREPARED + Counter({"SessionScheduled": SESSIONS, "CheckedIn": 1}), timers=False
        )
        booked = [e.event.session_number for e in events if isinstance(e.event, SessionScheduled)]
        assert sorted(booked) == list(range(1, SESSIONS + 1))
        interleaved += len(await _rejected_after_acceptance(clinic_client.temporal, workflow_id(course)))

    identities = set()
    for course in courses:
        identities |= await _identities(clinic_client.temporal, workflow_id(course))
    assert {f"{w.pid}@" for w in pair} <= {i.split("@")[0] + "@" for i in identities}, identities
    # Validators ran before the first check-in was stored, so its rivals were accepted and then
    # rejected by the handler's second decide, under the lock.
    assert interleaved > 0
    print(
        f"\nconcurrency: {COURSES} courses x {SESSIONS + 7} steps at once (peak {clinic.peak_in_flight} in flight) "
        f"on 2 workers; {interleaved} steps accepted by the validator then rejected under the lock; "
        f"workflow task failures {dict(audit.workflow_task_failures) or 'none'}; "
        f"steps sent again {dict(clinic_client.resends) or 'none'}"
    )


async def test_twenty_steps_at_one_course_at_once_are_all_answered_without_a_raw_rpc_error(rig: Rig) -> None:
    """Twice the server's in-flight limit at one course: the whole calendar booked and eight
    integration sessions entered at the same moment, while its worker restarts (a deploy), so
    none can finish and the server refuses every step past the tenth. Each caller still gets its
    own answer once the worker is back.

    The SDK's own RPC retries sometimes absorb RESOURCE_EXHAUSTED and sometimes run out (a loaded
    CI machine): this client has none, so the course client alone must carry the burst."""
    (worker,) = await rig.started("worker")
    temporal = rig.client.temporal
    bare = await Client.connect(
        temporal.service_client.config.target_host,
        namespace=temporal.namespace,
        data_converter=temporal.data_converter,
        retry_config=RetryConfig(max_retries=0),
    )
    client = CourseClient(bare, rig.queue)
    clinic = Clinic(client, rig.ledger)
    course = await _prepared(clinic, "pt-burst-20")
    rig.ledger.courses += 1
    worker.terminate()
    assert await worker.exited(within=30) == 0

    later = datetime.now(UTC) + timedelta(days=2)
    held = datetime.now(UTC) - timedelta(days=1)
    steps = [
        clinic.record(course, story.schedule(n, later + timedelta(days=n)), story.OPERATIONS, f"{course}:book-{n}")
        for n in range(1, SESSIONS + 1)
    ] + [
        clinic.record(course, story.integration(held + timedelta(hours=n)), story.THERAPIST, f"{course}:int-{n}")
        for n in range(8)
    ]
    burst = asyncio.gather(*steps, return_exceptions=True)
    loop = asyncio.get_running_loop()
    give_up = loop.time() + 30
    while not client.resends["RESOURCE_EXHAUSTED"]:
        assert loop.time() < give_up, f"the burst never reached the server's in-flight limit: {dict(client.resends)}"
        await asyncio.sleep(0.05)
    worker.start()
    await worker.ready(temporal)

    results = await burst
    raw = [repr(r) for r in results if isinstance(r, BaseException)]
    assert not raw, raw  # no RPCError, no timeout, no rule refusal: every step was valid and answered
    expected = PREPARED + Counter({"SessionScheduled": SESSIONS, "IntegrationSessionRecorded": 8})
    await rig.audit.course(course, expected, timers=False)
    print(f"\nburst of 20 at one course: steps sent again {dict(client.resends)}")


async def _prepared(clinic: Clinic, patient: str) -> str:
    # Session 1 is booked an hour ahead (within its check-in window): its reminder, half an hour
    # before, falls after the test, so every stream holds exactly the steps sent.
    calm = CoursePolicy(session_reminder_lead=timedelta(minutes=30))
    course = str(await clinic.open(opening(patient, SESSIONS, calm)))
    await eligibility_answered(clinic.client, course)
    await clinic.record(course, story.assessment(), story.PRESCRIBER, f"{course}:assessment")
    for actor, command in story.preparation(datetime.now(UTC) - timedelta(seconds=1), planned_sessions=SESSIONS):
        await clinic.record(course, command, actor, f"{course}:{command.step}")  # type: ignore[arg-type, attr-defined]
    return course


async def _burst(clinic: Clinic, course: str) -> dict[str, list[str]]:
    """Nineteen steps to one course at the same moment; what each came back with. The three
    check-ins go first, so all three are admitted together and their validators all pass before
    the first is stored: two of them are then refused under the lock."""
    # Session 1 within its check-in window (two hours before), so a check-in's answer is about
    # check-in itself whether or not its booking lands first.
    later = datetime.now(UTC) + timedelta(hours=1) - timedelta(days=1)
    check_in = [
        clinic.record(course, story.check_in(1), story.NURSE, f"{course}:check-in-tablet-{t}") for t in range(3)
    ]
    schedule = [
        clinic.record(course, story.schedule(n, later + timedelta(days=n)), story.OPERATIONS, f"{course}:book-{n}")
        for n in range(1, SESSIONS + 1)
    ]
    schedule += [
        clinic.record(course, story.schedule(1, later + timedelta(days=1)), story.OPERATIONS, f"{course}:book-1")
        for _ in range(2)
    ]
    invalid = [
        clinic.record(course, story.schedule(SESSIONS + 1, later), story.OPERATIONS, f"{course}:book-13"),
        clinic.record(
            course, story.integration(later + timedelta(days=1)), story.THERAPIST, f"{course}:integration-tomorrow"
        ),
    ]
    results = await asyncio.gather(*check_in, *schedule, *invalid, return_exceptions=True)
    codes = [_code(r) for r in results]
    return {
        "check-in": codes[:3],
        "schedule": codes[3 : 3 + len(schedule)],
        "invalid": sorted(codes[3 + len(schedule) :]),
    }


def _code(result: object) -> str:
    if isinstance(result, StepRejected):
        return result.code
    if isinstance(result, BaseException):
        raise result
    return "ok"


async def _rejected_after_acceptance(client: Client, stream: str) -> list[str]:
    """Updates that failed after being accepted (a validator's rejection leaves no history)."""
    failed = []
    async for event in client.get_workflow_handle(stream).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            attributes = event.workflow_execution_update_completed_event_attributes
            if attributes.outcome.HasField("failure"):
                failed.append(attributes.meta.update_id)
    return failed


async def _identities(client: Client, stream: str) -> set[str]:
    """Which worker processes ran this course's workflow and activity tasks."""
    found = set()
    async for event in client.get_workflow_handle(stream).fetch_history_events():
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            found.add(event.workflow_task_started_event_attributes.identity)
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            found.add(event.activity_task_started_event_attributes.identity)
    return found
