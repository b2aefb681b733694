"""What the console offers on a course: the steps to take now, and the values a form starts with.

Read from the course's view alone (what the `status` query answers), so the page and the forms
never fold events themselves. An offer is a convenience: the decider still judges every step,
and a step not offered stays reachable by its address. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from course.commands import Role
from course.rules import STEP_ROLES
from course.view import CourseView, OperationsView

# Steps a course takes once, and the checklist line (course/view.py `_steps`) that says so: done,
# offering them again only invites a refusal or a second, contradicting fact.
ONE_OFF: Mapping[str, str] = {
    "assessment": "assessment",
    "financial-clearance": "insurance",
    "prior-authorization": "insurance",
    "consent": "consent",
    "dosing-plan": "dosing-plan",
}
# The steps whose form names the dosing session the course is at.
SESSION_STEPS = frozenset(
    {"schedule-session", "check-in", "dosing-session", "dose-administered", "monitoring-reading", "discharge"}
)


@dataclass(frozen=True)
class OfferedSteps:
    now: list[str]  # what the course awaits and this role may record, in the course's order
    other: list[str]  # the rest this role may record, in the order of STEP_ROLES


def offered_steps(course: CourseView | OperationsView, role: Role) -> OfferedSteps:
    mine = [step for step, roles in STEP_ROLES.items() if role in roles]
    now = [step for step in course.awaiting if step in mine]
    done = {s.name for s in course.steps if s.status == "done"}
    other = [step for step in mine if step not in now and ONE_OFF.get(step) not in done]
    return OfferedSteps(now=now, other=other)


def next_session(course: CourseView | OperationsView) -> int | None:
    """The dosing session the course is at: the one after the last completed, while the plan has one."""
    following = course.dosing_sessions.completed + 1
    planned = course.dosing_sessions.planned
    return following if planned is None or following <= planned else None


def prefill(step: str, course: CourseView | OperationsView) -> dict[str, str]:
    """Form field -> the value it starts with: the session number, and for a dose the plan's route
    and the dose now planned (the starting dose, or a review's new one). The person can change them."""
    values: dict[str, str] = {}
    session = next_session(course)
    if step in SESSION_STEPS and session is not None:
        values["session_number"] = str(session)
    if step in ("dosing-session", "dose-administered") and isinstance(course, CourseView):
        if course.route is not None:
            values["route"] = course.route
        if course.dose_mg_per_kg is not None:
            values["dose_mg_per_kg"] = f"{course.dose_mg_per_kg:g}"
    return values
