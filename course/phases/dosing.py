"""Dosing: sessions scheduled, checked in, given in order, each within the plan, and reviewed by a
prescriber after a worse response or a severe side effect."""

from __future__ import annotations

from datetime import datetime

from course.commands import (
    AdministerDose,
    CheckIn,
    RecordClinicalReview,
    RecordDosingSession,
    ReviewDecision,
    Route,
    ScheduleSession,
)
from course.errors import RuleViolation, require
from course.events import (
    CheckedIn,
    ClinicalReviewRecorded,
    ClinicalReviewRequired,
    CourseClosed,
    DomainEvent,
    DosingSeriesCompleted,
    DosingSessionCompleted,
    DosingSessionDeferred,
    SessionScheduled,
)
from course.phases.common import in_phase, spoken
from course.rules import at_or_above, missing_before_first_dose, review_reasons
from course.state import CourseState, Phase


def schedule(state: CourseState, command: ScheduleSession, now: datetime) -> list[DomainEvent]:
    n, when = command.session_number, command.scheduled_at
    in_phase(state, "schedule-session", Phase.PREPARATION, Phase.DOSING)
    planned = state.plan.planned_sessions if state.plan else state.policy.max_planned_sessions
    require(
        state.sessions_completed < n <= planned,
        "session_out_of_order",
        f"Session {n} cannot be scheduled: sessions {state.sessions_completed + 1} to {planned} remain.",
    )
    require(when > now, "schedule_in_past", "A session must be scheduled in the future.")
    return [SessionScheduled(session_number=n, scheduled_at=when)]


def not_before_the_session(
    state: CourseState, command: CheckIn | RecordDosingSession | AdministerDose, now: datetime
) -> None:
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
        f"{spoken(state.policy.session_opens_before)} before, at {opens:%Y-%m-%d %H:%M} UTC. "
        "Check the course and the session number, or reschedule the session.",
    )


def ready_to_dose(state: CourseState, session_number: int) -> None:
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
    in_phase(state, "dosing", Phase.DOSING)
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


def check_in(state: CourseState, command: CheckIn) -> list[DomainEvent]:
    ready_to_dose(state, command.session_number)
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


def dose(state: CourseState, command: RecordDosingSession) -> list[DomainEvent]:
    n = command.session_number
    ready_to_dose(state, n)
    require(
        state.checked_in == n,
        "not_checked_in",
        f"Check the patient in (pre-dose vitals, ride home) before recording session {n}.",
    )
    within_plan(state, command.route, command.dose_mg_per_kg)
    if state.policy.monitoring is not None:
        raise RuleViolation(
            "monitoring_required",
            "This course monitors the patient after the dose: record dose-administered when it is given, "
            "then readings, then discharge.",
        )
    return completed(state, DosingSessionCompleted(**command.model_dump(exclude={"step"})))


def within_plan(state: CourseState, route: Route, dose_mg_per_kg: float) -> None:
    assert state.plan is not None and state.current_route is not None
    require(
        route == state.current_route,
        "route_mismatch",
        f"The plan's route is {state.current_route.value}, not {route.value}.",
    )
    limit = state.plan.max_dose_mg_per_kg
    require(dose_mg_per_kg <= limit, "dose_above_limit", f"The dose exceeds the plan's limit of {limit} mg/kg.")


def completed(state: CourseState, session: DosingSessionCompleted) -> list[DomainEvent]:
    """A session done, one step (dosing-session) or at discharge: a review when its response or
    side effects ask for one, and the series' end after the last planned session."""
    assert state.plan is not None
    n = session.session_number
    events: list[DomainEvent] = [session]
    reasons = review_reasons(session)
    if reasons:
        events.append(ClinicalReviewRequired(session_number=n, reasons=reasons))
    if n >= state.plan.planned_sessions:
        events.append(DosingSeriesCompleted(sessions_completed=n, reason="all_planned_sessions"))
    return events


def review(state: CourseState, command: RecordClinicalReview) -> list[DomainEvent]:
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
