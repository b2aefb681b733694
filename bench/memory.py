"""Worker memory: RSS per cached course mid-dosing, and RSS with 1,000 and 10,000 open courses
waiting in maintenance under a bounded workflow cache.

    python -m bench.memory [--quick] [--mid-dosing 1000] [--open 1000,10000] [--caches 1000,11000]

The worker runs in a child process (this script with --child: worker.main.build_worker's settings,
production activities and pool, a silent notification channel) so its RSS is the worker's alone.
1. Mid-dosing: K courses driven through assessment, preparation and three of six sessions (real
   updates, real reminders); RSS per cached course = (RSS after - RSS before) / K for a second
   batch of K in a worker of its own (the first batch also grows the heap, once), cache > 2K.
   Target <= 120 KiB. Baseline: K CourseShapeWorkflow runs given the same 19 updates and 3
   timers (no domain), and K idle BareUpdateWorkflow runs (the SDK's floor for a cached run).
2. Maintenance: courses started from the continue-as-new snapshot of a real course driven into
   maintenance (a 90-day plan: each waits on a timer), which is what a course that has been in
   maintenance for a while is. RSS at each count of open courses, once with each cache size: the
   recommended max_cached_workflows, and a cache larger than the number of courses (unbounded).
   Target: RSS bounded however many courses are open.
Also printed: the state's JSON size and the baseline RSS of an idle worker.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
from temporalio.client import Client

from activities.eligibility import SelfPayProvider
from activities.event_store import PostgresEventStore
from activities.notifications import PostgresOutbox
from activities.ports import OutgoingMessage
from application.courses import CourseClient
from bench import common
from bench.baseline_workflows import BareUpdateWorkflow, CourseShapeWorkflow, NoopActivities
from bench.courses import (
    Timings,
    drive_course,
    drive_shape,
    full_course,
    in_the_chair,
    mid_dosing,
    monitored_policy,
    opening,
    until_maintenance,
)
from course.state import CourseState
from worker.converter import data_converter
from worker.database import create_pool
from worker.main import activities_for
from workflows.inputs import workflow_id
from workflows.treatment_course import TreatmentCourseWorkflow

KIB = 1024
TARGET_KIB = 120
DRIVERS = 50  # courses driven at once
STARTERS = 64  # courses started at once


class SilentChannel:
    """Delivers nowhere and keeps nothing: the worker's RSS must not grow with messages sent."""

    name = "bench-silent"

    async def deliver(self, message: OutgoingMessage) -> None:
        return None


