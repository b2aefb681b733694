"""A worker process that dies (SIGKILL) right after the SMTP server accepted its message.

    python -m tests.integration.crashing_worker ADDRESS TASK_QUEUE DSN SMTP_PORT

It runs only the send_notification activity, so the death lands exactly between "delivered" and
"recorded as delivered": the one window an outbox cannot close by itself.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from temporalio.client import Client
from temporalio.worker import Worker

from activities.channels import SmtpChannel
from activities.contacts import PostgresContactDirectory
from activities.notifications import NotificationActivities, PostgresOutbox
from activities.ports import OutgoingMessage
from activities.templates import Clinic
from worker.converter import data_converter
from worker.database import create_pool


class DiesAfterDelivery:
    name = "smtp"

    def __init__(self, inner: SmtpChannel) -> None:
        self._inner = inner

    async def deliver(self, message: OutgoingMessage) -> None:
        await self._inner.deliver(message)
        os.kill(os.getpid(), signal.SIGKILL)


async def main(address: str, queue: str, dsn: str, smtp_port: int) -> None:
    client = await Client.connect(address, data_converter=data_converter())
    pool = await create_pool(dsn, max_size=2)
    channel = DiesAfterDelivery(SmtpChannel("127.0.0.1", smtp_port, "reminders@calm.example", tls="none"))
    activities = NotificationActivities(
        PostgresOutbox(pool), channel, PostgresContactDirectory(pool), Clinic(mail_domain="calm.example")
    )
    async with Worker(client, task_queue=queue, activities=[activities.send_notification]):
        await asyncio.sleep(60)  # bounded: the test kills us long before


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
