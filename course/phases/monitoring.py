"""After the dose: when a patient may leave, when blood pressure is due again, when to call the prescriber.

The rules of issue 18 as pure functions over one monitored session (the dose given, the readings
taken since) and the clinic's `MonitoringPolicy`. What stops a discharge is `discharge_refusal`,
in the order a nurse would check: time observed, a recent reading, blood pressure, sedation,
dissociation, oxygen, and the ride home.

Not wired yet: the steps that record a dose, readings and a discharge, their events, the durable
clocks and the chair-side board come next (issue 18); these rules are what they will call.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from course.commands import BloodPressure, Severity, SideEffect
from course.errors import RuleViolation
from course.phases.common import spoken
from course.policy import MonitoringPolicy
from course.rules import at_or_above


class SedationScale(StrEnum):
    MOAAS = "moaas"  # Modified Observer's Assessment of Alertness/Sedation, 0 (unresponsive) to 5 (alert)


class Dissociation(StrEnum):
    PRESENT = "present"
    RESOLVED = "resolved"


class Reading(BaseModel):
    """One set of observations in the chair."""

    model_config = ConfigDict(frozen=True)

    taken_at: AwareDatetime
    blood_pressure: BloodPressure
    heart_rate: int = Field(ge=20, le=250)
    spo2: int = Field(ge=50, le=100)
    sedation_scale: SedationScale = SedationScale.MOAAS
    sedation_score: int = Field(ge=0, le=5)
    dissociation: Dissociation
    side_effects: list[SideEffect] = Field([], max_length=12)


class MonitoredSession(BaseModel):
    """A dose given and what has been observed since; folded from the session's events."""

    model_config = ConfigDict(frozen=True)

    session_number: int
    route: str
    given_at: AwareDatetime
    readings: tuple[Reading, ...] = ()

    @property
    def last(self) -> Reading | None:
        return self.readings[-1] if self.readings else None


def discharge_refusal(
    session: MonitoredSession, policy: MonitoringPolicy, now: datetime, *, ride_handoff: bool
) -> RuleViolation | None:
    """Why this patient may not leave yet, or None. Each refusal names what to do next."""
    minimum = policy.minimum_for(session.route)
    observed = now - session.given_at
    if observed < minimum:
        left = math.ceil((minimum - observed).total_seconds() / 60)
        return RuleViolation(
            "observation_incomplete",
            f"The patient has been observed for {int(observed.total_seconds() // 60)} minutes after the dose; "
            f"{spoken(minimum)} are needed by this route: {left} minutes left.",
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
