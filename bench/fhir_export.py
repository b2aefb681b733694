"""Bulk FHIR export: time and peak memory of exporting every course, at 200 courses and at N.

    python -m bench.fhir_export [--quick] [--courses 2000]

Each size gets a throwaway database seeded with whole six-session courses (made offline by the
real decider, bench/courses.py, appended through PostgresEventStore), one patient per course.
The export runs in a child process of its own, straight through as the workflow runs it (plan,
every batch, finish) through the worker's own activities (worker.main.fhir_exports): its peak
RSS (VmHWM) is the export's alone, seeding is not in it. Bounded memory means the
peak at N courses stays near the peak at 200; the time grows with the courses.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import asyncpg

from activities.event_store import PostgresEventStore
from bench import common
from bench.courses import append_courses, simulated_courses
from worker.database import create_pool

SMALL = 200


def _patients(tag: str, first: int, patients: int) -> Callable[[int], str]:
    return lambda i: f"pt-{tag}-{(first + i) % patients}"


async def seed(pool: asyncpg.Pool, count: int, patients: int | None = None) -> list[str]:
    """`count` whole courses; course i is patient i % `patients`'s (default one patient each)."""
    tag = uuid.uuid4().hex[:6]
    made: list[str] = []
    for start in range(0, count, 500):  # made and appended 500 at a time: the seeding stays small too
        courses = simulated_courses(min(500, count - start), patients=_patients(tag, start, patients or count))
        await append_courses(PostgresEventStore(pool), courses, 8)
        made += [course[0].stream_id.removeprefix("course-") for course in courses]
    return made


async def main(args: argparse.Namespace) -> None:
    report = common.Report("fhir_export", args)
    sizes = (20, 100) if args.quick else (SMALL, args.courses)
    for size in sizes:
        async with common.throwaway_database() as dsn:
            pool = await create_pool(dsn)
            await seed(pool, size)
            await pool.execute("VACUUM ANALYZE")
            events = await pool.fetchval("SELECT count(*) FROM events")
            await pool.close()
            with tempfile.TemporaryDirectory(prefix="bench-fhir-") as out:
                child = await asyncio.to_thread(
                    subprocess.run,
                    [sys.executable, "-m", "bench.fhir_export", "--child", dsn, out, "--batch", str(args.batch)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
            measured = json.loads(child.stdout.strip().splitlines()[-1])
            report.add(f"courses_{size}_events", events)
            report.add(f"courses_{size}_seconds", measured["seconds"])
            report.add(f"courses_{size}_courses_per_s", common.rate(size, measured["seconds"]))
            report.add(f"courses_{size}_rss_before_mib", measured["rss_before_mib"])
            report.add(f"courses_{size}_peak_rss_mib", measured["peak_rss_mib"])
            report.add(f"courses_{size}_lines", measured["lines"])
            report.add(f"courses_{size}_rss_mib_by_courses_done", measured["rss_curve"])
    small, large = sizes
    report.ratio("peak_rss_large_vs_small", report.values[f"courses_{large}_peak_rss_mib"],
                 report.values[f"courses_{small}_peak_rss_mib"])  # fmt: skip
    report.ratio("seconds_large_vs_small", report.values[f"courses_{large}_seconds"],
                 report.values[f"courses_{small}_seconds"])  # fmt: skip
    report.finish()


def high_water_kib() -> int:
    """This process's peak RSS (VmHWM). Not getrusage's ru_maxrss: Linux carries that across
    exec from the forked parent, so a child of a parent that held 2,000 seeded courses would
    report the parent's size as its own."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


async def child(dsn: str, out: Path, batch: int) -> None:
    """One export, straight through; prints its time, RSS before it and the process's peak RSS."""
    from temporalio.testing import ActivityEnvironment  # noqa: PLC0415 - the child's imports only

    from interop import bulk  # noqa: PLC0415
    from worker.main import fhir_exports  # noqa: PLC0415
    from worker.settings import Settings  # noqa: PLC0415

    pool = await create_pool(dsn)
    made = fhir_exports(pool, Settings(fhir_export_dir=out, fhir_export_batch_courses=batch))
    ask = bulk.BulkExportRequest(
        export_id=uuid.uuid4().hex,
        requested_by={"id": "ops-bench", "role": "operations"},
        request_url="https://bench.invalid/fhir/$export",
        files_url="https://bench.invalid/files/",
    )
    before = common.rss_bytes()
    started = time.perf_counter()
    plan = await made.plan_fhir_export(ask)
    checkpoint = bulk.Checkpoint()
    curve: list[tuple[int, float]] = []  # (courses done, RSS MiB) after each batch: flat, or growing?
    while not checkpoint.done:
        step = bulk.ExportBatch(request=ask, plan=plan, checkpoint=checkpoint)
        checkpoint = await ActivityEnvironment().run(made.export_fhir_batch, step)
        curve.append((checkpoint.courses, round(common.rss_bytes() / 2**20, 1)))
    manifest = await made.finish_fhir_export(bulk.ExportBatch(request=ask, plan=plan, checkpoint=checkpoint))
    seconds = time.perf_counter() - started
    await pool.close()
    peak_kib = high_water_kib()
    print(
        json.dumps(
            {
                "seconds": round(seconds, 2),
                "rss_before_mib": round(before / 2**20, 1),
                "peak_rss_mib": round(peak_kib / 1024, 1),
                "lines": sum(entry["count"] for entry in manifest["output"]),
                "rss_curve": curve[:: max(1, len(curve) // 10)] + curve[-1:],
            }
        )
    )


if __name__ == "__main__":
    parsed = common.parser(__doc__ or "")
    parsed.add_argument("--courses", type=int, default=2000, help="the larger size (the smaller is 200)")
    parsed.add_argument("--batch", type=int, default=100, help="courses per export batch (FHIR_EXPORT_BATCH_COURSES)")
    parsed.add_argument("--child", nargs=2, metavar=("DSN", "OUT"), help=argparse.SUPPRESS)
    arguments = parsed.parse_args()
    if arguments.child:
        asyncio.run(child(arguments.child[0], Path(arguments.child[1]), arguments.batch))
    else:
        common.run(main, arguments)
