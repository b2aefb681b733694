"""What the course waits for, as FHIR Tasks: one per awaited step, from `course.view.awaiting`.

A Task opens when the course starts waiting for a step (its id: the step's name and the event
that made it awaited, so it is stable across re-exports), is `completed` when that step is
recorded, `on-hold` while the course is, and `cancelled` when the course stops waiting for it
otherwise. A step awaited again later (the next session's check-in) is a new Task.
"""

from __future__ import annotations

from datetime import datetime

from course.phases.monitoring import recheck_due
from course.rules import STEP_ROLES
from course.state import CourseState, Phase
from course.timing import pending
from course.view import awaiting
from interop import codes
from interop.shapes import Json, instant
from interop.steps import RecordedStep, resource_id


class TaskBook:
    def __init__(self, course_id: str, patient: Json, care_plan: Json) -> None:
        self.course_id = course_id
        self.patient = patient
        self.care_plan = care_plan
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
                if task["status"] != "on-hold":
                    continue
                task.update(status="requested", lastModified=at)
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
        due = due_by(name, state, step.events[-1].occurred_at)
        if due is not None:
            task["restriction"] = {"period": {"end": instant(due)}}
        return task


def _close(task: Json, status: str, at: str) -> None:
    task.update(status=status, lastModified=at)
    task["executionPeriod"]["end"] = at


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
