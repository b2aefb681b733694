"""Reconciliation findings: each disagreement between Temporal and the event store has its code."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from course.reconcile import (
    CourseObservation,
    Finding,
    FindingCode,
    SendingRow,
    confirmed,
    course_findings,
    digest_lines,
    marks,
    stuck_notifications,
)

STREAM = "course-00000000-0000-0000-0000-000000000001"


def seen(**changes: object) -> CourseObservation:
    fields: dict[str, object] = {
        "stream_id": STREAM,
        "workflow_status": "running",
        "workflow_version": 7,
        "stream_head": 7,
        "summary_version": 7,
        "summary_open": True,
    }
    return CourseObservation.model_validate({**fields, **changes})


def codes(observation: CourseObservation) -> list[FindingCode]:
    return [f.code for f in course_findings(observation)]


def test_a_course_in_agreement_has_no_finding() -> None:
    assert codes(seen()) == []
    assert codes(seen(workflow_status="completed", workflow_version=None, summary_open=False)) == []


def test_each_disagreement_has_its_code() -> None:
    assert codes(seen(workflow_status="terminated", workflow_version=None)) == [FindingCode.WORKFLOW_NOT_RUNNING]
    assert codes(seen(workflow_status=None, workflow_version=None)) == [FindingCode.WORKFLOW_NOT_RUNNING]
    assert codes(seen(stream_head=9, summary_version=9)) == [FindingCode.STREAM_AHEAD_OF_WORKFLOW]
    assert codes(seen(stream_head=5, summary_version=5)) == [FindingCode.STREAM_BEHIND_WORKFLOW]
    assert codes(seen(summary_version=6)) == [FindingCode.SUMMARY_BEHIND_STREAM]
    assert codes(seen(workflow_version=None)) == [FindingCode.WORKFLOW_NOT_ANSWERING]


def test_a_terminated_course_says_how_it_ended() -> None:
    [finding] = course_findings(seen(workflow_status="terminated", workflow_version=None))
    assert finding.detail == {"status": "terminated"}
    assert finding.course_id == "00000000-0000-0000-0000-000000000001"


VERSIONS = st.one_of(st.none(), st.integers(min_value=0, max_value=50))


@given(
    st.sampled_from([None, "running", "completed", "terminated", "failed", "canceled"]),
    VERSIONS,
    VERSIONS,
    VERSIONS,
    st.booleans(),
)
def test_findings_follow_the_laws(
    status: str | None, workflow: int | None, head: int | None, summary: int | None, open_: bool
) -> None:
    observation = CourseObservation(
        stream_id=STREAM,
        workflow_status=status,
        workflow_version=workflow,
        stream_head=head,
        summary_version=summary,
        summary_open=open_,
    )
    found = codes(observation)
    # Not running while the store says open: always found, and only then.
    assert (FindingCode.WORKFLOW_NOT_RUNNING in found) == (open_ and status != "running")
    # A workflow and its stream disagree in at most one direction.
    assert not {FindingCode.STREAM_AHEAD_OF_WORKFLOW, FindingCode.STREAM_BEHIND_WORKFLOW} <= set(found)
    # Everything equal and running: nothing to say.
    if status == "running" and workflow is not None and workflow == head == summary:
        assert found == []
    assert len(found) == len(set(found))


def test_a_claim_older_than_the_threshold_is_stuck() -> None:
    now = datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    rows = [
        SendingRow(key="old", stream_id=STREAM, claimed_at=now - timedelta(minutes=11)),
        SendingRow(key="fresh", stream_id=STREAM, claimed_at=now - timedelta(minutes=9)),
    ]
    [stuck] = stuck_notifications(rows, now, timedelta(minutes=10))
    assert (stuck.subject, stuck.code, stuck.detail) == ("old", FindingCode.NOTIFICATION_STUCK_SENDING, {"minutes": 11})


def test_only_a_disagreement_seen_twice_is_reported() -> None:
    passing = course_findings(seen(stream_head=8, summary_version=8))  # a step between append and fold
    lasting = course_findings(seen(workflow_status="terminated", workflow_version=None))
    assert confirmed(passing + lasting, lasting) == lasting


def test_a_course_is_marked_with_its_most_serious_finding() -> None:
    findings = [
        Finding(subject=STREAM, stream_id=STREAM, code=FindingCode.SUMMARY_BEHIND_STREAM),
        Finding(subject=STREAM, stream_id=STREAM, code=FindingCode.WORKFLOW_NOT_RUNNING),
        Finding(subject="key", stream_id="clinic-daily-huddle", code=FindingCode.NOTIFICATION_STUCK_SENDING),
    ]
    assert marks(findings) == {"00000000-0000-0000-0000-000000000001": FindingCode.WORKFLOW_NOT_RUNNING}
    lines = digest_lines(findings, datetime(2026, 12, 2, 8, 0, tzinfo=UTC))
    assert lines[1].startswith("  workflow_not_running")
