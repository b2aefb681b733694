"""The workflow sandbox, without entering it to ask which course a payload belongs to.

For every payload of every activation and completion, the SDK asks the workflow instance for the
payload's serialization context, and for its external-storage context, up to four questions per
payload sequence (decode or encode, external storage, references). With the sandbox each question
is an `exec` inside it (workflow_sandbox/_runner.py), and the profile of a loaded worker put 16 %
of its time there (bench/FINDINGS.md, issue 21): more than the course's own code.

A course's answer never needs the sandbox. Its payloads are the course's own: its updates, its
activities' inputs and results, its timers' summaries, its continue-as-new. It starts no child
workflow, signals no other workflow and calls no Nexus operation. The codec binds a payload to the
workflow id of its context (worker/codec.py), and an activity's context carries the course's id,
so the course's own `WorkflowSerializationContext` encrypts each payload exactly as the activity's
context would. The answer is computed once per run, outside the sandbox; a command that does
target another workflow (should a course ever issue one) is still asked of the sandbox.
Workflow code and its determinism are untouched: this runs around the instance, never in it.
"""

from __future__ import annotations

from collections.abc import Sequence

import temporalio.workflow
from temporalio.api.enums.v1 import CommandType
from temporalio.bridge.proto.workflow_activation import WorkflowActivation
from temporalio.bridge.proto.workflow_completion import WorkflowActivationCompletion
from temporalio.converter import SerializationContext, WorkflowSerializationContext
from temporalio.converter._extstore import StorageDriverStoreContext, StorageDriverWorkflowInfo
from temporalio.worker import WorkflowInstance, WorkflowInstanceDetails, WorkflowRunner
from temporalio.worker._command_aware_visitor import CommandInfo

# Commands whose payloads belong to another workflow or service: the sandbox answers for them.
_ELSEWHERE = frozenset(
    {
        CommandType.COMMAND_TYPE_START_CHILD_WORKFLOW_EXECUTION,
        CommandType.COMMAND_TYPE_SIGNAL_EXTERNAL_WORKFLOW_EXECUTION,
        CommandType.COMMAND_TYPE_SCHEDULE_NEXUS_OPERATION,
        CommandType.COMMAND_TYPE_COMPLETE_WORKFLOW_EXECUTION,  # a child's result is its parent's
    }
)


class OwnContextRunner(WorkflowRunner):
    """Wraps a runner (the sandbox): runs of the workflow types named answer the payload-context
    questions themselves; every other workflow is the wrapped runner's, unchanged."""

    def __init__(self, inner: WorkflowRunner, workflow_types: Sequence[str]) -> None:
        self._inner = inner
        self._types = frozenset(workflow_types)

    def prepare_workflow(self, defn: temporalio.workflow._Definition) -> None:
        self._inner.prepare_workflow(defn)

    def create_instance(self, det: WorkflowInstanceDetails) -> WorkflowInstance:
        instance = self._inner.create_instance(det)
        if det.defn.name in self._types and det.info.parent is None:
            return _OwnContexts(instance)
        return instance

    def set_worker_level_failure_exception_types(self, types: Sequence[type[BaseException]]) -> None:
        self._inner.set_worker_level_failure_exception_types(types)


class _OwnContexts(WorkflowInstance):
    def __init__(self, inner: WorkflowInstance) -> None:
        self._inner = inner
        info = inner.get_info()
        self._context = WorkflowSerializationContext(namespace=info.namespace, workflow_id=info.workflow_id)
        self._store = StorageDriverStoreContext(
            target=StorageDriverWorkflowInfo(
                id=info.workflow_id, run_id=info.run_id, type=info.workflow_type, namespace=info.namespace
            )
        )

    def activate(self, act: WorkflowActivation) -> WorkflowActivationCompletion:
        return self._inner.activate(act)

    def get_serialization_context(self, command_info: CommandInfo | None) -> SerializationContext | None:
        if command_info is not None and command_info.command_type in _ELSEWHERE:
            return self._inner.get_serialization_context(command_info)
        return self._context

    def get_external_store_context(self, command_info: CommandInfo | None) -> StorageDriverStoreContext:
        if command_info is not None and command_info.command_type in _ELSEWHERE:
            return self._inner.get_external_store_context(command_info)
        return self._store

    def get_info(self) -> temporalio.workflow.Info:
        return self._inner.get_info()

    def get_thread_id(self) -> int | None:
        return self._inner.get_thread_id()
