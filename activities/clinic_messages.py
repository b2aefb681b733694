"""What the clinic's scheduled workflows and their activities say to each other.

Apart from activities/clinic.py so the workflow sandbox never imports asyncpg or a Temporal client.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from activities.ports import Notification
from course.huddle import HuddleDigest
from course.reconcile import Finding

GATHER_HUDDLE = "gather_huddle"
RECONCILE_COURSES = "reconcile_courses"


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class HuddleRun(_Message):
    run_id: str
    digest: HuddleDigest
    notifications: list[Notification]


class ReconcileRun(_Message):
    run_id: str
    courses_checked: int
    findings: list[Finding]
    marked: dict[str, str]  # course id → the code signalled to its running workflow
    cleared: list[str]  # course ids whose earlier mark was lifted
    notification: Notification | None
