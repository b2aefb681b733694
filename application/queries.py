"""Visibility queries for `course list` and `course dashboard`: the same strings staff can paste
into the Temporal UI's search box, built from validated values only (no injection, no patient data)."""

from __future__ import annotations

import re

from course.access import NURSE_PHASES
from course.commands import STEPS, Actor, Role
from course.state import Phase
from workflows.inputs import WORKFLOW_TYPE

_OPAQUE_ID = re.compile(r"^[A-Za-z0-9._:@-]{1,64}$")
BASE = f"WorkflowType = '{WORKFLOW_TYPE}'"


class BadFilter(ValueError):
    pass


def _opaque(value: str, what: str) -> str:
    if not _OPAQUE_ID.match(value):
        raise BadFilter(f"{what} must be an opaque id (letters, digits, . _ : @ -)")
    return value


def course_query(
    *,
    phase: str | None = None,
    awaiting: str | None = None,
    clinician: str | None = None,
    therapist: str | None = None,
    overdue: bool = False,
    on_hold: bool = False,
    needs_review: bool = False,
    include_closed: bool = False,
) -> str:
    clauses = [BASE]
    if not include_closed:
        clauses.append("ExecutionStatus = 'Running'")
    if phase is not None:
        if phase not in {p.value for p in Phase}:
            raise BadFilter(f"unknown phase {phase!r}; phases: {', '.join(p.value for p in Phase)}")
        clauses.append(f"CoursePhase = '{phase}'")
    if awaiting is not None:
        steps = [*STEPS, "release", "eligibility"]
        if awaiting not in steps:
            raise BadFilter(f"unknown step {awaiting!r}; steps: {', '.join(steps)}")
        clauses.append(f"AwaitingSteps = '{awaiting}'")
    if clinician is not None:
        clauses.append(f"ClinicianId = '{_opaque(clinician, 'clinician')}'")
    if therapist is not None:
        clauses.append(f"TherapistId = '{_opaque(therapist, 'therapist')}'")
    if overdue:
        clauses.append("Overdue = true")
    if on_hold:
        clauses.append("OnHold = true")
    if needs_review:
        clauses.append("NeedsClinicalReview = true")
    return " AND ".join(clauses)


# Saved views worth creating in the Temporal UI (README lists them): name -> query.
SAVED_VIEWS: dict[str, str] = {
    "All open courses": course_query(),
    "Needs clinical review": course_query(needs_review=True),
    "Overdue follow-ups": course_query(overdue=True),
    "On hold": course_query(on_hold=True),
    "Waiting for assessment": course_query(awaiting="assessment"),
    "Waiting for financial clearance": course_query(awaiting="financial-clearance"),
    "In dosing": course_query(phase="dosing"),
    "In maintenance": course_query(phase="maintenance"),
    "In monitoring after a dose": f"{course_query()} AND DischargeDueAt IS NOT NULL",
}


def readable_by(actor: Actor) -> str | None:
    """The clause narrowing a list to the courses this reader reads routinely (course/access.py):
    prescribers and therapists their care team's, nurses those in the nurse phases, operations all
    (their rows are codes and opaque ids, the operations view)."""
    if actor.role is Role.OPERATIONS:
        return None
    if actor.role is Role.NURSE:
        return f"CoursePhase IN ({', '.join(repr(p.value) for p in sorted(NURSE_PHASES))})"
    staff = _opaque(actor.id, "staff id")
    return f"(ClinicianId = '{staff}' OR TherapistId = '{staff}')"
