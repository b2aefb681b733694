"""Build and run the worker: the composition root of the service."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import structlog
from temporalio.client import Client
from temporalio.worker import Worker

from activities.eligibility import EligibilityActivities, provider_named
from activities.event_store import EventStoreActivities, PostgresEventStore
from activities.notifications import ConsoleChannel, NotificationActivities, PostgresOutbox
from activities.ports import Channel, EligibilityProvider, EventStore, Outbox
from worker.cluster import missing_search_attributes, registration_commands
from worker.converter import data_converter
from worker.database import create_pool, database_url, migrate
from worker.logging import configure_logging
from worker.settings import Settings
from workflows.treatment_course import TreatmentCourseWorkflow

log = structlog.get_logger(__name__)


def activities_for(store: EventStore, provider: EligibilityProvider, outbox: Outbox, channel: Channel) -> Sequence[Any]:
    return [
        EventStoreActivities(store).append_events,
        EligibilityActivities(provider).check_eligibility,
        NotificationActivities(outbox, channel).send_notification,
    ]


def build_worker(
    client: Client, task_queue: str, activities: Sequence[Any], *, graceful_shutdown: float = 10.0
) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[TreatmentCourseWorkflow],
        activities=activities,
        graceful_shutdown_timeout=timedelta(seconds=graceful_shutdown),
        activity_executor=ThreadPoolExecutor(max_workers=4),
    )


async def connect(settings: Settings) -> Client:
    return await Client.connect(
        settings.temporal_address, namespace=settings.temporal_namespace, data_converter=data_converter()
    )


class MissingSearchAttributes(Exception):
    """Courses would fail to publish their state to the Temporal UI: refuse to start."""


async def check_cluster(client: Client, settings: Settings) -> None:
    missing = await missing_search_attributes(client, settings.temporal_namespace)
    if missing:
        commands = "\n".join(registration_commands(settings.temporal_namespace, settings.temporal_address))
        raise MissingSearchAttributes(
            f"search attributes missing in namespace {settings.temporal_namespace}: {', '.join(missing)}.\n"
            f"Run `course setup-cluster`, or:\n{commands}"
        )


async def run_worker(settings: Settings, dsn: str | None = None, stop: asyncio.Event | None = None) -> None:
    client = await connect(settings)
    await check_cluster(client, settings)
    dsn = dsn or database_url(settings.database_url, settings.course_data_dir)
    await migrate(dsn)
    pool = await create_pool(dsn)
    try:
        worker = build_worker(
            client,
            settings.course_task_queue,
            activities_for(
                PostgresEventStore(pool),
                provider_named(settings.eligibility_provider),
                PostgresOutbox(pool),
                ConsoleChannel(),
            ),
            graceful_shutdown=settings.worker_graceful_shutdown_seconds,
        )
        stop = stop or asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        log.info("worker started", task_queue=settings.course_task_queue, namespace=settings.temporal_namespace)
        async with worker:
            await stop.wait()
        log.info("worker stopped")
    finally:
        await pool.close()


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    code = 0
    try:
        asyncio.run(run_worker(settings))
    except MissingSearchAttributes as missing:
        print(f"error: {missing}", file=sys.stderr)
        code = 1
    except Exception:
        log.exception("worker failed")
        code = 1
    # temporalio issue #300: the interpreter can crash at exit after a worker ran; leave cleanly.
    structlog.get_logger().info("exiting", code=code)
    os._exit(code)
