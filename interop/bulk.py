"""Bulk FHIR export in the FHIR Bulk Data convention: every course whose stream changed since a time,
as NDJSON (one file per resource type) plus a manifest.

The export is a snapshot: `plan` fixes the event store's head (`upto_position`, and the
`transactionTime` of the manifest) and which events count as changes (after `since_position`).
Every batch reads only events at or before the head, so a course that changes while the export
runs is exported as it was at the snapshot, and two runs of a batch write the same lines.

Bounded memory: courses are taken `batch_size` at a time by keyset on `stream_id` (never an
OFFSET, never the whole list), each batch's streams are read, built, written and dropped.

Resumable, exactly once: a `Checkpoint` is the last stream exported and each file's line count
and byte length after it. A batch starts by cutting every file back to the checkpoint's length,
so the lines an interrupted attempt wrote after it (a worker killed mid-batch) are removed and
written again, once. Files are fsynced before a checkpoint is returned: a checkpoint never names
bytes the disk may not hold. The export's directory is `<id>.partial` until `finish` writes the
manifest and renames it to `<id>` in one step.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Literal, Protocol

import asyncpg
from pydantic import BaseModel, ConfigDict

from course.commands import Actor
from course.events import CourseOpened, EventEnvelope

NDJSON = ".ndjson"
MANIFEST = "manifest.json"
ERRORS = "OperationOutcome"  # the Bulk Data `error` files: one OperationOutcome per course not exported
# A resource type as FHIR spells it: the only file names an export writes (and the API serves).
RESOURCE_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
EXPORT_ID = re.compile(r"^[0-9a-f]{32}$")
# Resources that courses share by the identifier of a staff member, a payer or this service
# (interop/steps.py shared_id): written once per export. A patient's Patient: see _OWNERS.
SHARED = frozenset({"Practitioner", "Organization", "Device"})


class Resource(Protocol):
    """What the export needs of a fhir.resources model: its type, id and JSON."""

    id: str | None

    def get_resource_type(self) -> str: ...
    def model_dump_json(self, **kwargs: Any) -> str: ...


# course id, its events up to the snapshot -> its resources (interop.fhir_course.course_resources)
Build = Callable[[str, list[EventEnvelope]], Sequence[Resource]]
# Decide the batch's reads and record the allowed ones before a line is written (the rule of
# application/reads.py); returns the refused courses' streams with the rule's code.
Admit = Callable[[dict[str, list[EventEnvelope]]], Awaitable[dict[str, str]]]


class ExportPlan(BaseModel):
    """The snapshot an export covers. Positions and counts only: no patient data."""

    model_config = ConfigDict(frozen=True)

    export_id: str
    since: datetime | None
    since_position: int  # events after this position are changes
    upto_position: int  # the snapshot's head: events after it are left to the next export
    transaction_time: datetime
    courses: int


class FilePart(BaseModel):
    model_config = ConfigDict(frozen=True)

    lines: int = 0
    bytes: int = 0


class Checkpoint(BaseModel):
    """How far an export got: the last stream written (an opaque `course-<uuid>`), and each file's
    lines and bytes at that point. Everything after it is written again by the next batch."""

    model_config = ConfigDict(frozen=True)

    after_stream: str | None = None
    courses: int = 0
    files: dict[str, FilePart] = {}
    done: bool = False
    # Ids of the staff, payer and device resources already written: every course refers to them,
    # each is written once. As many as the clinic has staff and payers (never patients: see _owners).
    shared: list[str] = []


class BulkExportRequest(BaseModel):
    """A kick-off: who asked (an operations member: the reads are theirs), what, and where the
    manifest will point. `plan` and `checkpoint` are set when the workflow continues as new."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    export_id: str
    since: datetime | None = None
    requested_by: Actor
    channel: Literal["api", "console", "cli"] = "api"
    request_url: str
    files_url: str  # the manifest's file URLs are this followed by `<Type>.ndjson`
    plan: ExportPlan | None = None
    checkpoint: Checkpoint = Checkpoint()


