"""After the dose: when a patient may leave, when blood pressure is due again, when to call the prescriber.

The rules of issue 18 as pure functions over one monitored session (the dose given, the readings
taken since) and the clinic's `MonitoringPolicy`. What stops a discharge is `discharge_refusal`,
in the order a nurse would check: time observed, a recent reading, blood pressure, sedation,
dissociation, oxygen, and the ride home.

The steps `dose-administered`, `monitoring-reading` and `discharge` (for courses whose policy has
`monitoring`) are decided here; the clocks are in course/timing.py.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from course.commands import (
    AdministerDose,
    Dissociation,
    RecordDischarge,
    RecordMonitoringReading,
    Route,
    Severity,
    SideEffect,
    Vitals,
)
from course.errors import RuleViolation, require
from course.events import (
    ClinicalReviewRequired,
    DomainEvent,
    DoseAdministered,
    DosingSessionCompleted,
    MonitoringReadingRecorded,
    PatientDischarged,
    ReminderSent,
)
from course.monitored import MonitoredSession, Reading
from course.phases import dosing
from course.phases.common import CLOCK_SKEW, spoken
from course.policy import MonitoringPolicy
from course.rules import at_or_above
from course.state import CourseState


def discharge_refusal(
    session: MonitoredSession, policy: MonitoringPolicy, now: datetime, *, ride_handoff: bool
) -> RuleViolation | None:
    """Why this patient may not leave yet, or None. Each refusal names what to do next."""
    minimum = policy.minimum_for(session.route)
    observed = max(now - session.given_at, timedelta(0))  # a form's minute can start before the dose
    if observed < minimum:
        left = math.ceil((minimum - observed).total_seconds() / 60)
        return RuleViolation(
            "observation_incomplete",
            f"The patient has been observed for {_minutes(int(observed.total_seconds() // 60))} after the dose; "
            f"{spoken(minimum)} are needed by this route: {_minutes(left)} left.",
        )
    last = session.last
    if last is None or now - last.taken_at > policy.reading_fresh_within:
        return RuleViolation(
            "reading_required",
            f"Take a reading first: discharge needs one from the last {spoken(policy.reading_fresh_within)}.",
        )
    threshold = policy.discharge_bp_threshold
    if at_or_above(last.blood_pressure, threshold):
        return RuleViolation(
            "bp_not_settled",
            f"The last blood pressure is at or above {threshold.systolic}/{threshold.diastolic}: recheck it "
            "before discharge.",
        )
    if last.sedation_score < policy.alert_sedation_score:
        return RuleViolation(
            "still_sedated",
            f"The last sedation score is below {policy.alert_sedation_score} (alert): wait and take a new reading.",
        )
    if last.dissociation is not Dissociation.RESOLVED:
        return RuleViolation("dissociation_unresolved", "Dissociation has not resolved: wait and take a new reading.")
    if last.spo2 < policy.spo2_minimum:
        return RuleViolation(
            "spo2_low", f"Oxygen saturation is below {policy.spo2_minimum}%: recheck it before discharge."
        )
    if not ride_handoff:
        return RuleViolation(
            "no_ride_handoff",
            "The patient must not drive until the next day: record who collects them before discharge.",
        )
    return None


def _minutes(count: int) -> str:
    return "1 minute" if count == 1 else f"{count} minutes"


def recheck_due(session: MonitoredSession, policy: MonitoringPolicy) -> datetime | None:
    """When blood pressure is due next: 40 minutes after the dose (policy) until the first reading,
    then every 30 minutes while the last reading is at or above the threshold; otherwise none is
    required by the clock (the nurse reads as clinically warranted)."""
    last = session.last
    if last is None:
        return session.given_at + policy.first_recheck_after
    if at_or_above(last.blood_pressure, policy.discharge_bp_threshold):
        return last.taken_at + policy.recheck_every
    return None


def late_at(session: MonitoredSession, policy: MonitoringPolicy) -> datetime | None:
    """When a missing recheck flags the course and the nurse on duty is told."""
    due = recheck_due(session, policy)
    return None if due is None else due + policy.late_after


def escalation_at(session: MonitoredSession, policy: MonitoringPolicy) -> datetime:
    """Not discharged by then: the prescriber is told."""
    return session.given_at + policy.escalate_after


def review_reasons(session: MonitoredSession, policy: MonitoringPolicy) -> list[str]:
    """What, in the readings so far, needs a prescriber's review: two readings in a row at or
    above the threshold, or a severe side effect."""
    reasons = []
    readings = session.readings
    if len(readings) >= 2 and all(at_or_above(r.blood_pressure, policy.discharge_bp_threshold) for r in readings[-2:]):
        reasons.append("bp_elevated_twice")
    if any(e.severity is Severity.SEVERE for r in readings for e in r.side_effects):
        reasons.append("severe_side_effect")
    return reasons


def minutes_since(moment: datetime, now: datetime) -> int:
    return max(0, int((now - moment) / timedelta(minutes=1)))


def _monitored(state: CourseState, step: str, session_number: int) -> tuple[MonitoredSession, MonitoringPolicy]:
    policy = state.policy.monitoring
    if policy is None:
        raise RuleViolation(
            "monitoring_not_in_policy",
            f"This course's policy does not monitor after the dose: record the dose as one dosing-session, "
            f"not '{step}'.",
        )
    session = state.monitoring
    require(
        session is not None and session.session_number == session_number,
        "not_in_monitoring",
        f"Session {session_number} is not being monitored: record dose-administered first."
        if session is None
        else f"The patient in monitoring is from session {session.session_number}, not {session_number}.",
    )
    assert session is not None
    return session, policy


def administer(state: CourseState, command: AdministerDose, now: datetime) -> list[DomainEvent]:
    """The dose given: from here the clocks watch the chair."""
    n = command.session_number
    if state.policy.monitoring is None:
        raise RuleViolation(
            "monitoring_not_in_policy",
            "This course's policy does not monitor after the dose: record the dose as one dosing-session.",
        )
    require(state.monitoring is None, "already_recorded", f"The dose of session {n} is already recorded.")
    dosing.ready_to_dose(state, n)
    require(
        state.checked_in == n,
        "not_checked_in",
        f"Check the patient in (pre-dose vitals, ride home) before recording the dose of session {n}.",
    )
    dosing.within_plan(state, command.route, command.dose_mg_per_kg)
    require(command.given_at <= now + CLOCK_SKEW, "given_in_future", "The dose cannot be recorded before it is given.")
    return [DoseAdministered(**command.model_dump(exclude={"step"}))]


def record_reading(state: CourseState, command: RecordMonitoringReading, now: datetime) -> list[DomainEvent]:
    """A reading; two high ones in a row or a severe side effect call the prescriber, once each."""
    session, policy = _monitored(state, "monitoring-reading", command.session_number)
    require(command.taken_at <= now + CLOCK_SKEW, "taken_in_future", "A reading cannot be recorded before it is taken.")
    require(
        # Forms give times to the minute and devices' clocks differ: a reading stamped a little
        # before the dose is the same moment, not a pre-dose reading.
        command.taken_at >= session.given_at - CLOCK_SKEW,
        "reading_before_dose",
        "This reading is from before the dose: monitoring readings start when the dose is given.",
    )
    require(
        all(r.taken_at != command.taken_at for r in session.readings),
        "already_recorded",
        "A reading at this time is already recorded for this session.",
    )
    recorded = MonitoringReadingRecorded(**command.model_dump(exclude={"step"}))
    reading = Reading.of(command)
    before = review_reasons(session, policy)
    after = session.model_copy(update={"readings": sorted([*session.readings, reading], key=lambda r: r.taken_at)})
    new = [reason for reason in review_reasons(after, policy) if reason not in before]
    if not new:
        return [recorded]
    n = session.session_number
    return [
        recorded,
        ClinicalReviewRequired(session_number=n, reasons=new),
        ReminderSent(
            key=f"monitoring-{n}-review-{'-'.join(new)}",
            purpose="monitoring_review",
            recipient="clinician",
            due_at=command.taken_at,
            session_number=n,
            subject_at=session.given_at,
        ),
    ]


def discharge(state: CourseState, command: RecordDischarge, now: datetime) -> list[DomainEvent]:
    """Safe to leave (discharge_refusal says why not), then the session is complete."""
    session, policy = _monitored(state, "discharge", command.session_number)
    require(
        command.discharged_at <= now + CLOCK_SKEW,
        "discharged_in_future",
        "A discharge cannot be recorded before it happens.",
    )
    refused = discharge_refusal(session, policy, command.discharged_at, ride_handoff=bool(command.collected_by.strip()))
    if refused is not None:
        raise refused
    last = session.last
    assert last is not None  # discharge_refusal demands a recent reading
    effects: dict[str, SideEffect] = {}
    for r in session.readings:  # each kind once, at the worst severity seen
        for effect in r.side_effects:
            seen = effects.get(effect.effect.value)
            if seen is None or _SEVERITY[effect.severity] > _SEVERITY[seen.severity]:
                effects[effect.effect.value] = effect
    vitals = Vitals(
        systolic=last.blood_pressure.systolic, diastolic=last.blood_pressure.diastolic, heart_rate=last.heart_rate
    )
    minutes = minutes_since(session.given_at, command.discharged_at)
    done = DosingSessionCompleted(
        session_number=session.session_number,
        route=Route(session.route),
        dose_mg_per_kg=session.dose_mg_per_kg,
        post_vitals=vitals,
        side_effects=list(effects.values()),
        patient_response=command.patient_response,
        gad7=command.gad7,
    )
    left = PatientDischarged(
        session_number=session.session_number,
        discharged_at=command.discharged_at,
        collected_by=command.collected_by,
        relationship=command.relationship,
        minutes_observed=minutes,
    )
    return [left, *dosing.completed(state, done)]


_SEVERITY = {Severity.MILD: 1, Severity.MODERATE: 2, Severity.SEVERE: 3}
