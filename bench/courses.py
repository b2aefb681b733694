"""The course every benchmark runs: a full six-session life cycle, driven through Temporal or
simulated offline through the decider (for the event-store benchmarks).

Policy, shrunk where the clock matters: a session is scheduled an hour ahead and the "day before"
reminder fires 250 ms after scheduling, so each of the six reminders is a real timer that
fires, a notification and a ReminderSent event, and the driver waits for it before checking the
patient in. Every other duration stays clinical (days), so no other timer fires during a run and
the amount of work per course is the same in every run.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol, cast
from uuid import UUID

import asyncpg
from temporalio.client import Client, WorkflowUpdateRPCTimeoutOrCancelledError

from activities.event_store import PostgresEventStore
from activities.ports import CourseSummary, OutgoingMessage
from application.courses import CourseClient, StepTimedOut
from bench import common
from bench.baseline_workflows import CourseShapeWorkflow, Shape, ShapeStep
from course.commands import (
    SYSTEM_ACTOR,
    Actor,
    AdministerDose,
    Command,
    InsuranceStatus,
    MaintenanceKind,
    RecordEligibility,
    Route,
    Tick,
)
from course.decider import decide
from course.events import EventEnvelope, EventMetadata
from course.policy import CoursePolicy, MonitoringPolicy
from course.state import CourseState, fold
from tests import story
from worker.database import create_pool
from workflows.inputs import OpenCourse, workflow_id

SESSIONS = 6
SCHEDULE_AHEAD = timedelta(hours=1)
REMINDER_AFTER = timedelta(milliseconds=250)
# Seconds a driver waits for a reminder before calling the run broken (1,000 courses queue a lot).
REMINDER_WAIT = float(os.environ.get("BENCH_REMINDER_WAIT", "600"))
# An update call that times out (the worker is far behind) is sent again with the same id.
UPDATE_ATTEMPTS = 10


def shrunk_policy() -> CoursePolicy:
    return CoursePolicy(session_reminder_lead=SCHEDULE_AHEAD - REMINDER_AFTER)


def maintenance_policy(day: timedelta = timedelta(milliseconds=10)) -> CoursePolicy:
    """The shrunk policy with a short maintenance "day": a 30-day interval passes in 30 x `day`,
    its reminder fires 10 days' worth before, and the overdue flag stays out of reach."""
    return CoursePolicy(
        session_reminder_lead=SCHEDULE_AHEAD - REMINDER_AFTER,
        day_length=day,
        maintenance_reminder_lead=day * 10,
        maintenance_grace=timedelta(minutes=10),
    )


def opening(course_id: UUID | None = None, policy: CoursePolicy | None = None) -> OpenCourse:
    request = story.opening(course_id, policy=policy or shrunk_policy())
    return request.model_copy(update={"planned_sessions": SESSIONS})


@dataclass(frozen=True)
class Step:
    """One clinician step; `reminders` > 0: wait until that many reminders reached the patient."""

    name: str
    build: Callable[[datetime], tuple[Actor, Command]]
    reminders: int = 0


def full_course(sessions: int = SESSIONS, *, schedule: bool = True) -> list[Step]:
    """Assessment, six preparation steps, then per session: schedule (and its reminder), check in,
    dose, integration; then maintenance plan `none`, which completes the course. Without
    `schedule`, sessions are checked in unannounced: no reminders, 26 updates instead of 32."""
    steps = [Step("assessment", lambda now: (story.PRESCRIBER, story.assessment()))]
    for index in range(len(story.preparation(datetime.now(UTC), sessions))):
        steps.append(Step("preparation", _preparation(index, sessions)))
    for n in range(1, sessions + 1):
        if schedule:
            steps.append(Step("schedule-session", _session(n, _scheduled), n))
        steps += [
            Step("check-in", _session(n, lambda n, now: (story.NURSE, story.check_in(n)))),
            Step("dosing-session", _session(n, lambda n, now: (story.NURSE, story.dose(n)))),
            Step("integration-session", lambda now: (story.THERAPIST, story.integration(now))),
        ]
    steps.append(
        Step(
            "maintenance-plan",
            lambda now: (story.PRESCRIBER, story.maintenance_plan(MaintenanceKind.NONE, None)),
        )
    )
    return steps


