"""Reconciliation: does Temporal agree with the event store about each course?

Pure: an observation of one course (its workflow's status and the version its view has folded,
the stream's head in the event store, the `course_summaries` row) comes in, findings with stable
codes come out. The activity that gathers observations and the workflow that marks courses are
elsewhere (activities/clinic.py, workflows/clinic.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel, ConfigDict


class FindingCode(StrEnum):
    # Listed most serious first: a course with several findings is marked with the first.
    WORKFLOW_NOT_RUNNING = "workflow_not_running"  # the store says open, Temporal has no running course
    STREAM_BEHIND_WORKFLOW = "stream_behind_workflow"  # the workflow folded events the store does not hold
    STREAM_AHEAD_OF_WORKFLOW = "stream_ahead_of_workflow"  # the store holds events the workflow has not folded
    SUMMARY_BEHIND_STREAM = "summary_behind_stream"  # course_summaries lags the stream it projects
    WORKFLOW_NOT_ANSWERING = "workflow_not_answering"  # running, but no worker answered its query
    NOTIFICATION_STUCK_SENDING = "notification_stuck_sending"  # a claim with no outcome for too long


SEVERITY = {code: rank for rank, code in enumerate(FindingCode)}


class _Message(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class CourseObservation(_Message):
    """What each side says about one course, read at about the same moment.

    `workflow_status`: the execution status in lower case (`running`, `terminated`, `completed`,
    ...), None when Temporal has no such workflow. `workflow_version`: the version its view has
    folded, None when it did not answer (or is not running). `stream_head`: the last stored
    version, None for an empty stream. `summary_*`: the projection's row, None without one.
    """

    stream_id: str
    workflow_status: str | None
    workflow_version: int | None
    stream_head: int | None
    summary_version: int | None
    summary_open: bool


class Finding(_Message):
    """One disagreement. `subject` is the course's stream id, or a notification's key for a
    notification finding (whose `stream_id` then names its course). Codes and numbers only."""

    subject: str
    stream_id: str
    code: FindingCode
    detail: dict[str, int | str | None] = {}

    @property
    def course_id(self) -> str | None:
        return self.stream_id.removeprefix("course-") if self.stream_id.startswith("course-") else None


def course_findings(seen: CourseObservation) -> list[Finding]:
    def finding(code: FindingCode, **detail: int | str | None) -> Finding:
        return Finding(subject=seen.stream_id, stream_id=seen.stream_id, code=code, detail=detail)

    found: list[Finding] = []
    running = seen.workflow_status == "running"
    if seen.summary_open and not running:
        found.append(finding(FindingCode.WORKFLOW_NOT_RUNNING, status=seen.workflow_status or "not_found"))
    if running and seen.workflow_version is None:
        found.append(finding(FindingCode.WORKFLOW_NOT_ANSWERING))
    head = seen.stream_head or 0
    if running and seen.workflow_version is not None and seen.stream_head is not None:
        if seen.workflow_version > head:
            found.append(finding(FindingCode.STREAM_BEHIND_WORKFLOW, workflow=seen.workflow_version, stream=head))
        elif seen.workflow_version < head:
            found.append(finding(FindingCode.STREAM_AHEAD_OF_WORKFLOW, workflow=seen.workflow_version, stream=head))
    if seen.summary_version is not None and seen.summary_version < head:
        found.append(finding(FindingCode.SUMMARY_BEHIND_STREAM, summary=seen.summary_version, stream=head))
    return found


class SendingRow(_Message):
    """A notification the outbox holds as `sending`: its key, its course's stream, its claim."""

    key: str
    stream_id: str
    claimed_at: datetime | None


def stuck_notifications(rows: Iterable[SendingRow], now: datetime, threshold: timedelta) -> list[Finding]:
    """`sending` longer than the threshold: the attempt died and no retry has settled it."""
    return [
        Finding(
            subject=row.key,
            stream_id=row.stream_id,
            code=FindingCode.NOTIFICATION_STUCK_SENDING,
            detail={"minutes": int((now - row.claimed_at).total_seconds() // 60)},
        )
        for row in rows
        if row.claimed_at is not None and now - row.claimed_at > threshold
    ]


def confirmed(first: Sequence[Finding], again: Sequence[Finding]) -> list[Finding]:
    """The findings seen in both of two looks a moment apart. A step in flight is appended before
    its workflow folds it, so one look can catch the stream a version ahead for a few
    milliseconds: only a disagreement that stays is reported."""
    kept = {(f.subject, f.code, tuple(sorted(f.detail.items()))) for f in again}
    return [f for f in first if (f.subject, f.code, tuple(sorted(f.detail.items()))) in kept]


def marks(findings: Iterable[Finding]) -> dict[str, FindingCode]:
    """The code each course is marked with: its most serious finding's."""
    worst: dict[str, FindingCode] = {}
    for f in findings:
        if f.course_id is None:
            continue
        if f.course_id not in worst or SEVERITY[f.code] < SEVERITY[worst[f.course_id]]:
            worst[f.course_id] = f.code
    return worst


def digest_lines(findings: Sequence[Finding], made_at: datetime) -> list[str]:
    """One line per finding, most serious first: for the operations digest and `course reconcile`."""
    lines = [f"Reconciliation at {made_at:%Y-%m-%d %H:%M} UTC: {len(findings)} finding(s)"]
    for f in sorted(findings, key=lambda f: (SEVERITY[f.code], f.subject)):
        detail = " ".join(f"{k}={v}" for k, v in sorted(f.detail.items()))
        lines.append(f"  {f.code.value}  {f.subject}" + (f"  {detail}" if detail else ""))
    return lines
