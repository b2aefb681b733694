"""A course never dies and always agrees with its record (issue 15, items 1-3).

Real Temporal dev server and PostgreSQL, a worker in this process. The faults: an append the
database refuses on a timer tick, a `temporal workflow reset` to the first workflow task, a
cancel from the UI, a mail relay that hangs. Every wait is bounded polling on a condition.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
import pytest_asyncio
from temporalio.client import WorkflowExecutionStatus
from temporalio.testing import WorkflowEnvironment

from activities.eligibility import SelfPayProvider
from activities.event_store import PostgresEventStore
from activities.notifications import PostgresOutbox
from activities.ports import OutgoingMessage
from application.courses import CourseClient, StepRejected
from course.commands import RecordFinancialClearance, RecordIntentions
from course.events import EventEnvelope, EventMetadata, HoldPlaced
from course.policy import CoursePolicy
from course.state import Phase
from tests import story
from tests.conftest import eligibility_known, task_queue
from tests.faults.audit import diagnose
from worker.binaries import temporal_cli
from worker.main import activities_for, build_worker
from workflows.inputs import workflow_id
from workflows.search_attributes import NEEDS_ATTENTION

pytestmark = pytest.mark.faults


class HangingChannel:
    """A mail relay in an outage: every delivery hangs until the test lets it go."""

    name = "smtp"

    def __init__(self) -> None:
        self.hanging = 0
        self.delivered: list[str] = []
        self.release = asyncio.Event()

    async def deliver(self, message: OutgoingMessage) -> None:
        self.hanging += 1
        try:
            await self.release.wait()
        finally:
            self.hanging -= 1
        self.delivered.append(message.notification.idempotency_key)


@dataclass
class Stack:
    client: CourseClient
    pool: asyncpg.Pool
    address: str
    channel: HangingChannel


@pytest_asyncio.fixture
async def stack(dev_env: WorkflowEnvironment, pg_pool: asyncpg.Pool) -> AsyncIterator[Stack]:
    queue, channel = task_queue(), HangingChannel()
    worker = build_worker(
        dev_env.client,
        queue,
        activities_for(PostgresEventStore(pg_pool), SelfPayProvider(), PostgresOutbox(pg_pool), channel),
    )
    async with worker:
        yield Stack(
            CourseClient(dev_env.client, queue), pg_pool, dev_env.client.service_client.config.target_host, channel
        )
        channel.release.set()  # let hanging deliveries end before the worker shuts down


async def until(check: Callable[[], Awaitable[Any]], what: str, seconds: float = 60) -> Any:
    """Poll `check` until it returns something truthy; bounded, never a guessed sleep."""
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        value = await check()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def stored(pool: asyncpg.Pool, course: uuid.UUID) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT global_position, event_id, version, type, data, metadata, occurred_at FROM events"
        " WHERE stream_id = $1 ORDER BY version",
        workflow_id(course),
    )
    return [dict(r) for r in rows]


async def attention(stack: Stack, course: uuid.UUID) -> str | None:
    handle = stack.client.temporal.get_workflow_handle(workflow_id(course))
    described = await handle.describe()
    return described.typed_search_attributes.get(NEEDS_ATTENTION)


async def test_an_append_refused_on_a_timer_tick_leaves_the_course_running_and_needing_attention(
    stack: Stack,
) -> None:
    policy = CoursePolicy(assessment_reminder_after=timedelta(seconds=2))
    opening = story.opening(policy=policy)
    course = await stack.client.open(opening)
    await until(lambda: stack.client.status(course), "the course to open")
    stream = workflow_id(course)
    # The database refuses the reminder's fact as bad data (SQLSTATE 22023): non-retryable.
    await stack.pool.execute(
        f"""
        CREATE OR REPLACE FUNCTION refuse_reminder() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'refused by test' USING ERRCODE = '22023'; END $$;
        CREATE TRIGGER refuse_reminder BEFORE INSERT ON events FOR EACH ROW
            WHEN (NEW.type = 'ReminderSent' AND NEW.stream_id = '{stream}') EXECUTE FUNCTION refuse_reminder();
        """
    )
    try:
        view = await until(
            lambda: _if(stack.client.status(course), lambda v: v.attention is not None), "NeedsAttention", 60
        )
        assert view.attention == "unstorable_event"
        assert await attention(stack, course) == "unstorable_event"
        handle = stack.client.temporal.get_workflow_handle(stream)
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING

        # Operations were told (the outbox holds the notification; the relay is "down").
        async def told() -> bool:
            count = await stack.pool.fetchval(
                "SELECT count(*) FROM notifications WHERE stream_id = $1 AND purpose = 'course_needs_attention'",
                stream,
            )
            return bool(count == 1)

        await until(told, "operations to be told")
        # Clinicians' steps still go through while it waits (one that leaves the reminder due).
        clearance = RecordFinancialClearance(self_pay=True, estimated_cost_acknowledged=True)
        await stack.client.record(course, clearance, story.OPERATIONS, request_id="clearance-1")
    finally:
        await stack.pool.execute("DROP TRIGGER IF EXISTS refuse_reminder ON events; DROP FUNCTION refuse_reminder()")
    # The cause is fixed: `course retry` and the course records what it owed, once.
    await stack.client.retry(course)
    await until(lambda: _if(stack.client.status(course), lambda v: v.attention is None), "attention to clear")
    await until(lambda: attention_cleared(stack, course), "the search attribute to clear")
    reminders = [e for e in await stored(stack.pool, course) if e["type"] == "ReminderSent"]
    assert len(reminders) == 1


async def attention_cleared(stack: Stack, course: uuid.UUID) -> bool:
    return await attention(stack, course) is None


async def _if(view: Awaitable[Any], ok: Callable[[Any], bool]) -> Any:
    value = await view
    return value if ok(value) else None


def _temporal(stack: Stack, *args: str) -> None:
    done = subprocess.run(
        [temporal_cli(), *args, "--address", stack.address, "--namespace", "default"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


async def _to_dosing(stack: Stack, course: uuid.UUID, now: datetime) -> None:
    await stack.client.record(course, story.assessment(), story.PRESCRIBER, request_id=f"{course}-assessment")
    for index, (actor, command) in enumerate(story.preparation(now)):
        await stack.client.record(course, command, actor, request_id=f"{course}-prep-{index}")  # type: ignore[arg-type]


async def test_a_reset_to_the_first_workflow_task_keeps_the_stream_and_stores_the_next_step_once(
    stack: Stack,
) -> None:
    now = datetime.now(UTC)
    course = await stack.client.open(story.opening())
    await _to_dosing(stack, course, now)
    assert (await stack.client.status(course)).phase is Phase.DOSING
    before = await stored(stack.pool, course)
    handle = stack.client.temporal.get_workflow_handle(workflow_id(course))
    first_run = (await handle.describe()).run_id

    _temporal(
        stack,
        "workflow",
        "reset",
        "--workflow-id",
        workflow_id(course),
        "--type",
        "FirstWorkflowTask",
        "--reason",
        "test: repair after a bad deploy",
    )

    async def reset_run_settled() -> Any:
        described = await handle.describe()
        if described.run_id == first_run or described.status != WorkflowExecutionStatus.RUNNING:
            return None
        view = await stack.client.status(course)
        return view if view.version == len(before) else None

    view = await until(reset_run_settled, "the reset run to adopt the stream")
    assert view.phase is Phase.DOSING and view.attention is None
    assert await stored(stack.pool, course) == before  # byte for byte: nothing re-written

    await stack.client.record(course, story.schedule(1, now + timedelta(days=2)), story.NURSE, request_id="sched-1")
    await stack.client.record(course, story.schedule(1, now + timedelta(days=2)), story.NURSE, request_id="sched-1")
    after = await stored(stack.pool, course)
    assert after[: len(before)] == before
    assert [e["type"] for e in after[len(before) :]] == ["SessionScheduled"]
    assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING


async def test_a_cancel_from_the_ui_withdraws_the_course_and_stores_every_event_it_folded(stack: Stack) -> None:
    course = await stack.client.open(story.opening())
    await stack.client.record(course, story.assessment(), story.PRESCRIBER, request_id=f"{course}-assessment")
    handle = stack.client.temporal.get_workflow_handle(workflow_id(course))
    await handle.cancel()
    try:
        # Bounded, generously: the withdrawal is an append, which a loaded machine can slow to minutes.
        result = await asyncio.wait_for(handle.result(), 180)
    except TimeoutError:
        where = await diagnose(stack.client.temporal, workflow_id(course))
        raise AssertionError(f"the cancelled course did not close in 180 s:\n{where}") from None
    assert result["outcome"] == "withdrawn" if isinstance(result, dict) else result.outcome == "withdrawn"
    assert (await handle.describe()).status == WorkflowExecutionStatus.COMPLETED
    events = await stored(stack.pool, course)
    assert events[-1]["type"] == "CourseClosed"
    assert events[-1]["data"]["reasons"] == ["cancelled_by_operations"]
    assert [e["version"] for e in events] == list(range(1, len(events) + 1))


async def test_a_hanging_mail_relay_never_holds_a_clinicians_step(stack: Stack) -> None:
    """A reminder falls due and its delivery hangs (an SMTP outage); steps are answered meanwhile.

    The deliveries stay stuck for the whole test, so a step that waited on one could not finish:
    no timing is assumed. (bench/latency.py --smtp-outage measures the p95 against a normal run.)
    """
    policy = CoursePolicy(assessment_reminder_after=timedelta(seconds=1))
    course = await stack.client.open(story.opening(policy=policy))
    stream = workflow_id(course)

    async def reminder_hanging() -> bool:
        return stack.channel.hanging > 0

    await until(reminder_hanging, "the reminder's delivery to hang")
    assert any(e["type"] == "ReminderSent" for e in await stored(stack.pool, course))  # decided, stored first
    view = await asyncio.wait_for(
        stack.client.record(course, story.assessment(), story.PRESCRIBER, request_id=f"{course}-a"), 60
    )
    for index, (actor, command) in enumerate(story.preparation(datetime.now(UTC))[:3]):
        await asyncio.wait_for(stack.client.record(course, command, actor, request_id=f"{stream}-{index}"), 60)  # type: ignore[arg-type]
    assert view.phase is Phase.PREPARATION
    assert stack.channel.hanging > 0 and not stack.channel.delivered  # still stuck all along
    stack.channel.release.set()
    await until(lambda: _delivered(stack), "the delivery once the relay is back")
    assert stack.channel.delivered == [f"{stream}:assessment-reminder"]


async def _delivered(stack: Stack) -> bool:
    return bool(stack.channel.delivered)


async def _foreign_hold(stack: Stack, course: uuid.UUID, update_id: str) -> int:
    """Another writer (a second deployment, a hand repair) appends a hold to the stream directly."""
    store = PostgresEventStore(stack.pool)
    stream = workflow_id(course)
    head = len(await store.read(stream))
    envelope = EventEnvelope(
        event_id=uuid.uuid4(),
        stream_id=stream,
        version=head + 1,
        occurred_at=datetime.now(UTC),
        metadata=EventMetadata(actor=story.OPERATIONS, update_id=update_id, workflow_id=stream, run_id="elsewhere"),
        event=HoldPlaced(reason="repair"),
    )
    await store.append(stream, head, [envelope])
    return head + 1


async def test_a_step_that_meets_another_writer_is_re_decided_on_the_stored_stream(stack: Stack) -> None:
    course = await stack.client.open(story.opening())
    await eligibility_known(stack.client, course)
    await stack.client.record(course, story.assessment(), story.PRESCRIBER, request_id=f"{course}-assessment")
    held_at = await _foreign_hold(stack, course, "foreign-hold")
    # The workflow does not know of the hold: its append conflicts, it re-loads the stream and
    # decides the step again on it, and stores it after the other writer's event, once.
    intentions = RecordIntentions(goals="Sleep through the night")
    view = await stack.client.record(course, intentions, story.THERAPIST, request_id=f"{course}-intentions")
    assert view.flags.on_hold and view.version == held_at + 1
    types = [e["type"] for e in await stored(stack.pool, course)]
    assert types[held_at - 1 :] == ["HoldPlaced", "IntentionsRecorded"]
    # ... and the rules see the adopted hold: dosing steps wait for its release.
    now = datetime.now(UTC)
    for index, (actor, command) in enumerate(story.preparation(now)):
        if not isinstance(command, RecordIntentions):
            await stack.client.record(course, command, actor, request_id=f"{course}-prep-{index}")  # type: ignore[arg-type]
    await stack.client.record(course, story.schedule(1, now + timedelta(days=2)), story.NURSE, request_id="s1")
    with pytest.raises(StepRejected) as refused:
        await stack.client.record(course, story.check_in(1), story.NURSE, request_id=f"{course}-check-in")
    assert refused.value.code == "on_hold"


async def test_resync_adopts_what_the_store_holds(stack: Stack) -> None:
    course = await stack.client.open(story.opening())
    await eligibility_known(stack.client, course)
    await stack.client.record(course, story.assessment(), story.PRESCRIBER, request_id=f"{course}-assessment")
    held_at = await _foreign_hold(stack, course, "foreign-hold")
    assert not (await stack.client.status(course)).flags.on_hold
    await stack.client.resync(course)
    view = await until(lambda: _if(stack.client.status(course), lambda v: v.version == held_at), "the resync")
    assert view.flags.on_hold and view.awaiting == ["release"]
