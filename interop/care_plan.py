"""The course as a CarePlan: status from its phase, and activities referencing what it led to.

R4 lets `activity.reference` name only requests (Appointment, Task, ...); what was done (the
administrations, the therapy sessions) is each activity's `outcomeReference`, and everything else
the course recorded (vital signs, GAD-7, consent, the payer's answer) its `supportingInfo`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from course.state import CourseState, Phase
from interop import codes
from interop.shapes import Json, instant, quantity


@dataclass
class PlanParts:
    """What the walk over the stream gathered for the plan, as references."""

    patient: Json
    author: Json
    condition: Json | None
    opened_at: datetime
    closed_at: datetime | None = None
    appointments: dict[str, list[Json]] = field(default_factory=dict)  # each with what it led to
    dosing: list[Json] = field(default_factory=list)
    therapy: list[Json] = field(default_factory=list)
    tasks: list[Json] = field(default_factory=list)
    supporting: list[Json] = field(default_factory=list)
    notes: list[Json] = field(default_factory=list)


def care_plan(state: CourseState, parts: PlanParts) -> Json:
    """The CarePlan's content (its id and resourceType are the caller's)."""
    period: Json = {"start": instant(parts.opened_at)}
    if parts.closed_at is not None:
        period["end"] = instant(parts.closed_at)
    activity: list[Json] = []
    for appointment_id, outcomes in parts.appointments.items():
        entry: Json = {"reference": {"reference": f"Appointment/{appointment_id}"}}
        activity.append({**entry, "outcomeReference": outcomes} if outcomes else entry)
    if state.plan is not None or parts.dosing:
        detail: Json = {
            "kind": "MedicationRequest",
            "status": _activity(state, done=state.series_completed_at is not None, started=bool(parts.dosing)),
            "productCodeableConcept": codes.KETAMINE.concept(),
        }
        if state.current_dose_mg_per_kg is not None:
            detail["dailyAmount"] = quantity(state.current_dose_mg_per_kg, codes.MG_PER_KG)
        activity.append(_with_outcomes(detail, parts.dosing))
    therapy: Json = {
        "kind": "ServiceRequest",
        "code": codes.PSYCHOTHERAPY.concept(),
        "status": _activity(state, done=False, started=bool(parts.therapy)),
    }
    activity.append(_with_outcomes(therapy, parts.therapy))
    activity += [{"reference": task} for task in parts.tasks]
    plan: Json = {
        "identifier": [{"system": codes.COURSE_ID, "value": str(state.course_id)}],
        "status": _status(state),
        "intent": "plan",
        "title": "Ketamine-assisted therapy course",
        "subject": parts.patient,
        "period": period,
        "created": instant(parts.opened_at),
        "author": parts.author,
        "activity": activity,
    }
    if parts.condition is not None:
        plan["addresses"] = [parts.condition]
    if parts.supporting:
        plan["supportingInfo"] = parts.supporting
    if parts.notes:
        plan["note"] = parts.notes
    return plan


def _with_outcomes(detail: Json, outcomes: list[Json]) -> Json:
    return {"detail": detail, "outcomeReference": outcomes} if outcomes else {"detail": detail}


def _status(state: CourseState) -> str:
    if state.phase is Phase.CLOSED:
        return "completed" if state.outcome == "completed" else "revoked"
    if state.on_hold:
        return "on-hold"
    return "draft" if state.phase is Phase.ASSESSMENT else "active"


def _activity(state: CourseState, *, done: bool, started: bool) -> str:
    if done:
        return "completed"
    if state.phase is Phase.CLOSED:
        return "stopped" if started else "cancelled"
    if state.on_hold:
        return "on-hold"
    return "in-progress" if started else "not-started"
