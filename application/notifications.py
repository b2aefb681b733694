"""Notifications as operations read them: the `notifications` outbox, by course or the latest.

Recipients are shown by kind only: addresses live in the contact tables, never here. Used by
`course notifications` and by the API's reads (application/reads.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from application.courses import CourseNotFound, parse_course_id
from workflows.inputs import workflow_id

ATTENTION = ("failed", "undeliverable", "delivery_uncertain")
# A claim older than this with no outcome: its attempt died and no retry has settled it yet.
STALE_SENDING = timedelta(minutes=10)

_COLUMNS = """
SELECT stream_id, idempotency_key, purpose, recipient, due_at, created_at, delivered_at, channel,
       status, attempts, last_error, message_id, claimed_at
FROM notifications
"""


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
