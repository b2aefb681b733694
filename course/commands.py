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


# Descriptions the schema carries (the console's help text, `course record --schema`, the OpenAPI):
# the unit or what to enter, never a bound, which the schema states itself.
_BPM = "Beats per minute"
_MG_PER_KG = "mg/kg of body weight"
_GAD7 = "GAD-7 anxiety score, 0 to 21"
_SESSION = "Which dosing session of the plan: 1 for the first"
_REASON_CODE = "A short code (lower case, digits, _), e.g. travel or new_medication; never patient details"
_STAFF_ID_WORDS = "Their staff id, as given to `course staff add`"


class BloodPressure(_Payload):
    systolic: int = Field(ge=50, le=300, title="Systolic blood pressure", description="mmHg (the upper number)")
    diastolic: int = Field(ge=20, le=200, title="Diastolic blood pressure", description="mmHg (the lower number)")

    @model_validator(mode="after")
    def _plausible(self) -> BloodPressure:
        if self.diastolic >= self.systolic:
            raise ValueError("diastolic pressure must be lower than systolic")
        return self


class Vitals(BloodPressure):
    heart_rate: int = Field(ge=20, le=250, title="Heart rate", description=_BPM)


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
    blood_pressure: BloodPressure = Field(title="Blood pressure", description="Seated, at the assessment")
    heart_rate: int = Field(ge=20, le=250, title="Heart rate", description=_BPM)
    # Each contraindication once at most: more entries than the list has are not a history.
    contraindications: list[Contraindication] = Field(
        [],
        max_length=len(Contraindication),
        title="Contraindications",
        description="Every contraindication the patient has; none marked means none found",
    )
    relative_contraindication_rationale: FreeText | None = Field(
        None,
        title="Rationale for relative contraindications",
        description="Needed when a relative contraindication is marked: why treatment may still go ahead",
    )
    condition: Condition = Field(title="Condition", description="The anxiety condition being treated")
    gad7: Gad7 = Field(title="GAD-7 score", description=_GAD7 + " at baseline")


class RecordFinancialClearance(_Payload):
    step: Literal["financial-clearance"] = "financial-clearance"
    self_pay: bool = Field(title="Self-pay", description="The patient pays without insurance")
    estimated_cost_acknowledged: bool = Field(
        title="Estimated cost acknowledged", description="The patient was told the estimated cost and accepts it"
    )


class RecordPriorAuthorization(_Payload):
    step: Literal["prior-authorization"] = "prior-authorization"
    reference: str = Field(
        min_length=1, max_length=64, title="Authorization reference", description="The payer's reference number"
    )
    approved: bool = Field(title="Approved", description="The payer approved the treatment")


class RecordIntentions(_Payload):
    step: Literal["intentions"] = "intentions"
    goals: FreeText = Field(title="Goals", description="What the patient hopes the treatment changes, in their words")


class RecordConsent(_Payload):
    step: Literal["consent"] = "consent"
    form_version: str = Field(
        min_length=1,
        max_length=32,
        title="Consent form version",
        description="The form version printed on the signed consent, e.g. 2026-01",
    )
    signed_at: UtcDatetime = Field(title="Time of signature", description="When the patient signed the consent")


class RecordSupportPerson(_Payload):
    step: Literal["support-person"] = "support-person"
    name: str = Field(min_length=1, max_length=200, title="Support person's name")
    relationship: str = Field(
        min_length=1, max_length=64, title="Relationship to the patient", description="e.g. partner, sister, friend"
    )
    phone: str = Field(min_length=3, max_length=40, title="Phone", description="Where the clinic reaches them")


class RecordDosingPlan(_Payload):
    step: Literal["dosing-plan"] = "dosing-plan"
    route: Route = Field(title="Route", description="How the ketamine is given")
    planned_sessions: int = Field(
        6, ge=1, le=52, title="Planned sessions", description="Number of dosing sessions in the series"
    )
    starting_dose_mg_per_kg: DoseMgPerKg = Field(title="Starting dose", description=_MG_PER_KG)
    max_dose_mg_per_kg: DoseMgPerKg = Field(title="Maximum dose", description=_MG_PER_KG + "; no session goes above it")

    @model_validator(mode="after")
    def _dose_range(self) -> RecordDosingPlan:
        if self.starting_dose_mg_per_kg > self.max_dose_mg_per_kg:
            raise ValueError("the starting dose must not exceed the maximum dose")
        return self


