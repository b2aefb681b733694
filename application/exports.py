"""Bulk FHIR exports as the API offers them: kick off, ask how far, fetch the files.

Only operations staff export (the clinic's data warehouse and EHR feeds are theirs to run), and
each export is its requester's: another member asking about it is told it does not exist. The
reads are decided and recorded per course as the export runs (activities/fhir_export.py), as
the requester, so the files hold only what that member may read.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.service import RPCError, RPCStatusCode

from application.reads import ReadRefused
from course.commands import Actor, Role
from interop import bulk
from trust.access_log import Channel
from workflows.fhir_export import FhirExportWorkflow, export_workflow_id

REQUESTED_BY = "requested_by"  # memo: the requester's opaque staff id, readable without a worker


class ExportNotFound(Exception):
    """No such export, or not the asker's."""


class ExportFailed(Exception):
    """The export ended without a manifest (cancelled, or its files no longer match)."""


@dataclass(frozen=True)
class Running:
    progress: bulk.ExportProgress | None  # None: no worker answered the question just now


@dataclass(frozen=True)
class Exporting:
    temporal: Client
    task_queue: str
    root: Path

    async def start(
        self, actor: Actor, since: datetime | None, request_url: str, files_url: str, channel: Channel
    ) -> str:
        """A new export's id; `files_url` is completed with the id (`{files_url}{id}/`)."""
        refuse_unless_operations(actor)
        export_id = uuid.uuid4().hex
        request = bulk.BulkExportRequest(
            export_id=export_id,
            since=since,
            requested_by=actor,
            channel=channel,
            request_url=request_url,
            files_url=f"{files_url}{export_id}/",
        )
        await self.temporal.start_workflow(
            FhirExportWorkflow.run,
            request,
            id=export_workflow_id(export_id),
            task_queue=self.task_queue,
            memo={REQUESTED_BY: actor.id},
            static_summary="FHIR bulk export",
        )
        return export_id

    async def status(self, actor: Actor, export_id: str) -> Running | dict[str, Any]:
        """Running (with its progress), or the manifest once complete."""
        handle = await self._owned(actor, export_id)
        described = await handle.describe()
        if described.status == WorkflowExecutionStatus.COMPLETED:
            if not bulk.final_dir(self.root, export_id).is_dir():
                raise ExportNotFound(export_id)  # finished, then deleted by its requester
            manifest: dict[str, Any] = await handle.result()
            return manifest
        if described.status == WorkflowExecutionStatus.CANCELED:
            raise ExportNotFound(export_id)  # deleted by its requester: gone, as the convention has it
        if described.status != WorkflowExecutionStatus.RUNNING:
            raise ExportFailed(f"the export ended without a manifest ({described.status.name.lower()})")
        try:
            return Running(await handle.query(FhirExportWorkflow.progress))
        except (RPCError, WorkflowFailureError):
            return Running(None)

    async def cancel(self, actor: Actor, export_id: str) -> None:
        """A running export is cancelled (the workflow discards its files); a finished one's
        files are deleted here."""
        handle = await self._owned(actor, export_id)
        described = await handle.describe()
        if described.status == WorkflowExecutionStatus.RUNNING:
            await handle.cancel()
        else:
            await asyncio.to_thread(bulk.discard, self.root, export_id, published=True)

    async def file(self, actor: Actor, export_id: str, resource_type: str) -> Path:
        """A published export's NDJSON file (not while it is still being written)."""
        await self._owned(actor, export_id)
        if not bulk.RESOURCE_TYPE.fullmatch(resource_type):
            raise ExportNotFound(export_id)
        path = bulk.final_dir(self.root, export_id) / f"{resource_type}{bulk.NDJSON}"
        if not path.is_file():
            raise ExportNotFound(export_id)
        return path

    async def _owned(self, actor: Actor, export_id: str) -> Any:
        refuse_unless_operations(actor)
        if not bulk.EXPORT_ID.fullmatch(export_id):
            raise ExportNotFound(export_id)
        handle = self.temporal.get_workflow_handle_for(FhirExportWorkflow.run, export_workflow_id(export_id))
        try:
            described = await handle.describe()
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                raise ExportNotFound(export_id) from None
            raise
        memo = await described.memo()
        if memo.get(REQUESTED_BY) != actor.id:
            raise ExportNotFound(export_id)
        return handle


def refuse_unless_operations(actor: Actor) -> None:
    if actor.role is not Role.OPERATIONS:
        raise ReadRefused(
            "bulk_export_operations_only",
            "Bulk FHIR exports are run by operations staff; a clinician exports one course "
            "(GET /courses/{id}/fhir, `course export COURSE_ID --fhir`).",
        )
