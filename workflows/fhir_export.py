"""FhirExportWorkflow: a bulk FHIR export (interop/bulk.py) that survives worker restarts.

plan (the snapshot) → export batch after batch, each returning the checkpoint the next starts
from → finish (manifest, atomic publish). The checkpoint lives in the workflow, so a restarted
worker resumes at the last completed batch, and the batch it was in the middle of runs again
from its checkpoint, cutting off what the dead attempt wrote. Progress is a query and the
workflow's current details: counts and the requesting staff id, never a course's content.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.fhir_export import (
        DISCARD_FHIR_EXPORT,
        EXPORT_FHIR_BATCH,
        FINISH_FHIR_EXPORT,
        HEARTBEAT,
        PLAN_FHIR_EXPORT,
    )
    from interop.bulk import BulkExportRequest, Checkpoint, ExportBatch, ExportPlan, ExportProgress

EXPORT_WORKFLOW_TYPE = "FhirExport"
# A batch is retried until it succeeds: the database or the disk may be away for a while, and an
# operator can cancel the export. ExportDamaged (files shorter than their checkpoint) will not heal.
EXPORT_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=["ExportDamaged"],
)


def export_workflow_id(export_id: str) -> str:
    return f"fhir-export-{export_id}"


@workflow.defn(name=EXPORT_WORKFLOW_TYPE)
class FhirExportWorkflow:
    def __init__(self) -> None:
        self._progress: ExportProgress | None = None

    @workflow.run
    async def run(self, request: BulkExportRequest) -> dict[str, Any]:
        try:
            return await self._export(request)
        except asyncio.CancelledError:
            # Cancelled (DELETE on the status URL): its files go, then the cancellation stands.
            await workflow.execute_activity(
                DISCARD_FHIR_EXPORT, request.export_id, start_to_close_timeout=timedelta(minutes=1)
            )
            raise

    async def _export(self, request: BulkExportRequest) -> dict[str, Any]:
        self._show(ExportProgress(state="planning", requested_by=request.requested_by.id))
        plan: ExportPlan = request.plan or await workflow.execute_activity(
            PLAN_FHIR_EXPORT,
            request,
            result_type=ExportPlan,
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=EXPORT_RETRY,
        )
        checkpoint = request.checkpoint
        self._exporting(request, plan, checkpoint)
        while not checkpoint.done:
            checkpoint = await workflow.execute_activity(
                EXPORT_FHIR_BATCH,
                ExportBatch(request=request, plan=plan, checkpoint=checkpoint),
                result_type=Checkpoint,
                start_to_close_timeout=timedelta(minutes=30),
                heartbeat_timeout=HEARTBEAT,
                retry_policy=EXPORT_RETRY,
                # On cancel, wait until the batch stops writing (it heartbeats per course) before
                # its files are discarded.
                cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                summary=f"courses after {checkpoint.courses}",
            )
            self._exporting(request, plan, checkpoint)
            if not checkpoint.done and workflow.info().is_continue_as_new_suggested():
                workflow.continue_as_new(request.model_copy(update={"plan": plan, "checkpoint": checkpoint}))
        self._show(self._at(request, plan, checkpoint, "finishing"))
        manifest: dict[str, Any] = await workflow.execute_activity(
            FINISH_FHIR_EXPORT,
            ExportBatch(request=request, plan=plan, checkpoint=checkpoint),
            result_type=dict,
            start_to_close_timeout=timedelta(minutes=5),
            retry_policy=EXPORT_RETRY,
        )
        self._show(self._at(request, plan, checkpoint, "complete"))
        return manifest

    @workflow.query
    def progress(self) -> ExportProgress | None:
        return self._progress

    def _exporting(self, request: BulkExportRequest, plan: ExportPlan, checkpoint: Checkpoint) -> None:
        self._show(self._at(request, plan, checkpoint, "exporting"))

    @staticmethod
    def _at(request: BulkExportRequest, plan: ExportPlan, checkpoint: Checkpoint, state: Any) -> ExportProgress:
        return ExportProgress(
            state=state,
            courses_done=checkpoint.courses,
            courses_total=plan.courses,
            requested_by=request.requested_by.id,
        )

    def _show(self, progress: ExportProgress) -> None:
        self._progress = progress
        workflow.set_current_details(f"FHIR bulk export, {progress.text()}")