class RecordOrientation(_Payload):
    step: Literal["orientation"] = "orientation"
    topics: list[OrientationTopic] = Field(
        min_length=1,
        max_length=20,
        title="Topics covered",
        description="One heading per topic, e.g. what to expect, ride home; not the session's notes",
    )


class ScheduleSession(_Payload):
    step: Literal["schedule-session"] = "schedule-session"
    session_number: SessionNumber = Field(title="Session number", description=_SESSION)
    scheduled_at: UtcDatetime = Field(title="Scheduled time", description="When the dosing session starts")


class CheckIn(_Payload):
    step: Literal["check-in"] = "check-in"
    session_number: SessionNumber = Field(title="Session number", description=_SESSION)
    vitals: Vitals = Field(title="Pre-dose vitals", description="Measured at check-in, before the dose")
    ride_home_arranged: bool = Field(
        title="Ride home arranged", description="An adult takes the patient home after the session"
    )


class SideEffect(_Payload):
    effect: SideEffectKind = Field(title="Side effect")
    severity: Severity = Field(title="Severity")


class RecordDosingSession(_Payload):
    step: Literal["dosing-session"] = "dosing-session"
    session_number: SessionNumber = Field(title="Session number", description=_SESSION)
    route: Route = Field(title="Route", description="How the ketamine was given")
    dose_mg_per_kg: DoseMgPerKg = Field(title="Dose", description=_MG_PER_KG + ", as given")
    post_vitals: Vitals = Field(title="Post-dose vitals", description="Measured before the patient leaves")
    side_effects: list[SideEffect] = Field(
        [],
        max_length=MAX_SIDE_EFFECTS,
        title="Side effects",
        description="Each side effect observed, with its severity; none listed means none observed",
    )
    patient_response: PatientResponse = Field(
        title="Patient response", description="How the patient is compared with before the session"
    )
    gad7: Gad7 | None = Field(None, title="GAD-7 score", description=_GAD7 + "; leave empty if not taken")


class RecordClinicalReview(_Payload):
    step: Literal["clinical-review"] = "clinical-review"
    decision: ReviewDecision = Field(title="Decision")
    new_dose_mg_per_kg: DoseMgPerKg | None = Field(
        None, title="New dose", description=_MG_PER_KG + "; needed to adjust the dose"
    )
    new_route: Route | None = Field(None, title="New route", description="Needed to change the route")
    rationale: FreeText = Field(title="Rationale", description="Why this decision, for the care team")

    @model_validator(mode="after")
    def _decision_fields(self) -> RecordClinicalReview:
        if self.decision is ReviewDecision.ADJUST_DOSE and self.new_dose_mg_per_kg is None:
            raise ValueError("adjust_dose needs new_dose_mg_per_kg")
        if self.decision is ReviewDecision.CHANGE_ROUTE and self.new_route is None:
            raise ValueError("change_route needs new_route")
        return self


class RecordIntegrationSession(_Payload):
    step: Literal["integration-session"] = "integration-session"
    modality: Modality = Field(title="Therapy modality")
    held_at: UtcDatetime = Field(title="Time the session was held")
    gad7: Gad7 | None = Field(None, title="GAD-7 score", description=_GAD7 + "; leave empty if not taken")


class RecordMaintenancePlan(_Payload):
    step: Literal["maintenance-plan"] = "maintenance-plan"
    kind: MaintenanceKind = Field(title="Maintenance")
    interval_days: int | None = Field(
        None,
        ge=1,
        le=3650,
        title="Interval (days)",
        description="Days between maintenance sessions; needed unless there is no maintenance",
    )

    @model_validator(mode="after")
    def _interval(self) -> RecordMaintenancePlan:
        if self.kind is not MaintenanceKind.NONE and self.interval_days is None:
            raise ValueError("a ketamine or therapy_only plan needs interval_days")
        return self


