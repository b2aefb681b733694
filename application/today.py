"""The console's "today" page: the latest morning huddle and the last reconciliation, narrowed to
what the reader may see (course/huddle.py `part_for`: operations all, a clinician the courses
they read routinely), each course named recorded in the access log as listed."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict

from application.clinic_runs import last_reconcile, latest_huddle
from application.reads import CourseReads
from course.access import Read
from course.commands import Actor, Role
from course.huddle import HuddleDigest, part_for
from course.reconcile import Finding


class Today(BaseModel):
    model_config = ConfigDict(frozen=True)

    digest: HuddleDigest | None
    # The last reconciliation's findings: operations' alone (codes about the service, not care).
    reconciled_at: datetime | None
    findings: list[Finding]


def _is_course_id(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


async def today(reads: CourseReads, actor: Actor) -> Today:
    digest = await latest_huddle(reads.pool)
    part = part_for(digest, actor) if digest is not None else None
    report = await last_reconcile(reads.pool) if actor.role is Role.OPERATIONS else None
    named: set[str] = set()
    if part is not None:
        for items in (part.sessions_today, part.expected_in_monitoring, part.follow_ups_overdue,
                      part.reviews_pending, part.needs_attention):  # fmt: skip
            named |= {i.course_id for i in items}
        named |= {n.course_id for n in part.notifications_failed if n.course_id}
    if report is not None:
        named |= {f.course_id for f in report.findings if f.course_id}
    courses = sorted(c for c in named if _is_course_id(c))
    if courses:
        await reads.access.append(actor, courses, Read.LIST, reads.channel)
    return Today(
        digest=part,
        reconciled_at=report.made_at if report else None,
        findings=report.findings if report else [],
    )
