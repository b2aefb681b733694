"""A whole course on Temporal's time-skipping server: five phases, months of timers, minutes of test."""

from __future__ import annotations

from datetime import UTC, timedelta, timezone

import pytest
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from application.courses import StepRejected
from course.state import fold
from tests import story
from tests.conftest import eligibility_known
from tests.workflow.conftest import Stack
from worker.converter import data_converter
from workflows.inputs import workflow_id
from workflows.treatment_course import TreatmentCourseWorkflow


async def test_a_course_runs_through_all_five_phases_to_completed(stack: Stack) -> None:
    env, client = stack.env, stack.client
    course = await client.open(story.opening())
    await client.record(course, story.assessment(), story.PRESCRIBER)
    for actor, command in story.preparation(await env.get_current_time()):
        await client.record(course, command, actor)  # type: ignore[arg-type]
    assert (await client.status(course)).phase == "dosing"

    for n in (1, 2, 3):
        now = await env.get_current_time()
        await client.record(course, story.schedule(n, now + timedelta(days=2)), story.OPERATIONS)
        # The day-before reminder goes out; check-in opens two hours before the session.
        await env.sleep(timedelta(days=1, hours=23))
        await client.record(course, story.check_in(n), story.NURSE)
        await client.record(course, story.dose(n), story.NURSE)
        await env.sleep(timedelta(days=2))
        await client.record(course, story.integration(await env.get_current_time()), story.THERAPIST)

    view = await client.status(course)
    assert (view.phase, view.dosing_sessions.completed) == ("integration", 3)
    await client.record(course, story.integration(await env.get_current_time(), gad7=5), story.THERAPIST)
    await client.record(course, story.maintenance_plan(interval_days=90), story.PRESCRIBER)

    await env.sleep(timedelta(days=80))  # past the reminder 14 days before the 90-day due date
    purposes = [n.purpose for n in stack.channel.sent]
    assert purposes.count("session_tomorrow") == 3
    assert purposes.count("maintenance_due") == 1

    await client.record(course, story.maintenance_session(await env.get_current_time()), story.NURSE)
    await client.record(course, story.maintenance_plan(kind="none", interval_days=None), story.PRESCRIBER)
    handle = env.client.get_workflow_handle_for(TreatmentCourseWorkflow.run, workflow_id(course))
    final = await handle.result()
    assert (final.phase, final.outcome) == ("closed", "completed")
    assert final.gad7.baseline == 15 and final.gad7.latest == 6

    stored = stack.store.streams[workflow_id(course)]
    assert [e.version for e in stored] == list(range(1, len(stored) + 1))
    assert fold(None, stored) == await client.state(course)
    types = [e.type for e in stored]
    for expected in (
        "CourseOpened",
        "CandidacyConfirmed",
        "PreparationCompleted",
        "DosingSeriesCompleted",
        "MaintenancePlanRecorded",
        "MaintenanceSessionRecorded",
        "CourseClosed",
    ):
        assert expected in types
    assert types.count("ReminderSent") == len(stack.channel.sent)

    # The history replays deterministically with the production converter.
    history: WorkflowHistory = await handle.fetch_history()
    await Replayer(workflows=[TreatmentCourseWorkflow], data_converter=data_converter()).replay_workflow(history)


async def test_an_unassessed_course_is_reminded_then_lapses(stack: Stack) -> None:
    course = await stack.client.open(story.opening())
    handle = stack.env.client.get_workflow_handle_for(TreatmentCourseWorkflow.run, workflow_id(course))
    await stack.env.sleep(timedelta(days=31))
    final = await handle.result()
    assert (final.outcome, final.close_reasons) == ("lapsed", ["assessment_deadline"])
    assert [n.purpose for n in stack.channel.sent] == ["clearance_pending", "assessment_pending"]
    assert [e.type for e in stack.store.streams[workflow_id(course)]][-2:] == ["ReminderSent", "CourseClosed"]


async def test_a_rejected_step_leaves_no_trace(stack: Stack) -> None:
    course = await stack.client.open(story.opening())
    await stack.client.record(course, story.assessment(), story.PRESCRIBER)
    await eligibility_known(stack.client, course)
    before = len(stack.store.streams[workflow_id(course)])
    with pytest.raises(StepRejected) as rejected:
        await stack.client.record(course, story.check_in(1), story.NURSE)
    assert rejected.value.code == "preparation_incomplete"
    assert len(stack.store.streams[workflow_id(course)]) == before
    history = await stack.env.client.get_workflow_handle(workflow_id(course)).fetch_history()
    accepted = [e for e in history.events if e.HasField("workflow_execution_update_accepted_event_attributes")]
    assert len(accepted) == 1  # only the assessment


async def test_the_same_appointment_sent_in_two_utc_offsets_reminds_the_patient_once(stack: Stack) -> None:
    env, client = stack.env, stack.client
    course = await client.open(story.opening())
    await client.record(course, story.assessment(), story.PRESCRIBER)
    for actor, command in story.preparation(await env.get_current_time()):
        await client.record(course, command, actor)  # type: ignore[arg-type]
    appointment = await env.get_current_time() + timedelta(days=3)
    paris, utc = timezone(timedelta(hours=1)), UTC
    await client.record(course, story.schedule(1, appointment.astimezone(paris)), story.OPERATIONS)
    await env.sleep(timedelta(days=2, hours=1))  # the day-before reminder goes out
    # The front desk sends the same appointment again, from a tool that writes UTC.
    await client.record(course, story.schedule(1, appointment.astimezone(utc)), story.OPERATIONS)
    await env.sleep(timedelta(hours=1))
    assert [n.purpose for n in stack.channel.sent].count("session_tomorrow") == 1
    reminders = [e for e in stack.store.streams[workflow_id(course)] if e.type == "ReminderSent"]
    assert [e.event.key for e in reminders if e.event.key.startswith("session-1")] == [  # type: ignore[union-attr]
        f"session-1-reminder-{appointment.astimezone(utc).isoformat()}"
    ]
