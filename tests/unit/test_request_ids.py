"""A command sent without a request id gets one derived from what it is: the same command again is
the same request (applied once); a different course, payload, actor, or a step that recurs on
purpose (the next hold's release) is a new one. And a busy course is asked again, briefly."""

from __future__ import annotations

import random
from datetime import timedelta, timezone
from uuid import UUID

from hypothesis import given
from hypothesis import strategies as st
from temporalio.api.common.v1 import GrpcStatus
from temporalio.service import RPCError, RPCStatusCode

from application.courses import BUSY_LONGEST_PAUSE, asks_to_resend, busy_pause
from application.request_ids import derived_request_id
from course.commands import PlaceHold, RecordIntegrationSession, RecordIntentions, ReleaseHold
from course.repeats import occasion
from tests import story
from tests.clinic import Clinic

COURSE = UUID("3f1e9c2a-0000-4000-8000-000000000001")


def test_the_same_command_gives_the_same_id_and_no_payload_text() -> None:
    first = derived_request_id(COURSE, RecordIntentions(goals="Sleep through the night"), story.THERAPIST)
    again = derived_request_id(COURSE, RecordIntentions(goals="Sleep through the night"), story.THERAPIST)
    assert first == again and first.startswith("intentions-") and len(first) == len("intentions-") + 40
    assert "Sleep" not in first
    assert derived_request_id(COURSE, RecordIntentions(goals="Sleep better"), story.THERAPIST) != first
    assert derived_request_id(COURSE, RecordIntentions(goals="Sleep through the night"), story.NURSE) != first
    other_course = UUID("3f1e9c2a-0000-4000-8000-000000000002")
    assert derived_request_id(other_course, RecordIntentions(goals="Sleep through the night"), story.THERAPIST) != first


@given(minutes=st.integers(min_value=-12 * 60, max_value=14 * 60))
def test_the_payload_is_canonical_whatever_offset_or_field_order_it_came_in(minutes: int) -> None:
    utc = story.integration(Clinic().now)
    shifted = utc.held_at.astimezone(timezone(timedelta(minutes=minutes))).isoformat()
    reordered = RecordIntegrationSession.model_validate_json(
        f'{{"gad7": 8, "held_at": "{shifted}", "modality": "act"}}'
    )
    assert derived_request_id(COURSE, reordered, story.THERAPIST) == derived_request_id(COURSE, utc, story.THERAPIST)


def test_a_hold_and_its_release_recur_under_new_ids_but_a_retry_keeps_its_id() -> None:
    clinic = Clinic()
    hold, release = PlaceHold(reason="patient_travel"), ReleaseHold()
    first_hold = occasion(clinic.course, hold)
    clinic.record(story.OPERATIONS, hold)
    assert occasion(clinic.course, hold) == first_hold  # a retry of the hold just placed
    first_release = occasion(clinic.course, release)
    clinic.advance(days=1)
    clinic.record(story.OPERATIONS, release)
    assert occasion(clinic.course, release) == first_release  # a retry of the release just made
    assert occasion(clinic.course, hold) != first_hold  # the next hold, same reason
    clinic.record(story.OPERATIONS, hold)
    assert occasion(clinic.course, release) != first_release  # and its release
    assert occasion(clinic.course, RecordIntentions(goals="x")) == ""


def test_a_busy_course_is_asked_again_after_growing_jittered_pauses_never_above_the_ceiling() -> None:
    rng = random.Random(7)
    pauses = [busy_pause(attempt, rng) for attempt in range(12)]
    assert 0.025 <= pauses[0] <= 0.05
    assert max(pauses) <= BUSY_LONGEST_PAUSE
    assert pauses[6] > pauses[0]
    assert len({round(busy_pause(3, rng), 6) for _ in range(20)}) > 1  # jittered: a burst spreads out


def _rpc_error(status: RPCStatusCode, detail_type: str | None = None) -> RPCError:
    grpc_status = GrpcStatus(code=status.value, message="refused")
    if detail_type is not None:
        grpc_status.details.add(type_url=f"type.googleapis.com/{detail_type}")
    return RPCError("refused", status, grpc_status.SerializeToString())


def test_an_update_refused_while_the_workflow_task_is_retried_is_sent_again_and_nothing_else_is() -> None:
    """After a worker dies holding a course's task, the server says "not ready" until another
    worker takes it: the step is sent again (it failed CI once as a raw error), a real refusal not."""
    not_ready = "temporal.api.errordetails.v1.WorkflowNotReadyFailure"
    assert asks_to_resend(_rpc_error(RPCStatusCode.FAILED_PRECONDITION, not_ready))
    assert asks_to_resend(_rpc_error(RPCStatusCode.RESOURCE_EXHAUSTED))
    assert not asks_to_resend(_rpc_error(RPCStatusCode.FAILED_PRECONDITION))
    assert not asks_to_resend(_rpc_error(RPCStatusCode.FAILED_PRECONDITION, "temporal.api.errordetails.v1.Other"))
    assert not asks_to_resend(_rpc_error(RPCStatusCode.NOT_FOUND, not_ready))
