"""Course throughput: N concurrent six-session courses through the whole life cycle, one worker.

    python -m bench.throughput [--quick] [--sizes 200,1000]

Measure: courses per second, from the first open to the last course's result, against the
baseline CourseShapeWorkflow (same updates, activities and fired timers; no domain, no
PostgreSQL) on the same dev server, one worker at a time. Target: ratio >= 0.8.
Also printed: each side's update latencies under that load, and both histories' shapes.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from activities.eligibility import SelfPayProvider
from activities.event_store import PostgresEventStore
from activities.notifications import PostgresOutbox
from application.courses import CourseClient
from bench import common
from bench.baseline_workflows import CourseShapeWorkflow, NoopActivities
from bench.courses import ReminderBoard, Timings, drive_course, drive_shape, full_course
from worker.database import create_pool
from worker.main import activities_for, build_worker
from workflows.inputs import workflow_id

TARGET = 0.95


async def main(args: argparse.Namespace) -> None:
    report = common.Report("throughput", args)
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else ([10] if args.quick else [200, 1000])
    report.add("sqlite", f"journal_mode=WAL synchronous={args.sqlite_synchronous}")
    steps = full_course()
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as workdir:
        async with (
            common.temporal_dev_server(Path(workdir), args.sqlite_synchronous) as env,
            common.throwaway_database() as dsn,
        ):
            report.add("postgres", await common.postgres_version(dsn))
            pool = await create_pool(dsn)
            board = ReminderBoard()
            real_queue, base_queue = common.task_queue("course"), common.task_queue("shape")
            real = CourseClient(env.client, real_queue)

            def real_worker():  # type: ignore[no-untyped-def]
                store = PostgresEventStore(pool)
                return build_worker(
                    env.client, real_queue, activities_for(store, SelfPayProvider(), PostgresOutbox(pool), board)
                )

            def base_worker():  # type: ignore[no-untyped-def]
                return common.course_worker(
                    env.client, base_queue, [NoopActivities(board).noop], workflows=[CourseShapeWorkflow]
                )

            # One course of each, unloaded: warms both workers and proves the shapes match.
            async with real_worker():
                course = await drive_course(real, board, steps, Timings())
                real_shape = await common.history_shape(env.client, workflow_id(course))
            async with base_worker():
                shape_id = await drive_shape(env.client, base_queue, board, steps, Timings())
                base_shape = await common.history_shape(env.client, shape_id)
            report.add("course_history", real_shape)
            report.add("baseline_history", base_shape)
            same = all(real_shape[k] == base_shape[k] for k in ("updates", "timers_fired")) and (
                real_shape["activities"] + real_shape["local_activities"] == base_shape["activities"]
            )
            report.add("same_shape", same, "updates, activities (remote or local) and fired timers")

            for n in sizes:
                async with base_worker():
                    base = await _run(n, lambda t: drive_shape(env.client, base_queue, board, steps, t))
                profile = f"{args.profile}/throughput-n{n}-course.speedscope.json" if args.profile else None
                async with real_worker(), common.profiled(profile):
                    course = await _run(n, lambda t: drive_course(real, board, steps, t))
                report.add(f"n{n}_baseline_courses_per_s", base["rate"])
                report.add(f"n{n}_course_courses_per_s", course["rate"])
                report.ratio(f"n{n}_ratio", course["rate"], base["rate"], f">= {TARGET}")
                report.add(f"n{n}_baseline_update_ms", base["latency"])
                report.add(f"n{n}_course_update_ms", course["latency"])
                report.add(f"n{n}_update_timeouts", {"baseline": base["timeouts"], "course": course["timeouts"]})
                report.add(f"n{n}_load_average", common.load_average())
            await pool.close()
    report.finish()


async def _run(n: int, drive) -> dict[str, object]:  # type: ignore[no-untyped-def]
    timings = Timings()
    started = time.monotonic()
    await asyncio.gather(*(drive(timings) for _ in range(n)))
    elapsed = max(timings.finished) - started
    return {
        "rate": common.rate(n, elapsed),
        "seconds": round(elapsed, 1),
        "latency": common.percentiles(timings.latencies()),
        "timeouts": timings.timeouts,
    }


if __name__ == "__main__":
    parsed = common.parser(__doc__.splitlines()[0])
    parsed.add_argument("--sizes", help="comma-separated course counts (default 200,1000; quick 10)")
    parsed.add_argument("--profile", help="folder for py-spy profiles of the worker during each course run")
    common.run(main, parsed.parse_args())
