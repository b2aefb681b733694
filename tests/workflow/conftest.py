"""A worker on the time-skipping test server with in-memory fakes for the store and channel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest_asyncio
from temporalio.testing import WorkflowEnvironment

from activities.eligibility import SelfPayProvider
from activities.event_store import InMemoryEventStore
from activities.notifications import InMemoryOutbox, MemoryChannel
from application.courses import CourseClient
from tests.conftest import task_queue
from trust import keys
from worker.main import activities_for, build_worker


@dataclass
class Stack:
    env: WorkflowEnvironment
    client: CourseClient
    store: InMemoryEventStore
    channel: MemoryChannel


@pytest_asyncio.fixture
async def stack(skipping_env: WorkflowEnvironment) -> AsyncIterator[Stack]:
    store, channel, queue = InMemoryEventStore(), MemoryChannel(), task_queue()
    worker = build_worker(
        skipping_env.client, queue, activities_for(store, SelfPayProvider(), InMemoryOutbox(), channel)
    )
    # Signatures are checked against the workflow's clock, which the time-skipping server moves
    # days ahead of the wall clock the signer uses: these tests run without the check (the dev
    # server's tests, tests/integration/test_signed_steps.py, cover it).
    ring, signer = keys.ring(), keys.signer()
    keys.configure(ring=None, signer=None)
    try:
        async with worker:
            yield Stack(skipping_env, CourseClient(skipping_env.client, queue), store, channel)
    finally:
        keys.configure(ring=ring, signer=signer)
