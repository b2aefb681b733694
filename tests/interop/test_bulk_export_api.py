"""Bulk FHIR export over the API, the work done by FhirExportWorkflow on a real worker: operations
kick it off, poll the status URL, download the manifest's files (and the CLI does the same through
the API); every other role is refused, another member's export does not exist for them, a
malformed `_since` or `--since` is refused before anything starts (the CLI exits 2)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from activities.eligibility import SelfPayProvider
from activities.event_store import PostgresEventStore
from activities.notifications import ConsoleChannel, PostgresOutbox
from api.app import create_app
from api.staff import ConfiguredStaff, new_token, token_digest
from application.courses import CourseClient
from cli import export_cmd
from cli.edge import StaffApi
from cli.main import run as course
from course.commands import Actor, Role
from interop import bulk
from tests.conftest import task_queue
from tests.interop.conftest import Store, counts, seed, validated
from worker.main import activities_for, build_worker, fhir_exports
from worker.settings import Settings

BASE = "http://testserver"
COURSES = 30
STAFF = {role: Actor(id=f"{role.value.replace('_', '-')}-fhir", role=role) for role in Role}
OTHER_OPS = Actor(id="ops-other-fhir", role=Role.OPERATIONS)


@dataclass
class Api:
    http: httpx.AsyncClient
    tokens: dict[str, str]
    root: Path

    def auth(self, actor: Actor) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[actor.id]}"}

    async def as_(self, actor: Actor, method: str, url: str, **kwargs: Any) -> httpx.Response:
        headers = {**self.auth(actor), **kwargs.pop("headers", {})}
        return await self.http.request(method, url, headers=headers, **kwargs)

    async def finished(self, actor: Actor, status_url: str, within: float = 120) -> dict[str, Any]:
        """Poll the status URL (bounded) until it answers 200 with the manifest."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            answer = await self.as_(actor, "GET", status_url)
            if answer.status_code == 200:
                manifest: dict[str, Any] = answer.json()
                return manifest
            assert answer.status_code == 202, answer.text
            assert answer.headers["X-Progress"]
            await asyncio.sleep(0.2)
        raise AssertionError(f"the export was not finished within {within:.0f} s")


@pytest_asyncio.fixture(scope="module")
async def api(
    own_store: Store, dev_env: WorkflowEnvironment, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Api]:
    await seed(own_store.pool, COURSES)
    queue, pool = task_queue(), own_store.pool
    settings = Settings(fhir_export_dir=tmp_path_factory.mktemp("exports"), fhir_export_batch_courses=7)
    worker = build_worker(
        dev_env.client,
        queue,
        activities_for(
            PostgresEventStore(pool), SelfPayProvider(), PostgresOutbox(pool), ConsoleChannel(),
            exports=fhir_exports(pool, settings),
        ),
    )  # fmt: skip
    tokens = {actor.id: new_token() for actor in [*STAFF.values(), OTHER_OPS]}
    staff = ConfiguredStaff([(actor, token_digest(tokens[actor.id])) for actor in [*STAFF.values(), OTHER_OPS]])
    app = create_app(CourseClient(dev_env.client, queue), staff, pool, export_dir=settings.export_dir())
    async with worker, httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as http:
        yield Api(http, tokens, settings.export_dir())


async def test_operations_kick_off_poll_and_download_a_bulk_export(api: Api, tmp_path: Path) -> None:
    ops = STAFF[Role.OPERATIONS]
    kicked = await api.as_(ops, "POST", "/fhir/$export", headers={"Prefer": "respond-async"})
    assert kicked.status_code == 202, kicked.text
    status_url = kicked.headers["Content-Location"]
    assert status_url.startswith(f"{BASE}/fhir/$export-status/")
    manifest = await api.finished(ops, status_url)

    assert manifest["request"] == f"{BASE}/fhir/$export" and manifest["requiresAccessToken"] is True
    for entry in manifest["output"]:
        answer = await api.as_(ops, "GET", entry["url"])
        assert answer.status_code == 200 and answer.headers["content-type"] == "application/fhir+ndjson"
        (tmp_path / f"{entry['type']}.ndjson").write_bytes(answer.content)
    found = validated(tmp_path)
    assert len(found["CarePlan"]) == len(found["Patient"]) == COURSES
    assert "RelatedPerson" not in found, "operations read no support person"
    assert {e["type"]: e["count"] for e in manifest["output"]} == dict(counts(found))

    # The export is its requester's: another operations member is told it does not exist.
    assert (await api.as_(OTHER_OPS, "GET", status_url)).status_code == 404
    assert (await api.as_(OTHER_OPS, "GET", manifest["output"][0]["url"])).status_code == 404


