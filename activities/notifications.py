"""Patient and staff notifications: an outbox for exactly-once intent, then a channel."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import structlog
from temporalio import activity

from activities.ports import Channel, DeliveryResult, Notification, Outbox

log = structlog.get_logger(__name__)


class InMemoryOutbox:
    def __init__(self) -> None:
        self.rows: dict[str, Notification] = {}
        self.delivered: dict[str, str] = {}

    async def record(self, notification: Notification) -> bool:
        self.rows.setdefault(notification.idempotency_key, notification)
        return notification.idempotency_key not in self.delivered

    async def mark_delivered(self, key: str, channel: str, at: datetime) -> None:
        self.delivered.setdefault(key, channel)


class PostgresOutbox:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def record(self, notification: Notification) -> bool:
        delivered = await self._pool.fetchval(
            """
            WITH inserted AS (
                INSERT INTO notifications (idempotency_key, stream_id, purpose, recipient,
                                           recipient_id, due_at)
                VALUES ($1, $2, $3, $4, $5, $6)
                ON CONFLICT (idempotency_key) DO NOTHING
                RETURNING delivered_at
            )
            SELECT delivered_at FROM inserted
            UNION ALL
            SELECT delivered_at FROM notifications WHERE idempotency_key = $1
            LIMIT 1
            """,
            notification.idempotency_key,
            notification.stream_id,
            notification.purpose,
            notification.recipient,
            notification.recipient_id,
            notification.due_at,
        )
        return delivered is None

    async def mark_delivered(self, key: str, channel: str, at: datetime) -> None:
        await self._pool.execute(
            "UPDATE notifications SET delivered_at = $2, channel = $3 "
            "WHERE idempotency_key = $1 AND delivered_at IS NULL",
            key,
            at,
            channel,
        )


class ConsoleChannel:
    """Writes the notification to the log: for development and for clinics without a gateway."""

    name = "console"

    async def deliver(self, notification: Notification) -> None:
        # Purpose and opaque ids only: the message text is rendered by the real channel.
        log.info(
            "notification delivered",
            channel=self.name,
            key=notification.idempotency_key,
            purpose=notification.purpose,
            recipient=notification.recipient,
        )


class MemoryChannel:
    name = "memory"

    def __init__(self) -> None:
        self.sent: list[Notification] = []

    async def deliver(self, notification: Notification) -> None:
        self.sent.append(notification)


class NotificationActivities:
    def __init__(self, outbox: Outbox, channel: Channel) -> None:
        self._outbox = outbox
        self._channel = channel

    @activity.defn
    async def send_notification(self, notification: Notification) -> DeliveryResult:
        if not await self._outbox.record(notification):
            return DeliveryResult(delivered=False, duplicate=True)
        await self._channel.deliver(notification)
        await self._outbox.mark_delivered(notification.idempotency_key, self._channel.name, datetime.now(UTC))
        return DeliveryResult(delivered=True, duplicate=False)
