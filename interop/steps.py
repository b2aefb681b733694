"""A course's event stream as recorded steps, and the stable ids of what the export makes of them.

A recorded step is one batch the course appended: the events one update (a clinician's request, with
its update id) or one timer tick decided together. Ids are UUID 5 names under one fixed namespace:
of the course id and an event id for what an event made (so a re-export after more steps keeps every
earlier id and replaces, never duplicates), of the clinic's own identifier for what several courses
share (the patient, staff, payers), so a bulk export names each once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID, uuid5

from course.commands import Actor
from course.events import EventEnvelope

# Fixed forever: changing it changes every exported id, and EHRs would duplicate every resource.
NAMESPACE = UUID("5b0f3c8e-2f6a-5d49-9a61-7c1e0f4b2d93")

# Which step recorded an event, when the stored command does not say (unsigned steps, timers).
EVENT_STEP: dict[str, str] = {
    "CourseOpened": "open",
    "EligibilityChecked": "eligibility",
    "FinancialClearanceRecorded": "financial-clearance",
    "PriorAuthorizationRecorded": "prior-authorization",
    "AssessmentRecorded": "assessment",
    "IntentionsRecorded": "intentions",
    "ConsentRecorded": "consent",
    "SupportPersonRecorded": "support-person",
    "DosingPlanRecorded": "dosing-plan",
    "OrientationRecorded": "orientation",
    "SessionScheduled": "schedule-session",
    "CheckedIn": "check-in",
    "DosingSessionDeferred": "check-in",
    "DoseAdministered": "dose-administered",
    "MonitoringReadingRecorded": "monitoring-reading",
    "PatientDischarged": "discharge",
    "DosingSessionCompleted": "dosing-session",
    "ClinicalReviewRecorded": "clinical-review",
    "IntegrationSessionRecorded": "integration-session",
    "MaintenancePlanRecorded": "maintenance-plan",
    "MaintenanceSessionRecorded": "maintenance-session",
    "HoldPlaced": "hold",
    "HoldReleased": "release",
    "CareTeamReassigned": "reassign",
}


@dataclass(frozen=True)
class RecordedStep:
    events: tuple[EventEnvelope, ...]

    @property
    def first(self) -> EventEnvelope:
        return self.events[0]

    @property
    def update_id(self) -> str | None:
        return self.first.metadata.update_id

    @property
    def actor(self) -> Actor:
        return self.first.metadata.actor

    @property
    def name(self) -> str:
        """The step's name (`check-in`), or `tick` for what the passing of time decided."""
        command = self.first.metadata.command
        if command is not None and isinstance(command.get("step"), str):
            return str(command["step"])
        for envelope in self.events:
            if envelope.type in EVENT_STEP:
                return EVENT_STEP[envelope.type]
        if self.first.type == "CourseClosed" and self.update_id is not None:
            return "withdraw"
        return "tick"


def recorded_steps(events: Sequence[EventEnvelope]) -> list[RecordedStep]:
    """Consecutive events of one update id are one step; without one (a timer, the opening), the
    consecutive events one actor appended at one instant are."""
    steps: list[list[EventEnvelope]] = []
    for envelope in events:
        if steps and _same_step(steps[-1][-1], envelope):
            steps[-1].append(envelope)
        else:
            steps.append([envelope])
    return [RecordedStep(tuple(s)) for s in steps]


def _same_step(last: EventEnvelope, this: EventEnvelope) -> bool:
    if last.metadata.update_id is not None or this.metadata.update_id is not None:
        return last.metadata.update_id == this.metadata.update_id
    return (
        last.occurred_at == this.occurred_at
        and last.metadata.actor == this.metadata.actor
        and last.metadata.run_id == this.metadata.run_id
    )


def course_key(course_id: str) -> str:
    """The course id as its UUID, whether given as `course-<uuid>` or bare."""
    return str(UUID(course_id.removeprefix("course-")))


def resource_id(course_id: str, kind: str, *names: object) -> str:
    """The id of something one course made: the course, what it is, and the event(s) it came from."""
    return str(uuid5(NAMESPACE, "/".join([course_key(course_id), kind, *map(str, names)])))


def shared_id(kind: str, identifier: str) -> str:
    """The id of something courses share (a patient, a staff member, a payer): by its identifier."""
    return str(uuid5(NAMESPACE, f"{kind}/{identifier}"))
