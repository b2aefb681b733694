"""Course state and `evolve`: the state is always the fold of its events."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict

from course.commands import (
    BloodPressure,
    Condition,
    Contraindication,
    InsuranceStatus,
    MaintenanceKind,
    Modality,
    PatientShare,
    Route,
    Vitals,
)
from course.events import (
    AssessmentRecorded,
    CandidacyConfirmed,
    CareTeamReassigned,
    CheckedIn,
    ClinicalReviewRecorded,
    ClinicalReviewRequired,
    ConsentRecorded,
    CourseClosed,
    CourseOpened,
    DomainEvent,
    DoseAdministered,
    DosingPlanRecorded,
    DosingSeriesCompleted,
    DosingSessionCompleted,
    DosingSessionDeferred,
    EligibilityChecked,
    EventEnvelope,
    FinancialClearanceRecorded,
    FollowUpOverdue,
    HoldPlaced,
    HoldReleased,
    IntegrationSessionRecorded,
    IntentionsRecorded,
    MaintenanceOverdue,
    MaintenancePlanRecorded,
    MaintenanceSessionRecorded,
    MonitoringReadingRecorded,
    OrientationRecorded,
    PatientDischarged,
    PreparationCompleted,
    PriorAuthorizationRecorded,
    ReminderSent,
    SessionScheduled,
    SupportPersonRecorded,
)
from course.monitored import MonitoredSession, Reading
from course.policy import CoursePolicy, PolicyRef


class Phase(StrEnum):
    ASSESSMENT = "assessment"
    PREPARATION = "preparation"
    DOSING = "dosing"
    INTEGRATION = "integration"
    MAINTENANCE = "maintenance"
    CLOSED = "closed"


class DosingPlan(BaseModel):
    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    route: Route
    planned_sessions: int
    starting_dose_mg_per_kg: float
    max_dose_mg_per_kg: float


class Deferral(BaseModel):
    """A dosing session put off at check-in: which, when, why (a code) and the reading behind it."""

    model_config = ConfigDict(frozen=True)

    session_number: int
    at: AwareDatetime
    reason: str
    vitals: Vitals


class CourseState(BaseModel):
    """Everything the rules need, and nothing that cannot be rebuilt from the events."""

    # A snapshot from a newer worker (rolling deploys); no NaN or infinity, which JSON cannot carry.
    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    course_id: UUID
    stream_id: str
    patient_id: str
    clinician_id: str
    therapist_id: str | None
    condition: Condition | None
    policy: CoursePolicy
    policy_ref: PolicyRef | None = None  # a default keeps older snapshots loadable
    self_pay: bool
    opened_at: AwareDatetime
    version: int = 0
    phase: Phase = Phase.ASSESSMENT
    phase_entered_at: AwareDatetime
    outcome: str | None = None
    close_reasons: list[str] = []

    insurance: InsuranceStatus | None = None
    insurance_checked_at: AwareDatetime | None = None
    in_network: bool | None = None
    patient_share: PatientShare | None = None
    financial_clearance: bool = False
    prior_authorization_approved: bool = False

    assessed: bool = False
    # The assessment's reading: why a course closed as ineligible, in words (course/reasons.py).
    # Defaults here and below keep older snapshots loadable.
    assessment_blood_pressure: BloodPressure | None = None
    relative_contraindications: list[Contraindication] = []
    candidacy_confirmed: bool = False

    intentions: bool = False
    consent_version: str | None = None
    support_person: bool = False
    plan: DosingPlan | None = None
    orientation: bool = False
    preparation_completed: bool = False

    current_route: Route | None = None
    current_dose_mg_per_kg: float | None = None
    scheduled: dict[int, AwareDatetime] = {}
    checked_in: int | None = None
    # The session being monitored after its dose (courses whose policy monitors), until discharge.
    monitoring: MonitoredSession | None = None
    sessions_completed: int = 0
    sessions_deferred: int = 0
    last_dose_at: AwareDatetime | None = None
    review_required: bool = False
    review_reasons: list[str] = []
    deferrals: list[Deferral] = []
    series_completed_at: AwareDatetime | None = None

    integration_sessions: int = 0
    integration_since_last_dose: bool = True
    post_series_integration_sessions: int = 0
    last_integration_at: AwareDatetime | None = None
    # What makes a session the same session again (a form sent twice, from two tablets): the
    # decider refuses these as already recorded. Defaults keep older snapshots loadable.
    integration_sessions_held: list[tuple[Modality, AwareDatetime]] = []

    maintenance_kind: MaintenanceKind | None = None
    maintenance_interval_days: int | None = None
    maintenance_due_at: AwareDatetime | None = None
    maintenance_sessions: int = 0
    maintenance_sessions_held: list[AwareDatetime] = []
    needs_review: bool = False

    on_hold: bool = False
    holds_placed: int = 0
    hold_reason: str | None = None
    hold_clinical: bool = False
    held_since: AwareDatetime | None = None
    # Reminders and deadlines move back by the time spent on hold: a paused course should not
    # lapse, or be flagged overdue, for time in which the clinic told it to wait. `hold_credit`
    # is all time on hold so far; each clock remembers the credit when it started, and is
    # shifted by the hold time since (`shift`).
    hold_credit: timedelta = timedelta(0)
    phase_hold_mark: timedelta = timedelta(0)
    dose_hold_mark: timedelta = timedelta(0)
    integration_hold_mark: timedelta = timedelta(0)
    maintenance_hold_mark: timedelta = timedelta(0)
    overdue: list[str] = []
    fired: list[str] = []

    gad7_baseline: int | None = None
    gad7_latest: int | None = None

    @property
    def terminal(self) -> bool:
        return self.phase is Phase.CLOSED

    def shift(self, mark: timedelta) -> timedelta:
        """Time spent on hold since a clock started at `mark`."""
        return self.hold_credit - mark


def _opened(event: CourseOpened, at: datetime, stream_id: str) -> CourseState:
    return CourseState(
        course_id=event.course_id,
        stream_id=stream_id,
        patient_id=event.patient_id,
        clinician_id=event.clinician_id,
        therapist_id=event.therapist_id,
        condition=event.condition,
        policy=event.policy,
        policy_ref=event.policy_ref,
        self_pay=event.self_pay,
        opened_at=at,
        phase_entered_at=at,
    )


def _clear_overdue(state: CourseState, prefix: str) -> list[str]:
    return [key for key in state.overdue if not key.startswith(prefix)]


def evolve(state: CourseState | None, envelope: EventEnvelope) -> CourseState:
    """Apply one stored event. Pure: the same events always give the same state."""
    event, at = envelope.event, envelope.occurred_at
    if state is None:
        if not isinstance(event, CourseOpened):
            raise ValueError("a course stream must start with CourseOpened")
        return _opened(event, at, envelope.stream_id).model_copy(update={"version": envelope.version})
    if envelope.version != state.version + 1:
        raise ValueError(f"event version {envelope.version} does not follow {state.version}")
    changes = _changes(state, event, at)
    changes["version"] = envelope.version
    return state.model_copy(update=changes)


def apply(state: CourseState, event: DomainEvent, at: datetime) -> CourseState:
    """The state an event would lead to, before it has a version: lets the decider look ahead."""
    return state.model_copy(update=_changes(state, event, at))


def _changes(state: CourseState, event: DomainEvent, at: datetime) -> dict[str, object]:
    match event:
        case CourseOpened():
            raise ValueError("a course is opened only once")
        case EligibilityChecked(status=status, in_network=in_network, patient_share=share):
            return {"insurance": status, "insurance_checked_at": at, "in_network": in_network, "patient_share": share}
        case FinancialClearanceRecorded():
            return {"financial_clearance": True}
        case PriorAuthorizationRecorded(approved=approved):
            return {"prior_authorization_approved": approved}
        case AssessmentRecorded(contraindications=found, gad7=gad7, condition=condition):
            return {
                "assessed": True,
                "assessment_blood_pressure": event.blood_pressure,
                "relative_contraindications": list(found),
                "gad7_baseline": gad7,
                "gad7_latest": gad7,
                "condition": condition,
            }
        case CandidacyConfirmed():
            return {
                "candidacy_confirmed": True,
                "phase": Phase.PREPARATION,
                "phase_entered_at": at,
                "overdue": [],
                "phase_hold_mark": state.hold_credit,
            }
        case IntentionsRecorded():
            return {"intentions": True}
        case ConsentRecorded(form_version=version):
            return {"consent_version": version}
        case SupportPersonRecorded():
            return {"support_person": True}
        case DosingPlanRecorded():
            plan = DosingPlan(
                route=event.route,
                planned_sessions=event.planned_sessions,
                starting_dose_mg_per_kg=event.starting_dose_mg_per_kg,
                max_dose_mg_per_kg=event.max_dose_mg_per_kg,
            )
            return {"plan": plan, "current_route": plan.route, "current_dose_mg_per_kg": plan.starting_dose_mg_per_kg}
        case OrientationRecorded():
            return {"orientation": True}
        case PreparationCompleted():
            return {
                "preparation_completed": True,
                "phase": Phase.DOSING,
                "phase_entered_at": at,
                "overdue": [],
                "phase_hold_mark": state.hold_credit,
            }
        case SessionScheduled(session_number=n, scheduled_at=when):
            return {"scheduled": {**state.scheduled, n: when}}
        case ReminderSent(key=key):
            return {"fired": [*state.fired, key]}
        case CheckedIn(session_number=n):
            return {"checked_in": n}
        case DoseAdministered(session_number=n, route=route, dose_mg_per_kg=dose, given_at=given):
            return {
                "monitoring": MonitoredSession(session_number=n, route=route.value, dose_mg_per_kg=dose, given_at=given)
            }
        case MonitoringReadingRecorded():
            assert state.monitoring is not None
            reading = Reading.of(event)
            readings = sorted([*state.monitoring.readings, reading], key=lambda r: r.taken_at)
            prefix = f"monitoring-{event.session_number}-recheck"
            return {
                "monitoring": state.monitoring.model_copy(update={"readings": readings}),
                "overdue": _clear_overdue(state, prefix),
            }
        case PatientDischarged():
            return {"monitoring": None, "overdue": _clear_overdue(state, "monitoring-")}
        case DosingSessionDeferred(session_number=n, reason=reason, vitals=vitals):
            deferral = Deferral(session_number=n, at=at, reason=reason, vitals=vitals)
            return {
                "checked_in": None,
                "sessions_deferred": state.sessions_deferred + 1,
                "deferrals": [*state.deferrals, deferral],
            }
        case DosingSessionCompleted(session_number=n, gad7=gad7):
            return {
                "checked_in": None,
                "sessions_completed": n,
                "last_dose_at": at,
                "integration_since_last_dose": False,
                "dose_hold_mark": state.hold_credit,
                "overdue": _clear_overdue(state, "integration"),
                "gad7_latest": gad7 if gad7 is not None else state.gad7_latest,
            }
        case ClinicalReviewRequired(reasons=reasons):
            return {"review_required": True, "review_reasons": list(reasons)}
        case ClinicalReviewRecorded(new_dose_mg_per_kg=dose, new_route=route):
            return {
                "review_required": False,
                "review_reasons": [],
                "current_dose_mg_per_kg": dose or state.current_dose_mg_per_kg,
                "current_route": route or state.current_route,
            }
        case IntegrationSessionRecorded(modality=modality, held_at=held_at, gad7=gad7):
            after_series = state.series_completed_at is not None
            return {
                "integration_sessions": state.integration_sessions + 1,
                "integration_sessions_held": [*state.integration_sessions_held, (modality, held_at)],
                "post_series_integration_sessions": state.post_series_integration_sessions + (1 if after_series else 0),
                "integration_since_last_dose": True,
                "last_integration_at": at,
                "integration_hold_mark": state.hold_credit,
                "overdue": _clear_overdue(state, "integration"),
                "gad7_latest": gad7 if gad7 is not None else state.gad7_latest,
            }
        case FollowUpOverdue(key=key):
            return {"overdue": [*state.overdue, key], "fired": [*state.fired, key]}
        case DosingSeriesCompleted():
            return {
                "series_completed_at": at,
                "phase": Phase.INTEGRATION,
                "phase_entered_at": at,
                "checked_in": None,
                "phase_hold_mark": state.hold_credit,
                "integration_hold_mark": state.hold_credit,
            }
        case MaintenancePlanRecorded(kind=kind, interval_days=days, next_due_at=due):
            return {
                "maintenance_kind": kind,
                "maintenance_interval_days": days,
                "maintenance_due_at": due,
                "phase": Phase.MAINTENANCE,
                "phase_entered_at": at if state.phase is not Phase.MAINTENANCE else state.phase_entered_at,
                "phase_hold_mark": state.hold_credit if state.phase is not Phase.MAINTENANCE else state.phase_hold_mark,
                "maintenance_hold_mark": state.hold_credit,
                "overdue": _clear_overdue(state, "maintenance"),
                "needs_review": False,
            }
        case MaintenanceSessionRecorded(held_at=held_at, gad7=gad7, next_due_at=due):
            threshold = state.policy.gad7_review_threshold
            return {
                "maintenance_sessions": state.maintenance_sessions + 1,
                "maintenance_sessions_held": [*state.maintenance_sessions_held, held_at],
                "maintenance_due_at": due,
                "maintenance_hold_mark": state.hold_credit,
                "overdue": _clear_overdue(state, "maintenance"),
                "needs_review": gad7 is not None and gad7 >= threshold,
                "gad7_latest": gad7 if gad7 is not None else state.gad7_latest,
            }
        case MaintenanceOverdue(key=key):
            return {"overdue": [*state.overdue, key], "fired": [*state.fired, key]}
        case HoldPlaced(reason=reason, clinical=clinical):
            return {
                "on_hold": True,
                "holds_placed": state.holds_placed + 1,
                "hold_reason": reason,
                "hold_clinical": clinical,
                "held_since": at,
            }
        case HoldReleased():
            held = at - state.held_since if state.held_since else timedelta(0)
            return {
                "on_hold": False,
                "hold_reason": None,
                "hold_clinical": False,
                "held_since": None,
                "hold_credit": state.hold_credit + held,
            }
        case CareTeamReassigned(clinician_id=clinician, therapist_id=therapist):
            return {"clinician_id": clinician or state.clinician_id, "therapist_id": therapist or state.therapist_id}
        case CourseClosed(outcome=outcome, reasons=reasons):
            return {
                "phase": Phase.CLOSED,
                "outcome": outcome,
                "close_reasons": list(reasons),
                "on_hold": False,
                "hold_clinical": False,
                "review_required": False,
                "review_reasons": [],
            }
    raise ValueError(f"unhandled event {event.type}")  # pragma: no cover - the union is closed


def fold(state: CourseState | None, envelopes: Iterable[EventEnvelope]) -> CourseState | None:
    for envelope in envelopes:
        state = evolve(state, envelope)
    return state
