"""The access log: one append-only row per read of a course (migrations/0006_access_log.sql).

Rows hold codes and opaque ids only. The table refuses UPDATE, DELETE and TRUNCATE, so nothing the
service does can take a read back; this module only ever inserts and selects.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal
from uuid import UUID

import asyncpg
from pydantic import BaseModel, ConfigDict

from course.access import BreakGlassReason, Read
from course.commands import Actor, Role

Channel = Literal["api", "console", "cli"]


class AccessRecord(BaseModel):
    model_config = ConfigDict(frozen=True)

    staff_id: str
    role: Role
    what: str
    channel: Channel
    break_glass: BreakGlassReason | None
    read_at: datetime


class AccessLog:
    def __init__(self, db: asyncpg.Pool | asyncpg.Connection) -> None:
        self._db = db

    async def append(
        self,
        actor: Actor,
        courses: Sequence[str | UUID],
        what: Read,
        channel: Channel,
        break_glass: BreakGlassReason | None = None,
    ) -> None:
        """One row per course read, in one statement: a list of 200 courses is one insert."""
        if not courses:
            return
        await self._db.execute(
            "INSERT INTO access_log (staff_id, role, course_id, what, channel, break_glass) "
            "SELECT $1, $2, course, $4, $5, $6 FROM unnest($3::uuid[]) AS course",
            actor.id,
            actor.role.value,
            [UUID(str(course)) for course in courses],
            what.value,
            channel,
            break_glass.value if break_glass else None,
        )

    async def append_report(self, actor: Actor, what: Read, channel: Channel) -> None:
        """A report's read: one row naming no course (the report names none)."""
        await self._db.execute(
            "INSERT INTO access_log (staff_id, role, course_id, what, channel) VALUES ($1, $2, NULL, $3, $4)",
            actor.id,
            actor.role.value,
            what.value,
            channel,
        )

    async def reports_read(self) -> list[AccessRecord]:
        rows = await self._db.fetch(
            "SELECT staff_id, role, what, channel, break_glass, read_at FROM access_log "
            "WHERE course_id IS NULL ORDER BY read_at, id"
        )
        return [AccessRecord.model_validate(dict(row)) for row in rows]

    async def reads_of(self, course_id: str | UUID) -> list[AccessRecord]:
        rows = await self._db.fetch(
            "SELECT staff_id, role, what, channel, break_glass, read_at FROM access_log "
            "WHERE course_id = $1 ORDER BY read_at, id",
            UUID(str(course_id)),
        )
        return [AccessRecord.model_validate(dict(row)) for row in rows]
