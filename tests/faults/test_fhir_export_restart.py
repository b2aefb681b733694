"""The worker dies in the middle of a bulk FHIR export: SIGKILL while it writes, a new worker
process later. The export finishes by itself, and its files are byte for byte those of an export
that never met a crash: no line missing, none written twice, every line valid R4B.

The 200 courses are seeded as event streams (tests/interop/conftest.py: the real decider's
streams appended through PostgresEventStore) in a database of the test's own, so the export holds
exactly them; the worker is the real `course worker` process (tests/faults/harness.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.client import WorkflowHandle

from application.exports import Exporting
from course.commands import Actor, Role
from interop import bulk
from tests.faults.conftest import Rig
from tests.faults.harness import WorkerProcess
from tests.interop.conftest import Store, fresh_store, seed, validated
from tests.interop.test_bulk_export import export
from worker.main import fhir_exports
from worker.settings import Settings
from workflows.fhir_export import FhirExportWorkflow, export_workflow_id

pytestmark = pytest.mark.faults


@pytest_asyncio.fixture
async def own_store() -> AsyncIterator[Store]:
    async with fresh_store() as store:
        yield store


COURSES = 200
BATCH = 10  # twenty batches: the kill lands inside the export, most likely inside a batch
OPS = Actor(id="ops-restart", role=Role.OPERATIONS)


async def mid_batch(handle: WorkflowHandle[FhirExportWorkflow, dict], folder: Path, courses: int,  # type: ignore[type-arg]
                    within: float) -> int:  # fmt: skip
    """Poll (bounded) until the export has checkpointed at least `courses` and a later batch is
    writing: its files grow while the progress stands still. The progress then."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        progress = await handle.query(FhirExportWorkflow.progress)
        if progress is not None and courses <= progress.courses_done < COURSES:
            written = _bytes(folder)
            await asyncio.sleep(0.02)
            again = await handle.query(FhirExportWorkflow.progress)
            if again is not None and again.courses_done == progress.courses_done and _bytes(folder) > written:
                return progress.courses_done
        await asyncio.sleep(0.02)
    raise AssertionError(f"never caught a batch writing after {courses} courses within {within:.0f} s")


def _bytes(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.glob("*.ndjson"))


async def batch_attempts(handle: WorkflowHandle[FhirExportWorkflow, dict]) -> int:  # type: ignore[type-arg]
    """The most attempts any batch took (a started event's attempt)."""
    most = 0
    async for event in handle.fetch_history_events():
        if event.HasField("activity_task_started_event_attributes"):
            most = max(most, event.activity_task_started_event_attributes.attempt)
    return most


async def test_a_worker_killed_mid_export_leaves_an_export_with_every_line_once(
    rig: Rig, own_store: Store, tmp_path: Path
) -> None:
    await seed(own_store.pool, COURSES)
    root = tmp_path / "exports"
    worker = WorkerProcess(rig.address, rig.queue, own_store.dsn, rig.log_dir, name="exporting-worker")
    worker.env |= {"FHIR_EXPORT_DIR": str(root), "FHIR_EXPORT_BATCH_COURSES": str(BATCH)}
    rig.made.append(worker)
    worker.start()
    await worker.ready(rig.client.temporal)

    exporting = Exporting(rig.client.temporal, rig.queue, root)
    export_id = await exporting.start(
        OPS, None, "https://clinic.example/fhir/$export", "https://clinic.example/f/", "api"
    )
    handle = rig.client.temporal.get_workflow_handle_for(FhirExportWorkflow.run, export_workflow_id(export_id))
    await mid_batch(handle, bulk.partial_dir(root, export_id), 4 * BATCH, within=120)
    worker.kill()
    assert not bulk.final_dir(root, export_id).exists(), "killed in the middle of the export"

    worker.start()
    await worker.ready(rig.client.temporal)
    manifest = await asyncio.wait_for(handle.result(), timeout=240)
    assert await batch_attempts(handle) >= 2, "the batch the kill cut off ran again"

    published = bulk.final_dir(root, export_id)
    found = validated(published)
    assert len(found["CarePlan"]) == COURSES
    for kind, lines in found.items():
        ids = [line["id"] for line in lines]
        assert len(ids) == len(set(ids)), f"{kind}: a resource written twice"
    assert {e["type"]: e["count"] for e in manifest["output"]} == {k: len(v) for k, v in found.items()}

    # The same snapshot exported in one go, in this process: the very same bytes.
    reference = tmp_path / "reference"
    await export(
        fhir_exports(own_store.pool, Settings(fhir_export_dir=reference, fhir_export_batch_courses=BATCH)),
        bulk.BulkExportRequest(
            export_id="e" * 32, requested_by=OPS, request_url="https://x/", files_url="https://x/e/"
        ),
    )
    names = sorted(p.name for p in published.glob("*.ndjson"))
    assert names == sorted(p.name for p in (reference / ("e" * 32)).glob("*.ndjson"))
    for name in names:
        assert (published / name).read_bytes() == (reference / ("e" * 32) / name).read_bytes(), name