def monitored_policy() -> CoursePolicy:
    """The shrunk policy with monitoring whose clocks never fire within a run: the minimum
    observation is a millisecond, so a discharge right after one reading is safe."""
    quick = {route.value: timedelta(milliseconds=1) for route in Route}
    return shrunk_policy().model_copy(
        update={"monitoring": MonitoringPolicy(minimum_observation=quick, first_recheck_after=timedelta(hours=1))}
    )


def monitored_course(sessions: int = SESSIONS) -> list[Step]:
    """The full course with each dose monitored: dose-administered, one reading and a discharge
    where the one-step course records dosing-session (two updates more per session)."""
    steps: list[Step] = []
    for step in full_course(sessions):
        if step.name != "dosing-session":
            steps.append(step)
            continue
        n = int(step.build(datetime.now(UTC))[1].session_number)  # type: ignore[union-attr]
        steps += [
            Step("dose-administered", _session(n, lambda n, now: (story.NURSE, _given(n, now)))),
            Step("monitoring-reading", _session(n, lambda n, now: (story.NURSE, story.reading(now, n=n)))),
            Step("discharge", _session(n, lambda n, now: (story.NURSE, story.discharge(now, n)))),
        ]
    return steps


def in_the_chair(done: int = SESSIONS // 2) -> list[Step]:
    """A monitored course through `done` sessions, then the next one checked in, dosed and read
    twice: a patient in the chair after the dose, with its clocks running (the memory benchmark's
    monitored counterpart of `mid_dosing`)."""
    steps = monitored_course()
    finished = 7 + 6 * done  # assessment, six preparation steps, six steps per monitored session
    chair = steps[finished : finished + 4]  # schedule, check-in, dose-administered, a reading
    return [*steps[:finished], *chair, chair[-1]]


Build = Callable[[datetime], tuple[Actor, Command]]


def _preparation(index: int, sessions: int) -> Build:
    def build(now: datetime) -> tuple[Actor, Command]:
        actor, command = story.preparation(now, sessions)[index]
        return actor, cast(Command, command)

    return build


def _session(n: int, make: Callable[[int, datetime], tuple[Actor, Command]]) -> Build:
    """Session `n`'s step: binds `n` now, not when the loop that made the step has moved on."""
    return lambda now: make(n, now)


def _scheduled(n: int, now: datetime) -> tuple[Actor, Command]:
    return story.OPERATIONS, story.schedule(n, now + SCHEDULE_AHEAD)


def _given(n: int, now: datetime) -> AdministerDose:
    return AdministerDose(session_number=n, route=Route.IV_INFUSION, dose_mg_per_kg=0.5, given_at=now)


def until_maintenance(sessions: int = SESSIONS, interval_days: int = 90) -> list[Step]:
    """The same course, ending in a maintenance plan instead of closing."""
    steps = full_course(sessions)[:-1]
    steps.append(
        Step(
            "maintenance-plan",
            lambda now: (story.PRESCRIBER, story.maintenance_plan(MaintenanceKind.KETAMINE, interval_days)),
        )
    )
    return steps


def mid_dosing(done: int = SESSIONS // 2) -> list[Step]:
    """Assessment, preparation and `done` sessions with their integration: mid-dosing."""
    return full_course()[: 7 + 4 * done]


class Waits(Protocol):
    """What a driver waits on for a course's reminders: this module's board, or bench.memory's
    outbox reader (its worker runs in another process)."""

    async def wait(self, stream_id: str, count: int) -> None: ...


class ReminderBoard:
    """A notification channel that counts deliveries per course, so a driver can wait for them."""

    name = "bench"

    def __init__(self) -> None:
        self._delivered: dict[str, int] = {}
        self._changed: dict[str, asyncio.Event] = {}

    def notify(self, stream_id: str) -> None:
        self._delivered[stream_id] = self._delivered.get(stream_id, 0) + 1
        self._changed.setdefault(stream_id, asyncio.Event()).set()

    async def deliver(self, message: OutgoingMessage) -> None:
        self.notify(message.notification.stream_id)

    async def wait(self, stream_id: str, count: int) -> None:
        try:
            async with asyncio.timeout(REMINDER_WAIT):
                while self._delivered.get(stream_id, 0) < count:
                    changed = self._changed.setdefault(stream_id, asyncio.Event())
                    changed.clear()
                    await changed.wait()
        except TimeoutError:
            seen = self._delivered.get(stream_id, 0)
            raise TimeoutError(f"{stream_id}: reminder {count} never came ({seen} delivered)") from None


@dataclass
class Timings:
    """Update latencies (seconds) by step name, when each course finished, and how many update
    calls timed out and were sent again with the same update id (as a clinician's tool would)."""

    updates: list[tuple[str, float]] = field(default_factory=list)
    finished: list[float] = field(default_factory=list)
    timeouts: int = 0

    def latencies(self) -> list[float]:
        return [seconds for _, seconds in self.updates]


async def drive_course(
    client: CourseClient,
    board: Waits,
    steps: list[Step],
    timings: Timings,
    *,
    wait_for_result: bool = True,
    course_id: UUID | None = None,
    policy: CoursePolicy | None = None,
    with_start: bool = False,
) -> UUID:
    """One clinic's course through Temporal, step by step, as the clinicians' tools would send it.
    `with_start`: the course is opened with its first step, in one call (`course open --assessment`,
    an update-with-start); that call's time is the first step's sample. Otherwise `open`, untimed,
    then each step."""
    request = opening(course_id, policy)
    course = request.course_id
    if not with_start:
        await client.open(request)
    stream = workflow_id(course)
    for index, step in enumerate(steps):
        actor, command = step.build(datetime.now(UTC))
        request_id = f"{step.name}-{uuid.uuid4()}"
        started = time.perf_counter()
        for attempt in range(UPDATE_ATTEMPTS):
            try:
                if with_start and index == 0:
                    await client.open_with_step(request, command, actor, request_id=request_id)  # type: ignore[arg-type]
                else:
                    await client.record(course, command, actor, request_id=request_id)  # type: ignore[arg-type]
                break
            except (WorkflowUpdateRPCTimeoutOrCancelledError, StepTimedOut):
                # Not answered within the client's deadline (60 s): sent again with the same
                # request id, as a clinician's tool would; counted, and the wait stays in the sample.
                timings.timeouts += 1
                if attempt == UPDATE_ATTEMPTS - 1:
                    raise
        timings.updates.append((step.name, time.perf_counter() - started))
        if step.reminders:
            await board.wait(stream, step.reminders)
    if wait_for_result:
        await client.temporal.get_workflow_handle(stream).result()
    timings.finished.append(time.monotonic())
    return course


# --- offline: the same course through the decider, for the event-store benchmarks ----------------


@dataclass(frozen=True)
class Batch:
    """One append: what the workflow's append_events activity sends for one step, the course's
    summary after the batch included (the workflow folds it; the store only writes it)."""

    stream_id: str
    expected_version: int
    events: list[EventEnvelope]
    summary: CourseSummary


def simulated_course(start: datetime, course_id: UUID | None = None, patient_id: str | None = None) -> list[Batch]:
    """The batches a full course appends, made by the real decider with the real payloads, in
    the order the workflow appends them (opening, eligibility, each step, each reminder)."""
    request = opening(course_id)
    if patient_id is not None:
        request = request.model_copy(update={"patient_id": patient_id})
    stream, run_id = workflow_id(request.course_id), str(uuid.uuid4())
    batches: list[Batch] = []
    state: CourseState | None = None
    now = start

    def commit(events: list, actor: Actor) -> None:  # type: ignore[type-arg]
        nonlocal state
        base = state.version if state is not None else 0
        metadata = EventMetadata(actor=actor, update_id=f"u-{uuid.uuid4()}", workflow_id=stream, run_id=run_id)
        envelopes = [
            EventEnvelope(
                event_id=uuid.uuid4(), stream_id=stream, version=base + i, occurred_at=now, metadata=metadata, event=e
            )
            for i, e in enumerate(events, start=1)
        ]
        if envelopes:
            state = fold(state, envelopes)
            assert state is not None  # folding events onto a state never yields None
            batches.append(Batch(stream, base, envelopes, CourseSummary.of(state)))

    opened = request.opened()
    commit([opened], request.opened_by)
    assert state is not None
    eligibility = RecordEligibility(status=InsuranceStatus.NOT_COVERED, reason="self_pay")
    commit(decide(state, eligibility, SYSTEM_ACTOR, now), SYSTEM_ACTOR)
    for step in full_course():
        now += timedelta(seconds=5)
        actor, command = step.build(now)
        commit(decide(state, command, actor, now), actor)
        if step.reminders:
            now += SCHEDULE_AHEAD - shrunk_policy().session_reminder_lead
            commit(decide(state, Tick(), SYSTEM_ACTOR, now), SYSTEM_ACTOR)
    assert state is not None and state.outcome == "completed", state
    return batches


def simulated_courses(
    count: int, start: datetime | None = None, patients: Callable[[int], str] | None = None
) -> list[list[Batch]]:
    """`count` courses; `patients(i)` names course i's patient (default: story's one patient)."""
    start = start or datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    return [
        simulated_course(start + timedelta(minutes=i), patient_id=patients(i) if patients else None)
        for i in range(count)
    ]


def events_in(courses: list[list[Batch]]) -> int:
    return sum(len(batch.events) for course in courses for batch in course)


async def append_courses(store: PostgresEventStore, courses: list[list[Batch]], concurrency: int) -> None:
    """Append every course's batches in order, `concurrency` courses at a time."""
    queue: Iterator[list[Batch]] = iter(courses)

    async def writer() -> None:
        for course in queue:
            for batch in course:
                await store.append(batch.stream_id, batch.expected_version, batch.events, batch.summary)

    await asyncio.gather(*(writer() for _ in range(concurrency)))


@asynccontextmanager
async def seeded_store(
    report: common.Report, courses: list[list[Batch]], concurrency: int = 16
) -> AsyncIterator[tuple[asyncpg.Pool, PostgresEventStore]]:
    """A throwaway database holding these courses' events (appended `concurrency` courses at a
    time, as a busy clinic writes them), analysed as `course migrate` leaves a running clinic's."""
    async with common.throwaway_database() as dsn:
        report.add("postgres", await common.postgres_version(dsn))
        pool = await create_pool(dsn)
        try:
            store = PostgresEventStore(pool)
            await append_courses(store, courses, concurrency)
            await pool.execute("VACUUM ANALYZE")
            yield pool, store
        finally:
            await pool.close()


# --- the baseline: the same steps against CourseShapeWorkflow -----------------------------------


async def drive_shape(
    client: Client,
    queue: str,
    board: ReminderBoard | None,
    steps: list[Step],
    timings: Timings,
    *,
    shape: Shape | None = None,
    finish: bool = True,
) -> str:
    """The baseline course: one bare update per step, the same reminder waits (none without a
    board), no domain. `finish=False` leaves it waiting after the last step, like a course."""
    workflow_id_ = f"shape-{uuid.uuid4()}"
    handle = await client.start_workflow(
        CourseShapeWorkflow.run,
        shape or Shape(timer_seconds=REMINDER_AFTER.total_seconds()),
        id=workflow_id_,
        task_queue=queue,
    )
    for index, step in enumerate(steps):
        request = ShapeStep(arm_timer=step.reminders > 0, last=finish and index == len(steps) - 1)
        update_id = f"{step.name}-{uuid.uuid4()}"
        started = time.perf_counter()
        for attempt in range(UPDATE_ATTEMPTS):
            try:
                await handle.execute_update(CourseShapeWorkflow.step, request, id=update_id)
                break
            except WorkflowUpdateRPCTimeoutOrCancelledError:
                timings.timeouts += 1
                if attempt == UPDATE_ATTEMPTS - 1:
                    raise
        timings.updates.append((step.name, time.perf_counter() - started))
        if step.reminders and board is not None:
            await board.wait(workflow_id_, step.reminders)
    if finish:
        await handle.result()
    timings.finished.append(time.monotonic())
    return workflow_id_
