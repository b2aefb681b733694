"""The audit that proves, course by course, that nothing was lost or written twice, and the
ledger of what the fault suite did (its line goes into the issue's closing note).

The audit reads PostgreSQL (the event stream, the summary row, the outbox) and Temporal (the
workflow's state and history) independently and compares them.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from uuid import UUID

import asyncpg
from temporalio.api.enums.v1 import (
    EventType,
    PendingActivityState,
    PendingWorkflowTaskState,
    WorkflowExecutionStatus,
    WorkflowTaskFailedCause,
)
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client

from activities.event_store import PostgresEventStore
from activities.ports import APPEND_EVENTS, AppendResult
from application.courses import CourseClient
from course.events import EventEnvelope
from course.state import fold
from workflows.inputs import workflow_id

# Timer-driven facts: how many fire depends on how fast clinicians act, so the audit checks them
# by key (each at most once, each reminder in the outbox once) instead of by count.
TIMER_EVENTS = frozenset({"ReminderSent", "FollowUpOverdue"})
ELIGIBILITY = "EligibilityChecked"
# Workflow task failures that mean a bug (code raised, or replay diverged), never a fault we injected.
BUG_CAUSES = frozenset(
    {
        WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_NON_DETERMINISTIC_ERROR,
        WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_WORKFLOW_WORKER_UNHANDLED_FAILURE,
    }
)
# Where a stored reminder's outbox row may end up: settled, once. `delivery_uncertain`: an attempt
# died between handing the message to the channel and recording it, so it is never sent again;
# `undeliverable`: no address on file. Never left `pending` or `sending`.
SETTLED = frozenset({"delivered", "delivery_uncertain", "undeliverable"})


@dataclass
class Ledger:
    """What the fault suite did and found: the closing note's numbers."""

    courses: int = 0
    crashes: int = 0
    database_outages: int = 0
    server_restarts: int = 0
    graceful_stops: int = 0
    events_checked: int = 0
    duplicates: int = 0
    appends_retried: int = 0
    appends_already_stored: int = 0  # retried appends whose first attempt had committed
    retries: Counter[str] = field(default_factory=Counter)

    @property
    def outages(self) -> int:
        return self.database_outages + self.server_restarts

    def line(self) -> str:
        return (
            f"faults: courses run {self.courses}, crashes injected {self.crashes} (SIGKILL), "
            f"outages survived {self.outages} ({self.database_outages} PostgreSQL, "
            f"{self.server_restarts} Temporal server restart), graceful stops {self.graceful_stops}, "
            f"events checked {self.events_checked}, duplicates found {self.duplicates}; "
            f"appends retried {self.appends_retried} ({self.appends_already_stored} found their events "
            f"already stored and wrote nothing), client retries with the same request id {sum(self.retries.values())}"
        )


