"""Every state says why: reasons (course/reasons.py) and each event as one line of plain words.

`event_in_words("DosingSessionCompleted", data)` -> "Session 2 given: IV infusion 0.5 mg/kg; after
the dose 130/84, heart rate 76; nausea (mild); patient felt better; GAD-7 11". For the care team's
own screens (the console's timeline, `course events`); `--json` and the API keep types and codes.
The lines name readings and free text, so they are never logged. Pure: no I/O, no clock.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, tzinfo
from typing import Any

from pydantic import TypeAdapter, ValidationError

from course.commands import BloodPressure
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
from course.policy import CoursePolicy
from course.reasons import (
    CONDITIONS,
    CONTRAINDICATIONS,
    DECISIONS,
    INSURANCE,
    MAINTENANCE,
    MODALITIES,
    RECIPIENTS,
    REMINDERS,
    RESPONSES,
    ROUTES,
    Facts,
    at_time,
    dose_in_words,
    reason_in_words,
    reasons_in_words,
    side_effects_in_words,
    vitals_in_words,
)

__all__ = ["Facts", "event_in_words", "reason_in_words", "reasons_in_words", "timeline_in_words"]

_DOMAIN_EVENT: TypeAdapter[DomainEvent] = TypeAdapter(DomainEvent)
# Free text (goals, a rationale) is quoted up to here: a timeline line stays one line.
_QUOTED = 120


def event_in_words(type: str, data: Mapping[str, Any], facts: Facts | None = None) -> str:
    """One line of plain words with the event's facts. An event this version does not know (a
    newer worker's) reads as its type in words."""
    facts = facts or Facts()
    try:
        event = _DOMAIN_EVENT.validate_python({**data, "type": type})
    except ValidationError:
        return _camel_words(type)
    return _sentence(event, facts)


def timeline_in_words(rows: Iterable[Mapping[str, Any]], zone: tzinfo = UTC) -> list[str]:
    """Each stored event row (`{type, data, ...}`) as its line, in order. The course's policy and
    the assessment's reading are carried forward, so a deferral or a closing names its limit."""
    facts = Facts(zone=zone)
    lines = []
    for row in rows:
        data = row["data"]
        if row["type"] == "CourseOpened" and isinstance(data.get("policy"), dict):
            # A policy this version cannot read: the sentences say "the course's limit".
            with contextlib.suppress(ValidationError):
                facts = replace(facts, policy=CoursePolicy.model_validate(data["policy"]))
        if row["type"] == "AssessmentRecorded" and isinstance(data.get("blood_pressure"), dict):
            facts = replace(facts, reading=BloodPressure.model_validate(data["blood_pressure"]))
        lines.append(event_in_words(row["type"], data, facts))
    return lines


