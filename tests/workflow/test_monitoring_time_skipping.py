"""A monitored session on the time-skipping server: the clocks in the chair are durable timers.

A dose given, the 40-minute recheck missed (the nurse on duty is told at 50), two high readings
(the prescriber is told once), a patient still there at 4 hours (the prescriber is told), then
a discharge: every notification is sent once, and no monitoring timer is left once discharged.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

from activities.ports import NURSE_ON_DUTY
from course.commands import AdministerDose
from course.policy import CoursePolicy, MonitoringPolicy
from course.state import fold
from tests import story
from tests.conftest import eligibility_known
from tests.workflow.conftest import Stack
from workflows.inputs import workflow_id


async def test_a_monitored_session_with_a_late_recheck_and_an_escalation(stack: Stack) -> None:
    env, client = stack.env, stack.client
    policy = CoursePolicy(monitoring=MonitoringPolicy(), session_reminder_lead=timedelta(minutes=30))
    course = await client.open(story.opening(policy=policy))
    await eligibility_known(client, course)
    await client.record(course, story.assessment(), story.PRESCRIBER)
    for actor, command in story.preparation(await env.get_current_time()):
        await client.record(course, command, actor)  # type: ignore[arg-type]
    await client.record(course, story.schedule(1, await env.get_current_time() + timedelta(hours=1)), story.OPERATIONS)
    await client.record(course, story.check_in(1), story.NURSE)
    given = await env.get_current_time()
    dose = AdministerDose.model_validate(
        {"session_number": 1, "route": "iv_infusion", "dose_mg_per_kg": 0.5, "given_at": given}
    )
    view = await client.record(course, dose, story.NURSE)
    assert view.awaiting[:2] == ["monitoring-reading", "discharge"]

    def sent(purpose: str) -> int:
        return [n.purpose for n in stack.channel.sent].count(purpose)

    async def delivered(purpose: str) -> int:
        """Deliveries run after their append, outside the step: wait for one (bounded)."""
        for _ in range(100):
            if sent(purpose):
                break
            await asyncio.sleep(0.05)
        return sent(purpose)

    await env.sleep(timedelta(minutes=52))  # the 40-minute recheck is 10 minutes late at 50
    assert await delivered("monitoring_recheck_late") == 1
    (late,) = [n for n in stack.channel.sent if n.purpose == "monitoring_recheck_late"]
    assert (late.recipient, late.recipient_id) == ("operations", NURSE_ON_DUTY)
    assert (await client.status(course)).flags.overdue
    now = await env.get_current_time()
    await client.record(course, story.reading(now, 165), story.NURSE)
    assert not (await client.status(course)).flags.overdue  # the reading answered the flag
    await env.sleep(timedelta(minutes=25))
    await client.record(course, story.reading(await env.get_current_time(), 168), story.NURSE)
    assert await delivered("monitoring_review") == 1
    await env.sleep(timedelta(minutes=20))
    await client.record(course, story.reading(await env.get_current_time(), 130), story.NURSE)  # settled

    await env.sleep(given + timedelta(hours=4, minutes=2) - await env.get_current_time())
    assert await delivered("monitoring_escalation") == 1
    now = await env.get_current_time()
    await client.record(course, story.reading(now, 128), story.NURSE)
    leave = story.discharge(now)
    view = await client.record(course, leave, story.NURSE)
    assert view.dosing_sessions.completed == 1 and "discharge" not in view.awaiting

    await env.sleep(timedelta(hours=6))  # nothing of the chair fires again
    assert (sent("monitoring_recheck_late"), sent("monitoring_review"), sent("monitoring_escalation")) == (1, 1, 1)
    stored = stack.store.streams[workflow_id(course)]
    assert fold(None, stored) == await client.state(course)
    types = [e.type for e in stored]
    assert types.count("PatientDischarged") == 1 and types.count("DosingSessionCompleted") == 1
