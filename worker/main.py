"""Build and run the worker: the composition root of the service."""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import asyncpg
import structlog
from temporalio.client import Client
from temporalio.worker import Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.channels import ConsoleChannel, SmtpChannel
from activities.clinic import ClinicActivities
from activities.contacts import PostgresContactDirectory
from activities.eligibility import EligibilityActivities, provider_named
from activities.event_store import EventStoreActivities, PostgresEventStore
from activities.fhir_export import FhirExportActivities
from activities.notifications import NotificationActivities, PostgresOutbox
from activities.ports import Channel, Contact, ContactDirectory, EligibilityProvider, EventStore, Outbox
from activities.templates import Clinic
from activities.x12 import X12HttpProvider
from interop.fhir_course import course_resources
from trust import keys
from worker import telemetry
from worker.cluster import missing_search_attributes, registration_commands
from worker.converter import data_converter
from worker.database import create_pool, database_url, migrate
from worker.health import Health, pool_probe, serve_health
from worker.logging import configure_logging
from worker.runner import OwnContextRunner
from worker.settings import Settings
from workflows.clinic import DailyHuddleWorkflow, ReconcileWorkflow
from workflows.fhir_export import FhirExportWorkflow
from workflows.inputs import WORKFLOW_TYPE
from workflows.treatment_course import TreatmentCourseWorkflow

log = structlog.get_logger(__name__)


def activities_for(
    store: EventStore,
    provider: EligibilityProvider,
    outbox: Outbox,
    channel: Channel,
    *,
    contacts: ContactDirectory | None = None,
    clinic: Clinic | None = None,
    schedules: ClinicActivities | None = None,
    exports: FhirExportActivities | None = None,
) -> Sequence[Any]:
    """`schedules`: the clinic's scheduled work (workflows/clinic.py), which needs a Temporal
    client and PostgreSQL; without it a worker serves courses alone."""
    events = EventStoreActivities(store)
    scheduled = [schedules.gather_huddle, schedules.reconcile_courses] if schedules else []
    bulk_export = (
        []
        if exports is None
        else [
            exports.plan_fhir_export,
            exports.export_fhir_batch,
            exports.finish_fhir_export,
            exports.discard_fhir_export,
        ]
    )
    return [
        events.append_events,
        events.load_course,
        EligibilityActivities(provider).check_eligibility,
        NotificationActivities(outbox, channel, contacts, clinic).send_notification,
        *scheduled,
        *bulk_export,
    ]


def fhir_exports(pool: asyncpg.Pool, settings: Settings) -> FhirExportActivities:
    return FhirExportActivities(
        pool,
        settings.export_dir(),
        course_resources,
        batch_courses=settings.fhir_export_batch_courses,
    )


class MisconfiguredIntegration(Exception):
    """A provider or channel is selected without the settings it needs: refuse to start."""


def eligibility_provider(settings: Settings) -> EligibilityProvider:
    if settings.eligibility_provider != "x12_http":
        try:
            return provider_named(settings.eligibility_provider)
        except ValueError as unknown:
            raise MisconfiguredIntegration(str(unknown)) from None
    if not settings.eligibility_url or not settings.eligibility_provider_npi:
        raise MisconfiguredIntegration(
            "ELIGIBILITY_PROVIDER=x12_http needs ELIGIBILITY_URL and ELIGIBILITY_PROVIDER_NPI"
        )
    return X12HttpProvider(
        settings.eligibility_url,
        settings.eligibility_provider_npi,
        organization=settings.eligibility_organization_name,
        api_key=settings.eligibility_api_key.get_secret_value() if settings.eligibility_api_key else None,
        timeout=settings.eligibility_timeout_seconds,
        ca_bundle=settings.eligibility_ca_bundle,
    )


def notification_channel(settings: Settings) -> Channel:
    if settings.notify_channel == "console":
        return ConsoleChannel()
    tls_context = ssl.create_default_context(cafile=settings.smtp_ca_bundle) if settings.smtp_ca_bundle else None
    return SmtpChannel(
        settings.smtp_host,
        settings.smtp_port,
        settings.smtp_from,
        sender_name=settings.smtp_from_name or settings.clinic_name,
        username=settings.smtp_username,
        password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
        tls=settings.smtp_tls,
        timeout=settings.smtp_timeout_seconds,
        tls_context=tls_context,
    )


def clinic_from(settings: Settings) -> Clinic:
    domain = settings.smtp_from.rpartition("@")[2] or Clinic().mail_domain
    return Clinic(
        name=settings.clinic_name, phone=settings.clinic_phone, time_zone=settings.clinic_time_zone, mail_domain=domain
    )


def clinic_activities(client: Client, pool: Any, settings: Settings) -> ClinicActivities:
    return ClinicActivities(
        client,
        pool,
        task_queue=settings.course_task_queue,
        time_zone=settings.huddle_zone,
        stuck_sending_after=timedelta(minutes=settings.reconcile_stuck_sending_minutes),
        confirm_after=settings.reconcile_confirm_seconds,
    )


