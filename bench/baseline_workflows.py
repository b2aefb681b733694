"""Baselines: the same Temporal work as a course, without the course.

`CourseShapeWorkflow` does what TreatmentCourseWorkflow does to Temporal — the same number of
updates, activities and fired timers, in the same order — with no domain logic, no PostgreSQL
and tiny payloads: on open it runs `opening_activities` no-op activities (CourseOpened append,
eligibility, EligibilityChecked append); each update runs one no-op activity (the append); an
update with `arm_timer` starts a timer whose firing runs `activities_per_timer` no-op activities
(notify, then append the ReminderSent), the first of which tells the driver, like the reminder
reaching the patient. `BareUpdateWorkflow` is the latency baseline: an update that runs one no-op
activity and returns.

With `Shape.upserts` the shape also upserts a search attribute where a course does (all of them
once opened, then one per step and one per fired timer): what the course's upserts cost the
server, measured apart from everything else the course does (`bench.throughput --upserts`).

Both go through the same data converter (pydantic JSON + AES-GCM codec) and the same sandbox as
the course, so a ratio measures what the course itself adds.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel
from temporalio import activity, workflow
from temporalio.common import SearchAttributeKey, SearchAttributeUpdate

NOOP = "bench_noop"


class Shape(BaseModel):
    opening_activities: int = 3
    activities_per_timer: int = 2
    timer_seconds: float = 1.0
    upserts: bool = False


# Registered on every dev server the benchmarks start (workflows/search_attributes.ALL).
_STEPS_SEEN = SearchAttributeKey.for_int("DosingSessionsCompleted")
_PHASE = SearchAttributeKey.for_keyword("CoursePhase")


class ShapeStep(BaseModel):
    arm_timer: bool = False
    last: bool = False


class Ping(BaseModel):
    workflow_id: str
    notify: bool = False


class NoopActivities:
    """The no-op activity; `notify` tells the driver's board (like a reminder reaching a patient)."""

    def __init__(self, board: object | None = None) -> None:
        self._board = board

    @activity.defn(name=NOOP)
    async def noop(self, ping: Ping) -> Ping:
        if ping.notify and self._board is not None:
            self._board.notify(ping.workflow_id)  # type: ignore[attr-defined]
        return ping


async def _noop(notify: bool = False) -> None:
    await workflow.execute_activity(
        NOOP,
        Ping(workflow_id=workflow.info().workflow_id, notify=notify),
        result_type=Ping,
        start_to_close_timeout=timedelta(seconds=30),
    )


@workflow.defn(name="BenchCourseShape")
class CourseShapeWorkflow:
    @workflow.init
    def __init__(self, shape: Shape) -> None:
        self._upserts = shape.upserts
        self._upserted = 0
        self._opened = False
        self._done = False
        self._steps = 0
        self._armed = 0

    @workflow.run
    async def run(self, shape: Shape) -> int:
        for _ in range(shape.opening_activities):
            await _noop()
        self._opened = True
        if self._upserts:
            workflow.upsert_search_attributes([_PHASE.value_set("shape"), _STEPS_SEEN.value_set(0)])
        while True:
            await workflow.wait_condition(lambda: self._done or self._armed > 0)
            if self._armed:
                self._armed -= 1
                await workflow.sleep(timedelta(seconds=shape.timer_seconds))
                for index in range(shape.activities_per_timer):
                    await _noop(notify=index == 0)
                self._upsert()
                continue
            break
        await workflow.wait_condition(workflow.all_handlers_finished)
        return self._steps

    @workflow.update
    async def step(self, request: ShapeStep) -> int:
        await workflow.wait_condition(lambda: self._opened)
        await _noop()
        self._steps += 1
        if request.arm_timer:
            self._armed += 1
        if request.last:
            self._done = True
        self._upsert()
        return self._steps

    def _upsert(self) -> None:
        """A value that changes each time, as a course's upserts change what they carry."""
        if self._upserts:
            self._upserted += 1
            update: SearchAttributeUpdate[int] = _STEPS_SEEN.value_set(self._upserted)
            workflow.upsert_search_attributes([update])


@workflow.defn(name="BenchBareUpdate")
class BareUpdateWorkflow:
    def __init__(self) -> None:
        self._done = False

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: self._done)
        await workflow.wait_condition(workflow.all_handlers_finished)

    @workflow.update
    async def step(self, request: ShapeStep) -> int:
        await _noop()
        if request.last:
            self._done = True
        return 1
