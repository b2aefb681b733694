"""Recorded histories of representative courses replay against today's workflow code.

A change that would break a running course (a new activity, timer or branch without
`workflow.patched`) fails here before it reaches the clinic. Regenerate the histories with
`python -m tests.histories.export` only for an intended, versioned change (see README).
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from tests.histories.export import histories_settings
from worker.converter import data_converter
from workflows.inputs import OpenCourse
from workflows.treatment_course import TreatmentCourseWorkflow

HISTORIES = sorted((Path(__file__).parents[1] / "histories").glob("*.json"))


def _history(path: Path) -> WorkflowHistory:
    """Histories exported since payloads were bound to their course carry the course's id; older
    ones (unbound payloads) replay under any id."""
    recorded = json.loads(path.read_text())
    workflow_id = recorded.pop("workflowId", path.stem)
    return WorkflowHistory.from_json(workflow_id, recorded)


def test_the_recorded_histories_cover_every_phase_and_continue_as_new() -> None:
    names = {p.stem.split("-run")[0] for p in HISTORIES}
    assert {
        "assessment",
        "preparation",
        "deferred_session",
        "clinical_review",
        "hold",
        "completed",
        "continued_as_new",
        "monitored",
    } <= names
    assert any(p.stem.startswith("continued_as_new-run2") for p in HISTORIES)


@pytest.mark.parametrize("path", HISTORIES, ids=lambda p: p.stem)
async def test_a_recorded_course_replays_deterministically(path: Path) -> None:
    replayer = Replayer(workflows=[TreatmentCourseWorkflow], data_converter=data_converter(histories_settings()))
    await replayer.replay_workflow(_history(path))


# Unsandboxed: the sandbox would re-import this test module; determinism does not need it.
@workflow.defn(name="TreatmentCourse", sandboxed=False)
class CarelessChange(TreatmentCourseWorkflow):
    """What an unversioned edit looks like: a pause before every append."""

    @workflow.run
    async def run(self, request: OpenCourse) -> object:
        return await super().run(request)

    async def _store(self, envelopes: list, expected_version: int, after: object) -> object:  # type: ignore[type-arg]
        await workflow.sleep(timedelta(milliseconds=1))
        return await super()._store(envelopes, expected_version, after)  # type: ignore[arg-type]


async def test_an_unversioned_change_to_the_workflow_is_caught() -> None:
    replayer = Replayer(workflows=[CarelessChange], data_converter=data_converter(histories_settings()))
    with pytest.raises(NondeterminismError):
        await replayer.replay_workflow(_history(HISTORIES[0]))


@workflow.defn(name="TreatmentCourse", sandboxed=False)
class SameBehaviour(TreatmentCourseWorkflow):
    """The control: a subclass that changes nothing replays, so the failure above is the pause."""

    @workflow.run
    async def run(self, request: OpenCourse) -> object:
        return await super().run(request)


async def test_the_control_subclass_replays() -> None:
    replayer = Replayer(workflows=[SameBehaviour], data_converter=data_converter(histories_settings()))
    await replayer.replay_workflow(_history(HISTORIES[0]))


@workflow.defn(name="TreatmentCourse", sandboxed=False)
class StaffDueUnpatched(TreatmentCourseWorkflow):
    """`NextDueAt` for staff only (and no cancel of the last timer) without its patch."""

    @workflow.run
    async def run(self, request: OpenCourse) -> object:
        self._staff_due = True
        return await super().run(request)


async def test_the_staff_due_change_needs_its_patch() -> None:
    # A course recorded before it upserted NextDueAt for each patient reminder: sending fewer
    # upserts is a change of commands, which is why PUBLISHES_STAFF_DUE is a patch.
    replayer = Replayer(workflows=[StaffDueUnpatched], data_converter=data_converter(histories_settings()))
    with pytest.raises(NondeterminismError):
        await replayer.replay_workflow(_history(HISTORIES[0].with_name("completed.json")))
