"""The same clinical fact sent twice (a form resubmitted, two tablets, a retry with a fresh id) is
refused as `already_recorded`, with a sentence that holds no patient data."""

from __future__ import annotations

from datetime import UTC, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from course.commands import Modality, RecordIntegrationSession, RecordMaintenanceSession
from course.events import EventEnvelope
from course.state import CourseState, fold
from tests import story
from tests.clinic import Clinic


def test_a_checked_in_session_cannot_be_checked_in_again_once_it_is_done() -> None:
    clinic = Clinic()
    clinic.through_preparation()
    clinic.dose(1)
    refused = clinic.rejects(story.NURSE, story.check_in(1))
    assert refused.code == "already_recorded"
    assert refused.message == "Dosing session 1 is already recorded for this course."


def test_a_dosing_session_sent_twice_is_recorded_once() -> None:
    clinic = Clinic()
    clinic.through_preparation()
    clinic.dose(1)
    clinic.record(story.THERAPIST, story.integration(clinic.now))
    clinic.record(story.NURSE, story.check_in(2))
    assert clinic.rejects(story.NURSE, story.dose(1)).code == "already_recorded"


def test_the_last_session_sent_again_after_the_series_ended_is_already_recorded_not_wrong_phase() -> None:
    clinic = Clinic()
    clinic.through_preparation(planned_sessions=1)
    clinic.dose(1)
    assert clinic.rejects(story.NURSE, story.dose(1)).code == "already_recorded"


def test_a_deferred_session_is_not_done_and_can_be_checked_in_again() -> None:
    clinic = Clinic()
    clinic.through_preparation()
    assert clinic.record(story.NURSE, story.check_in(1, vitals=story.HIGH)) == ["DosingSessionDeferred"]
    assert clinic.record(story.NURSE, story.check_in(1)) == ["CheckedIn"]


def test_the_same_integration_session_in_another_utc_offset_is_already_recorded() -> None:
    clinic = Clinic()
    clinic.through_preparation()
    clinic.dose(1)
    held = clinic.now - timedelta(hours=2)
    clinic.record(story.THERAPIST, story.integration(held))
    paris = held.astimezone(timezone(timedelta(hours=1)))
    refused = clinic.rejects(story.THERAPIST, story.integration(paris))
    assert refused.code == "already_recorded"
    assert "modality" in refused.message and "pt-0001" not in refused.message


def test_another_modality_at_the_same_time_or_the_same_modality_later_is_a_new_session() -> None:
    clinic = Clinic()
    clinic.through_preparation()
    clinic.dose(1)
    held = clinic.now - timedelta(hours=2)
    clinic.record(story.THERAPIST, story.integration(held))
    other = RecordIntegrationSession(modality=Modality.IFS, held_at=held, gad7=None)
    assert clinic.record(story.THERAPIST, other) == ["IntegrationSessionRecorded"]
    assert clinic.record(story.THERAPIST, story.integration(held + timedelta(hours=1))) == [
        "IntegrationSessionRecorded"
    ]
    assert clinic.course.integration_sessions == 3


def test_a_maintenance_session_at_the_same_time_is_already_recorded() -> None:
    clinic = Clinic()
    clinic.through_preparation(planned_sessions=1)
    clinic.dose(1)
    clinic.record(story.THERAPIST, story.integration(clinic.now))
    clinic.record(story.PRESCRIBER, story.maintenance_plan())
    clinic.advance(days=80)
    held = clinic.now - timedelta(hours=1)
    clinic.record(story.NURSE, story.maintenance_session(held))
    refused = clinic.rejects(story.THERAPIST, story.maintenance_session(held, gad7=9))
    assert refused.code == "already_recorded"
    assert refused.message == "A maintenance session at this time is already recorded for this course."
    assert clinic.record(story.NURSE, story.maintenance_session(held + timedelta(minutes=30))) == [
        "MaintenanceSessionRecorded"
    ]


def test_a_snapshot_from_before_these_fields_still_loads() -> None:
    clinic = Clinic()
    clinic.through_preparation()
    dumped = clinic.course.model_dump(mode="json")
    del dumped["integration_sessions_held"], dumped["maintenance_sessions_held"]
    assert CourseState.model_validate(dumped).integration_sessions_held == []


@given(
    offsets=st.lists(st.integers(min_value=-12 * 60, max_value=14 * 60), min_size=2, max_size=4),
    minutes_ago=st.integers(min_value=0, max_value=60 * 24 * 6),
    modality=st.sampled_from(list(Modality)),
)
def test_an_integration_session_is_recorded_once_whatever_offsets_it_is_sent_in(
    offsets: list[int], minutes_ago: int, modality: Modality
) -> None:
    clinic = Clinic()
    clinic.through_preparation()
    clinic.dose(1)
    held = (clinic.now - timedelta(minutes=minutes_ago)).astimezone(UTC)
    first, *again = (held.astimezone(timezone(timedelta(minutes=m))) for m in offsets)
    assert clinic.record(story.THERAPIST, RecordIntegrationSession(modality=modality, held_at=first)) == [
        "IntegrationSessionRecorded"
    ]
    for moment in again:
        command = RecordIntegrationSession(modality=modality, held_at=moment, gad7=3)
        assert clinic.rejects(story.THERAPIST, command).code == "already_recorded"
    # The state that refuses them is the fold of the stored events: a replay refuses them too.
    log: list[EventEnvelope] = clinic.log
    assert fold(None, log) == clinic.course
    assert clinic.course.integration_sessions == 1


@given(minutes=st.lists(st.integers(min_value=0, max_value=60 * 24 * 30), min_size=1, max_size=6, unique=True))
def test_maintenance_sessions_at_distinct_times_are_all_recorded(minutes: list[int]) -> None:
    clinic = Clinic()
    clinic.through_preparation(planned_sessions=1)
    clinic.dose(1)
    clinic.record(story.THERAPIST, story.integration(clinic.now))
    clinic.record(story.PRESCRIBER, story.maintenance_plan())
    clinic.advance(days=31)
    for m in minutes:
        session = RecordMaintenanceSession(kind="ketamine", held_at=clinic.now - timedelta(minutes=m), gad7=4)
        assert clinic.record(story.NURSE, session) == ["MaintenanceSessionRecorded"]
    assert clinic.course.maintenance_sessions == len(minutes)
