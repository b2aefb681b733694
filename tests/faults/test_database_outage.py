"""PostgreSQL goes away mid-run: every connection is cut and new ones are refused for several
append retry intervals (APPEND_RETRY starts at 1 s), then it comes back.

What it proves: appends (and the outbox writes of reminders) fail and are retried as retryable
activity failures that say what is wrong; the worker process neither crashes nor needs a
restart (the same process carries on, its pool reconnects by itself); a clinician's step
recorded during the outage waits and is applied once afterwards; nothing is lost or doubled.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from tests.faults.audit import moved_past, position
from tests.faults.clinic import Clinic, expected_events, opening
from tests.faults.conftest import Rig
from tests.faults.harness import Database
from workflows.inputs import workflow_id

pytestmark = pytest.mark.faults

COURSES = 8
SESSIONS = 2
OUTAGE = 6.0  # seconds: the 1 s, 2 s and 4 s retries all meet a database that is not there
MAX_OUTAGE = 45.0  # the outage lasts until a retrying activity is seen, at most this long


async def test_courses_wait_out_a_database_outage_and_lose_nothing(rig: Rig) -> None:
    rng, ledger, pg_pool = rig.rng(3), rig.ledger, rig.pool
    clinic = Clinic(rig.client, ledger, rng=rig.rng(4), think=(0.0, 0.4))
    (worker,) = await rig.started("worker")
    database = Database(rig.dsn)

    mark = await position(pg_pool)
    courses = [
        asyncio.create_task(clinic.run_course(opening(f"pt-outage-{i:02d}", SESSIONS), SESSIONS))
        for i in range(COURSES)
    ]
    ledger.courses += COURSES
    try:
        assert await moved_past(pg_pool, mark + 20, within=60), "courses made no progress before the outage"
        await asyncio.sleep(rng.uniform(0.0, 1.0))
        cut = await database.refuse_connections()
        refused = time.monotonic()
        failures: list[BaseException] = []
        try:
            # Sample the retrying activities all through the outage, and hold it (bounded) until
            # one has been seen: on a loaded machine the first retry can come late.
            while (elapsed := time.monotonic() - refused) < OUTAGE or (not failures and elapsed < MAX_OUTAGE):
                streams = [workflow_id(c) for c in clinic.opened]
                failures += await _retrying_activities(rig.client.temporal, streams)
                await asyncio.sleep(0.25)
        finally:
            await database.allow_connections()
        allowed = time.monotonic()

        done, pending = await asyncio.wait(courses, timeout=180)
        assert not pending, f"{len(pending)} courses not completed within 180 s of the database's return"
        ids = [task.result() for task in done]
    finally:
        for task in courses:
            task.cancel()

    # Every step needs an append: none sent during the outage was answered before the database came
    # back, those caught in it waited (and were applied once: the audit below).
    sent_during = [answered for sent, answered in clinic.calls if refused <= sent < allowed]
    assert all(answered >= allowed for answered in sent_during), "a step was answered without PostgreSQL"
    waited = sum(sent < refused + OUTAGE / 2 and answered >= allowed for sent, answered in clinic.calls)
    assert waited > 0, "no clinician step was waiting during the outage"
    assert cut > 0, "the outage cut no connections"
    assert failures, "no append or notification was retrying during the outage"
    for failure in failures:
        assert isinstance(failure, ApplicationError) and not failure.non_retryable, failure
    assert worker.alive and len(worker.pids) == 1, "the worker crashed or was restarted"

    retried_before = ledger.appends_retried
    for course in ids:
        await rig.audit.course(course, expected_events(SESSIONS))
    retried = ledger.appends_retried - retried_before
    assert retried > 0, "no append needed a second attempt"
    ledger.database_outages += 1
    print(
        f"\ndatabase outage: {allowed - refused:.1f}s, {cut} connections cut, {waited} clinician steps waited it out "
        f"({len(sent_during)} sent during it); {retried} appends needed more than one attempt; one worker process "
        f"throughout; "
        f"last failure seen: {failures[0]}"
    )


async def _retrying_activities(client: Client, streams: list[str]) -> list[BaseException]:
    """The decoded last failure of every activity that is being retried right now."""
    found: list[BaseException] = []
    for stream in streams:
        description = await client.get_workflow_handle(stream).describe()
        for pending in description.raw_description.pending_activities:
            if pending.attempt > 1 and pending.HasField("last_failure"):
                found.append(await client.data_converter.decode_failure(pending.last_failure))
    return found
