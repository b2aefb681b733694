"""What the API and the console need from the rest of the service, wired once by the caller."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import structlog

from activities.ports import EventStore
from api.models import OpenCourseRequest
from api.policies import PostgresPolicies
from api.staff import StaffDirectory
from cli.client import CourseClient, CourseNotFound, NoWorkerServing, StepTimedOut
from cli.notifications_cmd import fetch_notifications
from cli.queries import course_query
from cli.reads import event_rows, list_courses
from course.commands import Actor, ClinicianCommand, Role
from course.publication import DEFAULT_POLICY_NAME, PolicyRefused, opener_refusal
from course.view import CourseView

log = structlog.get_logger(__name__)


def update_id(step: str, actor: Actor, idempotency_key: str) -> str:
    """The Temporal update id for a request: a retried request (same member, step and key) is the
    same update, applied once. Hashed, so whatever a client puts in its key never reaches Temporal."""
    digest = hashlib.sha256(f"{actor.id}\n{step}\n{idempotency_key}".encode()).hexdigest()[:40]
    return f"{step}-{digest}"


@dataclass(frozen=True)
class Services:
    courses: CourseClient
    staff: StaffDirectory
    store: EventStore
    pool: asyncpg.Pool
    step_timeout: float = 30.0
    # The policy courses open on when the request names none (CLINIC_POLICY).
    clinic_policy: str = DEFAULT_POLICY_NAME

    @property
    def policies(self) -> PostgresPolicies:
        return PostgresPolicies(self.pool)

    async def open_course(self, request: OpenCourseRequest, course_id: UUID, actor: Actor) -> UUID:
        """Open on a published policy, resolved here: the workflow gets its body, name, version and hash."""
        refusal = opener_refusal(actor)
        if refusal is not None:
            raise PolicyRefused("role_not_permitted", refusal)
        published = await self.policies.resolve(request.policy_name or self.clinic_policy, request.policy_version)
        course = await self.courses.open(request.opening(course_id, actor, published.policy, published.ref))
        log.info(
            "course opened",
            course_id=str(course),
            staff=actor.id,
            policy=published.name,
            policy_version=published.version,
        )
        return course

    async def record(self, course_id: str, command: ClinicianCommand, actor: Actor, idempotency_key: str) -> CourseView:
        """Every step through the API or the console carries a key (428 without): one step, one update."""
        step = command.step
        request_id = update_id(step, actor, idempotency_key)
        try:
            view = await self.courses.record(course_id, command, actor, request_id, within=self.step_timeout)
        except StepTimedOut as unanswered:
            # The update may still complete: retrying with the same Idempotency-Key is safe.
            log.warning(
                "step not answered in time",
                course_id=course_id,
                step=step,
                staff=actor.id,
                request_id=request_id,
                no_worker=isinstance(unanswered, NoWorkerServing),
            )
            raise
        log.info("step recorded", course_id=view.course_id, step=step, staff=actor.id, version=view.version)
        return view

    async def events(self, course_id: str) -> list[dict[str, Any]]:
        """The course's event stream; empty (not 404) just after opening, before its first append lands."""
        try:
            return await event_rows(self.store, course_id)
        except CourseNotFound:
            await self.courses.status(course_id)  # raises CourseNotFound when there is no such course
            return []

    async def notifications(
        self, course_id: str | None, *, attention: bool = False, limit: int = 200
    ) -> list[dict[str, Any]]:
        return await fetch_notifications(self.pool, course_id, attention=attention, limit=limit)

    async def my_courses(self, actor: Actor, limit: int = 200) -> list[dict[str, Any]]:
        """Prescribers and therapists: open courses whose care team they are on. Nurses (not named on
        a course: they staff the dosing days) and operations: every open course."""
        temporal = self.courses.temporal
        if actor.role in (Role.NURSE, Role.OPERATIONS):
            return await list_courses(temporal, course_query(), limit)
        rows = await list_courses(temporal, course_query(clinician=actor.id), limit)
        seen = {row["course_id"] for row in rows}
        therapist = await list_courses(temporal, course_query(therapist=actor.id), limit)
        return rows + [row for row in therapist if row["course_id"] not in seen]
