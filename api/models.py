"""Request and response bodies of the HTTP API that are not the domain's own models."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from course.commands import Actor, Condition, RecordAssessment, Role
from course.policy import CoursePolicy, PolicyRef
from course.publication import MAX_POLICY_VERSION, POLICY_NAME_PATTERN
from course.view import StepOutcome
from workflows.inputs import OpenCourse

_STAFF_ID = "Their staff id, as given to `course staff add`"


class OpenCourseRequest(BaseModel):
    """`course open` as JSON. The staff member opening it comes from the token, not from here."""

    model_config = ConfigDict(extra="forbid")

    course_id: UUID | None = Field(None, description="Choose it to make the request idempotent.")
    patient_id: str = Field(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9._:-]+$",
        title="Patient reference",
        description="The clinic's pseudonymous id for the patient, never a name",
    )
    clinician_id: str = Field(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:@-]+$", title="Prescriber", description=_STAFF_ID
    )
    therapist_id: str | None = Field(
        None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:@-]+$", title="Therapist", description=_STAFF_ID
    )
    condition: Condition | None = Field(None, title="Condition")
    planned_sessions: int | None = Field(None, ge=1, le=52, title="Planned dosing sessions")
    payer_id: str | None = Field(
        None, min_length=1, max_length=64, title="Payer id", description="With the member reference"
    )
    member_ref: str | None = Field(
        None,
        min_length=1,
        max_length=64,
        title="Member reference",
        description="The patient's insurance member reference",
    )
    self_pay: bool = Field(False, title="Self-pay", description="The patient pays without insurance")
    policy_name: str | None = Field(
        None, pattern=POLICY_NAME_PATTERN, description="A published policy (`GET /policies`); default: the clinic's."
    )
    policy_version: int | None = Field(
        None, ge=1, le=MAX_POLICY_VERSION, description="Default: the policy's current version."
    )
    assessment: RecordAssessment | None = Field(
        None,
        title="Assessment",
        description=(
            "The course's first step, recorded with the opening in one round trip (`course open --assessment`). "
            "The opener must be one who may record it (a prescriber). The course is opened either way: "
            "a refused assessment answers 409 and leaves it awaiting its assessment."
        ),
    )

    @model_validator(mode="after")
    def _payer(self) -> OpenCourseRequest:
        if not self.self_pay and (self.payer_id is None) != (self.member_ref is None):
            raise ValueError("payer_id and member_ref go together (or self_pay)")
        return self

    def opening(self, course_id: UUID, opened_by: Actor, policy: CoursePolicy, ref: PolicyRef) -> OpenCourse:
        """The workflow's input, with the published policy the server resolved (api/policies.py)."""
        return OpenCourse(
            course_id=course_id,
            patient_id=self.patient_id,
            clinician_id=self.clinician_id,
            therapist_id=self.therapist_id,
            condition=self.condition,
            planned_sessions=self.planned_sessions,
            payer_id=self.payer_id,
            member_ref=self.member_ref,
            self_pay=self.self_pay or self.payer_id is None,
            policy=policy,
            policy_ref=ref,
            opened_by=opened_by,
        )


class CourseOpened(BaseModel):
    course_id: UUID
    workflow_id: str
    first_step: StepOutcome | None = Field(None, description="The assessment's outcome, when one was sent")


class StaffMember(BaseModel):
    id: str
    role: Role


class CourseRow(BaseModel):
    """A course as the visibility store lists it (codes and opaque ids), with its patient reference."""

    course_id: str
    patient_id: str | None = None  # the clinic's pseudonymous reference (from the event store)
    status: str | None
    phase: str | None
    awaiting: list[str]
    clinician_id: str | None
    therapist_id: str | None
    next_due_at: str | None
    sessions_completed: int | None
    overdue: bool
    on_hold: bool
    needs_review: bool
    insurance: str | None


class EventRow(BaseModel):
    version: int
    type: str
    occurred_at: str
    data: dict[str, Any]
    metadata: dict[str, Any]


class NotificationRow(BaseModel):
    course_id: str
    key: str
    purpose: str
    recipient: str
    due_at: str | None
    created_at: str | None
    delivered_at: str | None
    channel: str | None
    status: str
    attempts: int
    error: str | None
    message_id: str | None
    needs_attention: bool
