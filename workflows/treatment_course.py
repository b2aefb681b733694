"""TreatmentCourseWorkflow: validate with the decider, append through an activity, then fold.

Every clinician step is the `record` update. Its validator runs `decide`, so a command that breaks
a rule is rejected before anything reaches history or PostgreSQL. The handler re-decides under a
lock (handlers interleave while activities run), appends the events, and only then folds them
into the state: the state is always what the event store holds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from activities.ports import (
        APPEND_EVENTS,
        CHECK_ELIGIBILITY,
        SEND_NOTIFICATION,
        AppendResult,
        DeliveryResult,
        EligibilityRequest,
        EligibilityResult,
        EventBatch,
        Notification,
        ReminderFacts,
    )
    from course.commands import (
        SYSTEM_ACTOR,
        Actor,
        Command,
        InsuranceStatus,
        RecordEligibility,
        StepRequest,
        Tick,
    )
    from course.decider import decide
    from course.errors import RuleViolation
    from course.events import CourseOpened, DomainEvent, EventEnvelope, EventMetadata, ReminderSent
    from course.state import CourseState, evolve, fold
    from course.timing import DueItem, next_due
    from course.view import CourseView, checklist, view
    from workflows import search_attributes
    from workflows.inputs import WORKFLOW_TYPE, OpenCourse, workflow_id
    from workflows.ui_text import for_operations

APPEND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=["ConcurrencyError"],
)
# One append attempt: a single statement that takes milliseconds (bench/RESULTS.md). After a worker
# dies mid-append the clinician waits this long for the retry, so it is short; a retry that meets
# a slow first attempt still writing waits for it and settles by event ids.
APPEND_ATTEMPT = timedelta(seconds=10)
NOTIFY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(seconds=30))
# The reminder is recorded as sent (attempted) after this, delivered or not: the course moves on.
NOTIFY_WITHIN = timedelta(minutes=5)
ELIGIBILITY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=1))
# Past this many history events a run hands over to a fresh one (continue-as-new).
HISTORY_EVENTS_PER_RUN = 2000
# Update ids remembered across continue-as-new: far more than a clinician's retries could span.
APPLIED_UPDATES_KEPT = 500


def rejection(violation: RuleViolation) -> ApplicationError:
    """The rejected update a clinician sees: stable code in `type`'s details, plain message."""
    return ApplicationError(violation.message, violation.code, type="RuleViolation", non_retryable=True)


