"""Event store adapters (PostgreSQL and in-memory) and the activity that appends through them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import asyncpg
import structlog
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.ports import (
    AppendResult,
    ConcurrencyError,
    CourseSummary,
    EventBatch,
    EventStore,
    LoadCourse,
    LoadedCourse,
    decision_identity,
    same_decision,
)
from course.events import EventEnvelope
from course.state import CourseState, evolve, fold

log = structlog.get_logger(__name__)


def _check_batch(stream_id: str, expected_version: int, events: Sequence[EventEnvelope]) -> None:
    for offset, envelope in enumerate(events, start=1):
        if envelope.stream_id != stream_id or envelope.version != expected_version + offset:
            raise ConcurrencyError(f"batch for {stream_id} is not contiguous after {expected_version}")


class InMemoryEventStore:
    """A fake with the same contract as PostgreSQL: for unit and time-skipping tests."""

    def __init__(self) -> None:
        self.streams: dict[str, list[EventEnvelope]] = {}
        self.summaries: dict[str, CourseSummary] = {}

    async def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[EventEnvelope],
        summary: CourseSummary | None = None,
    ) -> AppendResult:
        _check_batch(stream_id, expected_version, events)
        stream = self.streams.setdefault(stream_id, [])
        stored = {e.event_id for e in stream}
        if events and all(e.event_id in stored for e in events):
            return AppendResult(version=len(stream), written=0)
        if len(stream) != expected_version:
            taken = stream[expected_version : expected_version + len(events)]
            if same_decision([decision_identity(e) for e in taken], [decision_identity(e) for e in events]):
                return AppendResult(version=len(stream), written=0, adopted=True)
            raise ConcurrencyError(f"{stream_id} is at version {len(stream)}, not {expected_version}")
        if summary is None:
            state = fold(None, [*stream, *events])
            summary = CourseSummary.of(state) if state is not None else None
        stream.extend(events)
        if summary is not None:
            self.summaries[stream_id] = summary
        return AppendResult(version=len(stream), written=len(events))

    async def read(self, stream_id: str) -> list[EventEnvelope]:
        return list(self.streams.get(stream_id, []))


async def init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


_SUMMARY_COLUMNS = """stream_id, course_id, patient_id, phase, outcome, clinician_id, therapist_id, insurance,
    sessions_completed, sessions_planned, gad7_baseline, gad7_latest, on_hold, needs_clinical_review,
    overdue, version, opened_at, global_position, updated_at"""

_SUMMARY_CONFLICT = """ON CONFLICT (stream_id) DO UPDATE SET
    phase = EXCLUDED.phase, outcome = EXCLUDED.outcome, clinician_id = EXCLUDED.clinician_id,
    therapist_id = EXCLUDED.therapist_id, insurance = EXCLUDED.insurance,
    sessions_completed = EXCLUDED.sessions_completed,
    sessions_planned = EXCLUDED.sessions_planned, gad7_baseline = EXCLUDED.gad7_baseline,
    gad7_latest = EXCLUDED.gad7_latest, on_hold = EXCLUDED.on_hold,
    needs_clinical_review = EXCLUDED.needs_clinical_review, overdue = EXCLUDED.overdue,
    version = EXCLUDED.version, global_position = EXCLUDED.global_position,
    updated_at = now()"""

# The events, guarded by the stream's version ($8), and the summary they lead to, in one
# statement (one round trip, one implicit transaction): the summary is written only if the
# events were. Returns how many events were inserted.
_APPEND = f"""
WITH inserted AS (
    INSERT INTO events (stream_id, version, event_id, type, data, metadata, occurred_at)
    SELECT $1, v, id, t, d, m, o
    FROM unnest($2::int[], $3::uuid[], $4::text[], $5::jsonb[], $6::jsonb[], $7::timestamptz[])
        AS batch(v, id, t, d, m, o)
    WHERE (SELECT coalesce(max(version), 0) FROM events WHERE stream_id = $1) = $8
    RETURNING global_position
), summary AS (
    INSERT INTO course_summaries ({_SUMMARY_COLUMNS})
    SELECT $1, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24,
        max(global_position), now()
    FROM inserted HAVING count(*) > 0
    {_SUMMARY_CONFLICT}
)
SELECT count(*) FROM inserted
"""  # noqa: S608 (built from module constants; every value is a $n parameter)

# The same guarded insert without a summary: for a batch whose summary could not be computed
# (an older workflow's batch whose stream does not fold). The events are the record; the summary
# catches up at the next batch or at `course rebuild-summaries`.
_APPEND_EVENTS_ONLY = """
WITH inserted AS (
    INSERT INTO events (stream_id, version, event_id, type, data, metadata, occurred_at)
    SELECT $1, v, id, t, d, m, o
    FROM unnest($2::int[], $3::uuid[], $4::text[], $5::jsonb[], $6::jsonb[], $7::timestamptz[])
        AS batch(v, id, t, d, m, o)
    WHERE (SELECT coalesce(max(version), 0) FROM events WHERE stream_id = $1) = $8
    RETURNING global_position
)
SELECT count(*) FROM inserted
"""

_UPSERT_SUMMARY = f"""
INSERT INTO course_summaries ({_SUMMARY_COLUMNS})
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, now())
{_SUMMARY_CONFLICT}
"""  # noqa: S608 (module constants only)


def event_columns(stream_id: str, expected_version: int, events: Sequence[EventEnvelope]) -> tuple[Any, ...]:
    """_APPEND's parameters $1-$8: the stream, the batch as column arrays, the expected version."""
    return (
        stream_id,
        [e.version for e in events],
        [e.event_id for e in events],
        [e.type for e in events],
        [e.data() for e in events],
        [e.metadata.model_dump(mode="json") for e in events],
        [e.occurred_at for e in events],
        expected_version,
    )


