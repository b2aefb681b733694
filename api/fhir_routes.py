"""Bulk FHIR export in the FHIR Bulk Data convention (kick-off, status, files), for operations.

    POST|GET /fhir/$export?_since=INSTANT       202, Content-Location: the status URL
    GET  /fhir/$export-status/{id}              202 + X-Progress while running; 200 + the manifest
    DELETE /fhir/$export-status/{id}            202: the export is cancelled
    GET  /fhir/$export-files/{id}/{Type}.ndjson the manifest's files (application/fhir+ndjson)

The work is a Temporal workflow (workflows/fhir_export.py). Anyone but operations is 403; an
export that is not the caller's is 404, like one that does not exist.
"""

# No `from __future__ import annotations`: FastAPI reads the routes' annotations at run time.

from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse

from api.problems import PROBLEMS, Problem
from application.exports import ExportFailed, Exporting, ExportNotFound, Running
from course.commands import Actor

NDJSON_TYPES = ("application/fhir+ndjson", "application/ndjson", "ndjson")
POLL_SECONDS = 2
Since = Annotated[
    str | None,
    Query(
        alias="_since",
        max_length=64,
        description="Only courses whose event stream changed at or after this FHIR instant "
        "(`2026-11-30T00:00:00Z`, with its zone).",
    ),
]
OutputFormat = Annotated[str | None, Query(alias="_outputFormat", max_length=64)]


def parse_since(text: str | None) -> datetime | None:
    if text is None:
        return None
    since: datetime | None
    try:
        written = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        since = written.astimezone(UTC) if written.tzinfo is not None else None
    except (ValueError, OverflowError):  # not a time; or year 1 at +14:00, before any UTC instant
        since = None
    if since is None:
        raise Problem(
            HTTPStatus.UNPROCESSABLE_ENTITY,
            "_since is a FHIR instant with its zone, like 2026-11-30T00:00:00Z.",
            code="since_invalid",
            errors=[{"field": "_since", "problem": "not an instant with a zone"}],
        )
    return since


def fhir_router(exports: Callable[[], Exporting], member: Any, public_origin: str | None) -> APIRouter:
    """`exports` is asked per request: the app is built before (and in some tests without) a
    Temporal client, which only an export needs."""
    router = APIRouter(tags=["fhir"])

    def origin(request: Request) -> str:
        return public_origin or str(request.base_url).rstrip("/")

    async def kick_off(request: Request, actor: Actor, since: str | None, output_format: str | None) -> Response:
        if output_format is not None and output_format not in NDJSON_TYPES:
            raise Problem(
                HTTPStatus.UNPROCESSABLE_ENTITY,
                "The only output format is application/fhir+ndjson.",
                code="output_format_unsupported",
                errors=[{"field": "_outputFormat", "problem": "not ndjson"}],
            )
        base = origin(request)
        query = f"?_since={quote(since)}" if since is not None else ""
        export_id = await exports().start(
            actor, parse_since(since), f"{base}/fhir/$export{query}", f"{base}/fhir/$export-files/", "api"
        )
        return Response(
            status_code=HTTPStatus.ACCEPTED, headers={"Content-Location": f"{base}/fhir/$export-status/{export_id}"}
        )

    responses: dict[int | str, dict[str, Any]] = {202: {"description": "Accepted: poll Content-Location."},
                                                  403: PROBLEMS[403]}  # fmt: skip

    @router.post("/fhir/$export", status_code=202, responses=responses)
    async def export_post(
        request: Request, actor: member, since: Since = None, output_format: OutputFormat = None
    ) -> Response:
        """Start a bulk export of every course changed since `_since` (all without it): operations only."""
        return await kick_off(request, actor, since, output_format)

    @router.get("/fhir/$export", status_code=202, responses=responses)
    async def export_get(
        request: Request, actor: member, since: Since = None, output_format: OutputFormat = None
    ) -> Response:
        """The same kick-off as POST (the Bulk Data convention allows both)."""
        return await kick_off(request, actor, since, output_format)

    @router.get(
        "/fhir/$export-status/{export_id}",
        responses={202: {"description": "Still running: X-Progress says how far."}, 403: PROBLEMS[403],
                   404: PROBLEMS[404]},
    )  # fmt: skip
    async def export_status(export_id: str, actor: member) -> Any:
        """202 with `X-Progress` and `Retry-After` while running; 200 with the Bulk Data manifest."""
        try:
            status = await exports().status(actor, export_id)
        except ExportNotFound:
            raise Problem(HTTPStatus.NOT_FOUND, "No such export of yours.", code="export_not_found") from None
        except ExportFailed as failed:
            raise Problem(HTTPStatus.INTERNAL_SERVER_ERROR, str(failed), code="export_failed") from None
        if isinstance(status, Running):
            progress = status.progress.text() if status.progress else "waiting for a worker"
            return Response(
                status_code=HTTPStatus.ACCEPTED, headers={"X-Progress": progress, "Retry-After": str(POLL_SECONDS)}
            )
        return JSONResponse(status)

    @router.delete(
        "/fhir/$export-status/{export_id}", status_code=202, responses={403: PROBLEMS[403], 404: PROBLEMS[404]}
    )
    async def export_cancel(export_id: str, actor: member) -> Response:
        try:
            await exports().cancel(actor, export_id)
        except ExportNotFound:
            raise Problem(HTTPStatus.NOT_FOUND, "No such export of yours.", code="export_not_found") from None
        return Response(status_code=HTTPStatus.ACCEPTED)

    @router.get(
        "/fhir/$export-files/{export_id}/{file_name}",
        response_class=FileResponse,
        responses={403: PROBLEMS[403], 404: PROBLEMS[404]},
    )
    async def export_file(export_id: str, file_name: str, actor: member) -> FileResponse:
        """One NDJSON file of a completed export, as the manifest names it."""
        try:
            if not file_name.endswith(".ndjson"):
                raise ExportNotFound(export_id)
            path = await exports().file(actor, export_id, file_name.removesuffix(".ndjson"))
        except ExportNotFound:
            raise Problem(HTTPStatus.NOT_FOUND, "No such export file of yours.", code="export_not_found") from None
        return FileResponse(path, media_type="application/fhir+ndjson")

    return router
