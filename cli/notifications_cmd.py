"""`course notifications [COURSE_ID]`: what was sent, when, through which channel, and its status.

Read from the `notifications` outbox in PostgreSQL. Without a course id it lists the most recent
notifications of every course; `--attention` keeps what did not plainly arrive (failed,
undeliverable, delivery uncertain, or stuck sending), which operations follow up by hand.
Recipients are shown by kind only: addresses live in the contact tables, never here.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from cli.client import CourseNotFound, parse_course_id
from worker.settings import Settings
from workflows.inputs import workflow_id

ATTENTION = ("failed", "undeliverable", "delivery_uncertain")
# A claim older than this with no outcome: its attempt died and no retry has settled it yet.
STALE_SENDING = timedelta(minutes=10)

_COLUMNS = """
SELECT stream_id, idempotency_key, purpose, recipient, due_at, created_at, delivered_at, channel,
       status, attempts, last_error, message_id, claimed_at
FROM notifications
"""


def add_parser(sub: Any) -> None:
    parser = sub.add_parser("notifications", help="notifications sent: when, through which channel, status")
    parser.add_argument("course_id", nargs="?", help="one course (default: the most recent of all courses)")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--attention", action="store_true", help="only failed, undeliverable, uncertain or stuck notifications"
    )
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument(
        "--resend",
        metavar="KEY",
        help="send a failed or undeliverable notification again (after fixing its cause); never an uncertain one",
    )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _row(record: asyncpg.Record, now: datetime) -> dict[str, Any]:
    claimed = record["claimed_at"]
    stale = record["status"] == "sending" and claimed is not None and now - claimed > STALE_SENDING
    return {
        "course_id": record["stream_id"].removeprefix("course-"),
        "key": record["idempotency_key"],
        "purpose": record["purpose"],
        "recipient": record["recipient"],
        "due_at": _iso(record["due_at"]),
        "created_at": _iso(record["created_at"]),
        "delivered_at": _iso(record["delivered_at"]),
        "channel": record["channel"],
        "status": record["status"],
        "attempts": record["attempts"],
        "error": record["last_error"],
        "message_id": record["message_id"],
        "needs_attention": record["status"] in ATTENTION or stale,
    }


async def fetch_notifications(
    db: asyncpg.Connection | asyncpg.Pool, course_id: str | None, *, attention: bool = False, limit: int = 200
) -> list[dict[str, Any]]:
    """Notification rows, of one course (CourseNotFound if it has none and no summary) or the latest."""
    clauses: list[str] = []
    params: list[Any] = []
    stream = workflow_id(parse_course_id(course_id)) if course_id else None
    if stream:
        params.append(stream)
        clauses.append(f"stream_id = ${len(params)}")
    if attention:
        params += [list(ATTENTION), STALE_SENDING]
        statuses, stale = len(params) - 1, len(params)
        clauses.append(
            f"(status = ANY(${statuses}::text[]) OR (status = 'sending' AND claimed_at < now() - ${stale}::interval))"
        )
    where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
    order = "ORDER BY due_at, created_at" if stream else f"ORDER BY created_at DESC LIMIT {max(1, int(limit))}"
    # Only placeholders and fixed fragments are interpolated: every value is a bound parameter.
    records = await db.fetch(f"{_COLUMNS} {where} {order}", *params)
    if stream and not records and not await db.fetchval("SELECT 1 FROM course_summaries WHERE stream_id = $1", stream):
        raise CourseNotFound(str(course_id))
    now = datetime.now(UTC)
    return [_row(r, now) for r in records]


def _text(rows: list[dict[str, Any]], *, one_course: bool) -> str:
    if not rows:
        return "no notifications"
    lines = []
    for r in rows:
        course = "" if one_course else f"{r['course_id']}  "
        outcome = r["status"] + (f" ({r['error']})" if r["error"] else "") + (" !" if r["needs_attention"] else "")
        sent = r["delivered_at"] or "-"
        lines.append(
            f"{course}{r['due_at']}  {r['purpose']:<20} {r['recipient']:<10} {r['channel'] or '-':<8} "
            f"{outcome:<32} sent {sent}  attempts {r['attempts']}"
        )
    return "\n".join(lines)


async def run(args: argparse.Namespace, settings: Settings) -> int:
    from worker.database import database_url  # noqa: PLC0415 - keep the CLI's start fast

    if args.resend:
        return await _resend(args, settings, database_url(settings.database_url, settings.course_data_dir))
    conn = await asyncpg.connect(database_url(settings.database_url, settings.course_data_dir))
    try:
        rows = await fetch_notifications(conn, args.course_id, attention=args.attention, limit=args.limit)
    finally:
        await conn.close()
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
