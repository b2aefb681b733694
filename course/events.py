"""Domain events: one per accepted clinical fact, past tense, and their stored envelope."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field, TypeAdapter

from course.commands import (
    Actor,
    BloodPressure,
    Condition,
    Contraindication,
    Dissociation,
    InsuranceStatus,
    MaintenanceKind,
    Modality,
    PatientResponse,
    PatientShare,
    ReviewDecision,
    Route,
    Sedation,
    SideEffect,
    UtcDatetime,
    Vitals,
)
from course.messages import BETWEEN_VERSIONS
from course.policy import CoursePolicy, PolicyRef
from course.provenance import CommandSignature
from course.upcasting import upcast

# 2: ReminderSent carries session_number and subject_at (course/upcasting.py lifts version 1).
# EligibilityChecked's in_network and patient_share are optional additions: no new version.
SCHEMA_VERSION = 2


class _Event(BaseModel):
    # A newer worker may store an event with a new optional field: an older one reads past it.
    model_config = BETWEEN_VERSIONS


class CourseOpened(_Event):
    type: Literal["CourseOpened"] = "CourseOpened"
    course_id: UUID
    patient_id: str
    clinician_id: str
    therapist_id: str | None = None
    condition: Condition | None = None
    planned_sessions: int | None = None
    payer_id: str | None = None
    self_pay: bool = False
    policy: CoursePolicy = CoursePolicy()
    # An optional addition (no new schema version): courses opened before policies were published
    # on the server have none.
    policy_ref: PolicyRef | None = None


class EligibilityChecked(_Event):
    type: Literal["EligibilityChecked"] = "EligibilityChecked"
    status: InsuranceStatus
    reason: str | None = None
    in_network: bool | None = None
    patient_share: PatientShare | None = None


class FinancialClearanceRecorded(_Event):
    type: Literal["FinancialClearanceRecorded"] = "FinancialClearanceRecorded"
    self_pay: bool
    estimated_cost_acknowledged: bool


class PriorAuthorizationRecorded(_Event):
    type: Literal["PriorAuthorizationRecorded"] = "PriorAuthorizationRecorded"
    reference: str
    approved: bool


class AssessmentRecorded(_Event):
    type: Literal["AssessmentRecorded"] = "AssessmentRecorded"
    blood_pressure: BloodPressure
    heart_rate: int
    contraindications: list[Contraindication]
    relative_contraindication_rationale: str | None
    condition: Condition
    gad7: int


class CandidacyConfirmed(_Event):
    type: Literal["CandidacyConfirmed"] = "CandidacyConfirmed"
    relative_contraindications: list[Contraindication] = []


class IntentionsRecorded(_Event):
    type: Literal["IntentionsRecorded"] = "IntentionsRecorded"
    goals: str


class ConsentRecorded(_Event):
    type: Literal["ConsentRecorded"] = "ConsentRecorded"
    form_version: str
    signed_at: UtcDatetime


class SupportPersonRecorded(_Event):
    type: Literal["SupportPersonRecorded"] = "SupportPersonRecorded"
    name: str
    relationship: str
    phone: str


class DosingPlanRecorded(_Event):
    type: Literal["DosingPlanRecorded"] = "DosingPlanRecorded"
    route: Route
    planned_sessions: int
    starting_dose_mg_per_kg: float
    max_dose_mg_per_kg: float


class OrientationRecorded(_Event):
    type: Literal["OrientationRecorded"] = "OrientationRecorded"
    topics: list[str]


class PreparationCompleted(_Event):
    type: Literal["PreparationCompleted"] = "PreparationCompleted"


class SessionScheduled(_Event):
    type: Literal["SessionScheduled"] = "SessionScheduled"
    session_number: int
    scheduled_at: UtcDatetime


class ReminderSent(_Event):
    type: Literal["ReminderSent"] = "ReminderSent"
    key: str
    purpose: str
    recipient: Literal["patient", "clinician", "therapist", "operations"]
    due_at: UtcDatetime
    session_number: int | None = None
    subject_at: UtcDatetime | None = None


class CheckedIn(_Event):
    type: Literal["CheckedIn"] = "CheckedIn"
    session_number: int
    vitals: Vitals


class DoseAdministered(_Event):
    """The dose given, in a course that monitors the patient afterwards: the monitoring starts."""

    type: Literal["DoseAdministered"] = "DoseAdministered"
    session_number: int
    route: Route
    dose_mg_per_kg: float
    given_at: UtcDatetime


class MonitoringReadingRecorded(_Event):
    type: Literal["MonitoringReadingRecorded"] = "MonitoringReadingRecorded"
    session_number: int
    taken_at: UtcDatetime
    blood_pressure: BloodPressure
    heart_rate: int
    spo2: int
    sedation: Sedation
    dissociation: Dissociation
    side_effects: list[SideEffect] = []


class PatientDischarged(_Event):
    """Safe to leave, and who took the patient home; the session's DosingSessionCompleted follows."""

    type: Literal["PatientDischarged"] = "PatientDischarged"
    session_number: int
    discharged_at: UtcDatetime
    collected_by: str
    relationship: str
    minutes_observed: int


class DosingSessionDeferred(_Event):
    type: Literal["DosingSessionDeferred"] = "DosingSessionDeferred"
    session_number: int
    vitals: Vitals
    reason: str


