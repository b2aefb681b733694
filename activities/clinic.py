"""The clinic's scheduled work (workflows/clinic.py): the morning huddle and the reconciliation.

Both read Temporal (visibility, each running course's `state` query), the event store and the
notifications outbox, hand what they read to the pure rules (course/huddle.py, course/reconcile.py),
store the run in `clinic_runs` / `reconcile_findings` (migrations/0009) and return the digests to
send, which the workflow delivers through the outbox like any reminder (at most once per key).
Only the courses of this worker's task queue are looked at: a deployment has one; tests have one
each.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import structlog
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from activities.clinic_messages import GATHER_HUDDLE, RECONCILE_COURSES, HuddleRun, ReconcileRun
from activities.ports import Notification, ReminderFacts
from application.courses import CourseClient
from application.notifications import ATTENTION
from application.queries import BASE
from course import huddle, reconcile
from course.commands import Actor, Role
from course.huddle import CourseAtHuddle, CourseItem, FailedNotification, HuddleDigest, Unanswered
from course.reconcile import CourseObservation, Finding, FindingCode, SendingRow
from course.state import CourseState, Phase
from workflows import search_attributes as sa
from workflows.treatment_course import TreatmentCourseWorkflow

log = structlog.get_logger(__name__)

# How long one course may take to answer its `state` query, and how many are asked at once.
QUERY_SECONDS = 5.0
QUERIES_AT_ONCE = 8
FAILED_LISTED = 200


def _run_id() -> str:
    """The run's key: the scheduled workflow's id (`clinic-reconcile-2026-12-02T08:00:00Z`) and its
    Temporal run. The id alone is not enough: it has a resolution of a second, and two triggers in
    one second (the UI's button pressed twice) start two runs under the same id. A retried
    activity keeps its run's key, so it replaces its own rows and sends nothing twice."""
    info = activity.info()
    if info.workflow_id is None or info.workflow_run_id is None:
        raise RuntimeError("the clinic's activities run inside their workflows")
    return f"{info.workflow_id}@{info.workflow_run_id}"


@dataclass(frozen=True)
class RunningCourse:
    stream_id: str
    phase: Phase
    clinician_id: str
    therapist_id: str | None
    attention: str | None


class ClinicActivities:
    def __init__(
        self,
        client: Client,
        pool: asyncpg.Pool,
        *,
        task_queue: str,
        time_zone: str,
        stuck_sending_after: timedelta = timedelta(minutes=10),
        confirm_after: float = 2.0,
    ) -> None:
        self._courses = CourseClient(client, task_queue)
        self._pool = pool
        self._task_queue = task_queue
        self._zone = ZoneInfo(time_zone)
        self._stuck_after = stuck_sending_after
        self._confirm_after = confirm_after

    # --- what both read ------------------------------------------------------------------------

    async def _running(self) -> list[RunningCourse]:
        query = f"{BASE} AND ExecutionStatus = 'Running'"
        running: list[RunningCourse] = []
        async for execution in self._courses.temporal.list_workflows(query):
            if execution.task_queue != self._task_queue:
                continue
            attrs = execution.typed_search_attributes
            phase = attrs.get(sa.COURSE_PHASE)
            running.append(
                RunningCourse(
                    stream_id=execution.id,
                    phase=Phase(phase) if phase in {p.value for p in Phase} else Phase.ASSESSMENT,
                    clinician_id=attrs.get(sa.CLINICIAN_ID) or "-",
                    therapist_id=attrs.get(sa.THERAPIST_ID),
                    attention=attrs.get(sa.NEEDS_ATTENTION),
                )
            )
        return running

    async def _states(self, stream_ids: Iterable[str]) -> dict[str, CourseState | None]:
        """Each course's state as its workflow holds it; None when it did not answer in time."""
        gate = asyncio.Semaphore(QUERIES_AT_ONCE)

        async def ask(stream_id: str) -> tuple[str, CourseState | None]:
            async with gate:
                try:
                    course = stream_id.removeprefix("course-")
                    return stream_id, await asyncio.wait_for(self._courses.state(course), QUERY_SECONDS)
                except Exception as error:  # noqa: BLE001 - any failure to answer is "did not answer", named
                    log.warning("course did not answer", stream_id=stream_id, error=type(error).__name__)
                    return stream_id, None

        return dict(await asyncio.gather(*(ask(s) for s in stream_ids)))

    async def _last_findings(self) -> tuple[str | None, list[tuple[str, str]]]:
        run = await self._pool.fetchval(
            "SELECT run_id FROM clinic_runs WHERE kind = 'reconcile' ORDER BY made_at DESC LIMIT 1"
        )
        if run is None:
            return None, []
        rows = await self._pool.fetch("SELECT stream_id, code FROM reconcile_findings WHERE run_id = $1", run)
        return run, [(r["stream_id"], r["code"]) for r in rows]

    # --- the morning huddle --------------------------------------------------------------------

    @activity.defn(name=GATHER_HUDDLE)
    async def gather_huddle(self) -> HuddleRun:
        run_id = _run_id()
        now = datetime.now(UTC)
        running = await self._running()
        states = await self._states(r.stream_id for r in running)
        courses = [
            CourseAtHuddle(state=state, attention=r.attention)
            for r in running
            if (state := states[r.stream_id]) is not None
        ]
        unanswered = [
            Unanswered(
                course_id=r.stream_id.removeprefix("course-"),
                phase=r.phase,
                clinician_id=r.clinician_id,
                therapist_id=r.therapist_id,
            )
            for r in running
            if states[r.stream_id] is None
        ]
        digest = huddle.assemble_huddle(
            huddle.clinic_day(now, self._zone),
            now,
            courses,
            failed=await self._failed_notifications(),
            unanswered=unanswered,
            flagged=await self._flagged(),
        )
        await self._pool.execute(
            "INSERT INTO clinic_runs (run_id, kind, made_at, body) VALUES ($1, 'daily_huddle', $2, $3::jsonb) "
            "ON CONFLICT (run_id) DO UPDATE SET made_at = excluded.made_at, body = excluded.body",
            run_id,
            now,
            digest.model_dump(mode="json"),  # the pool's jsonb codec encodes it (activities/event_store.py)
        )
        log.info("huddle gathered", run_id=run_id, courses=len(running), empty=digest.empty)
        return HuddleRun(run_id=run_id, digest=digest, notifications=self._huddle_notifications(run_id, now, digest))

    async def _flagged(self) -> list[CourseItem]:
        """The courses of the last reconciliation's findings, with their care team and phase."""
        run, _ = await self._last_findings()
        rows = await self._pool.fetch(
            "SELECT f.stream_id, array_agg(DISTINCT f.code) AS codes, s.phase, s.clinician_id, s.therapist_id "
            "FROM reconcile_findings f JOIN course_summaries s ON s.stream_id = f.stream_id "
            "WHERE f.run_id = $1 GROUP BY f.stream_id, s.phase, s.clinician_id, s.therapist_id",
            run,
        )
        return [
            CourseItem(
                course_id=r["stream_id"].removeprefix("course-"),
                phase=Phase(r["phase"]),
                clinician_id=r["clinician_id"],
                therapist_id=r["therapist_id"],
                codes=list(r["codes"]),
            )
            for r in rows
        ]

    async def _failed_notifications(self) -> list[FailedNotification]:
        rows = await self._pool.fetch(
            "SELECT n.idempotency_key, n.stream_id, n.purpose, n.recipient, n.status, n.last_error, "
            "s.clinician_id, s.therapist_id, s.phase FROM notifications n "
            "LEFT JOIN course_summaries s ON s.stream_id = n.stream_id "
            "WHERE n.status = ANY($1::text[]) ORDER BY n.updated_at DESC LIMIT $2",
            list(ATTENTION),
            FAILED_LISTED,
        )
        return [
            FailedNotification(
                key=r["idempotency_key"],
                course_id=r["stream_id"].removeprefix("course-") if r["stream_id"].startswith("course-") else None,
                purpose=r["purpose"],
                recipient=r["recipient"],
                status=r["status"],
                error=r["last_error"],
                clinician_id=r["clinician_id"],
                therapist_id=r["therapist_id"],
                phase=Phase(r["phase"]) if r["phase"] else None,
            )
            for r in rows
        ]

    @staticmethod
    def _huddle_notifications(run_id: str, now: datetime, digest: HuddleDigest) -> list[Notification]:
        """Operations get the whole digest; each clinician and therapist named, their own part."""

        def note(recipient: str, staff_id: str | None, part: HuddleDigest) -> Notification:
            return Notification(
                idempotency_key=f"{run_id}:{recipient}:{staff_id or 'team'}",
                stream_id=run_id,
                purpose="daily_huddle",
                recipient="operations" if recipient == "operations" else "clinician",
                recipient_id=staff_id,
                due_at=now,
                facts=ReminderFacts(digest=huddle.digest_lines(part)),
            )

        notes = [note("operations", None, digest)]
        clinicians = {i.clinician_id for i in digest.sessions_today + digest.follow_ups_overdue}
        clinicians |= {i.clinician_id for i in digest.reviews_pending + digest.needs_attention}
        for staff_id in digest.staff_ids():
            role = Role.PRESCRIBER if staff_id in clinicians else Role.THERAPIST
            part = huddle.part_for(digest, Actor(id=staff_id, role=role))
            if not part.empty:
                notes.append(note("staff", staff_id, part))
        return notes

    # --- the reconciliation --------------------------------------------------------------------

    @activity.defn(name=RECONCILE_COURSES)
    async def reconcile_courses(self) -> ReconcileRun:
        run_id = _run_id()
        now = datetime.now(UTC)
        # Visibility names the running courses, the store the open ones; each is then described,
        # not taken from visibility, which lags (a course terminated a second ago is listed running).
        running = {r.stream_id for r in await self._running()}
        open_streams = {
            r["stream_id"]
            for r in await self._pool.fetch("SELECT stream_id FROM course_summaries WHERE phase <> 'closed'")
        }
        streams, first = await self._observe(sorted(running | open_streams))
        findings = first
        if first:
            await asyncio.sleep(self._confirm_after)
            _, again = await self._observe(sorted({f.stream_id for f in first}))
            findings = reconcile.confirmed(first, again)
        findings += reconcile.stuck_notifications(await self._sending(), now, self._stuck_after)
        previous_run, previous = await self._last_findings()
        await self._store(run_id, now, len(streams), findings)
        marked, cleared = await self._mark(findings, {s for s, _ in previous} if previous_run != run_id else set())
        log.info("reconciled", run_id=run_id, courses=len(streams), findings=len(findings), marked=len(marked))
        notification = None
        if findings:
            notification = Notification(
                idempotency_key=f"{run_id}:operations",
                stream_id=run_id,
                purpose="reconcile_findings",
                recipient="operations",
                recipient_id=None,
                due_at=now,
                facts=ReminderFacts(digest=reconcile.digest_lines(findings, now)),
            )
        return ReconcileRun(
            run_id=run_id,
            courses_checked=len(streams),
            findings=findings,
            marked=marked,
            cleared=cleared,
            notification=notification,
        )

    async def _status_of(self, stream_id: str) -> str | None:
        """The workflow's execution status as Temporal holds it now; None: no such workflow;
        `elsewhere`: a course of another task queue (another deployment's, another test's), not
        ours to judge."""
        try:
            described = await self._courses.temporal.get_workflow_handle(stream_id).describe()
        except RPCError as error:
            if error.status == RPCStatusCode.NOT_FOUND:
                return None
            raise
        if described.task_queue != self._task_queue:
            return "elsewhere"
        status = described.status or WorkflowExecutionStatus.RUNNING
        return status.name.lower()

    async def _observe(self, candidates: Sequence[str]) -> tuple[list[str], list[Finding]]:
        """One look at each course: the streams judged, and what was found."""
        gate = asyncio.Semaphore(QUERIES_AT_ONCE)

        async def status(stream: str) -> tuple[str, str | None]:
            async with gate:
                return stream, await self._status_of(stream)

        statuses = dict(await asyncio.gather(*(status(s) for s in candidates)))
        streams = [s for s in candidates if statuses[s] != "elsewhere"]
        if not streams:
            return [], []
        heads = {
            r["stream_id"]: r["head"]
            for r in await self._pool.fetch(
                "SELECT stream_id, max(version) AS head FROM events "
                "WHERE stream_id = ANY($1::text[]) GROUP BY stream_id",
                list(streams),
            )
        }
        summaries = {
            r["stream_id"]: (r["version"], r["phase"])
            for r in await self._pool.fetch(
                "SELECT stream_id, version, phase FROM course_summaries WHERE stream_id = ANY($1::text[])",
                list(streams),
            )
        }
        states = await self._states(s for s in streams if statuses.get(s) == "running")
        findings: list[Finding] = []
        for stream in streams:
            state = states.get(stream)
            summary = summaries.get(stream)
            findings += reconcile.course_findings(
                CourseObservation(
                    stream_id=stream,
                    workflow_status=statuses.get(stream),
                    workflow_version=state.version if state is not None else None,
                    stream_head=heads.get(stream),
                    summary_version=summary[0] if summary else None,
                    summary_open=summary is not None and summary[1] != Phase.CLOSED.value,
                )
            )
        return streams, findings

    async def _sending(self) -> list[SendingRow]:
        rows = await self._pool.fetch(
            "SELECT idempotency_key, stream_id, claimed_at FROM notifications WHERE status = 'sending'"
        )
        return [
            SendingRow(key=r["idempotency_key"], stream_id=r["stream_id"], claimed_at=r["claimed_at"]) for r in rows
        ]

    async def _store(self, run_id: str, now: datetime, checked: int, findings: list[Finding]) -> None:
        """The run and its findings, once per run id: a retried activity replaces its own rows."""
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO clinic_runs (run_id, kind, made_at, body) VALUES ($1, 'reconcile', $2, $3::jsonb) "
                "ON CONFLICT (run_id) DO UPDATE SET made_at = excluded.made_at, body = excluded.body",
                run_id,
                now,
                {"courses_checked": checked, "findings": len(findings)},
            )
            await conn.execute("DELETE FROM reconcile_findings WHERE run_id = $1", run_id)
            await conn.executemany(
                "INSERT INTO reconcile_findings (run_id, subject, stream_id, code, detail) "
                "VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT DO NOTHING",
                [(run_id, f.subject, f.stream_id, f.code.value, f.detail) for f in findings],
            )

    async def _mark(self, findings: list[Finding], marked_before: set[str]) -> tuple[dict[str, str], list[str]]:
        """Signal each running course its code (NeedsAttention), and lift the marks the last run
        set on courses that are settled now. A course whose workflow is not running cannot be
        signalled: its stored finding is its mark (the console and `course reconcile --last`)."""
        worst = reconcile.marks(findings)
        marked: dict[str, str] = {}
        for course_id, code in sorted(worst.items()):
            if code is FindingCode.WORKFLOW_NOT_RUNNING:
                continue
            if await self._signal(course_id, code.value):
                marked[course_id] = code.value
        cleared: list[str] = []
        for stream_id in sorted(marked_before):
            course_id = stream_id.removeprefix("course-")
            if stream_id.startswith("course-") and course_id not in worst and await self._signal(course_id, None):
                cleared.append(course_id)
        return marked, cleared

    async def _signal(self, course_id: str, code: str | None) -> bool:
        handle = self._courses.temporal.get_workflow_handle_for(TreatmentCourseWorkflow.run, f"course-{course_id}")
        try:
            await handle.signal(TreatmentCourseWorkflow.reconciled, code)
        except RPCError as error:
            log.info("course not marked", course_id=course_id, error=error.status.name if error.status else "rpc")
            return False
        return True
