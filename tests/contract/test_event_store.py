"""One contract, every event store: in memory and PostgreSQL behave the same."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from uuid import uuid4

import asyncpg
import pytest
import pytest_asyncio

from activities.event_store import InMemoryEventStore, PostgresEventStore
from activities.ports import ConcurrencyError, EventStore
from course.commands import InsuranceStatus
from course.events import (
    CourseOpened,
    DomainEvent,
    EligibilityChecked,
    EventEnvelope,
    EventMetadata,
    HoldPlaced,
)
from tests import story


def _stream(stream_id: str, events: list[DomainEvent], start: int = 1) -> list[EventEnvelope]:
    metadata = EventMetadata(actor=story.OPERATIONS, workflow_id=stream_id, run_id="r1")
    return [
        EventEnvelope(
            event_id=uuid4(),
            stream_id=stream_id,
            version=start + i,
            occurred_at=datetime(2026, 11, 25, 9, tzinfo=UTC),
            metadata=metadata,
            event=e,
        )
        for i, e in enumerate(events)
    ]


def _opening(stream_id: str) -> list[EventEnvelope]:
    opened = CourseOpened(course_id=uuid4(), patient_id="pt-1", clinician_id="dr-1")
    return _stream(stream_id, [opened, EligibilityChecked(status=InsuranceStatus.COVERED)])


@pytest_asyncio.fixture(params=["memory", "postgres"])
async def store(request: pytest.FixtureRequest, pg_pool: asyncpg.Pool) -> AsyncIterator[EventStore]:
    yield InMemoryEventStore() if request.param == "memory" else PostgresEventStore(pg_pool)


async def test_appended_events_read_back_in_order(store: EventStore) -> None:
    stream = f"course-{uuid4()}"
    events = _opening(stream)
    result = await store.append(stream, 0, events)
    assert (result.version, result.written) == (2, 2)
    assert await store.read(stream) == events


async def test_a_retried_append_is_a_no_op(store: EventStore) -> None:
    stream = f"course-{uuid4()}"
    events = _opening(stream)
    await store.append(stream, 0, events)
    again = await store.append(stream, 0, events)
    assert (again.version, again.written) == (2, 0)
    assert len(await store.read(stream)) == 2


async def test_a_different_event_at_an_existing_version_is_a_conflict(store: EventStore) -> None:
    stream = f"course-{uuid4()}"
    await store.append(stream, 0, _opening(stream))
    with pytest.raises(ConcurrencyError):
        await store.append(stream, 0, _opening(stream))
    with pytest.raises(ConcurrencyError):
        await store.append(stream, 5, _stream(stream, [HoldPlaced(reason="x")], start=6))
    assert len(await store.read(stream)) == 2


async def test_a_batch_with_a_gap_is_refused(store: EventStore) -> None:
    stream = f"course-{uuid4()}"
    with pytest.raises(ConcurrencyError):
        await store.append(stream, 0, _stream(stream, [HoldPlaced(reason="x")], start=2))


async def test_the_summary_projection_follows_the_stream(pg_pool: asyncpg.Pool) -> None:
    store = PostgresEventStore(pg_pool)
    stream = f"course-{uuid4()}"
    await store.append(stream, 0, _opening(stream))
    await store.append(stream, 2, _stream(stream, [HoldPlaced(reason="patient_travel")], start=3))
    row = await pg_pool.fetchrow("SELECT * FROM course_summaries WHERE stream_id = $1", stream)
    assert row is not None
    assert (row["version"], row["on_hold"], row["insurance"]) == (3, True, "covered")


async def test_summaries_rebuild_from_events_to_the_same_rows(pg_pool: asyncpg.Pool) -> None:
    store = PostgresEventStore(pg_pool)
    stream = f"course-{uuid4()}"
    await store.append(stream, 0, _opening(stream))
    query = "SELECT stream_id, phase, version, on_hold, state FROM course_summaries ORDER BY stream_id"
    before = [dict(r) for r in await pg_pool.fetch(query)]
    applied = await store.rebuild_summaries()
    after = [dict(r) for r in await pg_pool.fetch(query)]
    assert applied >= 2
    assert after == before
