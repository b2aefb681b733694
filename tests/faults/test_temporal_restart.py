"""The Temporal server restarts mid-run (SIGTERM, then started again on the same port and the
same SQLite file, exactly as `course dev` runs it).

What it proves: the worker processes ride through the restart and reconnect by themselves (the
same processes, no restart of theirs); courses continue where they were and complete; a step
whose call failed while the server was down, retried by the clinician's tool with the same
request id, is applied once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from application.courses import CourseClient
from tests.faults.audit import Audit, moved_past, position
from tests.faults.clinic import Clinic, expected_events, opening
from tests.faults.conftest import Rig
from tests.faults.harness import DevServer

pytestmark = pytest.mark.faults

COURSES = 10
SESSIONS = 2
DOWN = 2.0  # seconds between the old server's exit and the new one's start


@pytest_asyncio.fixture
async def server(tmp_path: Path) -> AsyncIterator[DevServer]:
    server = DevServer(tmp_path / "temporal")
    await server.start()
    try:
        yield server
    finally:
        server.close()


async def test_courses_continue_across_a_temporal_server_restart(server: DevServer, rig: Rig) -> None:
    rng, ledger, pg_pool = rig.rng(5), rig.ledger, rig.pool
    client = CourseClient(await server.connect(), rig.queue)
    clinic = Clinic(client, ledger, rng=rig.rng(6), think=(0.0, 0.5), retry_transient=True)
    pair = [rig.worker(f"worker-{n}", address=server.address) for n in (1, 2)]
    for worker in pair:
        worker.start()
    for worker in pair:
        await worker.ready(client.temporal)

    mark = await position(pg_pool)
    courses = [
        asyncio.create_task(clinic.run_course(opening(f"pt-restart-{i:02d}", SESSIONS), SESSIONS))
        for i in range(COURSES)
    ]
    ledger.courses += COURSES
    try:
        assert await moved_past(pg_pool, mark + 30, within=60), "courses made no progress before the restart"
        await asyncio.sleep(rng.uniform(0.0, 1.0))
        stopped_at = time.monotonic()
        assert await server.stop() is not None
        await asyncio.sleep(DOWN)
        waiting = clinic.in_flight  # clinician steps stuck while no server answers
        await server.start()
        restart = time.monotonic() - stopped_at
        before = await position(pg_pool)

        done, pending = await asyncio.wait(courses, timeout=240)
        assert not pending, f"{len(pending)} courses not completed within 240 s of the restart"
        ids = [task.result() for task in done]
    finally:
        for task in courses:
            task.cancel()
    for worker in pair:
        assert worker.alive and len(worker.pids) == 1, f"{worker.name} died with the server:\n{worker.log_path}"
    assert await position(pg_pool) > before, "nothing was stored after the restart"
    assert waiting > 0, "no clinician step was waiting on the server while it was down"

    audit = Audit(client, pg_pool, ledger)
    for course in ids:
        await audit.course(course, expected_events(SESSIONS))
    ledger.server_restarts += 1
    print(
        f"\ntemporal restart: server down {restart:.1f}s with {waiting} clinician steps waiting; "
        f"both workers reconnected (same pids); {COURSES} courses completed; "
        f"retries with the same request id: {dict(ledger.retries) or 'none'}"
    )