class ExportBatch(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    request: BulkExportRequest
    plan: ExportPlan
    checkpoint: Checkpoint


class ExportProgress(BaseModel):
    """What the status URL and the Temporal UI show: counts, never a course's content."""

    model_config = ConfigDict(frozen=True)

    state: Literal["planning", "exporting", "finishing", "complete"]
    courses_done: int = 0
    courses_total: int | None = None
    requested_by: str

    def text(self) -> str:
        if self.courses_total is None:
            return self.state
        return f"{self.state}: {self.courses_done} of {self.courses_total} courses"


_HEAD = "SELECT coalesce(max(global_position), 0) AS upto, now() AS at FROM events"
# The first event recorded at or after `since`, less one. recorded_at and global_position can
# disagree by a few in-flight transactions, so this errs towards including a course, never leaving one out.
_SINCE = """
SELECT coalesce(min(global_position) - 1, $2) FROM events WHERE recorded_at >= $1 AND global_position <= $2
"""
_COUNT = "SELECT count(DISTINCT stream_id) FROM events WHERE global_position > $1 AND global_position <= $2"
_NEXT_STREAMS = """
SELECT DISTINCT stream_id FROM events
WHERE global_position > $1 AND global_position <= $2 AND ($3::text IS NULL OR stream_id > $3)
ORDER BY stream_id LIMIT $4
"""
# Which course writes each patient's Patient: the first (by stream id) of that patient's courses in
# the export. A patient's courses share one Patient resource, and this asks the database instead of
# remembering every patient seen (memory and checkpoints stay as small as a batch).
_OWNERS = """
SELECT s.patient_id, min(s.stream_id) AS owner FROM course_summaries s
WHERE s.patient_id = ANY($1::text[]) AND EXISTS (
    SELECT 1 FROM events e WHERE e.stream_id = s.stream_id AND e.global_position > $2 AND e.global_position <= $3
)
GROUP BY s.patient_id
"""
_STREAMS = """
SELECT event_id, stream_id, version, type, data, metadata, occurred_at FROM events
WHERE stream_id = ANY($1::text[]) AND global_position <= $2 ORDER BY stream_id, version
"""


async def plan(pool: asyncpg.Pool, export_id: str, since: datetime | None) -> ExportPlan:
    """Fix the snapshot: the store's head now, and the first position that counts as a change."""
    head = await pool.fetchrow(_HEAD)
    assert head is not None  # an aggregate without GROUP BY returns one row
    upto: int = head["upto"]
    since_position: int = 0 if since is None else await pool.fetchval(_SINCE, since, upto)
    courses: int = await pool.fetchval(_COUNT, since_position, upto)
    return ExportPlan(
        export_id=export_id,
        since=since,
        since_position=since_position,
        upto_position=upto,
        transaction_time=head["at"],
        courses=courses,
    )


def partial_dir(root: Path, export_id: str) -> Path:
    return root / f"{export_id}.partial"


def final_dir(root: Path, export_id: str) -> Path:
    return root / export_id


async def export_batch(
    pool: asyncpg.Pool,
    root: Path,
    export: ExportPlan,
    checkpoint: Checkpoint,
    *,
    build: Build,
    admit: Admit,
    batch_size: int = 100,
    beat: Callable[[], None] = lambda: None,
) -> Checkpoint:
    """Export the next `batch_size` courses after the checkpoint; the new checkpoint (done when
    none were left). Safe to run again from the same checkpoint: it writes the same lines once."""
    folder = partial_dir(root, export.export_id)
    folder.mkdir(parents=True, exist_ok=True)
    _cut_back(folder, checkpoint)
    rows = await pool.fetch(
        _NEXT_STREAMS, export.since_position, export.upto_position, checkpoint.after_stream, batch_size
    )
    streams = [r["stream_id"] for r in rows]
    if not streams:
        return checkpoint.model_copy(update={"done": True})
    records = await pool.fetch(_STREAMS, streams, export.upto_position)
    by_stream: dict[str, list[EventEnvelope]] = {s: [] for s in streams}
    for record in records:
        by_stream[record["stream_id"]].append(EventEnvelope.from_row(**dict(record)))
    del records
    refused = await admit(by_stream)
    owners = await _owners(pool, export, by_stream)
    files, shared = dict(checkpoint.files), set(checkpoint.shared)
    handles: dict[str, IO[bytes]] = {}
    try:
        for stream in streams:
            events = by_stream.pop(stream)
            if stream in refused:
                written = [(ERRORS, _line(json.dumps(_outcome(course_id(stream), "forbidden", refused[stream]))))]
            else:
                # Building validates every resource (pydantic): CPU for tens of milliseconds, in a
                # thread so the worker's event loop (other courses' workflow tasks) keeps running.
                written = await asyncio.to_thread(_lines, stream, events, build, owners.get(stream, True), shared)
            for kind, line in written:
                handle = handles.get(kind)
                if handle is None:
                    handle = handles[kind] = (folder / f"{kind}{NDJSON}").open("ab")
                handle.write(line)
                part = files.get(kind, FilePart())
                files[kind] = FilePart(lines=part.lines + 1, bytes=part.bytes + len(line))
            beat()
        for handle in handles.values():
            handle.flush()
            os.fsync(handle.fileno())
    finally:
        for handle in handles.values():
            handle.close()
    return Checkpoint(
        after_stream=streams[-1],
        courses=checkpoint.courses + len(streams),
        files=files,
        done=len(streams) < batch_size,
        shared=sorted(shared),
    )


async def _owners(pool: asyncpg.Pool, export: ExportPlan, streams: dict[str, list[EventEnvelope]]) -> dict[str, bool]:
    """For each stream of the batch: whether it is the one to write its patient's Patient."""
    patients = {stream: e.event.patient_id for stream, events in streams.items() for e in events[:1]
                if isinstance(e.event, CourseOpened)}  # fmt: skip
    rows = await pool.fetch(_OWNERS, sorted(set(patients.values())), export.since_position, export.upto_position)
    first = {r["patient_id"]: r["owner"] for r in rows}
    # No summary row (a stream whose summary could not be computed): the course writes its own.
    return {stream: first.get(patient, stream) == stream for stream, patient in patients.items()}


def course_id(stream_id: str) -> str:
    return stream_id.removeprefix("course-")


def _lines(
    stream: str, events: list[EventEnvelope], build: Build, owns_patient: bool, shared: set[str]
) -> list[tuple[str, bytes]]:
    """One course's NDJSON lines by resource type, the resources courses share left to the course
    that writes them first (`shared` gains what this one writes). A course that cannot be built
    becomes one OperationOutcome naming the course and the kind of failure, never stored values."""
    try:
        resources = build(course_id(stream), events)
    except Exception as error:  # noqa: BLE001 - one unreadable course must not stop the clinic's export
        return [(ERRORS, _line(json.dumps(_outcome(course_id(stream), "processing", type(error).__name__))))]
    lines: list[tuple[str, bytes]] = []
    for resource in resources:
        kind = resource.get_resource_type()
        if kind == "Patient" and not owns_patient:
            continue
        if kind in SHARED:
            identity = f"{kind}/{resource.id}"
            if identity in shared:
                continue
            shared.add(identity)
        lines.append((kind, _line(resource.model_dump_json(exclude_none=True))))
    return lines


def _line(text: str) -> bytes:
    return text.replace("\n", " ").encode() + b"\n"  # one resource per line, whatever the serializer did


def _outcome(course: str, code: str, why: str) -> dict[str, Any]:
    """Codes and the opaque course id only: a stored value in an error file would leak past the rules."""
    return {
        "resourceType": "OperationOutcome",
        "id": f"export-error-{course}",
        "issue": [{"severity": "error", "code": code, "diagnostics": f"course {course} was not exported: {why}"}],
    }


def _cut_back(folder: Path, checkpoint: Checkpoint) -> None:
    """Every file back to the checkpoint's length; a file it does not name was begun after it."""
    for path in folder.glob(f"*{NDJSON}"):
        kept = checkpoint.files.get(path.name.removesuffix(NDJSON))
        if kept is None:
            path.unlink()
        elif path.stat().st_size != kept.bytes:
            os.truncate(path, kept.bytes)
    for kind, part in checkpoint.files.items():
        path = folder / f"{kind}{NDJSON}"
        if not path.exists() or path.stat().st_size < part.bytes:
            # The checkpoint says more was written than the disk holds: not this design's failure
            # mode (files are fsynced first), so refuse rather than export a file with lines missing.
            raise ExportDamaged(f"{kind}{NDJSON} is shorter than its checkpoint")


class ExportDamaged(Exception):
    """The export's files no longer match their checkpoint: the export must start again."""


def manifest(export: ExportPlan, checkpoint: Checkpoint, request_url: str, files_url: str) -> dict[str, Any]:
    """The Bulk Data manifest: output files by type, with their line counts; errors likewise."""

    def entry(kind: str) -> dict[str, Any]:
        return {"type": kind, "url": f"{files_url}{kind}{NDJSON}", "count": checkpoint.files[kind].lines}

    kinds = sorted(k for k, part in checkpoint.files.items() if part.lines)
    return {
        "transactionTime": export.transaction_time.isoformat(),
        "request": request_url,
        "requiresAccessToken": True,
        "output": [entry(k) for k in kinds if k != ERRORS],
        "error": [entry(k) for k in kinds if k == ERRORS],
    }


def finish(root: Path, export: ExportPlan, checkpoint: Checkpoint, request_url: str, files_url: str) -> dict[str, Any]:
    """Write the manifest and publish the folder under its final name (one rename). Run again
    after it succeeded, it returns the published manifest."""
    folder, published = partial_dir(root, export.export_id), final_dir(root, export.export_id)
    if published.exists() and not folder.exists():
        loaded: dict[str, Any] = json.loads((published / MANIFEST).read_text())
        return loaded
    folder.mkdir(parents=True, exist_ok=True)
    _cut_back(folder, checkpoint)
    body = manifest(export, checkpoint, request_url, files_url)
    written = folder / f"{MANIFEST}.tmp"
    with written.open("w") as handle:
        json.dump(body, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())
    written.replace(folder / MANIFEST)
    folder.replace(published)
    descriptor = os.open(root, os.O_RDONLY)
    try:
        os.fsync(descriptor)  # the rename itself survives a power cut
    finally:
        os.close(descriptor)
    return body


def discard(root: Path, export_id: str, *, published: bool = False) -> None:
    """Remove an export's unpublished files (a cancelled export), or with `published` its
    published ones too (a finished export its requester deleted)."""
    if EXPORT_ID.fullmatch(export_id):
        shutil.rmtree(partial_dir(root, export_id), ignore_errors=True)
        if published:
            shutil.rmtree(final_dir(root, export_id), ignore_errors=True)
