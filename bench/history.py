"""History size: Temporal history events for one complete six-session course, per maintenance
cycle, and the run length that continue-as-new keeps a years-long course under.

    python -m bench.history [--quick] [--cycles N]

1. One full course (bench/courses.py) and its baseline CourseShapeWorkflow (same updates,
   activities and fired timers): events, bytes, and what they are made of. Target <= 400 events.
2. A course in maintenance with a 10 ms maintenance "day" (a 30-day cycle in 0.3 s): history
   events and bytes added per cycle (reminder timer, notification, ReminderSent, session).
3. Cycles until the run continues as new: the longest run's length against the workflow's
   bound (HISTORY_EVENTS_PER_RUN, or the server's suggestion). --quick asks the server to
   suggest continue-as-new at 150 events (like tests/integration/test_long_maintenance.py)
   so the hand-over is seen in seconds; the full run uses the server's defaults.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

from temporalio.client import Client

from activities.eligibility import SelfPayProvider
from activities.event_store import PostgresEventStore
from activities.notifications import PostgresOutbox
from application.courses import CourseClient
from bench import common
from bench.baseline_workflows import CourseShapeWorkflow, NoopActivities
from bench.courses import (
    ReminderBoard,
    Timings,
    drive_course,
    drive_shape,
    full_course,
    maintenance_policy,
    monitored_course,
    monitored_policy,
    until_maintenance,
)
from course.commands import MaintenanceKind
from tests import story
from worker.database import create_pool
from worker.main import activities_for, build_worker
from workflows.inputs import workflow_id
from workflows.treatment_course import HISTORY_EVENTS_PER_RUN

TARGET = 400  # the first target (issue 7); issue 21's is the ratio to the shape
RATIO_TARGET = 1.05
SESSION_REMINDERS = 6
QUICK_SUGGEST_AFTER = 150


async def main(args: argparse.Namespace) -> None:
    report = common.Report("history", args)
    report.add("sqlite", f"journal_mode=WAL synchronous={args.sqlite_synchronous}")
    extra = (
        ["--dynamic-config-value", f"limit.historyCount.suggestContinueAsNew={QUICK_SUGGEST_AFTER}"]
        if args.quick
        else []
    )
    with tempfile.TemporaryDirectory(prefix="bench-history-") as workdir:
        async with common.throwaway_database() as dsn:
            report.add("postgres", await common.postgres_version(dsn))
            pool = await create_pool(dsn)
            board = ReminderBoard()
            activities = activities_for(PostgresEventStore(pool), SelfPayProvider(), PostgresOutbox(pool), board)
            async with common.temporal_dev_server(Path(workdir) / "a", args.sqlite_synchronous) as env:
                await _one_course(env.client, board, activities, report)
                await _maintenance_cycles(env.client, board, activities, report, cycles=args.cycles or 10)
            if args.quick:
                async with common.temporal_dev_server(Path(workdir) / "b", args.sqlite_synchronous, extra) as env:
                    await _continue_as_new(env.client, board, activities, report, bound=QUICK_SUGGEST_AFTER)
            else:
                async with common.temporal_dev_server(Path(workdir) / "c", args.sqlite_synchronous) as env:
                    await _continue_as_new(env.client, board, activities, report, bound=HISTORY_EVENTS_PER_RUN)
            await pool.close()
    report.finish()


async def _one_course(client: Client, board: ReminderBoard, activities: Sequence[Any], report: common.Report) -> None:
    queue, base_queue = common.task_queue("course"), common.task_queue("shape")
    async with build_worker(client, queue, activities):
        course = await drive_course(CourseClient(client, queue), board, full_course(), Timings())
        unannounced = await drive_course(CourseClient(client, queue), board, full_course(schedule=False), Timings())
    async with common.course_worker(client, base_queue, [NoopActivities(board).noop], workflows=[CourseShapeWorkflow]):
        shape = await drive_shape(client, base_queue, board, full_course(), Timings())
    async with build_worker(client, queue, activities):
        monitored = await drive_course(
            CourseClient(client, queue), board, monitored_course(), Timings(), policy=monitored_policy()
        )
    real = report.add("course_history", await common.history_shape(client, workflow_id(course)))
    watched = report.add("monitored_course_history", await common.history_shape(client, workflow_id(monitored)))
    report.ratio("monitored_vs_course_events", watched["events"], real["events"])
    base = report.add("baseline_history", await common.history_shape(client, shape))
    report.add("course_events", real["events"], f"target <= {TARGET}: {_verdict(real['events'])}")
    report.ratio("course_vs_baseline_events", real["events"], base["events"], f"<= {RATIO_TARGET}")
    report.add(
        "course_beyond_shape",
        {
            "events": real["events"] - base["events"],
            "search_attribute_upserts": real["search_attribute_upserts"] - base["search_attribute_upserts"],
            "timer_replans": (real["timers_started"] - base["timers_started"]) + real["timers_canceled"],
            "workflow_task_events": 3 * (real["workflow_tasks"] - base["workflow_tasks"]),
        },
        "what the course's history holds that the shape's does not",
    )
    report.ratio("course_vs_baseline_bytes", real["bytes"], base["bytes"])
    plain = report.add("unscheduled_course_history", await common.history_shape(client, workflow_id(unannounced)))
    report.add(
        "unscheduled_course_events", plain["events"], f"no session scheduled, no reminder; {_verdict(plain['events'])}"
    )


def _verdict(events: int) -> str:
    return "met" if events <= TARGET else "missed"


async def _into_maintenance(client: Client, queue: str, board: ReminderBoard) -> tuple[CourseClient, UUID]:
    courses = CourseClient(client, queue)
    steps = until_maintenance(interval_days=30)
    course = await drive_course(courses, board, steps, Timings(), wait_for_result=False, policy=maintenance_policy())
    return courses, course


async def _cycle(courses: CourseClient, board: ReminderBoard, course: UUID, number: int) -> None:
    await board.wait(workflow_id(course), SESSION_REMINDERS + number)
    session = story.maintenance_session(datetime.now(UTC))
    await courses.record(course, session, story.NURSE, request_id=f"maint-{course}-{number}")


async def _maintenance_cycles(
    client: Client,
    board: ReminderBoard,
    activities: Sequence[Any],
    report: common.Report,
    cycles: int,
) -> None:
    queue = common.task_queue("maint")
    async with build_worker(client, queue, activities):
        courses, course = await _into_maintenance(client, queue, board)
        await _cycle(courses, board, course, 1)  # the first reminder was planned before the plan
        before = await common.history_shape(client, workflow_id(course))
        for number in range(2, cycles + 2):
            await _cycle(courses, board, course, number)
        after = await common.history_shape(client, workflow_id(course))
    per_cycle = {key: round((after[key] - before[key]) / cycles, 1) for key in after}
    report.add("maintenance_cycles_measured", cycles)
    report.add("per_maintenance_cycle", per_cycle)


async def _continue_as_new(
    client: Client,
    board: ReminderBoard,
    activities: Sequence[Any],
    report: common.Report,
    bound: int,
) -> None:
    queue = common.task_queue("can")
    async with build_worker(client, queue, activities):
        courses, course = await _into_maintenance(client, queue, board)
        first_run = (await client.get_workflow_handle(workflow_id(course)).describe()).run_id
        number = 0
        while True:
            number += 1
            await _cycle(courses, board, course, number)
            if (await client.get_workflow_handle(workflow_id(course)).describe()).run_id != first_run:
                break
            if number > 400:
                raise RuntimeError("no continue-as-new after 400 maintenance cycles")
        for _ in range(3):  # a few cycles into the next run
            number += 1
            await _cycle(courses, board, course, number)
        runs = [r async for r in client.list_workflows(f"WorkflowId = '{workflow_id(course)}'")]
        lengths = sorted([(await common.history_shape(client, r.id, r.run_id))["events"] for r in runs], reverse=True)
        closing = story.maintenance_plan(kind=MaintenanceKind.NONE, interval_days=None)
        await courses.record(course, closing, story.PRESCRIBER)
    report.add("continue_as_new_bound", bound, "workflow bound, or the server's suggestion in --quick")
    report.add("cycles_until_continue_as_new", number - 3)
    report.add("run_lengths", lengths, "events per run, longest first")
    report.add("longest_run_events", lengths[0])


if __name__ == "__main__":
    parsed = common.parser(__doc__.splitlines()[0])
    parsed.add_argument("--cycles", type=int, help="maintenance cycles measured for the per-cycle size (10)")
    common.run(main, parsed.parse_args())
