"""`decide(state, command, actor, now) -> events`: every clinical rule, no I/O, no clock.

The rules of each phase live in `course/phases/` (assessment, preparation, dosing, integration,
maintenance); this module is the one entry point, with what spans phases: the payer's answer,
holds, withdrawal, reassignment and the timers' tick."""

from __future__ import annotations

from datetime import datetime

from course.commands import (
    Actor,
    AdministerDose,
    CheckIn,
    Command,
    PlaceHold,
    Reassign,
    RecordAssessment,
    RecordClinicalReview,
    RecordConsent,
    RecordDischarge,
    RecordDosingPlan,
    RecordDosingSession,
    RecordEligibility,
    RecordFinancialClearance,
    RecordIntegrationSession,
    RecordIntentions,
    RecordMaintenancePlan,
    RecordMaintenanceSession,
    RecordMonitoringReading,
    RecordOrientation,
    RecordPriorAuthorization,
    RecordSupportPerson,
    ReleaseHold,
    ScheduleSession,
    Tick,
    Withdraw,
)
from course.errors import RuleViolation, require
from course.events import (
    CareTeamReassigned,
    CourseClosed,
    DomainEvent,
    EligibilityChecked,
    FollowUpOverdue,
    HoldPlaced,
    HoldReleased,
    MaintenanceOverdue,
    ReminderSent,
)
from course.phases import assessment, dosing, integration, maintenance, monitoring, preparation
from course.rules import (
    CLINICAL_ROLES,
    clinical_hold_refusal,
    role_refusal,
)
from course.state import CourseState
from course.timing import DueItem, pending


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
        return preparation.then_prepared(state, [checked], now)
    if state.terminal:
        raise RuleViolation(
            "course_closed",
            f"This course is closed ({state.outcome}); it accepts no further steps.",
        )
    refusal = role_refusal(actor.role, command.step)
    if refusal is not None:
        raise RuleViolation("role_not_permitted", refusal)
    events = _decide_step(state, command, actor, now)
    if session_window and isinstance(command, CheckIn | RecordDosingSession | AdministerDose):
        # After the step's own rules: "already checked in" or "on hold" says more than "too early".
        dosing.not_before_the_session(state, command, now)
    return preparation.then_prepared(state, events, now)


def _decide_step(state: CourseState, command: Command, actor: Actor, now: datetime) -> list[DomainEvent]:
    match command:
        case RecordAssessment():
            return assessment.assess(state, command)
        case RecordFinancialClearance():
            return preparation.financial_clearance(state, command)
        case RecordPriorAuthorization():
            return preparation.prior_authorization(state, command)
        case RecordIntentions():
            return preparation.intentions(state, command)
        case RecordConsent():
            return preparation.consent(state, command, now)
        case RecordSupportPerson():
            return preparation.support_person(state, command)
        case RecordDosingPlan():
            return preparation.dosing_plan(state, command)
        case RecordOrientation():
            return preparation.orientation(state, command)
        case ScheduleSession():
            return dosing.schedule(state, command, now)
        case CheckIn():
            return dosing.check_in(state, command)
        case RecordDosingSession():
            return dosing.dose(state, command)
        case AdministerDose():
            return monitoring.administer(state, command, now)
        case RecordMonitoringReading():
            return monitoring.record_reading(state, command, now)
        case RecordDischarge():
            return monitoring.discharge(state, command, now)
        case RecordClinicalReview():
            return dosing.review(state, command)
        case RecordIntegrationSession():
            return integration.integration_session(state, command, now)
        case RecordMaintenancePlan():
            return maintenance.maintenance_plan(state, command, now)
        case RecordMaintenanceSession():
            return maintenance.maintenance_session(state, command, now)
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


def _tick(state: CourseState, now: datetime) -> list[DomainEvent]:
    events: list[DomainEvent] = []
    for item in pending(state, now):
        if item.at > now:
            break
        match item.kind:
            case "reminder":
                events.append(_reminder(item))
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
            case "monitoring_late" | "monitoring_escalation":
                # The course is flagged (Overdue) until a reading or the discharge answers it.
                events += [
                    FollowUpOverdue(key=item.key, what=item.purpose, due_at=item.at),
                    _reminder(item),
                ]
            case "lapse":
                # A lapse ends the course: nothing after it is due any more.
                return [*events, CourseClosed(outcome="lapsed", reasons=[item.purpose])]
    return events


def _reminder(item: DueItem) -> ReminderSent:
    """The reminder a due item sends, as it is."""
    return ReminderSent(
        key=item.key,
        purpose=item.purpose,
        recipient=item.recipient,
        due_at=item.at,
        session_number=item.session_number,
        subject_at=item.subject_at,
    )
