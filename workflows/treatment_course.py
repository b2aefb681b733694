"""TreatmentCourseWorkflow: validate with the decider, append through an activity, then fold.

Every clinician step is the `record` update. Its validator runs `decide`, so a command that breaks
a rule is rejected before anything reaches history or PostgreSQL. The handler re-decides under a
lock (handlers interleave while activities run), appends the events, and only then folds them
into the state: the state is always what the event store holds.

The stream is the record. Every run starts from the stream's head (a continue-as-new loads it and
adopts the store's fold; a reset's re-executed opening settles against the stored one), an append
that finds its versions taken by the same decision adopts the stored events, and one that finds a
different writer re-loads and re-decides. Nothing the course does on its own (store the opening,
the payer's answer, a timer's fact) can fail the workflow: it marks the course `NeedsAttention`,
tells operations, and retries with growing pauses or at `course retry`. Reminders are delivered
after their decision is stored, outside the lock, so a slow mail relay never holds a step.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.workflow import ActivityCancellationType

with workflow.unsafe.imports_passed_through():
    from activities.ports import (
        APPEND_EVENTS,
        CHECK_ELIGIBILITY,
        FOR_THE_NURSE_ON_DUTY,
        LOAD_COURSE,
        NURSE_ON_DUTY,
        AppendResult,
        CourseSummary,
        EligibilityRequest,
        EligibilityResult,
        EventBatch,
        LoadCourse,
        LoadedCourse,
        Notification,
        ReminderFacts,
    )
    from course.commands import (
        SYSTEM_ACTOR,
        Actor,
        Command,
        InsuranceStatus,
        RecordEligibility,
        Role,
        StepRequest,
        Tick,
        Withdraw,
    )
    from course.decider import decide
    from course.errors import RuleViolation
    from course.events import DomainEvent, EventEnvelope, EventMetadata, ReminderSent
    from course.provenance import CommandSignature
    from course.reconcile import FindingCode
    from course.state import CourseState, evolve, fold
    from course.timing import DueItem, next_due, next_for_staff
    from course.view import CourseView, StepOutcome, checklist, view
    from trust import keys
    from trust.signing import SignatureRefused
    from workflows import delivery, search_attributes
    from workflows.inputs import WORKFLOW_TYPE, OpenCourse, workflow_id
    from workflows.ui_text import for_operations

APPEND_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    maximum_interval=timedelta(seconds=30),
    non_retryable_error_types=["ConcurrencyError", "UnstorableEvent"],
)
# One append attempt: a single statement that takes milliseconds (bench/RESULTS.md). After a worker
# dies mid-append the clinician waits this long for the retry, so it is short; a retry that meets
# a slow first attempt still writing waits for it and settles by event ids.
APPEND_ATTEMPT = timedelta(seconds=10)
# Loading a stream is a read: a few attempts, then the course says it needs attention.
LOAD_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=10), maximum_attempts=5
)
LOAD_WITHIN = timedelta(minutes=2)
# The reminder is recorded as sent (attempted) after this, delivered or not: the course moves on.
NOTIFY_WITHIN = timedelta(minutes=5)
ELIGIBILITY_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), maximum_interval=timedelta(minutes=1))
# A course that cannot record what it decided on its own tries again after these pauses (then
# every hour), or at once on `course retry`.
FIRST_PAUSE = timedelta(seconds=10)
LONGEST_PAUSE = timedelta(hours=1)
# Past this many history events a run hands over to a fresh one (continue-as-new).
HISTORY_EVENTS_PER_RUN = 2000
# Update ids remembered across continue-as-new: far more than a clinician's retries could span.
APPLIED_UPDATES_KEPT = 500
# Patch ids (workflow.patched): histories recorded before each change replay the old way.
LOADS_AT_RUN_START = "load-stream-at-run-start"
DELIVERS_AFTER_APPEND = "deliver-reminders-after-append"
HONOURS_CANCEL_AFTER_APPEND = "honour-a-cancel-an-append-outran"
REFUSES_EARLY_SESSION_STEPS = "refuse-check-in-and-dose-long-before-the-session"
# `NextDueAt` says when staff are next asked for something (patient reminders left out), and a
# run that ends leaves its last timer to the server instead of cancelling it: both save history
# events (bench/FINDINGS.md), and both change the commands a run sends.
PUBLISHES_STAFF_DUE = "next-due-for-staff-only"
# Operations cancelled the workflow (the Temporal UI, `temporal workflow cancel`): a withdrawal.
CANCEL_REASON = "cancelled_by_operations"


def rejection(violation: RuleViolation) -> ApplicationError:
    """The rejected update a clinician sees: stable code in `type`'s details, plain message."""
    return ApplicationError(violation.message, violation.code, type="RuleViolation", non_retryable=True)


