"""What the course waits for, as FHIR Tasks: one per awaited step, from `course.view.awaiting`.

A Task opens when the course starts waiting for a step (its id: the step's name and the event
that made it awaited, so it is stable across re-exports), is `completed` when that step is
recorded, `on-hold` while the course is, and `cancelled` when the course stops waiting for it
otherwise. A step awaited again later (the next session's check-in) is a new Task.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from course.commands import Role
from course.phases.monitoring import recheck_due
from course.rules import STEP_ROLES
from course.state import CourseState, Phase
from course.timing import pending
from course.view import awaiting
from interop import codes
from interop.shapes import Json, instant
from interop.steps import RecordedStep, resource_id


class TaskBook:
    def __init__(self, course_id: str, patient: Json, care_plan: Json, staff: Callable[[str], Json]) -> None:
        self.course_id = course_id
        self.patient = patient
        self.care_plan = care_plan
        self.staff = staff  # a staff id as a reference to its Practitioner
        self.open: dict[str, Json] = {}

    def after(self, step: RecordedStep, state: CourseState) -> list[Json]:
        """The Tasks this step opened or changed."""
        at = instant(step.events[-1].occurred_at)
        wanted = awaiting(state)
        changed: list[Json] = []
        for name, task in list(self.open.items()):
            if name == step.name:
                _close(task, "completed", at)
            elif name in wanted:
                moved = self._due(task, name, state, step)  # a session scheduled after it was awaited
                if task["status"] == "on-hold":
                    task.update(status="requested", lastModified=at)
                elif not moved:
                    continue
            elif state.on_hold and not state.terminal:
                if task["status"] == "on-hold":
                    continue
                task.update(status="on-hold", lastModified=at)
            else:
                _close(task, "cancelled", at)
            changed.append(task)
            if task["status"] in ("completed", "cancelled"):
                del self.open[name]
        for name in wanted:
            if name not in self.open:
                self.open[name] = self._task(name, step, state)
                changed.append(self.open[name])
        return changed

    def _task(self, name: str, step: RecordedStep, state: CourseState) -> Json:
        at = instant(step.events[-1].occurred_at)
        task: Json = {
            "resourceType": "Task",
            "id": resource_id(self.course_id, "Task", name, step.first.event_id),
            "status": "requested",
            "intent": "order",
            "code": codes.step_code(name).concept(),
            "for": self.patient,
            "basedOn": [self.care_plan],
            "authoredOn": at,
            "lastModified": at,
            "executionPeriod": {"start": at},
            # Who may record it: the roles the course's rules allow (course/rules.py STEP_ROLES).
            "performerType": [codes.ROLES[r].concept() for r in sorted(STEP_ROLES.get(name, ()))],
        }
        owner = owner_of(name, state)
        if owner is not None:
            task["owner"] = self.staff(owner)
        self._due(task, name, state, step)
        return task

    @staticmethod
    def _due(task: Json, name: str, state: CourseState, step: RecordedStep) -> bool:
        """Set the task's due date as the course now has it; whether it changed."""
        due = due_by(name, state, step.events[-1].occurred_at)
        restriction = {"period": {"end": instant(due)}} if due is not None else None
        if task.get("restriction") == restriction:
            return False
        if restriction is None:
            del task["restriction"]
        else:
            task["restriction"] = restriction
        task["lastModified"] = instant(step.events[-1].occurred_at)
        return True


def _close(task: Json, status: str, at: str) -> None:
    task.update(status=status, lastModified=at)
    task["executionPeriod"]["end"] = at


def owner_of(step: str, state: CourseState) -> str | None:
    """The care-team member whose step it is, where the rules leave it to one of them: the
    prescriber's (assessment, dosing plan, clinical review), the therapist's (integration)."""
    roles = STEP_ROLES.get(step, frozenset())
    if roles == {Role.PRESCRIBER}:
        return state.clinician_id
    if Role.THERAPIST in roles and Role.NURSE not in roles:
        return state.therapist_id
    return None


def due_by(step: str, state: CourseState, now: datetime) -> datetime | None:
    """When the course expects the step, where it keeps a clock for it (course/timing.py)."""
    if step in ("check-in", "dosing-session", "dose-administered"):
        return state.scheduled.get(state.sessions_completed + 1)
    if step == "maintenance-session":
        return state.maintenance_due_at
    if step == "monitoring-reading" and state.monitoring is not None and state.policy.monitoring is not None:
        return recheck_due(state.monitoring, state.policy.monitoring)
    deadlines = {"assessment": "assessment-lapse", "integration-session": "integration-overdue"}
    prefix = deadlines.get(step, "preparation-lapse" if state.phase is Phase.PREPARATION else None)
    if prefix is None:
        return None
    return next((item.at for item in pending(state, now) if item.key.startswith(prefix)), None)
