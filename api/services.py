"""What the API and the console need from the rest of the service, wired once by the caller."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import structlog

from activities.ports import EventStore
from api.models import OpenCourseRequest
from api.policies import PostgresPolicies
from api.staff import StaffDirectory
from application.courses import CourseClient, NoWorkerServing, StepTimedOut
from application.exports import Exporting
from application.queries import course_query
from application.reads import CourseReads
from application.reports import OutcomeReports
from application.request_ids import derived_request_id
from course.commands import Actor, ClinicianCommand
from course.publication import DEFAULT_POLICY_NAME, PolicyRefused, opener_refusal
from course.view import StepOutcome
from trust.access_log import Channel

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
    # Where workers publish bulk FHIR exports (FHIR_EXPORT_DIR): the API serves their files.
    export_dir: Path = Path(".course-data/fhir-exports")

    @property
    def exporting(self) -> Exporting:
        return Exporting(self.courses.temporal, self.courses.task_queue, self.export_dir)

    @property
    def policies(self) -> PostgresPolicies:
        return PostgresPolicies(self.pool)

    async def open_course(
        self, request: OpenCourseRequest, course_id: UUID, actor: Actor, idempotency_key: str | None = None
    ) -> tuple[UUID, StepOutcome | None]:
        """Open on a published policy, resolved here: the workflow gets its body, name, version and hash.
        With an assessment, the opening and the step go in one update-with-start; the step's id comes
        from the Idempotency-Key, else from the course, the assessment and the opener (a retried
        request is the same step either way)."""
        refusal = opener_refusal(actor)
        if refusal is not None:
            raise PolicyRefused("role_not_permitted", refusal)
        published = await self.policies.resolve(request.policy_name or self.clinic_policy, request.policy_version)
        opening = request.opening(course_id, actor, published.policy, published.ref)
        first: StepOutcome | None = None
        if request.assessment is None:
            course = await self.courses.open(opening)
        else:
            step = request.assessment
            key = idempotency_key or derived_request_id(course_id, step, actor, "")
            first = await self.courses.open_with_step(
                opening, step, actor, update_id(step.step, actor, key), within=self.step_timeout
            )
            course = course_id
        log.info(
            "course opened",
            course_id=str(course),
            staff=actor.id,
            policy=published.name,
            policy_version=published.version,
            with_assessment=first is not None,
        )
        return course, first

    async def record(
        self,
        course_id: str,
        command: ClinicianCommand,
        actor: Actor,
        idempotency_key: str,
        *,
        wait: float | None = None,
        per_occasion: bool = False,
    ) -> StepOutcome:
        """Every step through the API or the console carries a key (428 without): one step, one update.
        `wait`: the caller's own bound (`Prefer: wait=N`), never past the server's. `per_occasion`:
        the key was derived from the payload (the CLI's, without --request-id), so a step that may
        recur identically on purpose (a second hold) is scoped to the course's moment
        (course/repeats.py): a retry is the same update, the next hold a new one."""
        step = command.step
        within = self.step_timeout if wait is None else min(wait, self.step_timeout)
        if per_occasion:
            started = time.monotonic()
            moment = await self.courses.occasion(course_id, command, within=within)
            idempotency_key = f"{idempotency_key}\n{moment}" if moment else idempotency_key
            within = max(within - (time.monotonic() - started), 0.05)  # one bound for the whole step
        request_id = update_id(step, actor, idempotency_key)
        try:
            outcome = await self.courses.record(course_id, command, actor, request_id, within=within)
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
        log.info("step recorded", course_id=outcome.course_id, step=step, staff=actor.id, version=outcome.version)
        return outcome

    def reads(self, channel: Channel) -> CourseReads:
        """Every read of a course goes through here: decided by course/access.py, then recorded."""
        return CourseReads(self.courses, self.store, self.pool, channel)

    def reports(self, channel: Channel) -> OutcomeReports:
        """The clinic's outcome reports: decided by course/access.py (may_read_report), then recorded."""
        return OutcomeReports(self.pool, channel, self.clinic_policy)

    async def my_courses(self, actor: Actor, limit: int = 200) -> list[dict[str, Any]]:
        """Open courses the member reads routinely: prescribers and therapists their care team's,
        nurses those in preparation or dosing, operations every one (as codes and ids)."""
        return await self.reads("console").listing(actor, course_query(), limit)
