"""Export workflow histories for the replay tests.

    python -m tests.histories.export                       # run the representative courses on a
                                                           # fresh dev server, write tests/histories/*.json
    python -m tests.histories.export --address localhost:7233 --workflow-id course-<uuid> [...]
                                                           # export courses from a running stack

Histories are exported with the production data converter. The scenario mode encrypts with the
test-only keyring in tests/histories/TEST_PAYLOAD_KEYS, so CI can replay them; exports from a real
stack are encrypted with that stack's PAYLOAD_KEYS and replay only where those keys are configured.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydantic import SecretStr
from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from activities.eligibility import SelfPayProvider
from activities.event_store import InMemoryEventStore
from activities.notifications import InMemoryOutbox, MemoryChannel
from application.courses import CourseClient
from course.commands import (
    AdministerDose,
    PlaceHold,
    RecordClinicalReview,
    ReleaseHold,
)
from course.policy import CoursePolicy, MonitoringPolicy
from tests import story
from worker.binaries import temporal_cli
from worker.converter import data_converter
from worker.main import activities_for, build_worker
from worker.settings import Settings
from workflows import search_attributes
from workflows.inputs import workflow_id

HERE = Path(__file__).parent
SUGGEST_AFTER = 150


def histories_settings() -> Settings:
    entry = (HERE / "TEST_PAYLOAD_KEYS").read_text().strip()
    return Settings(payload_keys=SecretStr(entry), payload_key_id=entry.split(":", 1)[0])


async def _prepared(client: CourseClient, policy: CoursePolicy | None = None, sessions: int = 3) -> str:
    opening = story.opening(policy=policy).model_copy(update={"planned_sessions": sessions})
    course = str(await client.open(opening))
    await client.record(course, story.assessment(), story.PRESCRIBER)
    for actor, command in story.preparation(datetime.now(UTC), planned_sessions=sessions):
        await client.record(course, command, actor)  # type: ignore[arg-type]
    return course


async def assessment(client: CourseClient) -> str:
    return str(await client.open(story.opening()))


async def preparation(client: CourseClient) -> str:
    course = str(await client.open(story.opening()))
    await client.record(course, story.assessment(), story.PRESCRIBER)
    for actor, command in story.preparation(datetime.now(UTC))[:3]:
        await client.record(course, command, actor)  # type: ignore[arg-type]
    return course


async def deferred_session(client: CourseClient) -> str:
    course = await _prepared(client)
    now = datetime.now(UTC)
    await client.record(course, story.schedule(1, now + timedelta(days=2)), story.OPERATIONS)
    await client.record(course, story.check_in(1, vitals=story.HIGH), story.NURSE)
    await client.record(course, story.check_in(1), story.NURSE)
    await client.record(course, story.dose(1), story.NURSE)
    return course


async def clinical_review(client: CourseClient) -> str:
    course = await _prepared(client)
    await client.record(course, story.check_in(1), story.NURSE)
    await client.record(course, story.dose(1, patient_response="worse"), story.NURSE)
    review = RecordClinicalReview(decision="adjust_dose", new_dose_mg_per_kg=0.4, rationale="reduce")
    await client.record(course, review, story.PRESCRIBER)
    await client.record(course, story.check_in(2), story.NURSE)
    return course


async def hold(client: CourseClient) -> str:
    quick = CoursePolicy(integration_reminder_after=timedelta(seconds=1), integration_due_within=timedelta(seconds=2))
    course = await _prepared(client, quick)
    await client.record(course, story.check_in(1), story.NURSE)
    await client.record(course, story.dose(1), story.NURSE)
    await asyncio.sleep(1.5)  # the follow-up reminder fires
    await client.record(course, PlaceHold(reason="patient_travel"), story.OPERATIONS)
    await asyncio.sleep(1)
    await client.record(course, ReleaseHold(), story.OPERATIONS)
    await asyncio.sleep(1.5)  # ... and the overdue flag, later by the time on hold
    return course


async def completed(client: CourseClient) -> str:
    course = await _prepared(client, sessions=1)
    await client.record(course, story.check_in(1), story.NURSE)
    await client.record(course, story.dose(1), story.NURSE)
    await client.record(course, story.integration(datetime.now(UTC)), story.THERAPIST)
    await client.record(course, story.maintenance_plan(kind="none", interval_days=None), story.PRESCRIBER)
    return course


async def continued_as_new(client: CourseClient) -> str:
    policy = CoursePolicy(
        day_length=timedelta(milliseconds=10),
        maintenance_reminder_lead=timedelta(milliseconds=100),
        maintenance_grace=timedelta(seconds=30),
    )
    course = await _prepared(client, policy, sessions=1)
    await client.record(course, story.check_in(1), story.NURSE)
    await client.record(course, story.dose(1), story.NURSE)
    await client.record(course, story.integration(datetime.now(UTC)), story.THERAPIST)
    await client.record(course, story.maintenance_plan(interval_days=30), story.PRESCRIBER)
    for cycle in range(20):
        await asyncio.sleep(0.35)
        await client.record(course, story.maintenance_session(datetime.now(UTC)), story.NURSE, f"m-{course}-{cycle}")
    return course


async def monitored(client: CourseClient) -> str:
    """Issue 18's chair: a dose, a recheck gone late, two high readings (a review), a discharge."""
    chair = MonitoringPolicy(
        minimum_observation={"iv_infusion": timedelta(seconds=4)},
        first_recheck_after=timedelta(seconds=1),
        late_after=timedelta(seconds=1),
        recheck_every=timedelta(seconds=30),
    )
    course = await _prepared(client, CoursePolicy(monitoring=chair), sessions=1)
    await client.record(course, story.check_in(1), story.NURSE)
    dose = {"session_number": 1, "route": "iv_infusion", "dose_mg_per_kg": 0.5, "given_at": datetime.now(UTC)}
    await client.record(course, AdministerDose.model_validate(dose), story.NURSE)
    await asyncio.sleep(2.5)  # the recheck falls late: the course is flagged and the nurse told
    for systolic in (165, 168, 128):
        await client.record(course, story.reading(datetime.now(UTC), systolic), story.NURSE)
    await asyncio.sleep(2.0)  # the minimum observation
    await client.record(course, story.discharge(datetime.now(UTC)), story.NURSE)
    return course


