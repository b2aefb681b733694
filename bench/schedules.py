"""What the clinic's scheduled runs cost: one reconciliation and one morning huddle over N open courses.

    python -m bench.schedules [--quick] [--courses 200,1000]

Both query every running course's `state` (8 at a time) and the reconciliation also describes
each one, so their time grows with the clinic; past the worker's cache (WORKER_MAX_CACHED_WORKFLOWS,
1,000) each query replays an evicted course. Each size runs each workflow three times on the dev
server (SQLite, WAL) with PostgreSQL, courses opened and their payer's answer stored.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import asyncpg

from activities.clinic import ClinicActivities
from activities.eligibility import SelfPayProvider
from activities.event_store import PostgresEventStore
from activities.notifications import MemoryChannel, PostgresOutbox
from application.courses import CourseClient
from bench import common
from bench.courses import opening
from worker.database import create_pool
from worker.main import activities_for, build_worker
from workflows.clinic import DailyHuddleWorkflow, ReconcileWorkflow

RUNS = 3


async def _answered(pool: asyncpg.Pool, streams: list[str]) -> None:
    """Each course's payer's answer lands on its own: wait (bounded) until every one is stored."""
    for _ in range(1200):
        stored = await pool.fetchval(
            "SELECT count(*) FROM course_summaries WHERE stream_id = ANY($1::text[]) AND version >= 2", streams
        )
        if stored >= len(streams):
            return
        await asyncio.sleep(0.5)
    raise TimeoutError("the payers' answers were not all stored within 10 minutes")


async def main(args: argparse.Namespace) -> None:
    report = common.Report("schedules", args)
    sizes = [20] if args.quick else [int(n) for n in args.courses.split(",")]
    async with (
        common.temporal_dev_server(Path(tempfile.mkdtemp()), args.sqlite_synchronous) as env,
        common.throwaway_database() as dsn,
    ):
        pool = await create_pool(dsn)
        try:
            for size in sizes:
                queue = common.task_queue("schedules")
                clinic = ClinicActivities(env.client, pool, task_queue=queue, time_zone="Europe/Berlin")
                store, outbox = PostgresEventStore(pool), PostgresOutbox(pool)
                activities = activities_for(store, SelfPayProvider(), outbox, MemoryChannel(), schedules=clinic)
                async with build_worker(env.client, queue, activities):
                    courses = CourseClient(env.client, queue)
                    opened: list[str] = []
                    for start in range(0, size, 20):
                        batch = [courses.open(opening()) for _ in range(min(20, size - start))]
                        opened += [f"course-{c}" for c in await asyncio.gather(*batch)]
                    await _answered(pool, opened)
                    for name, workflow in (("reconcile", ReconcileWorkflow), ("huddle", DailyHuddleWorkflow)):
                        seconds = []
                        for run in range(RUNS):
                            started = time.monotonic()
                            await env.client.execute_workflow(
                                workflow.run, id=f"clinic-{name}-bench-{size}-{run}", task_queue=queue
                            )
                            seconds.append(time.monotonic() - started)
                        report.add(f"{name}_{size}_courses_median_s", round(sorted(seconds)[RUNS // 2], 2))
        finally:
            await pool.close()
    report.finish()


if __name__ == "__main__":
    parsed = common.parser(__doc__ or "")
    parsed.add_argument("--courses", default="200,1000", help="open courses per size, comma-separated")
    common.run(main, parsed.parse_args())
