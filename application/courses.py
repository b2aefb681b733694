"""CourseClient: how staff tools talk to courses. The CLI and the tests use this one class."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import (
    Client,
    WithStartWorkflowOperation,
    WorkflowHandle,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import ApplicationError, WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from application.request_ids import derived_request_id
from course.commands import Actor, ClinicianCommand, StepRequest
from course.provenance import CommandSignature
from course.repeats import RECURRING_STEPS, occasion
from course.state import CourseState
from course.view import CourseView, StepOutcome
from trust import keys
from trust.signing import Signer
from workflows.inputs import TASK_QUEUE, OpenCourse, workflow_id
from workflows.treatment_course import TreatmentCourseWorkflow
from workflows.ui_text import for_operations


class CourseNotFound(Exception):
    def __init__(self, course_id: str) -> None:
        super().__init__(f"No course with id {course_id}.")


class StepRejected(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class StepTimedOut(TimeoutError):
    """No answer within the deadline. The step may still be recorded: sending it again with the
    same request id is safe (applied once), and the message names that id."""

    def __init__(self, request_id: str | None, seconds: float) -> None:
        again = f"retry with request id {request_id}" if request_id else "send the same command again"
        super().__init__(
            f"The course did not answer within {seconds:g} s; the step may still be recorded: "
            f"{again} (it is applied once)."
        )
        self.request_id = request_id
        self.seconds = seconds


class NoWorkerServing(StepTimedOut):
    """Nothing took the step: no worker has polled the courses' task queue lately."""

    def __init__(self, request_id: str | None, seconds: float, task_queue: str) -> None:
        super().__init__(request_id, seconds)
        again = f"retry with request id {request_id}" if request_id else "send the same command again"
        self.args = (
            f"no worker is serving courses (task queue {task_queue}): nothing took the step within "
            f"{seconds:g} s. Start a worker (`course worker`), then {again}.",
        )
        self.task_queue = task_queue


class _Unanswered(Exception):
    """No answer within the caller's deadline; `serving` then tells whether any worker polls."""


# The server admits at most 10 updates in flight per workflow (RESOURCE_EXHAUSTED beyond), and
# aborts admitted ones when it reloads a workflow (UNAVAILABLE, "workflow update was aborted"; also
# what a restarting server says): wait and send the same update again, doubling from 50 ms up to
# 2 s, each pause jittered so a burst spreads out. The same id makes a resend safe.
RESEND = frozenset({RPCStatusCode.RESOURCE_EXHAUSTED, RPCStatusCode.UNAVAILABLE})
# The server refuses an update while the course's workflow task is being retried (after a worker
# died holding it, say): FAILED_PRECONDITION with this detail. It passes once a worker takes the task.
WORKFLOW_NOT_READY = "WorkflowNotReadyFailure"
# Below this much time left, a call the server ended early is not asked again: the caller's
# deadline is ours to keep, not to overrun.
RPC_AGAIN_MIN_SECONDS = 1.0
BUSY_FIRST_PAUSE = 0.05
BUSY_LONGEST_PAUSE = 2.0
_JITTER = random.Random()  # noqa: S311 - jitter spreads retries; nothing secret depends on it
# DescribeTaskQueue describes one partition; the server's default is 4 (`/_sys/<queue>/<n>`).
TASK_QUEUE_PARTITIONS = 4
# An idle worker renews its long poll about once a minute; a poller older than this has gone.
POLLER_SEEN_WITHIN = timedelta(minutes=2)


def asks_to_resend(error: RPCError) -> bool:
    """Whether the server asks us to send the same update again later."""
    if error.status in RESEND:
        return True
    return error.status == RPCStatusCode.FAILED_PRECONDITION and any(
        detail.type_url.endswith(WORKFLOW_NOT_READY) for detail in error.grpc_status.details
    )


def busy_pause(attempt: int, rng: random.Random = _JITTER) -> float:
    """Exponential backoff with jitter: the pause before the `attempt`-th resend of a busy step."""
    ceiling = min(BUSY_LONGEST_PAUSE, BUSY_FIRST_PAUSE * 2.0**attempt)
    return ceiling * rng.uniform(0.5, 1.0)


def parse_course_id(value: str) -> UUID:
    try:
        return UUID(value.removeprefix("course-"))
    except ValueError:
        raise CourseNotFound(value) from None


