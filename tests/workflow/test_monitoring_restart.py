"""The chair's clocks outlive the worker: a patient is in monitoring when the only worker stops.

The dose is given and the worker stops. A new worker (an empty cache: the course is replayed from
history) sees the 40-minute recheck go 10 minutes late and acts once, takes two high readings
(one review), and stops in turn; a third worker escalates at 4 hours, once, and discharges. Each
notification is sent exactly once and the stored stream is the workflow's state, versions 1..n.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from temporalio.testing import WorkflowEnvironment

from activities.eligibility import SelfPayProvider
from activities.event_store import InMemoryEventStore
from activities.notifications import InMemoryOutbox, MemoryChannel
from application.courses import CourseClient
from course.commands import AdministerDose
from course.policy import CoursePolicy, MonitoringPolicy
from course.state import fold
from tests import story
from tests.conftest import eligibility_known, task_queue
from trust import keys
from worker.main import activities_for, build_worker
from workflows.inputs import workflow_id


async def test_the_chair_clocks_fire_once_across_worker_restarts(skipping_env: WorkflowEnvironment) -> None:
    env, queue = skipping_env, task_queue()
    store, outbox, channel = InMemoryEventStore(), InMemoryOutbox(), MemoryChannel()
    client = CourseClient(env.client, queue)

    @asynccontextmanager
    async def a_worker() -> AsyncIterator[None]:
        # A new Worker each time, caching nothing: every workflow task replays the course from its
        # history. (A cached course would sit on the stopped worker's sticky queue, which the
        # time-skipping server never gives up on; the dev server's fault tests cover real kills.)
        activities = activities_for(store, SelfPayProvider(), outbox, channel)
        async with build_worker(env.client, queue, activities, max_cached_workflows=0):
            yield

    def sent(purpose: str) -> int:
        return [n.purpose for n in channel.sent].count(purpose)

    async def delivered(purpose: str, at_least: int = 1) -> int:
        for _ in range(200):  # bounded: deliveries run after their append, outside the step
            if sent(purpose) >= at_least:
                break
            await asyncio.sleep(0.05)
        return sent(purpose)

    # Signatures are checked against the workflow's clock, which the time-skipping server moves
    # ahead of the signer's wall clock (see tests/workflow/conftest.py).
    ring, signer = keys.ring(), keys.signer()
    keys.configure(ring=None, signer=None)
    try:
        policy = CoursePolicy(monitoring=MonitoringPolicy(), session_reminder_lead=timedelta(minutes=30))
        async with a_worker():
            course = await client.open(story.opening(policy=policy))
            await eligibility_known(client, course)
            await client.record(course, story.assessment(), story.PRESCRIBER)
            for actor, command in story.preparation(await env.get_current_time()):
                await client.record(course, command, actor)  # type: ignore[arg-type]
            scheduled = await env.get_current_time() + timedelta(hours=1)
            await client.record(course, story.schedule(1, scheduled), story.OPERATIONS)
            await client.record(course, story.check_in(1), story.NURSE)
            given = await env.get_current_time()
            dose = AdministerDose.model_validate(
                {"session_number": 1, "route": "iv_infusion", "dose_mg_per_kg": 0.5, "given_at": given}
            )
            await client.record(course, dose, story.NURSE)
        assert sent("monitoring_recheck_late") == 0
        # The timer armed under the first worker fires under the second, which has never seen the
        # course.
        async with a_worker():
            await env.sleep(timedelta(minutes=52))
            assert await delivered("monitoring_recheck_late") == 1
            assert (await client.status(course)).flags.overdue
            await client.record(course, story.reading(await env.get_current_time(), 165), story.NURSE)
            await env.sleep(timedelta(minutes=25))
            await client.record(course, story.reading(await env.get_current_time(), 168), story.NURSE)
            assert await delivered("monitoring_review") == 1
            await client.record(course, story.reading(await env.get_current_time(), 130), story.NURSE)

        async with a_worker():
            await env.sleep(given + timedelta(hours=4, minutes=2) - await env.get_current_time())
            assert await delivered("monitoring_escalation") == 1
            now = await env.get_current_time()
            await client.record(course, story.reading(now, 128), story.NURSE)
            leave = story.discharge(now)
            view = await client.record(course, leave, story.NURSE)
            assert "discharge" not in view.awaiting
            await env.sleep(timedelta(hours=6))  # nothing of the chair fires again
            state = await client.state(course)
    finally:
        keys.configure(ring=ring, signer=signer)

    assert (sent("monitoring_recheck_late"), sent("monitoring_review"), sent("monitoring_escalation")) == (1, 1, 1)
    stored = store.streams[workflow_id(course)]
    assert [e.version for e in stored] == list(range(1, len(stored) + 1))
    assert fold(None, stored) == state
    types = [e.type for e in stored]
    assert types.count("DoseAdministered") == 1 and types.count("PatientDischarged") == 1
    assert types.count("ClinicalReviewRequired") == 1