@dataclass
class Audit:
    """PostgreSQL against Temporal, course by course."""

    client: CourseClient
    pool: asyncpg.Pool
    ledger: Ledger
    workflow_task_failures: Counter[str] = field(default_factory=Counter)
    uncertain_deliveries: int = 0
    eligibility_after_close: int = 0

    async def course(self, course: UUID | str, expected: Counter[str], *, timers: bool = True) -> list[EventEnvelope]:
        """The stream is exactly `expected`, plus, if `timers`, timer facts each fired at most once.

        With `timers`, the payer's answer may also be missing from a closed course: a worker that
        died with the eligibility check in flight leaves it to time out (30 s) and retry, and an
        answer that arrives after the course closed is moot (the decider records nothing).
        """
        stream = workflow_id(course)
        events = await PostgresEventStore(self.pool).read(stream)
        state = await self.client.state(course)
        problems: list[str] = []
        versions = [e.version for e in events]
        if versions != list(range(1, len(events) + 1)):
            problems.append(f"versions are not 1..{len(events)}: {versions}")
        duplicates = _repeats(Counter(e.event_id for e in events))

        clinical = Counter(e.type for e in events if not (timers and e.type in TIMER_EVENTS))
        if timers and state.terminal and expected[ELIGIBILITY] and not clinical[ELIGIBILITY]:
            clinical[ELIGIBILITY] = 1
            self.eligibility_after_close += 1
        extra, missing = clinical - expected, expected - clinical
        duplicates += sum(n for kind, n in extra.items() if kind in expected)
        if extra:
            problems.append(f"more than expected: {dict(extra)}")
        if missing:
            problems.append(f"missing: {dict(missing)}")
        # Per kind of fact: a due item in the chair is flagged and announced under one key
        # (FollowUpOverdue and ReminderSent), each at most once.
        duplicates += _repeats(
            Counter((e.type, getattr(e.event, "key", None)) for e in events if e.type in TIMER_EVENTS)
        )

        reminders = sum(e.type == "ReminderSent" for e in events)
        rows = await self.pool.fetch("SELECT * FROM notifications WHERE stream_id = $1", stream)
        outbox = [_delivery(row) for row in rows]
        if len(outbox) != reminders or not set(outbox) <= SETTLED:
            problems.append(f"{reminders} reminders stored, outbox holds {len(outbox)}: {Counter(outbox)}")
        self.uncertain_deliveries += outbox.count("delivery_uncertain")

        if fold(None, events) != state:
            problems.append("fold(events) differs from the workflow's state")
        summary = await self.pool.fetchrow("SELECT version, phase FROM course_summaries WHERE stream_id = $1", stream)
        if summary is None or (summary["version"], summary["phase"]) != (state.version, state.phase.value):
            problems.append(f"course_summaries row {summary} does not match version {state.version}")

        await self._read_history(stream, problems)
        self.ledger.events_checked += len(events)
        self.ledger.duplicates += duplicates
        if duplicates:
            problems.append(f"{duplicates} duplicate(s)")
        assert not problems, f"{stream}: " + "; ".join(problems) + f"\n{[(e.version, e.type) for e in events]}"
        return events

    async def _read_history(self, stream: str, problems: list[str]) -> None:
        """Workflow tasks may time out when a worker dies, never fail on a bug; and every append
        that needed a second attempt is counted, with whether its first attempt had committed."""
        temporal = self.client.temporal
        appends: set[int] = set()
        attempts: dict[int, int] = {}
        async for event in temporal.get_workflow_handle(stream).fetch_history_events():
            match event.event_type:
                case EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                    cause = event.workflow_task_failed_event_attributes.cause
                    self.workflow_task_failures[WorkflowTaskFailedCause.Name(cause)] += 1
                    if cause in BUG_CAUSES:
                        problems.append(f"workflow task failed: {WorkflowTaskFailedCause.Name(cause)}")
                case EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                    if event.activity_task_scheduled_event_attributes.activity_type.name == APPEND_EVENTS:
                        appends.add(event.event_id)
                case EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                    started = event.activity_task_started_event_attributes
                    attempts[started.scheduled_event_id] = started.attempt
                case EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                    completed = event.activity_task_completed_event_attributes
                    if completed.scheduled_event_id in appends and attempts.get(completed.scheduled_event_id, 1) > 1:
                        self.ledger.appends_retried += 1
                        (result,) = await temporal.data_converter.decode(completed.result.payloads, [AppendResult])
                        self.ledger.appends_already_stored += result.written == 0


def _delivery(row: asyncpg.Record) -> str:
    """The row's delivery status (also for the outbox before it had a `status` column)."""
    fields = dict(row)
    return str(fields.get("status") or ("delivered" if fields["delivered_at"] is not None else "pending"))


def _repeats(counts: Counter[object]) -> int:
    return sum(n - 1 for n in counts.values() if n > 1)


async def position(pool: asyncpg.Pool) -> int:
    """The event store's high-water mark: it moves whenever any course's fact is stored."""
    return int(await pool.fetchval("SELECT coalesce(max(global_position), 0) FROM events"))


async def moved_past(pool: asyncpg.Pool, mark: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await position(pool) > mark:
            return True
        await asyncio.sleep(0.05)
    return False


async def diagnose(client: Client, stream: str, last: int = 25) -> str:
    """Where a workflow stands, for the message of a step that never got an answer."""
    handle = client.get_workflow_handle(stream)
    try:
        described = (await handle.describe()).raw_description
        events = [e async for e in handle.fetch_history_events()]
    except Exception as error:  # noqa: BLE001 - a diagnosis must not hide the failure it explains
        return f"{stream}: not describable ({error!r})"
    lines = [f"{stream}: {WorkflowExecutionStatus.Name(described.workflow_execution_info.status)}"]
    if described.HasField("pending_workflow_task"):
        task = described.pending_workflow_task
        lines.append(f"  pending workflow task: {PendingWorkflowTaskState.Name(task.state)}, attempt {task.attempt}")
    for pending in described.pending_activities:
        failure = None
        if pending.HasField("last_failure"):
            failure = await client.data_converter.decode_failure(pending.last_failure)
        lines.append(
            f"  pending activity {pending.activity_type.name}: {PendingActivityState.Name(pending.state)}, "
            f"attempt {pending.attempt}, last failure {failure!r}, worker {pending.last_worker_identity}"
        )
    for event in events[-last:]:
        lines.append(f"  {event.event_id:4d} {event.event_time.ToDatetime():%H:%M:%S.%f} {_about(event)}")
    return "\n".join(lines)


def _about(event: HistoryEvent) -> str:
    kind = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
    match event.event_type:
        case EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            return f"{kind} {event.workflow_execution_update_accepted_event_attributes.accepted_request.meta.update_id}"
        case EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED:
            return f"{kind} {event.workflow_execution_update_completed_event_attributes.meta.update_id}"
        case EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            return f"{kind} {event.activity_task_scheduled_event_attributes.activity_type.name}"
        case EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            return f"{kind} by {event.workflow_task_started_event_attributes.identity}"
        case EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            return f"{kind} {WorkflowTaskFailedCause.Name(event.workflow_task_failed_event_attributes.cause)}"
    return kind
