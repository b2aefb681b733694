"""A clinic's worth of finished and running courses, as event streams, for the outcome reports.

Each stream is made by the course's own decider (tests/clinic.py: `decide` then `evolve`, the same
events a workflow appends), with the clock set by hand for every step, so every figure of the
report can be worked out on paper. `seed` appends the streams to an event store through its own
`append` (for PostgreSQL that also writes course_summaries, by folding them with `evolve`).

The hand-computed cohort (`HAND_COHORT`, 12 courses; tests/unit/test_outcome_cohorts.py has the
arithmetic):
- A1-A6, opened in January: IV, CBT, 4 doses with one integration session after each (days 11, 18,
  25, 32; GAD-7 at the second and the fourth); A1-A3 go on to ketamine maintenance (day 45), A4-A6
  complete without maintenance (day 45).
- B1-B4, opened in February: intranasal, mindfulness, 2 doses (days 10, 17) and one integration
  session (day 18, with GAD-7); B4 then withdraws (day 25).
- C1, February: ineligible at assessment; C2, February: lapses in preparation (day 62).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import asyncpg

from activities.ports import EventStore
from course.commands import (
    Actor,
    Contraindication,
    MaintenanceKind,
    Modality,
    RecordDosingPlan,
    RecordIntegrationSession,
    RecordOrientation,
    Route,
    Tick,
    Withdraw,
)
from course.events import CourseOpened, DomainEvent, EventEnvelope, EventMetadata
from course.policy import CoursePolicy
from course.state import evolve
from tests import story
from tests.clinic import Clinic
from worker.database import create_pool, migrate

JANUARY = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
FEBRUARY = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Plan:
    """One course of the cohort: what happens to it, and when (days after opening)."""

    opened_at: datetime
    baseline: int
    route: Route | None = None  # None: never reaches a dosing plan
    modality: Modality = Modality.CBT
    doses: int = 0
    integration_after: tuple[int, ...] = ()  # after which doses (1-based) an integration session
    scores: dict[int, int] | None = None  # integration session after dose n -> its GAD-7
    ending: str | None = None  # maintenance | no_maintenance | withdraw | ineligible | lapse


class SeededCourse(Clinic):
    """tests/clinic.py's course, opened at a time of our choosing under a stream of its own."""

    def __init__(self, opened_at: datetime) -> None:
        # Clinic.__init__ opens at tests/clinic.py's T0 on a fixed stream: not called.
        self.now = opened_at
        self.log: list[EventEnvelope] = []
        self.state = None
        self.course_id = uuid4()
        self.stream_id = f"course-{self.course_id}"
        opened = CourseOpened(
            course_id=self.course_id,
            patient_id=f"pt-{self.course_id.hex[:8]}",
            clinician_id=story.PRESCRIBER.id,
            therapist_id=story.THERAPIST.id,
            self_pay=True,
            policy=CoursePolicy(),
        )
        self._append([opened], story.OPERATIONS)

    def _append(self, events: list[DomainEvent], actor: Actor, update_id: str | None = None) -> None:
        for event in events:
            envelope = EventEnvelope(
                event_id=uuid4(),
                stream_id=self.stream_id,
                version=len(self.log) + 1,
                occurred_at=self.now,
                event=event,
                metadata=EventMetadata(actor=actor, update_id=update_id, workflow_id=self.stream_id, run_id="seeded"),
            )
            self.log.append(envelope)
            self.state = evolve(self.state, envelope)

    def at(self, day: float) -> SeededCourse:
        self.now = self.log[0].occurred_at + timedelta(days=day)
        return self


