"""A one-activity workflow for the delivery tests: send one notification, with Temporal's retries.

A short start-to-close timeout so a killed attempt is retried within seconds, not the 30 s the
course workflow allows.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from activities.ports import SEND_NOTIFICATION, DeliveryResult, Notification


@workflow.defn(name="NotifyOnce")
class NotifyOnce:
    @workflow.run
    async def run(self, notification: Notification) -> DeliveryResult:
        result: DeliveryResult = await workflow.execute_activity(
            SEND_NOTIFICATION,
            notification,
            result_type=DeliveryResult,
            start_to_close_timeout=timedelta(seconds=3),
            retry_policy=RetryPolicy(initial_interval=timedelta(milliseconds=200), maximum_attempts=5),
        )
        return result
