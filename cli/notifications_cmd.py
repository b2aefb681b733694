"""`course notifications [COURSE_ID]`: what was sent, when, through which channel, and its status.

Read through the API as the token's owner, like every read of course data: the read rules decide
(a course's care team and operations read its notifications; across courses is for operations) and
the access log records it. Without a course id it lists the most recent notifications of every
course; `--attention` keeps what did not plainly arrive (failed, undeliverable, delivery uncertain,
or stuck sending), which operations follow up by hand. Recipients are shown by kind only: addresses
live in the contact tables, never here.

`--resend KEY` stays an operator's command on the outbox itself (PostgreSQL and the notification
channel's settings, which the API does not hold): it sends a message again and shows no course data
beyond the notification's own status.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from application.courses import parse_course_id
from cli.tables import table
from course.access import BreakGlassReason
from worker.settings import Settings


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("notifications", help="notifications sent: when, through which channel, status")
    parser.add_argument("course_id", nargs="?", help="one course (default: the most recent of all courses)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--attention", action="store_true", help="only failed, undeliverable, uncertain or stuck notifications"
    )
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument(
        "--break-glass",
        choices=[r.value for r in BreakGlassReason],
        metavar="REASON",
        help="read a course's notifications outside your routine access, with a reason recorded with the read",
    )
    parser.add_argument(
        "--resend",
        metavar="KEY",
        help="send a failed or undeliverable notification again (after fixing its cause); never an uncertain one",
    )


def _text(rows: list[dict[str, Any]], *, one_course: bool) -> str:
    """Columns with headers; a trailing `!` marks what needs a person."""
    if not rows:
        return "no notifications"
    columns = ["DUE (UTC)", "PURPOSE", "TO", "CHANNEL", "STATUS", "SENT (UTC)", "ATTEMPTS"]
    header = tuple(columns if one_course else ["COURSE", *columns])
    cells: list[tuple[str, ...]] = []
    for r in rows:
        outcome = r["status"] + (f" ({r['error']})" if r["error"] else "") + (" !" if r["needs_attention"] else "")
        row = (
            _when(r["due_at"]),
            r["purpose"],
            r["recipient"],
            r["channel"] or "-",
            outcome,
            _when(r["delivered_at"]),
            str(r["attempts"]),
        )
        cells.append(row if one_course else (r["course_id"], *row))
    return table(header, cells)


def _when(moment: str | None) -> str:
    return moment[:16].replace("T", " ") if moment else "-"


async def run(args: argparse.Namespace, settings: Settings) -> int:
    from cli.main import _api  # noqa: PLC0415 - the CLI's one way to the API, as the token's owner
    from worker.database import database_url  # noqa: PLC0415 - keep the CLI's start fast

    if args.resend:
        return await _resend(args, settings, database_url(settings.database_url, settings.course_data_dir))
    course = parse_course_id(args.course_id) if args.course_id else None
    reason = BreakGlassReason(args.break_glass) if args.break_glass else None
    async with _api(settings) as api:
        rows = await api.notifications(course, reason, attention=args.attention, limit=args.limit)
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        print(_text(rows, one_course=bool(args.course_id)))
    return 0


async def _resend(args: argparse.Namespace, settings: Settings, dsn: str) -> int:
    from activities.contacts import PostgresContactDirectory  # noqa: PLC0415 - only for --resend
    from activities.ports import Contact  # noqa: PLC0415
    from cli.resend import CannotResend, resend  # noqa: PLC0415
    from worker.database import create_pool  # noqa: PLC0415
    from worker.main import clinic_from, notification_channel  # noqa: PLC0415

    operations = Contact(email=settings.notify_operations_email) if settings.notify_operations_email else None
    pool = await create_pool(dsn, max_size=2)
    try:
        outcome = await resend(
            pool,
            args.resend,
            notification_channel(settings),
            PostgresContactDirectory(pool, operations),
            clinic_from(settings),
        )
    except CannotResend as refused:
        print(f"error: {refused}", file=sys.stderr)
        return 2
    finally:
        await pool.close()
    if args.json:
        print(json.dumps(outcome, indent=2))
    else:
        error = f" ({outcome['error']})" if outcome["error"] else ""
        print(f"{outcome['key']}: {outcome['status']}{error}")
    return 0 if outcome["status"] == "delivered" else 1