def build(plan: Plan) -> list[EventEnvelope]:
    course = SeededCourse(plan.opened_at)
    if plan.ending == "ineligible":
        course.at(1).record(
            story.PRESCRIBER,
            story.assessment(gad7=plan.baseline, contraindications=[Contraindication.PSYCHOTIC_DISORDER]),
        )
        return course.log
    course.at(1).record(story.PRESCRIBER, story.assessment(gad7=plan.baseline))
    if plan.ending == "lapse":
        course.at(62).record(story.OPERATIONS, Tick())
        return course.log
    assert plan.route is not None
    for actor, step in story.preparation(course.at(2).now, plan.doses):
        command = step.model_copy(update={"route": plan.route}) if isinstance(step, RecordDosingPlan) else step
        if isinstance(command, RecordOrientation):
            course.at(8)  # the last preparation step: preparation takes a week
        course.record(actor, command)  # type: ignore[arg-type]
    scores = plan.scores or {}
    for n in range(1, plan.doses + 1):
        day = 10 + 7 * (n - 1)
        course.at(day).record(story.NURSE, story.check_in(n))
        course.record(story.NURSE, story.dose(n, route=plan.route, gad7=None))
        if n in plan.integration_after:
            held = course.at(day + 1).now
            course.record(
                story.THERAPIST, RecordIntegrationSession(modality=plan.modality, held_at=held, gad7=scores.get(n))
            )
    match plan.ending:
        case "maintenance":
            course.at(45).record(story.PRESCRIBER, story.maintenance_plan())
        case "no_maintenance":
            course.at(45).record(story.PRESCRIBER, story.maintenance_plan(MaintenanceKind.NONE, None))
        case "withdraw":
            course.at(25).record(story.OPERATIONS, Withdraw(reason="patient_request"))
    return course.log


def _a(baseline: int, mid: int, final: int, ending: str, hour: int) -> Plan:
    return Plan(
        opened_at=JANUARY + timedelta(hours=hour),
        baseline=baseline,
        route=Route.IV_INFUSION,
        modality=Modality.CBT,
        doses=4,
        integration_after=(1, 2, 3, 4),
        scores={2: mid, 4: final},
        ending=ending,
    )


def _b(baseline: int, final: int, hour: int, ending: str | None = None) -> Plan:
    return Plan(
        opened_at=FEBRUARY + timedelta(hours=hour),
        baseline=baseline,
        route=Route.INTRANASAL,
        modality=Modality.MINDFULNESS,
        doses=2,
        integration_after=(2,),
        scores={2: final},
        ending=ending,
    )


HAND_COHORT: tuple[Plan, ...] = (
    _a(15, 14, 6, "maintenance", 0),
    _a(12, 11, 4, "maintenance", 1),
    _a(10, 9, 8, "maintenance", 2),
    _a(14, 13, 3, "no_maintenance", 3),
    _a(9, 8, 9, "no_maintenance", 4),
    _a(16, 15, 12, "no_maintenance", 5),
    _b(13, 11, 0),
    _b(11, 6, 1),
    _b(8, 4, 2),
    _b(12, 12, 3, "withdraw"),
    Plan(opened_at=FEBRUARY + timedelta(hours=4), baseline=14, ending="ineligible"),
    Plan(opened_at=FEBRUARY + timedelta(hours=5), baseline=11, ending="lapse"),
)


def streams(plans: Sequence[Plan] = HAND_COHORT) -> list[list[EventEnvelope]]:
    return [build(plan) for plan in plans]


@asynccontextmanager
async def fresh_database() -> AsyncIterator[asyncpg.Pool]:
    """A migrated database of its own: the projection reads every event in the store, so a test that
    counts courses must not share one."""
    from tests.conftest import _server_url, _with_database

    server = _server_url()
    name = f"course_outcomes_{uuid4().hex[:10]}"
    admin = await asyncpg.connect(server)
    await admin.execute(f'CREATE DATABASE "{name}"')
    dsn = _with_database(server, name)
    try:
        await migrate(dsn)
        pool = await create_pool(dsn, max_size=6)
        try:
            yield pool
        finally:
            await pool.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def seed(store: EventStore, built: Sequence[Sequence[EventEnvelope]], batch: int = 1000) -> None:
    """Append each stream through the store's own append, `batch` events at a time."""
    for stream in built:
        for start in range(0, len(stream), batch):
            chunk = list(stream[start : start + batch])
            await store.append(chunk[0].stream_id, start, chunk)
