"""`course reconcile`: the clinic's reconciliation (workflows/clinic.py), an operator command.

`--last` lists the last run's findings from PostgreSQL (codes, stream ids and versions: no
clinical record); without it, the `clinic-reconcile` Schedule is triggered now, as the Temporal
UI's "Trigger" button does.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from worker.settings import Settings


def add_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "reconcile", help="compare Temporal with the event store now, or list the last run's findings (--last)"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--last", action="store_true", help="list the last reconciliation's findings")


async def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.last:
        return await _last(args, settings)
    from cli.main import _client  # noqa: PLC0415 - the operator's Temporal client
    from worker.schedules import RECONCILE_SCHEDULE  # noqa: PLC0415

    client = await _client(settings)
    await client.temporal.get_schedule_handle(RECONCILE_SCHEDULE).trigger()
    print(f"triggered {RECONCILE_SCHEDULE}; `course reconcile --last` lists its findings once it has run")
    return 0


async def _last(args: argparse.Namespace, settings: Settings) -> int:
    import asyncpg  # noqa: PLC0415 - keep the CLI's start fast

    from activities.event_store import init_connection  # noqa: PLC0415
    from application.clinic_runs import last_reconcile  # noqa: PLC0415
    from course.reconcile import digest_lines  # noqa: PLC0415
    from worker.database import database_url  # noqa: PLC0415

    conn = await asyncpg.connect(database_url(settings.database_url, settings.course_data_dir))
    try:
        await init_connection(conn)
        report = await last_reconcile(conn)
    finally:
        await conn.close()
    if report is None:
        print("no reconciliation has run yet (schedule clinic-reconcile; `course reconcile` runs one now)",
              file=sys.stderr)  # fmt: skip
        return 1
    if args.json:
        print(json.dumps(report.model_dump(mode="json"), indent=2))
        return 0
    print(f"run {report.run_id}: {report.courses_checked} course(s) checked")
    print("\n".join(digest_lines(report.findings, report.made_at)))
    return 0
