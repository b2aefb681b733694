"""Checks every phase uses: is the course in the phase a step belongs to."""

from __future__ import annotations

from datetime import timedelta

from course.errors import RuleViolation
from course.state import CourseState, Phase

# A time a few minutes ahead is clock skew between the clinic's devices, not the future.
CLOCK_SKEW = timedelta(minutes=5)


def in_phase(state: CourseState, step: str, *phases: Phase) -> None:
    if state.phase in phases:
        return
    if state.phase is Phase.ASSESSMENT:
        raise RuleViolation("assessment_first", f"Record the assessment (and confirm candidacy) before '{step}'.")
    raise RuleViolation(
        "wrong_phase",
        f"'{step}' cannot be recorded while the course is in "
        f"{state.phase.value}; it belongs to {', '.join(p.value for p in phases)}.",
    )


def before_dosing(state: CourseState, step: str) -> None:
    in_phase(state, step, Phase.ASSESSMENT, Phase.PREPARATION)


def spoken(span: timedelta) -> str:
    """`2 hours`, `90 minutes`: a policy's duration as a sentence says it."""
    seconds = int(span.total_seconds())
    if seconds % 60:  # shorter policies (tests, demonstrations) say exactly what they are
        return f"{seconds} seconds" if seconds < 60 else f"{seconds / 60:g} minutes"
    minutes = seconds // 60
    if minutes % 60:
        return f"{minutes} minutes"
    hours = minutes // 60
    return "1 hour" if hours == 1 else f"{hours} hours"