def summary_params(summary: CourseSummary) -> tuple[Any, ...]:
    """course_summaries' columns after `stream_id`, in _SUMMARY_COLUMNS order up to `opened_at`."""
    return tuple(getattr(summary, name) for name in CourseSummary.model_fields)


def summary_row(state: CourseState) -> tuple[Any, ...]:
    """course_summaries' columns for a state, in _SUMMARY_COLUMNS order up to `opened_at`."""
    return (state.stream_id, *summary_params(CourseSummary.of(state)))


class PostgresEventStore:
    """Appends in one statement: insert the batch, upsert the course's summary, commit.

    The version check is the statement's own guard (the stream must still be at
    `expected_version`) backed by UNIQUE (stream_id, version), so no lock is taken and different
    courses never wait on each other. The summary comes with the batch, computed by the workflow
    from the state it already folded: nothing is folded here. Anything but the expected case (a
    retried batch that is already stored, a second writer) falls to `_settle`, which only reads.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def append(
        self,
        stream_id: str,
        expected_version: int,
        events: Sequence[EventEnvelope],
        summary: CourseSummary | None = None,
    ) -> AppendResult:
        _check_batch(stream_id, expected_version, events)
        if not events:
            return AppendResult(version=expected_version, written=0)
        if summary is None:
            summary = await self._summary_by_folding(stream_id, events)
        columns = event_columns(stream_id, expected_version, events)
        try:
            if summary is not None:
                written = await self._pool.fetchval(_APPEND, *columns, *summary_params(summary))
            else:
                written = await self._pool.fetchval(_APPEND_EVENTS_ONLY, *columns)
        except asyncpg.UniqueViolationError:
            written = 0  # a second writer (or an earlier attempt of this batch) got there first
        if written != len(events):
            return await self._settle(stream_id, expected_version, events)
        return AppendResult(version=events[-1].version, written=len(events), summary_written=summary is not None)

    async def _summary_by_folding(self, stream_id: str, events: Sequence[EventEnvelope]) -> CourseSummary | None:
        """A batch without a summary (sent by an older workflow): fold the stream, or give up.

        Whatever goes wrong here must not keep the events out of the store: the summary is a
        read model, the events are the record.
        """
        try:
            state = fold(None, [*await self.read(stream_id), *events])
        except Exception as error:  # noqa: BLE001 - any failure here only costs the summary
            log.warning("summary_not_computed", stream_id=stream_id, error=type(error).__name__)
            return None
        if state is None or state.version != events[-1].version:
            return None  # the stream moved: the guarded insert will not write, _settle decides
        return CourseSummary.of(state)

    async def _settle(self, stream_id: str, expected_version: int, events: Sequence[EventEnvelope]) -> AppendResult:
        """The batch was not written: already stored (a retry), the same decision stored under
        other event ids (a re-executed workflow task, a reset), or a different writer."""
        ids = [e.event_id for e in events]
        row = await self._pool.fetchrow(
            "SELECT (SELECT count(*) FROM events WHERE event_id = ANY($1::uuid[])),"
            " (SELECT coalesce(max(version), 0) FROM events WHERE stream_id = $2)",
            ids,
            stream_id,
        )
        assert row is not None  # a SELECT without FROM always returns one row
        already, current = row[0], row[1]
        if already == len(events):
            return AppendResult(version=current, written=0)
        taken = await self._pool.fetch(
            "SELECT type, data, metadata FROM events WHERE stream_id = $1 AND version > $2 AND version <= $3"
            " ORDER BY version",
            stream_id,
            expected_version,
            expected_version + len(events),
        )
        stored = [(r["type"], r["metadata"].get("update_id"), _key(r["data"])) for r in taken]
        if same_decision(stored, [decision_identity(e) for e in events]):
            return AppendResult(version=current, written=0, adopted=True)
        raise ConcurrencyError(f"{stream_id} is at version {current}, not {expected_version}")

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
                await conn.executemany(_UPSERT_SUMMARY, [(*summary_row(state), pos) for state, pos in states.values()])
        return applied


def _key(data: dict[str, Any]) -> str | None:
    key = data.get("key")
    return key if isinstance(key, str) else None


class EventStoreActivities:
    def __init__(self, store: EventStore) -> None:
        self._store = store

    @activity.defn
    async def load_course(self, request: LoadCourse) -> LoadedCourse:
        """The stream's head, folded by this worker's `evolve`: what a run starts from."""
        events = await self._store.read(request.stream_id)
        try:
            state = fold(None, events)
        except Exception as error:  # noqa: BLE001 - whatever fails, the course must hear a code
            # The message of a validation error can quote stored values: pass on the kind only.
            raise ApplicationError(
                f"the stored stream does not fold ({type(error).__name__})", type="UnreadableStream"
            ) from None
        updates: dict[str, None] = {}
        for envelope in events:
            if envelope.metadata.update_id is not None:
                updates.pop(envelope.metadata.update_id, None)
                updates[envelope.metadata.update_id] = None
        kept = list(updates)[-request.updates_kept :] if request.updates_kept else []
        return LoadedCourse(version=state.version if state else 0, state=state, applied_updates=kept)

    @activity.defn
    async def append_events(self, batch: EventBatch) -> AppendResult:
        try:
            return await self._store.append(batch.stream_id, batch.expected_version, batch.events, batch.summary)
        except ConcurrencyError as error:
            raise ApplicationError(str(error), type="ConcurrencyError", non_retryable=True) from error
        except asyncpg.DataError as error:
            # A value PostgreSQL refuses (class 22: NUL in jsonb, say) is refused on every retry:
            # fail the step now rather than hold the course retrying. The server's message may
            # quote the value, so only its SQLSTATE is passed on.
            raise ApplicationError(
                f"the event store refused this step's data (SQLSTATE {error.sqlstate})",
                type="UnstorableEvent",
                non_retryable=True,
            ) from None
