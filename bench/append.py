"""Event append: events per second through PostgresEventStore.append, against raw asyncpg inserts
of the same rows and against the `eventsourcing` library, on the same throwaway database.

    python -m bench.append [--quick] [--courses 400]

The rows are full six-session courses made offline by the real decider (bench/courses.py): 40
appends of 1-3 events per course, as the workflow sends them. Each writer appends one course's
batches in order; "1 course" is one writer, "16 courses" sixteen writers on the production pool
(16 connections).
- store: PostgresEventStore.append (version guard, insert, the inline course_summaries
  projection, in one statement per batch; idempotency is settled only when that statement wrote
  nothing), each batch with the course summary the workflow sends with it. (Without one the store
  reads and folds the whole stream first: the path only batches of workflows older than that
  change take. Until 2026-12-02 this script sent none and measured that path: 0.29 and 0.16.)
- raw: a bare INSERT ... SELECT unnest(...) of the same rows, one autocommitted statement per
  batch (the fewest round trips), rows prepared before the clock starts: the database's limit for
  this write pattern.
- eventsourcing: its PostgreSQL Application, one aggregate per course, one save per batch with the
  same data and metadata (psycopg 3; it locks its table for each save to keep positions gap-free).
Targets: store >= 0.8 x raw, store >= 3 x eventsourcing.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from uuid import UUID

import asyncpg

from activities.event_store import PostgresEventStore, event_columns
from bench import common
from bench.courses import Batch, append_courses, events_in, simulated_courses
from worker.database import create_pool

TARGET_RAW, TARGET_LIBRARY = 0.8, 3.0
RAW_INSERT = """
INSERT INTO events (stream_id, version, event_id, type, data, metadata, occurred_at)
SELECT $1, v, id, t, d, m, o
FROM unnest($2::int[], $3::uuid[], $4::text[], $5::jsonb[], $6::jsonb[], $7::timestamptz[])
    AS batch(v, id, t, d, m, o)
"""
CONCURRENCY = (1, 16)


async def main(args: argparse.Namespace) -> None:
    report = common.Report("append", args)
    count = args.courses or (20 if args.quick else 400)
    courses = simulated_courses(count)
    total = events_in(courses)
    report.add("courses", count)
    report.add("events", total, f"{sum(len(c) for c in courses)} appends")
    async with common.throwaway_database() as dsn:
        report.add("postgres", await common.postgres_version(dsn))
        pool = await create_pool(dsn)
        store = PostgresEventStore(pool)
        for writers in CONCURRENCY:
            await _truncate(pool)
            raw = await _timed(total, _raw_appends(pool, courses, writers))
            await _truncate(pool)
            ours = await _timed(total, append_courses(store, courses, writers))
            report.add(f"c{writers}_raw_events_per_s", raw)
            report.add(f"c{writers}_store_events_per_s", ours)
            report.ratio(f"c{writers}_store_vs_raw", ours, raw, f">= {TARGET_RAW}")
            library = await _library_rate(dsn, courses, writers, total)
            if library is None:
                report.add(f"c{writers}_eventsourcing", "skipped: pip install 'eventsourcing[postgres]'")
            else:
                report.add(f"c{writers}_eventsourcing_events_per_s", library)
                report.ratio(f"c{writers}_store_vs_eventsourcing", ours, library, f">= {TARGET_LIBRARY}")
            report.add(f"c{writers}_load_average", common.load_average())
        await pool.close()
    report.finish()


async def _timed(events: int, work: Any) -> float:
    started = time.perf_counter()
    await work
    return common.rate(events, time.perf_counter() - started)


async def _truncate(pool: asyncpg.Pool) -> None:
    # No ANALYZE of the emptied table: statistics saying "0 rows" plan the store's version guard
    # as a sequential scan for the whole run (autovacuum re-analyzes only after a minute), which
    # made every append scan the rows before it. TRUNCATE leaves the statistics unknown, as a
    # freshly migrated database has them, and a running clinic's table is analyzed with its rows.
    await pool.execute("TRUNCATE events, course_summaries RESTART IDENTITY")


def _rows(batch: Batch) -> tuple[Any, ...]:
    """The store's own column arrays for the batch (RAW_INSERT's $1-$7: no version guard)."""
    return event_columns(batch.stream_id, batch.expected_version, batch.events)[:7]


async def _raw_appends(pool: asyncpg.Pool, courses: list[list[Batch]], writers: int) -> None:
    prepared = iter([[_rows(batch) for batch in course] for course in courses])

    async def writer() -> None:
        for course in prepared:
            for row in course:
                await pool.execute(RAW_INSERT, *row)

    await asyncio.gather(*(writer() for _ in range(writers)))


# --- the eventsourcing library ------------------------------------------------------------------


def _library_env(dsn: str, writers: int) -> dict[str, str]:
    url = urllib.parse.urlsplit(dsn)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": url.path.lstrip("/"),
        "POSTGRES_HOST": url.hostname or "127.0.0.1",
        "POSTGRES_PORT": str(url.port or 5432),
        "POSTGRES_USER": url.username or "postgres",
        "POSTGRES_PASSWORD": url.password or "",
        "POSTGRES_POOL_SIZE": str(writers),
        "POSTGRES_SCHEMA": "public",
        "CREATE_TABLE": "y",
    }


async def _library_rate(dsn: str, courses: list[list[Batch]], writers: int, total: int) -> float | None:
    try:
        from eventsourcing.application import Application  # noqa: PLC0415

        from bench.library_store import CourseStream  # noqa: PLC0415
    except ImportError:
        return None

    app: Application[UUID] = Application(env=_library_env(dsn, writers))
    prepared = iter(
        [[[(e.type, e.data(), e.metadata.model_dump(mode="json")) for e in b.events] for b in c] for c in courses]
    )

    def writer() -> None:
        for course in prepared:
            stream: CourseStream | None = None
            for batch in course:
                for kind, data, metadata in batch:
                    if stream is None:
                        stream = CourseStream(data, metadata)
                    else:
                        stream.record(kind, data, metadata)
                app.save(stream)

    def all_writers() -> float:
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=writers) as pool:
            for future in [pool.submit(writer) for _ in range(writers)]:
                future.result()
        return time.perf_counter() - started

    try:
        seconds = await asyncio.to_thread(all_writers)
    finally:
        app.close()
    return common.rate(total, seconds)


if __name__ == "__main__":
    parsed = common.parser(__doc__.splitlines()[0])
    parsed.add_argument("--courses", type=int, help="courses to append (default 400; quick 20)")
    common.run(main, parsed.parse_args())
