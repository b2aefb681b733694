"""Assessment: candidacy, or a course closed as ineligible with its reasons."""

from __future__ import annotations

from course.commands import RecordAssessment
from course.errors import require
from course.events import AssessmentRecorded, CandidacyConfirmed, CourseClosed, DomainEvent
from course.rules import ineligibility_reasons
from course.state import CourseState, Phase


def assess(state: CourseState, command: RecordAssessment) -> list[DomainEvent]:
    require(
        state.phase is Phase.ASSESSMENT and not state.assessed,
        "already_recorded",
        "The assessment is already recorded for this course.",
    )
    recorded = AssessmentRecorded(**command.model_dump(exclude={"step"}))
    reasons = ineligibility_reasons(command.contraindications, command.blood_pressure, state.policy.bp_threshold)
    if reasons:
        return [recorded, CourseClosed(outcome="ineligible", reasons=reasons)]
    relative = sorted(set(command.contraindications), key=lambda c: c.value)
    require(
        not relative or command.relative_contraindication_rationale is not None,
        "rationale_required",
        "Relative contraindications were found ("
        + ", ".join(c.value for c in relative)
        + "): the prescriber must write a rationale to proceed.",
    )
    return [recorded, CandidacyConfirmed(relative_contraindications=relative)]
