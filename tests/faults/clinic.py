"""A busy clinic under faults: courses driven from assessment to completion the way clinicians'
tools drive them, one request id per step (reused by every retry of that step)."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from uuid import UUID

from temporalio.client import WorkflowUpdateRPCTimeoutOrCancelledError
from temporalio.service import RPCError, RPCStatusCode

from application.courses import CourseClient, CourseNotFound, StepTimedOut
from course.commands import Actor, ClinicianCommand, MaintenanceKind
from course.policy import CoursePolicy
from course.view import StepOutcome
from tests import story
from tests.faults.audit import Ledger, diagnose
from workflows.inputs import OpenCourse, workflow_id

T = TypeVar("T")

# Sessions are booked an hour ahead; the patient's reminder fires 3 s after booking unless the
# dose comes first. Every other reminder and overdue flag fires within seconds, so timers, the
# notification outbox and their appends all run while workers crash; deadlines stay far away so
# no course lapses while it waits out a fault.
SESSION_AHEAD = timedelta(hours=1)
SHRUNK = CoursePolicy(
    assessment_reminder_after=timedelta(seconds=2),
    assessment_deadline=timedelta(hours=2),
    preparation_reminder_after=timedelta(seconds=3),
    preparation_deadline=timedelta(hours=2),
    clearance_reminder_after=timedelta(seconds=2),
    session_reminder_lead=SESSION_AHEAD - timedelta(seconds=3),
    integration_reminder_after=timedelta(seconds=2),
    integration_due_within=timedelta(seconds=4),
    integration_gap_reminder=timedelta(seconds=3),
)


def expected_events(sessions: int) -> Counter[str]:
    """A whole course, assessment to `maintenance plan: none`, as clinical facts."""
    once = [
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
        "DosingSeriesCompleted",
        "MaintenancePlanRecorded",
        "CourseClosed",
    ]
    per_session = ["SessionScheduled", "CheckedIn", "DosingSessionCompleted", "IntegrationSessionRecorded"]
    return Counter(once) + Counter(dict.fromkeys(per_session, sessions)) + Counter(["IntegrationSessionRecorded"])


@dataclass
class Clinic:
    """Clinicians' tools: one request id per step, reused for every attempt of that step."""

    client: CourseClient
    ledger: Ledger
    rng: random.Random = field(default_factory=lambda: random.Random(9))
    think: tuple[float, float] = (0.0, 0.0)  # seconds a clinician takes between steps
    step_timeout: float = 180.0  # a step may wait out dead workers and 30 s activity timeouts, not more
    # Only across a Temporal server restart may a call fail outright (connection refused, an
    # admitted update the restarted server forgot); the tool then retries with the same id.
    retry_transient: bool = False
    in_flight: int = 0
    peak_in_flight: int = 0
    opened: list[UUID] = field(default_factory=list)
    calls: list[tuple[float, float]] = field(default_factory=list)  # (sent, answered), monotonic

    async def open(self, request: OpenCourse) -> UUID:
        return await self._call(workflow_id(request.course_id), "open", lambda: self.client.open(request))

    async def record(self, course: str, command: ClinicianCommand, actor: Actor, request_id: str) -> StepOutcome:
        return await self._call(
            workflow_id(course),
            request_id,
            # The clinic's own budget for a step is the client's deadline too.
            lambda: self.client.record(course, command, actor, request_id=request_id, within=self.step_timeout),
        )

    async def _call(self, stream: str, what: str, attempt: Callable[[], Awaitable[T]]) -> T:
        sent = time.monotonic()
        deadline = sent + self.step_timeout
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            while True:
                try:
                    async with asyncio.timeout(max(deadline - time.monotonic(), 0.1)):
                        result = await attempt()
                    self.calls.append((sent, time.monotonic()))
                    return result
                except (
                    TimeoutError,
                    StepTimedOut,  # the client's own deadline, the clinic's budget: diagnosed below
                    RPCError,
                    WorkflowUpdateRPCTimeoutOrCancelledError,
                    CourseNotFound,
                ) as error:
                    if time.monotonic() >= deadline:
                        where = await diagnose(self.client.temporal, stream)
                        raise AssertionError(f"{what}: no answer in {self.step_timeout:.0f}s\n{where}") from error
                    if not (self.retry_transient and _transient(error)):
                        raise
                    self.ledger.retries[_name(error)] += 1
                    await asyncio.sleep(0.5)
        finally:
            self.in_flight -= 1

    async def run_course(
        self, request: OpenCourse, sessions: int, *, before_closing: asyncio.Event | None = None
    ) -> UUID:
        """Open the course and record every step to `maintenance plan: none` (completed)."""
        course_id = await self.open(request)
        self.opened.append(course_id)
        course = str(course_id)

        async def step(name: str, actor: Actor, command: ClinicianCommand) -> None:
            await asyncio.sleep(self.rng.uniform(*self.think))
            await self.record(course, command, actor, f"{course}:{name}")

        await step("assessment", story.PRESCRIBER, story.assessment())
        for actor, command in story.preparation(_now() - timedelta(seconds=1), planned_sessions=sessions):
            await step(command.step, actor, command)  # type: ignore[attr-defined, arg-type]
        for n in range(1, sessions + 1):
            await step(f"schedule-{n}", story.OPERATIONS, story.schedule(n, _now() + SESSION_AHEAD))
            await step(f"check-in-{n}", story.NURSE, story.check_in(n))
            await step(f"dose-{n}", story.NURSE, story.dose(n))
            await step(f"integration-{n}", story.THERAPIST, story.integration(_now() - timedelta(seconds=1)))
        await step("integration-after", story.THERAPIST, story.integration(_now() - timedelta(seconds=1)))
        if before_closing is not None:
            await before_closing.wait()
        plan = story.maintenance_plan(kind=MaintenanceKind.NONE, interval_days=None)
        await step("maintenance-plan", story.PRESCRIBER, plan)
        return course_id


def _transient(error: Exception) -> bool:
    if isinstance(error, RPCError):
        return error.status in (
            RPCStatusCode.UNAVAILABLE,
            RPCStatusCode.DEADLINE_EXCEEDED,
            RPCStatusCode.CANCELLED,
            RPCStatusCode.NOT_FOUND,  # an update admitted before the restart, forgotten by it
            RPCStatusCode.UNKNOWN,
            RPCStatusCode.INTERNAL,
        )
    return True


def _name(error: Exception) -> str:
    if isinstance(error, RPCError):
        return f"RPCError.{error.status.name}"
    return type(error).__name__


def _now() -> datetime:
    return datetime.now(UTC)


def opening(patient: str, sessions: int, policy: CoursePolicy = SHRUNK) -> OpenCourse:
    return story.opening(policy=policy, patient_id=patient).model_copy(update={"planned_sessions": sessions})


async def eligibility_answered(client: CourseClient, course: UUID | str, within: float = 30.0) -> None:
    """The payer's answer is stored on its own after opening, racing the first steps: wait
    (bounded) until it is, so an audit of a course still open reads a settled stream."""
    deadline = time.monotonic() + within
    while (await client.status(str(course))).insurance is None:
        if time.monotonic() > deadline:
            raise AssertionError(f"no eligibility answer for {course} after {within:.0f}s")
        await asyncio.sleep(0.05)
