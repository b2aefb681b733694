"""Commands: what a clinician (or a timer) asks the course to do.

Each clinician step is a pydantic model whose JSON is the contract of the `course record`
payloads and of the update the workflow receives. `step` has a default so a clinician's tool
can send the bare payload; it is the discriminator when commands travel inside a StepRequest.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, Field, field_validator, model_validator

from course.messages import AS_PEOPLE_SEND_IT, BETWEEN_VERSIONS
from course.provenance import CommandSignature


class Role(StrEnum):
    PRESCRIBER = "prescriber"
    NURSE = "nurse"
    THERAPIST = "therapist"
    OPERATIONS = "operations"
    # Publishes the clinic's policies (`course policy publish`); takes no step on any course.
    CLINIC_ADMIN = "clinic_admin"


STAFF_ID_PATTERN = r"^[A-Za-z0-9._:@-]+$"
_STAFF_ID = re.compile(STAFF_ID_PATTERN)


def _staff_id(value: str) -> str:
    if not _STAFF_ID.fullmatch(value):  # `$` alone would let a trailing newline through
        raise ValueError(
            "must be a staff id (letters, digits and . _ : @ - only, as given to `course staff add`), "
            "not a name or free text"
        )
    return value


# A staff id is published as a plaintext search attribute (ClinicianId, TherapistId) and written
# in logs: held to this shape, a name or a sentence about the patient can never get there.
StaffId = Annotated[
    str,
    Field(min_length=1, max_length=64, json_schema_extra={"pattern": STAFF_ID_PATTERN}),
    AfterValidator(_staff_id),
]


class Actor(BaseModel):
    """The authenticated staff member; travels beside the payload, never inside it."""

    model_config = BETWEEN_VERSIONS

    id: StaffId
    role: Role


SYSTEM_ACTOR = Actor(id="system", role=Role.OPERATIONS)


# Control characters (tab, newline and carriage return aside) and lone surrogates: no clinician
# types them, and PostgreSQL's jsonb cannot store NUL, so such a step could never be appended.
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


class _Payload(BaseModel):
    model_config = AS_PEOPLE_SEND_IT

    @field_validator("*", mode="after")
    @classmethod
    def _printable(cls, value: object) -> object:
        texts = value if isinstance(value, list) else [value]
        if any(isinstance(text, str) and _UNPRINTABLE.search(text) for text in texts):
            raise ValueError("must not contain control characters")
        return value


class BloodPressure(_Payload):
    systolic: int = Field(ge=50, le=300)
    diastolic: int = Field(ge=20, le=200)

    @model_validator(mode="after")
    def _plausible(self) -> BloodPressure:
        if self.diastolic >= self.systolic:
            raise ValueError("diastolic pressure must be lower than systolic")
        return self


class Vitals(BloodPressure):
    heart_rate: int = Field(ge=20, le=250)


class Contraindication(StrEnum):
    PSYCHOTIC_DISORDER = "psychotic_disorder"
    UNCONTROLLED_HYPERTENSION = "uncontrolled_hypertension"
    PREGNANCY = "pregnancy"
    SUBSTANCE_USE_DISORDER = "substance_use_disorder"
    CARDIOVASCULAR_DISEASE = "cardiovascular_disease"
    HEPATIC_IMPAIRMENT = "hepatic_impairment"


class Condition(StrEnum):
    GAD = "gad"
    PANIC = "panic"
    SOCIAL_ANXIETY = "social_anxiety"
    PHOBIA = "phobia"
    OTHER = "other"


class Route(StrEnum):
    IV_INFUSION = "iv_infusion"
    IM_INJECTION = "im_injection"
    INTRANASAL = "intranasal"
    ORAL_LOZENGE = "oral_lozenge"


class SideEffectKind(StrEnum):
    DISSOCIATION = "dissociation"
    DISORIENTATION = "disorientation"
    DIZZINESS = "dizziness"
    NAUSEA = "nausea"
    ELEVATED_BLOOD_PRESSURE = "elevated_blood_pressure"
    OTHER = "other"


class Severity(StrEnum):
    MILD = "mild"
    MODERATE = "moderate"
    SEVERE = "severe"


class PatientResponse(StrEnum):
    BETTER = "better"
    SAME = "same"
    WORSE = "worse"


class Modality(StrEnum):
    CBT = "cbt"
    MINDFULNESS = "mindfulness"
    PSYCHODYNAMIC = "psychodynamic"
    ACT = "act"
    IFS = "ifs"
    SOMATIC = "somatic"


class MaintenanceKind(StrEnum):
    NONE = "none"
    KETAMINE = "ketamine"
    THERAPY_ONLY = "therapy_only"


class ReviewDecision(StrEnum):
    CONTINUE = "continue"
    ADJUST_DOSE = "adjust_dose"
    CHANGE_ROUTE = "change_route"
    END_DOSING = "end_dosing"
    CLOSE_COURSE = "close_course"


def _in_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:00+05:00 is before the first instant a datetime holds: a 422, not a 500.
        raise ValueError("must fall between the years 1 and 9999 in UTC") from None


# Times are stored in UTC whatever offset the caller's clock used: the same appointment sent as
# +01:00 and as Z is one fact with one reminder key (course/timing.py), and pydantic's JSON keeps
# an offset only to the minute, so a historical offset with seconds would not read back equal.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_in_utc)]
Gad7 = Annotated[int, Field(ge=0, le=21)]
DoseMgPerKg = Annotated[float, Field(gt=0, le=5)]
ReasonCode = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$")]
FreeText = Annotated[str, Field(min_length=1, max_length=4000)]
SessionNumber = Annotated[int, Field(ge=1, le=52)]
# A topic is a heading ("ride_home", "what to expect"), not the session's notes.
OrientationTopic = Annotated[str, Field(min_length=1, max_length=64)]
# Every kind of side effect twice (one mild that turned severe, say) with room to spare: a list
# longer than that is not one session's observations, and every step's size stays bounded.
MAX_SIDE_EFFECTS = 12


class RecordAssessment(_Payload):
    step: Literal["assessment"] = "assessment"
    blood_pressure: BloodPressure
    heart_rate: int = Field(ge=20, le=250)
    # Each contraindication once at most: more entries than the list has are not a history.
    contraindications: list[Contraindication] = Field([], max_length=len(Contraindication))
    relative_contraindication_rationale: FreeText | None = None
    condition: Condition
    gad7: Gad7


class RecordFinancialClearance(_Payload):
    step: Literal["financial-clearance"] = "financial-clearance"
    self_pay: bool
    estimated_cost_acknowledged: bool


class RecordPriorAuthorization(_Payload):
    step: Literal["prior-authorization"] = "prior-authorization"
    reference: str = Field(min_length=1, max_length=64)
    approved: bool


class RecordIntentions(_Payload):
    step: Literal["intentions"] = "intentions"
    goals: FreeText


class RecordConsent(_Payload):
    step: Literal["consent"] = "consent"
    form_version: str = Field(min_length=1, max_length=32)
    signed_at: UtcDatetime


class RecordSupportPerson(_Payload):
    step: Literal["support-person"] = "support-person"
    name: str = Field(min_length=1, max_length=200)
    relationship: str = Field(min_length=1, max_length=64)
    phone: str = Field(min_length=3, max_length=40)


class RecordDosingPlan(_Payload):
    step: Literal["dosing-plan"] = "dosing-plan"
    route: Route
    planned_sessions: int = Field(6, ge=1, le=52)
    starting_dose_mg_per_kg: DoseMgPerKg
    max_dose_mg_per_kg: DoseMgPerKg

    @model_validator(mode="after")
    def _dose_range(self) -> RecordDosingPlan:
        if self.starting_dose_mg_per_kg > self.max_dose_mg_per_kg:
            raise ValueError("the starting dose must not exceed the maximum dose")
        return self


class RecordOrientation(_Payload):
    step: Literal["orientation"] = "orientation"
    topics: list[OrientationTopic] = Field(min_length=1, max_length=20)


class ScheduleSession(_Payload):
    step: Literal["schedule-session"] = "schedule-session"
    session_number: SessionNumber
    scheduled_at: UtcDatetime


class CheckIn(_Payload):
    step: Literal["check-in"] = "check-in"
    session_number: SessionNumber
    vitals: Vitals
    ride_home_arranged: bool


class SideEffect(_Payload):
    effect: SideEffectKind
    severity: Severity


class RecordDosingSession(_Payload):
    step: Literal["dosing-session"] = "dosing-session"
    session_number: SessionNumber
    route: Route
    dose_mg_per_kg: DoseMgPerKg
    post_vitals: Vitals
    side_effects: list[SideEffect] = Field([], max_length=MAX_SIDE_EFFECTS)
    patient_response: PatientResponse
    gad7: Gad7 | None = None


class RecordClinicalReview(_Payload):
    step: Literal["clinical-review"] = "clinical-review"
    decision: ReviewDecision
    new_dose_mg_per_kg: DoseMgPerKg | None = None
    new_route: Route | None = None
    rationale: FreeText

    @model_validator(mode="after")
    def _decision_fields(self) -> RecordClinicalReview:
        if self.decision is ReviewDecision.ADJUST_DOSE and self.new_dose_mg_per_kg is None:
            raise ValueError("adjust_dose needs new_dose_mg_per_kg")
        if self.decision is ReviewDecision.CHANGE_ROUTE and self.new_route is None:
            raise ValueError("change_route needs new_route")
        return self


class RecordIntegrationSession(_Payload):
    step: Literal["integration-session"] = "integration-session"
    modality: Modality
    held_at: UtcDatetime
    gad7: Gad7 | None = None


class RecordMaintenancePlan(_Payload):
    step: Literal["maintenance-plan"] = "maintenance-plan"
    kind: MaintenanceKind
    interval_days: int | None = Field(None, ge=1, le=3650)

    @model_validator(mode="after")
    def _interval(self) -> RecordMaintenancePlan:
        if self.kind is not MaintenanceKind.NONE and self.interval_days is None:
            raise ValueError("a ketamine or therapy_only plan needs interval_days")
        return self


class RecordMaintenanceSession(_Payload):
    step: Literal["maintenance-session"] = "maintenance-session"
    kind: Literal[MaintenanceKind.KETAMINE, MaintenanceKind.THERAPY_ONLY]
    held_at: UtcDatetime
    gad7: Gad7 | None = None


class PlaceHold(_Payload):
    step: Literal["hold"] = "hold"
    reason: ReasonCode


class ReleaseHold(_Payload):
    step: Literal["release"] = "release"


class Withdraw(_Payload):
    step: Literal["withdraw"] = "withdraw"
    reason: ReasonCode


class Reassign(_Payload):
    step: Literal["reassign"] = "reassign"
    clinician_id: StaffId | None = None
    therapist_id: StaffId | None = None

    @model_validator(mode="after")
    def _someone(self) -> Reassign:
        if self.clinician_id is None and self.therapist_id is None:
            raise ValueError("name a new clinician_id or therapist_id")
        return self


ClinicianCommand = Annotated[
    RecordAssessment
    | RecordFinancialClearance
    | RecordPriorAuthorization
    | RecordIntentions
    | RecordConsent
    | RecordSupportPerson
    | RecordDosingPlan
    | RecordOrientation
    | ScheduleSession
    | CheckIn
    | RecordDosingSession
    | RecordClinicalReview
    | RecordIntegrationSession
    | RecordMaintenancePlan
    | RecordMaintenanceSession
    | PlaceHold
    | ReleaseHold
    | Withdraw
    | Reassign,
    Field(discriminator="step"),
]

STEPS: dict[str, type[_Payload]] = {
    model.model_fields["step"].default: model
    for model in (
        RecordAssessment,
        RecordFinancialClearance,
        RecordPriorAuthorization,
        RecordIntentions,
        RecordConsent,
        RecordSupportPerson,
        RecordDosingPlan,
        RecordOrientation,
        ScheduleSession,
        CheckIn,
        RecordDosingSession,
        RecordClinicalReview,
        RecordIntegrationSession,
        RecordMaintenancePlan,
        RecordMaintenanceSession,
        PlaceHold,
        ReleaseHold,
        Withdraw,
        Reassign,
    )
}


class InsuranceStatus(StrEnum):
    COVERED = "covered"
    NOT_COVERED = "not_covered"
    PRIOR_AUTH_REQUIRED = "prior_auth_required"
    UNKNOWN = "unknown"


# Commands the workflow itself issues: the eligibility answer and the passing of time.
class PatientShare(_Payload):
    """What the payer says the patient pays for a mental-health visit (X12 271 EB segments).

    Amounts in the payer's currency (USD for X12); `coinsurance_rate` is a fraction (0.2 = 20 %).
    Each is None when the payer did not say.
    """

    copay: Decimal | None = Field(None, ge=0)
    coinsurance_rate: Decimal | None = Field(None, ge=0, le=1)
    deductible_remaining: Decimal | None = Field(None, ge=0)
    out_of_pocket_remaining: Decimal | None = Field(None, ge=0)


class RecordEligibility(_Payload):
    step: Literal["eligibility"] = "eligibility"
    status: InsuranceStatus
    reason: ReasonCode | None = None
    # As the payer answered; staff use them for the financial clearance.
    in_network: bool | None = None
    patient_share: PatientShare | None = None


class Tick(_Payload):
    """Time has passed: emit whatever reminders, overdue flags or lapses are now due."""

    step: Literal["tick"] = "tick"


Command = ClinicianCommand | RecordEligibility | Tick


class StepRequest(BaseModel):
    """One clinician step as the workflow update receives it."""

    model_config = BETWEEN_VERSIONS

    command: ClinicianCommand
    actor: Actor
    # The edge's proof that `actor` sent this very command (trust.signing); workers with keys
    # configured refuse a step without it.
    signature: CommandSignature | None = None
