"""Sending one notification through the outbox activity, as every workflow here does it.

The outbox keys each notification, so a send re-run after a crash, a retry or a reset delivers
once. A notification not delivered in time leaves its outbox row `failed` (it shows in `course
notifications --attention` and in the next huddle digest): a mail relay outage never fails or
holds the workflow that sent it.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.ports import SEND_NOTIFICATION, DeliveryResult, Notification
    from workflows.ui_text import for_operations

NOTIFY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(seconds=30))
SEND_ATTEMPT = timedelta(seconds=30)


async def send(notification: Notification, *, within: timedelta, summary: str) -> DeliveryResult | None:
    """The delivery's result, or None when it was not delivered within `within`. `summary` is
    what operations read on the activity in the Temporal UI: codes and staff roles, no patient data."""
    try:
        result: DeliveryResult = await workflow.execute_activity(
            SEND_NOTIFICATION,
            notification,
            result_type=DeliveryResult,
            start_to_close_timeout=SEND_ATTEMPT,
            schedule_to_close_timeout=within,
            retry_policy=NOTIFY_RETRY,
            summary=for_operations(summary),
        )
    except ActivityError:
        workflow.logger.warning("notification not delivered", extra={"purpose": notification.purpose})
        return None
    return result
