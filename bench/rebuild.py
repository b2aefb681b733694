"""Projection rebuild: events per second rebuilding course_summaries from events
(PostgresEventStore.rebuild_summaries), against the raw read rate of the same rows.

    python -m bench.rebuild [--quick] [--courses 2000]

The events are full six-session courses made offline by the real decider and appended through
PostgresEventStore (bench/courses.py). Raw: the same SELECT through the same server-side cursor
and prefetch in one transaction, rows counted and nothing decoded beyond asyncpg's own jsonb
codec: the rate at which the rebuild could at best read its input.
"""

from __future__ import annotations

import argparse
import time

import asyncpg

from bench import common
from bench.courses import events_in, seeded_store, simulated_courses

READ = (
    "SELECT global_position, event_id, stream_id, version, type, data, metadata, occurred_at "
    "FROM events ORDER BY global_position"
)
PREFETCH = 5000  # rebuild_summaries' default batch size


async def main(args: argparse.Namespace) -> None:
    report = common.Report("rebuild", args)
    count = args.courses or (50 if args.quick else 2000)
    courses = simulated_courses(count)
    async with seeded_store(report, courses) as (pool, store):
        report.add("courses", count)
        report.add("events", events_in(courses))
        raw_seconds = await _raw_read(pool)  # also warms the cache for the rebuild
        raw_seconds = min(raw_seconds, await _raw_read(pool))
        started = time.perf_counter()
        applied = await store.rebuild_summaries()
        rebuild_seconds = time.perf_counter() - started
        summaries = await pool.fetchval("SELECT count(*) FROM course_summaries")
        assert applied == events_in(courses) and summaries == count, (applied, summaries)
        raw = report.add("raw_read_events_per_s", common.rate(applied, raw_seconds))
        rebuilt = report.add("rebuild_events_per_s", common.rate(applied, rebuild_seconds))
        report.ratio("rebuild_vs_raw_read", rebuilt, raw)
        report.add("load_average_after", common.load_average())
    report.finish()


async def _raw_read(pool: asyncpg.Pool) -> float:
    started = time.perf_counter()
    rows = 0
    async with pool.acquire() as conn, conn.transaction():
        async for _ in conn.cursor(READ, prefetch=PREFETCH):
            rows += 1
    return time.perf_counter() - started


if __name__ == "__main__":
    parsed = common.parser(__doc__.splitlines()[0])
    parsed.add_argument("--courses", type=int, help="courses in the event store (default 2000; quick 50)")
    common.run(main, parsed.parse_args())