class OutboxBoard:
    """Waits for a course's reminders by reading the outbox the child worker writes."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def wait(self, stream_id: str, count: int) -> None:
        deadline = time.monotonic() + 600
        query = "SELECT count(*) FROM notifications WHERE stream_id = $1 AND status = 'delivered'"
        while await self._pool.fetchval(query, stream_id) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{stream_id}: reminder {count} never came")
            await asyncio.sleep(0.05)


class ChildWorker:
    """This script with --child: a worker in its own process, stopped by closing its stdin."""

    def __init__(self, env_address: str, dsn: str, queue: str, max_cached: int) -> None:
        self.queue = queue
        self._process = subprocess.Popen(
            [sys.executable, "-m", "bench.memory", "--child", env_address, dsn, queue, str(max_cached)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=Path(__file__).resolve().parent.parent,
        )

    async def ready(self) -> None:
        assert self._process.stdout is not None
        line = await asyncio.to_thread(self._process.stdout.readline)
        if line.strip() != b"ready":
            raise RuntimeError(f"child worker did not start: {line!r}")

    def rss(self) -> int:
        return common.rss_bytes(self._process.pid)

    async def settled_rss(self, quiet: float = 2.0, longest: float = 30.0) -> int:
        """RSS once it stops moving (the worker has finished what it was given)."""
        deadline = time.monotonic() + longest
        last = self.rss()
        while time.monotonic() < deadline:
            await asyncio.sleep(quiet)
            now = self.rss()
            if abs(now - last) < 0.005 * last:
                return now
            last = now
        return last

    async def stop(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        await asyncio.to_thread(self._process.wait, 60)


async def main(args: argparse.Namespace) -> None:
    report = common.Report("memory", args)
    mid = args.mid_dosing or (15 if args.quick else 1000)
    counts = [int(n) for n in (args.open or ("60" if args.quick else "1000,10000")).split(",")]
    caches = [int(n) for n in (args.caches or ("30,100" if args.quick else "1000,11000")).split(",")]
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as workdir:
        async with (
            common.temporal_dev_server(Path(workdir), args.sqlite_synchronous) as env,
            common.throwaway_database() as dsn,
        ):
            report.add("postgres", await common.postgres_version(dsn))
            pool = await create_pool(dsn)
            address = env.client.service_client.config.target_host
            board = OutboxBoard(pool)

            snapshot, idle = await _cached_runs(report, env.client, dsn, board, mid)

            for cache in caches:
                rss = await _open_in_maintenance(env.client, address, dsn, snapshot, cache=cache, counts=counts)
                report.add(f"cache{cache}_rss_mib_by_open_courses", {n: round(b / KIB**2, 1) for n, b in rss.items()})
                if cache >= max(counts):
                    n = max(counts)
                    report.add(f"cache{cache}_kib_per_cached_maintenance_course", round((rss[n] - rss[0]) / n / KIB, 1))
            report.add("idle_reference_mib", idle)
            report.add("load_average_after", common.load_average())
            await pool.close()
    report.finish()


@asynccontextmanager
async def _own_worker(
    client: Client, dsn: str, board: OutboxBoard, name: str, mid: int
) -> AsyncIterator[tuple[ChildWorker, CourseClient]]:
    """A child worker of its own, warmed up (every code path once), stopped at the end.

    Each kind of run is measured in a worker of its own: measured one after another in one worker,
    a kind reused the memory the kind before it had freed and looked cheaper, the next one dearer
    (the four kinds summed to the same RSS in two runs that split it 121 / 139 KiB for the course).
    """
    address = client.service_client.config.target_host
    child = ChildWorker(address, dsn, common.task_queue(name), max_cached=2 * mid + 100)
    try:
        await child.ready()
        courses = CourseClient(client, child.queue)
        await drive_course(courses, board, full_course(), Timings())
        await _start_bare(client, child.queue)
        await drive_shape(client, child.queue, None, mid_dosing(), Timings())
        yield child, courses
    finally:
        await child.stop()


async def _cached_runs(
    report: common.Report, client: Client, dsn: str, board: OutboxBoard, mid: int
) -> tuple[CourseState, float]:
    """Part 1: KiB per cached run of each kind; returns a maintenance snapshot and the idle RSS."""
    report.add("mid_dosing_courses", mid)
    async with _own_worker(client, dsn, board, "bare", mid) as (child, _):
        idle = report.add("idle_worker_rss_mib", round(await child.settled_rss() / KIB**2, 1))
        _, bare = await _per_cached(child, mid, lambda: _start_bare(client, child.queue))
    report.add("baseline_bare_kib_per_cached_run", bare, "an idle one-update workflow: the SDK's floor")
    async with _own_worker(client, dsn, board, "shape", mid) as (child, _):
        _, shape = await _per_cached(
            child, mid, lambda: drive_shape(client, child.queue, None, mid_dosing(), Timings(), finish=False)
        )
    report.add("baseline_shape_kib_per_cached_run", shape, "19 updates, 3 timers, no domain")
    async with _own_worker(client, dsn, board, "chair", mid) as (child, courses):
        _, chair = await _per_cached(
            child,
            mid,
            lambda: drive_course(
                courses, board, in_the_chair(), Timings(), wait_for_result=False, policy=monitored_policy()
            ),
        )
    async with _own_worker(client, dsn, board, "mid", mid) as (child, courses):
        first, per_course = await _per_cached(
            child, mid, lambda: drive_course(courses, board, mid_dosing(), Timings(), wait_for_result=False)
        )
        report.add("mid_dosing_kib_per_cached_course", per_course, f"target <= {TARGET_KIB}")
        report.target("mid_dosing_kib_per_cached_course", f"<= {TARGET_KIB}")
        report.add("mid_dosing_first_batch_kib_per_course", first, "the first batch in a fresh worker: heap growth too")
        report.add("in_monitoring_kib_per_cached_course", chair, "mid-dosing, monitored, a patient in the chair")
        report.ratio("mid_dosing_vs_shape", per_course, shape)
        rss = round(child.rss() / KIB**2, 1)
        report.add("mid_dosing_rss_mib", rss, "worker RSS with the mid-dosing courses cached")
        maintained = await drive_course(
            courses, board, until_maintenance(interval_days=90), Timings(), wait_for_result=False
        )
        snapshot = await courses.state(maintained)
    report.add("state_json_bytes_maintenance", len(snapshot.model_dump_json()))
    history = await common.history_shape(client, workflow_id(maintained))
    report.add("history_bytes_maintenance_run", history["bytes"])
    return snapshot, idle


async def _per_cached(child: ChildWorker, count: int, one) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """KiB of worker RSS per run left cached by a first and a second batch of `count` calls of `one`.

    The first batch in a fresh worker also pays for the heap its peak of concurrent work leaves
    behind (arenas freed but not returned), which a worker pays once, not per course: printed, not
    counted. The second batch, with that heap in place, is what each more cached run costs."""
    first = await _batch(child, count, one)
    return first, await _batch(child, count, one)


async def _batch(child: ChildWorker, count: int, one) -> float:  # type: ignore[no-untyped-def]
    before = await child.settled_rss()
    await _bounded(DRIVERS, [one() for _ in range(count)])
    after = await child.settled_rss()
    return round((after - before) / count / KIB, 1)


async def _start_bare(client: Client, queue: str) -> None:
    await client.start_workflow(BareUpdateWorkflow.run, id=f"bare-{uuid.uuid4()}", task_queue=queue)


async def _bounded(limit: int, work: list) -> None:  # type: ignore[type-arg]
    gate = asyncio.Semaphore(limit)

    async def one(job) -> None:  # type: ignore[no-untyped-def]
        async with gate:
            await job

    await asyncio.gather(*(one(job) for job in work))


async def _open_in_maintenance(
    client: Client, address: str, dsn: str, snapshot: CourseState, *, cache: int, counts: list[int]
) -> dict[int, int]:
    """Start courses in maintenance from a snapshot, `counts` at a time; RSS at each count."""
    child = ChildWorker(address, dsn, common.task_queue(f"maint{cache}"), max_cached=cache)
    await child.ready()
    courses = CourseClient(client, child.queue)
    rss = {0: await child.settled_rss()}
    opened = 0
    for target in counts:
        await _bounded(STARTERS, [_open_from(courses, snapshot) for _ in range(target - opened)])
        opened = target
        query = f"TaskQueue = '{child.queue}' AND CoursePhase = 'maintenance' AND ExecutionStatus = 'Running'"
        while True:  # every course has run its first workflow task
            if (await client.count_workflows(query)).count >= opened:
                break
            await asyncio.sleep(1)
        rss[target] = await child.settled_rss()
        print(f"  cache {cache}: {target} open, RSS {rss[target] / KIB**2:.1f} MiB", flush=True)
    await child.stop()
    return rss


async def _open_from(courses: CourseClient, snapshot: CourseState) -> None:
    course_id = uuid.uuid4()
    state = snapshot.model_copy(update={"course_id": course_id, "stream_id": workflow_id(course_id)})
    await courses.open(opening(course_id).model_copy(update={"snapshot": state}))


# --- the child: a worker and nothing else --------------------------------------------------------


async def child_main(address: str, dsn: str, queue: str, max_cached: int) -> None:
    client = await Client.connect(address, data_converter=data_converter(common.bench_settings()))
    pool = await create_pool(dsn)
    activities = activities_for(PostgresEventStore(pool), SelfPayProvider(), PostgresOutbox(pool), SilentChannel())
    activities = [*activities, NoopActivities().noop]
    workflows = [TreatmentCourseWorkflow, CourseShapeWorkflow, BareUpdateWorkflow]
    async with common.course_worker(client, queue, activities, workflows=workflows, max_cached_workflows=max_cached):
        print("ready", flush=True)
        await asyncio.to_thread(sys.stdin.read)  # until the parent closes our stdin
    await pool.close()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _, _, address, dsn, queue, cached = sys.argv
        try:
            asyncio.run(child_main(address, dsn, queue, int(cached)))
        finally:
            sys.stdout.flush()
            os._exit(0)
    parsed = common.parser(__doc__.splitlines()[0])
    parsed.add_argument("--mid-dosing", type=int, help="courses driven to mid-dosing (default 1000; quick 15)")
    parsed.add_argument("--open", help="open maintenance courses, comma-separated (default 1000,10000; quick 60)")
    parsed.add_argument("--caches", help="max_cached_workflows values to compare (default 1000,11000; quick 30,100)")
    common.run(main, parsed.parse_args())