def _sentence(event: DomainEvent, facts: Facts) -> str:  # noqa: PLR0915 - one arm per event type
    zone = facts.zone
    match event:
        case CourseOpened():
            team = f"prescriber {event.clinician_id}, therapist {event.therapist_id or 'not yet assigned'}"
            parts = [f"Course opened for patient {event.patient_id}: {team}"]
            if event.condition:
                parts.append(CONDITIONS[event.condition])
            parts.append("self-pay" if event.self_pay else f"insurance {event.payer_id or 'not named'}")
            if event.policy_ref:
                parts.append(f"policy {event.policy_ref.name} version {event.policy_ref.version}")
            return "; ".join(parts)
        case EligibilityChecked():
            parts = [f"Insurance checked: {INSURANCE[event.status]}"]
            if event.in_network is not None:
                parts[0] += ", in network" if event.in_network else ", out of network"
            if event.reason:
                parts.append(reason_in_words(event.reason, facts))
            share = event.patient_share
            if share is not None:
                paid = [
                    f"{label} {value}"
                    for label, value in (
                        ("copay", share.copay),
                        (
                            "coinsurance",
                            f"{(share.coinsurance_rate * 100).normalize():f} %" if share.coinsurance_rate else None,
                        ),
                        ("deductible remaining", share.deductible_remaining),
                        ("out-of-pocket remaining", share.out_of_pocket_remaining),
                    )
                    if value is not None
                ]
                if paid:
                    parts.append("patient pays: " + ", ".join(paid))
            return "; ".join(parts)
        case FinancialClearanceRecorded():
            how = "self-pay" if event.self_pay else "insurance"
            known = "estimated cost acknowledged" if event.estimated_cost_acknowledged else "cost not acknowledged"
            return f"Financial clearance: {how}, {known}"
        case PriorAuthorizationRecorded():
            verdict = "approved" if event.approved else "not approved"
            return f"Prior authorization {event.reference}: {verdict}"
        case AssessmentRecorded():
            found = [CONTRAINDICATIONS[c] for c in event.contraindications] or ["no contraindications"]
            rationale = "; rationale written" if event.relative_contraindication_rationale else ""
            return (
                f"Assessment: blood pressure {event.blood_pressure.systolic}/{event.blood_pressure.diastolic}, "
                f"heart rate {event.heart_rate}; {', '.join(found)}{rationale}; {CONDITIONS[event.condition]}; "
                f"GAD-7 {event.gad7}"
            )
        case CandidacyConfirmed():
            relative = [CONTRAINDICATIONS[c] for c in event.relative_contraindications]
            return "Candidacy confirmed" + (f" despite {', '.join(relative)}" if relative else "")
        case IntentionsRecorded():
            return f"Intentions: {_quoted(event.goals)}"
        case ConsentRecorded():
            return f"Consent signed (form {event.form_version}) at {at_time(event.signed_at, zone)}"
        case SupportPersonRecorded():
            return f"Support person: {event.name} ({event.relationship}), {event.phone}"
        case DosingPlanRecorded():
            return (
                f"Dosing plan: {ROUTES[event.route]}, {event.planned_sessions} sessions, starting at "
                f"{event.starting_dose_mg_per_kg:g} mg/kg, at most {event.max_dose_mg_per_kg:g} mg/kg"
            )
        case OrientationRecorded():
            return "Orientation given: " + ", ".join(topic.replace("_", " ") for topic in event.topics)
        case PreparationCompleted():
            return "Preparation complete: dosing sessions can go ahead"
        case SessionScheduled():
            return f"Session {event.session_number} scheduled for {at_time(event.scheduled_at, zone)}"
        case ReminderSent():
            about = REMINDERS.get(event.purpose, event.purpose.replace("_", " "))
            if event.purpose == "session_tomorrow" and event.session_number is not None:
                about = f"dosing session {event.session_number} tomorrow (arrange a ride home)"
            return f"Reminder sent to {RECIPIENTS[event.recipient]}: {about}"
        case CheckedIn():
            return f"Session {event.session_number} check-in: {vitals_in_words(event.vitals)}"
        case DoseAdministered():
            given = dose_in_words(event.route, event.dose_mg_per_kg)
            when = at_time(event.given_at, zone)
            return f"Session {event.session_number} dose given: {given} at {when}; monitoring started"
        case MonitoringReadingRecorded():
            bp = event.blood_pressure
            parts = [
                f"Session {event.session_number} reading at {at_time(event.taken_at, zone)}: "
                f"{bp.systolic}/{bp.diastolic}",
                f"heart rate {event.heart_rate}",
                f"SpO2 {event.spo2}%",
                f"sedation {event.sedation.score}/5 (MOAA/S)",
                "dissociation resolved" if event.dissociation.value == "resolved" else "dissociation still present",
            ]
            if event.side_effects:
                parts.append(side_effects_in_words(event.side_effects))
            return "; ".join(parts)
        case PatientDischarged():
            return (
                f"Session {event.session_number}: discharged at {at_time(event.discharged_at, zone)} after "
                f"{event.minutes_observed} minutes, collected by their {event.relationship}"
            )
        case DosingSessionDeferred():
            why = reason_in_words(event.reason, replace(facts, reading=event.vitals))
            return f"Session {event.session_number} deferred: {why} (heart rate {event.vitals.heart_rate})"
        case DosingSessionCompleted():
            parts = [
                f"Session {event.session_number} given: {dose_in_words(event.route, event.dose_mg_per_kg)}",
                f"after the dose {vitals_in_words(event.post_vitals)}",
                side_effects_in_words(event.side_effects),
                RESPONSES[event.patient_response],
            ]
            if event.gad7 is not None:
                parts.append(f"GAD-7 {event.gad7}")
            return "; ".join(parts)
        case ClinicalReviewRequired():
            why = ", ".join(reasons_in_words(event.reasons, facts))
            return f"Session {event.session_number} needs a prescriber's review before the next dose: {why}"
        case ClinicalReviewRecorded():
            decision = DECISIONS[event.decision]
            if event.new_dose_mg_per_kg is not None:
                decision += f" to {event.new_dose_mg_per_kg:g} mg/kg"
            if event.new_route is not None:
                decision += f" to {ROUTES[event.new_route]}"
            return f"Clinical review: {decision}; {_quoted(event.rationale)}"
        case IntegrationSessionRecorded():
            score = f"; GAD-7 {event.gad7}" if event.gad7 is not None else ""
            return f"Integration session ({MODALITIES[event.modality]}) held {at_time(event.held_at, zone)}{score}"
        case FollowUpOverdue():
            return f"Overdue: {reason_in_words(event.what, facts)}, due {at_time(event.due_at, zone)}"
        case DosingSeriesCompleted():
            return (
                f"Dosing series complete after {event.sessions_completed} "
                f"session{'' if event.sessions_completed == 1 else 's'}: {reason_in_words(event.reason, facts)}"
            )
        case MaintenancePlanRecorded():
            if event.interval_days is None or event.next_due_at is None:
                return f"Maintenance plan: {MAINTENANCE[event.kind]}"
            return (
                f"Maintenance plan: {MAINTENANCE[event.kind]} every {event.interval_days} days, "
                f"next due {at_time(event.next_due_at, zone)}"
            )
        case MaintenanceSessionRecorded():
            score = f"; GAD-7 {event.gad7}" if event.gad7 is not None else ""
            return (
                f"Maintenance session ({MAINTENANCE[event.kind]}) held {at_time(event.held_at, zone)}{score}; "
                f"next due {at_time(event.next_due_at, zone)}"
            )
        case MaintenanceOverdue():
            return f"Maintenance session overdue: it was due {at_time(event.due_at, zone)}"
        case HoldPlaced():
            by = " by a clinician" if event.clinical else ""
            return f"Course put on hold{by}: {reason_in_words(event.reason, facts)}"
        case HoldReleased():
            return "Hold released: the course goes on"
        case CareTeamReassigned():
            changed = [
                f"{role} now {who}"
                for role, who in (("prescriber", event.clinician_id), ("therapist", event.therapist_id))
                if who
            ]
            return "Care team changed: " + ", ".join(changed)
        case CourseClosed():
            why = "; ".join(reasons_in_words(event.reasons, facts))
            return f"Course closed ({event.outcome.replace('_', ' ')})" + (f": {why}" if why else "")
    raise AssertionError(f"no sentence for {event.type}")  # pragma: no cover - the union is closed


def _quoted(text: str) -> str:
    one_line = " ".join(text.split())
    if len(one_line) > _QUOTED:
        one_line = one_line[: _QUOTED - 1].rstrip() + "…"
    return f"“{one_line}”"


def _camel_words(name: str) -> str:
    words = re.sub(r"(?<!^)(?=[A-Z])", " ", name).lower()
    return words[:1].upper() + words[1:]
