"""The bulk FHIR export's activities: plan the snapshot, export a batch of courses, publish.

Each batch is decided and recorded by the same rule as every other read (course/access.py): the
member who asked is the reader, each course's care team and phase come from its own stream. The
batch heartbeats after every course, so a worker that dies mid-batch is noticed within
HEARTBEAT and the batch runs again on another worker from the same checkpoint (interop/bulk.py
makes that write each line once).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import asyncpg
import structlog
from temporalio import activity

from course.access import CourseFacts, Read, Refused, clinical_export, may_read
from course.events import EventEnvelope
from course.state import fold
from interop import bulk
from trust.access_log import AccessLog

log = structlog.get_logger(__name__)

PLAN_FHIR_EXPORT = "plan_fhir_export"
EXPORT_FHIR_BATCH = "export_fhir_batch"
FINISH_FHIR_EXPORT = "finish_fhir_export"
DISCARD_FHIR_EXPORT = "discard_fhir_export"
HEARTBEAT = timedelta(seconds=10)
# Courses per batch (and per checkpoint): a batch's streams are held in memory at once, and a
# restart redoes at most one batch.
BATCH_COURSES = 100


class CourseBuilder(Protocol):
    """interop.fhir_course.course_resources: one course's resources, clinical or not."""

    def __call__(
        self, course_id: str, events: Sequence[EventEnvelope], *, clinical: bool
    ) -> Sequence[bulk.Resource]: ...


class FhirExportActivities:
    def __init__(
        self, pool: asyncpg.Pool, root: Path, build: CourseBuilder, *, batch_courses: int = BATCH_COURSES
    ) -> None:
        self._pool = pool
        self._root = root
        self._build = build
        self._batch = batch_courses

    @activity.defn(name=PLAN_FHIR_EXPORT)
    async def plan_fhir_export(self, request: bulk.BulkExportRequest) -> bulk.ExportPlan:
        return await bulk.plan(self._pool, request.export_id, request.since)

    @activity.defn(name=EXPORT_FHIR_BATCH)
    async def export_fhir_batch(self, batch: bulk.ExportBatch) -> bulk.Checkpoint:
        request = batch.request
        # What the reader's role may see of a course they may export (course/access.py): for
        # operations, the bulk export's only readers, no support person and no free text.
        clinical = clinical_export(request.requested_by)

        def build(course: str, events: list[EventEnvelope]) -> Sequence[bulk.Resource]:
            return self._build(course, events, clinical=clinical)

        async def admit(streams: dict[str, list[EventEnvelope]]) -> dict[str, str]:
            allowed: list[str] = []
            refused: dict[str, str] = {}
            for stream, events in streams.items():
                state = fold(None, events)
                if state is None:
                    refused[stream] = "no_opening"
                    continue
                facts = CourseFacts(str(state.course_id), state.clinician_id, state.therapist_id, state.phase)
                decision = may_read(request.requested_by, facts, Read.EXPORT)
                if isinstance(decision, Refused):
                    refused[stream] = decision.code
                else:
                    allowed.append(facts.course_id)
            # Recorded before a line is written; a batch run again records its reads again (each
            # attempt did read them), which the append-only log keeps as it is.
            await AccessLog(self._pool).append(request.requested_by, allowed, Read.EXPORT, request.channel)
            return refused

        checkpoint = await bulk.export_batch(
            self._pool,
            self._root,
            batch.plan,
            batch.checkpoint,
            build=build,
            admit=admit,
            batch_size=self._batch,
            beat=activity.heartbeat,
        )
        log.info(
            "fhir export batch",
            export_id=batch.plan.export_id,
            courses=checkpoint.courses,
            of=batch.plan.courses,
            attempt=activity.info().attempt,
        )
        return checkpoint

    @activity.defn(name=FINISH_FHIR_EXPORT)
    async def finish_fhir_export(self, batch: bulk.ExportBatch) -> dict[str, Any]:
        request = batch.request
        return bulk.finish(self._root, batch.plan, batch.checkpoint, request.request_url, request.files_url)

    @activity.defn(name=DISCARD_FHIR_EXPORT)
    async def discard_fhir_export(self, export_id: str) -> None:
        """A cancelled export's files go: half an export is nobody's to download."""
        bulk.discard(self._root, export_id)