@workflow.defn(name=WORKFLOW_TYPE)
class TreatmentCourseWorkflow:
    @workflow.init
    def __init__(self, request: OpenCourse) -> None:
        self._lock = asyncio.Lock()
        self._indexed: search_attributes.IndexedValues = {}
        self._unsaved: list[EventEnvelope] = []
        self._applied: list[str] = list(request.applied_updates)
        if request.snapshot is not None:
            self._state = request.snapshot
            self._ready = True
            return
        opened = CourseOpened(
            course_id=request.course_id,
            patient_id=request.patient_id,
            clinician_id=request.clinician_id,
            therapist_id=request.therapist_id,
            condition=request.condition,
            planned_sessions=request.planned_sessions,
            payer_id=request.payer_id,
            self_pay=request.self_pay,
            policy=request.policy,
        )
        self._unsaved = self._envelopes(None, [opened], request.opened_by, None)
        state = evolve(None, self._unsaved[0])
        self._state = state
        # Updates wait until CourseOpened is durable, so no step is stored before the course.
        self._ready = False

    @workflow.run
    async def run(self, request: OpenCourse) -> CourseView:
        if self._unsaved:
            async with self._lock:
                await self._store(self._unsaved, self._state.version - 1)
                self._unsaved = []
            self._ready = True
            self._publish()
            result = await self._check_eligibility(request)
            async with self._lock:
                answer = RecordEligibility(
                    status=result.status,
                    reason=result.reason,
                    in_network=result.in_network,
                    patient_share=result.patient_share,
                )
                await self._apply(answer, SYSTEM_ACTOR, None)
        else:
            self._publish()
        await self._keep_time(request)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._view()

    @workflow.update
    async def record(self, request: StepRequest) -> CourseView:
        update = workflow.current_update_info()
        await workflow.wait_condition(lambda: self._ready)
        async with self._lock:
            if self._already_applied(update):
                return self._view()
            try:
                await self._apply(request.command, request.actor, update)
            except RuleViolation as violation:
                raise rejection(violation) from None
            if update is not None:
                self._applied = [*self._applied, update.id][-APPLIED_UPDATES_KEPT:]
        return self._view()

    @record.validator
    def _validate_record(self, request: StepRequest) -> None:
        if self._already_applied(workflow.current_update_info()):
            return  # a retry of a step applied in an earlier run: answered with the current view
        try:
            decide(self._state, request.command, request.actor, workflow.now())
        except RuleViolation as violation:
            raise rejection(violation) from None

    def _already_applied(self, update: workflow.UpdateInfo | None) -> bool:
        # Temporal deduplicates update ids within a run only; these ids cross continue-as-new.
        return update is not None and update.id in self._applied

    @workflow.query
    def status(self) -> CourseView:
        return self._view()

    @workflow.query
    def state(self) -> CourseState:
        return self._state

    # --- the shell ----------------------------------------------------------------------------

    def _view(self) -> CourseView:
        return view(self._state, workflow.now())

    def _envelopes(
        self,
        state: CourseState | None,
        events: list[DomainEvent],
        actor: Actor,
        update: workflow.UpdateInfo | None,
    ) -> list[EventEnvelope]:
        info = workflow.info()
        base = state.version if state is not None else 0
        metadata = EventMetadata(
            actor=actor, update_id=update.id if update else None, workflow_id=info.workflow_id, run_id=info.run_id
        )
        stream_id = state.stream_id if state is not None else info.workflow_id
        return [
            EventEnvelope(
                event_id=workflow.uuid4(),
                stream_id=stream_id,
                version=base + offset,
                occurred_at=workflow.now(),
                metadata=metadata,
                event=event,
            )
            for offset, event in enumerate(events, start=1)
        ]

    async def _apply(self, command: Command, actor: Actor, update: workflow.UpdateInfo | None) -> None:
        """Decide, notify, append, fold. The caller holds the lock."""
        events = decide(self._state, command, actor, workflow.now())
        if not events:
            return
        envelopes = self._envelopes(self._state, events, actor, update)
        for envelope in envelopes:
            if isinstance(envelope.event, ReminderSent):
                await self._notify(envelope.event)
        await self._store(envelopes, self._state.version)
        self._state = fold(self._state, envelopes) or self._state
        self._publish()

    async def _store(self, envelopes: list[EventEnvelope], expected_version: int) -> None:
        # A remote activity on purpose, though a local one would halve a step's history and
        # latency: a local activity writes before the workflow task that decided the events is
        # durable, so a task that then fails (a worker crash, an aborted update) is re-decided
        # with other event ids or times than the ones already in PostgreSQL. The fault suite
        # caught exactly that (tests/faults/test_concurrency.py); see bench/RESULTS.md.
        first, last = envelopes[0], envelopes[-1]
        await workflow.execute_activity(
            APPEND_EVENTS,
            EventBatch(stream_id=first.stream_id, expected_version=expected_version, events=envelopes),
            result_type=AppendResult,
            start_to_close_timeout=APPEND_ATTEMPT,
            retry_policy=APPEND_RETRY,
            summary=for_operations(f"store {', '.join(e.type for e in envelopes)} (v{first.version}-{last.version})"),
        )

    async def _notify(self, reminder: ReminderSent) -> None:
        state = self._state
        recipient_id = {
            "patient": state.patient_id,
            "clinician": state.clinician_id,
            "therapist": state.therapist_id,
            "operations": None,
        }[reminder.recipient]
        try:
            await workflow.execute_activity(
                SEND_NOTIFICATION,
                Notification(
                    idempotency_key=f"{workflow.info().workflow_id}:{reminder.key}",
                    stream_id=state.stream_id,
                    purpose=reminder.purpose,
                    recipient=reminder.recipient,
                    recipient_id=recipient_id,
                    due_at=reminder.due_at,
                    facts=ReminderFacts(session_number=reminder.session_number, subject_at=reminder.subject_at),
                ),
                result_type=DeliveryResult,
                start_to_close_timeout=timedelta(seconds=30),
                schedule_to_close_timeout=NOTIFY_WITHIN,
                retry_policy=NOTIFY_RETRY,
                summary=for_operations(f"notify {reminder.recipient}: {reminder.purpose}"),
            )
        except ActivityError:
            # The outbox row stays failed and shows in `course notifications --attention`; a mail
            # relay outage must not hold the course (and the clinicians' steps) hostage.
            workflow.logger.warning("notification not delivered", extra={"purpose": reminder.purpose})

    async def _check_eligibility(self, request: OpenCourse) -> EligibilityResult:
        try:
            result: EligibilityResult = await workflow.execute_activity(
                CHECK_ELIGIBILITY,
                EligibilityRequest(
                    course_id=str(request.course_id),
                    payer_id=request.payer_id,
                    member_ref=request.member_ref,
                    self_pay=request.self_pay,
                ),
                result_type=EligibilityResult,
                start_to_close_timeout=timedelta(seconds=30),
                schedule_to_close_timeout=timedelta(minutes=10),
                retry_policy=ELIGIBILITY_RETRY,
                summary=for_operations("check insurance eligibility"),
            )
            return result
        except ActivityError:
            # A payer that cannot be reached is not a reason to stall the course: staff clear it.
            return EligibilityResult(status=InsuranceStatus.UNKNOWN, reason="payer_unreachable")

    async def _keep_time(self, request: OpenCourse) -> None:
        """Sleep until the next reminder, overdue flag or deadline; re-plan when the state moves."""
        timer: asyncio.Task[None] | None = None
        planned: DueItem | None = None
        while not self._state.terminal:
            now = workflow.now()
            due = next_due(self._state, now)
            if due is not None and due.at <= now:
                async with self._lock:
                    await self._apply(Tick(), SYSTEM_ACTOR, None)
                continue
            if self._should_continue_as_new():
                if timer is not None:
                    timer.cancel()
                await workflow.wait_condition(workflow.all_handlers_finished)
                workflow.continue_as_new(
                    request.model_copy(update={"snapshot": self._state, "applied_updates": self._applied})
                )
            if due != planned:
                if timer is not None:
                    timer.cancel()
                timer = None
                if due is not None:
                    timer = asyncio.create_task(workflow.sleep(due.at - now, summary=for_operations(due.summary)))
                planned = due
            await workflow.wait_condition(self._moved_or_rang(self._state.version, timer))
            if timer is not None and timer.done():
                timer, planned = None, None
        if timer is not None:
            timer.cancel()

    def _moved_or_rang(self, version: int, timer: asyncio.Task[None] | None) -> Callable[[], bool]:
        return lambda: self._state.version != version or (timer is not None and timer.done())

    def _should_continue_as_new(self) -> bool:
        info = workflow.info()
        too_long = info.get_current_history_length() > HISTORY_EVENTS_PER_RUN
        return info.is_continue_as_new_suggested() or too_long

    def _publish(self) -> None:
        """Keep what operations staff see in the Temporal UI true to the state."""
        course = self._view()
        workflow.set_current_details(checklist(course))
        values = search_attributes.values_for(course)
        updates = search_attributes.changes(self._indexed, values)
        if updates:
            workflow.upsert_search_attributes(updates)
            self._indexed = values


__all__ = ["TreatmentCourseWorkflow", "workflow_id"]
