"""Course throughput: N concurrent six-session courses through the whole life cycle, one worker.

    python -m bench.throughput [--quick] [--sizes 200,1000] [--upserts] [--repeat 3]

Measure: courses per second, from the first open to the last course's result, against the
baseline CourseShapeWorkflow (same updates, activities and fired timers; no domain, no
PostgreSQL) on the same dev server, one worker at a time. Target: ratio >= 0.95.
Also printed: each side's update latencies under that load, both histories' shapes, and the CPU
milliseconds one course costs the worker process (with the drivers), the Temporal dev server and
PostgreSQL. `--upserts` adds a third side, the shape upserting a search attribute where a course
does: what the course's search attributes cost, apart from everything else it does.
One run's ratio moves by about 0.1 between runs of the same commit (bench/FINDINGS.md, fourth
round): `--repeat R` runs R rounds per size, alternating which side goes first, prints each round
and reports the median round with the range of the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from temporalio.worker import Worker

from activities.eligibility import SelfPayProvider
from activities.event_store import PostgresEventStore
from activities.notifications import PostgresOutbox
from application.courses import CourseClient
from bench import common
from bench.baseline_workflows import CourseShapeWorkflow, NoopActivities, Shape
from bench.courses import REMINDER_AFTER, ReminderBoard, Timings, drive_course, drive_shape, full_course
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

            def real_worker() -> Worker:
                store = PostgresEventStore(pool)
                return build_worker(
                    env.client, real_queue, activities_for(store, SelfPayProvider(), PostgresOutbox(pool), board)
                )

            def base_worker() -> Worker:
                return common.course_worker(
                    env.client, base_queue, [NoopActivities(board).noop], workflows=[CourseShapeWorkflow]
                )

            # One course of each, unloaded: warms both workers and proves the shapes match.
            async with real_worker():
                warm = await drive_course(real, board, steps, Timings())
                real_shape = await common.history_shape(env.client, workflow_id(warm))
            async with base_worker():
                shape_id = await drive_shape(env.client, base_queue, board, steps, Timings())
                base_shape = await common.history_shape(env.client, shape_id)
            report.add("course_history", real_shape)
            report.add("baseline_history", base_shape)
            same = all(real_shape[k] == base_shape[k] for k in ("updates", "timers_fired")) and (
                real_shape["activities"] + real_shape["local_activities"] == base_shape["activities"]
            )
            report.add("same_shape", same, "updates, activities (remote or local) and fired timers")

            upserting = Shape(timer_seconds=REMINDER_AFTER.total_seconds(), upserts=True)
            if args.upserts:
                async with base_worker():
                    shape_id = await drive_shape(env.client, base_queue, board, steps, Timings(), shape=upserting)
                    report.add("upserting_baseline_history", await common.history_shape(env.client, shape_id))

            for n in sizes:

                async def shape(n: int = n) -> dict[str, Any]:
                    async with base_worker():
                        return await _run(n, lambda t: drive_shape(env.client, base_queue, board, steps, t))

                async def upserts(n: int = n) -> dict[str, Any]:
                    async with base_worker():
                        return await _run(
                            n, lambda t: drive_shape(env.client, base_queue, board, steps, t, shape=upserting)
                        )

                async def course(number: int, n: int = n) -> dict[str, Any]:
                    name = f"throughput-n{n}-course" + (f"-{number + 1}" if number else "")
                    profile = f"{args.profile}/{name}.speedscope.json" if args.profile else None
                    async with real_worker(), common.profiled(profile):
                        return await _run(n, lambda t: drive_course(real, board, steps, t))

                await _size(report, n, args, shape=shape, upserts=upserts if args.upserts else None, course=course)
            await pool.close()
    report.finish()


async def _size(
    report: common.Report,
    n: int,
    args: argparse.Namespace,
    *,
    shape: Callable[[], Awaitable[dict[str, Any]]],
    upserts: Callable[[], Awaitable[dict[str, Any]]] | None,
    course: Callable[[int], Awaitable[dict[str, Any]]],
) -> None:
    rounds = []
    for number in range(args.repeat):
        # Alternate which side goes first, so a machine slowing down or speeding up over the
        # rounds does not favour one side.
        measured: dict[str, dict[str, Any]] = {}
        if number % 2:
            measured["course"] = await course(number)
        measured["shape"] = await shape()
        if upserts is not None:
            measured["upserts"] = await upserts()
        if not number % 2:
            measured["course"] = await course(number)
        rounds.append(measured)
        print(f"n{n} round {number + 1}: {_round(measured)}", flush=True)
    if args.repeat > 1:
        report.add(f"n{n}_rounds", [_round(m) for m in rounds], "courses/s per round; the median round below")
        ratios = [m["course"]["rate"] / m["shape"]["rate"] for m in rounds]
        report.add(f"n{n}_ratio_range", [round(min(ratios), 3), round(max(ratios), 3)])
    median = sorted(rounds, key=lambda m: m["course"]["rate"] / m["shape"]["rate"])[len(rounds) // 2]
    if upserts is not None:
        _report_upserts(report, n, median["upserts"], median["shape"])
    _report_size(report, n, median["course"], median["shape"])


def _round(measured: dict[str, dict[str, Any]]) -> dict[str, float]:
    rates = {side: result["rate"] for side, result in measured.items()}
    return {**rates, "ratio": round(rates["course"] / rates["shape"], 3)}


def _report_size(report: common.Report, n: int, course: dict[str, Any], base: dict[str, Any]) -> None:
    report.add(f"n{n}_baseline_courses_per_s", base["rate"])
    report.add(f"n{n}_course_courses_per_s", course["rate"])
    report.ratio(f"n{n}_ratio", course["rate"], base["rate"], f">= {TARGET}")
    report.add(f"n{n}_baseline_update_ms", base["latency"])
    report.add(f"n{n}_course_update_ms", course["latency"])
    report.add(f"n{n}_update_timeouts", {"baseline": base["timeouts"], "course": course["timeouts"]})
    report.add(f"n{n}_baseline_cpu_ms_per_course", base["cpu_ms"])
    report.add(f"n{n}_course_cpu_ms_per_course", course["cpu_ms"])
    report.add(f"n{n}_load_average", common.load_average())


def _report_upserts(report: common.Report, n: int, upserts: dict[str, Any], base: dict[str, Any]) -> None:
    report.add(f"n{n}_upserting_baseline_courses_per_s", upserts["rate"])
    report.add(
        f"n{n}_upserting_baseline_vs_baseline", round(upserts["rate"] / base["rate"], 3), "the upserts' cost alone"
    )
    report.add(f"n{n}_upserting_baseline_cpu_ms_per_course", upserts["cpu_ms"])


async def _run(n: int, drive) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    timings = Timings()
    cpu_before = common.cpu_seconds()
    started = time.monotonic()
    await asyncio.gather(*(drive(timings) for _ in range(n)))
    elapsed = max(timings.finished) - started
    return {
        "cpu_ms": common.cpu_ms_per(n, cpu_before, common.cpu_seconds()),
        "rate": common.rate(n, elapsed),
        "seconds": round(elapsed, 1),
        "latency": common.percentiles(timings.latencies()),
        "timeouts": timings.timeouts,
    }


if __name__ == "__main__":
    parsed = common.parser(__doc__.splitlines()[0])
    parsed.add_argument("--sizes", help="comma-separated course counts (default 200,1000; quick 10)")
    parsed.add_argument("--profile", help="folder for py-spy profiles of the worker during each course run")
    parsed.add_argument(
        "--repeat", type=int, default=1, help="rounds per size, sides alternating first; the median round is reported"
    )
    parsed.add_argument("--upserts", action="store_true", help="also run the shape with the course's upserts")
    common.run(main, parsed.parse_args())
