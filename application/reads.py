"""Every read of a course, through the API, the console or the CLI: decided, recorded, answered.

The rules are `course.access.may_read`; the course's care team and phase come from the course
itself (its `status` query), so a reassignment or a new phase counts from the moment it is folded.
A read is recorded before it is answered: if the record cannot be written, nothing is shown.
A refused read is not an access (nothing was shown); it is logged with its code, for follow-up.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
import structlog
from fhir.resources.R4B.bundle import Bundle
from pydantic import BaseModel, ConfigDict
from temporalio.service import RPCError

from activities.ports import EventStore
from application.courses import CourseClient, CourseNotFound, parse_course_id
from application.listing import event_rows, list_courses
from application.notifications import fetch_notifications
from application.queries import course_query, readable_by
from course.access import BreakGlassReason, CourseFacts, Read, Refused, clinical_export, may_read, reads_routinely
from course.commands import Actor, Role
from course.state import Phase
from course.view import CourseView, OperationsView, operations_view
from interop.fhir_course import DEFAULT_BASE_URL, course_bundle
from trust.access_log import AccessLog, AccessRecord, Channel
from workflows.inputs import workflow_id

log = structlog.get_logger(__name__)


class ReadRefused(Exception):
    def __init__(self, code: str, sentence: str) -> None:
        super().__init__(sentence)
        self.code = code
        self.sentence = sentence


class Change(BaseModel):
    """One stored event: who changed the course, with what, when, at which version."""

    model_config = ConfigDict(frozen=True)

    version: int
    type: str
    occurred_at: datetime
    staff_id: str
    role: Role
    signed: bool
    break_glass: str | None
    key_id: str | None = None  # whose key signed it: the API's, or an operator's break-glass key


class AuditTrail(BaseModel):
    model_config = ConfigDict(frozen=True)

    course_id: str
    reads: list[AccessRecord]
    changes: list[Change]


class Dashboard(BaseModel):
    """Open courses per phase, on hold, overdue and needing review: of the courses this reader reads
    routinely (operations: all). Counts and opaque course ids only."""

    model_config = ConfigDict(frozen=True)

    open_courses_by_phase: dict[str, int]
    on_hold: int
    overdue: list[str]
    needs_review: list[str]


class BoardRow(BaseModel):
    """One patient in monitoring on the chair-side board. `last_blood_pressure` is clinical: empty
    for operations, who see the same row as times and flags."""

    model_config = ConfigDict(frozen=True)

    course_id: str
    patient_id: str | None
    # None when the course did not answer (flag `not_answering`): listed, never silently left off.
    session_number: int | None
    given_at: datetime | None
    minutes_since_dose: int | None
    next_reading_due: datetime | None
    discharge_from: datetime | None
    last_reading_at: datetime | None
    last_blood_pressure: str | None
    flags: list[str]


# The clinic's pseudonymous patient reference, as OpenCourse accepts it.
PATIENT_REFERENCE = re.compile(r"[A-Za-z0-9._:-]{1,64}")

# How long the board waits for one course's answer before leaving it off (and logging it).
BOARD_QUERY_SECONDS = 5.0

# The lists a dashboard names; a longer backlog is for `course list --overdue`.
DASHBOARD_LIST_LIMIT = 50


@dataclass(frozen=True)
class CourseReads:
    courses: CourseClient
    store: EventStore
    pool: asyncpg.Pool
    channel: Channel

    @property
    def access(self) -> AccessLog:
        return AccessLog(self.pool)

    async def allow(
        self, actor: Actor, course: CourseFacts, what: Read, reason: BreakGlassReason | None = None
    ) -> None:
        """Refuse (ReadRefused), or record the read; only then may the caller answer it."""
        decision = may_read(actor, course, what, reason)
        if isinstance(decision, Refused):
            log.info("read refused", course_id=course.course_id, staff=actor.id, what=what.value, code=decision.code)
            raise ReadRefused(decision.code, decision.sentence)
        await self.access.append(actor, [course.course_id], what, self.channel, decision.break_glass)
        if decision.break_glass:
            log.warning(
                "break-the-glass read",
                course_id=course.course_id,
                staff=actor.id,
                role=actor.role.value,
                what=what.value,
                reason=decision.break_glass.value,
            )

    async def facts(self, course_id: str) -> tuple[CourseView, CourseFacts]:
        view = await self.courses.status(course_id)  # CourseNotFound: 404 before any rule is asked
        return view, CourseFacts.of(view)

    async def course(
        self, actor: Actor, course_id: str, reason: BreakGlassReason | None = None
    ) -> CourseView | OperationsView:
        """The clinical view for clinicians who may read it; the operations view for operations."""
        view, facts = await self.facts(course_id)
        if actor.role is Role.OPERATIONS:
            await self.allow(actor, facts, Read.OPERATIONS)
            return operations_view(view)
        await self.allow(actor, facts, Read.VIEW, reason)
        return view

    async def events(
        self, actor: Actor, course_id: str, reason: BreakGlassReason | None = None
    ) -> list[dict[str, Any]]:
        """The event stream; empty (not 404) just after opening, before its first append lands."""
        _, facts = await self.facts(course_id)
        await self.allow(actor, facts, Read.EVENTS, reason)
        try:
            return await event_rows(self.store, course_id)
        except CourseNotFound:
            return []

    async def timeline(
        self, actor: Actor, course_id: str, reason: BreakGlassReason | None = None
    ) -> tuple[CourseView | OperationsView, list[dict[str, Any]] | None]:
        """The console's course page: operations get the operations view and no events."""
        view, facts = await self.facts(course_id)
        if actor.role is Role.OPERATIONS:
            await self.allow(actor, facts, Read.OPERATIONS)
            return operations_view(view), None
        await self.allow(actor, facts, Read.TIMELINE, reason)
        try:
            return view, await event_rows(self.store, course_id)
        except CourseNotFound:
            return view, []

    async def notifications(
        self, actor: Actor, course_id: str, reason: BreakGlassReason | None = None
    ) -> list[dict[str, Any]]:
        _, facts = await self.facts(course_id)
        await self.allow(actor, facts, Read.NOTIFICATIONS, reason)
        return await fetch_notifications(self.pool, course_id)

    async def recent_notifications(self, actor: Actor, *, attention: bool, limit: int) -> list[dict[str, Any]]:
        """Across courses: operations follow up deliveries; clinicians read a course's own."""
        if actor.role is not Role.OPERATIONS:
            raise ReadRefused(
                "operations_only",
                "Notifications across courses are for operations staff; read a course's own notifications instead.",
            )
        rows = await fetch_notifications(self.pool, None, attention=attention, limit=limit)
        await self.access.append(actor, sorted({r["course_id"] for r in rows}), Read.NOTIFICATIONS, self.channel)
        return rows

    async def listing(self, actor: Actor, query: str, limit: int) -> list[dict[str, Any]]:
        """A list of courses narrowed to those the reader reads routinely (no break-glass in lists),
        each with the clinic's patient reference (from the event store: never a search attribute)."""
        if actor.role is Role.CLINIC_ADMIN:
            return []  # a clinic admin reads no course: no row to record either
        clause = readable_by(actor)
        rows = await list_courses(self.courses.temporal, f"{query} AND {clause}" if clause else query, limit)
        await self.access.append(actor, [r["course_id"] for r in rows], Read.LIST, self.channel)
        references = await self._patient_references([r["course_id"] for r in rows])
        return [{**r, "patient_id": references.get(r["course_id"])} for r in rows]

    async def find(self, actor: Actor, patient_id: str, limit: int = 50) -> list[dict[str, Any]]:
        """The courses of one patient reference that this reader reads routinely, newest first.
        A reference nobody may see here finds nothing, the same answer as an unknown one."""
        if not PATIENT_REFERENCE.fullmatch(patient_id):
            raise ReadRefused(
                "patient_reference_invalid",
                "A patient reference is the clinic's id as given at opening: letters, digits and . _ : - "
                "(up to 64 characters).",
            )
        records = await self.pool.fetch(
            "SELECT stream_id FROM course_summaries WHERE patient_id = $1 ORDER BY opened_at DESC LIMIT $2",
            patient_id,
            limit,
        )
        if not records:
            return []
        # Stream ids are `course-<uuid>` from our own table: quoted as visibility literals, no input.
        ids = ", ".join(f"'{r['stream_id']}'" for r in records)
        query = f"{course_query(include_closed=True)} AND WorkflowId IN ({ids})"
        return await self.listing(actor, query, limit)

    async def _patient_references(self, course_ids: list[str]) -> dict[str, str]:
        if not course_ids:
            return {}
        records = await self.pool.fetch(
            "SELECT course_id::text AS course_id, patient_id FROM course_summaries WHERE course_id = ANY($1::uuid[])",
            course_ids,
        )
        return {r["course_id"]: r["patient_id"] for r in records}

    async def dashboard(self, actor: Actor) -> Dashboard:
        """The courses named (overdue, needing review) are recorded as listed; counts name none."""
        if actor.role is Role.CLINIC_ADMIN:
            raise ReadRefused(
                "clinic_admin_reads_no_course",
                "A clinic admin publishes policies and reads no course; "
                "sign in with your clinical or operations token.",
            )
        clause = readable_by(actor)

        def narrowed(query: str) -> str:
            return f"{query} AND {clause}" if clause else query

        temporal = self.courses.temporal
        phases = {
            p.value: (await temporal.count_workflows(narrowed(course_query(phase=p.value)))).count
            for p in Phase
            if p is not Phase.CLOSED
        }
        on_hold = (await temporal.count_workflows(narrowed(course_query(on_hold=True)))).count
        overdue = await list_courses(temporal, narrowed(course_query(overdue=True)), DASHBOARD_LIST_LIMIT)
        review = await list_courses(temporal, narrowed(course_query(needs_review=True)), DASHBOARD_LIST_LIMIT)
        named = sorted({r["course_id"] for r in overdue} | {r["course_id"] for r in review})
        await self.access.append(actor, named, Read.LIST, self.channel)
        return Dashboard(
            open_courses_by_phase=phases,
            on_hold=on_hold,
            overdue=[r["course_id"] for r in overdue],
            needs_review=[r["course_id"] for r in review],
        )

    async def monitoring_board(self, actor: Actor, now: datetime) -> list[BoardRow]:
        """Every patient in monitoring now that this reader reads routinely, longest in the chair
        first. Each course shown is a read of its view (nurses and the care team) or of its
        operations view (operations), recorded before the board is answered."""
        if actor.role is Role.CLINIC_ADMIN:
            return []
        clause = readable_by(actor)
        query = course_query(awaiting="discharge")
        rows = await list_courses(self.courses.temporal, f"{query} AND {clause}" if clause else query, 200)
        board: list[BoardRow] = []
        unanswered: list[BoardRow] = []
        for row in rows:
            try:
                view, facts = await asyncio.wait_for(self.facts(row["course_id"]), BOARD_QUERY_SECONDS)
            except CourseNotFound:
                continue
            except (RPCError, TimeoutError) as error:
                # One course that does not answer (no worker polls its queue) must not blank the
                # board for every other patient in the chair, nor drop off it: it is listed as such.
                log.warning("course on the board did not answer", course_id=row["course_id"],
                            error=type(error).__name__)  # fmt: skip
                await self.access.append(actor, [row["course_id"]], Read.LIST, self.channel)
                unanswered.append(
                    BoardRow(
                        course_id=row["course_id"],
                        patient_id=row.get("patient_id"),
                        session_number=None,
                        given_at=None,
                        minutes_since_dose=None,
                        next_reading_due=None,
                        discharge_from=None,
                        last_reading_at=None,
                        last_blood_pressure=None,
                        flags=["not_answering"],
                    )
                )
                continue
            chair = view.in_monitoring
            if chair is None:
                continue  # discharged since the list was read: visibility lags the course
            clinical = actor.role is not Role.OPERATIONS
            await self.allow(actor, facts, Read.VIEW if clinical else Read.OPERATIONS)
            flags = [name for name, on in (("overdue", view.flags.overdue),
                                           ("review", view.flags.needs_clinical_review),
                                           ("on_hold", view.flags.on_hold)) if on]  # fmt: skip
            board.append(
                BoardRow(
                    course_id=view.course_id,
                    patient_id=view.patient_id,
                    session_number=chair.session_number,
                    given_at=chair.given_at,
                    minutes_since_dose=max(0, int((now - chair.given_at).total_seconds() // 60)),
                    next_reading_due=chair.next_reading_due,
                    discharge_from=chair.discharge_from,
                    last_reading_at=chair.last_reading_at,
                    last_blood_pressure=chair.last_blood_pressure if clinical else None,
                    flags=flags,
                )
            )
        return unanswered + sorted(board, key=lambda r: r.given_at or now)

    async def audit(self, actor: Actor, course_id: str) -> AuditTrail:
        """Who read the course (this read included) and who changed it."""
        _, facts = await self.facts(course_id)
        await self.allow(actor, facts, Read.AUDIT)
        stream = await self.store.read(workflow_id(parse_course_id(course_id)))
        changes = [
            Change(
                version=e.version,
                type=e.type,
                occurred_at=e.occurred_at,
                staff_id=e.metadata.actor.id,
                role=e.metadata.actor.role,
                signed=e.metadata.signature is not None,
                break_glass=e.metadata.signature.break_glass if e.metadata.signature else None,
                key_id=e.metadata.signature.key_id if e.metadata.signature else None,
            )
            for e in stream
        ]
        return AuditTrail(course_id=facts.course_id, reads=await self.access.reads_of(course_id), changes=changes)

    async def fhir(
        self,
        actor: Actor,
        course_id: str,
        reason: BreakGlassReason | None = None,
        *,
        base_url: str = DEFAULT_BASE_URL,
    ) -> Bundle:
        """The course as a FHIR Bundle (interop/fhir_course.py), decided and recorded like every
        read; the clinical free text and the support person only for `clinical_export` readers.
        Empty (no entries) just after opening, before the first append lands."""
        _, facts = await self.facts(course_id)
        await self.allow(actor, facts, Read.EXPORT, reason)
        stream = await self.store.read(workflow_id(parse_course_id(course_id)))
        return course_bundle(facts.course_id, stream, clinical=clinical_export(actor), base_url=base_url)

    def answer(self, actor: Actor, view: CourseView) -> CourseView | OperationsView:
        """What a step's response shows: the clinical view only to those who read it routinely.
        Not recorded: the step itself is the record."""
        return view if reads_routinely(actor, CourseFacts.of(view)) else operations_view(view)
