"""Five years of maintenance, one cycle every 30 days, across several continue-as-new runs.

Real dev server told to suggest continue-as-new early; real PostgreSQL; a policy whose "day" is
10 ms so five clinical years take well under a minute.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from activities.eligibility import SelfPayProvider
from activities.event_store import PostgresEventStore
from activities.notifications import MemoryChannel, PostgresOutbox
from application.courses import CourseClient
from course.policy import CoursePolicy
from course.state import fold
from tests import story
from tests.conftest import task_queue
from worker.binaries import temporal_cli
from worker.converter import data_converter
from worker.dev import server_args
from worker.main import activities_for, build_worker
from workflows import search_attributes
from workflows.inputs import workflow_id

pytestmark = pytest.mark.integration

SUGGEST_AFTER = 150  # history events: the server suggests continue-as-new past this
RUN_BOUND = 400  # what each run must stay under (suggestion + the handlers still finishing)
CYCLES = 60  # 5 years at one maintenance session every 30 days


@pytest_asyncio.fixture
async def early_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        data_converter=data_converter(),
        dev_server_existing_path=temporal_cli(),
        search_attributes=search_attributes.ALL,
        dev_server_extra_args=[
            *server_args(),
            "--dynamic-config-value",
            f"limit.historyCount.suggestContinueAsNew={SUGGEST_AFTER}",
        ],
    )
    async with env:
        yield env


async def test_five_years_of_maintenance_continue_as_new_and_lose_nothing(
    early_env: WorkflowEnvironment, pg_pool: asyncpg.Pool
) -> None:
    channel, queue = MemoryChannel(), task_queue()
    store = PostgresEventStore(pg_pool)
    worker = build_worker(
        early_env.client, queue, activities_for(store, SelfPayProvider(), PostgresOutbox(pg_pool), channel)
    )
    policy = CoursePolicy(
        day_length=timedelta(milliseconds=10),
        maintenance_reminder_lead=timedelta(milliseconds=100),
        maintenance_grace=timedelta(seconds=30),
    )
    async with worker:
        client = CourseClient(early_env.client, queue)
        course = str(await client.open(story.opening(policy=policy).model_copy(update={"planned_sessions": 1})))
        await client.record(course, story.assessment(), story.PRESCRIBER)
        for actor, command in story.preparation(datetime.now(UTC), planned_sessions=1):
            await client.record(course, command, actor)  # type: ignore[arg-type]
        await client.record(course, story.check_in(1), story.NURSE)
        await client.record(course, story.dose(1), story.NURSE)
        await client.record(course, story.integration(datetime.now(UTC)), story.THERAPIST)
        await client.record(course, story.maintenance_plan(interval_days=30), story.PRESCRIBER)

        for cycle in range(1, CYCLES + 1):
            await _reminders(channel, cycle)
            session = story.maintenance_session(datetime.now(UTC))
            await client.record(course, session, story.NURSE, request_id=f"maint-{course}-{cycle}")
            if cycle % 10 == 0:  # a clinician's tool retries; possibly into the next run
                await client.record(course, session, story.NURSE, request_id=f"maint-{course}-{cycle}")
        await _reminders(channel, CYCLES + 1)
        await client.record(course, story.maintenance_plan(kind="none", interval_days=None), story.PRESCRIBER)
        state = await client.state(course)

        runs = [w async for w in early_env.client.list_workflows(f"WorkflowId = '{workflow_id(course)}'")]
        lengths = [
            len((await early_env.client.get_workflow_handle(w.id, run_id=w.run_id).fetch_history()).events)
            for w in runs
        ]

    assert state.outcome == "completed"
    assert len(runs) >= 3, f"only {len(runs)} run(s): continue-as-new did not happen"
    assert max(lengths) < RUN_BOUND, lengths
    events = await store.read(workflow_id(course))
    types = [e.type for e in events]
    assert [e.version for e in events] == list(range(1, len(events) + 1))
    assert types.count("MaintenanceSessionRecorded") == CYCLES
    reminders = [e.event for e in events if e.type == "ReminderSent"]
    assert len(reminders) == CYCLES + 1
    assert len({r.key for r in reminders}) == len(reminders)  # type: ignore[union-attr]
    assert [n.purpose for n in channel.sent].count("maintenance_due") == CYCLES + 1
    assert len({n.idempotency_key for n in channel.sent}) == len(channel.sent)
    assert "MaintenanceOverdue" not in types
    assert fold(None, events) == state
    print(f"\nruns={len(runs)} history lengths={sorted(lengths)} events={len(events)}")


async def _reminders(channel: MemoryChannel, count: int, within: float = 30.0) -> None:
    for _ in range(int(within / 0.02)):
        if sum(n.purpose == "maintenance_due" for n in channel.sent) >= count:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"maintenance reminder {count} never came")
