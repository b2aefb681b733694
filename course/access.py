"""Who may read what of a course: the minimum necessary, as one pure function.

Prescribers and therapists read the courses of their care team. Nurses are not named on a course:
they prepare patients and staff the dosing days, so they read courses in those phases. Any other
clinician reads a course only by breaking the glass, with a reason from a fixed set; the read is
recorded as such. Operations staff run the clinic's schedule and money: they read the operations
view (phase, what the course waits for, flags, times, codes), never the clinical record, whatever
reason they give. Every allowed read is recorded by the caller (application/reads.py).

The FHIR export (`Read.EXPORT`) follows the same rules, with one addition: operations staff may
export a course for the clinic's EHR interface (they run it), but what they get has no clinical
free text and no support person (`clinical_export`); a clinician who may read the course's
clinical record (routinely, or by breaking the glass) gets all of it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from course.commands import Actor, Role
from course.state import Phase
from course.view import CourseView


class Read(StrEnum):
    """What is read: the code kept in the access record."""

    VIEW = "view"  # the clinical CourseView: GAD-7, route, the reasons a course closed
    EVENTS = "events"  # the event stream: the clinical record itself
    TIMELINE = "timeline"  # the console's course page: the view, the GAD-7 trend, the events
    OPERATIONS = "operations"  # the operations view: phase, awaiting, flags, times, codes
    NOTIFICATIONS = "notifications"  # reminders sent: purpose, recipient kind, channel, status
    LIST = "list"  # a course's row in a list (visibility: codes and opaque ids)
    AUDIT = "audit"  # who read the course and who changed it
    EXPORT = "export"  # the course as FHIR resources (interop/): clinical, or without free text


CLINICAL_READS = frozenset({Read.VIEW, Read.EVENTS, Read.TIMELINE})
# Operations export for the EHR interface; what the export shows them is `clinical_export`'s to say.
OPERATIONS_READS = frozenset({Read.OPERATIONS, Read.NOTIFICATIONS, Read.LIST, Read.AUDIT, Read.EXPORT})


class BreakGlassReason(StrEnum):
    """Why a clinician outside the course's routine readers reads it. Codes only: free text would be
    patient data in a table kept forever, so none is accepted."""

    EMERGENCY = "emergency"
    COVERING_COLLEAGUE = "covering_colleague"
    PATIENT_REQUEST = "patient_request"


# Phases in which nurses read a course routinely: preparation (consent, orientation) and dosing
# (check-in, the session, monitoring after the dose). A monitoring phase, when one exists, joins here.
NURSE_PHASES: frozenset[Phase] = frozenset({Phase.PREPARATION, Phase.DOSING})
CARE_TEAM_ROLES = frozenset({Role.PRESCRIBER, Role.THERAPIST})


@dataclass(frozen=True)
class CourseFacts:
    """What the rules need to know about a course: its care team and its phase."""

    course_id: str
    clinician_id: str
    therapist_id: str | None
    phase: Phase

    @classmethod
    def of(cls, course: CourseView) -> CourseFacts:
        return cls(course.course_id, course.clinician_id, course.therapist_id, course.phase)


@dataclass(frozen=True)
class Allowed:
    break_glass: BreakGlassReason | None = None


@dataclass(frozen=True)
class Refused:
    code: str
    sentence: str


def on_care_team(actor: Actor, course: CourseFacts) -> bool:
    return actor.role in CARE_TEAM_ROLES and actor.id in (course.clinician_id, course.therapist_id)


def reads_routinely(actor: Actor, course: CourseFacts) -> bool:
    """A clinician who needs no reason to read this course's record."""
    if actor.role is Role.NURSE:
        return course.phase in NURSE_PHASES
    return on_care_team(actor, course)


def may_read(
    actor: Actor, course: CourseFacts, what: Read, reason: BreakGlassReason | None = None
) -> Allowed | Refused:
    if actor.role is Role.CLINIC_ADMIN:
        return Refused(
            "clinic_admin_reads_no_course",
            "A clinic admin publishes policies and reads no course; sign in with your clinical or operations token.",
        )
    if actor.role is Role.OPERATIONS:
        if what in OPERATIONS_READS:
            return Allowed()
        return Refused(
            "operations_view_only",
            "Operations staff read a course's operations view (phase, what it waits for, flags, times, codes), "
            "not its clinical record; ask the course's prescriber or therapist.",
        )
    if what is Read.AUDIT:
        if on_care_team(actor, course):
            return Allowed()
        return Refused(
            "audit_not_permitted",
            "Who read and changed a course is shown to operations and to the course's prescriber and therapist.",
        )
    if reads_routinely(actor, course):
        return Allowed()
    if reason is not None:
        return Allowed(break_glass=reason)
    return Refused("break_glass_required", _why_not(actor, course))


def clinical_export(actor: Actor) -> bool:
    """Whether an allowed export carries the clinical free text and the support person: to the
    clinicians `may_read` lets read the record, yes; to operations, never."""
    return actor.role in CARE_TEAM_ROLES | {Role.NURSE}


def _why_not(actor: Actor, course: CourseFacts) -> str:
    reasons = ", ".join(r.value for r in BreakGlassReason)
    if actor.role is Role.NURSE:
        phases = " or ".join(sorted(p.value for p in NURSE_PHASES))
        who = f"Nurses read courses in {phases}; this course is in {course.phase.value}."
    else:
        who = "You are not on this course's care team."
    return f"{who} To read it anyway, give a break-the-glass reason ({reasons}); the read is recorded with it."
