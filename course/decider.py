"""`decide(state, command, actor, now) -> events`: every clinical rule, no I/O, no clock."""

from __future__ import annotations

from datetime import datetime, timedelta

from course.commands import (
    Actor,
    CheckIn,
    Command,
    MaintenanceKind,
    PlaceHold,
    Reassign,
    RecordAssessment,
    RecordClinicalReview,
    RecordConsent,
    RecordDosingPlan,
    RecordDosingSession,
    RecordEligibility,
    RecordFinancialClearance,
    RecordIntegrationSession,
    RecordIntentions,
    RecordMaintenancePlan,
    RecordMaintenanceSession,
    RecordOrientation,
    RecordPriorAuthorization,
    RecordSupportPerson,
    ReleaseHold,
    ReviewDecision,
    ScheduleSession,
    Tick,
    Withdraw,
)
from course.errors import RuleViolation, require
from course.events import (
    AssessmentRecorded,
    CandidacyConfirmed,
    CareTeamReassigned,
    CheckedIn,
    ClinicalReviewRecorded,
    ClinicalReviewRequired,
    ConsentRecorded,
    CourseClosed,
    DomainEvent,
    DosingPlanRecorded,
    DosingSeriesCompleted,
    DosingSessionCompleted,
    DosingSessionDeferred,
    EligibilityChecked,
    FinancialClearanceRecorded,
    FollowUpOverdue,
    HoldPlaced,
    HoldReleased,
    IntegrationSessionRecorded,
    IntentionsRecorded,
    MaintenanceOverdue,
    MaintenancePlanRecorded,
    MaintenanceSessionRecorded,
    OrientationRecorded,
    PreparationCompleted,
    PriorAuthorizationRecorded,
    ReminderSent,
    SessionScheduled,
    SupportPersonRecorded,
)
from course.rules import (
    CLINICAL_ROLES,
    at_or_above,
    clinical_hold_refusal,
    ineligibility_reasons,
    integration_already_recorded,
    maintenance_already_recorded,
    missing_before_first_dose,
    review_reasons,
    role_refusal,
)
from course.state import CourseState, Phase, apply
from course.timing import pending

# A held_at a few minutes ahead is clock skew between the clinic's devices, not the future.
_CLOCK_SKEW = timedelta(minutes=5)


def decide(
    state: CourseState, command: Command, actor: Actor, now: datetime, *, session_window: bool = True
) -> list[DomainEvent]:
    """The events a command produces, or a RuleViolation saying why not. Nothing else.

    `session_window`: check-in and dose open only shortly before the session's scheduled time (the
    policy's `session_opens_before`). Off only for histories recorded before the rule existed, which
    must replay as they ran (workflows/treatment_course.py)."""
    if isinstance(command, Tick):
        return _tick(state, now)
    if isinstance(command, RecordEligibility):
        # The payer's answer can arrive after the course closed, and is asked for once: a late or
        # repeated answer is moot, never an error that would fail the workflow task.
        if state.terminal or state.insurance is not None:
            return []
        checked = EligibilityChecked(
            status=command.status,
            reason=command.reason,
            in_network=command.in_network,
            patient_share=command.patient_share,
        )
        return _then_prepared(state, [checked], now)
    if state.terminal:
        raise RuleViolation(
            "course_closed",
            f"This course is closed ({state.outcome}); it accepts no further steps.",
        )
    refusal = role_refusal(actor.role, command.step)
    if refusal is not None:
        raise RuleViolation("role_not_permitted", refusal)
    events = _decide_step(state, command, actor, now)
    if session_window and isinstance(command, CheckIn | RecordDosingSession):
        # After the step's own rules: "already checked in" or "on hold" says more than "too early".
        _not_before_the_session(state, command, now)
    return _then_prepared(state, events, now)


def _not_before_the_session(state: CourseState, command: CheckIn | RecordDosingSession, now: datetime) -> None:
    """A check-in or a dose hours before the session's time is a wrong course, session or clock."""
    scheduled = state.scheduled.get(command.session_number)
    if scheduled is None:
        return  # a session checked in without an appointment: nothing to be early for
    opens = scheduled - state.policy.session_opens_before
    what = "check-in opens" if isinstance(command, CheckIn) else "a dose can be recorded from"
    require(
        now >= opens,
        "too_early_for_session",
        f"Session {command.session_number} is scheduled for {scheduled:%Y-%m-%d %H:%M} UTC; {what} "
        f"{_spoken(state.policy.session_opens_before)} before, at {opens:%Y-%m-%d %H:%M} UTC. "
        "Check the course and the session number, or reschedule the session.",
    )


