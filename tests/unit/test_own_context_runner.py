"""worker/runner.py: a course answers its payloads' contexts without entering the sandbox; a command
aimed at another workflow, and any other workflow type, is still the sandbox's to answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any, cast

import temporalio.workflow
from temporalio.api.enums.v1 import CommandType
from temporalio.converter import WorkflowSerializationContext
from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails, WorkflowRunner
from temporalio.worker._command_aware_visitor import CommandInfo

from worker.runner import OwnContextRunner
from workflows.inputs import WORKFLOW_TYPE


def _info(workflow_type: str, parent: Any = None) -> temporalio.workflow.Info:
    """The fields the runner reads (the SDK's Info has many more, none of them used here)."""
    info = SimpleNamespace(
        namespace="clinic", workflow_id="course-1", run_id="run-1", workflow_type=workflow_type, parent=parent
    )
    return cast(temporalio.workflow.Info, info)


@dataclass
class _Sandboxed(WorkflowInstance):
    info: temporalio.workflow.Info
    asked: list[str] = field(default_factory=list)

    def activate(self, act: Any) -> Any:
        return None

    def get_serialization_context(self, command_info: CommandInfo | None) -> Any:
        self.asked.append("serialization")
        return WorkflowSerializationContext(namespace="clinic", workflow_id="someone-else")

    def get_external_store_context(self, command_info: CommandInfo | None) -> Any:
        self.asked.append("store")
        return None

    def get_info(self) -> temporalio.workflow.Info:
        return self.info


class _Sandbox(WorkflowRunner):
    def __init__(self) -> None:
        self.made: list[_Sandboxed] = []

    def prepare_workflow(self, defn: Any) -> None:
        pass

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        self.made.append(_Sandboxed(det.info))
        return self.made[-1]


def _instance(workflow_type: str, parent: Any = None) -> tuple[WorkflowInstance, _Sandboxed]:
    sandbox = _Sandbox()
    runner = OwnContextRunner(sandbox, [WORKFLOW_TYPE])
    details = cast(Any, type("Details", (), {}))()
    details.defn = type("Defn", (), {"name": workflow_type})()
    details.info = _info(workflow_type, parent)
    return runner.create_instance(details), sandbox.made[-1]


def test_a_courses_activity_and_update_payloads_are_bound_to_the_course_without_the_sandbox() -> None:
    course, sandboxed = _instance(WORKFLOW_TYPE)
    activity = CommandInfo(command_type=CommandType.COMMAND_TYPE_SCHEDULE_ACTIVITY_TASK, command_seq=1)
    for command in (activity, None):
        context = course.get_serialization_context(command)
        assert context == WorkflowSerializationContext(namespace="clinic", workflow_id="course-1")
        store = course.get_external_store_context(command)
        assert store.target is not None and store.target.id == "course-1"
    assert sandboxed.asked == []


def test_a_command_aimed_at_another_workflow_is_the_sandboxs_to_answer() -> None:
    course, sandboxed = _instance(WORKFLOW_TYPE)
    signal = CommandInfo(command_type=CommandType.COMMAND_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION, command_seq=2)
    context = course.get_serialization_context(signal)
    assert isinstance(context, WorkflowSerializationContext) and context.workflow_id == "someone-else"
    course.get_external_store_context(signal)
    assert sandboxed.asked == ["serialization", "store"]


def test_other_workflows_and_child_runs_are_the_sandboxs_own() -> None:
    other, sandboxed = _instance("ClinicReconcile")
    assert other is sandboxed
    parent = temporalio.workflow.ParentInfo(namespace="clinic", run_id="p", workflow_id="parent")
    child, sandboxed = _instance(WORKFLOW_TYPE, parent)
    assert child is sandboxed
