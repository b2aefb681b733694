"""Step latency during a mail-relay outage against the same steps with a healthy relay.

    python -m bench.smtp_outage [--quick] [--courses 10]

Each course runs the full course (assessment, preparation, six sessions each scheduled the day
before, so every schedule makes a reminder fall due at once). Healthy: deliveries return at once.
Outage: every delivery hangs until the run ends (an SMTP relay that accepts the connection and
never answers), so a step that waited for one would wait for the whole run. p50 / p95 / p99 of
the clinicians' update calls in ms. Target (issue 15): outage p95 <= 1.5 x healthy p95.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from activities.eligibility import SelfPayProvider
from activities.event_store import PostgresEventStore
from activities.notifications import PostgresOutbox
from activities.ports import OutgoingMessage
from application.courses import CourseClient
from bench import common
from bench.courses import full_course, opening
from worker.database import create_pool
from worker.main import activities_for, build_worker

TARGET = 1.5


class Relay:
    """A channel that is either healthy or in an outage (every delivery hangs until `end`)."""

    name = "smtp"

    def __init__(self, *, down: bool) -> None:
        self.down = down
        self.hanging = 0
        self.back = asyncio.Event()

    async def deliver(self, message: OutgoingMessage) -> None:
        if self.down:
            self.hanging += 1
            await self.back.wait()


async def _run(env_client: object, pool: object, relay: Relay, courses: int) -> list[float]:
    queue = common.task_queue("smtp")
    store = PostgresEventStore(pool)  # type: ignore[arg-type]
    worker = build_worker(
        env_client,  # type: ignore[arg-type]
        queue,
        activities_for(store, SelfPayProvider(), PostgresOutbox(pool), relay),  # type: ignore[arg-type]
    )
    client = CourseClient(env_client, queue)  # type: ignore[arg-type]
    latencies: list[float] = []

    async def one() -> None:
        course = await client.open(opening())
        for index, step in enumerate(full_course()):
            actor, command = step.build(datetime.now(UTC))
            started = time.perf_counter()
            await client.record(course, command, actor, request_id=f"{course}-{index}")  # type: ignore[arg-type]
            latencies.append(time.perf_counter() - started)

    async with worker:
        try:
            await asyncio.gather(*(one() for _ in range(courses)))
        finally:
            relay.back.set()  # the relay comes back: deliveries end before the worker stops
    return latencies


async def main(args: argparse.Namespace) -> None:
    report = common.Report("smtp_outage", args)
    courses = args.courses or (2 if args.quick else 10)
    with tempfile.TemporaryDirectory(prefix="bench-smtp-") as workdir:
        async with (
            common.temporal_dev_server(Path(workdir), args.sqlite_synchronous) as env,
            common.throwaway_database() as dsn,
        ):
            pool = await create_pool(dsn)
            healthy = await _run(env.client, pool, Relay(down=False), courses)
            outage_relay = Relay(down=True)
            outage = await _run(env.client, pool, outage_relay, courses)
            await pool.close()
    report.add("courses", courses)
    report.add("steps_per_run", len(healthy))
    report.add("deliveries_hanging_during_outage", outage_relay.hanging)
    base = report.add("healthy_ms", common.percentiles(healthy))
    out = report.add("outage_ms", common.percentiles(outage))
    report.ratio("outage_p95_ratio", out["p95"], base["p95"], f"<= {TARGET}")
    report.add("load_average", common.load_average())
    report.finish()


if __name__ == "__main__":
    parsed = common.parser(__doc__.splitlines()[0])
    parsed.add_argument("--courses", type=int, help="concurrent courses per run (default 10; quick 2)")
    common.run(main, parsed.parse_args())