class RecordMaintenanceSession(_Payload):
    step: Literal["maintenance-session"] = "maintenance-session"
    kind: Literal[MaintenanceKind.KETAMINE, MaintenanceKind.THERAPY_ONLY] = Field(title="Session kind")
    held_at: UtcDatetime = Field(title="Time the session was held")
    gad7: Gad7 | None = Field(None, title="GAD-7 score", description=_GAD7 + "; leave empty if not taken")


class SedationScale(StrEnum):
    # Modified Observer's Assessment of Alertness/Sedation: 0 (unresponsive) to 5 (alert).
    MOAAS = "moaas"


class Dissociation(StrEnum):
    PRESENT = "present"
    RESOLVED = "resolved"


class Sedation(_Payload):
    """A score on a named scale: the scale travels with the number (a 5 means nothing alone)."""

    scale: SedationScale = Field(SedationScale.MOAAS, title="Sedation scale")
    score: int = Field(ge=0, le=5, title="Sedation score", description="MOAA/S: 0 unresponsive to 5 fully alert")


class AdministerDose(_Payload):
    """The dose given, for a course whose policy monitors the patient afterwards: starts the clock."""

    step: Literal["dose-administered"] = "dose-administered"
    session_number: SessionNumber = Field(title="Session number", description=_SESSION)
    route: Route = Field(title="Route", description="How the ketamine was given")
    dose_mg_per_kg: DoseMgPerKg = Field(title="Dose", description=_MG_PER_KG + ", as given")
    given_at: UtcDatetime = Field(title="Time given", description="When the dose was given: the monitoring starts")


class RecordMonitoringReading(_Payload):
    step: Literal["monitoring-reading"] = "monitoring-reading"
    session_number: SessionNumber = Field(title="Session number", description=_SESSION)
    taken_at: UtcDatetime = Field(title="Time taken")
    blood_pressure: BloodPressure = Field(title="Blood pressure")
    heart_rate: int = Field(ge=20, le=250, title="Heart rate", description=_BPM)
    spo2: int = Field(ge=50, le=100, title="Oxygen saturation", description="SpO2 by pulse oximetry, %")
    sedation: Sedation = Field(title="Sedation")
    dissociation: Dissociation = Field(title="Dissociation", description="Still present, or resolved")
    side_effects: list[SideEffect] = Field(
        [], max_length=MAX_SIDE_EFFECTS, title="Side effects", description="Each side effect now, with its severity"
    )


class RecordDischarge(_Payload):
    step: Literal["discharge"] = "discharge"
    session_number: SessionNumber = Field(title="Session number", description=_SESSION)
    discharged_at: UtcDatetime = Field(title="Time of discharge")
    # Who takes the patient home (they must not drive until the next day): a person, not an id.
    collected_by: str = Field(
        min_length=1, max_length=200, title="Collected by", description="The adult who takes the patient home"
    )
    relationship: str = Field(min_length=1, max_length=64, title="Relationship", description="e.g. spouse, friend")
    patient_response: PatientResponse = Field(
        title="Patient response", description="How the patient is compared with before the session"
    )
    gad7: Gad7 | None = Field(None, title="GAD-7 score", description=_GAD7 + "; leave empty if not taken")


class PlaceHold(_Payload):
    step: Literal["hold"] = "hold"
    reason: ReasonCode = Field(title="Reason code", description=_REASON_CODE)


class ReleaseHold(_Payload):
    step: Literal["release"] = "release"


class Withdraw(_Payload):
    step: Literal["withdraw"] = "withdraw"
    reason: ReasonCode = Field(title="Reason code", description=_REASON_CODE)


class Reassign(_Payload):
    step: Literal["reassign"] = "reassign"
    clinician_id: StaffId | None = Field(None, title="New prescriber", description=_STAFF_ID_WORDS)
    therapist_id: StaffId | None = Field(None, title="New therapist", description=_STAFF_ID_WORDS)

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
    | AdministerDose
    | RecordMonitoringReading
    | RecordDischarge
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
        AdministerDose,
        RecordMonitoringReading,
        RecordDischarge,
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