def summary_for(request: OpenCourse) -> str:
    """Shown in the Temporal UI's list: clinical shape only, no patient data."""
    condition = request.condition.value if request.condition else "condition tbd"
    sessions = f"{request.planned_sessions} sessions" if request.planned_sessions else "sessions tbd"
    return f"Treatment course: {condition}, {sessions}"


def details_for(request: OpenCourse) -> str:
    """The UI's static details: the course's clinical shape and care team ids, no patient data."""
    payer = "self-pay" if request.self_pay else "insured (eligibility checked on open)"
    lines = [
        f"- condition: {request.condition.value if request.condition else 'to be assessed'}",
        f"- planned sessions: {request.planned_sessions or 'per dosing plan'}",
        f"- payer: {payer}",
        f"- clinician: {request.clinician_id}",
        f"- therapist: {request.therapist_id or 'unassigned'}",
        f"- opened by: {request.opened_by.role.value} {request.opened_by.id}",
    ]
    return "\n".join(lines)


class CourseClient:
    def __init__(
        self,
        client: Client,
        task_queue: str = TASK_QUEUE,
        *,
        step_deadline: float = 60.0,
        signer: Signer | None = None,
        break_glass: str | None = None,
    ) -> None:
        self._client = client
        # Signs each step as the actor given (trust/signing.py); None: the process's configured
        # signer (trust/keys.py), if any. Whoever holds a Signer is an edge: only the API should,
        # and an operator's break-glass key, whose signatures carry `break_glass` (a reason code).
        self._signer = signer
        self._break_glass = break_glass
        self._task_queue = task_queue
        self.step_deadline = step_deadline
        # How often a step was sent again, by the server's answer: RESOURCE_EXHAUSTED (the in-flight
        # limit), UNAVAILABLE (aborted, or the server away). For tests and diagnostics.
        self.resends: Counter[str] = Counter()

    @property
    def temporal(self) -> Client:
        return self._client

    @property
    def task_queue(self) -> str:
        return self._task_queue

    async def open(self, request: OpenCourse) -> UUID:
        """Idempotent: opening the same course id twice returns the existing course."""
        # Closed earlier under the same id: that course is the answer.
        with contextlib.suppress(WorkflowAlreadyStartedError):
            await self._client.start_workflow(
                TreatmentCourseWorkflow.run,
                request,
                id=workflow_id(request.course_id),
                task_queue=self._task_queue,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=for_operations(summary_for(request)),
                static_details=for_operations(details_for(request)),
            )
        return request.course_id

    async def record(
        self,
        course_id: str | UUID,
        command: ClinicianCommand,
        actor: Actor,
        request_id: str | None = None,
        *,
        within: float | None = None,
    ) -> StepOutcome:
        """Record a step, answered within `within` seconds (default: `step_deadline`) or
        StepTimedOut / NoWorkerServing naming the request id to retry with. Without a request id
        one is derived (`derived_request_id`): the same command sent twice is applied once."""
        course = parse_course_id(str(course_id))
        seconds = self.step_deadline if within is None else within
        give_up = asyncio.get_running_loop().time() + seconds
        update_id = request_id
        try:
            if update_id is None:
                update_id = await self._derive(course, command, actor, give_up)
            request = StepRequest(command=command, actor=actor, signature=self._sign(course, update_id, command, actor))
            return await self._update(course, request, update_id, give_up)
        except _Unanswered:
            if await self.serving() is False:
                raise NoWorkerServing(update_id, seconds, self._task_queue) from None
            raise StepTimedOut(update_id, seconds) from None

    async def open_with_step(
        self,
        request: OpenCourse,
        command: ClinicianCommand,
        actor: Actor,
        request_id: str | None = None,
        *,
        within: float | None = None,
    ) -> StepOutcome:
        """Open a course and record its first step (the assessment, say) in one round trip: an
        update-with-start, where `open` then `record` take two. As idempotent as the two: a course
        already open (or closed earlier) under this id takes the step as `record` would, and the
        step's id is the one `record` derives, so either path may retry the other."""
        course = request.course_id
        if command.step in RECURRING_STEPS:
            # Such a step's id depends on the course's moment, which only an open course can tell.
            await self.open(request)
            return await self.record(course, command, actor, request_id, within=within)
        seconds = self.step_deadline if within is None else within
        loop = asyncio.get_running_loop()
        give_up = loop.time() + seconds
        update_id = request_id or derived_request_id(course, command, actor, "")
        step = StepRequest(command=command, actor=actor, signature=self._sign(course, update_id, command, actor))
        start = WithStartWorkflowOperation(
            TreatmentCourseWorkflow.run,
            request,
            id=workflow_id(course),
            task_queue=self._task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            static_summary=for_operations(summary_for(request)),
            static_details=for_operations(details_for(request)),
        )
        try:
            async with asyncio.timeout(seconds):
                return await self._client.execute_update_with_start_workflow(
                    TreatmentCourseWorkflow.record,
                    step,
                    start_workflow_operation=start,
                    id=update_id,
                    rpc_timeout=_left(give_up),
                )
        except WorkflowUpdateFailedError as failed:
            raise _refusal(failed) from None
        except (WorkflowUpdateRPCTimeoutOrCancelledError, TimeoutError):
            _reraise_if_cancelled()
        except WorkflowAlreadyStartedError:
            pass  # closed earlier under this id: that course answers the step (`record` explains)
        except RPCError as error:
            if not asks_to_resend(error):
                raise
        # Not answered in one go: the course may be open and the step taken. `open` is idempotent
        # and the same update id is the same step, so the two-call path settles it.
        await self.open(request)
        return await self.record(course, command, actor, update_id, within=max(give_up - loop.time(), 0.05))

    def _sign(self, course: UUID, update_id: str, command: ClinicianCommand, actor: Actor) -> CommandSignature | None:
        signer = self._signer or keys.signer()
        if signer is None:
            return None  # the worker refuses it if it checks signatures: it says `unsigned`
        return signer.sign(
            course_id=str(course),
            update_id=update_id,
            actor_id=actor.id,
            role=actor.role.value,
            step=command.step,
            payload=command.model_dump(mode="json"),
            break_glass=self._break_glass,
        )

    async def _derive(self, course: UUID, command: ClinicianCommand, actor: Actor, give_up: float) -> str:
        return derived_request_id(course, command, actor, await self._occasion(course, command, give_up))

    async def occasion(self, course_id: str | UUID, command: ClinicianCommand, *, within: float | None = None) -> str:
        """The course's moment a step that may recur belongs to (course/repeats.py); empty for the
        others. For an edge scoping a key derived from the payload (the CLI's) to that moment."""
        course = parse_course_id(str(course_id))
        seconds = self.step_deadline if within is None else within
        try:
            return await self._occasion(course, command, asyncio.get_running_loop().time() + seconds)
        except _Unanswered:
            if await self.serving() is False:
                raise NoWorkerServing(None, seconds, self._task_queue) from None
            raise StepTimedOut(None, seconds) from None

    async def _occasion(self, course: UUID, command: ClinicianCommand, give_up: float) -> str:
        if command.step not in RECURRING_STEPS:
            return ""
        try:
            state = await self._handle(course).query(TreatmentCourseWorkflow.state, rpc_timeout=_left(give_up))
        except RPCError as error:
            # Our rpc_timeout: the server's DEADLINE_EXCEEDED, or the client's own CANCELLED
            # ("Timeout expired"), as the SDK itself reads them for updates.
            if error.status in (RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED):
                _reraise_if_cancelled()
                raise _Unanswered() from None
            if error.status == RPCStatusCode.NOT_FOUND:
                raise CourseNotFound(str(course)) from None
            raise
        return occasion(state, command)

    async def _update(self, course: UUID, request: StepRequest, update_id: str, give_up: float) -> StepOutcome:
        """One call per step: the server answers once the update completed (the same request asked
        for acceptance, then polled for the result, in two round trips). Sent again, with the same
        update id, only when the server ended its wait early or asked for a resend."""
        handle = self._handle(course)
        attempt = 0
        while True:
            left = give_up - asyncio.get_running_loop().time()
            if left <= 0:
                raise _Unanswered()
            try:
                # The SDK polls past an early answer ("accepted") without a deadline of its own:
                # the caller's deadline bounds the whole call.
                async with asyncio.timeout(left):
                    started = await handle.start_update(
                        TreatmentCourseWorkflow.record,
                        request,
                        id=update_id,
                        wait_for_stage=WorkflowUpdateStage.COMPLETED,
                        rpc_timeout=_left(give_up),
                    )
                    return await started.result(rpc_timeout=_left(give_up))
            except WorkflowUpdateFailedError as failed:
                raise _refusal(failed) from None
            except (WorkflowUpdateRPCTimeoutOrCancelledError, TimeoutError):
                _reraise_if_cancelled()
                # The server's own wait can end before ours (a loaded server caps a call at about
                # 30 s): the same update id again is the same step, so ask again while time is left.
                if asyncio.get_running_loop().time() + RPC_AGAIN_MIN_SECONDS >= give_up:
                    # Whether a worker took it is not known here; `serving` tells the caller
                    # whether any worker is polling at all (NoWorkerServing).
                    raise _Unanswered() from None
                self.resends["SERVER_WAIT_ENDED"] += 1
                await asyncio.sleep(busy_pause(attempt))
                attempt += 1
            except RPCError as error:
                if not asks_to_resend(error):
                    await self._explain(course, error)
                    raise
                pause = busy_pause(attempt)
                if asyncio.get_running_loop().time() + pause >= give_up:
                    raise _Unanswered() from None
                await asyncio.sleep(pause)
                attempt += 1
                self.resends[error.status.name] += 1

    async def serving(self) -> bool | None:
        """Whether a worker polled this task queue's workflow tasks lately (any partition); None
        when the server cannot tell us (it is down too: that is not "no worker")."""
        names = [self._task_queue] + [f"/_sys/{self._task_queue}/{n}" for n in range(1, TASK_QUEUE_PARTITIONS)]
        recent = datetime.now(UTC) - POLLER_SEEN_WITHIN
        described = await asyncio.gather(
            *(
                self._client.workflow_service.describe_task_queue(
                    DescribeTaskQueueRequest(
                        namespace=self._client.namespace,
                        task_queue=TaskQueue(name=name, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
                        task_queue_type=TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
                    ),
                    timeout=timedelta(seconds=5),
                )
                for name in names
            ),
            return_exceptions=True,
        )
        answers = [answer for answer in described if not isinstance(answer, BaseException)]
        if not answers:
            return None
        return any(poller.last_access_time.ToDatetime(tzinfo=UTC) >= recent for a in answers for poller in a.pollers)

    async def retry(self, course_id: str | UUID) -> None:
        """Ask a course that needs attention to try again now (the `retry` signal)."""
        await self._signal(course_id, TreatmentCourseWorkflow.retry)

    async def resync(self, course_id: str | UUID) -> None:
        """Ask a course to load its stream's head from the event store and adopt it."""
        await self._signal(course_id, TreatmentCourseWorkflow.resync)

    async def _signal(self, course_id: str | UUID, signal: Any) -> None:
        course = parse_course_id(str(course_id))
        try:
            await self._handle(course).signal(signal)
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                await self.status(course)  # CourseNotFound, or a closed course's view
                raise StepRejected("course_closed", "This course is closed; there is nothing to retry.") from None
            raise

    async def _explain(self, course: UUID, error: RPCError) -> None:
        """An update to a workflow that is not running: no such course, or a closed one."""
        if error.status == RPCStatusCode.NOT_FOUND:
            view = await self.status(course)  # raises CourseNotFound when there is none
            if view.outcome is not None:
                raise StepRejected(
                    "course_closed",
                    f"This course is closed ({view.outcome}); it accepts no further steps.",
                ) from None

    async def status(self, course_id: str | UUID) -> CourseView:
        course = parse_course_id(str(course_id))
        try:
            return await self._handle(course).query(TreatmentCourseWorkflow.status)
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                raise CourseNotFound(str(course)) from None
            raise

    async def state(self, course_id: str | UUID) -> CourseState:
        course = parse_course_id(str(course_id))
        return await self._handle(course).query(TreatmentCourseWorkflow.state)

    def _handle(self, course: UUID) -> WorkflowHandle[TreatmentCourseWorkflow, CourseView]:
        return self._client.get_workflow_handle_for(TreatmentCourseWorkflow.run, workflow_id(course))


def _refusal(failed: WorkflowUpdateFailedError) -> Exception:
    cause = failed.cause
    if isinstance(cause, ApplicationError) and cause.type == "RuleViolation":
        code = str(cause.details[0]) if cause.details else "rejected"
        return StepRejected(code, cause.message)
    return failed


def _left(give_up: float) -> timedelta:
    return timedelta(seconds=max(give_up - asyncio.get_running_loop().time(), 0.05))


def _reraise_if_cancelled() -> None:
    """The SDK reports our caller's cancellation and its own RPC deadline alike: tell them apart."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError
