"""Preparation: money, intentions, consent, support person, dosing plan, orientation; the course
moves on to dosing by itself once the last missing piece arrives, whichever it is."""

from __future__ import annotations

from datetime import datetime

from course.commands import (
    RecordConsent,
    RecordDosingPlan,
    RecordFinancialClearance,
    RecordIntentions,
    RecordOrientation,
    RecordPriorAuthorization,
    RecordSupportPerson,
)
from course.errors import require
from course.events import (
    ConsentRecorded,
    DomainEvent,
    DosingPlanRecorded,
    FinancialClearanceRecorded,
    IntentionsRecorded,
    OrientationRecorded,
    PreparationCompleted,
    PriorAuthorizationRecorded,
    SupportPersonRecorded,
)
from course.phases.common import CLOCK_SKEW, before_dosing, in_phase
from course.rules import missing_before_first_dose
from course.state import CourseState, Phase, apply


def financial_clearance(state: CourseState, command: RecordFinancialClearance) -> list[DomainEvent]:
    before_dosing(state, "financial-clearance")
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


def prior_authorization(state: CourseState, command: RecordPriorAuthorization) -> list[DomainEvent]:
    before_dosing(state, "prior-authorization")
    require(
        not state.prior_authorization_approved,
        "already_recorded",
        "An approved prior authorization is already recorded for this course.",
    )
    return [PriorAuthorizationRecorded(reference=command.reference, approved=command.approved)]


def intentions(state: CourseState, command: RecordIntentions) -> list[DomainEvent]:
    in_phase(state, "intentions", Phase.PREPARATION, Phase.DOSING)
    return [IntentionsRecorded(goals=command.goals)]


def consent(state: CourseState, command: RecordConsent, now: datetime) -> list[DomainEvent]:
    in_phase(state, "consent", Phase.PREPARATION)
    current = state.policy.consent_form_version
    require(
        command.form_version == current,
        "consent_outdated",
        f"Consent form version {command.form_version} is not current; the patient must sign version {current}.",
    )
    require(
        command.signed_at <= now + CLOCK_SKEW,
        "signed_in_future",
        "The consent signature time is in the future.",
    )
    return [ConsentRecorded(form_version=command.form_version, signed_at=command.signed_at)]


def support_person(state: CourseState, command: RecordSupportPerson) -> list[DomainEvent]:
    in_phase(state, "support-person", Phase.PREPARATION, Phase.DOSING)
    return [SupportPersonRecorded(**command.model_dump(exclude={"step"}))]


def dosing_plan(state: CourseState, command: RecordDosingPlan) -> list[DomainEvent]:
    in_phase(state, "dosing-plan", Phase.PREPARATION)
    limit = state.policy.max_planned_sessions
    require(command.planned_sessions <= limit, "too_many_sessions", f"At most {limit} dosing sessions can be planned.")
    return [DosingPlanRecorded(**command.model_dump(exclude={"step"}))]


def orientation(state: CourseState, command: RecordOrientation) -> list[DomainEvent]:
    in_phase(state, "orientation", Phase.PREPARATION)
    return [OrientationRecorded(topics=list(command.topics))]


def then_prepared(state: CourseState, events: list[DomainEvent], now: datetime) -> list[DomainEvent]:
    """Preparation completes by itself once the last missing piece, whichever it is, arrives."""
    after = state
    for event in events:
        after = apply(after, event, now)
    if after.phase is Phase.PREPARATION and not missing_before_first_dose(after):
        return [*events, PreparationCompleted()]
    return events
