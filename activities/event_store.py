"""Event store adapters (PostgreSQL and in-memory) and the activity that appends through them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import asyncpg
from asyncpg.pool import PoolConnectionProxy
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.ports import AppendResult, ConcurrencyError, EventBatch, EventStore
from course.events import EventEnvelope
from course.state import CourseState, evolve, fold


def _check_batch(stream_id: str, expected_version: int, events: Sequence[EventEnvelope]) -> None:
    for offset, envelope in enumerate(events, start=1):
        if envelope.stream_id != stream_id or envelope.version != expected_version + offset:
            raise ConcurrencyError(f"batch for {stream_id} is not contiguous after {expected_version}")


class InMemoryEventStore:
    """A fake with the same contract as PostgreSQL: for unit and time-skipping tests."""

    def __init__(self) -> None:
        self.streams: dict[str, list[EventEnvelope]] = {}
        self.summaries: dict[str, CourseState] = {}

    async def append(self, stream_id: str, expected_version: int, events: Sequence[EventEnvelope]) -> AppendResult:
        _check_batch(stream_id, expected_version, events)
        stream = self.streams.setdefault(stream_id, [])
        stored = {e.event_id for e in stream}
        if events and all(e.event_id in stored for e in events):
            return AppendResult(version=len(stream), written=0)
        if len(stream) != expected_version:
            raise ConcurrencyError(f"{stream_id} is at version {len(stream)}, not {expected_version}")
        stream.extend(events)
        state = self.summaries.get(stream_id)
        for envelope in events:
            state = evolve(state, envelope)
        if state is not None:
            self.summaries[stream_id] = state
        return AppendResult(version=len(stream), written=len(events))

    async def read(self, stream_id: str) -> list[EventEnvelope]:
        return list(self.streams.get(stream_id, []))


async def init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


_INSERT = """
INSERT INTO events (stream_id, version, event_id, type, data, metadata, occurred_at)
SELECT $1, v, id, t, d, m, o
FROM unnest($2::int[], $3::uuid[], $4::text[], $5::jsonb[], $6::jsonb[], $7::timestamptz[])
    AS batch(v, id, t, d, m, o)
RETURNING global_position
"""

_UPSERT_SUMMARY = """
INSERT INTO course_summaries (stream_id, course_id, patient_id, phase, outcome, clinician_id,
    therapist_id, insurance, sessions_completed, sessions_planned, gad7_baseline, gad7_latest,
    on_hold, needs_clinical_review, overdue, version, global_position, opened_at, updated_at, state)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, now(), $19)
ON CONFLICT (stream_id) DO UPDATE SET
    phase = EXCLUDED.phase, outcome = EXCLUDED.outcome, clinician_id = EXCLUDED.clinician_id,
    therapist_id = EXCLUDED.therapist_id, insurance = EXCLUDED.insurance,
    sessions_completed = EXCLUDED.sessions_completed,
    sessions_planned = EXCLUDED.sessions_planned, gad7_baseline = EXCLUDED.gad7_baseline,
    gad7_latest = EXCLUDED.gad7_latest, on_hold = EXCLUDED.on_hold,
    needs_clinical_review = EXCLUDED.needs_clinical_review, overdue = EXCLUDED.overdue,
    version = EXCLUDED.version, global_position = EXCLUDED.global_position,
    updated_at = now(), state = EXCLUDED.state
"""


def summary_row(state: CourseState, global_position: int) -> tuple[Any, ...]:
    return (
        state.stream_id,
        state.course_id,
        state.patient_id,
        state.phase.value,
        state.outcome,
        state.clinician_id,
        state.therapist_id,
        state.insurance.value if state.insurance else None,
        state.sessions_completed,
        state.plan.planned_sessions if state.plan else None,
        state.gad7_baseline,
        state.gad7_latest,
        state.on_hold,
        state.review_required,
        bool(state.overdue),
        state.version,
        global_position,
        state.opened_at,
        state.model_dump(mode="json"),
    )


class PostgresEventStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def append(self, stream_id: str, expected_version: int, events: Sequence[EventEnvelope]) -> AppendResult:
        _check_batch(stream_id, expected_version, events)
        if not events:
            return AppendResult(version=expected_version, written=0)
        async with self._pool.acquire() as conn, conn.transaction():
            # One writer per stream at a time; different courses never wait on each other.
            await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", stream_id)
            ids = [e.event_id for e in events]
            already = await conn.fetchval("SELECT count(*) FROM events WHERE event_id = ANY($1::uuid[])", ids)
            current = await conn.fetchval(
                "SELECT coalesce(max(version), 0) FROM events WHERE stream_id = $1", stream_id
            )
            if already == len(events):
                return AppendResult(version=current, written=0)
            if already or current != expected_version:
                raise ConcurrencyError(f"{stream_id} is at version {current}, not {expected_version}")
            positions = await conn.fetch(
                _INSERT,
                stream_id,
                [e.version for e in events],
                ids,
                [e.type for e in events],
                [e.data() for e in events],
                [e.metadata.model_dump(mode="json") for e in events],
                [e.occurred_at for e in events],
            )
            await self._project(conn, stream_id, events, positions[-1]["global_position"])
        return AppendResult(version=events[-1].version, written=len(events))

    async def _project(
        self, conn: PoolConnectionProxy[asyncpg.Record], stream_id: str, events: Sequence[EventEnvelope], position: int
    ) -> None:
        row = await conn.fetchval("SELECT state FROM course_summaries WHERE stream_id = $1", stream_id)
        state = CourseState.model_validate(row) if row is not None else None
        state = fold(state, events)
        assert state is not None
        await conn.execute(_UPSERT_SUMMARY, *summary_row(state, position))

    async def read(self, stream_id: str) -> list[EventEnvelope]:
        rows = await self._pool.fetch(
            "SELECT event_id, stream_id, version, type, data, metadata, occurred_at "
            "FROM events WHERE stream_id = $1 ORDER BY version",
            stream_id,
        )
        return [EventEnvelope.from_row(**dict(r)) for r in rows]

    async def rebuild_summaries(self, batch_size: int = 5000) -> int:
        """Rebuild course_summaries from events, in global order. Returns events applied."""
        applied = 0
        states: dict[str, tuple[CourseState, int]] = {}
        async with self._pool.acquire() as conn:
            async with conn.transaction():
                cursor = conn.cursor(
                    "SELECT global_position, event_id, stream_id, version, type, data, metadata, "
                    "occurred_at FROM events ORDER BY global_position",
                    prefetch=batch_size,
                )
                async for record in cursor:
                    fields = dict(record)
                    position = fields.pop("global_position")
                    envelope = EventEnvelope.from_row(**fields)
                    previous = states.get(envelope.stream_id)
                    states[envelope.stream_id] = (evolve(previous[0] if previous else None, envelope), position)
                    applied += 1
            async with conn.transaction():
                await conn.execute("DELETE FROM course_summaries")
                await conn.executemany(_UPSERT_SUMMARY, [summary_row(state, pos) for state, pos in states.values()])
        return applied


class EventStoreActivities:
    def __init__(self, store: EventStore) -> None:
        self._store = store

    @activity.defn
    async def append_events(self, batch: EventBatch) -> AppendResult:
        try:
            return await self._store.append(batch.stream_id, batch.expected_version, batch.events)
        except ConcurrencyError as error:
            raise ApplicationError(str(error), type="ConcurrencyError", non_retryable=True) from error
