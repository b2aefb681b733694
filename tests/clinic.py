"""A pure, in-memory course for decider tests: given these facts, when this step, then..."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from course.commands import Actor, Command, InsuranceStatus, RecordEligibility, Tick
from course.decider import decide
from course.errors import RuleViolation
from course.events import CourseOpened, DomainEvent, EventEnvelope, EventMetadata
from course.policy import CoursePolicy
from course.state import CourseState, evolve
from tests import story

T0 = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


class Clinic:
    def __init__(
        self, policy: CoursePolicy | None = None, insurance: InsuranceStatus | None = InsuranceStatus.NOT_COVERED
    ) -> None:
        self.now = T0
        self.log: list[EventEnvelope] = []
        self.state: CourseState | None = None
        opened = CourseOpened(
            course_id=uuid4(),
            patient_id="pt-0001",
            clinician_id=story.PRESCRIBER.id,
            therapist_id=story.THERAPIST.id,
            planned_sessions=3,
            self_pay=True,
            policy=policy or CoursePolicy(),
        )
        self._append([opened], story.OPERATIONS)
        if insurance is not None:
            self.record(story.OPERATIONS, RecordEligibility(status=insurance))

    @property
    def course(self) -> CourseState:
        assert self.state is not None
        return self.state

    def _append(self, events: list[DomainEvent], actor: Actor, update_id: str | None = None) -> None:
        for event in events:
            envelope = EventEnvelope(
                event_id=uuid4(),
                stream_id="course-test",
                version=len(self.log) + 1,
                occurred_at=self.now,
                event=event,
                metadata=EventMetadata(actor=actor, update_id=update_id, workflow_id="course-test", run_id="run"),
            )
            self.log.append(envelope)
            self.state = evolve(self.state, envelope)

    def record(self, actor: Actor, command: Command) -> list[str]:
        """Decide and apply; returns the event types produced."""
        events = decide(self.course, command, actor, self.now)
        # Each step its own request id, as the API gives it: the FHIR export names steps by it.
        self._append(events, actor, f"req-{uuid4()}")
        return [e.type for e in events]

    def rejects(self, actor: Actor, command: Command) -> RuleViolation:
        before = self.course
        try:
            decide(self.course, command, actor, self.now)
        except RuleViolation as violation:
            assert self.course == before
            return violation
        raise AssertionError(f"{command.step} was accepted")

    def advance(self, **delta: float) -> list[str]:
        self.now += timedelta(**delta)
        return self.record(story.OPERATIONS, Tick())

    def through_preparation(self, planned_sessions: int = 3) -> None:
        self.record(story.PRESCRIBER, story.assessment())
        for actor, command in story.preparation(self.now, planned_sessions):
            self.record(actor, command)  # type: ignore[arg-type]

    def dose(self, n: int, **changes: object) -> list[str]:
        self.record(story.NURSE, story.check_in(n))
        return self.record(story.NURSE, story.dose(n, **changes))
