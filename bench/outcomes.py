"""Outcome reports: the projection rebuilt from zero (events per second, against the raw read rate
of the same rows, as bench/rebuild.py), one course's catch-up, and a report read end to end.

    python -m bench.outcomes [--quick] [--courses 2000]

The events are bench/courses.py's full six-session courses, made by the real decider and appended
through PostgresEventStore. A report read is what `GET /reports/outcomes` does after the access
log: the high-water mark under the share lock, a catch-up with nothing new, every row read and
aggregated (application/outcomes.py, course/cohorts.py).
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

from application.outcomes import OutcomeProjection
from application.reports import OutcomeReports
from bench import common
from bench.courses import append_courses, events_in, seeded_store, simulated_courses
from bench.rebuild import _raw_read
from course.cohorts import outcome_report

READS = 20


async def main(args: argparse.Namespace) -> None:
    report = common.Report("outcomes", args)
    count = args.courses or (50 if args.quick else 2000)
    courses = simulated_courses(count)
    async with seeded_store(report, courses[:-1]) as (pool, store):
        report.add("courses", count)
        report.add("events", events_in(courses))
        raw_seconds = min(await _raw_read(pool), await _raw_read(pool))
        projection = OutcomeProjection(pool)
        started = time.perf_counter()
        applied = await projection.rebuild()
        rebuild_seconds = time.perf_counter() - started
        raw = report.add("raw_read_events_per_s", common.rate(applied, raw_seconds))
        rebuilt = report.add("rebuild_events_per_s", common.rate(applied, rebuild_seconds))
        report.ratio("rebuild_vs_raw_read", rebuilt, raw)

        await append_courses(store, courses[-1:], 1)  # one more course: what an incremental read folds
        started = time.perf_counter()
        caught_up = await projection.catch_up()
        report.add("catch_up_one_course_ms", round((time.perf_counter() - started) * 1000, 1), f"{caught_up} events")
        assert await pool.fetchval("SELECT count(*) FROM course_outcomes") == count

        high_water, reads = [], []
        thresholds = await OutcomeReports(pool, "api").thresholds()
        for _ in range(READS):
            started = time.perf_counter()
            await projection.high_water()
            high_water.append(time.perf_counter() - started)
            started = time.perf_counter()
            await projection.catch_up()
            outcome_report(await projection.outcomes(), thresholds, datetime.now(UTC))
            reads.append(time.perf_counter() - started)
        report.add("high_water_lock_ms", common.percentiles(high_water))
        report.add("report_read_ms", common.percentiles(reads))
        report.add("load_average_after", common.load_average())
    report.finish()


if __name__ == "__main__":
    parsed = common.parser(__doc__.splitlines()[0])
    parsed.add_argument("--courses", type=int, help="courses in the event store (default 2000; quick 50)")
    common.run(main, parsed.parse_args())