def failure_code(error: ActivityError) -> str:
    """A reason code for an activity that failed for good: the error type, never its message."""
    cause = error.cause
    kind = cause.type if isinstance(cause, ApplicationError) and cause.type else type(cause).__name__
    return {
        "ConcurrencyError": "stream_conflict",
        "UnstorableEvent": "unstorable_event",
        "UnreadableStream": "stream_unreadable",
    }.get(kind or "", "activity_failed")


@workflow.defn(name=WORKFLOW_TYPE)
class TreatmentCourseWorkflow:
    @workflow.init
    def __init__(self, request: OpenCourse) -> None:
        self._lock = asyncio.Lock()
        self._indexed: search_attributes.IndexedValues = {}
        self._unsaved: list[EventEnvelope] = []
        self._applied: list[str] = list(request.applied_updates)
        self._attention: str | None = None
        # What the clinic's reconciliation found about this course (course/reconcile.py), until a
        # later run finds it settled. Not carried across continue-as-new: the next hourly run
        # marks the course again if the finding stands.
        self._reconciled: str | None = None
        self._pauses = 0
        self._retry_now = False
        self._cancel_requested = False
        self._cancel_noticed = False  # once a workflow cancel has been seen, by any path
        self._resync_requested = False
        self._deliveries: set[asyncio.Task[None]] = set()
        self._deliver_after_append = False
        self._loads = False
        self._started = False
        # Check-in and dose hours before the session's time are refused (course/decider.py); a
        # history that accepted one before the rule existed replays as it ran.
        self._session_window = workflow.patched(REFUSES_EARLY_SESSION_STEPS)
        self._staff_due = workflow.patched(PUBLISHES_STAFF_DUE)
        if request.snapshot is not None:
            self._state = request.snapshot
            # Updates wait until the run has loaded the stream's head (see `_start`); a run
            # recorded before that change took steps on its snapshot at once.
            self._loads = workflow.patched(LOADS_AT_RUN_START)
            self._ready = not self._loads
            return
        opened = request.opened()
        self._unsaved = self._envelopes(None, [opened], request.opened_by, None)
        state = evolve(None, self._unsaved[0])
        self._state = state
        # Updates wait until CourseOpened is durable, so no step is stored before the course.
        self._ready = False

    @workflow.run
    async def run(self, request: OpenCourse) -> CourseView:
        self._deliver_after_append = workflow.patched(DELIVERS_AFTER_APPEND)
        while True:
            try:
                if not self._started:
                    await self._start(request)
                    self._started = True
                await self._keep_time(request)
                break
            except asyncio.CancelledError:
                # Raised into whatever the run awaited (a timer, the payer); an append in flight
                # is waited for and adopted (`_store`).
                self._cancel_requested = self._cancel_noticed = True
        await workflow.wait_condition(lambda: workflow.all_handlers_finished() and not self._deliveries)
        return self._view()

    @workflow.update
    async def record(self, request: StepRequest) -> StepOutcome:
        """Answers with the small `StepOutcome` (histories recorded before it answered with the whole
        `CourseView`; a result is not replayed, so they replay unchanged). The view is `status`."""
        update = workflow.current_update_info()
        await workflow.wait_condition(lambda: self._ready)
        async with self._lock:
            if self._already_applied(update):
                return StepOutcome.of(self._view())
            try:
                await self._apply(request.command, request.actor, update, signature=request.signature)
            except RuleViolation as violation:
                raise rejection(violation) from None
            except ActivityError as error:
                raise rejection(
                    RuleViolation(
                        "not_stored",
                        f"This step could not be stored ({failure_code(error)}); nothing was recorded. "
                        "Try again; if it is refused again, tell operations.",
                    )
                ) from None
            if update is not None:
                self._remember_update(update.id)
        return StepOutcome.of(self._view())

    @record.validator
    def _validate_record(self, request: StepRequest) -> None:
        self._check_signature(request)
        if self._already_applied(workflow.current_update_info()):
            return  # a retry of a step applied in an earlier run: answered with the current view
        if not self._ready and self._state_may_be_behind():
            # A run that has not loaded the stream's head yet (after continue-as-new or a reset):
            # this state may be behind, so the handler decides once it is loaded.
            return
        try:
            decide(self._state, request.command, request.actor, workflow.now(), session_window=self._session_window)
        except RuleViolation as violation:
            raise rejection(violation) from None

    def _state_may_be_behind(self) -> bool:
        """A brand-new course's first run starts from its own opening, the truth; a continued run
        starts from a snapshot and a reset run from its input, either of which the stream may
        have moved past (a reset keeps the first run's id as `first_execution_run_id`)."""
        info = workflow.info()
        return not self._unsaved or info.run_id != info.first_execution_run_id

    def _check_signature(self, request: StepRequest) -> None:
        """Refuse a step the clinic's API did not sign for this course, this request and this
        staff member, or signed too long ago. Validators never run on replay, so the worker's
        keys (configured at start-up, not in history) cannot make a history non-deterministic."""
        ring = keys.ring()
        if ring is None:
            return  # this worker was started without VERIFY_KEYS (development and tests only)
        update = workflow.current_update_info()
        try:
            ring.check(
                request.signature,
                course_id=str(self._state.course_id),
                update_id=update.id if update is not None else None,
                actor_id=request.actor.id,
                role=request.actor.role.value,
                step=request.command.step,
                payload=request.command.model_dump(mode="json"),
                now=workflow.now(),
                window=self._state.policy.command_window,
            )
        except SignatureRefused as refused:
            raise rejection(RuleViolation(refused.code, refused.message)) from None

    @workflow.signal
    def retry(self) -> None:
        """`course retry`: try what the course could not record now, not after its pause."""
        self._retry_now = True

    @workflow.signal
    def resync(self) -> None:
        """`course resync`: load the stream's head now and adopt it (after a repair in the store,
        or a fix to `evolve` that running courses should fold by)."""
        self._resync_requested = True

    @workflow.signal
    def reconciled(self, code: str | None) -> None:
        """The clinic's reconciliation (workflows/clinic.py) marks the course `NeedsAttention` with
        its finding's code, or clears its mark (None). An unknown code is ignored: a signal cannot
        be refused, and only codes may reach a search attribute."""
        if code is not None and code not in {c.value for c in FindingCode}:
            workflow.logger.warning("unknown reconciliation code ignored")
            return
        if code != self._reconciled:
            self._reconciled = code
            self._publish()

    def _already_applied(self, update: workflow.UpdateInfo | None) -> bool:
        # Temporal deduplicates update ids within a run only; these ids cross continue-as-new.
        return update is not None and update.id in self._applied

    def _remember_update(self, update_id: str) -> None:
        if update_id not in self._applied:
            self._applied = [*self._applied, update_id][-APPLIED_UPDATES_KEPT:]

    @workflow.query
    def status(self) -> CourseView:
        return self._view()

    @workflow.query
    def state(self) -> CourseState:
        return self._state

    # --- the shell ----------------------------------------------------------------------------

    def _view(self) -> CourseView:
        course = view(self._state, workflow.now())
        # The course's own reason first: it is what the course itself is retrying.
        attention = self._attention or self._reconciled
        return course.model_copy(update={"attention": attention}) if attention else course

    def _envelopes(
        self,
        state: CourseState | None,
        events: list[DomainEvent],
        actor: Actor,
        update: workflow.UpdateInfo | None,
        signature: CommandSignature | None = None,
        *,
        command: Command | None = None,
    ) -> list[EventEnvelope]:
        info = workflow.info()
        base = state.version if state is not None else 0
        metadata = EventMetadata(
            actor=actor,
            update_id=update.id if update else None,
            workflow_id=info.workflow_id,
            run_id=info.run_id,
            signature=signature,
        )
        # The signed command rides on the batch's first event: `course verify` re-checks the
        # signature over it and re-decides the batch from it.
        first = (
            metadata.model_copy(update={"command": command.model_dump(mode="json")})
            if signature and command is not None
            else metadata
        )
        stream_id = state.stream_id if state is not None else info.workflow_id
        return [
            EventEnvelope(
                event_id=workflow.uuid4(),
                stream_id=stream_id,
                version=base + offset,
                occurred_at=workflow.now(),
                metadata=first if offset == 1 else metadata,
                event=event,
            )
            for offset, event in enumerate(events, start=1)
        ]

    async def _start(self, request: OpenCourse) -> None:
        """Reach the stream's head: store the opening (first run) or load and adopt (later runs),
        then ask the payer once if the stream holds no answer yet."""
        while not self._ready:
            try:
                async with self._lock:
                    if self._unsaved:
                        stored = await self._store(self._unsaved, 0, self._state)
                        if stored.adopted:  # a reset re-executed the opening: the stream stands
                            await self._reload()
                    elif self._loads:
                        await self._reload()
                self._unsaved = []
                self._ready = True
                self._settled()
            except ActivityError as error:
                await self._pause(failure_code(error))
        self._publish()
        if self._state.insurance is None and not self._state.terminal:
            result = await self._check_eligibility(request)
            answer = RecordEligibility(
                status=result.status,
                reason=result.reason,
                in_network=result.in_network,
                patient_share=result.patient_share,
            )
            while not await self._system(answer):
                await self._pause(self._attention or "activity_failed")

    async def _system(self, command: Command) -> bool:
        """Apply what the course decided on its own. False (and NeedsAttention) if it could not be
        stored; the caller pauses and tries again."""
        async with self._lock:
            try:
                await self._apply(command, SYSTEM_ACTOR, None)
            except ActivityError as error:
                self._needs_attention(failure_code(error))
                return False
            except RuleViolation as violation:  # pragma: no cover - system commands are never refused
                self._needs_attention(violation.code)
                return False
        self._settled()
        return True

    async def _apply(
        self,
        command: Command,
        actor: Actor,
        update: workflow.UpdateInfo | None,
        *,
        again: bool = True,
        signature: CommandSignature | None = None,
    ) -> None:
        """Decide, append, fold, then deliver reminders. The caller holds the lock."""
        events = decide(self._state, command, actor, workflow.now(), session_window=self._session_window)
        if not events:
            return
        envelopes = self._envelopes(self._state, events, actor, update, signature, command=command)
        reminders = [e.event for e in envelopes if isinstance(e.event, ReminderSent)]
        if not self._deliver_after_append:
            for reminder in reminders:  # the order of histories recorded before the patch
                await self._notify(reminder)
        after = fold(self._state, envelopes)
        assert after is not None  # folding onto a state never yields None
        try:
            result = await self._store(envelopes, self._state.version, after)
        except ActivityError as error:
            if failure_code(error) != "stream_conflict":
                raise
            # Another writer holds these versions: load what the store holds and decide again.
            await self._reload()
            if update is not None and update.id in self._applied:
                return  # that writer was this very step (an earlier run's attempt)
            if not again:
                raise RuleViolation(
                    "course_changed",
                    "The course changed while this step was being recorded. Look at the course again "
                    "and repeat the step if it is still needed.",
                ) from None
            await self._apply(command, actor, update, again=False, signature=signature)
            return
        if result.adopted:
            await self._reload()  # the same decision is stored under other ids: adopt the store's
        else:
            self._state = after
        self._publish()
        if self._deliver_after_append:
            for reminder in reminders:
                self._deliver(self._reminder_notification(reminder))

    async def _store(self, envelopes: list[EventEnvelope], expected_version: int, after: CourseState) -> AppendResult:
        # A remote activity on purpose, though a local one would halve a step's history and
        # latency: a local activity writes before the workflow task that decided the events is
        # durable, so a task that then fails (a worker crash, an aborted update) is re-decided
        # with other event ids or times than the ones already in PostgreSQL. The fault suite
        # caught exactly that (tests/faults/test_concurrency.py); see bench/FINDINGS.md.
        first, last = envelopes[0], envelopes[-1]
        stored_what = f"store {', '.join(e.type for e in envelopes)} (v{first.version}-{last.version})"
        try:
            result: AppendResult = await workflow.execute_activity(
                APPEND_EVENTS,
                EventBatch(
                    stream_id=first.stream_id,
                    expected_version=expected_version,
                    events=envelopes,
                    summary=CourseSummary.of(after),
                ),
                result_type=AppendResult,
                start_to_close_timeout=APPEND_ATTEMPT,
                retry_policy=APPEND_RETRY,
                # A cancel of the workflow (the UI, `temporal workflow cancel`) while the append
                # runs waits for the attempt to end (it does not heartbeat, so it is never told):
                # whatever it stored is then known, and adopted below.
                cancellation_type=ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                summary=for_operations(stored_what),
            )
        except asyncio.CancelledError:
            # The append may have committed: answer "adopted" so the caller re-loads the stream
            # instead of folding its own batch; the cancel is honoured afterwards (`_honour_cancel`).
            # (asyncio.shield here kept the append alive too, but under bursts of updates it left
            # update workflow tasks failing as "not found" on completion: a livelock.)
            self._cancel_requested = self._cancel_noticed = True
            return AppendResult(version=expected_version, written=0, adopted=True)
        self._notice_a_swallowed_cancel()
        return result

    def _notice_a_swallowed_cancel(self) -> None:
        """A cancel that arrived while an append ran, which then completed: the SDK hands the await
        its result and raises nothing (the activity "won"), so the run would go on as if no one had
        asked. The request is still on record (`cancellation_reason`); honour it once. Found by the
        fault suite: a cancel from the UI during a timer's append left the course running."""
        if self._cancel_noticed or workflow.cancellation_reason() is None:
            return
        self._cancel_noticed = True
        if workflow.patched(HONOURS_CANCEL_AFTER_APPEND):  # histories that went on before the fix replay as they ran
            self._cancel_requested = True

    async def _reload(self) -> None:
        """Adopt the stream's head as the store holds it (folded by this worker's `evolve`)."""
        loaded = await workflow.execute_activity(
            LOAD_COURSE,
            LoadCourse(stream_id=self._state.stream_id, updates_kept=APPLIED_UPDATES_KEPT),
            result_type=LoadedCourse,
            start_to_close_timeout=timedelta(seconds=30),
            schedule_to_close_timeout=LOAD_WITHIN,
            retry_policy=LOAD_RETRY,
            summary=for_operations("load the course's stream"),
        )
        if loaded.state is None:
            # A snapshot whose stream is gone (a restored database?): keep it, tell operations.
            self._needs_attention("stream_missing")
            return
        self._state = loaded.state
        for update_id in loaded.applied_updates:
            self._remember_update(update_id)

    def _reminder_notification(self, reminder: ReminderSent) -> Notification:
        state = self._state
        recipient_id = {
            "patient": state.patient_id,
            "clinician": state.clinician_id,
            "therapist": state.therapist_id,
            "operations": NURSE_ON_DUTY if reminder.purpose in FOR_THE_NURSE_ON_DUTY else None,
        }[reminder.recipient]
        return Notification(
            idempotency_key=f"{workflow.info().workflow_id}:{reminder.key}",
            stream_id=state.stream_id,
            purpose=reminder.purpose,
            recipient=reminder.recipient,
            recipient_id=recipient_id,
            due_at=reminder.due_at,
            facts=ReminderFacts(session_number=reminder.session_number, subject_at=reminder.subject_at),
        )

    async def _notify(self, reminder: ReminderSent) -> None:
        await self._send(self._reminder_notification(reminder))

    def _deliver(self, notification: Notification) -> None:
        """Deliver outside the lock: steps go on while a mail relay is slow. The outbox keys each
        notification, so a delivery re-run after a crash or a reset is sent once."""
        task = asyncio.create_task(self._send(notification))
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def _send(self, notification: Notification) -> None:
        summary = f"notify {notification.recipient}: {notification.purpose}"
        await delivery.send(notification, within=NOTIFY_WITHIN, summary=summary)

    def _needs_attention(self, code: str) -> None:
        """Mark the course for operations (search attribute, checklist) and tell them, once per
        episode. Codes only: the reason never carries patient data."""
        first = self._attention is None
        self._attention = code
        self._publish()
        if first:
            workflow.logger.warning("course needs attention", extra={"reason": code})
            self._deliver(
                Notification(
                    idempotency_key=f"{workflow.info().workflow_id}:attention-{code}-v{self._state.version}",
                    stream_id=self._state.stream_id,
                    purpose="course_needs_attention",
                    recipient="operations",
                    recipient_id=None,
                    due_at=workflow.now(),
                    facts=ReminderFacts(reason=code),
                )
            )

    def _settled(self) -> None:
        self._pauses = 0
        if self._attention is not None:
            self._attention = None
            self._publish()

    async def _pause(self, code: str) -> None:
        """Wait before trying again: growing pauses, or until `course retry` or a step moves it."""
        self._needs_attention(code)
        pause = min(FIRST_PAUSE * (2**self._pauses), LONGEST_PAUSE)
        self._pauses += 1
        self._retry_now = False
        version = self._state.version
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self._retry_now or self._state.version != version,
                timeout=pause,
                timeout_summary=for_operations(f"retry in {pause}"),
            )

    async def _honour_cancel(self) -> None:
        """A cancel from operations withdraws the course; a closed course keeps its outcome."""
        self._cancel_requested = False
        withdraw = Withdraw(reason=CANCEL_REASON)
        async with self._lock:
            try:
                await self._apply(withdraw, Actor(id=SYSTEM_ACTOR.id, role=Role.OPERATIONS), None)
            except RuleViolation as violation:
                workflow.logger.warning("cancel refused", extra={"code": violation.code})
            except ActivityError as error:
                self._needs_attention(failure_code(error))
                self._cancel_requested = True  # withdrawn at the next pass once it can be stored

    async def _resync(self) -> None:
        self._resync_requested = False
        async with self._lock:
            try:
                await self._reload()
            except ActivityError as error:
                self._needs_attention(failure_code(error))
                return
        self._settled()
        self._publish()

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
            if self._cancel_requested:
                await self._honour_cancel()
                continue
            if self._resync_requested:
                await self._resync()
                continue
            now = workflow.now()
            due = next_due(self._state, now)
            if due is not None and due.at <= now:
                if not await self._system(Tick()):
                    await self._pause(self._attention or "activity_failed")
                continue
            if self._pauses and (due is None or due.at > now):
                self._settled()  # what could not be stored is no longer due (a step moved the course)
            if self._should_continue_as_new():
                if timer is not None:
                    timer.cancel()
                # Deliveries in flight finish first: the outbox would not resend them otherwise.
                await workflow.wait_condition(lambda: workflow.all_handlers_finished() and not self._deliveries)
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
        if timer is not None and not self._staff_due:
            # The run ends once its handlers finish: a timer still pending ends with it.
            timer.cancel()

    def _moved_or_rang(self, version: int, timer: asyncio.Task[None] | None) -> Callable[[], bool]:
        return lambda: (
            self._state.version != version
            or (timer is not None and timer.done())
            or self._cancel_requested
            or self._resync_requested
        )

    def _should_continue_as_new(self) -> bool:
        info = workflow.info()
        too_long = info.get_current_history_length() > HISTORY_EVENTS_PER_RUN
        return info.is_continue_as_new_suggested() or too_long

    def _publish(self) -> None:
        """Keep what operations staff see in the Temporal UI true to the state."""
        course = self._view()
        workflow.set_current_details(checklist(course))
        if self._staff_due:
            item = next_for_staff(self._state, workflow.now())
            due_at = item.at if item else None
        else:
            due_at = course.next_due.at if course.next_due else None
        values = search_attributes.values_for(course, due_at)
        updates = search_attributes.changes(self._indexed, values)
        if updates:
            workflow.upsert_search_attributes(updates)
            self._indexed = values


__all__ = ["TreatmentCourseWorkflow", "workflow_id"]