SCENARIOS: dict[str, Callable[[CourseClient], Awaitable[str]]] = {
    "assessment": assessment,
    "preparation": preparation,
    "deferred_session": deferred_session,
    "clinical_review": clinical_review,
    "hold": hold,
    "completed": completed,
    "continued_as_new": continued_as_new,
    "monitored": monitored,
}


async def write_runs(client: Client, workflow: str, name: str, out: Path) -> list[Path]:
    """One file per run, oldest first: a continue-as-new course has several."""
    runs = [w async for w in client.list_workflows(f"WorkflowId = '{workflow}'")]
    runs.sort(key=lambda w: w.start_time)
    written = []
    for index, run in enumerate(runs, start=1):
        history = await _settled(client, run.id, run.run_id)
        suffix = f"-run{index}" if len(runs) > 1 else ""
        path = out / f"{name}{suffix}.json"
        # The course's workflow id goes with it: payloads are bound to the course they were made
        # for (worker/codec.py), so the replay must run under the same id.
        path.write_text(json.dumps({"workflowId": run.id, **json.loads(history.to_json())}))
        written.append(path)
    return written


async def _settled(client: Client, workflow: str, run_id: str | None) -> WorkflowHistory:
    """A history whose last workflow task has completed: one cut mid-task cannot be replayed."""
    in_flight = (
        EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED,
        EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
        EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
    )
    for _ in range(100):
        history = await client.get_workflow_handle(workflow, run_id=run_id).fetch_history()
        if history.events[-1].event_type not in in_flight:
            return history
        await asyncio.sleep(0.1)
    raise TimeoutError(f"{workflow} run {run_id} never settled")


async def export_scenarios(out: Path, only: list[str]) -> None:
    converter = data_converter(histories_settings())
    env = await WorkflowEnvironment.start_local(
        data_converter=converter,
        dev_server_existing_path=temporal_cli(),
        search_attributes=search_attributes.ALL,
        dev_server_extra_args=["--dynamic-config-value", f"limit.historyCount.suggestContinueAsNew={SUGGEST_AFTER}"],
    )
    async with env:
        activities = activities_for(InMemoryEventStore(), SelfPayProvider(), InMemoryOutbox(), MemoryChannel())
        async with build_worker(env.client, "histories", activities):
            client = CourseClient(env.client, "histories")
            for name, scenario in SCENARIOS.items():
                if only and name not in only:
                    continue
                course = await scenario(client)
                await asyncio.sleep(0.5)  # let the last workflow task settle into history
                for path in await write_runs(env.client, workflow_id(course), name, out):
                    print(f"wrote {path}")


async def export_from(address: str, namespace: str, workflows: list[str], out: Path) -> None:
    client = await Client.connect(address, namespace=namespace, data_converter=data_converter())
    for workflow in workflows:
        for path in await write_runs(client, workflow, workflow, out):
            print(f"wrote {path}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=HERE)
    parser.add_argument("--address", help="export from this running Temporal instead of scenarios")
    parser.add_argument("--namespace", default="default")
    parser.add_argument("--workflow-id", action="append", default=[])
    parser.add_argument("--only", action="append", default=[], choices=sorted(SCENARIOS), help="these scenarios only")
    args = parser.parse_args()
    if args.address:
        asyncio.run(export_from(args.address, args.namespace, args.workflow_id, args.out))
    else:
        asyncio.run(export_scenarios(args.out, args.only))
    sys.stdout.flush()
    os._exit(0)  # temporalio issue #300: no interpreter teardown after a worker ran


if __name__ == "__main__":
    main()
