"""CourseClient: how staff tools talk to courses. The CLI and the tests use this one class."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any
from uuid import UUID

from temporalio.client import (
    Client,
    WorkflowHandle,
    WorkflowUpdateFailedError,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from course.commands import Actor, ClinicianCommand, StepRequest
from course.state import CourseState
from course.view import CourseView
from workflows.inputs import TASK_QUEUE, OpenCourse, workflow_id
from workflows.treatment_course import TreatmentCourseWorkflow
from workflows.ui_text import for_operations


class CourseNotFound(Exception):
    def __init__(self, course_id: str) -> None:
        super().__init__(f"No course with id {course_id}.")


class StepRejected(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def parse_course_id(value: str) -> UUID:
    try:
        return UUID(value.removeprefix("course-"))
    except ValueError:
        raise CourseNotFound(value) from None


def summary_for(request: OpenCourse) -> str:
    """Shown in the Temporal UI's list: clinical shape only, no patient data."""
    condition = request.condition.value if request.condition else "condition tbd"
    sessions = f"{request.planned_sessions} sessions" if request.planned_sessions else "sessions tbd"
    return f"Treatment course: {condition}, {sessions}"


def details_for(request: OpenCourse) -> str:
    """The UI's static details: the course's clinical shape and care team ids, no patient data."""
    payer = "self-pay" if request.self_pay else "insured (eligibility checked on open)"
    lines = [
        f"- condition: {request.condition.value if request.condition else 'to be assessed'}",
        f"- planned sessions: {request.planned_sessions or 'per dosing plan'}",
        f"- payer: {payer}",
        f"- clinician: {request.clinician_id}",
        f"- therapist: {request.therapist_id or 'unassigned'}",
        f"- opened by: {request.opened_by.role.value} {request.opened_by.id}",
    ]
    return "\n".join(lines)


class CourseClient:
    def __init__(self, client: Client, task_queue: str = TASK_QUEUE) -> None:
        self._client = client
        self._task_queue = task_queue

    @property
    def temporal(self) -> Client:
        return self._client

    async def open(self, request: OpenCourse) -> UUID:
        """Idempotent: opening the same course id twice returns the existing course."""
        # Closed earlier under the same id: that course is the answer.
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await self._client.start_workflow(
                TreatmentCourseWorkflow.run,
                request,
                id=workflow_id(request.course_id),
                task_queue=self._task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=for_operations(summary_for(request)),
                static_details=for_operations(details_for(request)),
            )
        return request.course_id

    async def record(
        self, course_id: str | UUID, command: ClinicianCommand, actor: Actor, request_id: str | None = None
    ) -> CourseView:
        course = parse_course_id(str(course_id))
        handle = self._handle(course)
        update_id = request_id or f"{command.step}-{uuid.uuid4()}"
        try:
            return await handle.execute_update(
                TreatmentCourseWorkflow.record,
                StepRequest(command=command, actor=actor),
                id=update_id,
            )
        except WorkflowUpdateFailedError as failed:
            cause = failed.cause
            if isinstance(cause, ApplicationError) and cause.type == "RuleViolation":
                code = str(cause.details[0]) if cause.details else "rejected"
                raise StepRejected(code, cause.message) from None
            raise
        except RPCError as error:
            await self._explain(course, error)
            raise

    async def retry(self, course_id: str | UUID) -> None:
        """Ask a course that needs attention to try again now (the `retry` signal)."""
        await self._signal(course_id, TreatmentCourseWorkflow.retry)

    async def resync(self, course_id: str | UUID) -> None:
        """Ask a course to load its stream's head from the event store and adopt it."""
        await self._signal(course_id, TreatmentCourseWorkflow.resync)

    async def _signal(self, course_id: str | UUID, signal: Any) -> None:
        course = parse_course_id(str(course_id))
        try:
            await self._handle(course).signal(signal)
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                await self.status(course)  # CourseNotFound, or a closed course's view
                raise StepRejected("course_closed", "This course is closed; there is nothing to retry.") from None
            raise

    async def _explain(self, course: UUID, error: RPCError) -> None:
        """An update to a workflow that is not running: no such course, or a closed one."""
        if error.status == RPCStatusCode.NOT_FOUND:
            view = await self.status(course)  # raises CourseNotFound when there is none
            if view.outcome is not None:
                raise StepRejected(
                    "course_closed",
                    f"This course is closed ({view.outcome}); it accepts no further steps.",
                ) from None

    async def status(self, course_id: str | UUID) -> CourseView:
        course = parse_course_id(str(course_id))
        try:
            return await self._handle(course).query(TreatmentCourseWorkflow.status)
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                raise CourseNotFound(str(course)) from None
            raise

    async def state(self, course_id: str | UUID) -> CourseState:
        course = parse_course_id(str(course_id))
        return await self._handle(course).query(TreatmentCourseWorkflow.state)

    def _handle(self, course: UUID) -> WorkflowHandle[TreatmentCourseWorkflow, CourseView]:
        return self._client.get_workflow_handle_for(TreatmentCourseWorkflow.run, workflow_id(course))
