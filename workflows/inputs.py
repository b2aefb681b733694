"""The workflow's start input, shared by the workflow, the CLI and tests."""

from __future__ import annotations

from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from course.commands import Actor, Condition
from course.events import CourseOpened
from course.policy import CoursePolicy, PolicyRef
from course.state import CourseState

TASK_QUEUE = "treatment-courses"
WORKFLOW_TYPE = "TreatmentCourse"


def workflow_id(course_id: UUID | str) -> str:
    return f"course-{course_id}"


class OpenCourse(BaseModel):
    """Everything a course starts with; `snapshot` and `applied_updates` are set only by
    continue-as-new (the state so far, and the update ids already applied)."""

    model_config = ConfigDict(frozen=True, extra="ignore")  # rolling deploys: see course/commands.py

    course_id: UUID
    patient_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
    # Staff ids as Actor has them; payer and member references printable ASCII: all of these go
    # into CourseOpened, and a control character there (NUL) could never be stored.
    clinician_id: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:@-]+$")
    therapist_id: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:@-]+$")
    condition: Condition | None = None
    planned_sessions: int | None = Field(None, ge=1, le=52)
    payer_id: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[\x20-\x7e]+$")
    member_ref: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[\x20-\x7e]+$")
    self_pay: bool = False
    # The body of the published policy the edge resolved (api/policies.py), and which one it is;
    # no ref: a course opened before policies were published, or a test's own policy.
    policy: CoursePolicy = CoursePolicy()
    policy_ref: PolicyRef | None = None
    opened_by: Actor
    snapshot: CourseState | None = None
    applied_updates: list[str] = []

    def opened(self) -> CourseOpened:
        """The course's first event, as the workflow records it (the member reference is not in
        it: it goes to the payer, and nowhere else)."""
        return CourseOpened(
            course_id=self.course_id,
            patient_id=self.patient_id,
            clinician_id=self.clinician_id,
            therapist_id=self.therapist_id,
            condition=self.condition,
            planned_sessions=self.planned_sessions,
            payer_id=self.payer_id,
            self_pay=self.self_pay,
            policy=self.policy,
            policy_ref=self.policy_ref,
        )
