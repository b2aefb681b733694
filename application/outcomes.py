"""The outcome projection and the reports read from it (migrations/0010_outcome_projection.sql).

`course_outcomes` holds each course's CourseOutcome (course/outcomes.py), folded from `events` in
global order and checkpointed by `global_position` in `projection_checkpoints`. How it is kept
current: every report read catches up first (`catch_up`), so a report is as fresh as the store at
the moment it is asked for; nothing runs in the background, and nothing is written on a course's
append path (a slow report never slows a clinical step).

Two things make a catch-up exact:
- *No event is skipped.* A bigserial position is taken before its transaction commits, so a reader
  can see position 12 committed while 11 is still in flight, and a checkpoint at 12 would skip 11
  for ever. Each catch-up first takes the high-water mark under `LOCK events IN SHARE MODE`: the
  lock waits for every append in flight (each holds ROW EXCLUSIVE for its one statement), so every
  position at or below the mark is either committed or never will be. Appends wait for that instant
  only (the lock is released before folding).
- *No event is counted twice.* Each batch runs in one transaction under an advisory lock, reading
  the checkpoint after taking it and writing the rows and the new checkpoint together: two processes
  catching up at once take turns, and the second starts where the first committed. A row also keeps
  its stream's version, and an event at or below it is not applied again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg
import structlog

from course.events import CourseOpened, EventEnvelope
from course.outcomes import CourseOutcome, evolve_outcome, opened

log = structlog.get_logger(__name__)

PROJECTION = "course_outcomes"
# Serialises catch-ups and rebuilds of the projection (migrations take 7_310_221, policies 7_310_222).
_CATCH_UP_LOCK = 7_310_230
# An append stuck this long (a lock held by hand, say) must not hang a report: it is answered from
# the projection as it stands, and the next read catches up.
_HIGH_WATER_LOCK_TIMEOUT = "5s"

_EVENTS = (
    "SELECT global_position, event_id, stream_id, version, type, data, metadata, occurred_at FROM events "
    "WHERE global_position > $1 AND global_position <= $2 ORDER BY global_position LIMIT $3"
)
_UPSERT = (
    "INSERT INTO course_outcomes (stream_id, version, global_position, opened_at, outcome) "
    "SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[], $4::timestamptz[], $5::jsonb[]) "
    "ON CONFLICT (stream_id) DO UPDATE SET version = EXCLUDED.version, "
    "global_position = EXCLUDED.global_position, outcome = EXCLUDED.outcome"
)


class ProjectionBroken(Exception):
    """A stream that does not fold into an outcome (a gap in its versions): names the stream only."""


class OutcomeProjection:
    def __init__(self, pool: asyncpg.Pool, batch_size: int = 1000) -> None:
        self._pool = pool
        self._batch_size = batch_size

    async def catch_up(self) -> int:
        """Fold the events appended since the checkpoint; returns how many were read."""
        high = await self.high_water()
        if high is None:
            return 0
        read = 0
        while True:
            async with self._pool.acquire() as connection, connection.transaction():
                count = await self._advance(connection, high)
            read += count
            if count == 0:
                return read

    async def rebuild(self) -> int:
        """Empty the projection and fold every event again, in one transaction: a report read meanwhile
        waits for it, then sees the rebuilt rows (never a half-built table)."""
        high = await self.high_water()
        read = 0
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute("SELECT pg_advisory_xact_lock($1)", _CATCH_UP_LOCK)
            await connection.execute("DELETE FROM course_outcomes")
            await connection.execute(
                "UPDATE projection_checkpoints SET global_position = 0, updated_at = now() WHERE name = $1",
                PROJECTION,
            )
            while high is not None and (count := await self._advance(connection, high)):
                read += count
        log.info("outcome projection rebuilt", events=read)
        return read

    async def high_water(self) -> int | None:
        """The highest position below which every event is committed (module docstring); None when
        appends did not let go of the table in time."""
        async with self._pool.acquire() as connection, connection.transaction():
            await connection.execute(f"SET LOCAL lock_timeout = '{_HIGH_WATER_LOCK_TIMEOUT}'")
            try:
                await connection.execute("LOCK TABLE events IN SHARE MODE")
            except asyncpg.LockNotAvailableError:
                log.warning("outcome projection not caught up: appends held the event store")
                return None
            position: int = await connection.fetchval("SELECT coalesce(max(global_position), 0) FROM events")
            return position

    async def _advance(self, connection: asyncpg.pool.PoolConnectionProxy, high: int) -> int:
        """One batch, in the caller's transaction: events after the checkpoint up to `high`, folded
        onto their courses' rows, written with the new checkpoint. Returns how many were read."""
        await connection.execute("SELECT pg_advisory_xact_lock($1)", _CATCH_UP_LOCK)
        checkpoint: int = await connection.fetchval(
            "SELECT global_position FROM projection_checkpoints WHERE name = $1", PROJECTION
        )
        rows = await connection.fetch(_EVENTS, checkpoint, high, self._batch_size)
        if not rows:
            return 0
        streams = sorted({r["stream_id"] for r in rows})
        stored = await connection.fetch(
            "SELECT stream_id, version, outcome FROM course_outcomes WHERE stream_id = ANY($1::text[])", streams
        )
        folded: dict[str, tuple[int, int, CourseOutcome]] = {
            r["stream_id"]: (r["version"], 0, CourseOutcome.model_validate(r["outcome"])) for r in stored
        }
        changed: set[str] = set()
        for row in rows:
            fields = dict(row)
            position = fields.pop("global_position")
            envelope = EventEnvelope.from_row(**fields)
            before = folded.get(envelope.stream_id)
            after = fold_one(before[2] if before else None, before[0] if before else 0, envelope)
            if after is not None:
                folded[envelope.stream_id] = (envelope.version, position, after)
                changed.add(envelope.stream_id)
        if changed:
            written = [(stream, *folded[stream]) for stream in sorted(changed)]
            await connection.execute(
                _UPSERT,
                [w[0] for w in written],
                [w[1] for w in written],
                [w[2] for w in written],
                [w[3].opened_at for w in written],
                [w[3].model_dump(mode="json") for w in written],
            )
        await connection.execute(
            "UPDATE projection_checkpoints SET global_position = $2, updated_at = now() WHERE name = $1",
            PROJECTION,
            rows[-1]["global_position"],
        )
        return len(rows)

    async def outcomes(self, since: datetime | None = None) -> list[CourseOutcome]:
        rows = await self._pool.fetch(
            "SELECT outcome FROM course_outcomes WHERE $1::timestamptz IS NULL OR opened_at >= $1 ORDER BY opened_at",
            since,
        )
        return [CourseOutcome.model_validate(r["outcome"]) for r in rows]

    async def checkpoint(self) -> int:
        position: int = await self._pool.fetchval(
            "SELECT global_position FROM projection_checkpoints WHERE name = $1", PROJECTION
        )
        return position


def fold_one(outcome: CourseOutcome | None, version: int, envelope: EventEnvelope) -> CourseOutcome | None:
    """The outcome after one stored event, or None when the event is already folded in."""
    if envelope.version <= version:
        return None
    if envelope.version != version + 1:
        raise ProjectionBroken(f"{envelope.stream_id}: event version {envelope.version} does not follow {version}")
    if outcome is None:
        if not isinstance(envelope.event, CourseOpened):
            raise ProjectionBroken(f"{envelope.stream_id}: a course stream must start with CourseOpened")
        return opened(envelope.event, envelope.occurred_at)
    return evolve_outcome(outcome, envelope.event, envelope.occurred_at)


def fold_stream(envelopes: Sequence[EventEnvelope]) -> CourseOutcome | None:
    """A whole stream at once: what the projection's row must equal."""
    outcome: CourseOutcome | None = None
    for version, envelope in enumerate(envelopes):
        outcome = fold_one(outcome, version, envelope) or outcome
    return outcome