def build_worker(
    client: Client,
    task_queue: str,
    activities: Sequence[Any],
    *,
    graceful_shutdown: float = 10.0,
    max_cached_workflows: int = 1000,
) -> Worker:
    return Worker(
        client,
        task_queue=task_queue,
        workflows=[TreatmentCourseWorkflow, DailyHuddleWorkflow, ReconcileWorkflow, FhirExportWorkflow],
        activities=activities,
        graceful_shutdown_timeout=timedelta(seconds=graceful_shutdown),
        max_cached_workflows=max_cached_workflows,
        activity_executor=ThreadPoolExecutor(max_workers=4),
        workflow_runner=workflow_runner(),
    )


# Modules every cached course would otherwise execute again inside its own sandbox: the workflow's
# own module and the one it imports that is not already passed through. A module executed in a
# sandbox stays with the run while it is cached (its code objects unmarshalled once per run):
# 80 KiB for workflows/treatment_course.py alone, the largest part of what a cached course costs
# (bench.memory; bench/FINDINGS.md). Passed through, they are loaded once per process, like the
# pure domain (`course.*`) they call. What the sandbox checked in them at run time (no clock, no
# randomness, no I/O outside `workflow.*`), the replay tests still check: tests/replay replays
# recorded courses of every phase under the SDK's default sandbox, these modules not passed through.
COURSE_MODULES = ("workflows.treatment_course", "workflows.search_attributes")


def workflow_runner() -> WorkflowRunner:
    """The default sandbox, with `cryptography` passed through: the update validator verifies
    signatures (trust/signing.py), and a Rust extension module imported a second time inside
    the sandbox aborts the process (PyO3 modules initialise once per interpreter). The course's
    own modules are passed through too (COURSE_MODULES). Courses answer their payloads'
    serialization context outside it (worker/runner.py: the profile's hot spot)."""
    restrictions = SandboxRestrictions.default.with_passthrough_modules("cryptography", *COURSE_MODULES)
    return OwnContextRunner(SandboxedWorkflowRunner(restrictions=restrictions), [WORKFLOW_TYPE])


async def connect(settings: Settings) -> Client:
    """The Temporal client: TLS/mTLS and API key from the settings, SDK metrics when METRICS_BIND is set.

    Also the process's signing keys (trust/keys.py): every process that talks to courses (worker,
    API, CLI) configures them here, once, from the same settings.
    """
    keys.configure_from_settings(settings)
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        data_converter=data_converter(),
        tls=telemetry.tls_config(settings),
        api_key=telemetry.api_key(settings),
        runtime=telemetry.runtime_for(settings),
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


async def run_worker(
    settings: Settings,
    dsn: str | None = None,
    stop: asyncio.Event | None = None,
    running: asyncio.Event | None = None,
) -> None:
    """Serve courses until `stop` is set; `running` is set once the worker polls.

    Without a `stop` of the caller's, SIGINT and SIGTERM set our own, from the first line: a signal
    that arrives while we connect and migrate is kept, and the worker stops as soon as it is up,
    rather than relying on a cancellation that a library awaiting with a timeout can swallow.
    """
    if stop is None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    client = await connect(settings)
    await check_cluster(client, settings)
    dsn = dsn or database_url(settings.database_url, settings.course_data_dir)
    await migrate(dsn)
    provider, channel = eligibility_provider(settings), notification_channel(settings)
    operations = Contact(email=settings.notify_operations_email) if settings.notify_operations_email else None
    pool = await create_pool(dsn)
    health = Health(pool_probe(pool))
    health_server = await serve_health(health, settings.health_bind) if settings.health_bind else None
    try:
        worker = build_worker(
            client,
            settings.course_task_queue,
            activities_for(
                PostgresEventStore(pool),
                provider,
                PostgresOutbox(pool),
                channel,
                contacts=PostgresContactDirectory(pool, operations),
                clinic=clinic_from(settings),
                schedules=clinic_activities(client, pool, settings),
                exports=fhir_exports(pool, settings),
            ),
            graceful_shutdown=settings.worker_graceful_shutdown_seconds,
            max_cached_workflows=settings.worker_max_cached_workflows,
        )
        log.info("worker started", task_queue=settings.course_task_queue, namespace=settings.temporal_namespace)
        async with worker:
            health.running = True
            if running is not None:
                running.set()
            try:
                await stop.wait()
            finally:
                health.running = False
        log.info("worker stopped")
    finally:
        if health_server is not None:
            health_server.close()
            await health_server.wait_closed()
        await pool.close()
        if isinstance(provider, X12HttpProvider):
            await provider.aclose()


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
    code = 0
    try:
        asyncio.run(run_worker(settings))
    except (MissingSearchAttributes, MisconfiguredIntegration, telemetry.MisconfiguredTLS) as missing:
        print(f"error: {missing}", file=sys.stderr)
        code = 1
    except Exception:
        log.exception("worker failed")
        code = 1
    # temporalio issue #300: the interpreter can crash at exit after a worker ran; leave cleanly.
    structlog.get_logger().info("exiting", code=code)
    os._exit(code)
