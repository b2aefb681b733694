"""Who reads what of a course (course/access.py): clinic stories, then properties over every case."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from course.access import (
    CLINICAL_READS,
    NURSE_PHASES,
    Allowed,
    BreakGlassReason,
    CourseFacts,
    Read,
    Refused,
    clinical_export,
    may_read,
)
from course.commands import Actor, Role
from course.state import Phase

COURSE = CourseFacts("3f1e9c2a-0000-4000-8000-000000000001", "dr-ames", "th-cole", Phase.PREPARATION)
AMES = Actor(id="dr-ames", role=Role.PRESCRIBER)
COLE = Actor(id="th-cole", role=Role.THERAPIST)
OTHER_PRESCRIBER = Actor(id="dr-lind", role=Role.PRESCRIBER)
NURSE = Actor(id="rn-bell", role=Role.NURSE)
OPS = Actor(id="ops-dunn", role=Role.OPERATIONS)


def in_phase(phase: Phase) -> CourseFacts:
    return CourseFacts(COURSE.course_id, COURSE.clinician_id, COURSE.therapist_id, phase)


def test_the_prescriber_and_therapist_of_the_course_read_it_without_a_reason() -> None:
    for actor in (AMES, COLE):
        for what in Read:
            assert may_read(actor, COURSE, what) == Allowed(), (actor, what)


def test_another_prescriber_reads_it_only_by_breaking_the_glass_and_it_is_marked() -> None:
    refused = may_read(OTHER_PRESCRIBER, COURSE, Read.EVENTS)
    assert isinstance(refused, Refused) and refused.code == "break_glass_required"
    assert "care team" in refused.sentence and "emergency" in refused.sentence
    assert may_read(OTHER_PRESCRIBER, COURSE, Read.EVENTS, BreakGlassReason.EMERGENCY) == Allowed(
        break_glass=BreakGlassReason.EMERGENCY
    )


def test_a_nurse_reads_courses_in_preparation_and_dosing_and_not_in_assessment() -> None:
    assert may_read(NURSE, in_phase(Phase.PREPARATION), Read.VIEW) == Allowed()
    assert may_read(NURSE, in_phase(Phase.DOSING), Read.TIMELINE) == Allowed()
    refused = may_read(NURSE, in_phase(Phase.ASSESSMENT), Read.VIEW)
    assert isinstance(refused, Refused) and refused.code == "break_glass_required"
    assert "this course is in assessment" in refused.sentence


def test_operations_read_the_operations_view_and_never_the_clinical_record_even_with_a_reason() -> None:
    assert may_read(OPS, COURSE, Read.OPERATIONS) == Allowed()
    assert may_read(OPS, COURSE, Read.AUDIT) == Allowed()
    refused = may_read(OPS, COURSE, Read.EVENTS, BreakGlassReason.EMERGENCY)
    assert isinstance(refused, Refused) and refused.code == "operations_view_only"


def test_the_audit_is_for_operations_and_the_care_team_only() -> None:
    for actor in (NURSE, OTHER_PRESCRIBER):
        refused = may_read(actor, in_phase(Phase.DOSING), Read.AUDIT, BreakGlassReason.EMERGENCY)
        assert isinstance(refused, Refused) and refused.code == "audit_not_permitted"


def test_a_staff_id_named_on_the_course_is_not_enough_for_operations() -> None:
    """An operations member whose id was typed as the course's clinician is still operations."""
    odd = CourseFacts(COURSE.course_id, "ops-dunn", None, Phase.DOSING)
    assert isinstance(may_read(OPS, odd, Read.VIEW), Refused)


actors = st.builds(
    Actor, id=st.sampled_from(["dr-ames", "th-cole", "dr-lind", "rn-bell", "ops-dunn"]), role=st.sampled_from(Role)
)
courses = st.builds(
    CourseFacts,
    course_id=st.just(COURSE.course_id),
    clinician_id=st.sampled_from(["dr-ames", "dr-lind", "ops-dunn"]),
    therapist_id=st.sampled_from([None, "th-cole", "dr-ames"]),
    phase=st.sampled_from(Phase),
)
reasons = st.none() | st.sampled_from(BreakGlassReason)


@given(actors, courses, st.sampled_from(Read), reasons)
def test_operations_never_get_a_clinical_payload(actor: Actor, course: CourseFacts, what: Read, reason: object) -> None:
    if actor.role is Role.OPERATIONS and what in CLINICAL_READS:
        assert isinstance(may_read(actor, course, what, reason), Refused)  # type: ignore[arg-type]


@given(actors, courses, st.sampled_from(Read))
def test_without_a_reason_a_read_is_never_break_the_glass(actor: Actor, course: CourseFacts, what: Read) -> None:
    decision = may_read(actor, course, what, None)
    assert isinstance(decision, Refused) or decision.break_glass is None


@given(actors, courses, st.sampled_from(Read), st.sampled_from(BreakGlassReason))
def test_a_reason_is_marked_only_when_it_was_needed(
    actor: Actor, course: CourseFacts, what: Read, reason: BreakGlassReason
) -> None:
    """Break-the-glass is recorded exactly when the read would have been refused without it."""
    without = may_read(actor, course, what, None)
    with_reason = may_read(actor, course, what, reason)
    if isinstance(without, Allowed):
        assert with_reason == Allowed()
    elif without.code == "break_glass_required":
        assert with_reason == Allowed(break_glass=reason)
    else:
        assert with_reason == without


@given(courses, st.sampled_from(sorted(CLINICAL_READS)))
def test_a_nurse_reads_routinely_exactly_in_the_nurse_phases(course: CourseFacts, what: Read) -> None:
    assert (may_read(NURSE, course, what) == Allowed()) == (course.phase in NURSE_PHASES)


@given(courses, st.sampled_from(Read), reasons)
def test_a_clinic_admin_reads_no_course_whatever_the_reason(course: CourseFacts, what: Read, reason: object) -> None:
    """Publishing policies needs no patient's record; and the access log has no row for the role."""
    admin = Actor(id="adm-ruiz", role=Role.CLINIC_ADMIN)
    decision = may_read(admin, course, what, reason)  # type: ignore[arg-type]
    assert isinstance(decision, Refused) and decision.code == "clinic_admin_reads_no_course"


@given(actors, courses, reasons)
def test_the_fhir_export_follows_the_read_rules_and_carries_clinical_text_only_to_clinicians(
    actor: Actor, course: CourseFacts, reason: object
) -> None:
    """Operations export for the EHR interface without the clinical free text; a clinician exports
    exactly when they may read the clinical view, and gets all of it."""
    export = may_read(actor, course, Read.EXPORT, reason)  # type: ignore[arg-type]
    if actor.role is Role.OPERATIONS:
        assert export == Allowed() and not clinical_export(actor)
    else:
        assert export == may_read(actor, course, Read.VIEW, reason)  # type: ignore[arg-type]
        assert isinstance(export, Refused) or clinical_export(actor)