async def test_a_deleted_export_is_gone_with_its_files(api: Api) -> None:
    """DELETE on the status URL: whether it was still running (cancelled, files discarded by the
    workflow) or already finished (files deleted), the status URL then answers 404."""
    ops = STAFF[Role.OPERATIONS]
    status_url = (await api.as_(ops, "POST", "/fhir/$export")).headers["Content-Location"]
    export_id, exports = status_url.rsplit("/", 1)[1], api.root
    assert (await api.as_(ops, "DELETE", status_url)).status_code == 202
    deadline = time.monotonic() + 60
    while (answer := await api.as_(ops, "GET", status_url)).status_code != 404:
        assert time.monotonic() < deadline, f"still {answer.status_code} after 60 s"
        await asyncio.sleep(0.2)
    # Cancelled only once its discard ran (workflows/fhir_export.py); deleted at once if finished.
    assert not bulk.partial_dir(exports, export_id).exists()
    assert not bulk.final_dir(exports, export_id).exists()


async def test_the_cli_exports_through_the_api_into_a_folder(api: Api, tmp_path: Path) -> None:
    ops = STAFF[Role.OPERATIONS]
    staff_api = StaffApi(httpx.AsyncClient(transport=api.http._transport, base_url=BASE, headers=api.auth(ops)), BASE)
    status_url = await staff_api.start_bulk_export(None)
    manifest: dict[str, Any] | None = None
    deadline = time.monotonic() + 120
    while manifest is None and time.monotonic() < deadline:
        manifest, _ = await staff_api.bulk_export_status(status_url)
        await asyncio.sleep(0.2)
    assert manifest is not None
    await export_cmd.save(staff_api, manifest, tmp_path / "out")
    found = validated(tmp_path / "out")
    assert len(found["CarePlan"]) == COURSES
    saved = (tmp_path / "out" / "manifest.json").read_text()
    assert (tmp_path / "out" / "Patient.ndjson").resolve().as_uri() in saved


@pytest.mark.parametrize("role", [Role.PRESCRIBER, Role.THERAPIST, Role.NURSE, Role.CLINIC_ADMIN])
async def test_only_operations_export_in_bulk(api: Api, role: Role) -> None:
    for method in ("POST", "GET"):
        refused = await api.as_(STAFF[role], method, "/fhir/$export")
        assert refused.status_code == 403, refused.text
        assert refused.json()["code"] == "bulk_export_operations_only"
    kicked = await api.as_(STAFF[Role.OPERATIONS], "POST", "/fhir/$export")
    peek = await api.as_(STAFF[role], "GET", kicked.headers["Content-Location"])
    assert peek.status_code == 403, "nor read an export's status"


async def test_a_malformed_since_is_refused_before_anything_starts(api: Api) -> None:
    for since in ("yesterday", "2026-11-30T00:00:00", "2026-13-01T00:00:00Z", "0001-01-01T00:00:00+14:00"):
        refused = await api.as_(STAFF[Role.OPERATIONS], "POST", "/fhir/$export", params={"_since": since})
        assert refused.status_code == 422, since
        assert refused.json()["code"] == "since_invalid"


@pytest.mark.parametrize("since", ["yesterday", "2026-11-30", "2026-11-30T00:00:00", "7 days", "-3d"])
def test_the_cli_refuses_a_malformed_since_with_exit_2(
    since: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert course(["export", "--fhir", f"--since={since}", "--out", str(tmp_path)]) == 2
    assert "--since" in capsys.readouterr().err
    assert not any(tmp_path.iterdir()), "nothing written"