class DosingSessionCompleted(_Event):
    type: Literal["DosingSessionCompleted"] = "DosingSessionCompleted"
    session_number: int
    route: Route
    dose_mg_per_kg: float
    post_vitals: Vitals
    side_effects: list[SideEffect]
    patient_response: PatientResponse
    gad7: int | None = None


class ClinicalReviewRequired(_Event):
    type: Literal["ClinicalReviewRequired"] = "ClinicalReviewRequired"
    session_number: int
    reasons: list[str]


class ClinicalReviewRecorded(_Event):
    type: Literal["ClinicalReviewRecorded"] = "ClinicalReviewRecorded"
    decision: ReviewDecision
    new_dose_mg_per_kg: float | None = None
    new_route: Route | None = None
    rationale: str


class IntegrationSessionRecorded(_Event):
    type: Literal["IntegrationSessionRecorded"] = "IntegrationSessionRecorded"
    modality: Modality
    held_at: UtcDatetime
    gad7: int | None = None


class FollowUpOverdue(_Event):
    type: Literal["FollowUpOverdue"] = "FollowUpOverdue"
    key: str
    what: str
    due_at: UtcDatetime


class DosingSeriesCompleted(_Event):
    type: Literal["DosingSeriesCompleted"] = "DosingSeriesCompleted"
    sessions_completed: int
    reason: Literal["all_planned_sessions", "ended_by_review"]


class MaintenancePlanRecorded(_Event):
    type: Literal["MaintenancePlanRecorded"] = "MaintenancePlanRecorded"
    kind: MaintenanceKind
    interval_days: int | None
    next_due_at: UtcDatetime | None


class MaintenanceSessionRecorded(_Event):
    type: Literal["MaintenanceSessionRecorded"] = "MaintenanceSessionRecorded"
    kind: MaintenanceKind
    held_at: UtcDatetime
    gad7: int | None = None
    next_due_at: UtcDatetime


class MaintenanceOverdue(_Event):
    type: Literal["MaintenanceOverdue"] = "MaintenanceOverdue"
    key: str
    due_at: UtcDatetime


class HoldPlaced(_Event):
    type: Literal["HoldPlaced"] = "HoldPlaced"
    reason: str
    # Placed by a clinician (for the patient's safety), so only a clinician may release it. Holds
    # stored before this field existed read as not clinical: releasable by anyone, as they were.
    clinical: bool = False


class HoldReleased(_Event):
    type: Literal["HoldReleased"] = "HoldReleased"


class CareTeamReassigned(_Event):
    type: Literal["CareTeamReassigned"] = "CareTeamReassigned"
    clinician_id: str | None = None
    therapist_id: str | None = None


class CourseClosed(_Event):
    type: Literal["CourseClosed"] = "CourseClosed"
    outcome: Literal["completed", "ineligible", "withdrawn", "lapsed", "closed_by_clinician"]
    reasons: list[str] = []


DomainEvent = Annotated[
    CourseOpened
    | EligibilityChecked
    | FinancialClearanceRecorded
    | PriorAuthorizationRecorded
    | AssessmentRecorded
    | CandidacyConfirmed
    | IntentionsRecorded
    | ConsentRecorded
    | SupportPersonRecorded
    | DosingPlanRecorded
    | OrientationRecorded
    | PreparationCompleted
    | SessionScheduled
    | ReminderSent
    | CheckedIn
    | DoseAdministered
    | MonitoringReadingRecorded
    | PatientDischarged
    | DosingSessionCompleted
    | DosingSessionDeferred
    | ClinicalReviewRequired
    | ClinicalReviewRecorded
    | IntegrationSessionRecorded
    | FollowUpOverdue
    | DosingSeriesCompleted
    | MaintenancePlanRecorded
    | MaintenanceSessionRecorded
    | MaintenanceOverdue
    | HoldPlaced
    | HoldReleased
    | CareTeamReassigned
    | CourseClosed,
    Field(discriminator="type"),
]

_DOMAIN_EVENT: TypeAdapter[DomainEvent] = TypeAdapter(DomainEvent)


class EventMetadata(BaseModel):
    model_config = BETWEEN_VERSIONS

    actor: Actor
    update_id: str | None = None
    workflow_id: str
    run_id: str
    schema_version: int = SCHEMA_VERSION
    # A clinician's step: the edge's signature over the command, and (on the batch's first event)
    # the command itself, so `course verify` can check the signature and re-decide the events.
    signature: CommandSignature | None = None
    command: dict[str, Any] | None = None


class EventEnvelope(BaseModel):
    """A domain event as stored: the unit the event store appends exactly once."""

    model_config = BETWEEN_VERSIONS

    event_id: UUID
    stream_id: str
    version: int = Field(ge=1)
    occurred_at: UtcDatetime
    metadata: EventMetadata
    event: DomainEvent

    @property
    def type(self) -> str:
        return self.event.type

    def data(self) -> dict[str, Any]:
        return self.event.model_dump(mode="json", exclude={"type"})

    @classmethod
    def from_row(
        cls,
        *,
        event_id: UUID,
        stream_id: str,
        version: int,
        type: str,
        data: dict[str, Any],
        metadata: dict[str, Any],
        occurred_at: datetime,
    ) -> EventEnvelope:
        written_as = int(metadata.get("schema_version", 1))
        current = upcast(type, data, written_as, SCHEMA_VERSION)
        return cls(
            event_id=event_id,
            stream_id=stream_id,
            version=version,
            occurred_at=occurred_at,
            metadata=EventMetadata.model_validate(metadata),
            event=_DOMAIN_EVENT.validate_python({"type": type, **current}),
        )
