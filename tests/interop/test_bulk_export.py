"""Bulk FHIR export, the streaming core (interop/bulk.py) through the worker's own activities: 200
whole courses exported in batches, every line valid R4B, each resource exactly once, each course a
recorded read; a batch cut off mid-write and run again leaves the very same files; `_since`
chooses courses by their streams."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest_asyncio
from temporalio.testing import ActivityEnvironment

from activities.fhir_export import FhirExportActivities
from course.commands import Actor, Role
from interop import bulk
from tests.interop.conftest import Store, counts, seed, validated
from worker.main import fhir_exports
from worker.settings import Settings

COURSES = 200
PATIENTS = 150  # fifty patients have a second course: one Patient each, all the same
OPS = Actor(id="ops-bulk", role=Role.OPERATIONS)


@pytest_asyncio.fixture(scope="module")
async def courses(own_store: Store) -> AsyncIterator[list[str]]:
    yield await seed(own_store.pool, COURSES, PATIENTS)


def activities(store: Store, root: Path, batch: int) -> FhirExportActivities:
    return fhir_exports(store.pool, Settings(fhir_export_dir=root, fhir_export_batch_courses=batch))


def request(export_id: str, since: datetime | None = None, staff: str = OPS.id) -> bulk.BulkExportRequest:
    return bulk.BulkExportRequest(
        export_id=export_id,
        since=since,
        requested_by=Actor(id=staff, role=Role.OPERATIONS),
        request_url="https://clinic.example/fhir/$export",
        files_url=f"https://clinic.example/fhir/$export-files/{export_id}/",
    )


async def batch(made: FhirExportActivities, ask: bulk.BulkExportRequest, plan: bulk.ExportPlan,
                checkpoint: bulk.Checkpoint) -> bulk.Checkpoint:  # fmt: skip
    return await ActivityEnvironment().run(
        made.export_fhir_batch, bulk.ExportBatch(request=ask, plan=plan, checkpoint=checkpoint)
    )


async def export(made: FhirExportActivities, ask: bulk.BulkExportRequest) -> tuple[dict[str, Any], int]:
    """Straight through, as the workflow runs it: the manifest, and how many batches it took."""
    plan = await made.plan_fhir_export(ask)
    checkpoint, batches = bulk.Checkpoint(), 0
    while not checkpoint.done:
        checkpoint = await batch(made, ask, plan, checkpoint)
        batches += 1
    manifest = await made.finish_fhir_export(bulk.ExportBatch(request=ask, plan=plan, checkpoint=checkpoint))
    return manifest, batches


async def test_two_hundred_courses_export_as_valid_ndjson_each_resource_once(
    own_store: Store, courses: list[str], tmp_path: Path
) -> None:
    made = activities(own_store, tmp_path, batch=30)
    export_id = "a" * 32
    manifest, batches = await export(made, request(export_id))

    assert not (tmp_path / f"{export_id}.partial").exists(), "published by one rename"
    found = validated(tmp_path / export_id)
    assert batches == 7, "200 courses in batches of 30: six full, then one of 20 that finds the end"
    for kind, lines in found.items():
        ids = [line["id"] for line in lines]
        assert len(ids) == len(set(ids)), f"{kind}: a resource written twice"
    assert len(found["Patient"]) == PATIENTS, "a patient's courses share their Patient"
    assert len(found["CarePlan"]) == COURSES
    doses = await own_store.pool.fetchval("SELECT count(*) FROM events WHERE type = 'DosingSessionCompleted'")
    given = [m for m in found["MedicationAdministration"] if m["status"] == "completed"]
    assert len(given) == doses == COURSES * 6, "one MedicationAdministration per administered dose"
    staff = await own_store.pool.fetchval("SELECT count(DISTINCT metadata->'actor'->>'id') FROM events")
    assert 0 < len(found["Practitioner"]) <= staff, "each staff member once, not once per course"
    assert "RelatedPerson" not in found, "an operations export holds no support person"
    listed = {entry["type"]: entry["count"] for entry in manifest["output"]}
    assert listed == dict(counts(found)), "the manifest counts every line of every file"
    assert all(entry["url"].endswith(f"{export_id}/{entry['type']}.ndjson") for entry in manifest["output"])
    assert manifest["requiresAccessToken"] is True and manifest["error"] == []
    reads = await own_store.pool.fetch(
        "SELECT course_id::text AS course, role, what, channel FROM access_log WHERE staff_id = $1", OPS.id
    )
    assert sorted(r["course"] for r in reads) == sorted(courses), "each course exported is one recorded read"
    assert {(r["role"], r["what"], r["channel"]) for r in reads} == {("operations", "export", "api")}


async def test_a_batch_cut_off_mid_write_and_run_again_leaves_the_same_files(
    own_store: Store, courses: list[str], tmp_path: Path
) -> None:
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    await export(activities(own_store, straight, batch=40), request("b" * 32, staff="ops-straight"))

    made = activities(own_store, resumed, batch=40)
    ask = request("c" * 32, staff="ops-resumed")
    plan = await made.plan_fhir_export(ask)
    first = await batch(made, ask, plan, bulk.Checkpoint())
    second = await batch(made, ask, plan, first)
    # The worker dies inside the third batch: half a line in one file, a file the checkpoint never saw.
    folder = bulk.partial_dir(resumed, ask.export_id)
    with (folder / "Patient.ndjson").open("ab") as torn:
        torn.write(b'{"resourceType": "Patient", "id": "pati')
    (folder / "Basic.ndjson").write_bytes(b'{"resourceType": "Basic"}\n')
    # ... and its retry runs the third batch from the second's checkpoint, then the export goes on.
    checkpoint = second
    while not checkpoint.done:
        checkpoint = await batch(made, ask, plan, checkpoint)
    await made.finish_fhir_export(bulk.ExportBatch(request=ask, plan=plan, checkpoint=checkpoint))

    names = sorted(p.name for p in (straight / ("b" * 32)).glob("*.ndjson"))
    assert names == sorted(p.name for p in (resumed / ("c" * 32)).glob("*.ndjson"))
    for name in names:
        assert (resumed / ("c" * 32) / name).read_bytes() == (straight / ("b" * 32) / name).read_bytes(), name
    validated(resumed / ("c" * 32))


async def test_since_exports_only_the_courses_whose_streams_changed_after_it(
    own_store: Store, courses: list[str], tmp_path: Path
) -> None:
    await asyncio.sleep(0.01)  # recorded_at is the database's clock: a moment strictly after the 200
    since = await own_store.pool.fetchval("SELECT now()")
    later = await seed(own_store.pool, 5)
    manifest, _ = await export(activities(own_store, tmp_path, batch=100), request("d" * 32, since=since))
    found = validated(tmp_path / ("d" * 32))
    assert len(found["CarePlan"]) == len(later) == 5
    reads = await own_store.pool.fetch(
        "SELECT course_id::text AS course FROM access_log WHERE staff_id = $1 AND read_at >= $2", OPS.id, since
    )
    assert sorted(r["course"] for r in reads) == sorted(later)
    assert datetime.fromisoformat(manifest["transactionTime"]) <= datetime.now(UTC)
