"""The clinic's scheduled workflows, started by Temporal Schedules (worker/schedules.py).

`ClinicDailyHuddle` (schedule `clinic-daily-huddle`, each morning in the clinic's zone) gathers
what today holds and sends the digest to operations and each clinician their own part;
`ClinicReconcile` (schedule `clinic-reconcile`, hourly) compares Temporal with the event store,
marks each course it finds something about `NeedsAttention` and sends operations one digest. The
work is in activities (activities/clinic.py); the digests go through the notifications outbox,
keyed by the run's workflow id, so a retried or replayed run sends each once. Neither takes an
input: what they need (the zone, the thresholds) is the worker's configuration.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.clinic_messages import GATHER_HUDDLE, RECONCILE_COURSES, HuddleRun, ReconcileRun
    from activities.ports import Notification
    from workflows import delivery
    from workflows.ui_text import for_operations

HUDDLE_WORKFLOW = "ClinicDailyHuddle"
RECONCILE_WORKFLOW = "ClinicReconcile"
GATHER_RETRY = RetryPolicy(initial_interval=timedelta(seconds=5), maximum_interval=timedelta(minutes=1))
# A digest not delivered within this is left `failed` in the outbox (and in tomorrow's digest).
NOTIFY_WITHIN = timedelta(minutes=10)


async def _deliver(notifications: list[Notification]) -> int:
    """Send each digest; returns how many were delivered. A failed one stays in the outbox."""

    async def sent(notification: Notification) -> bool:
        summary = f"send {notification.purpose} to {notification.recipient}"
        result = await delivery.send(notification, within=NOTIFY_WITHIN, summary=summary)
        return result is not None and (result.delivered or result.duplicate)

    return sum(await asyncio.gather(*(sent(n) for n in notifications)))


@workflow.defn(name=HUDDLE_WORKFLOW)
class DailyHuddleWorkflow:
    @workflow.run
    async def run(self) -> dict[str, int]:
        gathered: HuddleRun = await workflow.execute_activity(
            GATHER_HUDDLE,
            result_type=HuddleRun,
            start_to_close_timeout=timedelta(minutes=5),
            schedule_to_close_timeout=timedelta(hours=1),
            retry_policy=GATHER_RETRY,
            summary=for_operations("gather today's huddle"),
        )
        delivered = await _deliver(gathered.notifications)
        digest = gathered.digest
        return {
            "sessions_today": len(digest.sessions_today),
            "expected_in_monitoring": len(digest.expected_in_monitoring),
            "follow_ups_overdue": len(digest.follow_ups_overdue),
            "reviews_pending": len(digest.reviews_pending),
            "notifications_failed": len(digest.notifications_failed),
            "needs_attention": len(digest.needs_attention),
            "digests_delivered": delivered,
        }


@workflow.defn(name=RECONCILE_WORKFLOW)
class ReconcileWorkflow:
    @workflow.run
    async def run(self) -> dict[str, int]:
        run: ReconcileRun = await workflow.execute_activity(
            RECONCILE_COURSES,
            result_type=ReconcileRun,
            start_to_close_timeout=timedelta(minutes=10),
            schedule_to_close_timeout=timedelta(minutes=50),  # before the next hourly run
            retry_policy=GATHER_RETRY,
            summary=for_operations("compare Temporal with the event store"),
        )
        delivered = await _deliver([run.notification] if run.notification else [])
        return {
            "courses_checked": run.courses_checked,
            "findings": len(run.findings),
            "marked": len(run.marked),
            "cleared": len(run.cleared),
            "digests_delivered": delivered,
        }
