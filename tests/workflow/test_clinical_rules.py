"""The safety gates as the workflow enforces them: rejected updates, durable timers, lifecycle."""

from __future__ import annotations

from datetime import timedelta

import pytest

from application.courses import StepRejected
from course.commands import PlaceHold, Reassign, RecordClinicalReview, ReleaseHold, Withdraw
from tests import story
from tests.workflow.conftest import Stack
from workflows.inputs import workflow_id
from workflows.treatment_course import TreatmentCourseWorkflow


async def _prepared(stack: Stack) -> str:
    course = str(await stack.client.open(story.opening()))
    await stack.client.record(course, story.assessment(), story.PRESCRIBER)
    for actor, command in story.preparation(await stack.env.get_current_time()):
        await stack.client.record(course, command, actor)  # type: ignore[arg-type]
    return course


def _types(stack: Stack, course: str) -> list[str]:
    return [e.type for e in stack.store.streams[workflow_id(course)]]


async def test_a_high_pre_dose_reading_is_deferred_never_administered(stack: Stack) -> None:
    course = await _prepared(stack)
    view = await stack.client.record(course, story.check_in(1, vitals=story.HIGH), story.NURSE)
    assert view.dosing_sessions.completed == 0 and view.awaiting == ["check-in"]
    with pytest.raises(StepRejected) as refused:
        await stack.client.record(course, story.dose(1), story.NURSE)
    assert refused.value.code == "not_checked_in"
    assert _types(stack, course)[-1] == "DosingSessionDeferred"
    assert "DosingSessionCompleted" not in _types(stack, course)


async def test_no_ride_home_no_check_in(stack: Stack) -> None:
    course = await _prepared(stack)
    with pytest.raises(StepRejected) as refused:
        await stack.client.record(course, story.check_in(1, ride_home=False), story.NURSE)
    assert refused.value.code == "no_ride_home" and "must not drive" in refused.value.message


async def test_a_severe_side_effect_blocks_dosing_until_the_prescriber_reviews(stack: Stack) -> None:
    course = await _prepared(stack)
    await stack.client.record(course, story.check_in(1), story.NURSE)
    severe = story.dose(1, side_effects=[{"effect": "dissociation", "severity": "severe"}])
    view = await stack.client.record(course, severe, story.NURSE)
    assert view.flags.needs_clinical_review and view.awaiting == ["clinical-review"]
    with pytest.raises(StepRejected) as refused:
        await stack.client.record(course, story.check_in(2), story.NURSE)
    assert refused.value.code == "review_required"
    review = RecordClinicalReview(decision="adjust_dose", new_dose_mg_per_kg=0.4, rationale="reduce")
    view = await stack.client.record(course, review, story.PRESCRIBER)
    assert not view.flags.needs_clinical_review
    await stack.client.record(course, story.check_in(2), story.NURSE)


async def test_the_integration_follow_up_fires_unless_the_session_is_recorded(stack: Stack) -> None:
    course = await _prepared(stack)
    await stack.client.record(course, story.check_in(1), story.NURSE)
    await stack.client.record(course, story.dose(1), story.NURSE)
    await stack.env.sleep(timedelta(days=1))
    await stack.client.record(course, story.integration(await stack.env.get_current_time()), story.THERAPIST)
    await stack.env.sleep(timedelta(days=10))  # the 3-day reminder and 7-day overdue were cancelled
    assert "FollowUpOverdue" not in _types(stack, course)
    await stack.client.record(course, story.check_in(2), story.NURSE)
    await stack.client.record(course, story.dose(2), story.NURSE)
    await stack.env.sleep(timedelta(days=8))
    view = await stack.client.status(course)
    assert view.flags.overdue and view.overdue_items == ["integration-overdue-2"]
    assert [n.purpose for n in stack.channel.sent].count("integration_due") == 1


async def test_a_hold_pauses_reminders_and_dosing(stack: Stack) -> None:
    course = await _prepared(stack)
    now = await stack.env.get_current_time()
    await stack.client.record(course, story.schedule(1, now + timedelta(days=3)), story.OPERATIONS)
    await stack.client.record(course, PlaceHold(reason="patient_travel"), story.OPERATIONS)
    with pytest.raises(StepRejected) as refused:
        await stack.client.record(course, story.check_in(1), story.NURSE)
    assert refused.value.code == "on_hold"
    await stack.env.sleep(timedelta(days=2, hours=1))  # the day-before reminder falls in the hold
    assert "session_tomorrow" not in [n.purpose for n in stack.channel.sent]
    await stack.client.record(course, ReleaseHold(), story.OPERATIONS)
    await stack.env.sleep(timedelta(hours=1))
    assert [n.purpose for n in stack.channel.sent].count("session_tomorrow") == 1


async def test_reassign_then_withdraw_and_the_closed_course_says_why(stack: Stack) -> None:
    course = str(await stack.client.open(story.opening()))
    await stack.client.record(course, Reassign(clinician_id="dr-new"), story.OPERATIONS)
    assert (await stack.client.status(course)).clinician_id == "dr-new"
    await stack.client.record(course, Withdraw(reason="patient_request"), story.OPERATIONS)
    handle = stack.env.client.get_workflow_handle_for(TreatmentCourseWorkflow.run, workflow_id(course))
    final = await handle.result()
    assert final.outcome == "withdrawn" and final.close_reasons == ["patient_request"]
    with pytest.raises(StepRejected) as refused:
        await stack.client.record(course, story.assessment(), story.PRESCRIBER)
    assert refused.value.code == "course_closed" and "withdrawn" in refused.value.message


async def test_an_absolute_contraindication_ends_the_course_as_ineligible(stack: Stack) -> None:
    course = str(await stack.client.open(story.opening()))
    outcome = await stack.client.record(
        course, story.assessment(contraindications=["psychotic_disorder"]), story.PRESCRIBER
    )
    assert (outcome.phase, outcome.outcome) == ("closed", "ineligible")
    assert (await stack.client.status(course)).close_reasons == ["psychotic_disorder"]
