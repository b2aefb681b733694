"""The clinic's stored runs (migrations/0009): the latest huddle digest and the last
reconciliation's findings, as the console's "today" page and `course reconcile --last` read them."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import asyncpg
from pydantic import BaseModel, ConfigDict

from course.huddle import HuddleDigest
from course.reconcile import Finding


def _json(value: Any) -> Any:
    """A jsonb value: decoded already by a pool's codec (activities/event_store.py), or text."""
    return json.loads(value) if isinstance(value, str) else value


class ReconcileReport(BaseModel):
    model_config = ConfigDict(frozen=True)

    run_id: str
    made_at: datetime
    courses_checked: int
    findings: list[Finding]


async def last_reconcile(db: asyncpg.Pool | asyncpg.Connection) -> ReconcileReport | None:
    run = await db.fetchrow(
        "SELECT run_id, made_at, body FROM clinic_runs WHERE kind = 'reconcile' ORDER BY made_at DESC LIMIT 1"
    )
    if run is None:
        return None
    rows = await db.fetch(
        "SELECT subject, stream_id, code, detail FROM reconcile_findings WHERE run_id = $1 ORDER BY code, subject",
        run["run_id"],
    )
    body = _json(run["body"])
    return ReconcileReport(
        run_id=run["run_id"],
        made_at=run["made_at"],
        courses_checked=int(body.get("courses_checked", 0)),
        findings=[
            Finding(
                subject=r["subject"],
                stream_id=r["stream_id"],
                code=r["code"],
                detail=_json(r["detail"]),
            )
            for r in rows
        ],
    )


async def latest_huddle(db: asyncpg.Pool | asyncpg.Connection) -> HuddleDigest | None:
    body = await db.fetchval("SELECT body FROM clinic_runs WHERE kind = 'daily_huddle' ORDER BY made_at DESC LIMIT 1")
    if body is None:
        return None
    return HuddleDigest.model_validate(_json(body))
