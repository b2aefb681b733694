"""One contract, every event store: in memory and PostgreSQL behave the same."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from uuid import uuid4

import asyncpg
import pytest
import pytest_asyncio
from temporalio.exceptions import ApplicationError

from activities.event_store import EventStoreActivities, InMemoryEventStore, PostgresEventStore
from activities.ports import AppendResult, ConcurrencyError, CourseSummary, EventBatch, EventStore, LoadCourse
from course.commands import InsuranceStatus
from course.events import (
    CourseOpened,
    DomainEvent,
    EligibilityChecked,
    EventEnvelope,
    EventMetadata,
    HoldPlaced,
    HoldReleased,
)
from course.state import fold
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
    opened_then_held = _stream(stream, [_opening(stream)[0].event, HoldPlaced(reason="x")])
    with pytest.raises(ConcurrencyError):
        await store.append(stream, 0, opened_then_held)
    with pytest.raises(ConcurrencyError):
        await store.append(stream, 5, _stream(stream, [HoldPlaced(reason="x")], start=6))
    assert len(await store.read(stream)) == 2


def _by(update_id: str, stream: str, events: list[DomainEvent], start: int) -> list[EventEnvelope]:
    metadata = EventMetadata(actor=story.OPERATIONS, update_id=update_id, workflow_id=stream, run_id="r2")
    return [e.model_copy(update={"metadata": metadata}) for e in _stream(stream, events, start=start)]


async def test_the_same_decision_under_other_event_ids_is_adopted_not_failed(store: EventStore) -> None:
    """A reset re-executes decided steps with new event ids and times: the stored ones stand."""
    stream = f"course-{uuid4()}"
    await store.append(stream, 0, _opening(stream))
    await store.append(stream, 2, _by("hold-1", stream, [HoldPlaced(reason="x")], start=3))
    before = await store.read(stream)
    again = await store.append(stream, 0, _opening(stream))  # the opening itself, re-decided
    assert (again.adopted, again.written, again.version) == (True, 0, 3)
    held = await store.append(stream, 2, _by("hold-1", stream, [HoldPlaced(reason="y")], start=3))
    assert (held.adopted, held.written) == (True, 0)
    with pytest.raises(ConcurrencyError):  # another clinician's step at the same version
        await store.append(stream, 2, _by("hold-2", stream, [HoldPlaced(reason="x")], start=3))
    assert await store.read(stream) == before


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
    query = "SELECT * FROM course_summaries ORDER BY stream_id"
    before = [{k: v for k, v in r.items() if k != "updated_at"} for r in await pg_pool.fetch(query)]
    applied = await store.rebuild_summaries()
    after = [{k: v for k, v in r.items() if k != "updated_at"} for r in await pg_pool.fetch(query)]
    assert applied >= 2
    assert after == before


async def test_two_writers_at_one_version_one_wins_and_the_summary_follows_the_winner(pg_pool: asyncpg.Pool) -> None:
    first, second = PostgresEventStore(pg_pool), PostgresEventStore(pg_pool)
    stream = f"course-{uuid4()}"
    await first.append(stream, 0, _opening(stream))
    racers = [
        first.append(stream, 2, _stream(stream, [HoldPlaced(reason="patient_travel")], start=3)),
        second.append(stream, 2, _stream(stream, [HoldPlaced(reason="clinic_closed")], start=3)),
    ]
    outcomes = await asyncio.gather(*racers, return_exceptions=True)
    assert sorted(type(o).__name__ for o in outcomes) == ["AppendResult", "ConcurrencyError"]
    stored = await first.read(stream)
    assert len(stored) == 3
    row = await pg_pool.fetchrow("SELECT version, on_hold FROM course_summaries WHERE stream_id = $1", stream)
    assert row is not None and (row["version"], row["on_hold"]) == (3, True)
    # The winner's cache holds the stored state; the loser's never saw version 3.
    winner = first if isinstance(outcomes[0], AppendResult) else second
    follow_up = _stream(stream, [HoldReleased()], start=4)
    assert (await winner.append(stream, 3, follow_up)).written == 1


async def test_a_retry_racing_its_own_first_attempt_is_written_once(pg_pool: asyncpg.Pool) -> None:
    stream = f"course-{uuid4()}"
    events = _opening(stream)
    results = await asyncio.gather(*(PostgresEventStore(pg_pool).append(stream, 0, events) for _ in range(4)))
    assert sorted(r.written for r in results) == [0, 0, 0, 2]
    assert await PostgresEventStore(pg_pool).read(stream) == events


async def test_workers_taking_turns_on_one_stream_keep_the_summary_true(pg_pool: asyncpg.Pool) -> None:
    # Each store caches the state it wrote; the other worker's write makes that cache stale.
    a, b = PostgresEventStore(pg_pool), PostgresEventStore(pg_pool)
    stream = f"course-{uuid4()}"
    await a.append(stream, 0, _opening(stream))
    await b.append(stream, 2, _stream(stream, [HoldPlaced(reason="patient_travel")], start=3))
    await a.append(stream, 3, _stream(stream, [HoldReleased()], start=4))
    row = await pg_pool.fetchrow("SELECT version, on_hold FROM course_summaries WHERE stream_id = $1", stream)
    assert row is not None and (row["version"], row["on_hold"]) == (4, False)
    rebuilt = fold(None, await a.read(stream))
    assert rebuilt is not None and rebuilt.on_hold is False and rebuilt.version == 4


async def test_a_refused_append_writes_neither_events_nor_summary(pg_pool: asyncpg.Pool) -> None:
    store = PostgresEventStore(pg_pool)
    stream = f"course-{uuid4()}"
    await store.append(stream, 0, _opening(stream))
    with pytest.raises(ConcurrencyError):
        await store.append(stream, 1, _stream(stream, [HoldPlaced(reason="x")], start=2))
    row = await pg_pool.fetchrow("SELECT version, on_hold FROM course_summaries WHERE stream_id = $1", stream)
    assert row is not None and (row["version"], row["on_hold"]) == (2, False)


async def test_data_postgres_cannot_store_fails_the_append_at_once_without_echoing_it(pg_pool: asyncpg.Pool) -> None:
    # The payload models refuse NUL; this is the store's own guard for anything that slips past.
    stream = f"course-{uuid4()}"
    activities = EventStoreActivities(PostgresEventStore(pg_pool))
    opening = _opening(stream)
    await activities.append_events(EventBatch(stream_id=stream, expected_version=0, events=opening))
    unstorable = _stream(stream, [HoldPlaced.model_construct(reason="Ada\x00Lovelace")], start=3)
    with pytest.raises(ApplicationError) as refused:
        await activities.append_events(EventBatch(stream_id=stream, expected_version=2, events=unstorable))
    assert refused.value.non_retryable and refused.value.type == "UnstorableEvent"
    assert "Ada" not in str(refused.value)
    assert len(await PostgresEventStore(pg_pool).read(stream)) == 2


async def test_events_are_stored_even_when_no_summary_can_be_computed(pg_pool: asyncpg.Pool) -> None:
    """A batch from an older workflow carries no summary; if its stream does not fold here, the
    events still go in (they are the record) and the store says the summary is behind."""
    store = PostgresEventStore(pg_pool)
    stream = f"course-{uuid4()}"
    orphan = _stream(stream, [HoldPlaced(reason="x")])  # no CourseOpened first: does not fold
    result = await store.append(stream, 0, orphan)
    assert (result.written, result.summary_written) == (1, False)
    assert await store.read(stream) == orphan
    assert await pg_pool.fetchval("SELECT count(*) FROM course_summaries WHERE stream_id = $1", stream) == 0


async def test_the_summary_sent_with_a_batch_is_the_one_written(pg_pool: asyncpg.Pool) -> None:
    store = PostgresEventStore(pg_pool)
    stream = f"course-{uuid4()}"
    events = _opening(stream)
    state = fold(None, events)
    assert state is not None
    summary = CourseSummary.of(state).model_copy(update={"gad7_latest": 7})  # only the batch knows it
    await store.append(stream, 0, events, summary)
    assert await pg_pool.fetchval("SELECT gad7_latest FROM course_summaries WHERE stream_id = $1", stream) == 7


async def test_loading_a_course_folds_its_stream_and_lists_its_update_ids(pg_pool: asyncpg.Pool) -> None:
    store = PostgresEventStore(pg_pool)
    activities = EventStoreActivities(store)
    stream = f"course-{uuid4()}"
    assert (await activities.load_course(LoadCourse(stream_id=stream))).version == 0
    await store.append(stream, 0, _opening(stream))
    await store.append(stream, 2, _by("hold-1", stream, [HoldPlaced(reason="x")], start=3))
    await store.append(stream, 3, _by("release-1", stream, [HoldReleased()], start=4))
    loaded = await activities.load_course(LoadCourse(stream_id=stream))
    assert loaded.state == fold(None, await store.read(stream))
    assert (loaded.version, loaded.applied_updates) == (4, ["hold-1", "release-1"])
    unreadable = f"course-{uuid4()}"
    await store.append(unreadable, 0, _stream(unreadable, [HoldPlaced(reason="x")]))
    with pytest.raises(ApplicationError) as refused:
        await activities.load_course(LoadCourse(stream_id=unreadable))
    assert refused.value.type == "UnreadableStream"
