"""The clinic's Temporal Schedules: created, or brought up to date, by `course dev` and
`course setup-cluster`, and then the Temporal UI's to pause, resume and trigger.

- `clinic-daily-huddle`: every morning at HUDDLE_AT in HUDDLE_TIME_ZONE (the Schedule keeps the
  wall-clock time across daylight-saving changes), runs `ClinicDailyHuddle`.
- `clinic-reconcile`: every RECONCILE_EVERY_MINUTES (hourly), runs `ClinicReconcile`.

Idempotent: a Schedule that exists with the same spec and action is left alone; one whose spec or
action differs (a new time, zone or task queue) is updated in place, keeping its state, so a
Schedule operations paused in the UI stays paused.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleCalendarSpec,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleRange,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)

from worker.settings import Settings
from workflows.clinic import HUDDLE_WORKFLOW, RECONCILE_WORKFLOW
from workflows.ui_text import for_operations

HUDDLE_SCHEDULE = "clinic-daily-huddle"
RECONCILE_SCHEDULE = "clinic-reconcile"
Outcome = Literal["created", "updated", "unchanged"]


class BadScheduleSetting(Exception):
    """HUDDLE_AT or the huddle's zone cannot make a Schedule: nothing was created."""


def wanted(settings: Settings) -> dict[str, Schedule]:
    zone = settings.huddle_zone
    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise BadScheduleSetting(f"the huddle's time zone {zone!r} is not an IANA zone (HUDDLE_TIME_ZONE)") from None
    hour, minute = (int(part) for part in settings.huddle_at.split(":"))
    queue = settings.course_task_queue
    return {
        HUDDLE_SCHEDULE: Schedule(
            action=ScheduleActionStartWorkflow(
                HUDDLE_WORKFLOW,
                id=HUDDLE_SCHEDULE,
                task_queue=queue,
                execution_timeout=timedelta(hours=2),
                static_summary=for_operations(f"The clinic's morning huddle ({settings.huddle_at} {zone})"),
            ),
            spec=ScheduleSpec(
                calendars=[ScheduleCalendarSpec(hour=[ScheduleRange(hour)], minute=[ScheduleRange(minute)])],
                time_zone_name=zone,
            ),
            # A server down at 07:30 still holds the huddle when it is back within two hours.
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(hours=2)),
            state=ScheduleState(note="created by course setup-cluster / course dev"),
        ),
        RECONCILE_SCHEDULE: Schedule(
            action=ScheduleActionStartWorkflow(
                RECONCILE_WORKFLOW,
                id=RECONCILE_SCHEDULE,
                task_queue=queue,
                execution_timeout=timedelta(hours=1),
                static_summary=for_operations("Compare Temporal with the event store; mark courses that disagree"),
            ),
            spec=ScheduleSpec(
                intervals=[ScheduleIntervalSpec(every=timedelta(minutes=settings.reconcile_every_minutes))]
            ),
            # Missed runs are not made up: the next one looks at the whole clinic anyway.
            policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(minutes=10)),
            state=ScheduleState(note="created by course setup-cluster / course dev"),
        ),
    }


def _ranges(ranges: object) -> tuple[tuple[int, int, int], ...]:
    # The server hands back `end` and `step` filled in (end = start, step = 1) where we left 0.
    assert isinstance(ranges, list | tuple)
    return tuple((r.start, max(r.end, r.start), r.step or 1) for r in ranges)


def identity(schedule: Schedule) -> tuple[object, ...]:
    """What makes two Schedules the same for us: when they fire, and what they start where."""
    spec, action = schedule.spec, schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    return (
        tuple((_ranges(c.hour), _ranges(c.minute)) for c in spec.calendars),
        tuple((i.every, i.offset or timedelta(0)) for i in spec.intervals),
        spec.time_zone_name or "UTC",
        action.workflow,
        action.task_queue,
        action.id,
    )


async def ensure_schedules(client: Client, settings: Settings) -> dict[str, Outcome]:
    outcomes: dict[str, Outcome] = {}
    for schedule_id, schedule in wanted(settings).items():
        try:
            await client.create_schedule(schedule_id, schedule)
            outcomes[schedule_id] = "created"
            continue
        except ScheduleAlreadyRunningError:
            pass
        handle = client.get_schedule_handle(schedule_id)
        described = await handle.describe()
        if identity(described.schedule) == identity(schedule):
            outcomes[schedule_id] = "unchanged"
            continue

        def keep_state(current: ScheduleUpdateInput, new: Schedule = schedule) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=dataclasses.replace(new, state=current.description.schedule.state))

        await handle.update(keep_state)
        outcomes[schedule_id] = "updated"
    return outcomes


def describe(settings: Settings) -> str:
    return (
        f"{HUDDLE_SCHEDULE} (daily {settings.huddle_at} {settings.huddle_zone}), "
        f"{RECONCILE_SCHEDULE} (every {settings.reconcile_every_minutes} min)"
    )