def _spoken(span: timedelta) -> str:
    minutes = int(span.total_seconds() // 60)
    if minutes % 60:
        return f"{minutes} minutes"
    hours = minutes // 60
    return "1 hour" if hours == 1 else f"{hours} hours"


def _decide_step(state: CourseState, command: Command, actor: Actor, now: datetime) -> list[DomainEvent]:
    match command:
        case RecordAssessment():
            return _assess(state, command)
        case RecordFinancialClearance():
            _before_dosing(state, "financial-clearance")
            require(
                command.estimated_cost_acknowledged,
                "cost_not_acknowledged",
                "The patient must acknowledge the estimated cost before clearance is recorded.",
            )
            require(
                not state.financial_clearance,
                "already_recorded",
                "Financial clearance is already recorded for this course.",
            )
            return [FinancialClearanceRecorded(**command.model_dump(exclude={"step"}))]
        case RecordPriorAuthorization():
            _before_dosing(state, "prior-authorization")
            require(
                not state.prior_authorization_approved,
                "already_recorded",
                "An approved prior authorization is already recorded for this course.",
            )
            return [PriorAuthorizationRecorded(reference=command.reference, approved=command.approved)]
        case RecordIntentions(goals=goals):
            _in_phase(state, "intentions", Phase.PREPARATION, Phase.DOSING)
            return [IntentionsRecorded(goals=goals)]
        case RecordConsent():
            _in_phase(state, "consent", Phase.PREPARATION)
            current = state.policy.consent_form_version
            require(
                command.form_version == current,
                "consent_outdated",
                f"Consent form version {command.form_version} is not current; the patient must sign version {current}.",
            )
            require(
                command.signed_at <= now + _CLOCK_SKEW,
                "signed_in_future",
                "The consent signature time is in the future.",
            )
            return [ConsentRecorded(form_version=command.form_version, signed_at=command.signed_at)]
        case RecordSupportPerson():
            _in_phase(state, "support-person", Phase.PREPARATION, Phase.DOSING)
            return [SupportPersonRecorded(**command.model_dump(exclude={"step"}))]
        case RecordDosingPlan():
            return _plan(state, command)
        case RecordOrientation(topics=topics):
            _in_phase(state, "orientation", Phase.PREPARATION)
            return [OrientationRecorded(topics=list(topics))]
        case ScheduleSession(session_number=n, scheduled_at=when):
            _in_phase(state, "schedule-session", Phase.PREPARATION, Phase.DOSING)
            planned = state.plan.planned_sessions if state.plan else state.policy.max_planned_sessions
            require(
                state.sessions_completed < n <= planned,
                "session_out_of_order",
                f"Session {n} cannot be scheduled: sessions {state.sessions_completed + 1} to {planned} remain.",
            )
            require(when > now, "schedule_in_past", "A session must be scheduled in the future.")
            return [SessionScheduled(session_number=n, scheduled_at=when)]
        case CheckIn():
            return _check_in(state, command)
        case RecordDosingSession():
            return _dose(state, command)
        case RecordClinicalReview():
            return _review(state, command)
        case RecordIntegrationSession():
            _in_phase(state, "integration-session", Phase.DOSING, Phase.INTEGRATION, Phase.MAINTENANCE)
            require(
                command.held_at <= now + _CLOCK_SKEW,
                "held_in_future",
                "An integration session cannot be recorded before it has been held.",
            )
            require(
                not integration_already_recorded(state, command.modality, command.held_at),
                "already_recorded",
                "An integration session of this modality at this time is already recorded for this course.",
            )
            return [IntegrationSessionRecorded(**command.model_dump(exclude={"step"}))]
        case RecordMaintenancePlan():
            return _maintenance_plan(state, command, now)
        case RecordMaintenanceSession():
            _in_phase(state, "maintenance-session", Phase.MAINTENANCE)
            require(
                command.held_at <= now + _CLOCK_SKEW,
                "held_in_future",
                "A maintenance session cannot be recorded before it has been held.",
            )
            require(
                not maintenance_already_recorded(state, command.held_at),
                "already_recorded",
                "A maintenance session at this time is already recorded for this course.",
            )
            assert state.maintenance_interval_days is not None
            next_due = command.held_at + state.policy.day_length * state.maintenance_interval_days
            return [
                MaintenanceSessionRecorded(
                    kind=command.kind, held_at=command.held_at, gad7=command.gad7, next_due_at=next_due
                )
            ]
        case PlaceHold(reason=reason):
            require(not state.on_hold, "already_on_hold", "This course is already on hold.")
            return [HoldPlaced(reason=reason, clinical=actor.role in CLINICAL_ROLES)]
        case ReleaseHold():
            require(state.on_hold, "not_on_hold", "This course is not on hold.")
            refusal = clinical_hold_refusal(state, actor.role)
            if refusal is not None:
                raise RuleViolation("clinical_hold", refusal)
            return [HoldReleased()]
        case Withdraw(reason=reason):
            return [CourseClosed(outcome="withdrawn", reasons=[reason])]
        case Reassign(clinician_id=clinician, therapist_id=therapist):
            return [CareTeamReassigned(clinician_id=clinician, therapist_id=therapist)]
    raise RuleViolation("unknown_step", f"'{command.step}' is not a step this course knows.")


def _in_phase(state: CourseState, step: str, *phases: Phase) -> None:
    if state.phase in phases:
        return
    if state.phase is Phase.ASSESSMENT:
        raise RuleViolation("assessment_first", f"Record the assessment (and confirm candidacy) before '{step}'.")
    raise RuleViolation(
        "wrong_phase",
        f"'{step}' cannot be recorded while the course is in "
        f"{state.phase.value}; it belongs to {', '.join(p.value for p in phases)}.",
    )


def _before_dosing(state: CourseState, step: str) -> None:
    _in_phase(state, step, Phase.ASSESSMENT, Phase.PREPARATION)


def _assess(state: CourseState, command: RecordAssessment) -> list[DomainEvent]:
    require(
        state.phase is Phase.ASSESSMENT and not state.assessed,
        "already_recorded",
        "The assessment is already recorded for this course.",
    )
    recorded = AssessmentRecorded(**command.model_dump(exclude={"step"}))
    reasons = ineligibility_reasons(command.contraindications, command.blood_pressure, state.policy.bp_threshold)
    if reasons:
        return [recorded, CourseClosed(outcome="ineligible", reasons=reasons)]
    relative = sorted(set(command.contraindications), key=lambda c: c.value)
    require(
        not relative or command.relative_contraindication_rationale is not None,
        "rationale_required",
        "Relative contraindications were found ("
        + ", ".join(c.value for c in relative)
        + "): the prescriber must write a rationale to proceed.",
    )
    return [recorded, CandidacyConfirmed(relative_contraindications=relative)]


def _plan(state: CourseState, command: RecordDosingPlan) -> list[DomainEvent]:
    _in_phase(state, "dosing-plan", Phase.PREPARATION)
    limit = state.policy.max_planned_sessions
    require(command.planned_sessions <= limit, "too_many_sessions", f"At most {limit} dosing sessions can be planned.")
    return [DosingPlanRecorded(**command.model_dump(exclude={"step"}))]


def _ready_to_dose(state: CourseState, session_number: int) -> None:
    # A repeat of a finished session (a form sent twice) says so, whatever phase the course is in now.
    require(
        session_number > state.sessions_completed,
        "already_recorded",
        f"Dosing session {session_number} is already recorded for this course.",
    )
    if state.phase in (Phase.ASSESSMENT, Phase.PREPARATION):
        raise RuleViolation(
            "preparation_incomplete",
            "No dose before preparation is complete; "
            "still missing: " + ", ".join(missing_before_first_dose(state)) + ".",
        )
    _in_phase(state, "dosing", Phase.DOSING)
    require(not state.on_hold, "on_hold", "This course is on hold: release the hold before dosing.")
    require(
        not state.review_required, "review_required", "A prescriber must review the last session before the next dose."
    )
    expected = state.sessions_completed + 1
    require(
        session_number == expected,
        "session_out_of_order",
        f"The next dosing session is number {expected}, not {session_number}.",
    )


def _check_in(state: CourseState, command: CheckIn) -> list[DomainEvent]:
    _ready_to_dose(state, command.session_number)
    require(state.checked_in is None, "already_checked_in", f"Session {command.session_number} is already checked in.")
    require(
        command.ride_home_arranged,
        "no_ride_home",
        "The patient must not drive after a dose: confirm a ride home before check-in.",
    )
    if at_or_above(command.vitals, state.policy.bp_threshold):
        return [
            DosingSessionDeferred(
                session_number=command.session_number, vitals=command.vitals, reason="bp_above_threshold"
            )
        ]
    return [CheckedIn(session_number=command.session_number, vitals=command.vitals)]


def _dose(state: CourseState, command: RecordDosingSession) -> list[DomainEvent]:
    n = command.session_number
    _ready_to_dose(state, n)
    require(
        state.checked_in == n,
        "not_checked_in",
        f"Check the patient in (pre-dose vitals, ride home) before recording session {n}.",
    )
    assert state.plan is not None and state.current_route is not None
    require(
        command.route == state.current_route,
        "route_mismatch",
        f"The plan's route is {state.current_route.value}, not {command.route.value}.",
    )
    limit = state.plan.max_dose_mg_per_kg
    require(command.dose_mg_per_kg <= limit, "dose_above_limit", f"The dose exceeds the plan's limit of {limit} mg/kg.")
    events: list[DomainEvent] = [DosingSessionCompleted(**command.model_dump(exclude={"step"}))]
    reasons = review_reasons(command)
    if reasons:
        events.append(ClinicalReviewRequired(session_number=n, reasons=reasons))
    if n >= state.plan.planned_sessions:
        events.append(DosingSeriesCompleted(sessions_completed=n, reason="all_planned_sessions"))
    return events


def _review(state: CourseState, command: RecordClinicalReview) -> list[DomainEvent]:
    require(state.review_required, "no_review_pending", "No clinical review is pending.")
    recorded = ClinicalReviewRecorded(**command.model_dump(exclude={"step"}))
    dosing = state.phase is Phase.DOSING
    match command.decision:
        case ReviewDecision.ADJUST_DOSE | ReviewDecision.CHANGE_ROUTE if not dosing:
            raise RuleViolation(
                "series_completed", "The dosing series has ended; choose continue, end_dosing or close_course."
            )
        case ReviewDecision.ADJUST_DOSE:
            assert state.plan is not None and command.new_dose_mg_per_kg is not None
            limit = state.plan.max_dose_mg_per_kg
            require(
                command.new_dose_mg_per_kg <= limit,
                "dose_above_limit",
                f"The new dose exceeds the plan's limit of {limit} mg/kg.",
            )
        case ReviewDecision.END_DOSING if dosing:
            return [
                recorded,
                DosingSeriesCompleted(sessions_completed=state.sessions_completed, reason="ended_by_review"),
            ]
        case ReviewDecision.CLOSE_COURSE:
            return [recorded, CourseClosed(outcome="closed_by_clinician", reasons=["clinical_review"])]
    return [recorded]


def _maintenance_plan(state: CourseState, command: RecordMaintenancePlan, now: datetime) -> list[DomainEvent]:
    _in_phase(state, "maintenance-plan", Phase.INTEGRATION, Phase.MAINTENANCE)
    require(
        not state.review_required,
        "review_required",
        "A prescriber must record the pending clinical review before the maintenance plan.",
    )
    require(
        state.post_series_integration_sessions > 0,
        "integration_required",
        "At least one integration session after the dosing series is needed before the maintenance plan.",
    )
    if command.kind is MaintenanceKind.NONE:
        return [
            MaintenancePlanRecorded(kind=command.kind, interval_days=None, next_due_at=None),
            CourseClosed(outcome="completed", reasons=["no_maintenance"]),
        ]
    bounds = state.policy.maintenance_interval_days
    assert command.interval_days is not None
    require(
        bounds.min <= command.interval_days <= bounds.max,
        "interval_out_of_range",
        f"The maintenance interval must be between {bounds.min} and {bounds.max} days.",
    )
    due = now + state.policy.day_length * command.interval_days
    return [MaintenancePlanRecorded(kind=command.kind, interval_days=command.interval_days, next_due_at=due)]


def _then_prepared(state: CourseState, events: list[DomainEvent], now: datetime) -> list[DomainEvent]:
    """Preparation completes by itself once the last missing piece, whichever it is, arrives."""
    after = state
    for event in events:
        after = apply(after, event, now)
    if after.phase is Phase.PREPARATION and not missing_before_first_dose(after):
        return [*events, PreparationCompleted()]
    return events


def _tick(state: CourseState, now: datetime) -> list[DomainEvent]:
    events: list[DomainEvent] = []
    for item in pending(state, now):
        if item.at > now:
            break
        match item.kind:
            case "reminder":
                events.append(
                    ReminderSent(
                        key=item.key,
                        purpose=item.purpose,
                        recipient=item.recipient,
                        due_at=item.at,
                        session_number=item.session_number,
                        subject_at=item.subject_at,
                    )
                )
            case "overdue":
                events.append(FollowUpOverdue(key=item.key, what=item.purpose, due_at=item.at))
            case "maintenance_overdue":
                events += [
                    MaintenanceOverdue(key=item.key, due_at=item.at),
                    ReminderSent(
                        key=item.key.replace("overdue", "second-reminder"),
                        purpose="maintenance_overdue",
                        recipient="patient",
                        due_at=item.at,
                        subject_at=item.subject_at,
                    ),
                ]
            case "lapse":
                # A lapse ends the course: nothing after it is due any more.
                return [*events, CourseClosed(outcome="lapsed", reasons=[item.purpose])]
    return events
