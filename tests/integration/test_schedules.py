"""The clinic's Schedules on the real dev server: they exist after setup (twice is the same as
once), the morning huddle says what the courses hold, and the reconciliation finds the course
whose workflow was terminated by hand, and only that one."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
import pytest_asyncio
from temporalio.client import ScheduleOverlapPolicy
from temporalio.testing import WorkflowEnvironment

from activities.clinic import ClinicActivities
from activities.eligibility import SelfPayProvider
from activities.event_store import PostgresEventStore
from activities.notifications import MemoryChannel, PostgresOutbox
from api.app import create_app
from api.staff import ConfiguredStaff, new_token, token_digest
from application.clinic_runs import ReconcileReport, last_reconcile, latest_huddle
from application.courses import CourseClient
from course.commands import Actor, Role
from course.huddle import HuddleDigest
from course.policy import CoursePolicy
from course.reconcile import FindingCode
from tests import story
from tests.api.conftest import BASE
from tests.conftest import eligibility_known, task_queue
from tests.integration.staff_cli import Cli
from worker.main import activities_for, build_worker
from worker.schedules import HUDDLE_SCHEDULE, RECONCILE_SCHEDULE, ensure_schedules
from worker.settings import Settings
from workflows.clinic import ReconcileWorkflow

pytestmark = pytest.mark.integration

# Zones far enough apart that one of them is between 02:00 and 21:00 now: a session an hour from
# now is then today there, whatever time the test runs.
ZONES = ("Europe/Berlin", "America/New_York", "Asia/Tokyo", "Pacific/Honolulu")


def daytime_zone() -> str:
    now = datetime.now(UTC)
    return next(z for z in ZONES if 2 <= now.astimezone(ZoneInfo(z)).hour < 21)


@dataclass
class Clinic:
    courses: CourseClient
    pool: asyncpg.Pool
    channel: MemoryChannel
    settings: Settings


@pytest_asyncio.fixture
async def clinic(dev_env: WorkflowEnvironment, pg_pool: asyncpg.Pool) -> AsyncIterator[Clinic]:
    queue = task_queue()
    zone = daytime_zone()
    settings = Settings(course_task_queue=queue, huddle_time_zone=zone, huddle_at="07:30")
    channel = MemoryChannel()
    scheduled = ClinicActivities(dev_env.client, pg_pool, task_queue=queue, time_zone=zone, confirm_after=0.5)
    worker = build_worker(
        dev_env.client,
        queue,
        activities_for(
            PostgresEventStore(pg_pool), SelfPayProvider(), PostgresOutbox(pg_pool), channel, schedules=scheduled
        ),
    )
    async with worker:
        await ensure_schedules(dev_env.client, settings)
        yield Clinic(CourseClient(dev_env.client, queue), pg_pool, channel, settings)


async def test_the_schedules_exist_and_setting_them_up_again_changes_nothing(
    dev_env: WorkflowEnvironment, clinic: Clinic
) -> None:
    client = dev_env.client
    assert await ensure_schedules(client, clinic.settings) == {
        HUDDLE_SCHEDULE: "unchanged",
        RECONCILE_SCHEDULE: "unchanged",
    }
    listed = {s.id async for s in await client.list_schedules()}
    assert {HUDDLE_SCHEDULE, RECONCILE_SCHEDULE} <= listed
    huddle = await client.get_schedule_handle(HUDDLE_SCHEDULE).describe()
    assert huddle.schedule.spec.time_zone_name == clinic.settings.huddle_zone
    # Paused by operations in the UI, then a new huddle time: updated in place, still paused.
    await client.get_schedule_handle(HUDDLE_SCHEDULE).pause(note="paused by ops-dunn")
    later = clinic.settings.model_copy(update={"huddle_at": "08:15"})
    assert (await ensure_schedules(client, later))[HUDDLE_SCHEDULE] == "updated"
    described = await client.get_schedule_handle(HUDDLE_SCHEDULE).describe()
    assert described.schedule.state.paused
    calendar = described.schedule.spec.calendars[0]
    assert (calendar.hour[0].start, calendar.minute[0].start) == (8, 15)
    assert (await ensure_schedules(client, later))[HUDDLE_SCHEDULE] == "unchanged"
    await client.get_schedule_handle(HUDDLE_SCHEDULE).unpause()


async def _prepared(courses: CourseClient, clinician: str, policy: CoursePolicy | None = None) -> str:
    course = str(await courses.open(story.opening(policy=policy).model_copy(update={"clinician_id": clinician})))
    await courses.record(course, story.assessment(), story.PRESCRIBER)
    for actor, command in story.preparation(datetime.now(UTC)):
        await courses.record(course, command, actor)  # type: ignore[arg-type]
    return course


async def _until(check: object, what: str, within: float = 30.0) -> None:
    assert callable(check)
    for _ in range(int(within / 0.2)):
        if await check():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {within:.0f}s")


async def _huddle_after(clinic: Clinic, since: datetime) -> HuddleDigest:
    found: list[HuddleDigest] = []

    async def made() -> bool:
        digest = await latest_huddle(clinic.pool)
        if digest is not None and digest.made_at > since:
            found.append(digest)
            return True
        return False

    await _until(made, "a huddle run")
    return found[-1]


async def test_the_huddle_says_what_today_holds(dev_env: WorkflowEnvironment, clinic: Clinic) -> None:
    courses = clinic.courses
    clinician = f"dr-huddle-{uuid.uuid4().hex[:6]}"
    today = await _prepared(courses, clinician)
    await courses.record(today, story.schedule(1, datetime.now(UTC) + timedelta(hours=1)), story.OPERATIONS)
    review = await _prepared(courses, clinician)
    await courses.record(review, story.check_in(1), story.NURSE)
    await courses.record(review, story.dose(1, patient_response="worse"), story.NURSE)
    quick = CoursePolicy(integration_reminder_after=timedelta(seconds=1), integration_due_within=timedelta(seconds=2))
    late = await _prepared(courses, clinician, quick)
    await courses.record(late, story.check_in(1), story.NURSE)
    await courses.record(late, story.dose(1), story.NURSE)
    waiting = str(await courses.open(story.opening().model_copy(update={"clinician_id": clinician})))
    someone_elses = await _prepared(courses, f"dr-other-{uuid.uuid4().hex[:6]}")
    await courses.record(someone_elses, story.check_in(1), story.NURSE)
    await courses.record(someone_elses, story.dose(1, patient_response="worse"), story.NURSE)

    async def overdue() -> bool:
        return (await courses.status(late)).flags.overdue

    await _until(overdue, "the 2-second integration follow-up lapsing")
    since = datetime.now(UTC)
    await dev_env.client.get_schedule_handle(HUDDLE_SCHEDULE).trigger(overlap=ScheduleOverlapPolicy.ALLOW_ALL)
    digest = await _huddle_after(clinic, since)

    def mine(items: list) -> set[str]:  # type: ignore[type-arg]
        return {i.course_id for i in items if i.clinician_id == clinician}

    assert mine(digest.sessions_today) == {today}
    assert mine(digest.reviews_pending) == {review}
    assert mine(digest.follow_ups_overdue) == {late}
    assert mine(digest.needs_attention) == set()
    everywhere = [*digest.sessions_today, *digest.reviews_pending, *digest.follow_ups_overdue]
    assert waiting not in {i.course_id for i in everywhere}
    assert digest.day.time_zone == clinic.settings.huddle_zone

    # Operations get the whole digest, the prescriber their own part; no patient reference in either.
    async def delivered() -> bool:
        return {
            m.notification.recipient_id for m in clinic.channel.messages if m.notification.purpose == "daily_huddle"
        } >= {
            None,
            clinician,
        }

    await _until(delivered, "the huddle digests delivered")
    part = next(m for m in clinic.channel.messages if m.notification.recipient_id == clinician)
    assert today in part.body and review in part.body and late in part.body
    assert someone_elses not in part.body and "pt-0001" not in part.body

    # The console's Today page: operations the whole digest and the reconciliation, the prescriber
    # their own part.
    pages = await _today_pages(clinic, Actor(id=clinician, role=Role.PRESCRIBER))
    for course in (today, review, late, someone_elses):
        assert f'href="/console/courses/{course}"' in pages[Role.OPERATIONS]
    assert 'id="reconciliation"' in pages[Role.OPERATIONS]
    mine_page = pages[Role.PRESCRIBER]
    assert all(f'href="/console/courses/{c}"' in mine_page for c in (today, review, late))
    assert someone_elses not in mine_page and 'id="reconciliation"' not in mine_page
    assert "pt-0001" not in mine_page + pages[Role.OPERATIONS]


async def _today_pages(clinic: Clinic, prescriber: Actor) -> dict[Role, str]:
    operations = Actor(id="ops-today", role=Role.OPERATIONS)
    tokens = {Role.OPERATIONS: new_token(), Role.PRESCRIBER: new_token()}
    staff = ConfiguredStaff(
        [(operations, token_digest(tokens[Role.OPERATIONS])), (prescriber, token_digest(tokens[Role.PRESCRIBER]))]
    )
    app = create_app(clinic.courses, staff, clinic.pool, time_zone=clinic.settings.huddle_zone, secure_cookies=False)
    pages: dict[Role, str] = {}
    for role, token in tokens.items():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE, headers={"Origin": BASE}) as http:
            signed = await http.post("/console/login", data={"token": token})
            assert signed.status_code == 303
            page = await http.get("/console/today")
            assert page.status_code == 200
            pages[role] = page.text
    return pages


async def test_the_reconciliation_finds_the_course_terminated_by_hand(
    dev_env: WorkflowEnvironment, clinic: Clinic
) -> None:
    courses = clinic.courses
    clinician = f"dr-recon-{uuid.uuid4().hex[:6]}"
    healthy = str(await courses.open(story.opening().model_copy(update={"clinician_id": clinician})))
    stopped = str(await courses.open(story.opening().model_copy(update={"clinician_id": clinician})))
    for course in (healthy, stopped):
        await courses.record(course, story.assessment(), story.PRESCRIBER)
    await dev_env.client.get_workflow_handle(f"course-{stopped}").terminate(reason="by hand, for the test")

    report = await _reconciled(dev_env, clinic)
    # The database is the whole test session's: courses other tests left behind (streams seeded
    # without a workflow, workflows they ended) are findings too. Of this test's, exactly one.
    ours = [(f.course_id, f.code) for f in report.findings if f.course_id in (healthy, stopped)]
    assert ours == [(stopped, FindingCode.WORKFLOW_NOT_RUNNING)]
    (finding,) = [f for f in report.findings if f.course_id == stopped]
    assert finding.detail == {"status": "terminated"}
    assert report.courses_checked >= 2
    stored = "SELECT jsonb_typeof(body) FROM clinic_runs WHERE run_id = $1"
    assert await clinic.pool.fetchval(stored, report.run_id) == "object"  # not a JSON string of JSON

    async def told() -> bool:
        return any(m.notification.purpose == "reconcile_findings" for m in clinic.channel.messages)

    await _until(told, "the reconciliation digest delivered")
    digest = next(m for m in clinic.channel.messages if m.notification.purpose == "reconcile_findings")
    assert f"workflow_not_running  course-{stopped}" in digest.body
    assert healthy not in digest.body


async def _reconciled(dev_env: WorkflowEnvironment, clinic: Clinic) -> ReconcileReport:
    """Trigger the reconciliation once no run is in flight (a trigger during one is skipped), and
    wait for its stored report."""
    handle = dev_env.client.get_schedule_handle(RECONCILE_SCHEDULE)

    async def idle() -> bool:
        return not (await handle.describe()).info.running_actions

    await _until(idle, "the previous reconciliation finishing")
    since = datetime.now(UTC)
    # Not skipped even if the Schedule still counts the previous run as in flight.
    await handle.trigger(overlap=ScheduleOverlapPolicy.ALLOW_ALL)
    reports: list[ReconcileReport] = []

    async def ran() -> bool:
        report = await last_reconcile(clinic.pool)
        if report is not None and report.made_at > since:
            reports.append(report)
            return True
        return False

    await _until(ran, "a reconciliation run")
    return reports[-1]


async def test_a_running_course_is_marked_with_its_finding_and_unmarked_once_settled(
    dev_env: WorkflowEnvironment, clinic: Clinic
) -> None:
    courses = clinic.courses
    course = str(await courses.open(story.opening()))
    await eligibility_known(courses, course)  # its answer lands on its own, with a summary of its own
    await courses.record(course, story.assessment(), story.PRESCRIBER)
    stream = f"course-{course}"
    # The projection falls a version behind its stream (a failed summary write, a restore).
    await clinic.pool.execute("UPDATE course_summaries SET version = version - 1 WHERE stream_id = $1", stream)
    report = await _reconciled(dev_env, clinic)
    assert [(f.course_id, f.code) for f in report.findings if f.course_id == course] == [
        (course, FindingCode.SUMMARY_BEHIND_STREAM)
    ]

    async def marked() -> bool:
        return (await courses.status(course)).attention == "summary_behind_stream"

    await _until(marked, "the course marked NeedsAttention")
    query = f"WorkflowId = '{stream}' AND NeedsAttention = 'summary_behind_stream'"

    async def visible() -> bool:
        return [w.id async for w in dev_env.client.list_workflows(query)] == [stream]

    await _until(visible, "NeedsAttention in visibility")

    await clinic.pool.execute("UPDATE course_summaries SET version = version + 1 WHERE stream_id = $1", stream)
    report = await _reconciled(dev_env, clinic)
    assert [f for f in report.findings if f.course_id == course] == []

    async def unmarked() -> bool:
        return (await courses.status(course)).attention is None

    await _until(unmarked, "the mark lifted")


async def test_setup_cluster_sets_the_schedules_up_and_reconcile_last_lists_the_findings(
    cli: Cli, pg_pool: asyncpg.Pool
) -> None:
    first = await cli("setup-cluster", "--json", role="")
    assert first.code == 0, first.err
    assert set(first.json()["schedules"]) == {HUDDLE_SCHEDULE, RECONCILE_SCHEDULE}
    again = await cli("setup-cluster", "--json", role="")
    assert again.json()["schedules"] == {HUDDLE_SCHEDULE: "unchanged", RECONCILE_SCHEDULE: "unchanged"}

    # A run stored as the latest (an hour ahead), its findings listed by `course reconcile --last`.
    run_id, stream = f"clinic-reconcile-cli-{uuid.uuid4().hex[:6]}", f"course-{uuid.uuid4()}"
    await pg_pool.execute(
        "INSERT INTO clinic_runs (run_id, kind, made_at, body) VALUES ($1, 'reconcile', now() + interval '1 hour', $2)",
        run_id,
        {"courses_checked": 3, "findings": 2},
    )
    await pg_pool.executemany(
        "INSERT INTO reconcile_findings (run_id, subject, stream_id, code, detail) VALUES ($1, $2, $3, $4, $5)",
        [
            (run_id, stream, stream, "summary_behind_stream", {"summary": 4, "stream": 5}),
            (run_id, stream, stream, "workflow_not_running", {"status": "terminated"}),
        ],
    )
    try:
        listed = await cli("reconcile", "--last", role="")
        assert listed.code == 0, listed.err
        lines = listed.out.splitlines()
        assert lines[0] == f"run {run_id}: 3 course(s) checked"
        # Most serious first: a stopped workflow before a lagging summary.
        assert lines[2:] == [
            f"  workflow_not_running  {stream}  status=terminated",
            f"  summary_behind_stream  {stream}  stream=5 summary=4",
        ]
        as_json = (await cli("reconcile", "--last", "--json", role="")).json()
        assert {f["code"] for f in as_json["findings"]} == {"workflow_not_running", "summary_behind_stream"}
    finally:
        await pg_pool.execute("DELETE FROM clinic_runs WHERE run_id = $1", run_id)


async def test_two_runs_under_one_workflow_id_are_two_runs(dev_env: WorkflowEnvironment, clinic: Clinic) -> None:
    """A Schedule's run ids have a resolution of a second: the UI's Trigger pressed twice in one
    second starts two runs under the same id, and each is stored (and tells operations) once."""
    same_second = f"clinic-reconcile-{uuid.uuid4().hex[:6]}-2026-12-02T08:00:00Z"
    for _ in range(2):
        queue = clinic.courses.task_queue
        await dev_env.client.execute_workflow(ReconcileWorkflow.run, id=same_second, task_queue=queue)
    stored = await clinic.pool.fetch("SELECT run_id FROM clinic_runs WHERE run_id LIKE $1", f"{same_second}@%")
    assert len(stored) == 2
